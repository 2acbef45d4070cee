/**
 * The file-system master: every master operation, on top of the journaled namespace
 * (master/namespace.ts), the block master (not journaled) and the UFS of each mount.
 *
 * A mutation is one journal entry: the journal applies it synchronously (so the reply is built
 * from the state right after it, before any other operation runs) and the reply waits until
 * the entry is durable. UFS I/O (metadata loading, deletes and renames under a mount) happens
 * before the entry, after the namespace checks that can be done without it.
 *
 * It knows nothing of the network: master/host.ts serves it over a transport. Time comes from
 * an injected clock, so TTL expiry and lost workers are tested with a fake one (`tick()`).
 */
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';
import { assert } from '../core/assert.js';
import { DEFAULT_BLOCK_SIZE_BYTES, DEFAULT_CHECKPOINT_PERIOD_ENTRIES, MAX_WORKER_COMMAND_BLOCK_IDS } from '../core/constants.js';
import { join } from 'node:path';
import { JOURNAL_VERSION_FILE as VERSION_FILE, Journal, nodeFs, type Fs } from '../core/journal/index.js';
import type {
  BlockLocationInfo, CommitBlockRequest, CommitBlockResponse, CompleteFileRequest, CreateFileRequest, DeleteRequest, FileInfo, FreeRequest,
  GetBlockLocationsResponse, ListStatusRequest, ListStatusResponse, LoadRequest, MasterInfo, MkdirRequest, MountPointInfo,
  MountRequest, RegisterWorkerRequest, RegisterWorkerResponse, RenameRequest, ReportPersistedRequest, SetAttributeRequest,
  WorkerCommand, WorkerHeartbeatRequest, WorkerHeartbeatResponse, WorkerInfo,
} from '../transports/protocol/master.js';
import { MASTER_PROTOCOL_VERSION, blockIdOf, fileIdOfBlock } from '../transports/protocol/master.js';
import { openUfs, type UnderFileSystem } from '../ufs/index.js';
import { BlockMaster, type Clock } from './block-master.js';
import { F_COMPLETED, F_LOADED, F_PINNED, F_TTL_FREE, type CreateOptions, type Attributes, type RemovedFile } from './inode-tree.js';
import { EntryType, NAMESPACE_COMPONENT, NamespaceMachine, type ApplyResult, type EntryTypeValue, type LoadedEntry } from './namespace.js';
import type { MountPoint } from './mount-table.js';
import { joinComponents, joinPath, normalizePath, pathComponents } from './path.js';

export const MASTER_VERSION = '0.1.0';
/** Most UFS entries per LOAD_UFS journal entry (each well under JOURNAL_MAX_ENTRY_BYTES). */
const LOAD_BATCH_ENTRIES = 2000;

export interface FileSystemMasterOptions {
  /** Journal directory. Without it the namespace lives in memory only. */
  journalDir?: string;
  /**
   * Format the journal directory first when it is missing or completely empty (first start);
   * an existing journal is kept, and a non-empty directory that holds no journal is refused
   * with JOURNAL_NOT_FORMATTED (it may be the wrong path or an unmounted volume).
   */
  format?: boolean;
  /** The file system the journal lives on (default the real one; tests pass a SimFs to inject faults). */
  journalFs?: Fs;
  clock?: Clock;
  workerTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Inode slots to allocate at start-up. */
  initialInodeCapacity?: number;
  logRollBytes?: number;
  /** tick() starts a checkpoint once this many entries follow the last one (default DEFAULT_CHECKPOINT_PERIOD_ENTRIES). */
  checkpointPeriodEntries?: number;
}

