/**
 * fast-check model test of the namespace: random operations against a FileSystemMaster with a
 * real journal (temp dir, real fsync) and against a plain Map of paths, with restarts (replay,
 * sometimes from a checkpoint) mixed in. After every step: same error code (or none), and the
 * whole tree (kind, length, completion, attributes, creation time, block count) is the same.
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
import type { FileInfo } from '../../transports/protocol/master.js';

interface ModelNode {
  dir: boolean;
  length: number;
  completed: boolean;
  pinned: boolean;
  mode: number;
  ttlMs: number;
  ctime: number;
  blockSize: number;
  blocks: number;
  owner: string;
}

class Model {
  nodes = new Map<string, ModelNode>([['/', this.#dir(0, 0o755, '')]]);
  #dir(ctime: number, mode: number, owner: string): ModelNode {
    return { dir: true, length: 0, completed: true, pinned: false, mode, ttlMs: -1, ctime, blockSize: 0, blocks: 0, owner };
  }
  static join(c: string[]): string { return c.length === 0 ? '/' : '/' + c.join('/'); }
  isDir(c: string[]): boolean { return this.nodes.get(Model.join(c))?.dir === true; }
  has(c: string[]): boolean { return this.nodes.has(Model.join(c)); }
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
  mkdirs(c: string[], from: number, to: number, now: number, mode: number, owner: string): void {
    for (let i = from; i < to; i++) this.nodes.set(Model.join(c.slice(0, i + 1)), this.#dir(now, mode, owner));
  }
  createFile(c: string[], recursive: boolean, now: number): void {
    if (c.length === 0) throw 'TESSERA_ERR_FILE_ALREADY_EXISTS';
    const from = this.parentForCreate(c, recursive);
    if (from === c.length - 1 && this.has(c)) throw 'TESSERA_ERR_FILE_ALREADY_EXISTS';
    this.mkdirs(c, from, c.length - 1, now, 0o755, '');
    this.nodes.set(Model.join(c), { dir: false, length: 0, completed: false, pinned: false, mode: 0o644, ttlMs: -1, ctime: now, blockSize: 1000, blocks: 0, owner: '' });
  }
  mkdir(c: string[], recursive: boolean, allowExists: boolean, now: number): void {
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
    this.mkdirs(c, from, c.length, now, 0o755, '');
  }
  completeFile(c: string[], length: number): void {
    const n = this.get(c);
    if (n.dir) throw 'TESSERA_ERR_IS_A_DIRECTORY';
    if (n.completed) throw 'TESSERA_ERR_FILE_ALREADY_COMPLETED';
    n.length = length;
    n.completed = true;
    n.blocks = Math.max(n.blocks, Math.ceil(length / n.blockSize));
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
  rename(src: string[], dst: string[]): void {
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
  }
  delete(c: string[], recursive: boolean): void {
    const n = this.get(c);
    if (c.length === 0) throw 'TESSERA_ERR_INVALID_ARGUMENT';
    if (n.dir && !recursive && this.subtree(c).length > 1) throw 'TESSERA_ERR_DIRECTORY_NOT_EMPTY';
    for (const k of this.subtree(c)) this.nodes.delete(k);
  }
  setAttribute(c: string[], a: { pinned?: boolean; mode?: number; ttlMs?: number; owner?: string }): void {
    const n = this.get(c);
    if (a.pinned !== undefined) n.pinned = a.pinned;
    if (a.mode !== undefined) n.mode = a.mode;
    if (a.ttlMs !== undefined) n.ttlMs = a.ttlMs;
    if (a.owner !== undefined) n.owner = a.owner;
  }
  dump(): string[] {
    return [...this.nodes.entries()].map(([p, n]) =>
      `${p} ${n.dir ? 'd' : 'f'} len=${n.length} c=${n.completed} pin=${n.pinned} mode=${n.mode.toString(8)} ttl=${n.ttlMs} ct=${n.ctime} blocks=${n.blocks} owner=${n.owner}`).sort();
  }
}

async function dumpReal(m: FileSystemMaster): Promise<string[]> {
  const out: string[] = [];
  const line = (i: FileInfo) => `${i.path} ${i.isDirectory ? 'd' : 'f'} len=${i.lengthBytes} c=${i.completed} pin=${i.pinned} mode=${i.mode.toString(8)} ttl=${i.ttlMs} ct=${i.creationTimeMs} blocks=${i.blockIds.length} owner=${i.owner}`;
  const walk = async (path: string): Promise<void> => {
    let startAfter: string | undefined;
    for (;;) {
      const page = await m.listStatus({ path, limit: 2, ...(startAfter !== undefined ? { startAfter } : {}) });
      for (const e of page.entries) {
        out.push(line(e));
        if (e.isDirectory) await walk(e.path);
      }
      if (!page.truncated) break;
      startAfter = page.entries[page.entries.length - 1]!.name;
    }
  };
  out.push(line(await m.getStatus({ path: '/' })));
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

type Cmd = fc.AsyncCommand<Model, Real>;

function cmd(label: string, run: (m: Model, r: Real) => Promise<void>): Cmd {
  return { check: () => true, run, toString: () => label };
}

async function same(label: string, model: Model, r: Real, real: () => Promise<unknown>, mod: () => void): Promise<void> {
  r.now += 1000;
  const a = await outcome(real);
  const b = modelOutcome(mod);
  assert.is(a, b, `${label}: outcome`);
}

const commands = [
  fc.tuple(comps, fc.boolean()).map(([c, rec]) => cmd(`createFile(${pathOf(c)}, ${rec})`, async (m, r) =>
    same('createFile', m, r, () => r.m.createFile({ path: pathOf(c), recursive: rec, blockSizeBytes: 1000 }), () => m.createFile(c, rec, r.now)))),
  fc.tuple(comps, fc.boolean(), fc.boolean()).map(([c, rec, ae]) => cmd(`mkdir(${pathOf(c)}, ${rec}, ${ae})`, async (m, r) =>
    same('mkdir', m, r, () => r.m.mkdir({ path: pathOf(c), recursive: rec, allowExists: ae }), () => m.mkdir(c, rec, ae, r.now)))),
  fc.tuple(comps, fc.integer({ min: 0, max: 3500 })).map(([c, len]) => cmd(`completeFile(${pathOf(c)}, ${len})`, async (m, r) =>
    same('completeFile', m, r, () => r.m.completeFile({ path: pathOf(c), lengthBytes: len }), () => m.completeFile(c, len)))),
  comps.map((c) => cmd(`getNewBlockId(${pathOf(c)})`, async (m, r) =>
    same('getNewBlockId', m, r, () => r.m.getNewBlockId({ path: pathOf(c) }), () => m.newBlock(c)))),
  fc.tuple(comps, comps).map(([a, b]) => cmd(`rename(${pathOf(a)}, ${pathOf(b)})`, async (m, r) =>
    same('rename', m, r, () => r.m.rename({ src: pathOf(a), dst: pathOf(b) }), () => m.rename(a, b)))),
  fc.tuple(comps, fc.boolean()).map(([c, rec]) => cmd(`delete(${pathOf(c)}, ${rec})`, async (m, r) =>
    same('delete', m, r, () => r.m.delete({ path: pathOf(c), recursive: rec }), () => m.delete(c, rec)))),
  fc.tuple(comps, fc.record({ pinned: fc.boolean(), mode: fc.integer({ min: 0, max: 0o777 }), ttlMs: fc.integer({ min: -1, max: 1e6 }), owner: fc.constantFrom('alice', 'bob') },
    { requiredKeys: [] })).map(([c, a]) => cmd(`setAttribute(${pathOf(c)}, ${JSON.stringify(a)})`, async (m, r) =>
    same('setAttribute', m, r, () => r.m.setAttribute({ path: pathOf(c), ...a }), () => m.setAttribute(c, a)))),
  comps.map((c) => cmd(`getStatus(${pathOf(c)})`, async (m, r) =>
    same('getStatus', m, r, () => r.m.getStatus({ path: pathOf(c) }), () => { m.get(c); }))),
  comps.map((c) => cmd(`exists(${pathOf(c)})`, async (m, r) => {
    let expected: boolean;
    try { expected = m.lookup(c) === 'found'; } catch { expected = false; }
    assert.is(await r.m.exists({ path: pathOf(c) }), expected, 'exists');
  })),
  fc.boolean().map((withCheckpoint) => cmd(`restart(checkpoint=${withCheckpoint})`, async (m, r) => {
    if (withCheckpoint) await r.m.checkpoint();
    await r.m.close();
    r.m = await FileSystemMaster.open({ journalDir: r.dir, clock: () => r.now, initialInodeCapacity: 16 });
    assert.equal(await dumpReal(r.m), m.dump(), 'tree after restart');
  })),
];

test('the namespace matches a plain tree model, with the same errors, across restarts', async () => {
  await fc.assert(fc.asyncProperty(fc.commands([...commands, commands[0]!, commands[1]!, commands[2]!], { maxCommands: 80, size: 'max' }), async (cmds) => {
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
