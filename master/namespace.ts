/**
 * The namespace as a journaled state machine: the inode tree and the mount table change only
 * through `apply(entry)`, live (the journal applies an entry as it is appended) and on replay
 * alike. An entry carries an operation's arguments and its time, never its outcome: `apply`
 * re-runs the operation, which is deterministic, so replay rebuilds the same tree. An
 * operation that fails validation throws before any change, and the journal writes nothing.
 *
 * Entry payloads are msgpackr-encoded arrays (positional, no field names):
 *
 * | type | name           | payload                                                       |
 * |------|----------------|---------------------------------------------------------------|
 * | 1    | CREATE_FILE    | [path, recursive, options, timeMs]                            |
 * | 2    | COMPLETE_FILE  | [path, lengthBytes, persisted, timeMs]                        |
 * | 3    | MKDIR          | [path, recursive, allowExists, options, timeMs]               |
 * | 4    | RENAME         | [src, dst, timeMs]                                            |
 * | 5    | DELETE         | [path, recursive, timeMs]                                     |
 * | 6    | SET_ATTRIBUTE  | [path, attributes, recursive, timeMs]                         |
 * | 7    | NEW_BLOCK      | [path]                                                        |
 * | 8    | SET_PERSISTENCE| [fileId, state, timeMs]                                       |
 * | 9    | MOUNT          | [path, ufsUri, readOnly, timeMs]                              |
 * | 10   | UNMOUNT        | [path, timeMs]                                                |
 * | 11   | LOAD_UFS       | [dirPath, [[name, isDir, lengthBytes, mtimeMs], ...], markLoaded, blockSizeBytes, timeMs] |
 *
 * Checkpoint (version 1), a byte stream cut into chunks of at most CHUNK_BYTES:
 *
 * | offset | size | field                                                        |
 * |--------|------|--------------------------------------------------------------|
 * | 0      | 4    | magic 'TNSC', u32 LE                                         |
 * | 4      | 4    | header length h, u32 LE                                      |
 * | 8      | h    | msgpack header: version, slotCount, nextId, freeCount, strings, mounts, namesBytes |
 * | 8+h    | ...  | each column's first slotCount elements, in COLUMNS order     |
 * |        | 4*f  | free slot list, Int32 LE                                     |
 * |        | n    | names of slots 0..slotCount-1, UTF-8, joined by '/'          |
 */
import { pack, unpack } from 'msgpackr';
import type { JournalEntry, JournaledStateMachine, CheckpointReader, CheckpointWriter } from '../core/journal/index.js';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { assert } from '../core/assert.js';
import type { PersistenceState } from '../transports/protocol/master.js';
import { InodeTree, F_LOADED, F_MOUNT, ROOT_SLOT, PERSISTENCE_STATES, type Attributes, type CreateOptions, type RemovedFile } from './inode-tree.js';
import { MountTable, type MountPoint } from './mount-table.js';
import { joinComponents, pathComponents, validateName } from './path.js';

export const NAMESPACE_COMPONENT = 'namespace';

export const EntryType = {
  CREATE_FILE: 1,
  COMPLETE_FILE: 2,
  MKDIR: 3,
  RENAME: 4,
  DELETE: 5,
  SET_ATTRIBUTE: 6,
  NEW_BLOCK: 7,
  SET_PERSISTENCE: 8,
  MOUNT: 9,
  UNMOUNT: 10,
  LOAD_UFS: 11,
} as const;
export type EntryTypeValue = (typeof EntryType)[keyof typeof EntryType];

/** A UFS entry to load: [name, isDir, lengthBytes, mtimeMs]. */
export type LoadedEntry = [name: string, isDir: boolean, lengthBytes: number, mtimeMs: number];

/** What the last applied entry produced, read right after `append` returns. */
export type ApplyResult =
  | { kind: 'slot'; slot: number }
  | { kind: 'removed'; slot: number; removed: RemovedFile[]; mount?: MountPoint }
  | { kind: 'mount'; slot: number; mount: MountPoint }
  | { kind: 'none' };

const CHECKPOINT_MAGIC = 0x43534e54; // 'TNSC'
const CHECKPOINT_VERSION = 1;
const CHUNK_BYTES = 1 << 20;
const COLUMNS = ['ids', 'parents', 'flags', 'persistence', 'modes', 'owners', 'groups', 'ctimes', 'mtimes', 'ttls',
  'blockSizes', 'lengths', 'blockCounts', 'replMins', 'replMaxs'] as const;

function bool(v: unknown): boolean { return v === true; }

export class NamespaceMachine implements JournaledStateMachine {
  readonly name = NAMESPACE_COMPONENT;
  readonly tree: InodeTree;
  readonly mounts = new MountTable();
  /** The outcome of the entry applied last. */
  lastResult: ApplyResult = { kind: 'none' };

  constructor(initialCapacity?: number) {
    this.tree = new InodeTree(initialCapacity);
  }

  static encode(args: unknown[]): Uint8Array {
    return pack(args);
  }

  reset(): void {
    this.tree.reset();
    this.mounts.reset();
    this.lastResult = { kind: 'none' };
  }

