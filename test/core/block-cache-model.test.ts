/**
 * Model-based test of the whole BlockCache API (fc.commands) against a plain Map, with the
 * same capacity rules: bytes read are the bytes put; usedBytes <= capacityBytes; extents
 * never overlap; a pinned or acquired block is never evicted; a view never changes until
 * released; put returns false only when everything left is pinned or acquired; invalid
 * input is refused with stable codes and leaves the cache consistent.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { BlockCache } from '../../core/block-cache.js';
import type { BlockId, BlockView } from '../../core/block-cache.js';
import { ErrorCode, isTesseraError } from '../../core/errors.js';
import type { ErrorCodeValue } from '../../core/errors.js';

const CAPACITY_BYTES = 8 * 1024;
const MAX_BLOCKS = 6;
const IDS: BlockId[] = [0, 1, 2, 3, -7, 2 ** 40, 'a', 'b', 'ü\u{1F600}'];

interface Held { id: BlockId; version: number; view?: BlockView; handle?: number; expected?: Uint8Array }

interface Model {
  blocks: Map<BlockId, { bytes: Uint8Array; version: number }>;
  views: Held[];
  released: BlockView[];
  pins: Held[];
  nextVersion: number;
}

type Real = BlockCache;

function bytesOf(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function isProtected(m: Model, id: BlockId, version: number): boolean {
  return m.views.some((h) => h.id === id && h.version === version) || m.pins.some((h) => h.id === id && h.version === version);
}

function expectCode(fn: () => unknown, code: ErrorCodeValue): void {
  try {
    fn();
  } catch (err) {
    assert.ok(isTesseraError(err, code), `expected ${code}, got ${String(err)}`);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** Drops evicted blocks from the model (checking they were evictable) and checks invariants. */
function reconcile(m: Model, r: Real): void {
  for (const [id, { version }] of [...m.blocks]) {
    if (r.has(id)) continue;
    assert.not.ok(isProtected(m, id, version), `a pinned or acquired block was evicted (id ${String(id)})`);
    m.blocks.delete(id);
  }
  for (const id of r.keys()) assert.ok(m.blocks.has(id), `cache holds only ids the model knows (${String(id)})`);
  const s = r.stats();
  assert.ok(s.usedBytes <= CAPACITY_BYTES, 'usedBytes <= capacityBytes');
  assert.is(s.blockCount, m.blocks.size);
  const extents = r.extents().sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < extents.length; i++) {
    assert.ok(extents[i - 1]![0] + extents[i - 1]![1] <= extents[i]![0], 'extents never overlap');
  }
  r.checkInvariants();
  for (const h of m.views) {
    const bytes = h.view !== undefined ? h.view.bytes : r.handleBytes(h.handle!);
    assert.equal(bytes, h.expected!, 'a view never changes before release');
  }
}

class Put implements fc.Command<Model, Real> {
  constructor(readonly id: BlockId, readonly size: number, readonly seed: number, readonly inPlace: boolean) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const bytes = bytesOf(this.size, this.seed);
    const ok = this.inPlace ? r.putWith(this.id, this.size, (target) => target.set(bytes)) : r.put(this.id, bytes);
    if (ok) {
      m.blocks.set(this.id, { bytes, version: m.nextVersion++ });
    } else {
      for (const id of r.keys()) {
        const b = m.blocks.get(id)!;
        assert.ok(isProtected(m, id, b.version), 'put fails only when every block left is pinned or acquired');
      }
    }
    reconcile(m, r);
  }
  toString = (): string => `${this.inPlace ? 'putWith' : 'put'}(${String(this.id)}, ${this.size})`;
}

class Get implements fc.Command<Model, Real> {
  constructor(readonly id: BlockId, readonly how: 'get' | 'getInto' | 'withView') {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    let got: Uint8Array | undefined;
    if (this.how === 'get') {
      got = r.get(this.id);
    } else if (this.how === 'withView') {
      got = r.withView(this.id, (bytes) => bytes.slice());
    } else {
      const target = new Uint8Array(CAPACITY_BYTES);
      const n = r.getInto(this.id, target);
      got = n < 0 ? undefined : target.subarray(0, n);
    }
    const want = m.blocks.get(this.id);
    if (got !== undefined) assert.equal(got, want?.bytes);
    else if (want) assert.not.ok(isProtected(m, this.id, want.version), 'a protected block is always found');
    reconcile(m, r);
  }
  toString = (): string => `${this.how}(${String(this.id)})`;
}

class Acquire implements fc.Command<Model, Real> {
  constructor(readonly id: BlockId, readonly viaHandle: boolean) {}
  check = (m: Readonly<Model>): boolean => m.views.length < 8;
  run(m: Model, r: Real): void {
    const want = m.blocks.get(this.id);
    if (this.viaHandle) {
      const handle = r.acquireHandle(this.id);
      if (handle >= 0) {
        assert.ok(want !== undefined);
        assert.equal(r.handleBytes(handle), want.bytes);
        m.views.push({ id: this.id, version: want.version, handle, expected: want.bytes });
      }
      reconcile(m, r);
      return;
    }
    const v = r.acquire(this.id);
    if (v !== undefined) {
      assert.ok(want !== undefined);
      assert.equal(v.bytes, want.bytes);
      assert.is(v.bytes.byteOffset % 64, 0, 'views are 64-byte aligned');
      m.views.push({ id: this.id, version: want.version, view: v, expected: want.bytes });
    }
    reconcile(m, r);
  }
  toString = (): string => `${this.viaHandle ? 'acquireHandle' : 'acquire'}(${String(this.id)})`;
}

