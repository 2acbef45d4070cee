/**
 * The worker's data server: the handlers of WorkerService (transports/protocol/worker.ts) over
 * the tiered store. It runs on any transport the RPC server listens on.
 *
 * - readBlock streams a block (or a range) in WORKER_STREAM_CHUNK_BYTES chunks; each write
 *   waits for the client's credit, so a slow reader stalls us with bounded memory. MEM chunks
 *   are views into the arena (no copy); the block stays pinned until the connection has
 *   written them to its socket (Connection.flushed(), see releaseWhenFlushed).
 * - A miss of a block of a persisted file reads the whole block from its UFS in the pool
 *   (concurrent misses of one block share one read), caches it unless NO_CACHE (CACHE and
 *   CACHE_PROMOTE both cache into the top tier), and serves the range.
 * - writeBlock collects the upload, writes the UFS first for CACHE_THROUGH, records the block
 *   as unpersisted durably for ASYNC_THROUGH, commits it and tells the master.
 * - openShortCircuit pins a MEM block for a same-host client under its connection's lease,
 *   and says whether the client may attach to the arena's engine and pin blocks itself; an
 *   inproc client of a SharedArrayBuffer tier is named the engine's key in this thread.
 */
import { networkInterfaces } from 'node:os';
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';
import { WORKER_STREAM_CHUNK_BYTES } from '../core/constants.js';
import { parseAddress, isLoopbackAddress } from '../transports/address.js';
import type { Handlers } from '../transports/service.js';
import type { Peer } from '../transports/rpc-server.js';
import type { ByteSink, ByteSource } from '../transports/streams.js';
import {
  WorkerService, type ReadBlockRequest, type ReadBlockResponse, type TierAlias, type WorkerHostInfo, type WriteBlockRequest,
  type WriteBlockResponse, type UfsBlockSource, type PersistFileRequest, type WorkerReadType, type WorkerWriteType,
} from '../transports/protocol/worker.js';
import type { BlockReader, TieredBlockStore } from './tiered-store.js';
import type { LeaseTable } from './leases.js';
import type { UfsPool } from './ufs-pool.js';
import type { PersistQueue } from './persist-queue.js';
import type { UfsThroughWriters } from './ufs-through.js';

export interface DataServerDeps {
  store: TieredBlockStore;
  leases: LeaseTable;
  pool: UfsPool;
  persist: PersistQueue;
  through: UfsThroughWriters;
  /** Tells the master a block is committed here (no-op without a master). */
  commitToMaster: (blockId: number, lengthBytes: number, tier: TierAlias) => Promise<void>;
  info: () => WorkerHostInfo;
  nowMs?: () => number;
  chunkBytes?: number;
  /** Same-host clients may attach to the MEM arena's block engine and pin blocks themselves (default true). */
  shortCircuitEngine?: boolean;
}

const READ_TYPES: readonly WorkerReadType[] = ['CACHE_PROMOTE', 'CACHE', 'NO_CACHE'];
const WRITE_TYPES: readonly WorkerWriteType[] = ['MUST_CACHE', 'CACHE_THROUGH', 'THROUGH', 'ASYNC_THROUGH'];

