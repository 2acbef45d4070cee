/**
 * The inode tree: the master's namespace, in memory, as struct-of-arrays.
 *
 * One JS object per inode costs ~400 bytes in V8 (times and sizes above 2^31 become boxed
 * heap numbers). Here an inode is a slot index into typed arrays (76 bytes per slot) plus its
 * name string, an entry in its parent's child map and 8-16 bytes of the id index: ~180 bytes
 * in all at 1 M files (bench/master.bench.ts measures it). A checkpoint is the arrays' bytes.
 *
 * Per-slot layout (one typed array per column):
 *
 * | column        | type    | bytes | meaning                                                   |
 * |---------------|---------|-------|-----------------------------------------------------------|
 * | ids           | Uint32  | 4     | inode id (= block container id for files), < 2^29         |
 * | parents       | Int32   | 4     | parent slot, -1 for the root and for free slots           |
 * | flags         | Uint8   | 1     | LIVE, DIR, COMPLETED, PINNED, TTL_FREE, LOADED, MOUNT     |
 * | persistence   | Uint8   | 1     | 0 NOT_PERSISTED, 1 TO_BE_PERSISTED, 2 PERSISTED, 3 LOST   |
 * | modes         | Uint16  | 2     | permission bits                                           |
 * | owners/groups | Uint32  | 4+4   | index into the interned string table                      |
 * | ctimes/mtimes | Float64 | 8+8   | creation / modification time, epoch ms                    |
 * | ttls          | Float64 | 8     | TTL in ms after creation, -1 none                         |
 * | blockSizes    | Float64 | 8     | block size in bytes                                       |
 * | lengths       | Float64 | 8     | file length in bytes                                      |
 * | blockCounts   | Uint32  | 4     | blocks allocated: ids fileId*2^24 + 0..count-1            |
 * | replMins/Maxs | Int16   | 2+2   | replication bounds, -1 unbounded max                      |
 *
 * Every mutation is deterministic in its arguments (time comes in as an argument, ids from a
 * counter, slots from a LIFO free list), so replaying the same calls rebuilds the same tree
 * bit for bit. Validation happens before any change: a call that throws changed nothing.
 * This class does no I/O and knows nothing of the journal (see master/namespace.ts).
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import { assert } from '../core/assert.js';
import {
  DEFAULT_BLOCK_SIZE_BYTES, DEFAULT_INITIAL_INODE_CAPACITY, DEFAULT_REPLICATION_MAX, DEFAULT_REPLICATION_MIN,
  MAX_BLOCK_SEQUENCE, MAX_INODE_ID, MAX_LIST_PAGE_ENTRIES,
} from '../core/constants.js';
import type { FileInfo, PersistenceState, TtlAction } from '../transports/protocol/master.js';
import { blockIdOf, FileInfoRecord } from '../transports/protocol/master.js';
import { joinComponents, joinPath } from './path.js';
import { IdIndex } from './id-index.js';

export const F_LIVE = 1;
export const F_DIR = 2;
export const F_COMPLETED = 4;
export const F_PINNED = 8;
export const F_TTL_FREE = 16;
/** A directory under a mount whose UFS listing is loaded. */
export const F_LOADED = 32;
export const F_MOUNT = 64;

export const PERSISTENCE_STATES: readonly PersistenceState[] = ['NOT_PERSISTED', 'TO_BE_PERSISTED', 'PERSISTED', 'LOST'];
export const ROOT_SLOT = 0;
export const ROOT_ID = 0;
export const DEFAULT_DIR_MODE = 0o755;
export const DEFAULT_FILE_MODE = 0o644;

export interface CreateOptions {
  blockSizeBytes?: number;
  mode?: number;
  owner?: string;
  group?: string;
  pinned?: boolean;
  ttlMs?: number;
  ttlAction?: TtlAction;
  replicationMin?: number;
  replicationMax?: number;
  persistenceState?: PersistenceState;
}

export interface Attributes {
  pinned?: boolean;
  ttlMs?: number;
  ttlAction?: TtlAction;
  mode?: number;
  owner?: string;
  group?: string;
  replicationMin?: number;
  replicationMax?: number;
  persistenceState?: PersistenceState;
}

