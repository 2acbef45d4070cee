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
 */
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';
import { mapShared, nativeAvailable, unmap } from '../native/index.js';
import type { DownloadCall, ServiceClient, UploadCall } from '../transports/service.js';
import { CLIENT_BLOCK_STREAM_DEADLINE_MS, CLIENT_CALL_DEADLINE_MS, CLIENT_MAX_CALLS_PER_CONNECTION, CLIENT_MAX_STREAMS_PER_WORKER } from '../core/constants.js';
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

export class RpcWorkerLink implements WorkerDataLink {
  readonly #api: WorkerServiceClient;
  readonly #opts: RpcWorkerLinkOptions;
  #shortCircuit: boolean;
  readonly #maps = new Map<string, ArrayBuffer>();
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
    this.#shortCircuit = opts.shortCircuit && nativeAvailable();
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
    try {
      if (req.offsetBytes + req.lengthBytes > r.lengthBytes) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot read block ${req.blockId}: range ${req.offsetBytes}+${req.lengthBytes} is past its length ${r.lengthBytes}`);
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
    for (const m of this.#maps.values()) {
      try { unmap(m); } catch { /* already detached */ }
    }
    this.#maps.clear();
    await this.#opts.close();
  }
}
