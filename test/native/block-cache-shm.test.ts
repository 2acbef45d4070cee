import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BlockCache } from '../../core/block-cache.js';
import { crc32c, crc32cImplementationName, crc32cTs } from '../../core/crc32c.js';
import { isTesseraError, type TesseraError } from '../../core/errors.js';
import { nativeStatus } from '../../native/index.js';
import { isFallbackChild, runUnderFallback } from './both-paths.js';
import { pattern } from './fixtures/cache-child.js';

const native = nativeStatus().loaded;
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tessera-cache-'));
const childUrl = new URL('./fixtures/cache-child.js', import.meta.url);
const MIB = 1 << 20;
const children: ChildProcess[] = [];

function throwsCode(fn: () => unknown, code: string): TesseraError {
  try {
    fn();
  } catch (err) {
    assert.ok(isTesseraError(err) && err.code === code, `${String(err)} should be ${code}`);
    return err as TesseraError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('a SharedArrayBuffer cache stores and returns blocks whose checksums match, on the path in use', () => {
  const cache = BlockCache.create({ capacityBytes: 2 * MIB });
  for (let i = 0; i < 20; i++) assert.ok(cache.put(`b${i}`, pattern(i + 1, 1000 + i * 997)));
  for (let i = 0; i < 20; i++) {
    const got = cache.withView(`b${i}`, (bytes) => crc32c(bytes));
    assert.is(got, crc32cTs(pattern(i + 1, 1000 + i * 997)));
  }
  assert.is(crc32cImplementationName().startsWith('native'), native);
  cache.close();
});

if (!native) {
  test('without the native module, a shm cache is TESSERA_ERR_NATIVE_UNAVAILABLE', () => {
    for (const fn of [
      () => BlockCache.create({ backing: 'shm', path: join(dir, 'c'), capacityBytes: MIB }),
      () => BlockCache.attach({ kind: 'shm', path: join(dir, 'c'), byteLength: 4096 }),
      () => BlockCache.attach({ path: join(dir, 'c') }),
    ]) {
      try { fn(); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_NATIVE_UNAVAILABLE'), String(e)); }
    }
  });
} else {
  interface Reply { ok?: boolean; crc?: number; missing?: boolean; attached?: number }
  function startChild(path: string): { child: ChildProcess; next: () => Promise<Reply>; ask: (m: object) => Promise<Reply>; exited: Promise<number | null> } {
    const child = fork(childUrl, [path], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    const replies: Reply[] = [];
    let waiter: ((r: Reply) => void) | undefined;
    child.on('message', (m: Reply) => { if (waiter) { const w = waiter; waiter = undefined; w(m); } else replies.push(m); });
    const next = (): Promise<Reply> => (replies.length > 0 ? Promise.resolve(replies.shift()!) : new Promise((r) => { waiter = r; }));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, next, exited, ask: async (m: object) => { child.send(m); return next(); } };
  }
  async function attached(c: ReturnType<typeof startChild>): Promise<void> {
    const r = await c.next();
    assert.ok(r.attached, 'child attached');
  }

  test('a shm cache is a locked /dev/shm file with a cloneable handle, removed when its creator closes', () => {
    const path = join(dir, 'basic');
    const cache = BlockCache.create({ backing: 'shm', path, lock: true, capacityBytes: 4 * MIB });
    assert.equal(structuredClone(cache.handle).kind, 'shm');
    assert.ok(existsSync(path));
    assert.ok(cache.put(1, pattern(9, 5000)));
    const v = cache.acquire(1)!;
    assert.is(crc32c(v.bytes), crc32cTs(pattern(9, 5000)));
    v.release();
    cache.close();
    assert.not.ok(existsSync(path));
  });

  test('a worker_thread attaches to a shm cache from its cloned handle', async () => {
    const path = join(dir, 'thread');
    const cache = BlockCache.create({ backing: 'shm', path, capacityBytes: 2 * MIB });
    assert.ok(cache.put('main', pattern(7, 40_000)));
    const w = new Worker(new URL('./fixtures/cache-thread.js', import.meta.url), { workerData: cache.handle });
    const r = await new Promise<{ crc: number; ok: boolean }>((res, rej) => { w.once('message', res); w.once('error', rej); });
    await w.terminate();
    assert.is(r.crc, crc32cTs(pattern(7, 40_000)));
    assert.ok(r.ok);
    assert.equal(cache.get('thread'), pattern(8, 50_000));
    cache.close();
  });

  test('two processes put and acquire blocks through one /dev/shm cache, the second attached with BlockCache.attach({ path }) as in the README', async () => {
    const path = join(dir, 'two');
    const cache = BlockCache.create({ backing: 'shm', path, lock: true, capacityBytes: 8 * MIB });
    assert.ok(cache.put('from-parent', pattern(1, 300_000)));
    const c = startChild(path);
    await attached(c);
    assert.is((await c.ask({ op: 'acquire', id: 'from-parent' })).crc, crc32cTs(pattern(1, 300_000)));
    assert.ok((await c.ask({ op: 'put', id: 'from-child', seed: 2, size: 123_457 })).ok);
    const v = cache.acquire('from-child');
    assert.ok(v, 'the parent sees the child\'s block');
    assert.equal(v!.bytes, pattern(2, 123_457));
    v!.release();
    assert.is(cache.stats().owners, 2);
    c.child.send({ op: 'close' });
    assert.is(await c.exited, 0);
    assert.is(cache.stats().owners, 1);
    assert.is(cache.stats().pinnedBlocks, 0);
    cache.close();
  });

  test('attach takes { path }, { kind: \'shm\', path } or the full handle; a path that holds no cache is refused', () => {
    const path = join(dir, 'forms');
    const cache = BlockCache.create({ backing: 'shm', path, capacityBytes: MIB });
    assert.ok(cache.put(1, pattern(11, 3000)));
    for (const h of [{ path }, { kind: 'shm' as const, path }, cache.handle, structuredClone(cache.handle)]) {
      const other = BlockCache.attach(h);
      assert.equal(other.get(1), pattern(11, 3000), JSON.stringify(h));
      other.close();
    }
    const junk = join(dir, 'junk');
    writeFileSync(junk, new Uint8Array(8192));
    throwsCode(() => BlockCache.attach({ path: junk }), 'TESSERA_ERR_BAD_HANDLE');
    throwsCode(() => BlockCache.attach({ path: 'relative/path' }), 'TESSERA_ERR_INVALID_ARGUMENT');
    throwsCode(() => BlockCache.attach({ kind: 'nope', path } as never), 'TESSERA_ERR_BAD_HANDLE');
    cache.close();
  });

  test('a closed shm cache\'s handle or { path } is TESSERA_ERR_CLOSED naming the path, in this process and in another', () => {
    const path = join(dir, 'closed');
    const cache = BlockCache.create({ backing: 'shm', path, capacityBytes: MIB });
    const handle = cache.handle;
    cache.close();
    for (const h of [handle, { path }]) {
      const err = throwsCode(() => BlockCache.attach(h), 'TESSERA_ERR_CLOSED');
      assert.ok(err.message.includes(path), err.message);
    }
    const r = spawnSync(process.execPath, [fileURLToPath(childUrl), path, 'try-attach'], { encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as { code?: string; message?: string };
    assert.is(out.code, 'TESSERA_ERR_CLOSED', r.stdout);
    assert.ok(out.message!.includes(path), out.message);
  });

  test('a view released after its instance closed is TESSERA_ERR_CLOSED and touches nothing; one of a still-attached instance releases after the creator closed', () => {
    const path = join(dir, 'release-after-close');
    const cache = BlockCache.create({ backing: 'shm', path, capacityBytes: MIB });
    assert.ok(cache.put('a', pattern(12, 9000)));
    const attached = BlockCache.attach({ path });
    const closing = BlockCache.attach({ path });
    const gone = closing.acquire('a')!;
    const kept = attached.acquire('a')!;
    const own = cache.acquire('a')!;
    assert.is(cache.stats().pinnedBlocks, 1);
    closing.close();
    assert.is(gone.bytes.length, 0, 'the closed instance unmapped its arena: the view is detached');
    throwsCode(() => gone.release(), 'TESSERA_ERR_CLOSED');
    assert.ok(cache.delete('a'));
    assert.is(cache.stats().usedBytes, 9000, 'the views still hold the deleted block');
    cache.close();
    throwsCode(() => own.release(), 'TESSERA_ERR_CLOSED');
    assert.is(own.bytes.length, 0, 'the creator\'s arena is unmapped too');
    assert.equal(kept.bytes, pattern(12, 9000), 'a still-attached instance keeps its mapping after the creator closed');
    kept.release();
    assert.ok(kept.released);
    throwsCode(() => attached.get('a'), 'TESSERA_ERR_CLOSED');
    attached.close();
  });

  test('a process killed with SIGKILL while holding pins does not leak them: the next reap releases them', async () => {
    const path = join(dir, 'kill');
    const cache = BlockCache.create({ backing: 'shm', path, capacityBytes: 8 * MIB });
    assert.ok(cache.put('a', pattern(3, 70_000)));
    assert.ok(cache.put('b', pattern(4, 70_000)));
    const c = startChild(path);
    await attached(c);
    assert.ok((await c.ask({ op: 'acquire', id: 'a' })).crc !== undefined);
    assert.ok((await c.ask({ op: 'pin', id: 'b' })).ok);
    assert.is(cache.stats().pinnedBlocks, 2);
    const usedBefore = cache.stats().usedBytes;
    assert.ok(cache.delete('a'), 'delete of a pinned block is accepted; its bytes wait for the last pin');
    c.child.kill('SIGKILL');
    assert.is(await c.exited, null);
    // The lease is 30 s: pins gone right away mean the pid + start-time check found the death.
    // (The cache's own timer may reap first, so the count returned here is not asserted.)
    cache.reapDeadOwners();
    const s = cache.stats();
    assert.is(s.pinnedBlocks, 0);
    assert.is(s.owners, 1);
    assert.ok(s.usedBytes < usedBefore, 'the deleted block was freed with its last pin');
    assert.not.ok(cache.has('a'));
    assert.ok(cache.has('b'));
    cache.checkInvariants();
    cache.close();
  });

  test('a killed process that stays a zombie (parent never reaps it) loses its pins when its lease runs out', async () => {
    const path = join(dir, 'zombie');
    const cache = BlockCache.create({ backing: 'shm', path, capacityBytes: 4 * MIB, ownerLeaseMs: 500 });
    assert.ok(cache.put('z', pattern(5, 10_000)));
    // sh starts the child in the background and then becomes `sleep`, which never waits for it.
    const script = `"${process.execPath}" "${fileURLToPath(childUrl)}" "${path}" hold z & exec sleep 60`;
    const sh = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    sh.stdout!.on('data', (d) => { out += String(d); });
    try {
      for (let i = 0; i < 3000 && !/pinned \d+/.test(out); i++) await new Promise((r) => setTimeout(r, 10));
      const pid = Number(/pinned (\d+)/.exec(out)?.[1]);
      assert.ok(pid > 0, 'the child pinned the block');
      assert.is(cache.stats().pinnedBlocks, 1);
      process.kill(pid, 'SIGKILL');
      // Reaped by this loop or by the cache's own timer, whichever runs first after the lease.
      for (let i = 0; i < 1000 && cache.stats().pinnedBlocks > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        cache.reapDeadOwners();
      }
      assert.is(cache.stats().pinnedBlocks, 0);
      assert.is(cache.stats().owners, 1);
    } finally {
      sh.kill('SIGKILL');
      cache.close();
    }
  });
}

if (!isFallbackChild) {
  test('the same tests pass with the native module disabled (TESSERA_NATIVE=0)', () => {
    const r = runUnderFallback(import.meta.url);
    assert.is(r.status, 0, r.output);
  });
}

test.after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
test.run();