/** A file removed by delete/unmount: enough to drop its blocks from workers. */
export interface RemovedFile { fileId: number; blockCount: number }

function err(code: (typeof ErrorCode)[keyof typeof ErrorCode], msg: string): TesseraError {
  return new TesseraError(code, msg);
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw err(ErrorCode.INVALID_ARGUMENT, `Invalid ${name}: ${String(v)} (an integer in [${min}, ${max}])`);
  }
  return v;
}

export class InodeTree {
  capacity = 0;
  /** High-water mark: slots [0, slotCount) have been used at least once. */
  slotCount = 0;
  freeSlots: number[] = [];
  nextId = ROOT_ID + 1;
  inodeCount = 0;

  ids = new Uint32Array(0);
  parents = new Int32Array(0);
  flags = new Uint8Array(0);
  persistence = new Uint8Array(0);
  modes = new Uint16Array(0);
  owners = new Uint32Array(0);
  groups = new Uint32Array(0);
  ctimes = new Float64Array(0);
  mtimes = new Float64Array(0);
  ttls = new Float64Array(0);
  blockSizes = new Float64Array(0);
  lengths = new Float64Array(0);
  blockCounts = new Uint32Array(0);
  replMins = new Int16Array(0);
  replMaxs = new Int16Array(0);
  names: string[] = [];
  children: (Map<string, number> | undefined)[] = [];
  idToSlot = new IdIndex();
  strings: string[] = [];
  stringIds = new Map<string, number>();
  /** Slots of inodes that carry a TTL. */
  ttlSlots = new Set<number>();
  /** Sorted child names per directory slot, dropped on any change of the directory. */
  #sorted = new Map<number, string[]>();

  constructor(readonly initialCapacity = DEFAULT_INITIAL_INODE_CAPACITY) {
    if (!Number.isInteger(initialCapacity) || initialCapacity < 1 || initialCapacity > MAX_INODE_ID) {
      throw err(ErrorCode.INVALID_ARGUMENT, `Invalid option initialInodeCapacity: ${String(initialCapacity)} (an integer in [1, ${MAX_INODE_ID}])`);
    }
    this.reset();
  }

  reset(): void {
    this.capacity = 0;
    this.slotCount = 0;
    this.freeSlots = [];
    this.nextId = ROOT_ID + 1;
    this.inodeCount = 0;
    this.names = [];
    this.children = [];
    this.idToSlot = new IdIndex(this.initialCapacity);
    this.strings = [];
    this.stringIds = new Map();
    this.ttlSlots = new Set();
    this.#sorted = new Map();
    this.#grow(Math.max(16, this.initialCapacity));
    // The root: slot 0, id 0, a directory owned by nobody in particular.
    const s = this.#allocSlot();
    assert(s === ROOT_SLOT, 'root takes slot 0');
    this.#initSlot(s, ROOT_ID, -1, '', F_LIVE | F_DIR | F_COMPLETED, DEFAULT_DIR_MODE, '', '', 0, {});
  }

  // ---- storage ---------------------------------------------------------------------------