function invalid(option: string, detail: string): TesseraError {
  return new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid ${option}: ${detail}`);
}

function checkBlockId(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TesseraError(ErrorCode.INVALID_ID, `Invalid blockId ${String(v)}: a non-negative safe integer`);
  return v;
}

function checkUfs(u: UfsBlockSource | undefined, option: string): UfsBlockSource | undefined {
  if (u === undefined || u === null) return undefined;
  if (typeof u !== 'object' || typeof u.ufsUri !== 'string' || typeof u.ufsPath !== 'string') throw invalid(option, 'needs ufsUri and ufsPath strings');
  if (!Number.isSafeInteger(u.blockOffsetBytes) || u.blockOffsetBytes < 0) throw invalid(`${option}.blockOffsetBytes`, String(u.blockOffsetBytes));
  if (!Number.isSafeInteger(u.blockLengthBytes) || u.blockLengthBytes < 0) throw invalid(`${option}.blockLengthBytes`, String(u.blockLengthBytes));
  return u;
}

let localAddresses: Set<string> | undefined;
/** True when the peer runs on this host (it can map our /dev/shm file). */
export function isSameHost(remoteAddress: string): boolean {
  let a;
  try {
    a = parseAddress(remoteAddress);
  } catch {
    return false;
  }
  if (isLoopbackAddress(a)) return true;
  localAddresses ??= new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((i) => i.address.toLowerCase())));
  return localAddresses.has(a.host.toLowerCase().replace(/^::ffff:/, ''));
}

/** True when the peer is an inproc:// connection: the same thread as this worker (core/isolate-engines.ts). */
export function isSameThread(remoteAddress: string): boolean {
  return remoteAddress.startsWith('inproc://');
}

/** Lease owner key of a client connection. */
export function ownerOf(peer: Peer): string {
  return `conn-${peer.id}`;
}

export function createDataServerHandlers(deps: DataServerDeps): Handlers<typeof WorkerService.members> {
  const { store, leases, pool, persist, through } = deps;
  const engine = deps.shortCircuitEngine ?? true;
  const now = deps.nowMs ?? Date.now;
  const chunkBytes = deps.chunkBytes ?? WORKER_STREAM_CHUNK_BYTES;
  const watched = new WeakSet<Peer>();
  const ufsReads = new Map<number, Promise<Uint8Array>>();

  /** Releases a client's pins and through-written files when its connection closes. */
  function watch(peer: Peer): void {
    if (watched.has(peer)) return;
    watched.add(peer);
    peer.once('close', () => {
      leases.releaseOwner(ownerOf(peer));
      void through.abortOwner(ownerOf(peer));
    });
  }

  async function readFromUfs(blockId: number, u: UfsBlockSource): Promise<Uint8Array> {
    let p = ufsReads.get(blockId);
    if (!p) {
      p = pool.read(u.ufsUri, u.ufsPath, u.blockOffsetBytes, u.blockLengthBytes);
      ufsReads.set(blockId, p);
      void p.finally(() => ufsReads.delete(blockId)).catch(() => undefined);
    }
    return p;
  }

  async function sendRange(out: ByteSink, read: (off: number, len: number) => Promise<Uint8Array>, offsetBytes: number, lengthBytes: number, signal: AbortSignal): Promise<void> {
    let at = offsetBytes;
    const end = offsetBytes + lengthBytes;
    while (at < end) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new TesseraError(ErrorCode.CANCELLED, 'Read cancelled');
      const n = Math.min(chunkBytes, end - at);
      await out.write(await read(at, n));
      at += n;
    }
  }

  /**
   * Sends MEM chunks as views into the arena, with no copy. A stream write resolves when the
   * frame is handed to the connection, not when the socket has written it, so the block's pin
   * (which keeps its arena bytes from being freed or reused) is released only once the
   * connection has flushed every frame sent so far, or has closed (then its socket writes
   * nothing more). In-process peers receive the very buffers and may keep them, so they get
   * copies, and the pin goes when the handler is done.
   */
  function sendsViews(peer: Peer, reader: BlockReader): boolean {
    return reader.inArena && !peer.identity.remoteAddress.startsWith('inproc:');
  }

  function releaseWhenFlushed(peer: Peer, reader: BlockReader, views: boolean): void {
    if (!views) {
      reader.release();
      return;
    }
    const release = (): void => reader.release();
    peer.connection.flushed().then(release, release);
  }

  function rangeOf(req: ReadBlockRequest, blockLengthBytes: number): { offsetBytes: number; lengthBytes: number } {
    const offsetBytes = req.offsetBytes ?? 0;
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || offsetBytes > blockLengthBytes) {
      throw invalid('offsetBytes', `${String(req.offsetBytes)} is outside block ${req.blockId} of ${blockLengthBytes} bytes`);
    }
    const lengthBytes = req.lengthBytes ?? blockLengthBytes - offsetBytes;
    if (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0 || offsetBytes + lengthBytes > blockLengthBytes) {
      throw invalid('lengthBytes', `${String(req.lengthBytes)} at offset ${offsetBytes} runs past block ${req.blockId} of ${blockLengthBytes} bytes`);
    }
    return { offsetBytes, lengthBytes };
  }

  return {
    health: () => ({ ok: true as const }),

    getInfo: () => deps.info(),

    async readBlock(req: ReadBlockRequest, ctx, out: ByteSink): Promise<ReadBlockResponse> {
      const blockId = checkBlockId(req?.blockId);
      const readType = req.readType ?? 'CACHE_PROMOTE';
      if (!READ_TYPES.includes(readType)) throw invalid('readType', String(readType));
      const ufs = checkUfs(req.ufs, 'ufs');
      const reader = await store.openReader(blockId, { promote: readType === 'CACHE_PROMOTE' });
      if (reader) {
        const views = sendsViews(ctx.peer, reader);
        try {
          const r = rangeOf(req, reader.lengthBytes);
          const read = views || !reader.inArena
            ? (o: number, n: number): Promise<Uint8Array> => reader.read(o, n)
            : async (o: number, n: number): Promise<Uint8Array> => Buffer.from(await reader.read(o, n));
          await sendRange(out, read, r.offsetBytes, r.lengthBytes, ctx.signal);
          return { blockId, ...r, source: reader.source };
        } finally {
          releaseWhenFlushed(ctx.peer, reader, views);
        }
      }
      if (!ufs) throw new TesseraError(ErrorCode.BLOCK_NOT_FOUND, `Cannot read block ${blockId}: not on this worker and no UFS source given`);
      const r = rangeOf(req, ufs.blockLengthBytes);
      if (readType === 'NO_CACHE') {
        const bytes = await pool.read(ufs.ufsUri, ufs.ufsPath, ufs.blockOffsetBytes + r.offsetBytes, r.lengthBytes);
        await sendRange(out, async (o, n) => bytes.subarray(o - r.offsetBytes, o - r.offsetBytes + n), r.offsetBytes, r.lengthBytes, ctx.signal);
        return { blockId, ...r, source: 'UFS' };
      }
      const whole = await readFromUfs(blockId, ufs);
      try {
        const meta = await store.putBlock(blockId, whole, { persisted: true });
        await deps.commitToMaster(blockId, meta.lengthBytes, meta.tier).catch(() => undefined);
      } catch (err) {
        // Cached meanwhile by a concurrent read, or no room: serve the bytes we have anyway.
        if (!isTesseraError(err, ErrorCode.BLOCK_EXISTS) && !isTesseraError(err, ErrorCode.NO_SPACE)) throw err;
      }
      await sendRange(out, async (o, n) => whole.subarray(o, o + n), r.offsetBytes, r.lengthBytes, ctx.signal);
      return { blockId, ...r, source: 'UFS' };
    },

    async writeBlock(req: WriteBlockRequest, ctx, input: ByteSource): Promise<WriteBlockResponse> {
      const blockId = checkBlockId(req?.blockId);
      if (!Number.isSafeInteger(req.reserveBytes) || req.reserveBytes < 0) throw invalid('reserveBytes', String(req.reserveBytes));
      const writeType = req.writeType ?? 'MUST_CACHE';
      if (!WRITE_TYPES.includes(writeType)) throw invalid('writeType', String(writeType));
      const ufs = checkUfs(req.ufs, 'ufs');
      const tier = req.tier ?? 'MEM';
      if (!['MEM', 'SSD', 'HDD'].includes(tier)) throw invalid('tier', String(tier));
      const owner = ownerOf(ctx.peer);
      watch(ctx.peer);
      if (writeType === 'THROUGH' || writeType === 'CACHE_THROUGH') {
        if (!ufs) throw invalid('ufs', `${writeType} needs the block's UFS file`);
      }
      if (writeType === 'THROUGH') {
        let n = 0;
        for await (const chunk of input) {
          n += chunk.byteLength;
          if (n > req.reserveBytes) throw new TesseraError(ErrorCode.BLOCK_TOO_LARGE, `Cannot write block ${blockId}: more than reserveBytes ${req.reserveBytes}`);
          await through.append(owner, ufs!.ufsUri, ufs!.ufsPath, ufs!.blockOffsetBytes + n - chunk.byteLength, chunk);
        }
        return { blockId, lengthBytes: n, tier: 'UFS' };
      }
      const writer = store.createWriter(blockId, req.reserveBytes, { tier, pinned: req.pinned ?? false, persisted: writeType !== 'ASYNC_THROUGH' });
      try {
        for await (const chunk of input) writer.append(chunk);
        if (writeType === 'CACHE_THROUGH') await through.append(owner, ufs!.ufsUri, ufs!.ufsPath, ufs!.blockOffsetBytes, writer.bytes);
        if (writeType === 'ASYNC_THROUGH' || req.pinned) {
          await persist.markBlock(blockId, { ...(writeType === 'ASYNC_THROUGH' ? { unpersisted: true } : {}), ...(req.pinned ? { pinned: true } : {}) });
        }
      } catch (err) {
        writer.abort();
        throw err;
      }
      const meta = await writer.commit();
      await deps.commitToMaster(blockId, meta.lengthBytes, meta.tier);
      return { blockId, lengthBytes: meta.lengthBytes, tier: meta.tier };
    },

    async openShortCircuit(req, ctx) {
      const blockId = checkBlockId(req?.blockId);
      const readType = req.readType ?? 'CACHE_PROMOTE';
      const mem = store.mem;
      const shmPath = store.memBacking === 'shm' ? mem?.shmPath : undefined;
      // Without an arena file, only a client of this very thread can share the engine (by key).
      const engineKey = shmPath === undefined && engine && isSameThread(ctx.peer.identity.remoteAddress) ? mem?.isolateKey : undefined;
      if (shmPath === undefined && engineKey === undefined) return { kind: 'none' as const, reason: 'no-shm' as const };
      if (shmPath !== undefined && !isSameHost(ctx.peer.identity.remoteAddress)) return { kind: 'none' as const, reason: 'remote' as const };
      const reader = await store.openReader(blockId, { promote: readType === 'CACHE_PROMOTE' });
      if (!reader) throw new TesseraError(ErrorCode.BLOCK_NOT_FOUND, `Cannot open block ${blockId}: not on this worker`);
      const bytes = reader.memBytes;
      if (!bytes || !reader.inArena) {
        reader.release();
        return { kind: 'none' as const, reason: 'not-in-memory' as const };
      }
      if (engineKey !== undefined) {
        // The client pins in the engine itself: this open only promoted the block and found it in MEM.
        reader.release();
        return { kind: 'engine' as const, engineKey, lengthBytes: bytes.byteLength };
      }
      watch(ctx.peer);
      let pinId: number;
      try {
        pinId = leases.add(ownerOf(ctx.peer), blockId, () => reader.release(), now());
      } catch (err) {
        reader.release();
        throw err;
      }
      if (!ctx.peer.isOpen) leases.releaseOwner(ownerOf(ctx.peer));
      return {
        kind: 'shm' as const, path: shmPath!, arenaBytes: mem!.arenaBytes,
        offsetBytes: bytes.byteOffset, lengthBytes: bytes.byteLength, pinId, leaseMs: leases.leaseMs, engine,
      };
    },

    closeShortCircuit(req, ctx) {
      return { released: leases.remove(ownerOf(ctx.peer), req.pinId) };
    },

    renewLease(_req, ctx) {
      leases.renew(ownerOf(ctx.peer), now());
      return { leaseMs: leases.leaseMs };
    },

    async completeUfsFile(req, ctx) {
      if (typeof req?.ufsUri !== 'string' || typeof req.ufsPath !== 'string') throw invalid('completeUfsFile request', 'needs ufsUri and ufsPath');
      const lengthBytes = await through.complete(ownerOf(ctx.peer), req.ufsUri, req.ufsPath, req.abort ?? false);
      return { lengthBytes };
    },

    async persistFile(req: PersistFileRequest) {
      if (!Number.isSafeInteger(req?.fileId) || !Array.isArray(req.blockIds) || typeof req.ufsUri !== 'string' || typeof req.ufsPath !== 'string') {
        throw invalid('persistFile request', 'needs fileId, blockIds, ufsUri and ufsPath');
      }
      for (const id of req.blockIds) checkBlockId(id);
      await persist.enqueue(req);
      return { queued: true };
    },

    getBlockInfo(req) {
      const m = store.info(checkBlockId(req?.blockId));
      return m ? { blockId: m.id, lengthBytes: m.lengthBytes, tier: m.tier, pinned: m.pinned, persisted: m.persisted } : null;
    },

    async removeBlock(req) {
      const id = checkBlockId(req?.blockId);
      const removed = await store.remove(id);
      if (removed) await persist.forgetBlock(id);
      return { removed };
    },
  };
}
