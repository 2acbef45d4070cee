/**
 * WorkerDataLink over the worker service (transports/protocol/worker.ts): block reads as
 * server streams, block writes as client streams, and short-circuit reads for workers on
 * this host whose MEM tier is a /dev/shm arena.
 *
 * Short-circuit: openShortCircuit pins the block for this connection and returns the arena
 * file and the block's extent; the arena is mapped read-only once per path (native
 * mapShared) and kept for the life of the link; the chunk handed out is a view into the
 * mapping, valid until the consumer asks for the next chunk, when the pin is released
 * (closeShortCircuit, not awaited: it only has to arrive before the lease runs out). A worker
 * that answers `kind: 'none'` ('remote', 'no-shm') is not asked again on this link; a block
 * not in MEM ('not-in-memory') falls back to the stream for that read only.
 *
 * Engine pins: when the worker allows it (`engine` in the answer), the link attaches to the
 * arena's block engine as one more owner (core BlockCache.attach, read-write) and from then on
 * pins the blocks it finds in MEM itself, with no round trip: BlockCache.acquire (~0.1 µs)
 * against an open's round trip (0.3 ms at the median on this VM, tens of ms in the tail), which
 * was what kept a short-circuit read of a cached file at 0.71-0.81x memcpy. The pin is the
 * engine's: the bytes stay valid until release even if the worker deletes, evicts or demotes
 * the block meanwhile; it is bound by the engine's owner lease (this process's heartbeat), not
 * the connection's. Blocks the engine does not hold go through openShortCircuit as before (it
 * promotes them). A link that cannot attach (file permissions, every owner slot taken, another
 * engine version) opens block by block, and tries again after CLIENT_ENGINE_RETRY_MS; an engine the worker closed (it stopped) is let
 * go, and the next open's answer attaches the new one.
 */
import { BlockCache, type BlockView } from '../core/block-cache.js';
import { isolateEngine } from '../core/isolate-engines.js';
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';
import { mapShared, unmap } from '../native/index.js';
import type { DownloadCall, ServiceClient, UploadCall } from '../transports/service.js';
import { CLIENT_BLOCK_STREAM_DEADLINE_MS, CLIENT_CALL_DEADLINE_MS, CLIENT_ENGINE_RETRY_MS, CLIENT_MAX_CALLS_PER_CONNECTION, CLIENT_MAX_STREAMS_PER_WORKER } from '../core/constants.js';
import { Semaphore } from './semaphore.js';
import type { WorkerService } from '../transports/protocol/worker.js';
import type { BlockWriter, ReadBlockRequest, WorkerDataLink, WriteBlockRequest } from './worker-link.js';

const EMPTY: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };

export type WorkerServiceClient = ServiceClient<(typeof WorkerService)['members']>;

export interface RpcWorkerLinkOptions {
  workerId: number;
  address: string;
  host: string;
  /** Try short-circuit reads (same host and native available). */
  shortCircuit: boolean;
  /** Closes the underlying connection. */
  close(): Promise<void>;
  /** True once the underlying connection is gone. */
  isClosed(): boolean;
  /** Deadline of unary calls (default CLIENT_CALL_DEADLINE_MS). */
  callDeadlineMs?: number;
  /** Deadline of one block read stream (default CLIENT_BLOCK_STREAM_DEADLINE_MS). */
  streamDeadlineMs?: number;
}

/**
 * One attachment to a worker's block engine. Retired (the worker closed its arena, or this
 * owner's lease expired), it pins nothing more and closes once the views it handed out are
 * released: closing unmaps the arena, and a consumer may still be reading one of them.
 */
class EngineAttachment {
  #views = 0;
  #retired = false;

  /** `name`: the arena file, or the isolate key (core/isolate-engines.ts). */
  constructor(readonly cache: BlockCache, readonly name: string) {}

  pin(blockId: number): BlockView | undefined {
    const view = this.cache.acquire(blockId);
    if (view !== undefined) this.#views++;
    return view;
  }

