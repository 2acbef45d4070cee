/**
 * IdIndex (the inode id → slot hash table) against a plain Map under random sets, deletes and
 * re-inserts, including long delete/insert churn that fills the table with tombstones.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { IdIndex } from '../../master/id-index.js';
import { MAX_INODE_ID } from '../../core/constants.js';

test('IdIndex answers like a Map under random sets and deletes', () => {
  const id = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: MAX_INODE_ID }));
  const op = fc.oneof(
    fc.tuple(fc.constant('set' as const), id, fc.integer({ min: 0, max: 1 << 30 })),
    fc.tuple(fc.constant('delete' as const), id, fc.constant(0)),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
    const idx = new IdIndex();
    const model = new Map<number, number>();
    for (const [kind, k, v] of ops) {
      if (kind === 'set') { idx.set(k, v); model.set(k, v); } else assert.is(idx.delete(k), model.delete(k));
      assert.is(idx.size, model.size);
    }
    for (const [k, v] of model) assert.is(idx.get(k), v);
    for (const [, k] of ops) assert.is(idx.get(k), model.get(k));
    const seen = new Map<number, number>();
    idx.forEach((k, v) => seen.set(k, v));
    assert.equal([...seen].sort((a, b) => a[0] - b[0]), [...model].sort((a, b) => a[0] - b[0]));
  }), { numRuns: 300 });
});

test('churn of inserts and deletes keeps the table small and every live id reachable', () => {
  const idx = new IdIndex();
  for (let round = 0; round < 200; round++) {
    for (let i = 0; i < 100; i++) idx.set(round * 100 + i, i);
    for (let i = 0; i < 100; i++) if (i % 10 !== 0) idx.delete(round * 100 + i);
  }
  assert.is(idx.size, 2000);
  for (let round = 0; round < 200; round++) assert.is(idx.get(round * 100 + 10), 10);
  assert.ok(idx.byteLength <= 8 * 8192, `table is ${idx.byteLength} bytes for 2000 entries`);
});

test.run();
