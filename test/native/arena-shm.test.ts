import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShmArena } from '../../core/arena-shm.js';
import { isTesseraError } from '../../core/errors.js';
import { nativeStatus } from '../../native/index.js';
import { isFallbackChild, runUnderFallback } from './both-paths.js';

const native = nativeStatus().loaded;
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tessera-arena-'));
const child = new URL('./fixtures/arena-child.js', import.meta.url);

if (!native) {
  test('without the native module, ShmArena.create throws TESSERA_ERR_NATIVE_UNAVAILABLE', () => {
    try { ShmArena.create({ path: join(dir, 'a'), byteLength: 4096 }); assert.unreachable(); } catch (e) {
      assert.ok(isTesseraError(e, 'TESSERA_ERR_NATIVE_UNAVAILABLE'), String(e));
    }
    try { ShmArena.attach({ kind: 'shm', path: join(dir, 'missing') }); assert.unreachable(); } catch (e) {
      assert.ok(isTesseraError(e, 'TESSERA_ERR_NATIVE_UNAVAILABLE'), `${String(e)}: the missing module is named before the missing file`);
    }
  });
} else {
  test('create makes a fresh zero-filled locked region and a cloneable handle', () => {
    const p = join(dir, 'fresh');
    const a = ShmArena.create({ path: p, byteLength: 64 * 1024, lock: true });
    a.u8[7] = 1;
    a.close();
    const b = ShmArena.create({ path: p, byteLength: 64 * 1024 });
    assert.is(b.u8[7], 0, 'create replaces the old file');
    assert.equal(structuredClone(b.handle), { kind: 'shm', path: p, byteLength: 64 * 1024 });
    assert.is(b.kind, 'shm');
    assert.is(b.i32.length, 16 * 1024);
    assert.ok(b.locked === false);
    b.close();
  });

  test('attach by path alone maps the same bytes; close is idempotent and detaches the views', () => {
    const p = join(dir, 'attach');
    const a = ShmArena.create({ path: p, byteLength: 8192 });
    const b = ShmArena.attach({ kind: 'shm', path: p });
    assert.is(b.byteLength, 8192);
    Atomics.store(a.i32, 3, 99);
    assert.is(Atomics.load(b.i32, 3), 99);
    const view = b.u8;
    b.close();
    b.close();
    assert.ok(b.closed);
    assert.is(view.length, 0);
    assert.is(Atomics.load(a.i32, 3), 99);
    a.close();
    ShmArena.remove(p);
    assert.not.ok(existsSync(p));
  });

  test('wait returns not-equal or timed-out like Atomics.wait', () => {
    const a = ShmArena.create({ path: join(dir, 'wait'), byteLength: 4096 });
    assert.is(a.wait(a.i32, 0, 1, 0), 'not-equal');
    assert.is(a.wait(a.i32, 0, 0, 1), 'timed-out');
    assert.is(a.wake(a.i32, 0, 1), 0);
    a.close();
  });

  test('bad options and handles are rejected with stable codes', () => {
    const bad = (fn: () => unknown, code: string) => {
      try { fn(); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e) && e.code === code, `${String(e)} should be ${code}`); }
    };
    bad(() => ShmArena.create({ path: 'relative', byteLength: 4096 }), 'TESSERA_ERR_INVALID_ARGUMENT');
    bad(() => ShmArena.create({ path: join(dir, 'x'), byteLength: 12 }), 'TESSERA_ERR_INVALID_ARGUMENT');
    bad(() => ShmArena.create({ path: join(dir, 'x'), byteLength: 2 ** 33 }), 'TESSERA_ERR_INVALID_ARGUMENT');
    bad(() => ShmArena.attach({ kind: 'sab' } as never), 'TESSERA_ERR_BAD_HANDLE');
    // A missing file is a closed arena (its creator's close removed it), with or without a size.
    bad(() => ShmArena.attach({ kind: 'shm', path: join(dir, 'missing') }), 'TESSERA_ERR_CLOSED');
    bad(() => ShmArena.attach({ kind: 'shm', path: join(dir, 'missing'), byteLength: 4096 }), 'TESSERA_ERR_CLOSED');
    const closed = ShmArena.create({ path: join(dir, 'closed'), byteLength: 4096 });
    const handle = closed.handle;
    closed.close();
    bad(() => ShmArena.attach(handle), 'TESSERA_ERR_CLOSED');
  });

  test('another process attaches by path, sees the bytes, and is woken by a futex across processes', async () => {
    const p = join(dir, 'cross');
    const a = ShmArena.create({ path: p, byteLength: 4096 });
    a.u8[100] = 7;
    const c = fork(child, [p], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    c.stdout!.on('data', (d) => { out += String(d); });
    const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    for (let i = 0; i < 3000 && Atomics.load(a.i32, 1) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    let woken = 0;
    for (let i = 0; i < 3000 && woken === 0; i++) {
      woken = a.wake(a.i32, 0, 1);
      if (woken === 0) await new Promise((r) => setTimeout(r, 10));
    }
    assert.is(woken, 1, 'a wake in this process reached the sleeping child');
    Atomics.store(a.i32, 0, 1);
    for (let i = 0; i < 3000 && !out.includes('\n'); i++) {
      a.wake(a.i32, 0, 1);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.is(await exited, 0);
    assert.is(out.trim(), 'seen 7 len 4096');
    assert.is(a.u8[64], 42);
    assert.is(statSync(p).size, 4096);
    a.close();
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
