/**
 * The client's public surface: `connect()`, the FileSystem API with its streams, read and
 * write types, location policies, and the shapes it returns. (`embedded()`, which also starts
 * a master and workers, lives at the package's face, index.ts: client/ never imports master/
 * or worker/.)
 */
export { connect } from './connect.js';
export type { ConnectOptions } from './connect.js';
export { FileSystem, FileInStream, FileOutStream } from './file-system.js';
export type { FileSystemOptions, LoadOptions } from './file-system.js';
export {
  READ_TYPES, WRITE_TYPES, TTL_ACTIONS, DEFAULT_READ_TYPE, DEFAULT_WRITE_TYPE, parseSizeBytes, parseDurationMs, formatBytes,
} from './options.js';
export type { ReadType, WriteType, TtlAction } from './options.js';
export {
  LOCATION_POLICIES, DEFAULT_LOCATION_POLICY, orderWorkersForWrite, orderSourcesForRead, parseLocationPolicy,
} from './location-policy.js';
export type { LocationPolicyName, LocationPolicySpec, WorkerCandidate, PlacementContext, BlockSource } from './location-policy.js';
export type {
  FileStatus, WorkerInfo, BlockLocationInfo, MountInfo, MasterInfo, CreateFileOptions, OpenFileOptions, SetAttributeOptions,
} from './types.js';
