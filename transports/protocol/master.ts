/**
 * The master service: every message the master serves, defined once (version MASTER_PROTOCOL_VERSION).
 *
 * Clients (issue 8), workers (issue 7) and the master host (issue 6) all import these types;
 * nothing else defines a master message. Requests and responses are plain objects encoded
 * by the RPC layer's codec (msgpackr): numbers are JS numbers (ids below 2^53), times are
 * epoch milliseconds, sizes are bytes. Every request names a path in the namespace as an
 * absolute string; the master validates and normalises it (master/path.ts).
 *
 * | method                | caller | what it does                                                          |
 * |-----------------------|--------|-----------------------------------------------------------------------|
 * | health                | any    | `{ok: true}`, or `{ok: false, code, message}` once it failed          |
 * | getInfo               | any    | version, uptime, worker summary, capacity, inode count                |
 * | createFile            | client | new incomplete file (parent dirs with `recursive`)                    |
 * | completeFile          | client | seals a file at `lengthBytes`; its blocks are derived from it         |
 * | mkdir                 | client | new directory (`recursive`, `allowExists`)                            |
 * | getStatus             | client | one FileInfo (loads metadata from the UFS on first access)            |
 * | listStatus            | client | one page of a directory, sorted by name, after `startAfter`          |
 * | exists                | client | true/false, never FILE_NOT_FOUND                                      |
 * | rename                | client | atomic; refuses a dir under itself, across mounts, onto an existing   |
 * | delete                | client | `recursive` required for a non-empty directory                        |
 * | setAttribute          | client | pinned, ttl, ttlAction, mode, owner, group, replication               |
 * | free                  | client | drops cached blocks of persisted files (workers told by heartbeat)    |
 * | load                  | client | asks workers to cache a persisted file's blocks from the UFS          |
 * | persist               | client | marks TO_BE_PERSISTED; a worker persists it and calls reportPersisted |
 * | getNewBlockId         | client | next block id of an incomplete file                                   |
 * | getBlockLocations     | client | blocks of a file with their offsets, lengths and worker locations     |
 * | mount / unmount       | client | UFS URI at a namespace path                                           |
 * | getMountTable         | client | every mount point                                                     |
 * | getWorkers            | client | the worker registry                                                   |
 * | registerWorker        | worker | full block report; returns the worker id and which reported blocks are pinned |
 * | workerHeartbeat       | worker | capacity/used/added/removed; returns commands                         |
 * | commitBlock           | worker | block X of length L is committed on this worker; returns whether it is pinned |
 * | reportPersisted       | worker | file F is now in its UFS (ASYNC_THROUGH / persist), or could not be   |
 *
 * Block ids: `blockId = containerId * 2^24 + sequence` (Alluxio's `(containerId << 24) | seq`
 * done with multiplication, since JS shifts are 32-bit). A file's container id is its
 * fileId, below 2^29, so every block id is below 2^53 = Number.MAX_SAFE_INTEGER + 1.
 * The file of a block is `Math.floor(blockId / 2^24)` and a file's blocks are
 * `fileId * 2^24 + 0 .. blockCount - 1`, derived, never listed one by one in the journal.
 */
import { addExtension } from 'msgpackr';
import { defineService, method } from '../service.js';

export const MASTER_PROTOCOL_VERSION = 1;
export const MASTER_SERVICE_NAME = 'master';

export const BLOCK_SEQUENCE_MULTIPLIER = 2 ** 24;

/** The block id of block `sequence` of file (container) `fileId`. */
export function blockIdOf(fileId: number, sequence: number): number {
  return fileId * BLOCK_SEQUENCE_MULTIPLIER + sequence;
}
/** The file (container) id a block id belongs to. */
export function fileIdOfBlock(blockId: number): number {
  return Math.floor(blockId / BLOCK_SEQUENCE_MULTIPLIER);
}
/** The sequence of a block inside its file. */
export function sequenceOfBlock(blockId: number): number {
  return blockId % BLOCK_SEQUENCE_MULTIPLIER;
}

export type PersistenceState = 'NOT_PERSISTED' | 'TO_BE_PERSISTED' | 'PERSISTED' | 'LOST';
export type TtlAction = 'DELETE' | 'FREE';

