/**
 * Crash test with real processes and the real file system: a child appends and prints each
 * acknowledged sequence; we SIGKILL it at random moments (and, through failpoints, right after
 * a write, right after an fsync, right after a roll's rename and a checkpoint's rename), start
 * it again, and check that replay reaches every acknowledged sequence with exactly the state
 * the deterministic command stream gives. 30 cycles by default, 300 with SOAK=1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Journal } from '../../core/journal/index.js';
import { applyKv } from './kv-machine.js';
import { crashCommand, digest } from './crash-child.js';

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const CYCLES = process.env.SOAK === '1' ? 300 : 30;
const FAILPOINTS = ['after-write', 'after-fsync', 'after-roll-rename', 'after-checkpoint-rename'];

interface CycleResult { opened: { last: number; digest: string; cuts: number }; acks: number[]; signal: string | null; code: number | null; stderr: string; guardFired: boolean }

/**
 * Starts a child; retries (up to 5 times) a child whose modules failed to load (it exited 0
 * without a word, or with a SyntaxError or a missing module): on a shared machine another
 * build may be rewriting dist/ while the child loads it. Any other early end is a failure.
 */
async function runChild(dir: string, failpoint: string | undefined, killAfterMs: number): Promise<CycleResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runChildOnce(dir, failpoint, killAfterMs);
    } catch (err) {
      if (!(err instanceof LoadFailure) || attempt === 5) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

class LoadFailure extends Error {}

function runChildOnce(dir: string, failpoint: string | undefined, killAfterMs: number): Promise<CycleResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    if (failpoint) env.TESSERA_JOURNAL_FAILPOINT = failpoint;
    else delete env.TESSERA_JOURNAL_FAILPOINT;
    const child = spawn(process.execPath, [CHILD, dir, '16'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let opened: CycleResult['opened'] | undefined;
    const acks: number[] = [];
    let timer: NodeJS.Timeout | undefined;
    let guardFired = false;
    const guard = setTimeout(() => { guardFired = true; child.kill('SIGKILL'); }, 20_000); // a failpoint that never fires
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [word, a, b, c] = line.split(' ');
        if (word === 'open') {
          opened = { last: Number(a), digest: b!, cuts: Number(c) };
          if (!failpoint) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        } else if (word === 'ack') acks.push(Number(a));
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      const loadFailed = (code === 0 && stderr === '') || /SyntaxError|ERR_MODULE_NOT_FOUND/.test(stderr);
      if (!opened && loadFailed) return reject(new LoadFailure(`the child's modules did not load (code ${code}): ${stderr}`));
      if (!opened) return reject(new Error(`child never opened the journal (code ${code}, signal ${signal}): ${stderr}`));
      resolve({ opened, acks, signal, code, stderr, guardFired });
    });
  });
}

test(`every acknowledged entry survives ${CYCLES} SIGKILLs at random moments and at failpoints`, async () => {
  const root = await mkdtemp(join(tmpdir(), 'tessera-journal-crash-'));
  const dir = join(root, 'j');
  try {
    await Journal.format(dir);
    const model = new Map<string, Uint8Array>();
    let modelSequence = 0;
    const stateAt = (sequence: number): string => {
      assert.ok(sequence >= modelSequence, 'replay never goes back before an earlier replay');
      while (modelSequence < sequence) applyKv(model, crashCommand(++modelSequence));
      return digest(model);
    };
    let maxAcked = 0;
    let totalAcks = 0;
    let cuts = 0;
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
    let rng = seed;
    const random = (n: number): number => { rng = (rng * 1103515245 + 12345) % 2147483648; return rng % n; };
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // Every third cycle dies at a failpoint, taking each in turn, at its n-th pass.
      const failpoint = cycle % 3 === 2 ? `${FAILPOINTS[Math.floor(cycle / 3) % FAILPOINTS.length]}:${1 + random(10)}` : undefined;
      const r = await runChild(dir, failpoint, 30 + random(200));
      const context = `cycle ${cycle} (CRASH_SEED=${seed}, failpoint ${failpoint ?? 'none'})`;
      assert.ok(r.signal === 'SIGKILL', `${context}: the child ended by SIGKILL, not code ${r.code}: ${r.stderr}`);
      assert.not.ok(r.guardFired, `${context}: the failpoint never fired`);
      assert.ok(r.opened.last >= maxAcked, `${context}: replay reached ${r.opened.last}, but ${maxAcked} was acknowledged`);
      assert.is(r.opened.digest, stateAt(r.opened.last), `${context}: the replayed state is the state after ${r.opened.last} entries`);
      cuts += r.opened.cuts;
      totalAcks += r.acks.length;
      for (const a of r.acks) maxAcked = Math.max(maxAcked, a);
    }
    const final = await runChild(dir, 'after-fsync:1', 0);
    assert.ok(final.opened.last >= maxAcked);
    assert.is(final.opened.digest, stateAt(final.opened.last));
    assert.ok(totalAcks > CYCLES, `the children acknowledged ${totalAcks} entries in all`);
    console.log(`${CYCLES} kills, ${totalAcks} acknowledged entries, ${cuts} torn tails cut, last sequence ${final.opened.last} (CRASH_SEED=${seed})`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
