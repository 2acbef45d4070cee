/**
 * fast-check model test of the namespace: random operations against a FileSystemMaster with a
 * real journal (temp dir, real fsync) and against a plain Map of paths, with restarts (replay,
 * sometimes from a checkpoint) mixed in. Operations: createFile (with random options), mkdir,
 * completeFile, getNewBlockId, rename, delete, setAttribute (pinned, mode, owner, group, TTL and
 * TTL action, replication min/max, recursive or not), getStatus, exists; a few option values
 * are invalid. After every step: the same error code (or none), and the whole tree, read back
 * through getStatus and paged listStatus, is the same with every attribute of every inode: id,
 * kind, length, completion, pinned, mode, owner, group, TTL and action, persistence state,
 * replication bounds, creation and modification times, block size and ids, child count.
 * A failure prints its seed and path; `fc.assert(..., { seed, path })` replays it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSystemMaster } from '../../master/file-system-master.js';
import { isTesseraError } from '../../core/errors.js';
import { SimFs } from '../../core/journal/index.js';
import { blockIdOf, type CreateFileRequest, type FileInfo, type SetAttributeRequest } from '../../transports/protocol/master.js';

type Persistence = 'NOT_PERSISTED' | 'TO_BE_PERSISTED' | 'PERSISTED' | 'LOST';
interface ModelNode {
  id: number;
  dir: boolean;
  length: number;
  completed: boolean;
  pinned: boolean;
  mode: number;
  owner: string;
  group: string;
  ttlMs: number;
  ttlAction: string;
  persistence: Persistence;
  replMin: number;
  replMax: number;
  ctime: number;
  mtime: number;
  blockSize: number;
  blocks: number;
}

/** Options of createFile, mkdir and setAttribute as the model test generates them (invalid values included). */
interface Opts {
  mode?: number;
  owner?: string;
  group?: string;
  pinned?: boolean;
  ttlMs?: number;
  ttlAction?: string;
  replicationMin?: number;
  replicationMax?: number;
  persistenceState?: string;
}

const PERSISTENCE: readonly string[] = ['NOT_PERSISTED', 'TO_BE_PERSISTED', 'PERSISTED', 'LOST'];
const isInt = (v: number, min: number, max: number) => Number.isInteger(v) && v >= min && v <= max;

/** Mirrors InodeTree's option checks: every bad value is INVALID_ARGUMENT. */
function checkOptions(o: Opts): void {
  const bad = (ok: boolean) => { if (!ok) throw 'TESSERA_ERR_INVALID_ARGUMENT'; };
  if (o.mode !== undefined) bad(isInt(o.mode, 0, 0o7777));
  if (o.ttlMs !== undefined) bad(isInt(o.ttlMs, -1, Number.MAX_SAFE_INTEGER));
  if (o.ttlAction !== undefined) bad(o.ttlAction === 'DELETE' || o.ttlAction === 'FREE');
  if (o.replicationMin !== undefined) bad(isInt(o.replicationMin, 0, 32767));
  if (o.replicationMax !== undefined) bad(isInt(o.replicationMax, -1, 32767));
  const rmin = o.replicationMin ?? 0;
  const rmax = o.replicationMax ?? -1;
  bad(rmax === -1 || rmax >= rmin);
  if (o.persistenceState !== undefined) bad(PERSISTENCE.includes(o.persistenceState));
}