export interface FileInfo {
  fileId: number;
  name: string;
  path: string;
  isDirectory: boolean;
  mode: number;
  owner: string;
  group: string;
  creationTimeMs: number;
  modificationTimeMs: number;
  pinned: boolean;
  /** Time to live after creation; -1 when none. */
  ttlMs: number;
  ttlAction: TtlAction;
  persistenceState: PersistenceState;
  blockSizeBytes: number;
  lengthBytes: number;
  completed: boolean;
  /** Derived: fileId * 2^24 + 0 .. blockCount - 1. Empty for directories. */
  blockIds: number[];
  replicationMin: number;
  /** -1: unbounded. */
  replicationMax: number;
  mountPoint: boolean;
  /** Number of direct children (directories), 0 for files. */
  childCount: number;
  /** Where the file lives in its UFS, when it is under a mount. */
  ufsPath?: string;
}

/**
 * The wire form of a FileInfo (FILE_INFO_WIRE_VERSION 1). getStatus and listStatus are the
 * master's hottest replies, and msgpack with field names costs ~10 µs to pack and unpack one
 * (21 keys); as a positional array it costs under 1 µs. The master returns `FileInfoRecord`
 * instances; a msgpackr extension (type FILE_INFO_EXTENSION_TYPE, registered when this module
 * loads, on both sides) writes them as the array below and reads them back as plain FileInfo
 * objects, so callers see the same type either way.
 *
 * | index | field              | index | field              | index | field            |
 * |-------|--------------------|-------|--------------------|-------|------------------|
 * | 0     | version (1)        | 8     | creationTimeMs     | 16    | completed        |
 * | 1     | fileId             | 9     | modificationTimeMs | 17    | blockIds         |
 * | 2     | name               | 10    | pinned             | 18    | replicationMin   |
 * | 3     | path               | 11    | ttlMs              | 19    | replicationMax   |
 * | 4     | isDirectory        | 12    | ttlAction          | 20    | mountPoint       |
 * | 5     | mode               | 13    | persistenceState   | 21    | childCount       |
 * | 6     | owner              | 14    | blockSizeBytes     | 22    | ufsPath or null  |
 * | 7     | group              | 15    | lengthBytes        |       |                  |
 */
export const FILE_INFO_WIRE_VERSION = 1;
export const FILE_INFO_EXTENSION_TYPE = 0x54;
/** The exact order of FileInfo fields on the wire, after the version. */
export const FILE_INFO_FIELDS = [
  'fileId', 'name', 'path', 'isDirectory', 'mode', 'owner', 'group', 'creationTimeMs', 'modificationTimeMs', 'pinned', 'ttlMs',
  'ttlAction', 'persistenceState', 'blockSizeBytes', 'lengthBytes', 'completed', 'blockIds', 'replicationMin', 'replicationMax',
  'mountPoint', 'childCount', 'ufsPath',
] as const satisfies readonly (keyof FileInfo)[];

/** A FileInfo that travels in its compact wire form (see above). Same fields as FileInfo. */
export class FileInfoRecord implements FileInfo {
  constructor(
    public fileId: number, public name: string, public path: string, public isDirectory: boolean, public mode: number,
    public owner: string, public group: string, public creationTimeMs: number, public modificationTimeMs: number,
    public pinned: boolean, public ttlMs: number, public ttlAction: TtlAction, public persistenceState: PersistenceState,
    public blockSizeBytes: number, public lengthBytes: number, public completed: boolean, public blockIds: number[],
    public replicationMin: number, public replicationMax: number, public mountPoint: boolean, public childCount: number,
  ) {}
  declare ufsPath?: string;
}

function writeFileInfo(v: FileInfoRecord): unknown[] {
  return [FILE_INFO_WIRE_VERSION, v.fileId, v.name, v.path, v.isDirectory, v.mode, v.owner, v.group, v.creationTimeMs, v.modificationTimeMs,
    v.pinned, v.ttlMs, v.ttlAction, v.persistenceState, v.blockSizeBytes, v.lengthBytes, v.completed, v.blockIds, v.replicationMin,
    v.replicationMax, v.mountPoint, v.childCount, v.ufsPath ?? null];
}

