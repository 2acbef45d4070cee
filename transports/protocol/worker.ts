/**
 * The worker's data service: every message a worker serves, defined once (version
 * WORKER_PROTOCOL_VERSION). Clients (issue 8) and the worker host (issue 7) import these types;
 * nothing else defines a worker message. Requests and responses are plain objects encoded by
 * the RPC layer's codec (msgpackr); block bytes travel on the call's byte stream as raw DATA
 * frames, never inside a message. Numbers are JS numbers (block ids below 2^53), sizes are bytes.
 *
 * | method            | stream            | what it does                                                   |
 * |-------------------|-------------------|----------------------------------------------------------------|
 * | health            |                   | liveness: `{ ok: true }`                                       |
 * | getInfo           |                   | tiers, capacity, used, block count, whether MEM is shm-backed  |
 * | readBlock         | worker → client   | bytes [offset, offset+length) of a block; a miss of a block of |
 * |                   |                   | a persisted file is read from its UFS and cached per readType  |
 * | writeBlock        | client → worker   | a new block from the stream; committed (and reported to the    |
 * |                   |                   | master) when the stream ends; per writeType through the UFS    |
 * | openShortCircuit  |                   | same-host read: arena file, offset, length and a lease-bound  |
 * |                   |                   | pin; `{ kind: 'none' }` when remote, not in MEM or no shm     |
 * | closeShortCircuit |                   | releases one pin                                               |
 * | renewLease        |                   | keeps the caller's pins alive for another lease period         |
 * | completeUfsFile   |                   | CACHE_THROUGH/THROUGH: makes the file written through visible |
 * |                   |                   | in its UFS (or drops it with `abort`)                          |
 * | persistFile       |                   | queues an async persist of a file's blocks (ASYNC_THROUGH)     |
 * | getBlockInfo      |                   | where a block is held here, or `null`                          |
 * | removeBlock       |                   | drops a block from every tier (waits for its readers)          |
 *
 * A short-circuit client maps `path` read-only (native mapShared, `arenaBytes` long) and reads
 * `lengthBytes` at `offsetBytes` without a copy; it must call closeShortCircuit (or stop
 * renewing, or disconnect) when done. The bytes stay valid and unchanged until then.
 * When the response says `engine`, the client may instead attach to the arena's block engine
 * as one more owner and pin the blocks it finds in MEM itself (BlockCache.acquire: ~0.1 µs,
 * no round trip), bound by the engine's owner lease; it asks the worker only for blocks the
 * engine does not hold (not in MEM yet: openShortCircuit promotes them). A worker whose MEM
 * tier is a SharedArrayBuffer answers an inproc:// peer (same thread) `kind: 'engine'` with
 * the key of its engine in that thread (core/isolate-engines.ts), to the same end.
 *
 * `WorkerApi` below is the shape of the calls as plain async functions (for documentation and
 * for code that does not stream); `WorkerService` is the definition the RPC layer serves, in
 * which readBlock streams bytes down (the response is a trailer after the bytes) and writeBlock
 * streams bytes up.
 */
import type { BlockReport } from './master.js';
import { clientStream, defineService, method, serverStream } from '../service.js';

export const WORKER_PROTOCOL_VERSION = 1;
export const WORKER_SERVICE_NAME = 'worker';

export type TierAlias = 'MEM' | 'SSD' | 'HDD';
export type WorkerReadType = 'CACHE_PROMOTE' | 'CACHE' | 'NO_CACHE';
export type WorkerWriteType = 'MUST_CACHE' | 'CACHE_THROUGH' | 'THROUGH' | 'ASYNC_THROUGH';

/** Where a block of a persisted (or to-be-written) file lives in its UFS. */
export interface UfsBlockSource {
  /** The mount's UFS URI: file:///abs/dir, /abs/dir, or memory://name. */
  ufsUri: string;
  /** Path of the file inside that UFS. */
  ufsPath: string;
  /** Where the block starts in the file. */
  blockOffsetBytes: number;
  /** Length of the whole block. */
  blockLengthBytes: number;
}

export interface ReadBlockRequest {
  blockId: number;
  /** Default 0. */
  offsetBytes?: number;
  /** Default: to the end of the block. */
  lengthBytes?: number;
  /** Default CACHE_PROMOTE. */
  readType?: WorkerReadType;
  /** Where to read on a miss (persisted files only). */
  ufs?: UfsBlockSource;
}
export interface ReadBlockResponse {
  blockId: number;
  offsetBytes: number;
  lengthBytes: number;
  /** Where the bytes came from. */
  source: TierAlias | 'UFS';
}

export interface WriteBlockRequest {
  blockId: number;
  /** Room to reserve: the block's exact length, or an upper bound (the file's block size). */
  reserveBytes: number;
  /** Default MUST_CACHE. */
  writeType?: WorkerWriteType;
  /** First tier to try (default MEM). */
  tier?: TierAlias;
  /** The block's file is pinned: never dropped from the worker. */
  pinned?: boolean;
  /** CACHE_THROUGH / THROUGH: where the bytes go in the UFS (and for ASYNC_THROUGH, later). */
  ufs?: UfsBlockSource;
}
export interface WriteBlockResponse {
  blockId: number;
  lengthBytes: number;
  /** Tier the block landed in; 'UFS' for THROUGH writes (nothing cached). */
  tier: TierAlias | 'UFS';
}