class Model {
  nextId = 1;
  nodes = new Map<string, ModelNode>([['/', this.#dir(0, 0, 0o755, '', '')]]);
  #dir(id: number, now: number, mode: number, owner: string, group: string): ModelNode {
    return {
      id, dir: true, length: 0, completed: true, pinned: false, mode, owner, group, ttlMs: -1, ttlAction: 'DELETE', persistence: 'NOT_PERSISTED',
      replMin: 0, replMax: -1, ctime: now, mtime: now, blockSize: 0, blocks: 0,
    };
  }
  static join(c: string[]): string { return c.length === 0 ? '/' : '/' + c.join('/'); }
  static parentOf(p: string): string { return p.lastIndexOf('/') === 0 ? '/' : p.slice(0, p.lastIndexOf('/')); }
  isDir(c: string[]): boolean { return this.nodes.get(Model.join(c))?.dir === true; }
  has(c: string[]): boolean { return this.nodes.has(Model.join(c)); }
  /** A child was added to or removed from the directory at `p`. */
  touch(p: string, now: number): void { this.nodes.get(p)!.mtime = now; }
  /** Mirrors InodeTree.lookup: 'found' | 'missing', or throws an error code. */
  lookup(c: string[], upTo = c.length): 'found' | 'missing' {
    for (let i = 0; i < upTo; i++) {
      if (!this.isDir(c.slice(0, i))) throw 'TESSERA_ERR_NOT_A_DIRECTORY';
      if (!this.has(c.slice(0, i + 1))) {
        if (i === upTo - 1) return 'missing';
        throw 'TESSERA_ERR_FILE_NOT_FOUND';
      }
    }
    return 'found';
  }
  get(c: string[]): ModelNode {
    if (this.lookup(c) === 'missing') throw 'TESSERA_ERR_FILE_NOT_FOUND';
    return this.nodes.get(Model.join(c))!;
  }
  /** Index of the first missing component when creating `c` (ancestors only). */
  parentForCreate(c: string[], recursive: boolean): number {
    const last = c.length - 1;
    for (let i = 0; i < last; i++) {
      if (!this.isDir(c.slice(0, i))) throw 'TESSERA_ERR_NOT_A_DIRECTORY';
      if (!this.has(c.slice(0, i + 1))) {
        if (!recursive) throw 'TESSERA_ERR_FILE_NOT_FOUND';
        return i;
      }
    }
    if (!this.isDir(c.slice(0, last))) throw 'TESSERA_ERR_NOT_A_DIRECTORY';
    return last;
  }
  mkdirs(c: string[], from: number, to: number, now: number, mode: number, owner: string, group: string): void {
    for (let i = from; i < to; i++) {
      this.nodes.set(Model.join(c.slice(0, i + 1)), this.#dir(this.nextId++, now, mode, owner, group));
      this.touch(Model.join(c.slice(0, i)), now);
    }
  }
  createFile(c: string[], recursive: boolean, o: Opts, now: number): void {
    if (c.length === 0) throw 'TESSERA_ERR_FILE_ALREADY_EXISTS';
    checkOptions(o);
    const from = this.parentForCreate(c, recursive);
    if (from === c.length - 1 && this.has(c)) throw 'TESSERA_ERR_FILE_ALREADY_EXISTS';
    this.mkdirs(c, from, c.length - 1, now, 0o755, o.owner ?? '', o.group ?? '');
    this.nodes.set(Model.join(c), {
      id: this.nextId++, dir: false, length: 0, completed: false, pinned: o.pinned ?? false, mode: o.mode ?? 0o644,
      owner: o.owner ?? '', group: o.group ?? '', ttlMs: o.ttlMs ?? -1, ttlAction: o.ttlAction ?? 'DELETE',
      persistence: (o.persistenceState ?? 'NOT_PERSISTED') as Persistence, replMin: o.replicationMin ?? 0, replMax: o.replicationMax ?? -1,
      ctime: now, mtime: now, blockSize: 1000, blocks: 0,
    });
    this.touch(Model.join(c.slice(0, -1)), now);
  }
  mkdir(c: string[], recursive: boolean, allowExists: boolean, o: Opts, now: number): void {
    checkOptions(o);
    let found = c.length === 0;
    if (!found) {
      let missing = false;
      for (let i = 0; i < c.length && !missing; i++) {
        if (!this.isDir(c.slice(0, i))) throw 'TESSERA_ERR_NOT_A_DIRECTORY';
        if (!this.has(c.slice(0, i + 1))) {
          if (i === c.length - 1 || recursive) missing = true;
          else throw 'TESSERA_ERR_FILE_NOT_FOUND';
        }
      }
      found = !missing;
    }
    if (found) {
      if (allowExists && this.isDir(c)) return;
      throw 'TESSERA_ERR_FILE_ALREADY_EXISTS';
    }
    const from = this.parentForCreate(c, recursive);
    this.mkdirs(c, from, c.length, now, o.mode ?? 0o755, o.owner ?? '', o.group ?? '');
  }
  completeFile(c: string[], length: number, persisted: boolean, now: number): void {
    const n = this.get(c);
    if (n.dir) throw 'TESSERA_ERR_IS_A_DIRECTORY';
    if (n.completed) throw 'TESSERA_ERR_FILE_ALREADY_COMPLETED';
    n.length = length;
    n.completed = true;
    n.blocks = Math.max(n.blocks, Math.ceil(length / n.blockSize));
    if (persisted) n.persistence = 'PERSISTED';
    n.mtime = now;
  }
  newBlock(c: string[]): void {
    const n = this.get(c);
    if (n.dir) throw 'TESSERA_ERR_IS_A_DIRECTORY';
    if (n.completed) throw 'TESSERA_ERR_FILE_ALREADY_COMPLETED';
    n.blocks++;
  }
  subtree(c: string[]): string[] {
    const p = Model.join(c);
    return [...this.nodes.keys()].filter((k) => k === p || (p === '/' ? k !== '/' : k.startsWith(p + '/')));
  }
  rename(src: string[], dst: string[], now: number): void {
    this.get(src);
    if (src.length === 0) throw 'TESSERA_ERR_INVALID_RENAME';
    if (dst.length === 0) throw 'TESSERA_ERR_FILE_ALREADY_EXISTS';
    if (dst.length >= src.length && src.every((x, i) => dst[i] === x)) throw 'TESSERA_ERR_INVALID_RENAME';
    if (this.lookup(dst) === 'found') throw 'TESSERA_ERR_FILE_ALREADY_EXISTS';
    if (this.lookup(dst, dst.length - 1) === 'missing') throw 'TESSERA_ERR_FILE_NOT_FOUND';
    if (!this.isDir(dst.slice(0, -1))) throw 'TESSERA_ERR_NOT_A_DIRECTORY';
    const sp = Model.join(src);
    const dp = Model.join(dst);
    for (const k of this.subtree(src)) {
      const n = this.nodes.get(k)!;
      this.nodes.delete(k);
      this.nodes.set(dp + k.slice(sp.length), n);
    }
    this.touch(Model.parentOf(sp), now);
    this.touch(Model.parentOf(dp), now);
  }
  delete(c: string[], recursive: boolean, now: number): void {
    const n = this.get(c);
    if (c.length === 0) throw 'TESSERA_ERR_INVALID_ARGUMENT';
    if (n.dir && !recursive && this.subtree(c).length > 1) throw 'TESSERA_ERR_DIRECTORY_NOT_EMPTY';
    for (const k of this.subtree(c)) this.nodes.delete(k);
    this.touch(Model.join(c.slice(0, -1)), now);
  }
  setAttribute(c: string[], a: Opts, recursive: boolean, now: number): void {
    this.get(c);
    checkOptions(a);
    const targets = (recursive ? this.subtree(c) : [Model.join(c)]).map((p) => this.nodes.get(p)!);
    for (const n of targets) {
      if (a.replicationMin === undefined && a.replicationMax === undefined) continue;
      const rmin = a.replicationMin ?? n.replMin;
      const rmax = a.replicationMax ?? n.replMax;
      if (rmax !== -1 && rmax < rmin) throw 'TESSERA_ERR_INVALID_ARGUMENT';
    }
    for (const n of targets) {
      if (a.pinned !== undefined) n.pinned = a.pinned;
      if (a.mode !== undefined) n.mode = a.mode;
      if (a.ttlMs !== undefined) n.ttlMs = a.ttlMs;
      if (a.ttlAction !== undefined) n.ttlAction = a.ttlAction;
      if (a.owner !== undefined) n.owner = a.owner;
      if (a.group !== undefined) n.group = a.group;
      if (a.replicationMin !== undefined) n.replMin = a.replicationMin;
      if (a.replicationMax !== undefined) n.replMax = a.replicationMax;
      n.mtime = now;
    }
  }
  dump(): string[] {
    const kids = new Map<string, number>();
    for (const p of this.nodes.keys()) if (p !== '/') kids.set(Model.parentOf(p), (kids.get(Model.parentOf(p)) ?? 0) + 1);
    return [...this.nodes.entries()].map(([p, n]) => line(p, n.id, n.dir, n.length, n.completed, n.pinned, n.mode, n.owner, n.group, n.ttlMs,
      n.ttlAction, n.persistence, n.replMin, n.replMax, n.ctime, n.mtime, n.blockSize, n.blocks, kids.get(p) ?? 0)).sort();
  }
}

/** Every attribute of one inode, as one comparable line. */
function line(path: string, id: number, dir: boolean, length: number, completed: boolean, pinned: boolean, mode: number, owner: string,
  group: string, ttlMs: number, ttlAction: string, persistence: string, replMin: number, replMax: number, ctime: number, mtime: number,
  blockSize: number, blocks: number, children: number): string {
  return `${path} id=${id} ${dir ? 'd' : 'f'} len=${length} c=${completed} pin=${pinned} mode=${mode.toString(8)} owner=${owner} group=${group} ` +
    `ttl=${ttlMs}/${ttlAction} ${persistence} repl=${replMin}..${replMax} ct=${ctime} mt=${mtime} bs=${blockSize} blocks=${blocks} kids=${children}`;
}

async function dumpReal(m: FileSystemMaster): Promise<string[]> {
  const out: string[] = [];
  const add = (i: FileInfo) => {
    assert.is(i.name, i.path === '/' ? '' : i.path.slice(i.path.lastIndexOf('/') + 1), `name of ${i.path}`);
    assert.equal(i.blockIds, i.blockIds.map((_, k) => blockIdOf(i.fileId, k)), `block ids of ${i.path} derive from its id`);
    assert.is(i.mountPoint, false);
    out.push(line(i.path, i.fileId, i.isDirectory, i.lengthBytes, i.completed, i.pinned, i.mode, i.owner, i.group, i.ttlMs, i.ttlAction,
      i.persistenceState, i.replicationMin, i.replicationMax, i.creationTimeMs, i.modificationTimeMs, i.blockSizeBytes, i.blockIds.length, i.childCount));
  };
  const walk = async (path: string): Promise<void> => {
    let startAfter: string | undefined;
    for (;;) {
      const page = await m.listStatus({ path, limit: 2, ...(startAfter !== undefined ? { startAfter } : {}) });
      for (const e of page.entries) {
        add(e);
        if (e.isDirectory) await walk(e.path);
      }
      if (!page.truncated) break;
      startAfter = page.entries[page.entries.length - 1]!.name;
    }
  };
  add(await m.getStatus({ path: '/' }));
  await walk('/');
  return out.sort();
}

interface Real { m: FileSystemMaster; dir: string; now: number }

async function outcome(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    if (isTesseraError(e)) return e.code;
    throw e;
  }
}
function modelOutcome(fn: () => void): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (typeof e === 'string') return e;
    throw e;
  }
}

