/**
 * fast-check model test of the tiered store against a plain Map: any sequence of puts (sticky
 * or not), reads (with and without promotion), removes and "persisted" marks. Properties:
 * bytes read are exactly the bytes put; a sticky (pinned or unpersisted) block is never
 * dropped; only a block the model holds is ever on the worker; no file tier exceeds its
 * quota. A failing run prints its seed; `fc.assert(..., { seed })` replays it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TieredBlockStore } from '../../worker/tiered-store.js';
import { isTesseraError } from '../../core/errors.js';

const KIB = 1024;

interface Entry { bytes: Uint8Array; sticky: boolean }
interface Model { blocks: Map<number, Entry> }
interface Real { store: TieredBlockStore }

function bytesOf(id: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (id * 97 + i * 31 + (i >> 8)) & 0xff;
  return b;
}

async function check(m: Model, r: Real): Promise<void> {
  await r.store.settle();
  for (const [id, e] of m.blocks) {
    if (e.sticky) assert.ok(r.store.has(id), `sticky block ${id} is still on the worker`);
  }
  for (const [id] of r.store.report()) assert.ok(m.blocks.has(id), `block ${id} on the worker is in the model`);
  for (const t of r.store.tierStats()) if (t.alias !== 'MEM') assert.ok(t.usedBytes <= t.capacityBytes, `${t.alias} within quota`);
  // Drop from the model what the store dropped (allowed only for droppable blocks, checked above).
  for (const id of [...m.blocks.keys()]) if (!r.store.has(id)) m.blocks.delete(id);
}

class Put implements fc.AsyncCommand<Model, Real> {
  constructor(readonly id: number, readonly len: number, readonly sticky: boolean) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    const bytes = bytesOf(this.id, this.len);
    try {
      await r.store.putBlock(this.id, bytes, this.sticky ? { persisted: false } : {});
      assert.ok(!m.blocks.has(this.id), 'put of an existing block must fail');
      m.blocks.set(this.id, { bytes, sticky: this.sticky });
    } catch (e) {
      if (isTesseraError(e, 'TESSERA_ERR_BLOCK_EXISTS')) assert.ok(m.blocks.has(this.id));
      else if (isTesseraError(e, 'TESSERA_ERR_NO_SPACE')) assert.ok(!r.store.has(this.id) || m.blocks.has(this.id));
      else throw e;
    }
    await check(m, r);
  }
  toString(): string { return `put(${this.id}, ${this.len}${this.sticky ? ', sticky' : ''})`; }
}

class Read implements fc.AsyncCommand<Model, Real> {
  constructor(readonly id: number, readonly promote: boolean) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    const reader = await r.store.openReader(this.id, { promote: this.promote });
    const e = m.blocks.get(this.id);
    if (!reader) {
      assert.ok(!e || !e.sticky, `sticky block ${this.id} readable`);
    } else {
      try {
        assert.ok(e, `block ${this.id} read but not in the model`);
        assert.equal(Uint8Array.from(await reader.read(0, reader.lengthBytes)), e!.bytes);
      } finally {
        reader.release();
      }
    }
    await check(m, r);
  }
  toString(): string { return `read(${this.id}${this.promote ? ', promote' : ''})`; }
}

class Remove implements fc.AsyncCommand<Model, Real> {
  constructor(readonly id: number) {}
  check(): boolean { return true; }
  async run(m: Model, r: Real): Promise<void> {
    const removed = await r.store.remove(this.id);
    if (removed) assert.ok(m.blocks.has(this.id));
    m.blocks.delete(this.id);
    await check(m, r);
  }
  toString(): string { return `remove(${this.id})`; }
}

class Persisted implements fc.AsyncCommand<Model, Real> {
  constructor(readonly id: number) {}
  check(m: Readonly<Model>): boolean { return m.blocks.has(this.id); }
  async run(m: Model, r: Real): Promise<void> {
    r.store.setFlags(this.id, { persisted: true });
    m.blocks.get(this.id)!.sticky = false;
    await check(m, r);
  }
  toString(): string { return `persisted(${this.id})`; }
}

test('the tiered store keeps bytes, quotas and sticky blocks under any sequence of operations', async () => {
  const id = fc.integer({ min: 1, max: 24 });
  const commands = [
    fc.tuple(id, fc.integer({ min: 1, max: 24 * KIB }), fc.boolean()).map(([i, l, s]) => new Put(i, l, s)),
    fc.tuple(id, fc.boolean()).map(([i, p]) => new Read(i, p)),
    id.map((i) => new Remove(i)),
    id.map((i) => new Persisted(i)),
  ];
  await fc.assert(fc.asyncProperty(fc.commands(commands, { maxCommands: 80, size: 'max' }), async (cmds) => {
    const root = await mkdtemp(join(tmpdir(), 'tessera-tsm-'));
    const store = await TieredBlockStore.open([
      { alias: 'MEM', capacityBytes: 48 * KIB, backing: 'sab' },
      { alias: 'SSD', dirs: [{ path: join(root, 'ssd'), capacityBytes: 48 * KIB }] },
      { alias: 'HDD', dirs: [{ path: join(root, 'h0'), capacityBytes: 32 * KIB }, { path: join(root, 'h1'), capacityBytes: 32 * KIB }] },
    ]);
    try {
      await fc.asyncModelRun(() => ({ model: { blocks: new Map() }, real: { store } }), cmds);
    } finally {
      await store.close();
      await rm(root, { recursive: true, force: true });
    }
  }), { numRuns: Number(process.env.SOAK) ? 500 : 40 });
});

test.run();
