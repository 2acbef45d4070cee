/**
 * An in-memory `Fs` that knows what a power cut would keep, for power-loss tests.
 *
 * Model (conservative for data, ordered for metadata, as ext4 with data=ordered behaves):
 * - File data: every file has durable bytes (as of its last datasync) and a list of writes and
 *   truncates since. A crash keeps the durable bytes plus a prefix of those operations cut at
 *   a chosen byte; optionally the rest of the torn write reads back as zeros (the size reached
 *   the disk, the data did not). Or, when the unsynced operations are all writes, any subset
 *   of their 512-byte sectors (the disk reordered them).
 * - Names (create, rename, unlink, mkdir, rmdir): one ordered list of operations since the
 *   last directory fsync. A crash keeps a chosen prefix of the list. `syncDir(d)` makes durable
 *   every operation up to the last one that touched d. A file's datasync does not make its
 *   name durable.
 * - Every operation takes effect one macrotask after it is called (setImmediate), so a test
 *   can crash while a write or fsync is in flight. After `crash()` the old instance is dead:
 *   its pending and later operations never settle (the process is gone), and the returned
 *   instance is the machine after reboot.
 * Faults: `failNext('datasync')` etc. make the next such call reject with EIO.
 */
import { posix } from 'node:path';
import { assert } from '../assert.js';
import type { Fs, FsFile, FsOpenMode, FsStat } from './fs.js';

const SECTOR_BYTES = 512;

type DataOp = { kind: 'write'; position: number; bytes: Uint8Array } | { kind: 'truncate'; lengthBytes: number };

class Inode {
  data: Uint8Array = new Uint8Array(0);
  sizeBytes = 0;
  durable: Uint8Array = new Uint8Array(0);
  ops: DataOp[] = [];

  constructor(content?: Uint8Array) {
    if (content) {
      this.data = content.slice();
      this.sizeBytes = content.length;
      this.durable = content.slice();
    }
  }

  write(bytes: Uint8Array, position: number): void {
    const end = position + bytes.length;
    if (end > this.data.length) {
      const grown = new Uint8Array(Math.max(end, this.data.length * 2, 256));
      grown.set(this.data.subarray(0, this.sizeBytes));
      this.data = grown;
    }
    if (position > this.sizeBytes) this.data.fill(0, this.sizeBytes, position);
    this.data.set(bytes, position);
    this.sizeBytes = Math.max(this.sizeBytes, end);
  }

  truncate(lengthBytes: number): void {
    if (lengthBytes > this.sizeBytes) this.write(new Uint8Array(lengthBytes - this.sizeBytes), this.sizeBytes);
    this.sizeBytes = lengthBytes;
  }

  content(): Uint8Array {
    return this.data.slice(0, this.sizeBytes);
  }

  pendingBytes(): number {
    let n = 0;
    for (const op of this.ops) n += op.kind === 'write' ? op.bytes.length : 1;
    return n;
  }
}

type Node = { kind: 'file'; inode: Inode } | { kind: 'dir' };
type MetaOp =
  | { kind: 'link'; path: string; node: Node }
  | { kind: 'unlink'; path: string }
  | { kind: 'rename'; from: string; to: string };

function metaDirs(op: MetaOp): string[] {
  return op.kind === 'rename' ? [posix.dirname(op.from), posix.dirname(op.to)] : [posix.dirname(op.path)];
}

function applyMeta(ns: Map<string, Node>, op: MetaOp): void {
  if (op.kind === 'link') ns.set(op.path, op.node);
  else if (op.kind === 'unlink') ns.delete(op.path);
  else {
    const node = ns.get(op.from);
    if (node === undefined) return; // its creation did not reach the disk
    ns.delete(op.from);
    ns.set(op.to, node);
  }
}

function fsError(code: string, op: string, path: string): Error {
  return Object.assign(new Error(`${code}: simulated ${op} '${path}'`), { code });
}

export type SimFaultOp = 'write' | 'datasync' | 'syncDir' | 'rename' | 'open' | 'unlink';