function pick<T extends object>(o: T, keys: readonly (keyof T)[]): Partial<T> {
  const out: Partial<T> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
const CREATE_KEYS = ['blockSizeBytes', 'mode', 'owner', 'group', 'pinned', 'ttlMs', 'ttlAction', 'replicationMin', 'replicationMax', 'persistenceState'] as const;
const ATTRIBUTE_KEYS = ['pinned', 'ttlMs', 'ttlAction', 'mode', 'owner', 'group', 'replicationMin', 'replicationMax'] as const;

/**
 * Formats `dir` when it does not exist or is completely empty; returns whether it did. A
 * directory that holds anything but no VERSION file is refused: formatting it would hide a
 * wrong path or a volume that failed to mount behind a silently empty namespace.
 */
async function formatIfNew(fs: Fs, dir: string): Promise<boolean> {
  const s = await fs.stat(dir);
  if (s !== undefined && s.kind === 'directory') {
    const names = await fs.readdir(dir);
    if (names.length > 0) {
      if ((await fs.stat(join(dir, VERSION_FILE))) === undefined) {
        throw new TesseraError(ErrorCode.JOURNAL_NOT_FORMATTED, `Cannot start the master: the journal directory ${dir} is not empty ` +
          `(${names.length} entries: ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}) and holds no journal (no ${VERSION_FILE} file); ` +
          `it is formatted automatically only when missing or empty. Check the path (is the right volume mounted?), ` +
          `or erase it with \`tessera format --journal-dir ${dir} --force\``);
      }
      return false;
    }
  }
  await Journal.format(dir, { fs }); // refuses a path that is not a directory
  return true;
}

function checkRequest(req: unknown, what: string): asserts req is Record<string, unknown> {
  if (req === null || typeof req !== 'object') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid ${what} request: an object`);
}

export class FileSystemMaster {
  readonly ns: NamespaceMachine;
  readonly blocks: BlockMaster;
  readonly clock: Clock;
  readonly startTimeMs: number;
  #journal: Journal | undefined;
  #ufs = new Map<string, Promise<UnderFileSystem>>();
  /** Files waiting for a worker to persist them (ASYNC_THROUGH, persist()). */
  #toPersist = new Set<number>();
  #nextPersistWorker = 0;
  /**
   * Pin changes waiting for each worker's next heartbeat replies (workerId → blockId → pinned;
   * the latest change of a block wins, so a worker's map is bounded by the blocks it holds).
   * Not journaled: a registration replaces them, since its reply carries the whole pinned set.
   */
  #pinChanges = new Map<number, Map<number, boolean>>();
  #closed = false;
  #formattedJournal = false;
  #checkpointing: Promise<void> | undefined;
  readonly #checkpointPeriodEntries: number;

  private constructor(o: FileSystemMasterOptions) {
    this.clock = o.clock ?? Date.now;
    this.startTimeMs = this.clock();
    this.ns = new NamespaceMachine(o.initialInodeCapacity);
    this.#checkpointPeriodEntries = o.checkpointPeriodEntries ?? DEFAULT_CHECKPOINT_PERIOD_ENTRIES;
    if (!Number.isInteger(this.#checkpointPeriodEntries) || this.#checkpointPeriodEntries < 1) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option checkpointPeriodEntries: ${String(o.checkpointPeriodEntries)} (a positive integer)`);
    }
    this.blocks = new BlockMaster({ clock: this.clock, ...(o.workerTimeoutMs !== undefined ? { workerTimeoutMs: o.workerTimeoutMs } : {}),
      ...(o.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: o.heartbeatIntervalMs } : {}) });
  }

  /** Opens a master: replays the journal (checkpoint, then logs) into the namespace. */
  static async open(o: FileSystemMasterOptions = {}): Promise<FileSystemMaster> {
    const m = new FileSystemMaster(o);
    if (o.journalDir !== undefined) {
      const fs = o.journalFs ?? nodeFs;
      if (o.format) m.#formattedJournal = await formatIfNew(fs, o.journalDir);
      m.#journal = await Journal.open(o.journalDir, [m.ns], { fs, ...(o.logRollBytes !== undefined ? { logRollBytes: o.logRollBytes } : {}) });
    }
    m.#rescanPersist();
    return m;
  }

  get journal(): Journal | undefined { return this.#journal; }
  /** True when open() formatted a new journal (`format` and a missing or empty directory). */
  get formattedJournal(): boolean { return this.#formattedJournal; }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#journal?.close();
    const ufs = [...this.#ufs.values()];
    this.#ufs.clear();
    for (const u of ufs) await u.then((x) => x.close(), () => undefined);
  }

  /** Writes a checkpoint of the namespace (and drops the logs it covers). */
  async checkpoint(): Promise<void> {
    if (this.#journal) await this.#journal.checkpoint(NAMESPACE_COMPONENT);
  }

  // ---- journaling ------------------------------------------------------------------------

  /**
   * Appends one entry: returns what `apply` produced (read synchronously, before any other
   * operation can run) and a promise that resolves once the entry is durable.
   */
  #append(type: EntryTypeValue, args: unknown[]): { r: ApplyResult; durable: Promise<unknown> } {
    if (this.#closed) throw new TesseraError(ErrorCode.CLOSED, 'The master is closed');
    const j = this.#journal;
    if (j === undefined) return { r: this.ns.applyArgs(type, args), durable: Promise.resolve() };
    this.ns.lastResult = { kind: 'none' };
    const durable = j.append(NAMESPACE_COMPONENT, type, NamespaceMachine.encode(args));
    const r = this.ns.lastResult;
    assert(r.kind !== 'none', 'the journal applies an entry as it appends it');
    return { r, durable };
  }

  #slot(r: ApplyResult): number {
    assert(r.kind !== 'none', 'an operation result names a slot');
    return r.slot;
  }

  #info(slot: number, path: string): FileInfo {
    const info = this.ns.tree.info(slot, path);
    if (this.ns.mounts.size > 0) {
      const res = this.ns.mounts.resolve(path);
      if (res !== undefined) info.ufsPath = res.relativePath;
    }
    return info;
  }

  // ---- UFS -------------------------------------------------------------------------------

  #ufsOf(mount: MountPoint): Promise<UnderFileSystem> {
    let u = this.#ufs.get(mount.ufsUri);
    if (u === undefined) {
      u = openUfs(mount.ufsUri);
      this.#ufs.set(mount.ufsUri, u);
      u.catch(() => this.#ufs.delete(mount.ufsUri));
    }
    return u;
  }

  /**
   * Makes sure every existing component of `components` is in the namespace, loading missing
   * ones from the UFS of the mount they are under. Missing in both: nothing happens (the
   * caller's lookup reports it).
   */
  async #loadPath(components: readonly string[], upTo = components.length): Promise<void> {
    if (this.ns.mounts.size === 0) return;
    const t = this.ns.tree;
    for (let i = 1; i <= upTo; i++) {
      const prefix = components.slice(0, i);
      let s: number;
      try {
        s = t.lookup(prefix);
      } catch {
        return; // an ancestor is a file: the caller's lookup reports it
      }
      if (s >= 0) continue;
      const p = joinComponents(prefix);
      const res = this.ns.mounts.resolve(p);
      if (res === undefined) return;
      const ufs = await this.#ufsOf(res.mount);
      const st = await ufs.stat(res.relativePath);
      if (st === undefined) return;
      const parent = joinComponents(prefix.slice(0, -1));
      const entry: LoadedEntry = [prefix[i - 1]!, st.isDirectory, st.lengthBytes, st.modificationTimeMs];
      const { durable } = this.#append(EntryType.LOAD_UFS, [parent, [entry], false, DEFAULT_BLOCK_SIZE_BYTES, this.clock()]);
      await durable;
    }
  }

  /** Loads the UFS listing of a directory under a mount once. */
  async #loadChildren(path: string, slot: number): Promise<void> {
    const t = this.ns.tree;
    if (!t.isDir(slot) || (t.flags[slot]! & F_LOADED) !== 0) return;
    const res = this.ns.mounts.resolve(path);
    if (res === undefined) return;
    const ufs = await this.#ufsOf(res.mount);
    const list = await ufs.list(res.relativePath);
    const entries: LoadedEntry[] = list.map((e) => [e.name, e.isDirectory, e.lengthBytes, e.modificationTimeMs]);
    for (let i = 0; i < entries.length || i === 0; i += LOAD_BATCH_ENTRIES) {
      const batch = entries.slice(i, i + LOAD_BATCH_ENTRIES);
      const last = i + LOAD_BATCH_ENTRIES >= entries.length;
      const { durable } = this.#append(EntryType.LOAD_UFS, [path, batch, last, DEFAULT_BLOCK_SIZE_BYTES, this.clock()]);
      await durable;
    }
  }

  /** The writable mount `path` is under, or undefined; throws UFS_READ_ONLY for a read-only mount. */
  #writableMount(path: string, op: string): { mount: MountPoint; relativePath: string } | undefined {
    if (this.ns.mounts.size === 0) return undefined;
    const res = this.ns.mounts.resolve(path);
    if (res !== undefined && res.mount.readOnly) {
      throw new TesseraError(ErrorCode.UFS_READ_ONLY, `Cannot ${op} ${path}: the mount ${res.mount.path} is read-only`);
    }
    return res;
  }

  #inTree(c: readonly string[]): boolean {
    try {
      return this.ns.tree.lookup(c) >= 0;
    } catch {
      return false;
    }
  }

  // ---- client operations -----------------------------------------------------------------

  async createFile(req: CreateFileRequest): Promise<FileInfo> {
    checkRequest(req, 'createFile');
    const c = pathComponents(req.path);
    const path = joinComponents(c);
    if (this.ns.mounts.size > 0) {
      this.#writableMount(path, 'create');
      await this.#loadPath(c);
    }
    const opts = pick(req, CREATE_KEYS) as CreateOptions;
    const { r, durable } = this.#append(EntryType.CREATE_FILE, [path, req.recursive === true, opts, this.clock()]);
    const info = this.#info(this.#slot(r), path);
    await durable;
    return info;
  }

  async completeFile(req: CompleteFileRequest): Promise<FileInfo> {
    checkRequest(req, 'completeFile');
    const path = normalizePath(req.path);
    const { r, durable } = this.#append(EntryType.COMPLETE_FILE, [path, req.lengthBytes, req.persisted === true, this.clock()]);
    const slot = this.#slot(r);
    const info = this.#info(slot, path);
    await durable;
    if (info.persistenceState === 'TO_BE_PERSISTED') {
      this.#toPersist.add(info.fileId);
      this.#schedulePersists();
    }
    return info;
  }

  async mkdir(req: MkdirRequest): Promise<FileInfo> {
    checkRequest(req, 'mkdir');
    const c = pathComponents(req.path);
    const path = joinComponents(c);
    if (this.ns.mounts.size > 0) {
      const m = this.#writableMount(path, 'mkdir');
      await this.#loadPath(c);
      if (m !== undefined && !this.#inTree(c)) {
        const ufs = await this.#ufsOf(m.mount);
        await ufs.mkdir(m.relativePath, { recursive: req.recursive === true });
      }
    }
    const opts = pick(req, ['mode', 'owner', 'group']) as CreateOptions;
    const { r, durable } = this.#append(EntryType.MKDIR, [path, req.recursive === true, req.allowExists === true, opts, this.clock()]);
    const info = this.#info(this.#slot(r), path);
    await durable;
    return info;
  }

  async getStatus(req: { path: string }): Promise<FileInfo> {
    checkRequest(req, 'getStatus');
    const c = pathComponents(req.path);
    const path = joinComponents(c);
    const t = this.ns.tree;
    let s: number;
    try {
      s = t.lookup(c);
    } catch (e) {
      if (this.ns.mounts.size === 0 || !isTesseraError(e, ErrorCode.FILE_NOT_FOUND)) throw e;
      s = -1;
    }
    if (s < 0) {
      await this.#loadPath(c);
      s = t.get(c);
    }
    return this.#info(s, path);
  }

  async listStatus(req: ListStatusRequest): Promise<ListStatusResponse> {
    checkRequest(req, 'listStatus');
    const c = pathComponents(req.path);
    const t = this.ns.tree;
    if (this.ns.mounts.size > 0) {
      await this.#loadPath(c);
      await this.#loadChildren(joinComponents(c), t.get(c));
    }
    if (req.startAfter !== undefined && typeof req.startAfter !== 'string') {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid startAfter: a string');
    }
    const { slots, dirPath, truncated } = t.list(c, req.startAfter, req.limit);
    return { entries: slots.map((s) => this.#info(s, joinPath(dirPath, t.names[s]!))), truncated };
  }

  async exists(req: { path: string }): Promise<boolean> {
    try {
      await this.getStatus(req);
      return true;
    } catch (e) {
      if (isTesseraError(e, ErrorCode.FILE_NOT_FOUND) || isTesseraError(e, ErrorCode.NOT_A_DIRECTORY)) return false;
      throw e;
    }
  }

  async rename(req: RenameRequest): Promise<void> {
    checkRequest(req, 'rename');
    const src = pathComponents(req.src);
    const dst = pathComponents(req.dst);
    if (this.ns.mounts.size > 0) {
      await this.#loadPath(src);
      await this.#loadPath(dst);
      const t = this.ns.tree;
      t.checkRename(src, dst);
      const a = this.#writableMount(joinComponents(src), 'rename');
      const b = this.#writableMount(joinComponents(dst), 'rename');
      if (a !== undefined && b !== undefined && a.mount.mountId === b.mount.mountId && !this.ns.mounts.hasMountAtOrBelow(joinComponents(src))) {
        const ufs = await this.#ufsOf(a.mount);
        if (await ufs.exists(a.relativePath)) await ufs.rename(a.relativePath, b.relativePath);
      }
    }
    const { durable } = this.#append(EntryType.RENAME, [joinComponents(src), joinComponents(dst), this.clock()]);
    await durable;
  }

  async delete(req: DeleteRequest): Promise<void> {
    checkRequest(req, 'delete');
    const c = pathComponents(req.path);
    const path = joinComponents(c);
    const recursive = req.recursive === true;
    if (this.ns.mounts.size > 0) {
      await this.#loadPath(c);
      const s = this.ns.tree.checkDelete(c, recursive);
      if (this.ns.mounts.hasMountAtOrBelow(path)) {
        throw new TesseraError(ErrorCode.MOUNT_CONFLICT, `Cannot delete ${path}: it is or holds a mount point (unmount first)`);
      }
      const m = this.#writableMount(path, 'delete');
      if (m !== undefined) {
        if (this.ns.tree.isDir(s) && !recursive) await this.#loadChildren(path, s);
        this.ns.tree.checkDelete(c, recursive);
        const ufs = await this.#ufsOf(m.mount);
        if (await ufs.exists(m.relativePath)) await ufs.delete(m.relativePath, { recursive });
      }
    }
    const { r, durable } = this.#append(EntryType.DELETE, [path, recursive, this.clock()]);
    assert(r.kind === 'removed', 'delete reports what it removed');
    this.#dropBlocks(r.removed);
    await durable;
  }

  #dropBlocks(removed: RemovedFile[]): void {
    for (const f of removed) {
      this.#toPersist.delete(f.fileId);
      const ids: number[] = [];
      for (let i = 0; i < f.blockCount; i++) ids.push(blockIdOf(f.fileId, i));
      this.blocks.deleteBlocks(ids);
    }
  }

  async setAttribute(req: SetAttributeRequest): Promise<FileInfo> {
    checkRequest(req, 'setAttribute');
    const c = pathComponents(req.path);
    const path = joinComponents(c);
    await this.#loadPath(c);
    const attrs = pick(req, ATTRIBUTE_KEYS) as Attributes;
    const { r, durable } = this.#append(EntryType.SET_ATTRIBUTE, [path, attrs, req.recursive === true, this.clock()]);
    const info = this.#info(this.#slot(r), path);
    const pinBlocks = typeof attrs.pinned === 'boolean' ? this.#blocksOf(this.#pinnedBy(this.#slot(r), req.recursive === true)) : [];
    await durable;
    if (typeof attrs.pinned === 'boolean') this.#queuePins(pinBlocks, attrs.pinned);
    return info;
  }

  /** The files a pinned change at `slot` applies to: the file, or a directory's files when recursive. */
  #pinnedBy(slot: number, recursive: boolean): number[] {
    const t = this.ns.tree;
    if (!t.isDir(slot)) return [slot];
    const out: number[] = [];
    if (recursive) t.forEachInSubtree(slot, (x) => { if (!t.isDir(x)) out.push(x); });
    return out;
  }

  #blocksOf(slots: readonly number[]): number[] {
    const t = this.ns.tree;
    const ids: number[] = [];
    for (const s of slots) for (let i = 0; i < t.blockCounts[s]!; i++) ids.push(blockIdOf(t.ids[s]!, i));
    return ids;
  }

  /** True when inode `slot` (undefined: none) is a file and pinned. */
  #filePinned(slot: number | undefined): boolean {
    const t = this.ns.tree;
    return slot !== undefined && !t.isDir(slot) && (t.flags[slot]! & F_PINNED) !== 0;
  }

  /** True when the file of `blockId` exists and is pinned. */
  #blockPinned(blockId: number): boolean {
    return this.#filePinned(this.ns.tree.idToSlot.get(fileIdOfBlock(blockId)));
  }

  /** Tells every worker holding these blocks that they are now pinned (or not), at its next heartbeat. */
  #queuePins(blockIds: readonly number[], pinned: boolean): void {
    for (const id of blockIds) for (const l of this.blocks.locations(id)) this.#notePin(l.workerId, id, pinned);
  }

  #notePin(workerId: number, blockId: number, pinned: boolean): void {
    let m = this.#pinChanges.get(workerId);
    if (m === undefined) this.#pinChanges.set(workerId, m = new Map());
    m.set(blockId, pinned);
  }

  /**
   * The pin and unpin commands waiting for a worker (after its free and delete commands): at
   * most MAX_WORKER_COMMAND_BLOCK_IDS block ids per reply, oldest first; the rest wait.
   */
  #takePinCommands(workerId: number): WorkerCommand[] {
    const m = this.#pinChanges.get(workerId);
    if (m === undefined) return [];
    const pin: number[] = [];
    const unpin: number[] = [];
    for (const [id, p] of m) {
      if (pin.length + unpin.length >= MAX_WORKER_COMMAND_BLOCK_IDS) break;
      (p ? pin : unpin).push(id);
      m.delete(id);
    }
    if (m.size === 0) this.#pinChanges.delete(workerId);
    const out: WorkerCommand[] = [];
    if (pin.length > 0) out.push({ type: 'pin', blockIds: pin });
    if (unpin.length > 0) out.push({ type: 'unpin', blockIds: unpin });
    return out;
  }

  /** Completed files in the subtree at `path` (or the file itself). */
  #filesUnder(c: readonly string[], recursive: boolean): number[] {
    const t = this.ns.tree;
    const s = t.get(c);
    if (!t.isDir(s)) return [s];
    if (!recursive && t.childCount(s) > 0) {
      throw new TesseraError(ErrorCode.DIRECTORY_NOT_EMPTY, `Cannot operate on ${joinComponents(c)}: the directory is not empty (use recursive)`);
    }
    const out: number[] = [];
    t.forEachInSubtree(s, (x) => { if (!t.isDir(x)) out.push(x); });
    return out;
  }

  async free(req: FreeRequest): Promise<{ blockCount: number }> {
    checkRequest(req, 'free');
    const c = pathComponents(req.path);
    await this.#loadPath(c);
    const t = this.ns.tree;
    const files = this.#filesUnder(c, req.recursive === true);
    const pinned: number[] = [];
    for (const s of files) {
      if (t.persistence[s] !== 2) {
        throw new TesseraError(ErrorCode.FILE_NOT_PERSISTED, `Cannot free ${t.pathOf(s)}: it is not persisted (its blocks are the only copy)`);
      }
      if ((t.flags[s]! & F_PINNED) !== 0) {
        if (req.forced !== true) throw new TesseraError(ErrorCode.FILE_PINNED, `Cannot free ${t.pathOf(s)}: it is pinned (unpin it or use forced)`);
        pinned.push(s);
      }
    }
    // A forced free unpins the pinned files first, as Alluxio does: the workers drop the blocks
    // (a master free is authoritative there) and nothing pins them again when they come back.
    const unpinned = pinned.map((s) => this.#append(EntryType.SET_ATTRIBUTE, [t.pathOf(s), { pinned: false }, false, this.clock()]).durable);
    this.#queuePins(this.#blocksOf(pinned), false);
    const n = this.blocks.freeBlocks(this.#blocksOf(files));
    await Promise.all(unpinned);
    return { blockCount: n };
  }

  async load(req: LoadRequest): Promise<{ blockCount: number }> {
    checkRequest(req, 'load');
    const c = pathComponents(req.path);
    await this.#loadPath(c);
    const t = this.ns.tree;
    const files = this.#filesUnder(c, req.recursive === true);
    let n = 0;
    for (const s of files) {
      if (t.persistence[s] !== 2 || (t.flags[s]! & F_COMPLETED) === 0) continue;
      const path = t.pathOf(s);
      const res = this.ns.mounts.resolve(path);
      if (res === undefined) continue;
      const missing: number[] = [];
      for (let i = 0; i < t.blockCounts[s]!; i++) {
        const id = blockIdOf(t.ids[s]!, i);
        if (this.blocks.locations(id).length === 0) missing.push(id);
      }
      if (missing.length === 0) continue;
      const w = this.#pickWorker();
      this.blocks.queueCommand(w, {
        type: 'load', fileId: t.ids[s]!, ufsUri: res.mount.ufsUri, ufsPath: res.relativePath, blockIds: missing,
        lengthBytes: t.lengths[s]!, blockSizeBytes: t.blockSizes[s]!,
      });
      n += missing.length;
    }
    return { blockCount: n };
  }

  #pickWorker(): number {
    const live = this.blocks.liveWorkerIds();
    if (live.length === 0) throw new TesseraError(ErrorCode.NO_WORKER, 'No live worker to do the work');
    return live[this.#nextPersistWorker++ % live.length]!;
  }

  async persist(req: { path: string }): Promise<FileInfo> {
    checkRequest(req, 'persist');
    const c = pathComponents(req.path);
    const path = joinComponents(c);
    await this.#loadPath(c);
    const t = this.ns.tree;
    const s = t.get(c);
    if (t.isDir(s)) throw new TesseraError(ErrorCode.IS_A_DIRECTORY, `Cannot persist ${path}: it is a directory`);
    if ((t.flags[s]! & F_COMPLETED) === 0) throw new TesseraError(ErrorCode.FILE_INCOMPLETE, `Cannot persist ${path}: it is not complete`);
    const res = this.#writableMount(path, 'persist');
    if (res === undefined) throw new TesseraError(ErrorCode.NOT_MOUNTED, `Cannot persist ${path}: it is under no mount point`);
    if (t.persistence[s] === 2) return this.#info(s, path);
    const id = t.ids[s]!;
    if (t.lengths[s] === 0) {
      // Nothing to copy from a worker: the master writes the empty file itself.
      const ufs = await this.#ufsOf(res.mount);
      const w = await ufs.create(res.relativePath, { overwrite: true });
      await w.close();
      const { r, durable } = this.#append(EntryType.SET_PERSISTENCE, [id, 'PERSISTED', this.clock()]);
      const info = this.#info(this.#slot(r), path);
      await durable;
      return info;
    }
    const { r, durable } = this.#append(EntryType.SET_PERSISTENCE, [id, 'TO_BE_PERSISTED', this.clock()]);
    const info = this.#info(this.#slot(r), path);
    await durable;
    this.#toPersist.add(id);
    this.#schedulePersists();
    return info;
  }

  /** Hands each waiting file to a worker that holds its first block (or any live worker). */
  #schedulePersists(): void {
    if (this.#toPersist.size === 0) return;
    const t = this.ns.tree;
    for (const id of [...this.#toPersist]) {
      const s = t.idToSlot.get(id);
      if (s === undefined || t.persistence[s] !== 1 || (t.flags[s]! & F_COMPLETED) === 0) { this.#toPersist.delete(id); continue; }
      const path = t.pathOf(s);
      const res = this.ns.mounts.resolve(path);
      if (res === undefined) { this.#toPersist.delete(id); continue; }
      const holders = this.blocks.locations(blockIdOf(id, 0)).map((l) => l.workerId);
      const live = this.blocks.liveWorkerIds();
      const w = holders.find((x) => this.blocks.isLive(x)) ?? live[0];
      if (w === undefined) return;
      const blockIds: number[] = [];
      for (let i = 0; i < t.blockCounts[s]!; i++) blockIds.push(blockIdOf(id, i));
      this.blocks.queueCommand(w, {
        type: 'persist', fileId: id, path, ufsUri: res.mount.ufsUri, ufsPath: res.relativePath, blockIds,
        lengthBytes: t.lengths[s]!, blockSizeBytes: t.blockSizes[s]!,
      });
      this.#toPersist.delete(id);
    }
  }

  #rescanPersist(): void {
    const t = this.ns.tree;
    for (let s = 0; s < t.slotCount; s++) if (t.isLive(s) && t.persistence[s] === 1) this.#toPersist.add(t.ids[s]!);
  }

  async getNewBlockId(req: { path: string }): Promise<{ blockId: number }> {
    checkRequest(req, 'getNewBlockId');
    const path = normalizePath(req.path);
    const { r, durable } = this.#append(EntryType.NEW_BLOCK, [path]);
    const s = this.#slot(r);
    const t = this.ns.tree;
    const blockId = blockIdOf(t.ids[s]!, t.blockCounts[s]! - 1);
    await durable;
    return { blockId };
  }

  async getBlockLocations(req: { path: string }): Promise<GetBlockLocationsResponse> {
    const file = await this.getStatus(req);
    if (file.isDirectory) throw new TesseraError(ErrorCode.IS_A_DIRECTORY, `Cannot get block locations of ${file.path}: it is a directory`);
    const blocks: BlockLocationInfo[] = file.blockIds.map((blockId, i) => {
      const offsetBytes = i * file.blockSizeBytes;
      const lengthBytes = file.completed
        ? Math.min(file.blockSizeBytes, file.lengthBytes - offsetBytes)
        : (this.blocks.blockLength(blockId) ?? 0);
      return { blockId, offsetBytes, lengthBytes, locations: this.blocks.locations(blockId) };
    });
    return { file, blocks };
  }

  async mount(req: MountRequest): Promise<MountPointInfo> {
    checkRequest(req, 'mount');
    const c = pathComponents(req.path);
    const path = joinComponents(c);
    if (typeof req.ufsUri !== 'string' || req.ufsUri.length === 0) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid ufsUri: a non-empty string');
    this.ns.mounts.checkAdd(path, req.ufsUri);
    await openUfs(req.ufsUri).then((u) => u.close()); // the URI must open now, not at first use
    const { r, durable } = this.#append(EntryType.MOUNT, [path, req.ufsUri, req.readOnly === true, this.clock()]);
    assert(r.kind === 'mount', 'mount reports its mount point');
    const m = r.mount;
    await durable;
    return { path: m.path, ufsUri: m.ufsUri, readOnly: m.readOnly, mountId: m.mountId };
  }

  async unmount(req: { path: string }): Promise<void> {
    checkRequest(req, 'unmount');
    const path = normalizePath(req.path);
    const { r, durable } = this.#append(EntryType.UNMOUNT, [path, this.clock()]);
    assert(r.kind === 'removed', 'unmount reports what it removed');
    this.#dropBlocks(r.removed);
    await durable;
  }

  getMountTable(): MountPointInfo[] {
    return this.ns.mounts.list().map((m) => ({ path: m.path, ufsUri: m.ufsUri, readOnly: m.readOnly, mountId: m.mountId }));
  }

  // ---- worker operations -----------------------------------------------------------------

  async registerWorker(req: RegisterWorkerRequest): Promise<RegisterWorkerResponse> {
    checkRequest(req, 'registerWorker');
    const workerId = this.blocks.register(req);
    // The reply carries the worker's whole pinned set: pin changes waiting for it are covered.
    this.#pinChanges.delete(workerId);
    const pinnedBlockIds: number[] = [];
    // Blocks of files that no longer exist: tell the worker to delete them. Files that were
    // LOST and have every block located again are back to NOT_PERSISTED.
    const t = this.ns.tree;
    const stale: number[] = [];
    const found = new Set<number>();
    for (const [blockId] of req.blocks) {
      const fileId = fileIdOfBlock(blockId);
      const s = t.idToSlot.get(fileId);
      if (s === undefined || t.isDir(s)) stale.push(blockId);
      else if (t.persistence[s] === 3) found.add(fileId);
      if (this.#filePinned(s)) pinnedBlockIds.push(blockId);
    }
    if (stale.length > 0) this.blocks.deleteBlocks(stale);
    for (const fileId of found) {
      const s = t.idToSlot.get(fileId);
      if (s === undefined || t.persistence[s] !== 3) continue;
      let all = true;
      for (let i = 0; i < t.blockCounts[s]! && all; i++) all = this.blocks.locations(blockIdOf(fileId, i)).length > 0;
      if (all) await this.#append(EntryType.SET_PERSISTENCE, [fileId, 'NOT_PERSISTED', this.clock()]).durable;
    }
    this.#schedulePersists();
    return { workerId, heartbeatIntervalMs: this.blocks.heartbeatIntervalMs, pinnedBlockIds };
  }

  /** Completed files that are in no UFS and just lost a block's last copy become LOST. */
  async #markLost(blockIds: number[]): Promise<number[]> {
    const t = this.ns.tree;
    const lost: number[] = [];
    for (const fileId of new Set(blockIds.map(fileIdOfBlock))) {
      const s = t.idToSlot.get(fileId);
      if (s === undefined || t.isDir(s) || (t.flags[s]! & F_COMPLETED) === 0 || t.persistence[s]! >= 2) continue;
      await this.#append(EntryType.SET_PERSISTENCE, [fileId, 'LOST', this.clock()]).durable;
      this.#toPersist.delete(fileId);
      lost.push(fileId);
    }
    return lost;
  }

  workerHeartbeat(req: WorkerHeartbeatRequest): WorkerHeartbeatResponse {
    checkRequest(req, 'workerHeartbeat');
    const commands: WorkerCommand[] = this.blocks.heartbeat(req);
    if (commands.some((c) => c.type === 'register')) return { commands };
    // Blocks the worker cached since (from a UFS, a load, a write) whose file is pinned.
    for (const [id] of req.addedBlocks ?? []) if (this.#blockPinned(id)) this.#notePin(req.workerId, id, true);
    commands.push(...this.#takePinCommands(req.workerId));
    return { commands };
  }

  commitBlock(req: CommitBlockRequest): CommitBlockResponse {
    checkRequest(req, 'commitBlock');
    const t = this.ns.tree;
    const s = t.idToSlot.get(fileIdOfBlock(req.blockId));
    if (s === undefined || t.isDir(s)) {
      throw new TesseraError(ErrorCode.FILE_NOT_FOUND, `Cannot commit block ${req.blockId}: its file ${fileIdOfBlock(req.blockId)} does not exist`);
    }
    this.blocks.commitBlock(req.workerId, req.blockId, req.lengthBytes);
    return { pinned: this.#filePinned(s) };
  }

  async reportPersisted(req: ReportPersistedRequest): Promise<void> {
    checkRequest(req, 'reportPersisted');
    let state: 'NOT_PERSISTED' | 'PERSISTED' | 'LOST' = req.ok === false ? 'NOT_PERSISTED' : 'PERSISTED';
    if (req.ok === false && req.lost === true) {
      const gone = this.#blocksGone(req.fileId, req.workerId);
      if (gone === undefined) return; // no such file any more, or already in its UFS
      if (gone) {
        state = 'LOST';
        this.#toPersist.delete(req.fileId);
      }
    }
    const { durable } = this.#append(EntryType.SET_PERSISTENCE, [req.fileId, state, this.clock()]);
    await durable;
  }

  /**
   * For a worker's report that it lacks blocks of file `fileId`: true when some block has no
   * copy on any other worker (the data is gone), false when others hold them all, undefined
   * when the file is gone or already persisted.
   */
  #blocksGone(fileId: number, reporter: number | undefined): boolean | undefined {
    const t = this.ns.tree;
    const s = t.idToSlot.get(fileId);
    if (s === undefined || t.isDir(s) || t.persistence[s] === 2) return undefined;
    for (let i = 0; i < t.blockCounts[s]!; i++) {
      if (!this.blocks.locations(blockIdOf(fileId, i)).some((l) => l.workerId !== reporter)) return true;
    }
    return false;
  }

  getWorkers(): WorkerInfo[] { return this.blocks.workers(); }

  getInfo(): MasterInfo {
    const now = this.clock();
    return {
      version: MASTER_VERSION, protocolVersion: MASTER_PROTOCOL_VERSION, startTimeMs: this.startTimeMs, uptimeMs: now - this.startTimeMs,
      workers: this.blocks.summary(), inodeCount: this.ns.tree.inodeCount, blockCount: this.blocks.blockCount, mountCount: this.ns.mounts.size,
    };
  }

  // ---- periodic work ---------------------------------------------------------------------

  /**
   * Expired TTLs: DELETE removes the file (or directory, recursively); FREE frees its blocks
   * and clears the TTL. Returns the paths acted on. Errors on one file do not stop the rest.
   */
  async checkTtl(): Promise<string[]> {
    const t = this.ns.tree;
    const done: string[] = [];
    for (const s of t.expired(this.clock())) {
      if (!t.isLive(s) || t.ttls[s]! < 0) continue; // removed with an earlier expired ancestor
      const path = t.pathOf(s);
      try {
        if ((t.flags[s]! & F_TTL_FREE) !== 0) {
          if (!t.isDir(s) && t.persistence[s] === 2) await this.free({ path, recursive: true, forced: true });
          await this.setAttribute({ path, ttlMs: -1 });
        } else {
          await this.delete({ path, recursive: true });
        }
        done.push(path);
      } catch (e) {
        if (!isTesseraError(e)) throw e;
      }
    }
    return done;
  }

  /** One round of periodic work: lost workers, TTLs, waiting persists. */
  async tick(): Promise<{ lostWorkers: number[]; lostFiles: number[]; expired: string[]; checkpointStarted: boolean }> {
    const lostWorkers = this.blocks.detectLostWorkers();
    for (const id of lostWorkers) this.#pinChanges.delete(id); // its registration brings the pinned set
    const lostFiles = await this.#markLost(this.blocks.takeOrphanedBlocks());
    const expired = await this.checkTtl();
    this.#schedulePersists();
    return { lostWorkers, lostFiles, expired, checkpointStarted: this.#maybeCheckpoint() };
  }

  /** Starts a checkpoint (in the background) when enough entries follow the last one. */
  #maybeCheckpoint(): boolean {
    const j = this.#journal;
    if (j === undefined || this.#checkpointing || this.#closed) return false;
    if (j.lastSequence(NAMESPACE_COMPONENT) - j.checkpointSequence(NAMESPACE_COMPONENT) < this.#checkpointPeriodEntries) return false;
    this.#checkpointing = j.checkpoint(NAMESPACE_COMPONENT)
      .catch(() => undefined) // not fatal: the logs stay until a checkpoint succeeds
      .finally(() => { this.#checkpointing = undefined; });
    return true;
  }
}