const name = fc.constantFrom('a', 'b');
// Short paths over two names, so that operations often meet existing inodes.
const comps = fc.oneof({ weight: 1, arbitrary: fc.constant([] as string[]) }, { weight: 8, arbitrary: fc.array(name, { minLength: 1, maxLength: 3 }) });
const pathOf = (c: string[]) => Model.join(c);
// Attribute values, a few of them invalid (mode above 0o7777, ttl below -1, an unknown action or
// state, replication below its range or max below min) so that refusals are compared too.
const mode = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 0o777 }) }, { weight: 1, arbitrary: fc.constant(0o10000) });
const ttlMs = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: -1, max: 1e6 }) }, { weight: 1, arbitrary: fc.constant(-2) });
const attrs = {
  pinned: fc.boolean(), mode, ttlMs, ttlAction: fc.constantFrom('DELETE', 'FREE', 'DELETE', 'FREE', 'NEVER'),
  owner: fc.constantFrom('alice', 'bob'), group: fc.constantFrom('staff', 'wheel'),
  replicationMin: fc.integer({ min: -1, max: 3 }), replicationMax: fc.integer({ min: -2, max: 3 }),
};
const setAttrs = fc.record(attrs, { requiredKeys: [] });
const createOpts = fc.record({ ...attrs, persistenceState: fc.constantFrom(...PERSISTENCE, 'GONE') }, { requiredKeys: [] });
const mkdirOpts = fc.record({ mode: attrs.mode, owner: attrs.owner, group: attrs.group }, { requiredKeys: [] });