export interface CrashOptions {
  /**
   * Picks how much unsynced state survives: returns an integer in [0, limit]. Called with
   * what = 'metadata' (limit = unsynced name operations), 'data:<path>' (limit = unsynced
   * bytes of that file, a truncate counting 1), 'zero:<path>' (limit 1: does the rest of a
   * torn write read back as zeros), 'sectors:<path>' (limit 1: keep a subset of sectors
   * instead of a prefix) and 'sector:<path>:<offset>' (limit 1: keep this sector).
   * Default: keep nothing unsynced.
   */
  choose?: (limit: number, what: string) => number;
}

export class SimFs implements Fs {
  #volatile = new Map<string, Node>();
  #durable = new Map<string, Node>();
  #metaOps: MetaOp[] = [];
  #alive = true;
  #faults = new Map<SimFaultOp, number>();
  /** Counts of operations by kind, for tests that check what reached the disk. */
  readonly calls = { write: 0, datasync: 0, syncDir: 0, rename: 0 };

  constructor() {
    this.#volatile.set('/', { kind: 'dir' });
    this.#durable.set('/', { kind: 'dir' });
  }

  /** The next `count` calls of `op` reject with EIO. */
  failNext(op: SimFaultOp, count = 1): void {
    this.#faults.set(op, (this.#faults.get(op) ?? 0) + count);
  }

