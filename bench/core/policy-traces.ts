/**
 * Seeded access traces and a hit-ratio simulator for the eviction policies (core/policies/),
 * shared by test/core/policies.test.ts (which asserts on the ratios) and
 * bench/core/policies.bench.ts (which writes them to bench/results/policies.json), so that
 * the figures reported are the figures tested.
 *
 * The simulator is a cache of `capacity` equal-sized slots driven only by the policies' pure
 * functions: a hit touches the slot, a miss inserts the key and, when every slot is taken,
 * evicts the policy's victim first (S3-FIFO remembers victims of its small queue in its ghost,
 * as BlockCache does). Nothing here reads a clock or does I/O: a trace and a capacity give
 * the same ratio on every machine.
 */
import { lruCreate, lruInsert, lruRemove, lruTouch, lruVictim } from '../../core/policies/lru.js';
import { sieveCreate, sieveInsert, sieveRemove, sieveTouch, sieveVictim } from '../../core/policies/sieve.js';
import {
  s3fifoCreate, s3fifoInSmall, s3fifoInsert, s3fifoRemember, s3fifoRemove, s3fifoTouch, s3fifoVictim,
} from '../../core/policies/s3fifo.js';
import { seededRandom } from '../../core/random.js';

export type PolicyName = 'lru' | 'sieve' | 's3fifo';
export const POLICY_NAMES: readonly PolicyName[] = ['lru', 'sieve', 's3fifo'];

/** `length` accesses to keys 0..keyCount-1, key k with probability proportional to 1/(k+1)^alpha. */
export function zipfTrace(seed: number, keyCount: number, alpha: number, length: number): number[] {
  const rand = seededRandom(seed);
  const cdf = new Float64Array(keyCount);
  let sum = 0;
  for (let k = 0; k < keyCount; k++) cdf[k] = sum += 1 / (k + 1) ** alpha;
  const out: number[] = [];
  for (let i = 0; i < length; i++) {
    const x = rand() * sum;
    let lo = 0;
    let hi = keyCount - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out.push(lo);
  }
  return out;
}

/** Zipf (alpha 1.0) traffic interrupted every `every` accesses by a one-time scan of `scanLength` fresh keys. */
export function scanTrace(seed: number, keyCount: number, length: number, scanLength: number, every: number): number[] {
  const base = zipfTrace(seed, keyCount, 1.0, length);
  const out: number[] = [];
  let fresh = keyCount;
  for (let i = 0; i < base.length; i++) {
    out.push(base[i]!);
    if (i % every === every - 1) for (let k = 0; k < scanLength; k++) out.push(fresh++);
  }
  return out;
}

/** Keys 0..keyCount-1 in order, `rounds` times. */
export function loopTrace(keyCount: number, rounds: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) for (let k = 0; k < keyCount; k++) out.push(k);
  return out;
}

const all = (): boolean => true;

/** Fraction of `trace`'s accesses that hit in a cache of `capacity` slots run by `policy`. */
export function hitRatio(policy: PolicyName, trace: readonly number[], capacity: number): number {
  const lruState = lruCreate(capacity);
  const sieveState = sieveCreate(capacity);
  const s3State = s3fifoCreate(capacity);
  const slotOf = new Map<number, number>();
  const keyOf = new Int32Array(capacity);
  const free: number[] = [];
  for (let e = capacity - 1; e >= 0; e--) free.push(e);
  let hits = 0;
  for (let tick = 0; tick < trace.length; tick++) {
    const key = trace[tick]!;
    const e = slotOf.get(key);
    if (e !== undefined) {
      hits++;
      if (policy === 'lru') lruTouch(lruState, e, tick);
      else if (policy === 'sieve') sieveTouch(sieveState, e);
      else s3fifoTouch(s3State, e);
      continue;
    }
    if (free.length === 0) {
      let v: number;
      if (policy === 'lru') {
        v = lruVictim(lruState, all);
        lruRemove(lruState, v);
      } else if (policy === 'sieve') {
        v = sieveVictim(sieveState, all);
        sieveRemove(sieveState, v);
      } else {
        v = s3fifoVictim(s3State, all);
        if (s3fifoInSmall(s3State, v)) s3fifoRemember(s3State, keyOf[v]!);
        s3fifoRemove(s3State, v);
      }
      slotOf.delete(keyOf[v]!);
      free.push(v);
    }
    const slot = free.pop()!;
    keyOf[slot] = key;
    slotOf.set(key, slot);
    if (policy === 'lru') lruInsert(lruState, slot, tick);
    else if (policy === 'sieve') sieveInsert(sieveState, slot);
    else s3fifoInsert(s3State, slot, key);
  }
  return hits / trace.length;
}

export interface TraceCase {
  name: string;
  trace: number[];
  capacity: number;
}

/** The seeded traces every policy is compared on (issue 2: "the same seeded Zipf and scan traces"). */
export function traceCases(): TraceCase[] {
  return [
    { name: 'zipf 0.8, 10k keys, cache 10%', trace: zipfTrace(42, 10_000, 0.8, 200_000), capacity: 1_000 },
    { name: 'zipf 1.0, 10k keys, cache 10%', trace: zipfTrace(43, 10_000, 1.0, 200_000), capacity: 1_000 },
    { name: 'zipf 1.0, 10k keys, cache 1%', trace: zipfTrace(44, 10_000, 1.0, 200_000), capacity: 100 },
    { name: 'zipf 1.0 + scans of 2000 every 5000', trace: scanTrace(45, 10_000, 200_000, 2_000, 5_000), capacity: 1_000 },
    { name: 'loop of 120 keys, cache 100', trace: loopTrace(120, 20), capacity: 100 },
    { name: 'loop of 100 keys, cache 100', trace: loopTrace(100, 20), capacity: 100 },
  ];
}

/** Hit ratio of every policy on every trace case: { [case]: { lru, sieve, s3fifo } }. */
export function hitRatioTable(cases: readonly TraceCase[] = traceCases()): Record<string, Record<PolicyName, number>> {
  const out: Record<string, Record<PolicyName, number>> = {};
  for (const c of cases) {
    out[c.name] = { lru: hitRatio('lru', c.trace, c.capacity), sieve: hitRatio('sieve', c.trace, c.capacity), s3fifo: hitRatio('s3fifo', c.trace, c.capacity) };
  }
  return out;
}