  apply(entry: JournalEntry): void {
    const a = unpack(entry.payload) as unknown[];
    assert(Array.isArray(a), 'a namespace entry payload is an array');
    this.lastResult = this.applyArgs(entry.type as EntryTypeValue, a);
  }

  /** Applies one operation from its decoded arguments (also the path of in-memory use without a journal). */
  applyArgs(type: EntryTypeValue, a: unknown[]): ApplyResult {
    const t = this.tree;
    switch (type) {
      case EntryType.CREATE_FILE: {
        const c = pathComponents(a[0]);
        const s = t.createFile(c, bool(a[1]), (a[2] ?? {}) as CreateOptions, a[3] as number);
        return { kind: 'slot', slot: s };
      }
      case EntryType.COMPLETE_FILE:
        return { kind: 'slot', slot: t.completeFile(pathComponents(a[0]), a[1] as number, bool(a[2]), a[3] as number) };
      case EntryType.MKDIR:
        return { kind: 'slot', slot: t.mkdir(pathComponents(a[0]), bool(a[1]), bool(a[2]), (a[3] ?? {}) as CreateOptions, a[4] as number) };
      case EntryType.RENAME: {
        const src = pathComponents(a[0]);
        const dst = pathComponents(a[1]);
        t.checkRename(src, dst);
        const srcPath = joinComponents(src);
        const dstPath = joinComponents(dst);
        if (this.mounts.hasMountAtOrBelow(srcPath)) {
          throw new TesseraError(ErrorCode.INVALID_RENAME, `Cannot rename ${srcPath} to ${dstPath}: it is or holds a mount point (unmount first)`);
        }
        const ms = this.mounts.resolve(srcPath)?.mount.mountId ?? 0;
        const md = this.mounts.resolve(dstPath)?.mount.mountId ?? 0;
        if (ms !== md) throw new TesseraError(ErrorCode.INVALID_RENAME, `Cannot rename ${srcPath} to ${dstPath}: the paths are in different mounts`);
        return { kind: 'slot', slot: t.rename(src, dst, a[2] as number) };
      }
      case EntryType.DELETE: {
        const c = pathComponents(a[0]);
        const s = t.checkDelete(c, bool(a[1]));
        const p = joinComponents(c);
        if (this.mounts.hasMountAtOrBelow(p)) {
          throw new TesseraError(ErrorCode.MOUNT_CONFLICT, `Cannot delete ${p}: it is or holds a mount point (unmount first)`);
        }
        return { kind: 'removed', slot: s, removed: t.removeSubtree(s, a[2] as number) };
      }
      case EntryType.SET_ATTRIBUTE: {
        const s = t.get(pathComponents(a[0]));
        const attrs = (a[1] ?? {}) as Attributes;
        t.checkAttributes(attrs);
        if (bool(a[2])) {
          // Check the replication bounds of every inode before changing any.
          const slots: number[] = [];
          t.forEachInSubtree(s, (x) => slots.push(x));
          for (const x of slots) this.#checkReplication(x, attrs);
          for (const x of slots) t.setAttributes(x, attrs, a[3] as number);
        } else {
          t.setAttributes(s, attrs, a[3] as number);
        }
        return { kind: 'slot', slot: s };
      }
      case EntryType.NEW_BLOCK: {
        const c = pathComponents(a[0]);
        const s = t.get(c);
        t.newBlock(c);
        return { kind: 'slot', slot: s };
      }
      case EntryType.SET_PERSISTENCE: {
        const s = t.slotOfId(a[0] as number);
        const state = a[1] as PersistenceState;
        if (!PERSISTENCE_STATES.includes(state)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid persistence state: ${String(state)}`);
        if (t.isDir(s)) throw new TesseraError(ErrorCode.IS_A_DIRECTORY, `Cannot set the persistence of ${t.pathOf(s)}: it is a directory`);
        t.setAttributes(s, { persistenceState: state }, a[2] as number);
        return { kind: 'slot', slot: s };
      }
      case EntryType.MOUNT: {
        const c = pathComponents(a[0]);
        const p = joinComponents(c);
        const uri = a[1];
        if (typeof uri !== 'string' || uri.length === 0) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid ufsUri: a non-empty string');
        if (c.length === 0) throw new TesseraError(ErrorCode.MOUNT_CONFLICT, `Cannot mount ${uri} at /: the root exists`);
        if (t.lookup(c) >= 0) throw new TesseraError(ErrorCode.FILE_ALREADY_EXISTS, `Cannot mount ${uri} at ${p}: the path exists`);
        this.mounts.checkAdd(p, uri);
        const s = t.mkdir(c, false, false, {}, a[3] as number);
        t.setFlag(s, F_MOUNT, true);
        const mount = this.mounts.add(p, uri, bool(a[2]));
        return { kind: 'mount', slot: s, mount };
      }
      case EntryType.UNMOUNT: {
        const c = pathComponents(a[0]);
        const p = joinComponents(c);
        const m = this.mounts.get(p);
        if (m === undefined) throw new TesseraError(ErrorCode.NOT_MOUNTED, `Cannot unmount ${p}: not a mount point`);
        const s = t.get(c);
        this.mounts.remove(p);
        return { kind: 'removed', slot: s, removed: t.removeSubtree(s, a[1] as number), mount: m };
      }
      case EntryType.LOAD_UFS: {
        const c = pathComponents(a[0]);
        const dir = t.get(c);
        if (!t.isDir(dir)) throw new TesseraError(ErrorCode.NOT_A_DIRECTORY, `Cannot load into ${joinComponents(c)}: not a directory`);
        const entries = a[1] as LoadedEntry[];
        assert(Array.isArray(entries), 'LOAD_UFS carries an entry list');
        for (const e of entries) validateName(e[0]);
        const bs = a[3] as number;
        const now = a[4] as number;
        for (const e of entries) t.createLoaded(dir, e[0], e[1], e[2], e[3], bs, now);
        if (bool(a[2])) t.setFlag(dir, F_LOADED, true);
        return { kind: 'slot', slot: dir };
      }
      default:
        throw new TesseraError(ErrorCode.JOURNAL_CORRUPT, `Unknown namespace entry type ${String(type)}`);
    }
  }

  #checkReplication(s: number, a: Attributes): void {
    if (a.replicationMin === undefined && a.replicationMax === undefined) return;
    const rmin = a.replicationMin ?? this.tree.replMins[s]!;
    const rmax = a.replicationMax ?? this.tree.replMaxs[s]!;
    if (rmax !== -1 && rmax < rmin) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid replication at ${this.tree.pathOf(s)}: replicationMax ${rmax} < replicationMin ${rmin}`);
    }
  }

  // ---- checkpoint ------------------------------------------------------------------------

  snapshot(): CheckpointWriter {
    const t = this.tree;
    const n = t.slotCount;
    const columns = COLUMNS.map((name) => {
      const col = t[name];
      const copy = col.slice(0, n);
      return new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
    });
    const free = Int32Array.from(t.freeSlots);
    const names = Buffer.from(t.names.slice(0, n).join('/'), 'utf8');
    const header = pack({
      version: CHECKPOINT_VERSION, slotCount: n, nextId: t.nextId, freeCount: free.length, strings: t.strings.slice(),
      mounts: this.mounts.toJSON(), namesBytes: names.byteLength,
    });
    const head = Buffer.alloc(8);
    head.writeUInt32LE(CHECKPOINT_MAGIC, 0);
    head.writeUInt32LE(header.byteLength, 4);
    const parts: Uint8Array[] = [head, header, ...columns, new Uint8Array(free.buffer, 0, free.byteLength), names];
    return (function* chunks() {
      for (const p of parts) for (let off = 0; off < p.byteLength; off += CHUNK_BYTES) yield p.subarray(off, Math.min(p.byteLength, off + CHUNK_BYTES));
    })();
  }

  async loadCheckpoint(chunks: CheckpointReader): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    this.loadCheckpointBytes(Buffer.concat(parts));
  }