  /** Unsynced data bytes across all files (where a crash can tear). */
  unsyncedBytes(): number {
    let n = 0;
    for (const inode of this.#inodes(this.#volatile)) n += inode.pendingBytes();
    return n;
  }

  /** Unsynced name operations. */
  unsyncedMetadataOps(): number {
    return this.#metaOps.length;
  }

  /** An independent copy of the current contents, all of it durable (for corruption tests). */
  clone(): SimFs {
    const copy = new SimFs();
    const inodes = new Map<Inode, Inode>();
    for (const [path, node] of this.#volatile) {
      let fresh: Node = node;
      if (node.kind === 'file') {
        let inode = inodes.get(node.inode);
        if (inode === undefined) inodes.set(node.inode, (inode = new Inode(node.inode.content())));
        fresh = { kind: 'file', inode };
      }
      copy.#volatile.set(path, fresh);
      copy.#durable.set(path, fresh);
    }
    return copy;
  }

  /** Cuts the power: this instance dies; returns the file system as it is after reboot. */
  crash(opts: CrashOptions = {}): SimFs {
    assert(this.#alive, 'a SimFs crashes once');
    this.#alive = false;
    const choose = (limit: number, what: string): number => {
      if (limit === 0 || !opts.choose) return 0;
      const n = opts.choose(limit, what);
      assert(Number.isInteger(n) && n >= 0 && n <= limit, `choose(${limit}, ${what}) returned ${n}`);
      return n;
    };
    const ns = new Map(this.#durable);
    const keepOps = choose(this.#metaOps.length, 'metadata');
    for (const op of this.#metaOps.slice(0, keepOps)) applyMeta(ns, op);
    const after = new SimFs();
    const rebuilt = new Map<Inode, Inode>();
    for (const [path, node] of ns) {
      if (node.kind === 'dir') {
        after.#volatile.set(path, node);
        after.#durable.set(path, node);
        continue;
      }
      let inode = rebuilt.get(node.inode);
      if (inode === undefined) {
        inode = new Inode(SimFs.#survivor(node.inode, path, choose));
        rebuilt.set(node.inode, inode);
      }
      const fresh: Node = { kind: 'file', inode };
      after.#volatile.set(path, fresh);
      after.#durable.set(path, fresh);
    }
    return after;
  }

  static #survivor(old: Inode, path: string, choose: (limit: number, what: string) => number): Uint8Array {
    const disk = new Inode(old.durable);
    if (old.ops.length > 0 && old.ops.every((op) => op.kind === 'write') && choose(1, `sectors:${path}`) === 1) {
      // Out of order: each 512-byte sector of each unsynced write reached the disk or not.
      for (const op of old.ops) {
        if (op.kind !== 'write') continue;
        const end = op.position + op.bytes.length;
        for (let at = op.position; at < end;) {
          const sectorEnd = Math.min(end, (Math.floor(at / SECTOR_BYTES) + 1) * SECTOR_BYTES);
          if (choose(1, `sector:${path}:${at}`) === 1) disk.write(op.bytes.subarray(at - op.position, sectorEnd - op.position), at);
          at = sectorEnd;
        }
      }
      return disk.content();
    }
    let keep = choose(old.pendingBytes(), `data:${path}`);
    for (const op of old.ops) {
      if (op.kind === 'truncate') {
        if (keep === 0) break;
        disk.truncate(op.lengthBytes);
        keep -= 1;
      } else if (keep >= op.bytes.length) {
        disk.write(op.bytes, op.position);
        keep -= op.bytes.length;
      } else {
        // The torn write: `keep` bytes of it (maybe none) reached the disk; with zero fill the
        // file size did too, and the rest reads back as zeros.
        const zeroFill = choose(1, `zero:${path}`) === 1;
        const torn = zeroFill ? new Uint8Array(op.bytes.length) : new Uint8Array(keep);
        torn.set(op.bytes.subarray(0, keep));
        if (torn.length > 0) disk.write(torn, op.position);
        break;
      }
    }
    return disk.content();
  }

  *#inodes(ns: Map<string, Node>): Iterable<Inode> {
    const seen = new Set<Inode>();
    for (const node of ns.values()) {
      if (node.kind === 'file' && !seen.has(node.inode)) {
        seen.add(node.inode);
        yield node.inode;
      }
    }
  }

  /** Waits a macrotask; never settles once the machine has crashed. */
  async #step(op?: SimFaultOp, path = ''): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!this.#alive) await new Promise<never>(() => { /* the process is gone */ });
    if (op !== undefined) {
      const left = this.#faults.get(op) ?? 0;
      if (left > 0) {
        this.#faults.set(op, left - 1);
        throw fsError('EIO', op, path);
      }
    }
  }

  #norm(path: string): string {
    return posix.resolve('/', path);
  }

  #meta(op: MetaOp): void {
    applyMeta(this.#volatile, op);
    this.#metaOps.push(op);
  }

  #parentDir(path: string, op: string): void {
    const parent = this.#volatile.get(posix.dirname(path));
    if (parent === undefined) throw fsError('ENOENT', op, path);
    if (parent.kind !== 'dir') throw fsError('ENOTDIR', op, path);
  }

  async open(path: string, mode: FsOpenMode): Promise<FsFile> {
    const p = this.#norm(path);
    await this.#step('open', p);
    let node = this.#volatile.get(p);
    if (node?.kind === 'dir') throw fsError('EISDIR', 'open', p);
    if (mode === 'create' && node !== undefined) throw fsError('EEXIST', 'open', p);
    if ((mode === 'read' || mode === 'readwrite') && node === undefined) throw fsError('ENOENT', 'open', p);
    if (node === undefined) {
      this.#parentDir(p, 'open');
      node = { kind: 'file', inode: new Inode() };
      this.#meta({ kind: 'link', path: p, node });
    } else if (mode === 'truncate' && node.inode.sizeBytes > 0) {
      node.inode.truncate(0);
      node.inode.ops.push({ kind: 'truncate', lengthBytes: 0 });
    }
    return new SimFile(this, p, node.inode, mode === 'read');
  }

  /** @internal used by SimFile */
  async fileStep(op: SimFaultOp | undefined, path: string): Promise<void> {
    await this.#step(op, path);
  }

  async readFile(path: string): Promise<Uint8Array> {
    const p = this.#norm(path);
    await this.#step(undefined, p);
    const node = this.#volatile.get(p);
    if (node === undefined) throw fsError('ENOENT', 'readFile', p);
    if (node.kind === 'dir') throw fsError('EISDIR', 'readFile', p);
    return node.inode.content();
  }

  async readdir(path: string): Promise<string[]> {
    const p = this.#norm(path);
    await this.#step(undefined, p);
    const node = this.#volatile.get(p);
    if (node === undefined) throw fsError('ENOENT', 'readdir', p);
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'readdir', p);
    const names: string[] = [];
    for (const key of this.#volatile.keys()) if (key !== '/' && posix.dirname(key) === p) names.push(posix.basename(key));
    return names.sort();
  }

  async stat(path: string): Promise<FsStat | undefined> {
    const p = this.#norm(path);
    await this.#step(undefined, p);
    const node = this.#volatile.get(p);
    if (node === undefined) return undefined;
    return node.kind === 'dir' ? { kind: 'directory', sizeBytes: 0 } : { kind: 'file', sizeBytes: node.inode.sizeBytes };
  }

  async mkdir(path: string): Promise<void> {
    const p = this.#norm(path);
    await this.#step(undefined, p);
    const node = this.#volatile.get(p);
    if (node?.kind === 'dir') return;
    if (node !== undefined) throw fsError('EEXIST', 'mkdir', p);
    this.#parentDir(p, 'mkdir');
    this.#meta({ kind: 'link', path: p, node: { kind: 'dir' } });
  }

  async rename(from: string, to: string): Promise<void> {
    const f = this.#norm(from);
    const t = this.#norm(to);
    await this.#step('rename', f);
    this.calls.rename += 1;
    const node = this.#volatile.get(f);
    if (node === undefined) throw fsError('ENOENT', 'rename', f);
    if (node.kind === 'dir') throw fsError('EISDIR', 'rename', f);
    this.#parentDir(t, 'rename');
    if (this.#volatile.get(t)?.kind === 'dir') throw fsError('EISDIR', 'rename', t);
    this.#meta({ kind: 'rename', from: f, to: t });
  }

  async unlink(path: string): Promise<void> {
    const p = this.#norm(path);
    await this.#step('unlink', p);
    const node = this.#volatile.get(p);
    if (node === undefined) throw fsError('ENOENT', 'unlink', p);
    if (node.kind === 'dir') throw fsError('EISDIR', 'unlink', p);
    this.#meta({ kind: 'unlink', path: p });
  }

  async rmdir(path: string): Promise<void> {
    const p = this.#norm(path);
    await this.#step(undefined, p);
    const node = this.#volatile.get(p);
    if (node === undefined) throw fsError('ENOENT', 'rmdir', p);
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'rmdir', p);
    for (const key of this.#volatile.keys()) if (key !== p && key.startsWith(`${p}/`)) throw fsError('ENOTEMPTY', 'rmdir', p);
    this.#meta({ kind: 'unlink', path: p });
  }

  async syncDir(path: string): Promise<void> {
    const p = this.#norm(path);
    await this.#step('syncDir', p);
    this.calls.syncDir += 1;
    if (this.#volatile.get(p)?.kind !== 'dir') throw fsError('ENOENT', 'syncDir', p);
    let last = -1;
    this.#metaOps.forEach((op, i) => { if (metaDirs(op).includes(p)) last = i; });
    for (const op of this.#metaOps.slice(0, last + 1)) applyMeta(this.#durable, op);
    this.#metaOps = this.#metaOps.slice(last + 1);
  }
}

class SimFile implements FsFile {
  #closed = false;
  constructor(private readonly fs: SimFs, private readonly path: string, private readonly inode: Inode, private readonly readOnly: boolean) {}

  #check(op: string): void {
    if (this.#closed) throw fsError('EBADF', op, this.path);
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    await this.fs.fileStep(undefined, this.path);
    this.#check('read');
    const n = Math.max(0, Math.min(length, this.inode.sizeBytes - position));
    buffer.set(this.inode.data.subarray(position, position + n), offset);
    return n;
  }

  async write(bytes: Uint8Array, position: number): Promise<void> {
    const copy = bytes.slice(); // the caller may reuse its buffer once this resolves
    await this.fs.fileStep('write', this.path);
    this.#check('write');
    if (this.readOnly) throw fsError('EBADF', 'write', this.path);
    this.fs.calls.write += 1;
    this.inode.write(copy, position);
    this.inode.ops.push({ kind: 'write', position, bytes: copy });
  }

  async datasync(): Promise<void> {
    await this.fs.fileStep('datasync', this.path);
    this.#check('datasync');
    this.fs.calls.datasync += 1;
    this.inode.durable = this.inode.content();
    this.inode.ops = [];
  }

  async truncate(lengthBytes: number): Promise<void> {
    await this.fs.fileStep(undefined, this.path);
    this.#check('truncate');
    this.inode.truncate(lengthBytes);
    this.inode.ops.push({ kind: 'truncate', lengthBytes });
  }

  async sizeBytes(): Promise<number> {
    await this.fs.fileStep(undefined, this.path);
    this.#check('size');
    return this.inode.sizeBytes;
  }

  async close(): Promise<void> {
    await this.fs.fileStep(undefined, this.path);
    this.#closed = true;
  }
}
