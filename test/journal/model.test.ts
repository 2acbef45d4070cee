/**
 * The journal's central property, checked with fast-check against a plain Map: for any
 * sequence of put/delete/rename commands (some rejected by the machine), issued concurrently,
 * with checkpoints at random points and rolls from a small logRollBytes, a power cut at any
 * moment that keeps any prefix of the unsynced bytes (torn at any byte, optionally zero-filled)
 * and any prefix of the unsynced renames/creates/unlinks, replay yields exactly the model's
 * state after some sequence L, with L at least the last acknowledged sequence. Then the
 * recovered journal keeps working and its recovery itself survives a second crash (also one
 * that interrupts the first restart).
 * A failing run prints its seed; FC_SEED=<seed> replays it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Journal, SimFs } from '../../core/journal/index.js';
import { KvMachine, applyKv, encodeKv, kvView, type KvCommand } from './kv-machine.js';

type Step = { kind: 'cmd'; cmd: KvCommand } | { kind: 'checkpoint' } | { kind: 'await' } | { kind: 'tick' };

interface Scenario {
  steps: Step[];
  logRollBytes: number;
  crashAfterStep: number;
  crashDelayTicks: number;
  picks: number[];
  /** When > 0, a first restart is cut off by another crash after this many ticks. */
  recoveryCrashTicks: number;
}

const keyArb = fc.constantFrom('a', 'b', 'c', 'd', 'e');
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ key: keyArb, value: fc.uint8Array({ maxLength: 48 }) }).map(({ key, value }): Step => ({ kind: 'cmd', cmd: { kind: 'put', key, value } })) },
  { weight: 1, arbitrary: keyArb.map((key): Step => ({ kind: 'cmd', cmd: { kind: 'delete', key } })) },
  { weight: 1, arbitrary: fc.tuple(keyArb, keyArb).map(([from, to]): Step => ({ kind: 'cmd', cmd: { kind: 'rename', from, to } })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'checkpoint' }) },
  { weight: 2, arbitrary: fc.constant<Step>({ kind: 'await' }) },
  { weight: 4, arbitrary: fc.constant<Step>({ kind: 'tick' }) },
);
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  steps: fc.array(stepArb, { minLength: 1, maxLength: 80, size: 'max' }),
  logRollBytes: fc.integer({ min: 64, max: 2048 }),
  crashAfterStep: fc.nat({ max: 100 }), // past the end: crash after the last step
  crashDelayTicks: fc.nat({ max: 20 }),
  picks: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
  recoveryCrashTicks: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
});

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const SOAK = process.env.SOAK === '1';
const seedOption = process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {};
/** What the runs exercised, so that a weak generator shows (printed, and checked non-zero). */
const coverage = { runs: 0, checkpointReplayed: 0, completedLogsReplayed: 0, tailsCut: 0, entriesAcknowledged: 0 };

