import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ALLOCATOR_META_WORDS, GRANULE_BYTES, TlsfAllocator } from '../../core/allocator.js';

function make(granules: number): TlsfAllocator {
  const meta = 16;
  const dataByteOffset = Math.ceil(((meta + ALLOCATOR_META_WORDS) * 4) / 64) * 64;
  const words = new Int32Array((dataByteOffset + granules * GRANULE_BYTES) / 4);
  const a = new TlsfAllocator(words, meta, dataByteOffset);
  a.format(granules);
  return a;
}

test('a fresh allocator has one free extent spanning the region but the sentinel', () => {
  const a = make(1000);
  assert.is(a.freeGranules, 999);
  assert.is(a.largestFreeGranules(), 999);
  assert.equal(a.check(), []);
});

test('alloc returns disjoint 64-byte aligned extents and free coalesces back to one extent', () => {
  const a = make(1000);
  const got = [10, 1, 37, 200, 16, 17].map((n) => [a.alloc(n, n), n] as const);
  for (const [g] of got) assert.ok(g >= 0);
  assert.is(a.payloadByteOffset(got[0]![0]) % 64, 0);
  assert.is(a.check().length, 6);
  for (const [g, n] of got) assert.is(a.tagOf(g), n);
  for (const [g] of [got[1], got[3], got[0], got[5], got[2], got[4]]) a.free(g!);
  assert.is(a.freeExtentCount, 1);
  assert.is(a.largestFreeGranules(), 999);
  a.check();
});

test('alloc returns -1 when no extent is large enough, and an exact fit of the whole region works', () => {
  const a = make(101);
  assert.is(a.alloc(101, 0), -1);
  const g = a.alloc(100, 0);
  assert.is(g, 0);
  assert.is(a.alloc(1, 0), -1);
  a.free(g);
  assert.is(a.alloc(100, 0), 0, 'the fallback scan finds the exact fit that the rounded search misses');
});

test('any sequence of allocs and frees keeps the extents tiling the region without overlap (fast-check)', () => {
  fc.assert(fc.property(
    fc.array(fc.oneof(fc.record({ alloc: fc.integer({ min: 1, max: 300 }) }), fc.record({ free: fc.nat() })), { maxLength: 200 }),
    (ops) => {
      const a = make(2000);
      const live = new Map<number, number>();
      for (const op of ops) {
        if ('alloc' in op) {
          const g = a.alloc(op.alloc, op.alloc);
          if (g >= 0) {
            assert.not.ok(live.has(g));
            live.set(g, op.alloc);
          } else {
            assert.ok(a.largestFreeGranules() < op.alloc + 64, 'a failing alloc means no much larger free extent exists');
          }
        } else if (live.size > 0) {
          const keys = [...live.keys()];
          const g = keys[op.free % keys.length]!;
          a.free(g);
          live.delete(g);
        }
        const used = a.check();
        assert.is(used.length, live.size);
        const sorted = used.sort((x, y) => x[0] - y[0]);
        for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i - 1]![0] + sorted[i - 1]![1] <= sorted[i]![0]);
        for (const [g, size] of used) assert.ok(size >= live.get(g)!);
      }
    },
  ), { numRuns: 300 });
});

test('under a steady mixed workload the allocator stays usable: free space mostly in large extents', () => {
  const a = make(1 << 16);
  const live: number[] = [];
  let x = 12345;
  const rand = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296);
  let failures = 0;
  for (let i = 0; i < 20_000; i++) {
    const size = 1 + Math.floor(2 ** (rand() * 10));
    while (a.freeGranules < (1 << 16) * 0.2 && live.length > 0) a.free(live.splice(Math.floor(rand() * live.length), 1)[0]!);
    const g = a.alloc(size, 0);
    if (g < 0) failures++;
    else live.push(g);
  }
  a.check();
  assert.ok(failures < 200, `few failures (${failures})`);
});

test.run();