  unpin(view: BlockView): void {
    this.#views--;
    try {
      view.release();
    } catch (err) {
      // The lease expired meanwhile (the engine released the pin itself): nothing to give back.
      if (!isTesseraError(err)) throw err;
    }
    if (this.#retired && this.#views === 0) this.close();
  }

  retire(): void {
    this.#retired = true;
    if (this.#views === 0) this.close();
  }

  /** Closes now, views or not (the link is closing). */
  close(): void {
    this.#retired = true;
    try { this.cache.close(); } catch { /* its arena is gone already */ }
  }
}

interface EnginePin { attachment: EngineAttachment; view: BlockView }

/** A read's range must lie inside its block (`lengthBytes` long). */
function checkRange(req: ReadBlockRequest, lengthBytes: number): void {
  if (req.offsetBytes + req.lengthBytes > lengthBytes) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot read block ${req.blockId}: range ${req.offsetBytes}+${req.lengthBytes} is past its length ${lengthBytes}`);
  }
}

export class RpcWorkerLink implements WorkerDataLink {
  readonly #api: WorkerServiceClient;
  readonly #opts: RpcWorkerLinkOptions;
  #shortCircuit: boolean;
  readonly #maps = new Map<string, ArrayBuffer>();
  /** The worker's block engine, attached (see the file comment). */
  #engine: EngineAttachment | undefined;
  /** The arena that could not be attached, and when to try again. */
  #engineRefused: { name: string; untilMs: number } | undefined;
  #closed = false;
  /** Streams open on this connection, below the server's limit (extra calls wait their turn). */
  readonly #slots = new Semaphore(CLIENT_MAX_STREAMS_PER_WORKER);
  /** Unary calls in flight on this connection, below the server's limit. */
  readonly #calls = new Semaphore(CLIENT_MAX_CALLS_PER_CONNECTION);

  readonly #callOptions: { deadlineMs: number };
  readonly #streamOptions: { deadlineMs: number };
  /**
   * openShortCircuit of a read ahead goes out at once: its reader copies out of mapped views
   * without yielding, so a request left for the end of the tick would wait for the copies.
   * Other opens keep the tick's batching (a reader awaiting its open lets the tick end; many
   * small files read at once share writes).
   */
  readonly #aheadOpenOptions: { deadlineMs: number; sendNow: true };

  constructor(api: WorkerServiceClient, opts: RpcWorkerLinkOptions) {
    this.#api = api;
    this.#opts = opts;
    this.#callOptions = { deadlineMs: opts.callDeadlineMs ?? CLIENT_CALL_DEADLINE_MS };
    this.#streamOptions = { deadlineMs: opts.streamDeadlineMs ?? CLIENT_BLOCK_STREAM_DEADLINE_MS };
    this.#aheadOpenOptions = { ...this.#callOptions, sendNow: true };
    // Without the native module an arena file cannot be mapped, but a worker of this thread
    // may still name its SharedArrayBuffer engine (kind 'engine'); a worker's first 'shm'
    // answer then turns short-circuit off for this link (see the mapping's failure below).
    this.#shortCircuit = opts.shortCircuit;
  }

  get workerId(): number { return this.#opts.workerId; }
  get host(): string { return this.#opts.host; }
  get address(): string { return this.#opts.address; }
  get shortCircuit(): boolean { return this.#shortCircuit; }
  /** Only short-circuit views are volatile: stream chunks are the client's (the worker sends in-process peers copies). */
  get volatileChunks(): boolean { return this.#shortCircuit; }
  get closed(): boolean { return this.#closed || this.#opts.isClosed(); }

  readBlock(req: ReadBlockRequest): AsyncIterable<Uint8Array> {
    return this.#shortCircuit && req.lengthBytes > 0 ? this.#readShortCircuit(req) : this.#readStream(req);
  }

  /**
   * A download as a plain async iterable (no generator layer: one hop per chunk on the hot
   * path). The call starts at the first next() and holds one stream slot until it ends.
   */
  #readStream(req: ReadBlockRequest): AsyncIterable<Uint8Array> {
    if (req.lengthBytes === 0) return EMPTY;
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<Uint8Array> => {
        let call: DownloadCall<unknown> | undefined;
        let it: AsyncIterator<Uint8Array> | undefined;
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          if (call) this.#slots.release();
        };
        return {
          next: async () => {
            if (finished) return { done: true, value: undefined };
            if (!call) {
              await this.#slots.acquire();
              try {
                call = this.#api.readBlock({
                  blockId: req.blockId, offsetBytes: req.offsetBytes, lengthBytes: req.lengthBytes, readType: req.readType,
                  ...(req.ufs ? { ufs: req.ufs } : {}),
                }, this.#streamOptions);
              } catch (err) {
                this.#slots.release();
                finished = true;
                throw err;
              }
              // A cancelled call rejects its result: keep it observed.
              call.result.catch(() => {});
              it = call[Symbol.asyncIterator]();
            }
            try {
              const r = await it!.next();
              if (r.done) {
                finish();
                await call.result;
              }
              return r;
            } catch (err) {
              finish();
              throw err;
            }
          },
          return: async () => {
            if (!finished && call) call.cancel();
            finish();
            return { done: true, value: undefined };
          },
        };
      },
    };
  }

  async *#readShortCircuit(req: ReadBlockRequest): AsyncGenerator<Uint8Array> {
    const pinned = this.#enginePin(req.blockId);
    if (pinned !== undefined) {
      yield* this.#fromView(req, pinned);
      return;
    }
    let r: Awaited<ReturnType<WorkerServiceClient['openShortCircuit']>>;
    try {
      r = await this.#calls.run(() => this.#api.openShortCircuit({ blockId: req.blockId, readType: req.readType }, req.ahead ? this.#aheadOpenOptions : this.#callOptions));
    } catch (err) {
      // Not cached here: the stream path can still fetch it from the UFS (req.ufs).
      if (!isTesseraError(err, ErrorCode.BLOCK_NOT_FOUND) || !req.ufs) throw err;
      yield* this.#readStream(req);
      return;
    }
    if (r.kind === 'none') {
      if (r.reason !== 'not-in-memory') this.#shortCircuit = false;
      yield* this.#readStream(req);
      return;
    }
    if (r.kind === 'engine') {
      // A worker of this very thread with a SharedArrayBuffer tier: its engine by key.
      if (this.#engine === undefined) this.#attachIsolateEngine(r.engineKey);
      const pin = this.#enginePin(req.blockId);
      if (pin !== undefined) {
        yield* this.#fromView(req, pin);
        return;
      }
      // Evicted since the answer, or the engine not found here: by stream.
      yield* this.#readStream(req);
      return;
    }
    try {
      checkRange(req, r.lengthBytes);
      if (r.engine === true && this.#engine === undefined) this.#attachEngine(r.path, r.arenaBytes);
      // Attached: this block is read under the engine's pin too, so the worker's goes back now.
      const pin = this.#enginePin(req.blockId);
      if (pin !== undefined) {
        yield* this.#fromView(req, pin);
        return;
      }
      let map = this.#maps.get(r.path);
      if (map === undefined || map.byteLength < r.arenaBytes) {
        if (map !== undefined) unmap(map);
        this.#maps.delete(r.path);
        try {
          map = mapShared(r.path, r.arenaBytes, { readOnly: true });
        } catch {
          // The arena cannot be mapped here (permissions, another mount namespace): this link
          // reads by stream from now on.
          map = undefined;
          this.#shortCircuit = false;
        }
        if (map) this.#maps.set(r.path, map);
      }
      if (map) {
        yield new Uint8Array(map, r.offsetBytes + req.offsetBytes, req.lengthBytes);
        return;
      }
    } finally {
      const pinId = r.pinId;
      this.#calls.run(() => this.#api.closeShortCircuit({ pinId }, this.#callOptions)).catch(() => {});
    }
    yield* this.#readStream(req);
  }

  /** The range of a block pinned in the engine, as one chunk; the pin goes when the consumer moves on. */
  async *#fromView(req: ReadBlockRequest, pin: EnginePin): AsyncGenerator<Uint8Array> {
    try {
      const bytes = pin.view.bytes;
      checkRange(req, bytes.byteLength);
      yield bytes.subarray(req.offsetBytes, req.offsetBytes + req.lengthBytes);
    } finally {
      pin.attachment.unpin(pin.view);
    }
  }

  /** A pin of the block in the attached engine, or undefined (not attached, not in MEM). */
  #enginePin(blockId: number): EnginePin | undefined {
    const attachment = this.#engine;
    if (attachment === undefined) return undefined;
    try {
      const view = attachment.pin(blockId);
      return view && { attachment, view };
    } catch (err) {
      if (!isTesseraError(err)) throw err;
      // CLOSED: the worker closed its arena (it stopped); LEASE_EXPIRED: this process stalled
      // past the owner lease and its pins were released. Either way this attachment is done;
      // the next open's answer attaches again. Anything else (a block held by 65,535 views of
      // this process at once): this read asks the worker.
      if (isTesseraError(err, ErrorCode.CLOSED) || isTesseraError(err, ErrorCode.LEASE_EXPIRED)) {
        this.#engine = undefined;
        attachment.retire();
      }
      return undefined;
    }
  }

  #attachEngine(path: string, arenaBytes: number): void {
    this.#attach(path, () => BlockCache.attach({ path, byteLength: arenaBytes }));
  }

  #attachIsolateEngine(key: string): void {
    const handle = isolateEngine(key);
    if (handle !== undefined) this.#attach(key, () => BlockCache.attach(handle));
  }

  /** Attaches to the engine named `name` (an arena path, or an isolate key), unless it refused lately. */
  #attach(name: string, attach: () => BlockCache): void {
    if (this.#engineRefused?.name === name && Date.now() < this.#engineRefused.untilMs) return;
    try {
      this.#engine = new EngineAttachment(attach(), name);
      this.#engineRefused = undefined;
    } catch {
      // Not allowed to open the file read-write, every owner slot taken, another version of
      // the engine: per-block opens, and another try later.
      this.#engineRefused = { name, untilMs: Date.now() + CLIENT_ENGINE_RETRY_MS };
    }
  }

  /** The engine this link pins blocks in by itself, when it is attached: its arena file, or its isolate key (tests, benchmarks). */
  get enginePath(): string | undefined { return this.#engine?.name; }

  async writeBlock(req: WriteBlockRequest): Promise<BlockWriter> {
    await this.#slots.acquire();
    let call: UploadCall<unknown>;
    try {
      call = this.#api.writeBlock({
        blockId: req.blockId, reserveBytes: req.reserveBytes, writeType: req.writeType,
        ...(req.pinned ? { pinned: true } : {}), ...(req.ufs ? { ufs: req.ufs } : {}),
      });
    } catch (err) {
      this.#slots.release();
      throw err;
    }
    let open = true;
    const done = () => { if (open) { open = false; this.#slots.release(); } };
    // A failure before commit surfaces through write()/end(); keep the promise observed.
    call.result.then(done, done);
    return {
      write: (chunk) => call.write(chunk),
      commit: async () => { try { await call.end(); } finally { done(); } },
      abort: async () => { call.cancel(); done(); },
    };
  }

  async completeUfsFile(req: { ufsUri: string; ufsPath: string; abort?: boolean }): Promise<void> {
    await this.#calls.run(() => this.#api.completeUfsFile(req, this.#callOptions));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#engine?.close();
    this.#engine = undefined;
    for (const m of this.#maps.values()) {
      try { unmap(m); } catch { /* already detached */ }
    }
    this.#maps.clear();
    await this.#opts.close();
  }
}
