import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { isTesseraError } from '../../core/errors.js';
import { isMapped, liveMappings, madvise, mapShared, memlockLimit, msync, nativeStatus, pageSize, unmap } from '../../native/index.js';
import { isFallbackChild, runUnderFallback } from './both-paths.js';

const native = nativeStatus().loaded;
const dir = mkdtempSync(join(existsShm() ? '/dev/shm' : tmpdir(), 'tessera-map-'));
const MIB = 1 << 20;

function existsShm(): boolean {
  try { return statSync('/dev/shm').isDirectory(); } catch { return false; }
}

if (!native) {
  test('without the native module, mapShared throws TESSERA_ERR_NATIVE_UNAVAILABLE naming the reason', () => {
    try {
      mapShared(join(dir, 'a'), MIB, { create: true });
      assert.unreachable();
    } catch (e) {
      assert.ok(isTesseraError(e, 'TESSERA_ERR_NATIVE_UNAVAILABLE'), String(e));
      assert.match((e as Error).message, /needs the native module: /);
    }
  });
  test('without the native module, argument errors are still TypeError/RangeError', () => {
    assert.throws(() => mapShared(7 as unknown as string, MIB), TypeError);
    assert.throws(() => mapShared(join(dir, 'a'), 0), RangeError);
    assert.is(memlockLimit(), undefined);
  });
} else {
  test('two mappings of one file see each other\'s writes', () => {
    const p = join(dir, 'two');
    const a = mapShared(p, MIB, { create: true });
    const b = mapShared(p, MIB);
    new Uint8Array(a)[12345] = 77;
    Atomics.store(new Int32Array(a), 100, -5);
    assert.is(new Uint8Array(b)[12345], 77);
    assert.is(Atomics.load(new Int32Array(b), 100), -5);
    unmap(a);
    unmap(b);
  });

  test('create reserves the file at sizeBytes and the mapping starts zero-filled', () => {
    const p = join(dir, 'zero');
    const a = mapShared(p, 3 * 4096, { create: true, lock: true });
    assert.is(statSync(p).size, 3 * 4096);
    assert.ok(new Uint8Array(a).every((x) => x === 0));
    unmap(a);
  });

  test('unmap detaches the buffer, so views read nothing instead of crashing, and is idempotent', () => {
    const a = mapShared(join(dir, 'det'), MIB, { create: true });
    const u = new Uint8Array(a);
    u[5] = 9;
    const before = liveMappings();
    assert.ok(isMapped(a));
    unmap(a);
    assert.is(liveMappings(), before - 1);
    assert.is(a.byteLength, 0);
    assert.is(u.length, 0);
    assert.is(u[5], undefined);
    assert.not.ok(isMapped(a));
    unmap(a);
    assert.throws(() => madvise(a, 'willneed'), TypeError);
  });

  test('a mapping in a postMessage transfer list is copied, not moved away from its thread', async () => {
    const a = mapShared(join(dir, 'transfer'), 4096, { create: true });
    new Uint8Array(a)[0] = 5;
    const { port1, port2 } = new MessageChannel();
    const got = new Promise<ArrayBuffer>((r) => port2.once('message', r));
    port1.postMessage(a, [a]);
    const copy = await got;
    assert.is(a.byteLength, 4096);
    assert.is(new Uint8Array(copy)[0], 5);
    assert.ok(isMapped(a));
    assert.not.ok(isMapped(copy));
    port1.close();
    port2.close();
    unmap(a);
  });

  test('unmap of an ArrayBuffer that mapShared did not return is a TypeError', () => {
    assert.throws(() => unmap(new ArrayBuffer(8)), TypeError);
    assert.throws(() => unmap(new SharedArrayBuffer(8) as unknown as ArrayBuffer), TypeError);
  });

  test('a read-only mapping sees the file, and a stray write stays private to it', () => {
    const p = join(dir, 'ro');
    const rw = mapShared(p, 4096, { create: true });
    new Uint8Array(rw)[0] = 1;
    const ro = mapShared(p, 4096, { readOnly: true });
    assert.is(new Uint8Array(ro)[0], 1);
    new Uint8Array(ro)[1] = 2;
    assert.is(new Uint8Array(rw)[1], 0);
    unmap(ro);
    unmap(rw);
  });

  test('a read-only mapping follows the owner\'s later writes on pages it never wrote; a page it wrote stops following them (the documented cost of not crashing)', () => {
    const page = pageSize();
    const p = join(dir, 'ro-follow');
    const rw = new Uint8Array(mapShared(p, 2 * page, { create: true }));
    const roBuffer = mapShared(p, 2 * page, { readOnly: true });
    const ro = new Uint8Array(roBuffer);
    ro[0] = 9; // a stray write: page 0 becomes this process's own copy
    rw[1] = 5;
    rw[page + 1] = 6;
    assert.is(ro[page + 1], 6, 'an untouched page shows the owner\'s write');
    assert.is(ro[1], 0, 'the written page no longer follows the file');
    assert.is(rw[0], 0, 'the stray write never reached the file');
    unmap(roBuffer);
    unmap(rw.buffer as ArrayBuffer);
  });

  test('attaching a missing file is TESSERA_ERR_NATIVE_CALL with ENOENT', () => {
    try {
      mapShared(join(dir, 'missing'), 4096);
      assert.unreachable();
    } catch (e) {
      assert.ok(isTesseraError(e, 'TESSERA_ERR_NATIVE_CALL'), String(e));
      assert.match((e as Error).message, /ENOENT/);
    }
  });

  test('attaching a file shorter than sizeBytes is a RangeError (no mapping past the end of file)', () => {
    const p = join(dir, 'short');
    writeFileSync(p, Buffer.alloc(4096));
    assert.throws(() => mapShared(p, 8192), (e: unknown) => e instanceof RangeError && /smaller than sizeBytes/.test((e as Error).message));
  });

  test('madvise and msync accept page-aligned ranges and reject the rest', () => {
    const a = mapShared(join(dir, 'adv'), 4 * 4096, { create: true });
    madvise(a, 'willneed');
    madvise(a, 'hugepage', { offsetBytes: 0, lengthBytes: 4096 });
    new Uint8Array(a)[4096] = 3;
    madvise(a, 'dontneed', { offsetBytes: 4096, lengthBytes: 4096 });
    assert.is(new Uint8Array(a)[4096], 3, 'a MAP_SHARED page keeps its bytes after dontneed');
    msync(a);
    msync(a, { async: true, offsetBytes: 4096 });
    assert.throws(() => madvise(a, 'willneed', { offsetBytes: 1 }), RangeError);
    assert.throws(() => madvise(a, 'fast' as 'willneed'), TypeError);
    assert.throws(() => msync(a, { lengthBytes: 5 * 4096 }), RangeError);
    unmap(a);
  });

  test('a mapping dropped without unmap is unmapped when garbage-collected', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    assert.ok(gc, 'run with --expose-gc');
    const before = liveMappings();
    (() => { mapShared(join(dir, 'gc'), MIB, { create: true }); })();
    assert.is(liveMappings(), before + 1);
    for (let i = 0; i < 50 && liveMappings() > before; i++) {
      gc!();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.is(liveMappings(), before);
  });

  test('a worker_thread that exits or is terminated without unmapping releases its mappings', async () => {
    const nativeUrl = new URL('../../native/index.js', import.meta.url).href;
    const before = liveMappings();
    for (const how of ['exit', 'terminate']) {
      const code = `import(${JSON.stringify(nativeUrl)}).then((n) => {
        globalThis.keep = [0, 1, 2].map((i) => n.mapShared(${JSON.stringify(join(dir, 'w'))} + i, 65536, { create: true }));
        require('node:worker_threads').parentPort.postMessage(n.liveMappings());
      });`;
      const w = new Worker(code, { eval: true });
      const exited = new Promise((r) => w.once('exit', r));
      assert.is(await new Promise((r) => w.once('message', r)), before + 3);
      if (how === 'terminate') await w.terminate();
      await exited;
      assert.is(liveMappings(), before, `after ${how}`);
    }
  });

  test('locking more than RLIMIT_MEMLOCK throws TESSERA_ERR_MEMLOCK_LIMIT naming the limit', () => {
    const child = fileURLToPath(new URL('./fixtures/memlock-child.js', import.meta.url));
    const p = join(dir, 'memlock');
    const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
    const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
    const limit = memlockLimit()!;
    let r;
    if (hasPrlimit && (process.getuid?.() !== 0 || hasSetpriv)) {
      // Lower the limit to 1 MiB and (as root) drop CAP_IPC_LOCK, which would bypass it.
      const pre = ['--memlock=1048576:1048576'];
      const drop = process.getuid?.() === 0 ? ['setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock'] : [];
      r = spawnSync('prlimit', [...pre, ...drop, process.execPath, child, p, String(4 * MIB)], { encoding: 'utf8', timeout: 60_000 });
    } else {
      assert.ok(Number.isFinite(limit.soft), 'need prlimit, or a finite RLIMIT_MEMLOCK');
      r = spawnSync(process.execPath, [child, p, String(limit.soft + 4 * MIB)], { encoding: 'utf8', timeout: 60_000 });
    }
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; code?: string; message?: string };
    assert.is(out.ok, false, r.stdout + r.stderr);
    assert.is(out.code, 'TESSERA_ERR_MEMLOCK_LIMIT');
    assert.match(out.message!, /RLIMIT_MEMLOCK/);
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
