import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { chooseVictimsLru, greedy, maxFree, roundRobin, type DirSpace } from '../../worker/allocation-policy.js';

const dirs: DirSpace[] = [
  { capacityBytes: 100, usedBytes: 90 },
  { capacityBytes: 100, usedBytes: 20 },
  { capacityBytes: 200, usedBytes: 150 },
];

test('maxFree picks the directory with the most free bytes', () => {
  assert.equal(maxFree(dirs, 10, 0).dirIndex, 1);
  assert.equal(maxFree(dirs, 80, 0).dirIndex, 1);
});

test('maxFree answers -1 when even the freest directory is too small', () => {
  assert.equal(maxFree(dirs, 81, 0).dirIndex, -1);
  assert.equal(maxFree([], 1, 0).dirIndex, -1);
});

test('greedy picks the first directory in list order where the block fits', () => {
  assert.equal(greedy(dirs, 10, 0).dirIndex, 0);
  assert.equal(greedy(dirs, 11, 0).dirIndex, 1);
  assert.equal(greedy(dirs, 81, 0).dirIndex, -1);
});

test('roundRobin walks the directories from its cursor and skips full ones', () => {
  let cursor = 0;
  const picks: number[] = [];
  for (let i = 0; i < 4; i++) {
    const c = roundRobin(dirs, 10, cursor);
    picks.push(c.dirIndex);
    cursor = c.nextCursor;
  }
  assert.equal(picks, [0, 1, 2, 0]);
  assert.equal(roundRobin(dirs, 60, 2).dirIndex, 1);
  assert.equal(roundRobin(dirs, 500, 1).dirIndex, -1);
});

test('every policy only picks a directory with room, and finds one whenever one exists', () => {
  const dirArb = fc.record({ capacityBytes: fc.integer({ min: 0, max: 1000 }), usedBytes: fc.integer({ min: 0, max: 1000 }) })
    .map((d) => ({ capacityBytes: d.capacityBytes, usedBytes: Math.min(d.usedBytes, d.capacityBytes) }));
  fc.assert(fc.property(fc.array(dirArb, { maxLength: 8 }), fc.integer({ min: 0, max: 1000 }), fc.nat(20), (ds, size, cursor) => {
    const anyFits = ds.some((d) => d.capacityBytes - d.usedBytes >= size);
    for (const p of [maxFree, greedy, roundRobin]) {
      const { dirIndex } = p(ds, size, cursor);
      if (dirIndex === -1) return !anyFits;
      if (!(ds[dirIndex]!.capacityBytes - ds[dirIndex]!.usedBytes >= size)) return false;
    }
    return true;
  }));
});

test('chooseVictimsLru evicts least recently used movable blocks until enough is free', () => {
  const c = [
    { id: 1, lengthBytes: 10, lastAccessTick: 5, movable: true },
    { id: 2, lengthBytes: 10, lastAccessTick: 1, movable: false },
    { id: 3, lengthBytes: 10, lastAccessTick: 2, movable: true },
    { id: 4, lengthBytes: 10, lastAccessTick: 9, movable: true },
  ];
  assert.equal(chooseVictimsLru(c, 15), [3, 1]);
  assert.equal(chooseVictimsLru(c, 0), []);
  assert.equal(chooseVictimsLru(c, 31), undefined);
});

test.run();
