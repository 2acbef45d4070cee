/**
 * What the client needs from a worker's data server, as one small interface. The
 * implementation over the worker protocol (transports/protocol/worker.ts) lives in
 * client/worker-client.ts; FileSystem only sees this seam, so its failover logic does not
 * depend on how bytes travel (stream, short-circuit).
 */
import type { ReadType, WriteType } from './options.js';

/** Where a block lives in its UFS (the worker protocol's message). */
export type { UfsBlockSource } from '../transports/protocol/worker.js';
import type { UfsBlockSource } from '../transports/protocol/worker.js';

export interface ReadBlockRequest {
  blockId: number;
  /** Range inside the block. */
  offsetBytes: number;
  lengthBytes: number;
  readType: ReadType;
  /** Set when the worker may (or must) read the block from the UFS. */
  ufs?: UfsBlockSource;
  /**
   * A read ahead: its reader may be copying out of a mapped block without yielding, so a
   * request this needs goes out at once rather than at the end of the tick (sendNow).
   */
  ahead?: boolean;
}

export interface WriteBlockRequest {
  blockId: number;
  /** Room to reserve: the file's block size (an upper bound of this block's length). */
  reserveBytes: number;
  writeType: WriteType;
  /** CACHE_THROUGH / THROUGH: where the block's bytes go in the UFS. */
  ufs?: UfsBlockSource;
  pinned?: boolean;
}

/** A block being written: chunks go in order; commit() seals it, abort() drops it. */
export interface BlockWriter {
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(reason?: unknown): Promise<void>;
}

export interface WorkerDataLink {
  readonly workerId: number;
  readonly host: string;
  readonly address: string;
  /** True when this link reads by short-circuit (same host, shared memory). */
  readonly shortCircuit: boolean;
  /**
   * True when chunks may be views of memory the worker reuses later (short-circuit mappings,
   * or arena views handed over in-process): a consumer that keeps chunks must copy them.
   */
  readonly volatileChunks: boolean;
  /**
   * Reads a range of a block; chunks arrive in order and together are exactly `lengthBytes`
   * long. A chunk may be a view into shared memory valid only until the next chunk is
   * requested: copy it if it must outlive the iteration.
   */
  readBlock(req: ReadBlockRequest): AsyncIterable<Uint8Array>;
  writeBlock(req: WriteBlockRequest): Promise<BlockWriter>;
  /** CACHE_THROUGH / THROUGH: makes the file written through this worker visible in its UFS (or drops it). */
  completeUfsFile(req: { ufsUri: string; ufsPath: string; abort?: boolean }): Promise<void>;
  close(): Promise<void>;
  readonly closed: boolean;
}