function readFileInfo(a: unknown): FileInfo {
  if (!Array.isArray(a) || a[0] !== FILE_INFO_WIRE_VERSION || a.length !== FILE_INFO_FIELDS.length + 1) {
    throw new TypeError(`Bad FileInfo on the wire (expected version ${FILE_INFO_WIRE_VERSION} and ${FILE_INFO_FIELDS.length} fields)`);
  }
  const info: FileInfo = {
    fileId: a[1], name: a[2], path: a[3], isDirectory: a[4], mode: a[5], owner: a[6], group: a[7], creationTimeMs: a[8],
    modificationTimeMs: a[9], pinned: a[10], ttlMs: a[11], ttlAction: a[12], persistenceState: a[13], blockSizeBytes: a[14],
    lengthBytes: a[15], completed: a[16], blockIds: a[17], replicationMin: a[18], replicationMax: a[19], mountPoint: a[20], childCount: a[21],
  };
  if (a[22] !== null && a[22] !== undefined) info.ufsPath = a[22];
  return info;
}

addExtension({ Class: FileInfoRecord, type: FILE_INFO_EXTENSION_TYPE, write: writeFileInfo, read: readFileInfo });

export interface CreateFileRequest {
  path: string;
  /** Create missing parent directories. */
  recursive?: boolean;
  blockSizeBytes?: number;
  mode?: number;
  owner?: string;
  group?: string;
  pinned?: boolean;
  ttlMs?: number;
  ttlAction?: TtlAction;
  replicationMin?: number;
  replicationMax?: number;
  /** TO_BE_PERSISTED for ASYNC_THROUGH, NOT_PERSISTED otherwise (default). */
  persistenceState?: PersistenceState;
}
export interface CompleteFileRequest {
  path: string;
  lengthBytes: number;
  /** Set for CACHE_THROUGH / THROUGH writes: the file is already in its UFS. */
  persisted?: boolean;
}
export interface MkdirRequest {
  path: string;
  recursive?: boolean;
  allowExists?: boolean;
  mode?: number;
  owner?: string;
  group?: string;
}
export interface PathRequest { path: string }
export interface ListStatusRequest {
  path: string;
  /** Return entries whose name sorts after this one (exclusive); the previous page's last name. */
  startAfter?: string;
  /** At most this many entries (default and maximum MAX_LIST_PAGE_ENTRIES). */
  limit?: number;
}
export interface ListStatusResponse {
  entries: FileInfo[];
  /** True when more entries follow the last one returned. */
  truncated: boolean;
}
export interface RenameRequest { src: string; dst: string }
export interface DeleteRequest { path: string; recursive?: boolean }
export interface SetAttributeRequest {
  path: string;
  pinned?: boolean;
  /** -1 clears the TTL. */
  ttlMs?: number;
  ttlAction?: TtlAction;
  mode?: number;
  owner?: string;
  group?: string;
  replicationMin?: number;
  replicationMax?: number;
  /** Apply to every descendant of a directory too. */
  recursive?: boolean;
}
export interface FreeRequest { path: string; recursive?: boolean; /** Free even pinned files. */ forced?: boolean }
export interface LoadRequest { path: string; recursive?: boolean }
export interface PersistRequest { path: string }
export interface GetNewBlockIdRequest { path: string }
export interface GetNewBlockIdResponse { blockId: number }

export interface WorkerLocation {
  workerId: number;
  /** The worker's data address, e.g. tcp://10.0.0.5:29999. */
  address: string;
  hostname: string;
  tier: string;
}
export interface BlockLocationInfo {
  blockId: number;
  offsetBytes: number;
  lengthBytes: number;
  locations: WorkerLocation[];
}
export interface GetBlockLocationsResponse {
  file: FileInfo;
  blocks: BlockLocationInfo[];
}
export interface MountRequest {
  path: string;
  /** file:///abs/dir or /abs/dir (memory://name for tests). */
  ufsUri: string;
  readOnly?: boolean;
}
export interface MountPointInfo { path: string; ufsUri: string; readOnly: boolean; mountId: number }