  #grow(minCapacity: number): void {
    let cap = Math.max(16, this.capacity);
    while (cap < minCapacity) cap *= 2;
    if (cap === this.capacity) return;
    const g = <T extends { length: number; set(a: T): void }>(a: T, C: new (n: number) => T): T => {
      const b = new C(cap);
      b.set(a);
      return b;
    };
    this.ids = g(this.ids, Uint32Array);
    this.parents = g(this.parents, Int32Array);
    this.flags = g(this.flags, Uint8Array);
    this.persistence = g(this.persistence, Uint8Array);
    this.modes = g(this.modes, Uint16Array);
    this.owners = g(this.owners, Uint32Array);
    this.groups = g(this.groups, Uint32Array);
    this.ctimes = g(this.ctimes, Float64Array);
    this.mtimes = g(this.mtimes, Float64Array);
    this.ttls = g(this.ttls, Float64Array);
    this.blockSizes = g(this.blockSizes, Float64Array);
    this.lengths = g(this.lengths, Float64Array);
    this.blockCounts = g(this.blockCounts, Uint32Array);
    this.replMins = g(this.replMins, Int16Array);
    this.replMaxs = g(this.replMaxs, Int16Array);
    this.capacity = cap;
  }

  /** Grows every column to at least `n` slots (checkpoint load, bulk create). */
  ensureCapacity(n: number): void {
    if (n > this.capacity) this.#grow(n);
  }

  #allocSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.slotCount === this.capacity) this.#grow(this.capacity * 2);
    return this.slotCount++;
  }

  intern(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.stringIds.set(s, id);
    }
    return id;
  }

  #initSlot(s: number, id: number, parent: number, name: string, flags: number, mode: number, owner: string, group: string,
    timeMs: number, o: CreateOptions): void {
    this.ids[s] = id;
    this.parents[s] = parent;
    this.flags[s] = flags | (o.pinned ? F_PINNED : 0) | (o.ttlAction === 'FREE' ? F_TTL_FREE : 0);
    this.persistence[s] = o.persistenceState === undefined ? 0 : PERSISTENCE_STATES.indexOf(o.persistenceState);
    this.modes[s] = mode;
    this.owners[s] = this.intern(owner);
    this.groups[s] = this.intern(group);
    this.ctimes[s] = timeMs;
    this.mtimes[s] = timeMs;
    const ttl = o.ttlMs ?? -1;
    this.ttls[s] = ttl;
    if (ttl >= 0) this.ttlSlots.add(s);
    this.blockSizes[s] = (flags & F_DIR) !== 0 ? 0 : (o.blockSizeBytes ?? DEFAULT_BLOCK_SIZE_BYTES);
    this.lengths[s] = 0;
    this.blockCounts[s] = 0;
    this.replMins[s] = o.replicationMin ?? DEFAULT_REPLICATION_MIN;
    this.replMaxs[s] = o.replicationMax ?? DEFAULT_REPLICATION_MAX;
    this.names[s] = name;
    this.children[s] = undefined;
    this.idToSlot.set(id, s);
    this.inodeCount++;
  }

  #freeSlot(s: number): void {
    assert(s !== ROOT_SLOT && (this.flags[s]! & F_LIVE) !== 0, 'freeing a live non-root slot');
    this.idToSlot.delete(this.ids[s]!);
    this.ttlSlots.delete(s);
    this.#sorted.delete(s);
    this.flags[s] = 0;
    this.parents[s] = -1;
    this.names[s] = '';
    this.children[s] = undefined;
    this.freeSlots.push(s);
    this.inodeCount--;
  }

  #addChild(parent: number, name: string, child: number, timeMs: number): void {
    let m = this.children[parent];
    if (m === undefined) this.children[parent] = m = new Map();
    assert(!m.has(name), 'child name is free');
    m.set(name, child);
    this.#sorted.delete(parent);
    this.mtimes[parent] = timeMs;
  }

  #removeChild(parent: number, name: string, timeMs: number): void {
    const m = this.children[parent];
    assert(m !== undefined && m.delete(name), 'child exists');
    if (m.size === 0) this.children[parent] = undefined;
    this.#sorted.delete(parent);
    this.mtimes[parent] = timeMs;
  }

  // ---- lookups ---------------------------------------------------------------------------

  isDir(s: number): boolean { return (this.flags[s]! & F_DIR) !== 0; }
  isLive(s: number): boolean { return s >= 0 && s < this.slotCount && (this.flags[s]! & F_LIVE) !== 0; }

  /**
   * The slot at `components`, or -1 when the last component is missing. Throws FILE_NOT_FOUND
   * when an ancestor is missing and NOT_A_DIRECTORY when an ancestor is a file.
   */
  lookup(components: readonly string[], upTo = components.length): number {
    let s = ROOT_SLOT;
    for (let i = 0; i < upTo; i++) {
      if ((this.flags[s]! & F_DIR) === 0) {
        throw err(ErrorCode.NOT_A_DIRECTORY, `Cannot resolve ${joinComponents(components)}: ${joinComponents(components.slice(0, i))} is not a directory`);
      }
      const next = this.children[s]?.get(components[i]!);
      if (next === undefined) {
        if (i === upTo - 1) return -1;
        throw err(ErrorCode.FILE_NOT_FOUND, `Cannot resolve ${joinComponents(components)}: ${joinComponents(components.slice(0, i + 1))} does not exist`);
      }
      s = next;
    }
    return s;
  }

  /** The slot at `components`; throws FILE_NOT_FOUND when it does not exist. */
  get(components: readonly string[]): number {
    const s = this.lookup(components);
    if (s < 0) throw err(ErrorCode.FILE_NOT_FOUND, `File not found: ${joinComponents(components)}`);
    return s;
  }

  slotOfId(id: number): number {
    const s = this.idToSlot.get(id);
    if (s === undefined) throw err(ErrorCode.FILE_NOT_FOUND, `File not found: no inode with id ${id}`);
    return s;
  }

  pathOf(s: number): string {
    const parts: string[] = [];
    while (s !== ROOT_SLOT) {
      parts.push(this.names[s]!);
      s = this.parents[s]!;
      assert(s >= 0, 'a live inode reaches the root');
    }
    return parts.length === 0 ? '/' : '/' + parts.reverse().join('/');
  }

  childCount(s: number): number { return this.children[s]?.size ?? 0; }

  sortedChildren(s: number): string[] {
    let sorted = this.#sorted.get(s);
    if (sorted === undefined) {
      const m = this.children[s];
      sorted = m === undefined ? [] : [...m.keys()].sort();
      this.#sorted.set(s, sorted);
    }
    return sorted;
  }

  /** Calls `fn` for every live slot in the subtree of `s` (children before parents). */
  forEachInSubtree(s: number, fn: (slot: number) => void): void {
    const m = this.children[s];
    if (m !== undefined) for (const c of m.values()) this.forEachInSubtree(c, fn);
    fn(s);
  }

  info(s: number, path: string): FileInfo {
    const f = this.flags[s]!;
    const id = this.ids[s]!;
    const dir = (f & F_DIR) !== 0;
    const n = this.blockCounts[s]!;
    const blockIds: number[] = new Array(n);
    for (let i = 0; i < n; i++) blockIds[i] = blockIdOf(id, i);
    return new FileInfoRecord(id, this.names[s]!, path, dir, this.modes[s]!, this.strings[this.owners[s]!]!, this.strings[this.groups[s]!]!,
      this.ctimes[s]!, this.mtimes[s]!, (f & F_PINNED) !== 0, this.ttls[s]!, (f & F_TTL_FREE) !== 0 ? 'FREE' : 'DELETE',
      PERSISTENCE_STATES[this.persistence[s]!]!, this.blockSizes[s]!, this.lengths[s]!, (f & F_COMPLETED) !== 0, blockIds,
      this.replMins[s]!, this.replMaxs[s]!, (f & F_MOUNT) !== 0, this.childCount(s));
  }

  list(components: readonly string[], startAfter: string | undefined, limit: number | undefined): { slots: number[]; dirPath: string; truncated: boolean } {
    const s = this.get(components);
    const dirPath = joinComponents(components);
    if (!this.isDir(s)) return { slots: [s], dirPath: joinComponents(components.slice(0, -1)), truncated: false };
    const max = limit === undefined ? MAX_LIST_PAGE_ENTRIES : checkInt('limit', limit, 1, MAX_LIST_PAGE_ENTRIES);
    const sorted = this.sortedChildren(s);
    let lo = 0;
    if (startAfter !== undefined) {
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid]! <= startAfter) lo = mid + 1; else hi = mid;
      }
    }
    const end = Math.min(sorted.length, lo + max);
    const m = this.children[s]!;
    const slots: number[] = [];
    for (let i = lo; i < end; i++) slots.push(m.get(sorted[i]!)!);
    return { slots, dirPath, truncated: end < sorted.length };
  }

  // ---- mutations -------------------------------------------------------------------------

  #checkCreateOptions(o: CreateOptions, dir: boolean): void {
    if (o.blockSizeBytes !== undefined) checkInt('blockSizeBytes', o.blockSizeBytes, 1, 2 ** 40);
    if (o.mode !== undefined) checkInt('mode', o.mode, 0, 0o7777);
    if (o.ttlMs !== undefined) checkInt('ttlMs', o.ttlMs, -1, Number.MAX_SAFE_INTEGER);
    if (o.ttlAction !== undefined && o.ttlAction !== 'DELETE' && o.ttlAction !== 'FREE') {
      throw err(ErrorCode.INVALID_ARGUMENT, `Invalid ttlAction: ${String(o.ttlAction)} (DELETE or FREE)`);
    }
    if (o.replicationMin !== undefined) checkInt('replicationMin', o.replicationMin, 0, 32767);
    if (o.replicationMax !== undefined) checkInt('replicationMax', o.replicationMax, -1, 32767);
    const rmin = o.replicationMin ?? DEFAULT_REPLICATION_MIN;
    const rmax = o.replicationMax ?? DEFAULT_REPLICATION_MAX;
    if (rmax !== -1 && rmax < rmin) throw err(ErrorCode.INVALID_ARGUMENT, `Invalid replication: replicationMax ${rmax} < replicationMin ${rmin}`);
    if (o.persistenceState !== undefined && !PERSISTENCE_STATES.includes(o.persistenceState)) {
      throw err(ErrorCode.INVALID_ARGUMENT, `Invalid persistenceState: ${String(o.persistenceState)}`);
    }
    if (o.owner !== undefined && typeof o.owner !== 'string') throw err(ErrorCode.INVALID_ARGUMENT, 'Invalid owner: not a string');
    if (o.group !== undefined && typeof o.group !== 'string') throw err(ErrorCode.INVALID_ARGUMENT, 'Invalid group: not a string');
    void dir;
  }

  #nextInodeId(): number {
    if (this.nextId > MAX_INODE_ID) throw err(ErrorCode.LIMIT_EXCEEDED, `Cannot create inode: ids exhausted (MAX_INODE_ID ${MAX_INODE_ID})`);
    return this.nextId++;
  }

  /**
   * Resolves the parent of `components` for a create; with `recursive`, the missing ancestors
   * are listed in `missingFrom` (index of the first missing component) and created by the caller.
   */
  #parentForCreate(components: readonly string[], recursive: boolean): { parent: number; missingFrom: number } {
    let s = ROOT_SLOT;
    const last = components.length - 1;
    for (let i = 0; i < last; i++) {
      if (!this.isDir(s)) {
        throw err(ErrorCode.NOT_A_DIRECTORY, `Cannot create ${joinComponents(components)}: ${joinComponents(components.slice(0, i))} is not a directory`);
      }
      const next = this.children[s]?.get(components[i]!);
      if (next === undefined) {
        if (!recursive) throw err(ErrorCode.FILE_NOT_FOUND, `Cannot create ${joinComponents(components)}: parent ${joinComponents(components.slice(0, i + 1))} does not exist`);
        return { parent: s, missingFrom: i };
      }
      s = next;
    }
    if (!this.isDir(s)) {
      throw err(ErrorCode.NOT_A_DIRECTORY, `Cannot create ${joinComponents(components)}: ${joinComponents(components.slice(0, last))} is not a directory`);
    }
    return { parent: s, missingFrom: last };
  }

  #mkdirs(parent: number, components: readonly string[], from: number, to: number, mode: number, owner: string, group: string, timeMs: number): number {
    let s = parent;
    for (let i = from; i < to; i++) {
      const c = this.#allocSlot();
      this.#initSlot(c, this.#nextInodeId(), s, components[i]!, F_LIVE | F_DIR | F_COMPLETED, mode, owner, group, timeMs, {});
      this.#addChild(s, components[i]!, c, timeMs);
      s = c;
    }
    return s;
  }

  createFile(components: readonly string[], recursive: boolean, o: CreateOptions, timeMs: number): number {
    if (components.length === 0) throw err(ErrorCode.FILE_ALREADY_EXISTS, 'Cannot create /: the root exists');
    this.#checkCreateOptions(o, false);
    const { parent, missingFrom } = this.#parentForCreate(components, recursive);
    const last = components.length - 1;
    const name = components[last]!;
    if (missingFrom === last && this.children[parent]?.has(name)) {
      throw err(ErrorCode.FILE_ALREADY_EXISTS, `Cannot create ${joinComponents(components)}: it exists`);
    }
    const owner = o.owner ?? '';
    const group = o.group ?? '';
    if (this.nextId + (last - missingFrom) > MAX_INODE_ID) this.#nextInodeId();
    const dir = this.#mkdirs(parent, components, missingFrom, last, DEFAULT_DIR_MODE, owner, group, timeMs);
    const s = this.#allocSlot();
    this.#initSlot(s, this.#nextInodeId(), dir, name, F_LIVE, o.mode ?? DEFAULT_FILE_MODE, owner, group, timeMs, o);
    this.#addChild(dir, name, s, timeMs);
    return s;
  }

  mkdir(components: readonly string[], recursive: boolean, allowExists: boolean, o: CreateOptions, timeMs: number): number {
    this.#checkCreateOptions(o, true);
    const existing = components.length === 0 ? ROOT_SLOT : this.#lookupForMkdir(components, recursive);
    if (existing >= 0) {
      if (allowExists && this.isDir(existing)) return existing;
      throw err(ErrorCode.FILE_ALREADY_EXISTS, `Cannot create directory ${joinComponents(components)}: it exists`);
    }
    const { parent, missingFrom } = this.#parentForCreate(components, recursive);
    if (this.nextId + (components.length - missingFrom) > MAX_INODE_ID + 1) this.#nextInodeId();
    return this.#mkdirs(parent, components, missingFrom, components.length, o.mode ?? DEFAULT_DIR_MODE, o.owner ?? '', o.group ?? '', timeMs);
  }

  /** Like lookup, but a missing ancestor is not an error when `recursive` (mkdir -p). */
  #lookupForMkdir(components: readonly string[], recursive: boolean): number {
    let s = ROOT_SLOT;
    for (let i = 0; i < components.length; i++) {
      if (!this.isDir(s)) {
        throw err(ErrorCode.NOT_A_DIRECTORY, `Cannot create directory ${joinComponents(components)}: ${joinComponents(components.slice(0, i))} is not a directory`);
      }
      const next = this.children[s]?.get(components[i]!);
      if (next === undefined) {
        if (i === components.length - 1 || recursive) return -1;
        throw err(ErrorCode.FILE_NOT_FOUND, `Cannot create directory ${joinComponents(components)}: parent ${joinComponents(components.slice(0, i + 1))} does not exist`);
      }
      s = next;
    }
    return s;
  }

  completeFile(components: readonly string[], lengthBytes: number, persisted: boolean, timeMs: number): number {
    const s = this.get(components);
    if (this.isDir(s)) throw err(ErrorCode.IS_A_DIRECTORY, `Cannot complete ${joinComponents(components)}: it is a directory`);
    if ((this.flags[s]! & F_COMPLETED) !== 0) throw err(ErrorCode.FILE_ALREADY_COMPLETED, `Cannot complete ${joinComponents(components)}: it is already complete`);
    checkInt('lengthBytes', lengthBytes, 0, Number.MAX_SAFE_INTEGER);
    const blocks = Math.ceil(lengthBytes / this.blockSizes[s]!);
    if (blocks > MAX_BLOCK_SEQUENCE + 1) throw err(ErrorCode.LIMIT_EXCEEDED, `Cannot complete ${joinComponents(components)}: ${blocks} blocks (MAX_BLOCK_SEQUENCE ${MAX_BLOCK_SEQUENCE})`);
    this.lengths[s] = lengthBytes;
    this.blockCounts[s] = Math.max(blocks, this.blockCounts[s]!);
    this.flags[s] = this.flags[s]! | F_COMPLETED;
    if (persisted) this.persistence[s] = 2;
    this.mtimes[s] = timeMs;
    return s;
  }

  /** Allocates the next block of an incomplete file; returns its sequence. */
  newBlock(components: readonly string[]): number {
    const s = this.get(components);
    if (this.isDir(s)) throw err(ErrorCode.IS_A_DIRECTORY, `Cannot add a block to ${joinComponents(components)}: it is a directory`);
    if ((this.flags[s]! & F_COMPLETED) !== 0) throw err(ErrorCode.FILE_ALREADY_COMPLETED, `Cannot add a block to ${joinComponents(components)}: it is complete`);
    const seq = this.blockCounts[s]!;
    if (seq > MAX_BLOCK_SEQUENCE) throw err(ErrorCode.LIMIT_EXCEEDED, `Cannot add a block to ${joinComponents(components)}: MAX_BLOCK_SEQUENCE ${MAX_BLOCK_SEQUENCE}`);
    this.blockCounts[s] = seq + 1;
    return seq;
  }

  /** Checks a rename without changing anything; returns [srcSlot, dstParentSlot]. */
  checkRename(src: readonly string[], dst: readonly string[]): [number, number] {
    const srcPath = joinComponents(src);
    const dstPath = joinComponents(dst);
    const s = this.get(src);
    if (src.length === 0) throw err(ErrorCode.INVALID_RENAME, `Cannot rename ${srcPath} to ${dstPath}: the root cannot move`);
    if (dst.length === 0) throw err(ErrorCode.FILE_ALREADY_EXISTS, `Cannot rename ${srcPath} to /: it exists`);
    if (dst.length >= src.length && src.every((c, i) => dst[i] === c)) {
      throw err(ErrorCode.INVALID_RENAME, `Cannot rename ${srcPath} to ${dstPath}: the destination is the source or inside it`);
    }
    const d = this.lookup(dst);
    if (d >= 0) throw err(ErrorCode.FILE_ALREADY_EXISTS, `Cannot rename ${srcPath} to ${dstPath}: the destination exists`);
    const dp = this.lookup(dst, dst.length - 1);
    if (dp < 0) throw err(ErrorCode.FILE_NOT_FOUND, `Cannot rename ${srcPath} to ${dstPath}: the destination's parent does not exist`);
    if (!this.isDir(dp)) throw err(ErrorCode.NOT_A_DIRECTORY, `Cannot rename ${srcPath} to ${dstPath}: the destination's parent is not a directory`);
    return [s, dp];
  }

  rename(src: readonly string[], dst: readonly string[], timeMs: number): number {
    const [s, dp] = this.checkRename(src, dst);
    this.#removeChild(this.parents[s]!, src[src.length - 1]!, timeMs);
    const name = dst[dst.length - 1]!;
    this.names[s] = name;
    this.parents[s] = dp;
    this.#addChild(dp, name, s, timeMs);
    return s;
  }

  /** Checks a delete; returns the slot. */
  checkDelete(components: readonly string[], recursive: boolean): number {
    const s = this.get(components);
    if (components.length === 0) throw err(ErrorCode.INVALID_ARGUMENT, 'Cannot delete /: the root cannot be deleted');
    if (this.isDir(s) && !recursive && this.childCount(s) > 0) {
      throw err(ErrorCode.DIRECTORY_NOT_EMPTY, `Cannot delete ${joinComponents(components)}: the directory is not empty (use recursive)`);
    }
    return s;
  }

  /** Removes the subtree at `s`; returns the files removed (for their blocks). */
  removeSubtree(s: number, timeMs: number): RemovedFile[] {
    assert(s !== ROOT_SLOT, 'never remove the root');
    const removed: RemovedFile[] = [];
    this.#removeChild(this.parents[s]!, this.names[s]!, timeMs);
    this.forEachInSubtree(s, (c) => {
      if (!this.isDir(c) && this.blockCounts[c]! > 0) removed.push({ fileId: this.ids[c]!, blockCount: this.blockCounts[c]! });
      this.#freeSlot(c);
    });
    return removed;
  }

  delete(components: readonly string[], recursive: boolean, timeMs: number): RemovedFile[] {
    return this.removeSubtree(this.checkDelete(components, recursive), timeMs);
  }

  checkAttributes(a: Attributes): void {
    this.#checkCreateOptions({
      mode: a.mode, ttlMs: a.ttlMs, ttlAction: a.ttlAction, owner: a.owner, group: a.group,
      persistenceState: a.persistenceState,
      ...(a.replicationMin !== undefined ? { replicationMin: a.replicationMin } : {}),
      ...(a.replicationMax !== undefined ? { replicationMax: a.replicationMax } : {}),
    }, false);
    if (a.pinned !== undefined && typeof a.pinned !== 'boolean') throw err(ErrorCode.INVALID_ARGUMENT, 'Invalid pinned: not a boolean');
  }

  setAttributes(s: number, a: Attributes, timeMs: number): void {
    if (a.replicationMin !== undefined || a.replicationMax !== undefined) {
      const rmin = a.replicationMin ?? this.replMins[s]!;
      const rmax = a.replicationMax ?? this.replMaxs[s]!;
      if (rmax !== -1 && rmax < rmin) throw err(ErrorCode.INVALID_ARGUMENT, `Invalid replication: replicationMax ${rmax} < replicationMin ${rmin}`);
    }
    let f = this.flags[s]!;
    if (a.pinned !== undefined) f = a.pinned ? f | F_PINNED : f & ~F_PINNED;
    if (a.ttlAction !== undefined) f = a.ttlAction === 'FREE' ? f | F_TTL_FREE : f & ~F_TTL_FREE;
    this.flags[s] = f;
    if (a.ttlMs !== undefined) {
      this.ttls[s] = a.ttlMs;
      if (a.ttlMs >= 0) this.ttlSlots.add(s); else this.ttlSlots.delete(s);
    }
    if (a.mode !== undefined) this.modes[s] = a.mode;
    if (a.owner !== undefined) this.owners[s] = this.intern(a.owner);
    if (a.group !== undefined) this.groups[s] = this.intern(a.group);
    if (a.replicationMin !== undefined) this.replMins[s] = a.replicationMin;
    if (a.replicationMax !== undefined) this.replMaxs[s] = a.replicationMax;
    if (a.persistenceState !== undefined) this.persistence[s] = PERSISTENCE_STATES.indexOf(a.persistenceState);
    this.mtimes[s] = timeMs;
  }

  /** Creates an inode loaded from a UFS (already persisted, complete). Ancestors must exist. */
  createLoaded(parent: number, name: string, isDir: boolean, lengthBytes: number, mtimeMs: number, blockSizeBytes: number, timeMs: number): number {
    assert(this.isDir(parent), 'a loaded inode goes into a directory');
    const existing = this.children[parent]?.get(name);
    if (existing !== undefined) return existing;
    const s = this.#allocSlot();
    const flags = F_LIVE | F_COMPLETED | (isDir ? F_DIR : 0);
    this.#initSlot(s, this.#nextInodeId(), parent, name, flags, isDir ? DEFAULT_DIR_MODE : DEFAULT_FILE_MODE, '', '', timeMs,
      { persistenceState: 'PERSISTED', blockSizeBytes });
    if (!isDir) {
      this.lengths[s] = lengthBytes;
      this.blockCounts[s] = Math.ceil(lengthBytes / blockSizeBytes);
    }
    this.mtimes[s] = mtimeMs;
    this.#addChild(parent, name, s, this.mtimes[parent]!);
    return s;
  }

  /** Marks `s` (a directory) a mount point or not. */
  setFlag(s: number, flag: number, on: boolean): void {
    this.flags[s] = on ? this.flags[s]! | flag : this.flags[s]! & ~flag;
  }

  /** Files whose TTL has expired at `nowMs`: a pure scan of the TTL set. */
  expired(nowMs: number): number[] {
    const out: number[] = [];
    for (const s of this.ttlSlots) if (this.ctimes[s]! + this.ttls[s]! <= nowMs) out.push(s);
    return out.sort((a, b) => this.ids[a]! - this.ids[b]!);
  }

  /** Re-derives the per-slot indexes (child maps, id map, TTL set) after the columns are loaded. */
  rebuildIndexes(): void {
    this.idToSlot = new IdIndex(this.slotCount);
    this.children = new Array(this.slotCount);
    this.ttlSlots = new Set();
    this.#sorted = new Map();
    this.stringIds = new Map(this.strings.map((s, i) => [s, i]));
    let count = 0;
    for (let s = 0; s < this.slotCount; s++) {
      if ((this.flags[s]! & F_LIVE) === 0) continue;
      count++;
      this.idToSlot.set(this.ids[s]!, s);
      if (this.ttls[s]! >= 0) this.ttlSlots.add(s);
      const p = this.parents[s]!;
      if (p >= 0) {
        let m = this.children[p];
        if (m === undefined) this.children[p] = m = new Map();
        m.set(this.names[s]!, s);
      }
    }
    this.inodeCount = count;
  }
}

export { joinPath };