type Cmd = fc.AsyncCommand<Model, Real>;

/** A step, then the whole tree (every attribute of every inode) compared with the model. */
function cmd(label: string, run: (m: Model, r: Real) => Promise<void>): Cmd {
  return {
    check: () => true,
    run: async (m, r) => {
      await run(m, r);
      assert.equal(await dumpReal(r.m), m.dump(), `${label}: tree`);
    },
    toString: () => label,
  };
}

async function same(label: string, model: Model, r: Real, real: () => Promise<unknown>, mod: () => void): Promise<void> {
  r.now += 1000;
  const a = await outcome(real);
  const b = modelOutcome(mod);
  assert.is(a, b, `${label}: outcome`);
}

const commands = [
  fc.tuple(comps, fc.boolean()).map(([c, rec]) => cmd(`createFile(${pathOf(c)}, ${rec})`, async (m, r) =>
    same('createFile', m, r, () => r.m.createFile({ path: pathOf(c), recursive: rec, blockSizeBytes: 1000 }), () => m.createFile(c, rec, {}, r.now)))),
  fc.tuple(comps, fc.boolean(), createOpts).map(([c, rec, o]) => cmd(`createFile(${pathOf(c)}, ${rec}, ${JSON.stringify(o)})`, async (m, r) =>
    same('createFile', m, r, () => r.m.createFile({ path: pathOf(c), recursive: rec, blockSizeBytes: 1000, ...o } as CreateFileRequest),
      () => m.createFile(c, rec, o, r.now)))),
  fc.tuple(comps, fc.boolean(), fc.boolean(), mkdirOpts).map(([c, rec, ae, o]) => cmd(`mkdir(${pathOf(c)}, ${rec}, ${ae}, ${JSON.stringify(o)})`, async (m, r) =>
    same('mkdir', m, r, () => r.m.mkdir({ path: pathOf(c), recursive: rec, allowExists: ae, ...o }), () => m.mkdir(c, rec, ae, o, r.now)))),
  fc.tuple(comps, fc.integer({ min: 0, max: 3500 }), fc.boolean()).map(([c, len, persisted]) => cmd(`completeFile(${pathOf(c)}, ${len}, ${persisted})`, async (m, r) =>
    same('completeFile', m, r, () => r.m.completeFile({ path: pathOf(c), lengthBytes: len, persisted }), () => m.completeFile(c, len, persisted, r.now)))),
  comps.map((c) => cmd(`getNewBlockId(${pathOf(c)})`, async (m, r) =>
    same('getNewBlockId', m, r, () => r.m.getNewBlockId({ path: pathOf(c) }), () => m.newBlock(c)))),
  fc.tuple(comps, comps).map(([a, b]) => cmd(`rename(${pathOf(a)}, ${pathOf(b)})`, async (m, r) =>
    same('rename', m, r, () => r.m.rename({ src: pathOf(a), dst: pathOf(b) }), () => m.rename(a, b, r.now)))),
  fc.tuple(comps, fc.boolean()).map(([c, rec]) => cmd(`delete(${pathOf(c)}, ${rec})`, async (m, r) =>
    same('delete', m, r, () => r.m.delete({ path: pathOf(c), recursive: rec }), () => m.delete(c, rec, r.now)))),
  fc.tuple(comps, setAttrs, fc.boolean()).map(([c, a, rec]) => cmd(`setAttribute(${pathOf(c)}, ${JSON.stringify(a)}, recursive=${rec})`, async (m, r) =>
    same('setAttribute', m, r, () => r.m.setAttribute({ path: pathOf(c), ...a, recursive: rec } as SetAttributeRequest), () => m.setAttribute(c, a, rec, r.now)))),
  comps.map((c) => cmd(`getStatus(${pathOf(c)})`, async (m, r) =>
    same('getStatus', m, r, () => r.m.getStatus({ path: pathOf(c) }), () => { m.get(c); }))),
  comps.map((c) => cmd(`exists(${pathOf(c)})`, async (m, r) => {
    let expected: boolean;
    try { expected = m.lookup(c) === 'found'; } catch { expected = false; }
    assert.is(await r.m.exists({ path: pathOf(c) }), expected, 'exists');
  })),
  fc.boolean().map((withCheckpoint) => cmd(`restart(checkpoint=${withCheckpoint})`, async (_m, r) => {
    if (withCheckpoint) await r.m.checkpoint();
    await r.m.close();
    r.m = await FileSystemMaster.open({ journalDir: r.dir, clock: () => r.now, initialInodeCapacity: 16 });
  })),
];