class Release implements fc.Command<Model, Real> {
  constructor(readonly index: number) {}
  check = (m: Readonly<Model>): boolean => m.views.length > 0;
  run(m: Model, r: Real): void {
    const [h] = m.views.splice(this.index % m.views.length, 1);
    if (h!.view === undefined) {
      assert.equal(r.handleBytes(h!.handle!), h!.expected!);
      r.releaseHandle(h!.handle!);
    } else {
      assert.equal(h!.view.bytes, h!.expected!);
      h!.view.release();
      m.released.push(h!.view);
    }
    reconcile(m, r);
  }
  toString = (): string => `release(#${this.index})`;
}

class ReleaseTwice implements fc.Command<Model, Real> {
  constructor(readonly index: number) {}
  check = (m: Readonly<Model>): boolean => m.released.length > 0;
  run(m: Model, r: Real): void {
    expectCode(() => m.released[this.index % m.released.length]!.release(), ErrorCode.ALREADY_RELEASED);
    reconcile(m, r);
  }
  toString = (): string => `releaseAgain(#${this.index})`;
}

class Delete implements fc.Command<Model, Real> {
  constructor(readonly id: BlockId) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    assert.is(r.delete(this.id), m.blocks.has(this.id));
    m.blocks.delete(this.id);
    reconcile(m, r);
  }
  toString = (): string => `delete(${String(this.id)})`;
}

class Pin implements fc.Command<Model, Real> {
  constructor(readonly id: BlockId) {}
  check = (m: Readonly<Model>): boolean => !m.pins.some((p) => p.id === this.id);
  run(m: Model, r: Real): void {
    const want = m.blocks.get(this.id);
    assert.is(r.pin(this.id), want !== undefined);
    if (want) m.pins.push({ id: this.id, version: want.version });
    reconcile(m, r);
  }
  toString = (): string => `pin(${String(this.id)})`;
}

class Unpin implements fc.Command<Model, Real> {
  constructor(readonly id: BlockId) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const i = m.pins.findIndex((p) => p.id === this.id);
    if (i >= 0) {
      r.unpin(this.id);
      m.pins.splice(i, 1);
    } else {
      expectCode(() => r.unpin(this.id), ErrorCode.ALREADY_RELEASED);
    }
    reconcile(m, r);
  }
  toString = (): string => `unpin(${String(this.id)})`;
}

class Invalid implements fc.Command<Model, Real> {
  constructor(readonly kind: number) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const bad = [1.5, NaN, 2 ** 53, {}, null, 'x'.repeat(2000)][this.kind % 6] as BlockId;
    expectCode(() => r.put(bad, new Uint8Array(1)), ErrorCode.INVALID_ID);
    expectCode(() => r.acquire(bad), ErrorCode.INVALID_ID);
    expectCode(() => r.put(1, new Uint8Array(CAPACITY_BYTES + 1 + this.kind)), ErrorCode.BLOCK_TOO_LARGE);
    reconcile(m, r);
  }
  toString = (): string => `invalid(${this.kind})`;
}

const id = fc.constantFrom(...IDS);
const commands = [
  fc.tuple(id, fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constantFrom(0, 1, 64, 4096, CAPACITY_BYTES)), fc.integer(), fc.boolean()).map(([i, s, seed, inPlace]) => new Put(i, s, seed, inPlace)),
  fc.tuple(id, fc.constantFrom('get' as const, 'getInto' as const, 'withView' as const)).map(([i, how]) => new Get(i, how)),
  fc.tuple(id, fc.boolean()).map(([i, viaHandle]) => new Acquire(i, viaHandle)),
  fc.nat().map((n) => new Release(n)),
  fc.nat().map((n) => new ReleaseTwice(n)),
  id.map((i) => new Delete(i)),
  id.map((i) => new Pin(i)),
  id.map((i) => new Unpin(i)),
  fc.nat().map((n) => new Invalid(n)),
];

for (const policy of ['lru', 'sieve', 's3fifo'] as const) {
  test(`the ${policy} BlockCache behaves like a Map with capacity, pin and view rules (fc.commands)`, () => {
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 60 }), (cmds) => {
        const real = BlockCache.create({ capacityBytes: CAPACITY_BYTES, maxBlocks: MAX_BLOCKS, policy });
        const model: Model = { blocks: new Map(), views: [], released: [], pins: [], nextVersion: 1 };
        try {
          fc.modelRun(() => ({ model, real }), cmds);
          for (const h of model.views) {
            if (h.view !== undefined) h.view.release();
            else real.releaseHandle(h.handle!);
          }
          for (const p of model.pins) real.unpin(p.id);
          assert.is(real.stats().pinnedBlocks, 0, 'no pin is left after every release');
          real.checkInvariants();
        } finally {
          real.close();
        }
      }),
      { numRuns: 200 },
    );
  });
}

test.run();