async function runScenario(s: Scenario, ackBeforeFsync: boolean): Promise<void> {
  const fs = new SimFs();
  await Journal.format('/j', { fs });
  const kv = new KvMachine();
  const journal = await Journal.open('/j', [kv], { fs, logRollBytes: s.logRollBytes, unsafeAckBeforeFsync: ackBeforeFsync });
  const model = new Map<string, Uint8Array>();
  const states: Map<string, Uint8Array>[] = [new Map()]; // states[sequence]
  let acked = 0;
  let outstanding: Promise<unknown>[] = [];
  const crashAt = Math.min(s.crashAfterStep, s.steps.length);
  for (const step of s.steps.slice(0, crashAt)) {
    if (step.kind === 'cmd') {
      const { type, payload } = encodeKv(step.cmd);
      let journalThrew = false;
      try {
        const p = journal.append('kv', type, payload);
        p.then((seq) => { acked = Math.max(acked, seq); }, () => undefined);
        outstanding.push(p);
      } catch {
        journalThrew = true;
      }
      let modelThrew = false;
      try {
        applyKv(model, step.cmd);
      } catch {
        modelThrew = true;
      }
      assert.is(journalThrew, modelThrew, 'the journal rejects exactly the commands the model rejects');
      if (!modelThrew) states.push(new Map(model));
      assert.is(journal.lastSequence('kv'), states.length - 1);
    } else if (step.kind === 'checkpoint') {
      outstanding.push(journal.checkpoint('kv'));
    } else if (step.kind === 'await') {
      await Promise.all(outstanding);
      outstanding = [];
    } else {
      await tick();
    }
  }
  for (let t = 0; t < s.crashDelayTicks; t++) await tick();
  const ackedAtCrash = acked;
  let k = 0;
  const choose = (limit: number) => s.picks[k++ % s.picks.length]! % (limit + 1);
  let after = fs.crash({ choose });
  if (s.recoveryCrashTicks > 0) {
    // Power fails again while the first restart replays, cuts tails, creates logs.
    void Journal.open('/j', [new KvMachine()], { fs: after, logRollBytes: s.logRollBytes }).catch(() => undefined);
    for (let t = 0; t < s.recoveryCrashTicks; t++) await tick();
    after = after.crash({ choose });
  }

  const kv2 = new KvMachine();
  const journal2 = await Journal.open('/j', [kv2], { fs: after, logRollBytes: s.logRollBytes });
  const replayed = journal2.lastSequence('kv');
  if (!ackBeforeFsync) {
    coverage.runs += 1;
    coverage.entriesAcknowledged += ackedAtCrash;
    if (journal2.checkpointSequence('kv') > 0) coverage.checkpointReplayed += 1;
    if ((await after.readdir('/j/kv/completed')).length > 0) coverage.completedLogsReplayed += 1;
    coverage.tailsCut += journal2.recoveries.length;
  }
  if (replayed < ackedAtCrash) throw new Error(`an acknowledged entry was lost: acknowledged up to ${ackedAtCrash}, replayed up to ${replayed}`);
  assert.ok(replayed < states.length, `replayed ${replayed} entries, only ${states.length - 1} were ever appended`);
  assert.equal(kvView(kv2.map), kvView(states[replayed]!), `state after replay equals the model after ${replayed} entries`);

  // The recovered journal works, and what recovery did (cut, truncate, new files) is durable.
  const extra: KvCommand = { kind: 'put', key: 'z', value: new Uint8Array([replayed & 0xff]) };
  const { type, payload } = encodeKv(extra);
  await journal2.append('kv', type, payload);
  const after2 = after.crash();
  const kv3 = new KvMachine();
  const journal3 = await Journal.open('/j', [kv3], { fs: after2, logRollBytes: s.logRollBytes });
  const expected = new Map(states[replayed]!);
  applyKv(expected, extra);
  assert.equal(kvView(kv3.map), kvView(expected), 'the entry appended after recovery survives a second crash');
  assert.is(journal3.recoveries.length, 0, 'a clean second start cuts nothing');
  await journal3.close();
}

test('replay after a power cut at any byte equals the model after the last acknowledged command (or later)', async () => {
  await fc.assert(fc.asyncProperty(scenarioArb, (s) => runScenario(s, false)), { numRuns: SOAK ? 5000 : 600, ...seedOption });
  console.log('model test coverage', coverage);
  assert.ok(coverage.checkpointReplayed > 0 && coverage.completedLogsReplayed > 0 && coverage.tailsCut > 0, 'the scenarios reach checkpoints, rolls and torn tails');
});

test('the property catches a mutant that acknowledges before fdatasync', async () => {
  const result = await fc.check(fc.asyncProperty(scenarioArb, (s) => runScenario(s, true)), { numRuns: 500, ...seedOption });
  assert.ok(result.failed, 'the power-loss property must fail when acknowledgements precede the fsync');
  const message = String((result.errorInstance as Error | undefined)?.message ?? '');
  assert.match(message, /acknowledged entry was lost/);
  console.log(`mutant caught after ${result.numRuns} runs (seed ${result.seed})`);
});

test.run();