export interface WorkerSummary {
  live: number;
  lost: number;
  capacityBytes: number;
  usedBytes: number;
}
export interface MasterInfo {
  version: string;
  protocolVersion: number;
  startTimeMs: number;
  uptimeMs: number;
  workers: WorkerSummary;
  inodeCount: number;
  blockCount: number;
  mountCount: number;
}
export interface WorkerInfo {
  workerId: number;
  address: string;
  hostname: string;
  state: 'LIVE' | 'LOST';
  capacityBytes: number;
  usedBytes: number;
  blockCount: number;
  lastHeartbeatMs: number;
  startTimeMs: number;
}

/** A block a worker holds: [blockId, lengthBytes] (compact on the wire). */
export type BlockReport = [blockId: number, lengthBytes: number];

export interface RegisterWorkerRequest {
  /** Data address clients use to reach the worker. */
  address: string;
  hostname: string;
  capacityBytes: number;
  usedBytes: number;
  /** Every block the worker holds (full report). */
  blocks: BlockReport[];
  /** Per tier capacity, informational. */
  tiers?: { alias: string; capacityBytes: number; usedBytes: number }[];
}
export interface RegisterWorkerResponse {
  workerId: number;
  heartbeatIntervalMs: number;
  /**
   * The reported blocks that belong to pinned files: the worker's whole pinned set for the
   * blocks it reported (every other reported block is unpinned). Later changes come as
   * `pin` / `unpin` commands. Absent from an older master: the worker keeps its own flags.
   */
  pinnedBlockIds?: number[];
}

export interface WorkerHeartbeatRequest {
  workerId: number;
  capacityBytes: number;
  usedBytes: number;
  addedBlocks: BlockReport[];
  removedBlocks: number[];
}

/**
 * Commands the master hands a worker in a heartbeat reply:
 * - `register`: the master does not know this worker (restart or lost): register again with a full report.
 * - `free`: drop these blocks from the cache (their data is in the UFS).
 * - `delete`: drop these blocks, their file is gone.
 * - `persist`: write file `fileId` (these blocks, in order) to `ufsPath` of `ufsUri`, then reportPersisted.
 * - `load`: read these blocks of the file at `ufsPath` of `ufsUri` into the cache.
 * - `pin` / `unpin`: these blocks' files were pinned / unpinned (setAttribute, or an added block
 *   of a pinned file): a pinned block is never evicted from the worker. Sent after the `free`
 *   and `delete` of the same reply; a block the worker does not hold is skipped.
 *
 * A master `free` is authoritative: the master refuses to free a pinned file unless forced, and a
 * forced free unpins the file first (as Alluxio does), so the worker drops freed blocks even if
 * it still holds them as pinned.
 */
export type WorkerCommand =
  | { type: 'register' }
  | { type: 'free'; blockIds: number[] }
  | { type: 'delete'; blockIds: number[] }
  | { type: 'persist'; fileId: number; path: string; ufsUri: string; ufsPath: string; blockIds: number[]; lengthBytes: number; blockSizeBytes: number }
  | { type: 'load'; fileId: number; ufsUri: string; ufsPath: string; blockIds: number[]; lengthBytes: number; blockSizeBytes: number }
  | { type: 'pin'; blockIds: number[] }
  | { type: 'unpin'; blockIds: number[] };

export interface WorkerHeartbeatResponse { commands: WorkerCommand[] }

export interface CommitBlockRequest {
  /** The worker that holds the block now. */
  workerId: number;
  blockId: number;
  lengthBytes: number;
  tier?: string;
}
export interface CommitBlockResponse {
  /** The block's file is pinned: the worker must not evict the block. */
  pinned: boolean;
}
export interface ReportPersistedRequest {
  workerId?: number;
  fileId: number;
  /** False when the persist failed; the file goes back to NOT_PERSISTED (LOST if data is gone). */
  ok?: boolean;
  /**
   * With `ok: false`: the worker does not hold some of the file's blocks (e.g. it restarted with a
   * MEM-only store). The master marks the file LOST unless another worker still holds every block.
   */
  lost?: boolean;
}

/**
 * The master's health: ok, or not serving (a failed journal: every other call then fails with
 * `code`, TESSERA_ERR_JOURNAL_FAILED, and the process is expected to exit and replay).
 */
export type MasterHealth = { ok: true } | { ok: false; code: string; message: string };

