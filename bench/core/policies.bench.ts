/**
 * `npm run bench -- policies`: the eviction policies as pure functions (core/policies/), on
 * the seeded traces of bench/core/policy-traces.ts (the ones test/core/policies.test.ts
 * asserts on).
 *
 * extra.hitRatios is the figure that matters: the hit ratio of LRU, SIEVE and S3-FIFO on each
 * trace. It is deterministic (seeded traces, no clock), the same on every machine and run.
 * The rows time the simulator itself (accesses per second through each policy's
 * touch/victim/insert/remove, plus the simulator's Map), against LRU on the same trace: one
 * untimed pass of everything first (so that no row pays for compilation), then the best of
 * TIMED_PASSES interleaved passes. The loop traces (2,000 accesses) are too short to time.
 */
import { report, type Row } from '../harness.js';
import { POLICY_NAMES, hitRatio, traceCases } from './policy-traces.js';

const TIMED_PASSES = 2;
const cases = traceCases();
const hitRatios: Record<string, Record<string, number>> = {};
for (const c of cases) {
  hitRatios[c.name] = {};
  for (const policy of POLICY_NAMES) hitRatios[c.name]![policy] = Number(hitRatio(policy, c.trace, c.capacity).toFixed(4));
}

const timed = cases.filter((c) => !c.name.startsWith('loop'));
const best = new Map<string, number>();
for (let pass = 0; pass < TIMED_PASSES; pass++) {
  for (const c of timed) {
    for (const policy of pass % 2 === 0 ? POLICY_NAMES : [...POLICY_NAMES].reverse()) {
      const start = performance.now();
      hitRatio(policy, c.trace, c.capacity);
      const rate = c.trace.length / ((performance.now() - start) / 1000);
      const name = `${policy} ${c.name}`;
      best.set(name, Math.max(best.get(name) ?? 0, rate));
    }
  }
}
const rows: Row[] = [];
for (const c of timed) {
  for (const policy of POLICY_NAMES) {
    const name = `${policy} ${c.name}`;
    rows.push({
      name, opsPerSec: best.get(name)!, note: `hit ratio ${hitRatios[c.name]![policy]!.toFixed(4)}; ${c.trace.length} accesses, ${c.capacity} slots, best of ${TIMED_PASSES}`,
      ...(policy === 'lru' ? {} : { baseline: `lru ${c.name}` }),
    });
  }
}
report('policies', rows, {
  hitRatios,
  method: 'hitRatios: deterministic simulation of equal-sized slots driven by the policies\' pure functions (bench/core/policy-traces.ts); rows: accesses/s of that simulation',
});
