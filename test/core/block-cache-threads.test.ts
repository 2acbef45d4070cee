/**
 * BlockCache across real worker_threads (compiled dist/ JS): a bounded stress of 4 threads
 * with checksummed blocks, and threads terminated while they hold views.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlockCache } from '../../core/block-cache.js';
import type { BlockCacheHandle } from '../../core/block-cache.js';
import { ErrorCode, isTesseraError } from '../../core/errors.js';

const WORKER_URL = new URL('./fixtures/cache-worker.js', import.meta.url);
const STRESS_MS = Number(process.env.SOAK === '1' ? 60_000 : 2_000);

interface StressCounts {
  put: number; putFalse: number; acquire: number; hit: number; kept: number; get: number; del: number;
  released: number; pinned: number; unpinned: number;
}
interface StressResult { counts: StressCounts; errors: string[] }

function runWorker<T>(workerData: unknown): { worker: Worker; message: Promise<T>; exited: Promise<number> } {
  const worker = new Worker(WORKER_URL, { workerData });
  const message = new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  return { worker, message, exited };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) assert.unreachable(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Stress geometry. Each thread holds at most 8 views and 4 pins, so 4 threads hold at most
 * 48 blocks of at most STRESS_MAX_BYTES: a put can fail only while held blocks fill the
 * cache, which the mostly small blocks (80 % under 4 KiB) make rare.
 */
const STRESS_CAPACITY_BYTES = 2 * 1024 * 1024;
const STRESS_MAX_BYTES = 256 * 1024;
/** Most puts of a thread that may return false (everything evictable held by others). */
const STRESS_MAX_PUT_FALSE_RATIO = 0.05;

for (const policy of ['sieve', 'lru', 's3fifo'] as const) {
  test(`4 threads putting, acquiring, pinning and deleting shared ids (${policy}): no torn read, no overlap, no leaked view or pin, usedBytes = sum of live blocks`, async () => {
    const cache = BlockCache.create({ capacityBytes: STRESS_CAPACITY_BYTES, maxBlocks: 256, policy });
    const runs = [1, 2, 3, 4].map((i) => runWorker<StressResult>({
      mode: 'stress', handle: cache.handle, ids: 96, durationMs: STRESS_MS, seed: i * 7919 + policy.length, maxBytes: STRESS_MAX_BYTES,
    }));
    try {
      const results = await Promise.all(runs.map((r) => r.message));
      for (const r of results) {
        const c = r.counts;
        assert.equal(r.errors, [], 'no torn or foreign read');
        assert.ok(c.put > 100 && c.hit > 10 && c.kept > 10 && c.pinned > 0, `the thread did work: ${JSON.stringify(c)}`);
        assert.is(c.released, c.kept, 'the thread released every view it kept');
        assert.is(c.unpinned, c.pinned, 'the thread unpinned every pin it took');
        assert.ok(c.putFalse <= c.put * STRESS_MAX_PUT_FALSE_RATIO, `puts fail only when held blocks fill the cache: ${c.putFalse} of ${c.put}`);
      }
      // Every thread has finished its loop and released its holds but is still attached: a
      // hold it forgot is still counted here (close() would give it back).
      let s = cache.stats();
      assert.is(s.owners, 5, 'the four threads are still attached');
      assert.is(s.pinnedBlocks, 0, 'no leaked view or pin while the threads are attached');
      cache.checkInvariants();
      let live = 0;
      for (const id of [...cache.keys()]) live += cache.get(id)?.length ?? 0;
      assert.is(s.usedBytes, live, 'usedBytes equals the sum of live blocks');
      assert.ok(s.usedBytes <= s.capacityBytes);
      assert.ok(cache.put('after', new Uint8Array(STRESS_CAPACITY_BYTES - 4096).fill(7)), 'with nothing held, every block can be evicted to make room');
      const closed = runs.map((r) => new Promise((resolve) => r.worker.once('message', resolve)));
      for (const r of runs) r.worker.postMessage('close');
      await Promise.all(closed);
      await Promise.all(runs.map((r) => r.exited));
      s = cache.stats();
      assert.is(s.owners, 1, 'every worker closed its owner slot');
      assert.is(s.pinnedBlocks, 0);
      cache.checkInvariants();
    } finally {
      // On a failed assertion the threads still wait for 'close': end them so the file exits.
      await Promise.all(runs.map((r) => r.worker.terminate()));
      cache.close();
    }
  });
}

function fill(cache: BlockCache, ids: number[], size: number): void {
  for (const id of ids) assert.ok(cache.put(id, new Uint8Array(size).fill(id)));
}

test('a thread terminated while holding views and pins has them released once its lease runs out', async () => {
  const cache = BlockCache.create({ capacityBytes: 1 << 20, ownerLeaseMs: 1000 });
  fill(cache, [1, 2, 3, 4], 10_000);
  const { worker, message, exited } = runWorker<{ holding: number }>({ mode: 'hold', handle: cache.handle satisfies BlockCacheHandle, acquire: [1, 2, 3], pin: [4] });
  assert.is((await message).holding, 4);
  assert.is(cache.stats().pinnedBlocks, 4);
  assert.ok(cache.delete(2));
  assert.is(cache.stats().usedBytes, 40_000, 'the deleted block is held by the thread');
  await worker.terminate();
  await exited;
  await waitFor('the lease to expire and the pins to be reaped', () => cache.stats().pinnedBlocks === 0);
  const s = cache.stats();
  assert.is(s.usedBytes, 30_000, 'the deleted block is freed with its last pin');
  assert.is(s.owners, 1);
  assert.equal(cache.get(1), new Uint8Array(10_000).fill(1));
  cache.checkInvariants();
  cache.close();
});

test('releaseThread(threadId) from the Worker exit event releases a terminated thread\'s pins at once', async () => {
  const cache = BlockCache.create({ capacityBytes: 1 << 20 });
  fill(cache, [1, 2], 5000);
  const { worker, message, exited } = runWorker<{ holding: number }>({ mode: 'hold', handle: cache.handle, acquire: [1, 1, 2], pin: [2] });
  assert.is((await message).holding, 4);
  const threadId = worker.threadId;
  assert.is(cache.stats().pinnedBlocks, 2);
  await worker.terminate();
  await exited;
  assert.is(cache.releaseThread(threadId), 1);
  assert.is(cache.stats().pinnedBlocks, 0);
  assert.is(cache.releaseThread(threadId), 0, 'releasing twice finds nothing');
  assert.ok(cache.put(3, new Uint8Array((1 << 20) - 100)), 'the released blocks can be evicted to make room');
  cache.checkInvariants();
  cache.close();
});

test('a thread terminated inside the engine lock is detected: others get TESSERA_ERR_LOCK_ABANDONED instead of hanging', async () => {
  const cache = BlockCache.create({ capacityBytes: 4 * 4096, maxBlocks: 4, ownerLeaseMs: 200 });
  fill(cache, [1, 2, 3, 4], 4096);
  const { worker, message, exited } = runWorker<{ inHook: boolean }>({ mode: 'stuck', handle: cache.handle, id: 5, bytes: 4096 });
  assert.ok((await message).inHook);
  await worker.terminate();
  await exited;
  try {
    cache.put(6, new Uint8Array(10));
    assert.unreachable('the put should not get the lock');
  } catch (err) {
    assert.ok(isTesseraError(err, ErrorCode.LOCK_ABANDONED), String(err));
  }
  assert.equal(cache.get(4), new Uint8Array(4096).fill(4), 'lock-free reads still work (1 was the victim in the hook)');
  cache.close();
  assert.ok(cache.closed);
});

test.run();
