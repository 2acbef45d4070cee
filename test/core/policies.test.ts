import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lruCount, lruCreate, lruInsert, lruRemove, lruTouch, lruVictim } from '../../core/policies/lru.js';
import { sieveCount, sieveCreate, sieveInsert, sieveRemove, sieveTouch, sieveVictim } from '../../core/policies/sieve.js';
import {
  s3fifoCount, s3fifoCreate, s3fifoInSmall, s3fifoInsert, s3fifoRemember, s3fifoRemove, s3fifoTouch, s3fifoVictim,
} from '../../core/policies/s3fifo.js';

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

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function zipfTrace(seed: number, keys: number, alpha: number, length: number): number[] {
  const rand = mulberry32(seed);
  const cdf = new Float64Array(keys);
  let sum = 0;
  for (let k = 0; k < keys; k++) cdf[k] = sum += 1 / (k + 1) ** alpha;
  const out: number[] = [];
  for (let i = 0; i < length; i++) {
    const x = rand() * sum;
    let lo = 0;
    let hi = keys - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out.push(lo);
  }
  return out;
}

/** Zipf traffic interrupted by one-time sequential scans of fresh keys. */
function scanTrace(seed: number, keys: number, length: number, scanLength: number, every: number): number[] {
  const base = zipfTrace(seed, keys, 1.0, length);
  const out: number[] = [];
  let fresh = keys;
  for (let i = 0; i < base.length; i++) {
    out.push(base[i]!);
    if (i % every === every - 1) for (let k = 0; k < scanLength; k++) out.push(fresh++);
  }
  return out;
}

function hitRatio(policy: 'lru' | 'sieve' | 's3fifo', trace: number[], capacity: number): number {
  const lruState = lruCreate(capacity);
  const sieveState = sieveCreate(capacity);
  const s3State = s3fifoCreate(capacity);
  const slotOf = new Map<number, number>();
  const keyOf = new Int32Array(capacity);
  const free: number[] = [];
  for (let e = capacity - 1; e >= 0; e--) free.push(e);
  let hits = 0;
  trace.forEach((key, tick) => {
    const e = slotOf.get(key);
    if (e !== undefined) {
      hits++;
      if (policy === 'lru') lruTouch(lruState, e, tick);
      else if (policy === 'sieve') sieveTouch(sieveState, e);
      else s3fifoTouch(s3State, e);
      return;
    }
    if (free.length === 0) {
      if (policy === 'lru') {
        const v = lruVictim(lruState, all);
        lruRemove(lruState, v);
        slotOf.delete(keyOf[v]!);
        free.push(v);
      } else if (policy === 'sieve') {
        const v = sieveVictim(sieveState, all);
        sieveRemove(sieveState, v);
        slotOf.delete(keyOf[v]!);
        free.push(v);
      } else {
        const v = s3fifoVictim(s3State, all);
        if (s3fifoInSmall(s3State, v)) s3fifoRemember(s3State, keyOf[v]!);
        s3fifoRemove(s3State, v);
        slotOf.delete(keyOf[v]!);
        free.push(v);
      }
    }
    const slot = free.pop()!;
    keyOf[slot] = key;
    slotOf.set(key, slot);
    if (policy === 'lru') lruInsert(lruState, slot, tick);
    else if (policy === 'sieve') sieveInsert(sieveState, slot);
    else s3fifoInsert(s3State, slot, key);
  });
  return hits / trace.length;
}

const ratios = suite('hit ratios of LRU, SIEVE and S3-FIFO on the same seeded traces');

ratios('a loop larger than the cache never hits under either policy; a loop that fits always hits after the first pass', () => {
  const loop = (keys: number): number[] => {
    const out: number[] = [];
    for (let r = 0; r < 20; r++) for (let k = 0; k < keys; k++) out.push(k);
    return out;
  };
  assert.is(hitRatio('lru', loop(120), 100), 0);
  assert.is(hitRatio('sieve', loop(120), 100), 0);
  assert.is(hitRatio('lru', loop(100), 100), 19 / 20);
  assert.is(hitRatio('sieve', loop(100), 100), 19 / 20);
});

ratios('on Zipf and scan traces SIEVE and S3-FIFO hit at least as often as LRU (ratios printed)', () => {
  const rows: Array<Record<string, string>> = [];
  const cases: Array<[string, number[], number]> = [
    ['zipf 0.8, 10k keys, cache 10%', zipfTrace(42, 10_000, 0.8, 200_000), 1_000],
    ['zipf 1.0, 10k keys, cache 10%', zipfTrace(43, 10_000, 1.0, 200_000), 1_000],
    ['zipf 1.0, 10k keys, cache 1%', zipfTrace(44, 10_000, 1.0, 200_000), 100],
    ['zipf 1.0 + scans of 2000 every 5000', scanTrace(45, 10_000, 200_000, 2_000, 5_000), 1_000],
  ];
  for (const [name, trace, capacity] of cases) {
    const l = hitRatio('lru', trace, capacity);
    const s = hitRatio('sieve', trace, capacity);
    const f = hitRatio('s3fifo', trace, capacity);
    rows.push({ trace: name, lru: l.toFixed(4), sieve: s.toFixed(4), s3fifo: f.toFixed(4) });
    assert.ok(l > 0.05 && l < 1 && s > 0.05 && s < 1 && f > 0.05 && f < 1, `${name}: ratios in range`);
    assert.ok(s >= l, `${name}: SIEVE ${s} >= LRU ${l}`);
    assert.ok(f >= l, `${name}: S3-FIFO ${f} >= LRU ${l}`);
  }
  console.table(rows);
});

ratios.run();