test('the namespace matches a plain tree model, with the same errors, across restarts', async () => {
  await fc.assert(fc.asyncProperty(fc.commands([...commands, commands[0]!, commands[2]!, commands[3]!, commands[7]!], { maxCommands: 80, size: 'max' }), async (cmds) => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-ns-model-'));
    const real: Real = { m: undefined as unknown as FileSystemMaster, dir, now: 1_000_000 };
    real.m = await FileSystemMaster.open({ journalDir: dir, format: true, clock: () => real.now, initialInodeCapacity: 16 });
    const model = new Model();
    try {
      await fc.asyncModelRun(() => ({ model, real }), cmds);
      assert.equal(await dumpReal(real.m), model.dump(), 'final tree');
      await real.m.close();
      const again = await FileSystemMaster.open({ journalDir: dir, clock: () => real.now });
      assert.equal(await dumpReal(again), model.dump(), 'final tree after a last replay');
      await again.close();
    } finally {
      await real.m.close();
      await rm(dir, { recursive: true, force: true });
    }
  }), { numRuns: Number(process.env.SOAK ? 1000 : 60) });
});

test('operations in flight together (one group commit) replay to the same tree', async () => {
  const op = fc.tuple(fc.constantFrom('create', 'mkdir', 'rename', 'delete', 'complete', 'attr'), comps, comps);
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-ns-concurrent-'));
    let m = await FileSystemMaster.open({ journalDir: dir, format: true, clock: () => 5 });
    try {
      await Promise.allSettled(ops.map(([kind, a, b]) => {
        switch (kind) {
          case 'create': return m.createFile({ path: pathOf(a), recursive: true });
          case 'mkdir': return m.mkdir({ path: pathOf(a), recursive: true, allowExists: true });
          case 'rename': return m.rename({ src: pathOf(a), dst: pathOf(b) });
          case 'delete': return m.delete({ path: pathOf(a), recursive: b.length > 1 });
          case 'complete': return m.completeFile({ path: pathOf(a), lengthBytes: b.length * 1000 });
          default: return m.setAttribute({ path: pathOf(a), pinned: b.length > 1, ttlMs: b.length });
        }
      }));
      const before = await dumpReal(m);
      await m.close();
      m = await FileSystemMaster.open({ journalDir: dir, clock: () => 5 });
      assert.equal(await dumpReal(m), before);
    } finally {
      await m.close();
      await rm(dir, { recursive: true, force: true });
    }
  }), { numRuns: 30 });
});

