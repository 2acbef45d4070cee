/**
 * FileSystem: the client API a user meets. Metadata goes to the master (with the retry rule
 * of master-link.ts: calls survive a master restart); bytes go to and from workers through
 * WorkerDataLinks, chosen by the pure policies of location-policy.ts.
 *
 * Read path, per block range (FileInStream._rangeChunks):
 *   1. the copies on this host first (short-circuit where the worker's MEM is shared memory),
 *      then remote copies, rotated so that readers spread over them;
 *   2. for a persisted file, a worker that misses the block reads it from the UFS (every
 *      request carries the UFS location); when no copy is left, any live worker does;
 *   3. a source that fails mid-range is marked failed and the read resumes at the first byte
 *      not yet delivered, from the next source;
 *   4. when nothing reachable is known, the locations are asked again from the master, with
 *      back-off (a worker may be re-registering after a master restart).
 * Attempts are bounded (CLIENT_MAX_READ_ATTEMPTS plus the number of copies, and as many
 * refreshes); the caller sees an error only when the data is unreachable, and then as
 * TESSERA_ERR_BLOCK_UNAVAILABLE with the last cause. Sequential reads keep one range read
 * (stream or short-circuit pin) open for the rest of a block; it is given back when the
 * reader moves elsewhere, closes, or idles for CLIENT_CURSOR_MAX_AGE_MS.
 *
 * Read-ahead: a sequential reader (read() without a position, chunks(), a read() spanning
 * whole blocks) opens the next block's range read, and asks for its first chunk, once the
 * rest of the current block is within one stream credit window (DEFAULT_STREAM_WINDOW_BYTES):
 * the request's round trip and the worker's first window then overlap the last window of
 * this block instead of stalling the reader at every block boundary. Not earlier: two streams
 * sharing the connection for most of a 64 MiB block measured slower than one (and a reader
 * that stops early would waste more). At most one block is read ahead; it is dropped when
 * the reader seeks elsewhere, closes, or idles.
 *
 * Write path (FileOutStream): files are write-once and append-only, as in Alluxio: bytes go
 * at the end of what was written, and there is no write at a position (a position given to
 * write() fails with TESSERA_ERR_INVALID_ARGUMENT); a file is rewritten by creating it again
 * with `overwrite`. A file's blocks are written one after the other, each to the
 * first worker of the policy's ordering that accepts it (block ids are derived:
 * blockIdOf(fileId, index)); CACHE_THROUGH and THROUGH files keep one worker for all their
 * blocks (its UFS writer is per connection) and completeUfsFile before completeFile. The first
 * bytes of a block are held until a chunk's worth arrives, so a small file reserves only its
 * size on the worker. A worker failing in the middle of a block fails the write (the bytes of
 * a block are not kept client-side to replay); the file stays incomplete and the error has
 * its code.
 */
import { createHash } from 'node:crypto';
import { setImmediate as setImmediateP } from 'node:timers/promises';
import { Readable, Writable } from 'node:stream';
import { hostname, userInfo } from 'node:os';
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';
import { assert } from '../core/assert.js';
import { DEFAULT_STREAM_WINDOW_BYTES, CLIENT_VIEW_YIELD_BYTES, CLIENT_SUSPECT_MS, CLIENT_CURSOR_MAX_AGE_MS, CLIENT_WORKER_LIST_TTL_MS, CLIENT_MAX_READ_ATTEMPTS, CLIENT_MAX_READ_FILE_BYTES, CLIENT_WRITE_CHUNK_BYTES, DEFAULT_BLOCK_SIZE_BYTES, CLI_MAX_TREE_DEPTH } from '../core/constants.js';
import { blockIdOf, type FileInfo, type BlockLocationInfo, type MountPointInfo, type WorkerLocation } from '../transports/protocol/master.js';
import {
  normalizePath, parseReadType, parseSizeBytes, parseTtlAction, parseWriteType, writeTypeCaches,
  writeTypePersistsSync, type ReadType, type WriteType,
} from './options.js';
import { orderSourcesForRead, orderWorkersForWrite, parseLocationPolicy, type LocationPolicySpec } from './location-policy.js';
import { asTesseraError, backoffMs, callWithRetry, isConnectionError, sleep, type MasterLink, type MasterRequest, type MasterResponse } from './master-link.js';
import type { BlockWriter, UfsBlockSource, WorkerDataLink } from './worker-link.js';
import type { CreateFileOptions, FileStatus, OpenFileOptions, SetAttributeOptions, WorkerInfo, MasterInfo } from './types.js';
import type { MasterMethod } from '../transports/protocol/master.js';

export interface FileSystemOptions {
  master: MasterLink;
  /** Opens a data link to a worker (short-circuit when it can). */
  connectWorker(w: { workerId: number; address: string; hostname: string }): Promise<WorkerDataLink>;
  /** Host names under which workers on this host register; default: os.hostname(), 127.0.0.1, localhost. */
  clientHosts?: string[];
  defaultReadType?: ReadType;
  defaultWriteType?: WriteType;
  defaultBlockSizeBytes?: number;
  defaultLocationPolicy?: LocationPolicySpec;
  /** Called once by close() after the links are closed (e.g. to stop an embedded cluster). */
  onClose?: () => Promise<void>;
  /** The address the client was given, for messages. */
  masterAddress?: string;
  /** Owner and group of the files and directories this client creates (default: the OS user). */
  user?: string;
  group?: string;
}

/** The OS user name, and as group the same name (Node does not expose group names). */
function currentUser(): { user: string; group: string } {
  try {
    const u = userInfo().username;
    return { user: u, group: u };
  } catch {
    return { user: '', group: '' };
  }
}

export interface LoadOptions { onProgress?: (doneBytes: number, totalBytes: number) => void }

export class FileSystem {
  readonly #opts: FileSystemOptions;
  readonly #clientHosts: string[];
  readonly #links = new Map<number, Promise<WorkerDataLink>>();
  #cursor = 0;
  #closed = false;
  #mounts: MountPointInfo[] | undefined;
  #workerList: { atMs: number; workers: WorkerInfo[] } | undefined;
  readonly #suspects = new Map<number, number>();
  readonly #user: string;
  readonly #group: string;

  constructor(opts: FileSystemOptions) {
    this.#opts = opts;
    const who = currentUser();
    this.#user = opts.user ?? who.user;
    this.#group = opts.group ?? who.group;
    this.#clientHosts = opts.clientHosts ?? [hostname(), '127.0.0.1', 'localhost', '::1'];
  }