/** Every call of the master service, request → response. */
export interface MasterApi {
  health(req: Record<string, never>): Promise<MasterHealth>;
  getInfo(req: Record<string, never>): Promise<MasterInfo>;
  createFile(req: CreateFileRequest): Promise<FileInfo>;
  completeFile(req: CompleteFileRequest): Promise<FileInfo>;
  mkdir(req: MkdirRequest): Promise<FileInfo>;
  getStatus(req: PathRequest): Promise<FileInfo>;
  listStatus(req: ListStatusRequest): Promise<ListStatusResponse>;
  exists(req: PathRequest): Promise<boolean>;
  rename(req: RenameRequest): Promise<void>;
  delete(req: DeleteRequest): Promise<void>;
  setAttribute(req: SetAttributeRequest): Promise<FileInfo>;
  free(req: FreeRequest): Promise<{ blockCount: number }>;
  load(req: LoadRequest): Promise<{ blockCount: number }>;
  persist(req: PersistRequest): Promise<FileInfo>;
  getNewBlockId(req: GetNewBlockIdRequest): Promise<GetNewBlockIdResponse>;
  getBlockLocations(req: PathRequest): Promise<GetBlockLocationsResponse>;
  mount(req: MountRequest): Promise<MountPointInfo>;
  unmount(req: PathRequest): Promise<void>;
  getMountTable(req: Record<string, never>): Promise<MountPointInfo[]>;
  getWorkers(req: Record<string, never>): Promise<WorkerInfo[]>;
  registerWorker(req: RegisterWorkerRequest): Promise<RegisterWorkerResponse>;
  workerHeartbeat(req: WorkerHeartbeatRequest): Promise<WorkerHeartbeatResponse>;
  commitBlock(req: CommitBlockRequest): Promise<CommitBlockResponse>;
  reportPersisted(req: ReportPersistedRequest): Promise<void>;
}

export type MasterMethod = keyof MasterApi;

/** The method names, in a fixed order (method ids on the wire may be their index). */
export const MASTER_METHODS = [
  'health', 'getInfo', 'createFile', 'completeFile', 'mkdir', 'getStatus', 'listStatus', 'exists', 'rename',
  'delete', 'setAttribute', 'free', 'load', 'persist', 'getNewBlockId', 'getBlockLocations', 'mount', 'unmount',
  'getMountTable', 'getWorkers', 'registerWorker', 'workerHeartbeat', 'commitBlock', 'reportPersisted',
] as const satisfies readonly MasterMethod[];

type Empty = Record<string, never>;

/** The master service definition: `server.register(MasterService, handlers)`, `client.service(MasterService)`. */
export const MasterService = defineService(MASTER_SERVICE_NAME, {
  health: method<Empty, MasterHealth>(),
  getInfo: method<Empty, MasterInfo>(),
  createFile: method<CreateFileRequest, FileInfo>(),
  completeFile: method<CompleteFileRequest, FileInfo>(),
  mkdir: method<MkdirRequest, FileInfo>(),
  getStatus: method<PathRequest, FileInfo>(),
  listStatus: method<ListStatusRequest, ListStatusResponse>(),
  exists: method<PathRequest, boolean>(),
  rename: method<RenameRequest, void>(),
  delete: method<DeleteRequest, void>(),
  setAttribute: method<SetAttributeRequest, FileInfo>(),
  free: method<FreeRequest, { blockCount: number }>(),
  load: method<LoadRequest, { blockCount: number }>(),
  persist: method<PersistRequest, FileInfo>(),
  getNewBlockId: method<GetNewBlockIdRequest, GetNewBlockIdResponse>(),
  getBlockLocations: method<PathRequest, GetBlockLocationsResponse>(),
  mount: method<MountRequest, MountPointInfo>(),
  unmount: method<PathRequest, void>(),
  getMountTable: method<Empty, MountPointInfo[]>(),
  getWorkers: method<Empty, WorkerInfo[]>(),
  registerWorker: method<RegisterWorkerRequest, RegisterWorkerResponse>(),
  workerHeartbeat: method<WorkerHeartbeatRequest, WorkerHeartbeatResponse>(),
  commitBlock: method<CommitBlockRequest, CommitBlockResponse>(),
  reportPersisted: method<ReportPersistedRequest, void>(),
});
export type MasterServiceDef = typeof MasterService;