export interface OpenShortCircuitRequest { blockId: number; readType?: WorkerReadType }
export type OpenShortCircuitResponse =
  | {
    kind: 'shm';
    /** Arena file to map read-only. */
    path: string;
    /** Size of the whole arena file (map this much). */
    arenaBytes: number;
    offsetBytes: number;
    lengthBytes: number;
    /** Pass to closeShortCircuit. */
    pinId: number;
    /** Renew within this period or the pin goes. */
    leaseMs: number;
    /**
     * The arena is a block engine (core BlockCache) that the client may attach to
     * (`BlockCache.attach({ path, byteLength: arenaBytes })`, read-write) and pin MEM blocks
     * of itself, with no call to the worker; false when the worker does not allow it.
     */
    engine?: boolean;
  }
  | {
    /**
     * The MEM tier is a SharedArrayBuffer engine in the caller's own thread (an inproc://
     * peer): attach to it with `BlockCache.attach(isolateEngine(engineKey))` and pin the block
     * there. No pin is taken by the worker for this answer.
     */
    kind: 'engine';
    engineKey: string;
    lengthBytes: number;
  }
  | { kind: 'none'; reason: 'remote' | 'not-in-memory' | 'no-shm' };

export interface CloseShortCircuitRequest { pinId: number }

/**
 * CACHE_THROUGH and THROUGH: the blocks of one file go to one worker, in order, each with
 * `ufs` set; their bytes are appended to one UFS writer before each block commits, and the
 * file appears in the UFS at completeUfsFile (call it before the master's completeFile).
 */
export interface CompleteUfsFileRequest { ufsUri: string; ufsPath: string; abort?: boolean }

export interface PersistFileRequest {
  fileId: number;
  ufsUri: string;
  ufsPath: string;
  /** In file order. */
  blockIds: number[];
  lengthBytes: number;
  blockSizeBytes: number;
}

export interface BlockInfo {
  blockId: number;
  lengthBytes: number;
  tier: TierAlias;
  pinned: boolean;
  persisted: boolean;
}

export interface TierInfo { alias: TierAlias; capacityBytes: number; usedBytes: number; blockCount: number }
export interface WorkerHostInfo {
  workerId: number;
  address: string;
  hostname: string;
  /** 'shm' when MEM is an mlocked /dev/shm arena (short-circuit works), 'sab' otherwise. */
  memBacking: 'shm' | 'sab';
  tiers: TierInfo[];
  capacityBytes: number;
  usedBytes: number;
  blockCount: number;
  pendingPersists: number;
}

/** Every call of the worker service, request → response. */
export interface WorkerApi {
  health(req: Record<string, never>): Promise<{ ok: true }>;
  getInfo(req: Record<string, never>): Promise<WorkerHostInfo>;
  readBlock(req: ReadBlockRequest): Promise<ReadBlockResponse>;
  writeBlock(req: WriteBlockRequest): Promise<WriteBlockResponse>;
  openShortCircuit(req: OpenShortCircuitRequest): Promise<OpenShortCircuitResponse>;
  closeShortCircuit(req: CloseShortCircuitRequest): Promise<{ released: boolean }>;
  renewLease(req: Record<string, never>): Promise<{ leaseMs: number }>;
  completeUfsFile(req: CompleteUfsFileRequest): Promise<{ lengthBytes: number }>;
  persistFile(req: PersistFileRequest): Promise<{ queued: boolean }>;
  getBlockInfo(req: { blockId: number }): Promise<BlockInfo | null>;
  removeBlock(req: { blockId: number }): Promise<{ removed: boolean }>;
}

export type WorkerMethod = keyof WorkerApi;

/** The method names, in a fixed order. readBlock streams down, writeBlock streams up. */
export const WORKER_METHODS = [
  'health', 'getInfo', 'readBlock', 'writeBlock', 'openShortCircuit', 'closeShortCircuit', 'renewLease',
  'completeUfsFile', 'persistFile', 'getBlockInfo', 'removeBlock',
] as const satisfies readonly WorkerMethod[];

/** The service definition both sides derive their types from (method key on the wire: `worker.<name>`). */
export const WorkerService = defineService(WORKER_SERVICE_NAME, {
  health: method<Record<string, never>, { ok: true }>(),
  getInfo: method<Record<string, never>, WorkerHostInfo>(),
  readBlock: serverStream<ReadBlockRequest, ReadBlockResponse>(),
  writeBlock: clientStream<WriteBlockRequest, WriteBlockResponse>(),
  openShortCircuit: method<OpenShortCircuitRequest, OpenShortCircuitResponse>(),
  closeShortCircuit: method<CloseShortCircuitRequest, { released: boolean }>(),
  renewLease: method<Record<string, never>, { leaseMs: number }>(),
  completeUfsFile: method<CompleteUfsFileRequest, { lengthBytes: number }>(),
  persistFile: method<PersistFileRequest, { queued: boolean }>(),
  getBlockInfo: method<{ blockId: number }, BlockInfo | null>(),
  removeBlock: method<{ blockId: number }, { removed: boolean }>(),
});

export type { BlockReport };