  get masterAddress(): string { return this.#opts.masterAddress ?? ''; }
  get closed(): boolean { return this.#closed; }

  // ---- metadata --------------------------------------------------------------------------

  /** @internal */
  async _call<M extends MasterMethod>(method: M, req: MasterRequest<M>, state?: { retried: boolean }): Promise<MasterResponse<M>> {
    this.#checkOpen();
    return callWithRetry(this.#opts.master, method, req, state);
  }

  async getStatus(path: string): Promise<FileStatus> {
    return this._call('getStatus', { path: normalizePath(path) });
  }

  async exists(path: string): Promise<boolean> {
    return this._call('exists', { path: normalizePath(path) });
  }

  /** Every entry of a directory (or the file itself for a file), sorted by name; `recursive` walks the tree. */
  async listStatus(path: string, opts: { recursive?: boolean } = {}): Promise<FileStatus[]> {
    const p = normalizePath(path);
    const st = await this.getStatus(p);
    if (!st.isDirectory) return [st];
    const out: FileStatus[] = [];
    await this.#listInto(p, opts.recursive === true, out, 0);
    return out;
  }

  async #listInto(dir: string, recursive: boolean, out: FileStatus[], depth: number): Promise<void> {
    if (depth > CLI_MAX_TREE_DEPTH) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot list ${dir}: deeper than CLI_MAX_TREE_DEPTH ${CLI_MAX_TREE_DEPTH}`);
    }
    let startAfter: string | undefined;
    for (;;) {
      const page = await this._call('listStatus', startAfter === undefined ? { path: dir } : { path: dir, startAfter });
      for (const e of page.entries) {
        out.push(e);
        if (recursive && e.isDirectory) await this.#listInto(e.path, true, out, depth + 1);
      }
      if (!page.truncated || page.entries.length === 0) break;
      startAfter = page.entries[page.entries.length - 1]!.name;
    }
  }

  async mkdir(path: string, opts: { recursive?: boolean; allowExists?: boolean; mode?: number } = {}): Promise<FileStatus> {
    const state = { retried: false };
    const req = {
      path: normalizePath(path), recursive: opts.recursive ?? false, allowExists: opts.allowExists ?? false, owner: this.#user, group: this.#group,
      ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
    };
    try {
      return await this._call('mkdir', req, state);
    } catch (err) {
      if (state.retried && isTesseraError(err, ErrorCode.FILE_ALREADY_EXISTS)) return this.getStatus(req.path);
      throw err;
    }
  }

  async rename(src: string, dst: string): Promise<void> {
    const state = { retried: false };
    const req = { src: normalizePath(src, 'src'), dst: normalizePath(dst, 'dst') };
    try {
      await this._call('rename', req, state);
    } catch (err) {
      // A retried rename whose first attempt landed: the source is gone and the destination exists.
      if (state.retried && isTesseraError(err, ErrorCode.FILE_NOT_FOUND) && (await this.exists(req.dst))) return;
      throw err;
    }
  }

  async delete(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    const state = { retried: false };
    try {
      await this._call('delete', { path: normalizePath(path), recursive: opts.recursive ?? false }, state);
    } catch (err) {
      if (state.retried && isTesseraError(err, ErrorCode.FILE_NOT_FOUND)) return;
      throw err;
    }
  }

  async setAttribute(path: string, attrs: SetAttributeOptions): Promise<FileStatus> {
    const req: MasterRequest<'setAttribute'> = { path: normalizePath(path) };
    if (attrs.pinned !== undefined) req.pinned = attrs.pinned;
    if (attrs.ttlMs !== undefined) req.ttlMs = attrs.ttlMs === null ? -1 : attrs.ttlMs;
    if (attrs.ttlAction !== undefined) req.ttlAction = parseTtlAction(attrs.ttlAction);
    if (attrs.mode !== undefined) req.mode = attrs.mode;
    if (attrs.owner !== undefined) req.owner = attrs.owner;
    if (attrs.group !== undefined) req.group = attrs.group;
    if (attrs.recursive !== undefined) req.recursive = attrs.recursive;
    return this._call('setAttribute', req);
  }

  async mount(path: string, ufsUri: string, opts: { readOnly?: boolean } = {}): Promise<MountPointInfo> {
    this.#mounts = undefined;
    return this._call('mount', { path: normalizePath(path), ufsUri, readOnly: opts.readOnly ?? false });
  }

  async unmount(path: string): Promise<void> {
    this.#mounts = undefined;
    await this._call('unmount', { path: normalizePath(path) });
  }

  async getMountTable(): Promise<MountPointInfo[]> {
    this.#mounts = await this._call('getMountTable', {});
    return this.#mounts;
  }

  /** Drops the cached blocks of a persisted file or tree (the data stays in the UFS). */
  async free(path: string, opts: { recursive?: boolean; forced?: boolean } = {}): Promise<{ blockCount: number }> {
    return this._call('free', { path: normalizePath(path), recursive: opts.recursive ?? true, forced: opts.forced ?? false });
  }

  /** Marks a file for persistence; with `wait`, resolves once it is PERSISTED (polling, bounded by `timeoutMs`). */
  async persist(path: string, opts: { wait?: boolean; timeoutMs?: number } = {}): Promise<FileStatus> {
    const p = normalizePath(path);
    let st = await this._call('persist', { path: p });
    if (!opts.wait) return st;
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let delayMs = 20;
    while (st.persistenceState !== 'PERSISTED') {
      if (st.persistenceState === 'LOST') throw new TesseraError(ErrorCode.UFS, `Cannot persist ${p}: its data is lost`);
      if (Date.now() > deadline) throw new TesseraError(ErrorCode.DEADLINE_EXCEEDED, `Cannot persist ${p}: still ${st.persistenceState} after ${opts.timeoutMs ?? 60_000} ms`);
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(500, delayMs * 2);
      st = await this.getStatus(p);
    }
    return st;
  }

  /**
   * Brings a file (or every file of a tree) into worker memory by reading, through the
   * client, each block that no worker holds yet. Resolves when everything is cached.
   */
  async load(path: string, opts: LoadOptions = {}): Promise<{ fileCount: number; loadedBytes: number }> {
    const files = (await this.listStatus(path, { recursive: true })).filter((s) => !s.isDirectory);
    const total = files.reduce((n, f) => n + f.lengthBytes, 0);
    let done = 0;
    let loaded = 0;
    for (const f of files) {
      const input = await this.openFile(f.path, { readType: 'CACHE_PROMOTE' });
      try {
        for (let i = 0; i < input._blocks.length; i++) {
          const b = input._blocks[i]!;
          if (b.locations.length === 0) {
            await input._readRange(i, 0, b.lengthBytes, () => {});
            loaded += b.lengthBytes;
          }
          done += b.lengthBytes;
          opts.onProgress?.(done, total);
        }
      } finally {
        await input.close();
      }
    }
    return { fileCount: files.length, loadedBytes: loaded };
  }

  async getBlockLocations(path: string): Promise<{ file: FileStatus; blocks: BlockLocationInfo[] }> {
    return this._call('getBlockLocations', { path: normalizePath(path) });
  }

  async getWorkers(): Promise<WorkerInfo[]> {
    const workers = await this._call('getWorkers', {});
    this.#workerList = { atMs: Date.now(), workers };
    return workers;
  }

  async getInfo(): Promise<MasterInfo> {
    return this._call('getInfo', {});
  }

  // ---- data ------------------------------------------------------------------------------

  async createFile(path: string, opts: CreateFileOptions = {}): Promise<FileOutStream> {
    const p = normalizePath(path);
    const writeType = opts.writeType !== undefined ? parseWriteType(opts.writeType) : this.#opts.defaultWriteType ?? 'MUST_CACHE';
    const blockSizeBytes = opts.blockSize !== undefined
      ? parseSizeBytes(opts.blockSize, 'blockSize', { min: 1 })
      : this.#opts.defaultBlockSizeBytes ?? DEFAULT_BLOCK_SIZE_BYTES;
    const policy = opts.locationPolicy !== undefined ? parseLocationPolicy(opts.locationPolicy) : this.#opts.defaultLocationPolicy ?? { policy: 'LocalFirst' as const };
    if (opts.overwrite === true && (await this.exists(p))) await this.delete(p);
    const req: MasterRequest<'createFile'> = { path: p, recursive: opts.recursive ?? true, blockSizeBytes, owner: this.#user, group: this.#group };
    if (writeType === 'ASYNC_THROUGH') req.persistenceState = 'TO_BE_PERSISTED';
    if (opts.mode !== undefined) req.mode = opts.mode;
    if (opts.pinned !== undefined) req.pinned = opts.pinned;
    if (opts.ttlMs !== undefined) req.ttlMs = opts.ttlMs;
    if (opts.ttlAction !== undefined) req.ttlAction = parseTtlAction(opts.ttlAction);
    const state = { retried: false };
    let info: FileInfo;
    try {
      info = await this._call('createFile', req, state);
    } catch (err) {
      // The first attempt may have landed before the connection dropped.
      if (!(state.retried && isTesseraError(err, ErrorCode.FILE_ALREADY_EXISTS))) throw err;
      info = await this.getStatus(p);
      if (info.isDirectory || info.completed || info.lengthBytes !== 0) throw err;
    }
    let ufs: { ufsUri: string; ufsPath: string } | undefined;
    if (writeTypePersistsSync(writeType)) {
      ufs = await this._ufsOf(info);
      if (!ufs) {
        await this.delete(p).catch(() => {});
        throw new TesseraError(ErrorCode.NOT_MOUNTED, `Cannot create ${p} with ${writeType}: the path is not under a mounted UFS`);
      }
    }
    return new FileOutStream(this, info, writeType, policy, ufs, opts.expectedLengthBytes);
  }

  async openFile(path: string, opts: OpenFileOptions = {}): Promise<FileInStream> {
    const p = normalizePath(path);
    const readType = opts.readType !== undefined ? parseReadType(opts.readType) : this.#opts.defaultReadType ?? 'CACHE_PROMOTE';
    const { file, blocks } = await this.getBlockLocations(p);
    if (file.isDirectory) throw new TesseraError(ErrorCode.IS_A_DIRECTORY, `Cannot open ${p}: it is a directory`);
    if (!file.completed) throw new TesseraError(ErrorCode.FILE_INCOMPLETE, `Cannot open ${p}: the file is still being written`);
    const ufs = file.persistenceState === 'PERSISTED' ? await this._ufsOf(file) : undefined;
    return new FileInStream(this, file, blocks, readType, ufs);
  }

  async readFile(path: string, opts: OpenFileOptions = {}): Promise<Buffer> {
    const input = await this.openFile(path, opts);
    try {
      if (input.lengthBytes > CLIENT_MAX_READ_FILE_BYTES) {
        throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot read ${path} into one Buffer: ${input.lengthBytes} bytes is more than CLIENT_MAX_READ_FILE_BYTES ${CLIENT_MAX_READ_FILE_BYTES}; use createReadStream`);
      }
      const buf = Buffer.allocUnsafe(input.lengthBytes);
      let off = 0;
      while (off < buf.length) {
        const n = await input.read(buf.subarray(off), off);
        assert(n > 0, `readFile made no progress at ${off} of ${buf.length}`);
        off += n;
      }
      return buf;
    } finally {
      await input.close();
    }
  }

  async writeFile(path: string, data: Uint8Array | string, opts: CreateFileOptions = {}): Promise<FileStatus> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const out = await this.createFile(path, { expectedLengthBytes: bytes.length, ...opts });
    try {
      await out.write(bytes);
      return await out.close();
    } catch (err) {
      await out.cancel().catch(() => {});
      throw err;
    }
  }

  /**
   * A Node Readable of a file's bytes ([start, end), end exclusive, as in the client's other
   * ranges). Opening happens on the first read; errors arrive as 'error' events with codes.
   */
  createReadStream(path: string, opts: OpenFileOptions & { start?: number; end?: number; highWaterMark?: number } = {}): Readable {
    const fs = this;
    async function* gen(): AsyncGenerator<Uint8Array> {
      const input = await fs.openFile(path, opts);
      try {
        yield* input.chunks(opts.start ?? 0, opts.end ?? input.lengthBytes);
      } finally {
        await input.close();
      }
    }
    return Readable.from(gen(), { objectMode: false, highWaterMark: opts.highWaterMark ?? CLIENT_WRITE_CHUNK_BYTES });
  }

  /**
   * A Node Writable that creates the file on first use and completes it on end(); destroy(err)
   * cancels it. It appends from byte 0: unlike node:fs there is no `start` (files are write-once).
   */
  createWriteStream(path: string, opts: CreateFileOptions & { highWaterMark?: number } = {}): Writable {
    const start = (opts as { start?: unknown }).start;
    if (start !== undefined && start !== 0) throw positionalWriteError(normalizePath(path), start, 0);
    let out: FileOutStream | undefined;
    let completed = false;
    return new Writable({
      highWaterMark: opts.highWaterMark ?? CLIENT_WRITE_CHUNK_BYTES,
      construct: (cb) => { this.createFile(path, opts).then((o) => { out = o; cb(); }, cb); },
      write: (chunk: Buffer, _enc, cb) => { out!.write(chunk).then(() => cb(), cb); },
      writev: (chunks, cb) => {
        const bufs = chunks.map((c) => c.chunk as Buffer);
        out!.write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs)).then(() => cb(), cb);
      },
      final: (cb) => { out!.close().then(() => { completed = true; cb(); }, cb); },
      // Destroyed before end() completed the file (an error, or destroy() without one): the
      // incomplete file is removed rather than left behind.
      destroy: (err, cb) => {
        if (out && !completed) out.cancel().then(() => cb(err), () => cb(err));
        else cb(err);
      },
    });
  }

  /** SHA-256 (or MD5) of a file's bytes, read through the client. */
  async checksum(path: string, algorithm: 'sha256' | 'md5' = 'sha256'): Promise<string> {
    const h = createHash(algorithm);
    const input = await this.openFile(path, { readType: 'CACHE' });
    try {
      for await (const chunk of input.chunks()) h.update(chunk);
    } finally {
      await input.close();
    }
    return h.digest('hex');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const links = [...this.#links.values()];
    this.#links.clear();
    await Promise.allSettled(links.map(async (l) => (await l).close()));
    await this.#opts.master.close().catch(() => {});
    await this.#opts.onClose?.();
  }

  // ---- internals used by the streams -----------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new TesseraError(ErrorCode.CLOSED, 'FileSystem is closed');
  }

  /** @internal The client's host names. */
  get _clientHosts(): readonly string[] { return this.#clientHosts; }

  /** @internal A cursor for round-robin decisions. */
  _nextCursor(): number { return this.#cursor++; }

  /** @internal A link to a worker, opened once and shared; a closed link is reopened. */
  async _link(w: { workerId: number; address: string; hostname: string }): Promise<WorkerDataLink> {
    this.#checkOpen();
    const existing = this.#links.get(w.workerId);
    if (existing) {
      const l = await existing.catch(() => undefined);
      if (l && !l.closed && l.address === w.address) return l;
      this.#links.delete(w.workerId);
    }
    const p = this.#opts.connectWorker(w);
    this.#links.set(w.workerId, p);
    p.catch(() => { if (this.#links.get(w.workerId) === p) this.#links.delete(w.workerId); });
    return p;
  }

  /** @internal Marks a worker that failed a read; reads avoid it for CLIENT_SUSPECT_MS. */
  _suspect(workerId: number): void {
    this.#suspects.set(workerId, Date.now() + CLIENT_SUSPECT_MS);
  }

  /** @internal Workers that failed a read within CLIENT_SUSPECT_MS. */
  _suspects(): Set<number> {
    const now = Date.now();
    const out = new Set<number>();
    for (const [id, until] of this.#suspects) {
      if (until > now) out.add(id);
      else this.#suspects.delete(id);
    }
    return out;
  }

  /** @internal Forgets a link that failed, so the next use reconnects. */
  _dropLink(workerId: number, link: WorkerDataLink): void {
    void this.#links.get(workerId)?.then((l) => {
      if (l === link) {
        this.#links.delete(workerId);
        void l.close().catch(() => {});
      }
    }, () => {});
  }

  /** @internal Where a file lives in its UFS, or undefined when it is not under a mount. */
  async _ufsOf(file: FileInfo): Promise<{ ufsUri: string; ufsPath: string } | undefined> {
    const resolve = (mounts: MountPointInfo[]) => {
      let best: MountPointInfo | undefined;
      for (const m of mounts) {
        const under = m.path === '/' || file.path === m.path || file.path.startsWith(m.path + '/');
        if (under && (best === undefined || m.path.length > best.path.length)) best = m;
      }
      if (!best) return undefined;
      const rel = file.path === best.path ? '' : best.path === '/' ? file.path.slice(1) : file.path.slice(best.path.length + 1);
      return { ufsUri: best.ufsUri, ufsPath: rel };
    };
    // The mount table is cached; another client may have mounted or unmounted since: ask
    // again when the cache finds no mount or disagrees with the master's UFS path.
    let r = this.#mounts ? resolve(this.#mounts) : undefined;
    if (!r || (file.ufsPath !== undefined && file.ufsPath !== r.ufsPath)) r = resolve(await this.getMountTable());
    if (!r) return undefined;
    return { ufsUri: r.ufsUri, ufsPath: file.ufsPath ?? r.ufsPath };
  }


  /** @internal Live workers, ordered for writing a block of `blockSizeBytes`. */
  async _orderWorkersForWrite(policy: LocationPolicySpec, blockSizeBytes: number): Promise<WorkerLocation[]> {
    // The worker list is reused for CLIENT_WORKER_LIST_TTL_MS: one master call per file is too many for small files.
    const cached = this.#workerList;
    const fresh = !(cached && Date.now() - cached.atMs < CLIENT_WORKER_LIST_TTL_MS);
    let workers = (fresh ? await this.getWorkers() : cached.workers).filter((w) => w.state === 'LIVE');
    const order = () => orderWorkersForWrite(policy.policy, workers.map((w) => ({
      id: w.workerId, host: w.hostname, capacityBytes: w.capacityBytes, usedBytes: w.usedBytes,
    })), { clientHosts: this.#clientHosts, blockSizeBytes, cursor: this._nextCursor(), ...(policy.host !== undefined ? { host: policy.host } : {}) });
    let ordered = order();
    if (ordered.length === 0 && !fresh) {
      // A worker that joined since the list was taken may be the one asked for.
      workers = (await this.getWorkers()).filter((w) => w.state === 'LIVE');
      ordered = order();
    }
    const byId = new Map(workers.map((w) => [w.workerId, w]));
    return ordered.map((c) => {
      const w = byId.get(c.id)!;
      return { workerId: w.workerId, address: w.address, hostname: w.hostname, tier: 'MEM' };
    });
  }
}

/** The error of a write at a position: Tessera files are append-only (see the top of the file). */
function positionalWriteError(path: string, position: unknown, bytesWritten: number): TesseraError {
  return new TesseraError(ErrorCode.INVALID_ARGUMENT,
    `Cannot write ${path} at position ${String(position)}: files are write-once and append-only, write(data) appends at ${bytesWritten} (to change a file, create it again with overwrite: true)`);
}

/** A file being written: append-only (no write at a position); close() seals the file. */
export class FileOutStream {
  readonly #fs: FileSystem;
  readonly #info: FileInfo;
  readonly #writeType: WriteType;
  readonly #policy: LocationPolicySpec;
  readonly #ufs: { ufsUri: string; ufsPath: string } | undefined;
  readonly #blockSizeBytes: number;
  #bytesWritten = 0;
  #blockIndex = 0;
  #blockFilled = 0;
  #writer: BlockWriter | undefined;
  /** Bytes of the next block not yet sent (no writer open yet). */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  readonly #expectedLengthBytes: number | undefined;
  #workers: WorkerLocation[] | undefined;
  /** CACHE_THROUGH / THROUGH: every block goes to this one worker (its UFS writer is per connection). */
  #throughLink: WorkerDataLink | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #state: 'open' | 'closed' | 'failed' = 'open';

  /** @internal */
  constructor(fs: FileSystem, info: FileInfo, writeType: WriteType, policy: LocationPolicySpec, ufs: { ufsUri: string; ufsPath: string } | undefined, expectedLengthBytes?: number) {
    this.#fs = fs;
    this.#info = info;
    this.#expectedLengthBytes = expectedLengthBytes;
    this.#writeType = writeType;
    this.#policy = policy;
    this.#ufs = ufs;
    this.#blockSizeBytes = info.blockSizeBytes;
    assert(this.#blockSizeBytes > 0, 'a file has a positive block size');
  }

  get path(): string { return this.#info.path; }
  get bytesWritten(): number { return this.#bytesWritten; }
  get writeType(): WriteType { return this.#writeType; }

  /**
   * Appends bytes at the end of what was written (files are write-once and append-only, as in
   * Alluxio: there is no write at a position; a position passed from JavaScript fails with
   * TESSERA_ERR_INVALID_ARGUMENT rather than being ignored). Calls are queued; the bytes may
   * be reused once the promise resolves.
   */
  write(data: Uint8Array): Promise<void> {
    if (arguments.length > 1 && arguments[1] !== undefined) return Promise.reject(positionalWriteError(this.#info.path, arguments[1], this.#bytesWritten));
    return this.#enqueue(() => this.#write(data));
  }

  /** Flushes the last block and completes the file; resolves with its status. */
  close(): Promise<FileStatus> {
    return this.#enqueue(async () => {
      if (this.#state === 'closed') return this.#fs.getStatus(this.#info.path);
      this.#checkOpen();
      try {
        if (!this.#writer && this.#pendingBytes > 0) {
          await this.#openBlock(this.#pendingBytes);
          await this.#flushPending();
        }
        if (this.#writer) await this.#commitBlock();
        const persisted = writeTypePersistsSync(this.#writeType);
        if (persisted) {
          // The worker that took the blocks makes the UFS file visible (an empty file: any worker).
          const link = this.#throughLink ?? (await this.#firstWorkerLink());
          await link.completeUfsFile({ ufsUri: this.#ufs!.ufsUri, ufsPath: this.#ufs!.ufsPath });
        }
        const st = await this.#fs._call('completeFile', { path: this.#info.path, lengthBytes: this.#bytesWritten, ...(persisted ? { persisted } : {}) });
        this.#state = 'closed';
        return st;
      } catch (err) {
        await this.#fail();
        throw err;
      }
    });
  }

  /** Abandons the file: aborts the block in flight and deletes the incomplete file. */
  cancel(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#state === 'closed') return;
      await this.#fail();
      if (this.#throughLink && this.#ufs) await this.#throughLink.completeUfsFile({ ...this.#ufs, abort: true }).catch(() => {});
      await this.#fs.delete(this.#info.path).catch(() => {});
    });
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn);
    this.#chain = p.catch(() => {});
    return p;
  }

  #checkOpen(): void {
    if (this.#state === 'closed') throw new TesseraError(ErrorCode.CLOSED, `Cannot write ${this.#info.path}: the stream is closed`);
    if (this.#state === 'failed') throw new TesseraError(ErrorCode.CLOSED, `Cannot write ${this.#info.path}: an earlier write failed`);
  }

  async #write(data: Uint8Array): Promise<void> {
    this.#checkOpen();
    try {
      let off = 0;
      while (off < data.length) {
        if (!this.#writer) {
          // The first bytes of a block wait here until there is a chunk's worth (or close()):
          // a small file then reserves exactly its size on the worker, not a whole block.
          const rest = data.length - off;
          if (this.#pendingBytes + rest < Math.min(CLIENT_WRITE_CHUNK_BYTES, this.#blockSizeBytes)) {
            this.#pending.push(data.slice(off));
            this.#pendingBytes += rest;
            this.#bytesWritten += rest;
            return;
          }
          await this.#openBlock(this.#reserveBytes());
          await this.#flushPending();
        }
        const n = Math.min(data.length - off, this.#blockSizeBytes - this.#blockFilled);
        await this.#writer!.write(n === data.length ? data : data.subarray(off, off + n));
        off += n;
        this.#blockFilled += n;
        this.#bytesWritten += n;
        if (this.#blockFilled === this.#blockSizeBytes) await this.#commitBlock();
      }
    } catch (err) {
      await this.#fail();
      throw asTesseraError(err, ErrorCode.REMOTE, `Cannot write ${this.#info.path}`);
    }
  }

  async #fail(): Promise<void> {
    this.#state = 'failed';
    this.#pending = [];
    const w = this.#writer;
    this.#writer = undefined;
    if (w) await w.abort().catch(() => {});
  }

  /** Room to ask for the block being opened: exact when the file's length is known, else a whole block. */
  #reserveBytes(): number {
    const hint = this.#expectedLengthBytes;
    if (hint === undefined) return this.#blockSizeBytes;
    const left = hint - this.#blockIndex * this.#blockSizeBytes;
    return Math.min(this.#blockSizeBytes, Math.max(left, this.#pendingBytes, 1));
  }

  async #flushPending(): Promise<void> {
    const parts = this.#pending;
    this.#pending = [];
    for (const p of parts) await this.#writer!.write(p);
    this.#blockFilled = this.#pendingBytes;
    this.#pendingBytes = 0;
  }

  async #openBlock(reserveBytes: number): Promise<void> {
    const blockId = blockIdOf(this.#info.fileId, this.#blockIndex);
    const req = {
      blockId, reserveBytes, writeType: this.#writeType,
      ...(this.#ufs ? { ufs: { ...this.#ufs, blockOffsetBytes: this.#blockIndex * this.#blockSizeBytes, blockLengthBytes: this.#blockSizeBytes } } : {}),
      ...(this.#info.pinned ? { pinned: true } : {}),
    };
    if (this.#throughLink) {
      this.#writer = await this.#throughLink.writeBlock(req);
      this.#blockFilled = 0;
      return;
    }
    if (this.#workers === undefined || this.#policy.policy === 'RoundRobin') {
      this.#workers = await this.#fs._orderWorkersForWrite(this.#policy, this.#blockSizeBytes);
    }
    if (this.#workers.length === 0) {
      throw new TesseraError(ErrorCode.NO_WORKER, `Cannot write ${this.#info.path}: no live worker${this.#policy.host ? ` on host ${this.#policy.host}` : ''}`);
    }
    let lastErr: unknown;
    for (const w of this.#workers) {
      let link: WorkerDataLink | undefined;
      try {
        link = await this.#fs._link(w);
        this.#writer = await link.writeBlock(req);
        if (this.#ufs) this.#throughLink = link;
        this.#blockFilled = 0;
        return;
      } catch (err) {
        lastErr = err;
        if (link && (link.closed || isConnectionError(err))) this.#fs._dropLink(w.workerId, link);
      }
    }
    throw asTesseraError(lastErr, ErrorCode.NO_WORKER, `Cannot write block ${this.#blockIndex} of ${this.#info.path}: no worker accepted it`);
  }

  async #firstWorkerLink(): Promise<WorkerDataLink> {
    const workers = await this.#fs._orderWorkersForWrite(this.#policy, this.#blockSizeBytes);
    if (workers.length === 0) throw new TesseraError(ErrorCode.NO_WORKER, `Cannot write ${this.#info.path}: no live worker`);
    return this.#fs._link(workers[0]!);
  }

  async #commitBlock(): Promise<void> {
    const w = this.#writer!;
    this.#writer = undefined;
    await w.commit();
    this.#blockIndex++;
    this.#blockFilled = 0;
  }

  /** @internal Whether the data path caches (for tests and the CLI's messages). */
  get caches(): boolean { return writeTypeCaches(this.#writeType); }
}

const noop = (): void => {};

/** Whether a sequential reader with `leftBytes` of its block to go should open the next block now (see the top of the file). */
function readAheadDue(leftBytes: number): boolean {
  return leftBytes <= DEFAULT_STREAM_WINDOW_BYTES;
}

/**
 * One block range being read (FileInStream._rangeChunks), possibly opened ahead of its reader:
 * start() asks for the first chunk right away, and next() hands that answer over first.
 */
class RangeRead {
  readonly bi: number;
  /** File offset of the range's first byte. */
  readonly startBytes: number;
  readonly #gen: AsyncGenerator<Uint8Array>;
  #first: Promise<IteratorResult<Uint8Array>> | undefined;

  constructor(bi: number, startBytes: number, gen: AsyncGenerator<Uint8Array>) {
    this.bi = bi;
    this.startBytes = startBytes;
    this.#gen = gen;
  }

  /** Starts the read now (the request goes out; the first chunk is kept for next()). */
  start(): this {
    if (this.#first === undefined) {
      this.#first = this.#gen.next();
      this.#first.catch(noop); // observed here; next() hands the same outcome to the reader
    }
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const first = this.#first;
    if (first === undefined) return this.#gen.next();
    this.#first = undefined;
    return first;
  }

  /** Gives the range back (stream cancelled, short-circuit pin released). */
  async close(): Promise<void> {
    this.#first = undefined;
    await this.#gen.return(undefined).catch(noop);
  }

  /**
   * close() without waiting: a range read ahead may still wait for its first chunk (up to a
   * stream deadline on a hung worker); its generator finishes when that chunk arrives.
   */
  drop(): void {
    void this.close();
  }
}

/** A completed file opened for reading: positional reads, or sequential ones from `position`. */
export class FileInStream {
  readonly #fs: FileSystem;
  readonly #info: FileInfo;
  #blocks: BlockLocationInfo[];
  readonly #readType: ReadType;
  readonly #ufs: { ufsUri: string; ufsPath: string } | undefined;
  #position = 0;
  #closed = false;
  #readChain: Promise<unknown> = Promise.resolve();
  /** Reads (and idle releases) queued on #readChain and not finished. */
  #queued = 0;
  /** An open range read of the rest of one block, for sequential reads (file offsets). */
  #cursor: { bi: number; next: number; end: number; range: RangeRead; rest: Uint8Array | undefined; openedMs: number; servedBytes: number } | undefined;
  /** The next block's range read, opened ahead of a sequential reader (see the top of the file). */
  #ahead: RangeRead | undefined;
  #idleTimer: NodeJS.Timeout | undefined;

  /** @internal */
  constructor(fs: FileSystem, info: FileInfo, blocks: BlockLocationInfo[], readType: ReadType, ufs: { ufsUri: string; ufsPath: string } | undefined) {
    this.#fs = fs;
    this.#info = info;
    this.#blocks = [...blocks].sort((a, b) => a.offsetBytes - b.offsetBytes);
    this.#readType = readType;
    this.#ufs = ufs;
    let expect = 0;
    for (const b of this.#blocks) {
      assert(b.offsetBytes === expect, `block ${b.blockId} of ${info.path} starts at ${b.offsetBytes}, expected ${expect}`);
      expect += b.lengthBytes;
    }
    assert(expect === info.lengthBytes, `blocks of ${info.path} cover ${expect} bytes, file has ${info.lengthBytes}`);
  }

  get path(): string { return this.#info.path; }
  get status(): FileStatus { return this.#info; }
  get lengthBytes(): number { return this.#info.lengthBytes; }
  get position(): number { return this.#position; }
  get readType(): ReadType { return this.#readType; }
  /** @internal */
  get _blocks(): readonly BlockLocationInfo[] { return this.#blocks; }

  seek(position: number): void {
    if (!Number.isSafeInteger(position) || position < 0 || position > this.#info.lengthBytes) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid position: ${position} is outside 0..${this.#info.lengthBytes}`);
    }
    this.#position = position;
  }

  /**
   * Reads up to `buffer.length` bytes at `position` (or at the stream's position, which then
   * advances). Returns the count, 0 at the end of the file.
   */
  read(buffer: Uint8Array, position?: number): Promise<number> {
    if (position === undefined && this.#queued === 0) {
      const n = this.#readFromView(buffer);
      if (n > 0) return Promise.resolve(n);
    }
    // Reads are serialised: they share the sequential cursor.
    return this.#enqueue(() => this.#read(buffer, position));
  }

  /** Runs `op` after every read (and idle release) queued before it. */
  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    this.#queued++;
    const p = this.#readChain.then(op).finally(() => { this.#queued--; });
    this.#readChain = p.catch(noop);
    return p;
  }

  /**
   * A sequential read served at once from the block view the cursor holds (short-circuit),
   * with nothing queued before it: what #readFromCursor does for such a read, without the
   * promises and frames of the general path (2.5 KB of garbage per read against 1.0 KB, by
   * the sampling heap profiler: fewer scavenges, and on this VM some take 15-48 ms). Returns 0
   * when the general path must run: no view held, a read that crosses into the next block or
   * ends this one (the cursor is then dropped), a yield due (CLIENT_VIEW_YIELD_BYTES), an old
   * cursor, a closed stream.
   */
  #readFromView(buffer: Uint8Array): number {
    const c = this.#cursor;
    if (c === undefined || c.rest === undefined || this.#closed || !(buffer instanceof Uint8Array)) return 0;
    const n = buffer.length;
    const pos = this.#position;
    if (c.next !== pos || n === 0 || n >= c.rest.length || c.rest.length !== c.end - c.next) return 0;
    if (c.servedBytes + n >= CLIENT_VIEW_YIELD_BYTES || Date.now() - c.openedMs > CLIENT_CURSOR_MAX_AGE_MS) return 0;
    buffer.set(c.rest.subarray(0, n));
    c.rest = c.rest.subarray(n);
    c.next += n;
    c.servedBytes += n;
    this.#position = pos + n;
    this.#readAheadFrom(c.bi, c.next, true);
    this.#armIdleTimer();
    return n;
  }

  async #read(buffer: Uint8Array, position: number | undefined): Promise<number> {
    this.#checkOpen();
    const sequential = position === undefined;
    const pos = sequential ? this.#position : position;
    if (!Number.isSafeInteger(pos) || pos < 0) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid position: ${pos}`);
    const end = Math.min(this.#info.lengthBytes, pos + buffer.length);
    let filled = 0;
    /** The next whole block of this call, opened while the current one is read. */
    let next: RangeRead | undefined;
    try {
      while (pos + filled < end) {
        const at = pos + filled;
        const bi = this.#blockIndexAt(at);
        const b = this.#blocks[bi]!;
        const inBlock = at - b.offsetBytes;
        const n = Math.min(end - at, b.lengthBytes - inBlock);
        const wholeBlock = inBlock === 0 && n === b.lengthBytes;
        if (!wholeBlock && (sequential || this.#cursor?.next === at)) {
          // A part of a block, read in order: keep one stream (or short-circuit pin) open for the
          // rest of the block instead of one call per read.
          await this.#readFromCursor(bi, at, n, buffer, filled, sequential);
        } else {
          if (this.#cursor?.bi === bi) await this.#dropCursor();
          let range = next?.bi === bi && next.startBytes === at ? next : undefined;
          if (range === undefined) next?.drop();
          next = undefined;
          if (range === undefined && sequential && wholeBlock) range = this.#takeAhead(bi, at);
          range ??= new RangeRead(bi, at, this._rangeChunks(bi, inBlock, n, false));
          // The next block, when this call reads all of it, is read ahead near the end of this one.
          const nextAt = at + n;
          const nb = nextAt < end ? this.#blocks[bi + 1]! : undefined;
          const aheadWhole = nb !== undefined && end - nextAt >= nb.lengthBytes;
          let got = 0;
          try {
            for (;;) {
              if (aheadWhole && next === undefined && readAheadDue(n - got)) next = new RangeRead(bi + 1, nextAt, this._rangeChunks(bi + 1, 0, nb.lengthBytes, false, true)).start();
              const r = await range.next();
              if (r.done) break;
              buffer.set(r.value, filled + got);
              got += r.value.length;
            }
          } finally {
            await range.close();
          }
          assert(got === n, `read ${got} bytes of block ${b.blockId}, wanted ${n}`);
        }
        filled += n;
      }
    } finally {
      next?.drop();
    }
    if (sequential) this.#position = pos + filled;
    return filled;
  }

  async #readFromCursor(bi: number, at: number, n: number, into: Uint8Array, intoOffset: number, sequential: boolean): Promise<void> {
    let c = this.#cursor;
    if (!c || c.bi !== bi || c.next !== at || Date.now() - c.openedMs > CLIENT_CURSOR_MAX_AGE_MS) {
      await this.#dropCursor();
      const b = this.#blocks[bi]!;
      const inBlock = at - b.offsetBytes;
      const range = this.#takeAhead(bi, at) ?? new RangeRead(bi, at, this._rangeChunks(bi, inBlock, b.lengthBytes - inBlock, false));
      c = this.#cursor = { bi, next: at, end: b.offsetBytes + b.lengthBytes, range, rest: undefined, openedMs: Date.now(), servedBytes: 0 };
    }
    let got = 0;
    try {
      while (got < n) {
        if (c.rest === undefined || c.rest.length === 0) {
          const r = await c.range.next();
          assert(!r.done, `block range of ${this.#info.path} ended early at ${c.next + got}`);
          c.rest = r.value;
        }
        const take = Math.min(n - got, c.rest.length);
        into.set(take === c.rest.length ? c.rest : c.rest.subarray(0, take), intoOffset + got);
        c.rest = c.rest.subarray(take);
        got += take;
      }
    } catch (err) {
      this.#cursor = undefined;
      await c.range.close();
      throw err;
    }
    c.next += n;
    // When the rest of this block is already here (a short-circuit view), the next block is
    // asked for at once: it costs no buffered bytes, and the worker, on an idle core, may take
    // a millisecond or more to wake and answer. The open goes out at once (a read ahead is
    // sent with sendNow, see RpcWorkerLink), but reads served from those bytes resolve in
    // microtasks only and so never let the event loop run. For the answer to be taken in
    // before this block runs out (and for lease renewals and other streams to go on), such a
    // reader lets I/O run every CLIENT_VIEW_YIELD_BYTES. (Before sendNow it also yielded right
    // after asking, one more event-loop turn per block, only to send the request.)
    const allHere = c.rest !== undefined && c.rest.length > 0 && c.rest.length === c.end - c.next;
    if (sequential) this.#readAheadFrom(bi, c.next, allHere);
    if (allHere && (c.servedBytes += n) >= CLIENT_VIEW_YIELD_BYTES) {
      await setImmediateP();
      c.servedBytes = 0;
    }
    if (c.next === c.end) await this.#dropCursor();
    // An open cursor or a block read ahead holds a stream (or a pin): given back if the reader idles.
    if (this.#cursor !== undefined || this.#ahead !== undefined) this.#armIdleTimer();
  }

  /** The block read ahead, when it starts at block `bi`, file offset `at`; a read ahead anywhere else is stale and dropped. */
  #takeAhead(bi: number, at: number): RangeRead | undefined {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead !== undefined && ahead.bi === bi && ahead.startBytes === at) return ahead;
    ahead?.drop();
    return undefined;
  }

  #dropAhead(): void {
    this.#ahead?.drop();
    this.#ahead = undefined;
  }

  /** Opens the range read of the block after `bi` once a sequential reader at `at` is within a credit window of its end (or `now`). */
  #readAheadFrom(bi: number, at: number, now = false): void {
    if (this.#ahead !== undefined || bi + 1 >= this.#blocks.length) return;
    const b = this.#blocks[bi]!;
    if (!now && !readAheadDue(b.offsetBytes + b.lengthBytes - at)) return;
    const nb = this.#blocks[bi + 1]!;
    this.#ahead = new RangeRead(bi + 1, nb.offsetBytes, this._rangeChunks(bi + 1, 0, nb.lengthBytes, false, true)).start();
  }

  /**
   * An open cursor pins its block on the worker (and holds a stream), and so does a block read
   * ahead: a reader that stops reading gives them back after CLIENT_CURSOR_MAX_AGE_MS, so a
   * delete or an eviction never waits on an idle stream.
   */
  #armIdleTimer(): void {
    if (this.#idleTimer !== undefined) {
      this.#idleTimer.refresh(); // no new timer per read
      return;
    }
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      void this.#enqueue(() => {
        this.#dropAhead();
        return this.#dropCursor();
      }).catch(noop);
    }, CLIENT_CURSOR_MAX_AGE_MS);
    this.#idleTimer.unref();
  }

  #clearIdleTimer(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  async #dropCursor(): Promise<void> {
    this.#clearIdleTimer();
    const c = this.#cursor;
    this.#cursor = undefined;
    if (c) await c.range.close();
  }

  /**
   * The bytes of [start, end) as a sequence of chunks, streamed block by block (the next
   * block read ahead, see the top of the file). Each chunk is the caller's to keep.
   */
  async *chunks(start = 0, end = this.#info.lengthBytes): AsyncGenerator<Uint8Array> {
    this.#checkOpen();
    end = Math.min(end, this.#info.lengthBytes);
    const rangeAt = (at: number, ahead: boolean): RangeRead => {
      const bi = this.#blockIndexAt(at);
      const b = this.#blocks[bi]!;
      const inBlock = at - b.offsetBytes;
      return new RangeRead(bi, at, this._rangeChunks(bi, inBlock, Math.min(end - at, b.lengthBytes - inBlock), true, ahead));
    };
    let cur: RangeRead | undefined;
    let ahead: RangeRead | undefined;
    try {
      let at = start;
      while (at < end) {
        cur = ahead ?? rangeAt(at, false);
        ahead = undefined;
        const b = this.#blocks[cur.bi]!;
        const rangeEnd = Math.min(end, b.offsetBytes + b.lengthBytes);
        for (;;) {
          const r = await cur.next();
          if (r.done) break;
          at += r.value.length;
          if (ahead === undefined && rangeEnd < end && readAheadDue(rangeEnd - at)) ahead = rangeAt(rangeEnd, true).start();
          yield r.value;
        }
        assert(at === rangeEnd, `block range of ${this.#info.path} ended at ${at}, expected ${rangeEnd}`);
        cur = undefined;
      }
    } finally {
      ahead?.drop();
      if (cur) await cur.close();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#readChain;
    this.#clearIdleTimer();
    this.#dropAhead();
    await this.#dropCursor();
  }

  #checkOpen(): void {
    if (this.#closed) throw new TesseraError(ErrorCode.CLOSED, `Cannot read ${this.#info.path}: the stream is closed`);
  }

  #blockIndexAt(pos: number): number {
    const bs = this.#info.blockSizeBytes;
    let i = Math.min(this.#blocks.length - 1, Math.floor(pos / bs));
    while (i > 0 && this.#blocks[i]!.offsetBytes > pos) i--;
    while (i < this.#blocks.length - 1 && this.#blocks[i]!.offsetBytes + this.#blocks[i]!.lengthBytes <= pos) i++;
    return i;
  }

  /** @internal Reads [offset, offset + length) of block `bi` into `sink`, chunk by chunk (views the sink must copy). */
  async _readRange(bi: number, offsetBytes: number, lengthBytes: number, sink: (chunk: Uint8Array) => void): Promise<void> {
    for await (const chunk of this._rangeChunks(bi, offsetBytes, lengthBytes, false)) sink(chunk);
  }

  /**
   * @internal The bytes [offset, offset + length) of block `bi`, in order, with failover
   * across sources as described at the top of this file. With `keep`, every chunk is the
   * caller's to keep; without, a chunk may be a short-circuit view valid until the next one.
   * `ahead`: a read ahead (see ReadBlockRequest.ahead).
   */
  async *_rangeChunks(bi: number, offsetBytes: number, lengthBytes: number, keep: boolean, ahead = false): AsyncGenerator<Uint8Array> {
    let delivered = 0;
    // Workers that failed a read recently (any stream of this client) start out excluded, so a
    // hung worker costs one deadline, not one per block; they are tried again as a last resort.
    const suspects = this.#fs._suspects();
    const failed = new Set<number>(suspects);
    const failedHere = new Set<number>();
    let lastErr: unknown;
    let refreshes = 0;
    let triedUfs = false;
    const maxAttempts = CLIENT_MAX_READ_ATTEMPTS + this.#blocks[bi]!.locations.length;
    for (let attempt = 0; attempt < maxAttempts && delivered < lengthBytes;) {
      const b = this.#blocks[bi]!;
      const sources = orderSourcesForRead(
        b.locations.map((l) => ({ ...l, host: l.hostname })), this.#fs._clientHosts, this.#fs._nextCursor(), failed,
      ).filter((s) => !failed.has(s.workerId));
      let target: WorkerLocation | undefined = sources[0];
      // A worker that misses the block reads it from the UFS when the file is there.
      const persisted = this.#ufs !== undefined && this.#info.persistenceState === 'PERSISTED';
      const ufs: UfsBlockSource | undefined = persisted
        ? { ufsUri: this.#ufs!.ufsUri, ufsPath: this.#ufs!.ufsPath, blockOffsetBytes: b.offsetBytes, blockLengthBytes: b.lengthBytes }
        : undefined;
      if (!target && ufs) {
        // The UFS through a worker: any live worker not yet failed, by the default policy.
        const workers = (await this.#fs._orderWorkersForWrite({ policy: 'LocalFirst' }, b.lengthBytes)).filter((w) => !failed.has(w.workerId));
        target = workers[0];
        triedUfs = true;
      }
      if (!target && [...suspects].some((id) => !failedHere.has(id))) {
        for (const id of suspects) if (!failedHere.has(id)) failed.delete(id);
        suspects.clear();
        continue;
      }
      if (!target && refreshes < CLIENT_MAX_READ_ATTEMPTS) {
        // Nothing reachable is known: ask the master again, backing off (a worker may be
        // re-registering after a master restart, or a copy may have moved).
        if (refreshes > 0) await sleep(backoffMs(refreshes));
        refreshes++;
        await this.#refreshLocations().catch((err) => { lastErr = err; });
        continue;
      }
      if (!target) break;
      attempt++;
      let link: WorkerDataLink | undefined;
      const deliveredBefore = delivered;
      try {
        link = await this.#fs._link(target);
        const req = { blockId: b.blockId, offsetBytes: offsetBytes + delivered, lengthBytes: lengthBytes - delivered, readType: this.#readType, ...(ahead ? { ahead } : {}) };
        for await (const chunk of link.readBlock(ufs ? { ...req, ufs } : req)) {
          const take = Math.min(chunk.length, lengthBytes - delivered);
          const view = take === chunk.length ? chunk : chunk.subarray(0, take);
          delivered += take;
          if (keep && link.volatileChunks) {
            // Copies the caller may keep, in bounded pieces (a whole-block copy would be one huge allocation).
            for (let i = 0; i < view.length; i += CLIENT_WRITE_CHUNK_BYTES) yield view.slice(i, Math.min(view.length, i + CLIENT_WRITE_CHUNK_BYTES));
          } else {
            yield view;
          }
        }
        if (delivered < lengthBytes) throw new TesseraError(ErrorCode.PROTOCOL, `worker ${target.workerId} ended block ${b.blockId} early at ${offsetBytes + delivered}`);
      } catch (err) {
        lastErr = err;
        // A stream that ran out of time while making progress (a slow consumer) resumes on
        // the same worker; any other failure moves on to the next source.
        if (!(isTesseraError(err, ErrorCode.DEADLINE_EXCEEDED) && delivered > deliveredBefore)) {
          failed.add(target.workerId);
          failedHere.add(target.workerId);
          // Only a worker that looks unhealthy is avoided by other reads (not one that merely lacks this block).
          if (isConnectionError(err) || isTesseraError(err, ErrorCode.DEADLINE_EXCEEDED)) this.#fs._suspect(target.workerId);
        }
        // Only a broken connection is dropped: other reads may be using this one.
        if (link && (link.closed || isConnectionError(err))) this.#fs._dropLink(target.workerId, link);
        if (this.#fs.closed) throw asTesseraError(err, ErrorCode.CLOSED, 'FileSystem is closed');
      }
    }
    if (delivered < lengthBytes) {
      const b = this.#blocks[bi]!;
      const why = lastErr instanceof Error ? `: ${lastErr.message}` : b.locations.length === 0 && !this.#ufs ? ': no worker holds it and the file is not in a UFS' : '';
      throw new TesseraError(ErrorCode.BLOCK_UNAVAILABLE, `Cannot read block ${b.blockId} of ${this.#info.path} (tried workers ${[...failed].join(', ') || 'none'}${triedUfs ? ', and the UFS' : ''})${why}`, { cause: lastErr });
    }
  }

  async #refreshLocations(): Promise<void> {
    const { blocks } = await this.#fs.getBlockLocations(this.#info.path);
    if (blocks.length === this.#blocks.length) this.#blocks = [...blocks].sort((a, b) => a.offsetBytes - b.offsetBytes);
  }
}