  loadCheckpointBytes(buf: Buffer): void {
    const corrupt = (why: string) => new TesseraError(ErrorCode.JOURNAL_CORRUPT, `Cannot load the namespace checkpoint: ${why}`);
    if (buf.byteLength < 8 || buf.readUInt32LE(0) !== CHECKPOINT_MAGIC) throw corrupt('bad magic');
    const h = buf.readUInt32LE(4);
    const header = unpack(buf.subarray(8, 8 + h)) as {
      version: number; slotCount: number; nextId: number; freeCount: number; strings: string[];
      mounts: { nextMountId: number; mounts: MountPoint[] }; namesBytes: number;
    };
    if (header.version !== CHECKPOINT_VERSION) throw corrupt(`version ${header.version} (expected ${CHECKPOINT_VERSION})`);
    const t = this.tree;
    t.reset();
    const n = header.slotCount;
    t.ensureCapacity(n);
    let off = 8 + h;
    for (const name of COLUMNS) {
      const col = t[name];
      const bytes = n * col.BYTES_PER_ELEMENT;
      if (off + bytes > buf.byteLength) throw corrupt(`column ${name} is cut short`);
      new Uint8Array(col.buffer, col.byteOffset, bytes).set(buf.subarray(off, off + bytes));
      off += bytes;
    }
    const free = new Int32Array(header.freeCount);
    new Uint8Array(free.buffer).set(buf.subarray(off, off + free.byteLength));
    off += free.byteLength;
    if (off + header.namesBytes !== buf.byteLength) throw corrupt('the names section does not end the checkpoint');
    const names = buf.toString('utf8', off, off + header.namesBytes).split('/');
    if (names.length !== n) throw corrupt(`${names.length} names for ${n} slots`);
    t.slotCount = n;
    t.freeSlots = Array.from(free);
    t.nextId = header.nextId;
    t.names = names;
    t.strings = header.strings;
    t.rebuildIndexes();
    this.mounts.load(header.mounts);
    assert(t.isLive(ROOT_SLOT) && t.isDir(ROOT_SLOT), 'the checkpoint holds the root');
  }
}
