import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { isTesseraError } from '../../core/errors.js';
import { futexWait, futexWake, mapShared, nativeStatus, unmap } from '../../native/index.js';
import { isFallbackChild, runUnderFallback } from './both-paths.js';

const native = nativeStatus().loaded;
const dir = mkdtempSync(join(tmpdir(), 'tessera-futex-'));
const waiter = new URL('./fixtures/futex-waiter.js', import.meta.url);

/** Waits (bounded, no timing assertion) until word 1 says the waiter is about to wait. */
function awaitReady(i32: Int32Array): void {
  while (Atomics.load(i32, 1) === 0) futexWait(i32, 1, 0, 100);
}

/**
 * Wakes the waiter while word 0 is still 0 until a wake reports it woke a sleeper (proof that
 * a wake crossed the thread/process boundary; the waiter goes back to sleep), then stores 1
 * and wakes until the waiter is done.
 */
async function release(i32: Int32Array, done: () => boolean): Promise<void> {
  let woken = 0;
  for (let i = 0; i < 3000 && woken === 0; i++) {
    woken = futexWake(i32, 0, 1);
    if (woken === 0) await new Promise((r) => setTimeout(r, 10));
  }
  assert.is(woken, 1, 'futexWake woke the sleeping waiter');
  Atomics.store(i32, 0, 1);
  for (let i = 0; i < 3000 && !done(); i++) {
    futexWake(i32, 0, 1);
    await new Promise((r) => setTimeout(r, 10));
  }
}

if (!native) {
  test('without the native module, futexWait throws TESSERA_ERR_NATIVE_UNAVAILABLE', () => {
    try { futexWait(new Int32Array(1), 0, 0, 0); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_NATIVE_UNAVAILABLE')); }
  });
} else {
  test('futexWait returns not-equal when the word differs and timed-out when nobody wakes it', () => {
    const i32 = new Int32Array(4);
    i32[2] = 5;
    assert.is(futexWait(i32, 2, 4, 1000), 'not-equal');
    assert.is(futexWait(i32, 2, 5, 1), 'timed-out');
    assert.is(futexWait(i32, 2, 5, 0), 'timed-out');
    assert.is(futexWait(i32, 2, 5, -3), 'timed-out');
  });

  test('futexWake with no waiter wakes nobody', () => {
    assert.is(futexWake(new Int32Array(2), 1, 1), 0);
  });

  test('futex arguments are checked before the call', () => {
    const i32 = new Int32Array(2);
    assert.throws(() => futexWait(new Uint32Array(2) as unknown as Int32Array, 0, 0, 0), TypeError);
    assert.throws(() => futexWait(i32, 2, 0, 0), RangeError);
    assert.throws(() => futexWait(i32, 0.5, 0, 0), RangeError);
    assert.throws(() => futexWait(i32, 0, 2 ** 31, 0), RangeError);
    assert.throws(() => futexWait(i32, 0, 0, '1' as unknown as number), TypeError);
    assert.throws(() => futexWake(i32, -1, 1), RangeError);
    assert.throws(() => futexWake(i32, 0, -1), RangeError);
    assert.throws(() => futexWait(new Int32Array(0), 0, 0, 0), RangeError);
  });

  test('futexWake wakes a worker_thread blocked in futexWait on a mapped file', async () => {
    const p = join(dir, 'thread');
    const buf = mapShared(p, 4096, { create: true });
    const i32 = new Int32Array(buf);
    const w = new Worker(waiter, { argv: [p] });
    let line = '';
    const got = new Promise<void>((resolve, reject) => { w.once('message', (m: string) => { line = m; resolve(); }); w.once('error', reject); });
    await new Promise((r) => setImmediate(r));
    awaitReady(i32);
    await release(i32, () => line !== '');
    await got;
    assert.match(line, /^(ok|not-equal) 1$/, 'woken (or the store came first), never timed out');
    await w.terminate();
    unmap(buf);
  });

  test('worker.terminate() stops a worker_thread blocked in futexWait with no timeout', async () => {
    const p = join(dir, 'terminate');
    const buf = mapShared(p, 4096, { create: true });
    const i32 = new Int32Array(buf);
    const w = new Worker(waiter, { argv: [p, 'Infinity'] });
    const exited = new Promise<number>((r) => w.once('exit', r));
    awaitReady(i32);
    await w.terminate();
    assert.is(await exited, 1);
    assert.is(Atomics.load(i32, 0), 0, 'nobody woke it');
    unmap(buf);
  });

  test('futexWake in one process wakes a futexWait in another process mapping the same file', async () => {
    const p = join(dir, 'process');
    const buf = mapShared(p, 4096, { create: true });
    const i32 = new Int32Array(buf);
    const child = fork(waiter, [p], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    child.stdout!.on('data', (d) => { out += String(d); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    for (let i = 0; i < 3000 && Atomics.load(i32, 1) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.is(Atomics.load(i32, 1), 1, 'the child started waiting');
    await release(i32, () => out.includes('\n'));
    assert.is(await exited, 0);
    assert.match(out.trim(), /^(ok|not-equal) 1$/, 'woken (or the store came first), never timed out');
    unmap(buf);
  });
}

if (!isFallbackChild) {
  test('the fallback path (TESSERA_NATIVE=0) passes its tests too', () => {
    const r = runUnderFallback(import.meta.url);
    assert.is(r.status, 0, r.output);
  });
}

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
