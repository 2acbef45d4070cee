/**
 * The values the client API hands to its callers and the options it takes. Statuses are the
 * master protocol's own messages (transports/protocol/master.ts, the one definition), re-exported
 * under the client's names.
 */
import type { ReadType, TtlAction, WriteType } from './options.js';
import type { LocationPolicySpec, LocationPolicyName } from './location-policy.js';
import type {
  FileInfo, WorkerInfo as MasterWorkerInfo, BlockLocationInfo as MasterBlockLocationInfo, MountPointInfo, MasterInfo,
} from '../transports/protocol/master.js';

/** One file or directory: FileInfo of the master protocol. `ttlMs` is -1 when none. */
export type FileStatus = FileInfo;
export type WorkerInfo = MasterWorkerInfo;
export type BlockLocationInfo = MasterBlockLocationInfo;
export type MountInfo = MountPointInfo;
export type { MasterInfo };

export interface CreateFileOptions {
  writeType?: WriteType;
  /** Block size as bytes or a string such as '64MiB'. */
  blockSize?: number | string;
  /** Create missing parent directories (default true). */
  recursive?: boolean;
  /** Replace an existing file (default false). */
  overwrite?: boolean;
  locationPolicy?: LocationPolicyName | LocationPolicySpec | string;
  ttlMs?: number;
  ttlAction?: TtlAction;
  mode?: number;
  pinned?: boolean;
  /**
   * The file's final length when known (writeFile, copyFromLocal): each block then reserves
   * exactly its size on the worker instead of a whole block. Writing more fails.
   */
  expectedLengthBytes?: number;
}

export interface OpenFileOptions {
  readType?: ReadType;
}

export interface SetAttributeOptions {
  pinned?: boolean;
  /** A number of ms, or null to remove the TTL. */
  ttlMs?: number | null;
  ttlAction?: TtlAction;
  mode?: number;
  owner?: string;
  group?: string;
  recursive?: boolean;
}
