import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lruCount, lruCreate, lruInsert, lruRemove, lruTouch, lruVictim } from '../../core/policies/lru.js';
import { sieveCount, sieveCreate, sieveInsert, sieveRemove, sieveTouch, sieveVictim } from '../../core/policies/sieve.js';
import {
  s3fifoCount, s3fifoCreate, s3fifoInSmall, s3fifoInsert, s3fifoRemember, s3fifoRemove, s3fifoTouch, s3fifoVictim,
} from '../../core/policies/s3fifo.js';
import { POLICY_NAMES, hitRatio, loopTrace, traceCases, zipfTrace } from '../../bench/core/policy-traces.js';

const all = (): boolean => true;

const lru = suite('LRU policy (pure functions)');

lru('lruVictim picks the entry accessed longest ago', () => {
  const s = lruCreate(8);
  lruInsert(s, 0, 1);
  lruInsert(s, 1, 2);
  lruInsert(s, 2, 3);
  lruTouch(s, 0, 4);
  assert.is(lruVictim(s, all), 1);
});

lru('lruVictim follows touches made after insertion (lazy keys)', () => {
  const s = lruCreate(8);
  for (let e = 0; e < 5; e++) lruInsert(s, e, e + 1);
  lruTouch(s, 0, 10);
  lruTouch(s, 1, 9);
  lruTouch(s, 2, 8);
  const order: number[] = [];
  for (let k = 0; k < 5; k++) {
    const v = lruVictim(s, all);
    order.push(v);
    lruRemove(s, v);
  }
  assert.equal(order, [3, 4, 2, 1, 0]);
  assert.is(lruCount(s), 0);
});

lru('lruVictim skips entries canEvict refuses and keeps them', () => {
  const s = lruCreate(8);
  for (let e = 0; e < 4; e++) lruInsert(s, e, e + 1);
  assert.is(lruVictim(s, (e) => e !== 0 && e !== 1), 2);
  assert.is(lruCount(s), 4);
  assert.is(lruVictim(s, all), 0);
});

lru('lruVictim returns -1 when nothing is evictable, and on an empty heap', () => {
  const s = lruCreate(4);
  assert.is(lruVictim(s, all), -1);
  lruInsert(s, 3, 1);
  lruInsert(s, 2, 2);
  assert.is(lruVictim(s, () => false), -1);
  assert.is(lruCount(s), 2);
});

lru('lruRemove from the middle keeps the heap ordered', () => {
  const s = lruCreate(16);
  for (let e = 0; e < 12; e++) lruInsert(s, e, 100 - e * 7 + (e % 3) * 20);
  lruRemove(s, 5);
  lruRemove(s, 0);
  const keys: number[] = [];
  while (lruCount(s) > 0) {
    const v = lruVictim(s, all);
    keys.push(s.lastAccess[v]!);
    lruRemove(s, v);
  }
  assert.equal(keys, [...keys].sort((a, b) => a - b));
  assert.is(keys.length, 10);
});

lru.run();

const sieve = suite('SIEVE policy (pure functions)');

sieve('sieveVictim follows the paper: visited entries survive, the hand keeps its place', () => {
  const s = sieveCreate(8);
  for (const e of [0, 1, 2, 3]) sieveInsert(s, e); // head 3 2 1 0 tail
  sieveTouch(s, 0);
  sieveTouch(s, 2);
  const v1 = sieveVictim(s, all);
  assert.is(v1, 1); // 0 was visited: cleared and kept
  sieveRemove(s, v1);
  sieveInsert(s, 4); // head 4 3 2 0 tail, hand at 2
  const v2 = sieveVictim(s, all);
  assert.is(v2, 3); // 2 visited: cleared
  sieveRemove(s, v2);
  const v3 = sieveVictim(s, all);
  assert.is(v3, 4);
  sieveRemove(s, v3);
  const v4 = sieveVictim(s, all); // hand wraps to the tail
  assert.is(v4, 0);
  sieveRemove(s, v4);
  assert.is(sieveCount(s), 1);
});

sieve('sieveVictim skips refused entries and returns -1 when all are refused', () => {
  const s = sieveCreate(8);
  for (const e of [5, 6, 7]) sieveInsert(s, e);
  sieveTouch(s, 6);
  assert.is(sieveVictim(s, () => false), -1);
  assert.is(sieveCount(s), 3);
  const t = sieveCreate(8);
  for (const e of [5, 6, 7]) sieveInsert(t, e); // head 7 6 5 tail
  sieveTouch(t, 6);
  assert.is(sieveVictim(t, (e) => e !== 5), 7); // 5 refused, 6 visited (cleared), 7 taken
  assert.is(sieveCount(t), 3);
});