test('replication bounds are stored, checked against the other bound, all or nothing when recursive, and replayed', async () => {
  const fs = new SimFs();
  let m = await FileSystemMaster.open({ journalDir: '/j', journalFs: fs, format: true });
  try {
    await m.createFile({ path: '/d/a', recursive: true, replicationMin: 1, replicationMax: 3 });
    await m.createFile({ path: '/d/b', replicationMax: 1 });
    const a = await m.getStatus({ path: '/d/a' });
    assert.equal([a.replicationMin, a.replicationMax], [1, 3]);
    assert.is(await outcome(() => m.createFile({ path: '/d/c', replicationMin: 2, replicationMax: 1 })), 'TESSERA_ERR_INVALID_ARGUMENT');
    assert.is(await outcome(() => m.setAttribute({ path: '/d/a', replicationMin: 4 })), 'TESSERA_ERR_INVALID_ARGUMENT', 'above the stored max');
    assert.is(await outcome(() => m.setAttribute({ path: '/d/a', replicationMax: -2 })), 'TESSERA_ERR_INVALID_ARGUMENT');
    // /d/b's max is 1: a recursive min of 2 is refused for the whole subtree, /d/a included.
    assert.is(await outcome(() => m.setAttribute({ path: '/d', replicationMin: 2, recursive: true })), 'TESSERA_ERR_INVALID_ARGUMENT');
    assert.is((await m.getStatus({ path: '/d/a' })).replicationMin, 1);
    await m.setAttribute({ path: '/d', replicationMin: 2, replicationMax: -1, recursive: true });
    await m.setAttribute({ path: '/d/a', replicationMax: 5 });
    await m.close();
    m = await FileSystemMaster.open({ journalDir: '/j', journalFs: fs });
    const after = await m.listStatus({ path: '/d' });
    assert.equal(after.entries.map((e) => [e.name, e.replicationMin, e.replicationMax]), [['a', 2, 5], ['b', 2, -1]]);
    assert.equal([(await m.getStatus({ path: '/d' })).replicationMin, (await m.getStatus({ path: '/' })).replicationMin], [2, 0]);
  } finally {
    await m.close();
  }
});

test('invalid paths are refused with INVALID_PATH before anything is journaled', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-ns-bad-'));
  const m = await FileSystemMaster.open({ journalDir: dir, format: true });
  try {
    for (const p of ['', 'relative', '/a/../b', '/a/./b', '/a\0b', '/' + 'x'.repeat(256), 42 as unknown as string]) {
      assert.is(await outcome(() => m.createFile({ path: p })), 'TESSERA_ERR_INVALID_PATH', JSON.stringify(p));
      assert.is(await outcome(() => m.getStatus({ path: p })), 'TESSERA_ERR_INVALID_PATH', JSON.stringify(p));
    }
    assert.is(m.journal!.lastSequence('namespace'), 0);
    const f = await m.createFile({ path: '//a///b/', recursive: true });
    assert.is(f.path, '/a/b');
  } finally {
    await m.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