sieve('sieveVictim on an empty queue is -1', () => {
  assert.is(sieveVictim(sieveCreate(2), all), -1);
});

sieve.run();

const s3 = suite('S3-FIFO policy (pure functions)');

s3('a new entry hit once is evicted from the small queue before an old entry of the main queue', () => {
  const s = s3fifoCreate(16);
  for (let e = 0; e < 10; e++) s3fifoInsert(s, e, 1000 + e);
  // Everything starts in S; entries hit twice move to M when they reach S's tail.
  s3fifoTouch(s, 0);
  s3fifoTouch(s, 0);
  const v = s3fifoVictim(s, () => true);
  assert.is(v, 1, '0 was promoted to M, 1 (never hit) is the victim');
  assert.ok(s3fifoInSmall(s, 1));
  assert.not.ok(s3fifoInSmall(s, 0));
  s3fifoRemove(s, v);
  assert.is(s3fifoCount(s), 9);
});

s3('an id evicted from the small queue comes back into the main queue (ghost)', () => {
  const s = s3fifoCreate(8);
  s3fifoInsert(s, 0, 77);
  s3fifoInsert(s, 1, 78);
  const v = s3fifoVictim(s, () => true);
  assert.is(v, 0);
  s3fifoRemember(s, 77);
  s3fifoRemove(s, v);
  s3fifoInsert(s, 0, 77);
  assert.not.ok(s3fifoInSmall(s, 0), 'remembered by the ghost: straight to M');
  s3fifoInsert(s, 2, 79);
  assert.ok(s3fifoInSmall(s, 2));
});

s3('s3fifoVictim skips refused entries in both queues and returns -1 when all are refused', () => {
  const s = s3fifoCreate(8);
  s3fifoInsert(s, 0, 1);
  s3fifoRemember(s, 2);
  s3fifoInsert(s, 1, 2); // to M
  s3fifoTouch(s, 1);
  assert.is(s3fifoVictim(s, () => false), -1);
  assert.is(s3fifoCount(s), 2);
  assert.is(s3fifoVictim(s, (e) => e === 1), 1, 'M is searched when every S entry is refused');
});

s3.run();

// ---------------------------------------------------------------- hit ratios on traces
// The traces and the simulator live in bench/core/policy-traces.ts, shared with
// bench/core/policies.bench.ts, which writes these same ratios to bench/results/policies.json.

const ratios = suite('hit ratios of LRU, SIEVE and S3-FIFO on the same seeded traces');

ratios('a loop larger than the cache never hits under LRU or SIEVE; S3-FIFO keeps part of it in its main queue; a loop that fits always hits after the first pass', () => {
  for (const policy of POLICY_NAMES) assert.is(hitRatio(policy, loopTrace(100, 20), 100), 19 / 20, `${policy}: the loop fits`);
  assert.is(hitRatio('lru', loopTrace(120, 20), 100), 0);
  assert.is(hitRatio('sieve', loopTrace(120, 20), 100), 0);
  // Keys evicted from S3-FIFO's small queue come back through the ghost into the main queue,
  // which FIFO-reinserts what it holds: most of the loop stays. At most 100 of each later
  // round of 120 can hit.
  const s3 = hitRatio('s3fifo', loopTrace(120, 20), 100);
  assert.ok(s3 > 0.5 && s3 <= (19 * 100) / (20 * 120), `S3-FIFO on a loop of 120 in 100 slots: ${s3}`);
});

ratios('on the seeded Zipf and scan traces SIEVE and S3-FIFO hit at least as often as LRU (bench/core/policies.bench.ts reports the ratios)', () => {
  for (const c of traceCases()) {
    if (c.name.startsWith('loop')) continue; // the loop cases have their own test
    const l = hitRatio('lru', c.trace, c.capacity);
    const s = hitRatio('sieve', c.trace, c.capacity);
    const f = hitRatio('s3fifo', c.trace, c.capacity);
    assert.ok(l > 0.05 && l < 1 && s > 0.05 && s < 1 && f > 0.05 && f < 1, `${c.name}: ratios in range`);
    assert.ok(s >= l, `${c.name}: SIEVE ${s} >= LRU ${l}`);
    assert.ok(f >= l, `${c.name}: S3-FIFO ${f} >= LRU ${l}`);
  }
});

ratios('the same trace and capacity give the same hit ratio every time (seeded, no clock)', () => {
  const [first] = traceCases();
  assert.is(hitRatio('s3fifo', first!.trace, first!.capacity), hitRatio('s3fifo', zipfTrace(42, 10_000, 0.8, 200_000), 1_000));
});

ratios.run();
