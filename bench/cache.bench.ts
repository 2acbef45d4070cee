/**
 * `npm run bench -- cache`: BlockCache against the tools a user would pick instead, on the
 * same data: lru-cache (maxSize in bytes with sizeCalculation; a per-thread heap cache) and
 * lmdb (getBinaryFast; a memory-mapped store shared by threads and processes).
 *
 * Rows: acquire+release (zero-copy view), withView, get (copy), put (evicting), for 4 KiB,
 * 64 KiB and 1 MiB values; 1 and 2 threads for 4 KiB; and the fragmentation of a steady
 * evicting workload of mixed sizes (4 KiB..4 MiB, 1 M puts; written with putWith so that the
 * figure is the allocator's and not memcpy's, 600 GB of copies would not fit in the suite).
 *
 * Method: every timed function runs a batch of operations (ops/s = batches/s x batch), so
 * the timer's own cost does not flatten the ratios; each row is the best of two runs. Keys come from a precomputed random
 * order. Source and target buffers are slices at 4 KiB multiples of one large ArrayBuffer,
 * like the arena's 64-byte aligned extents, so both sides of every copy share their
 * offset within a page (issue 2: a few bytes of relative misalignment cost up to 25x).
 * Backings: the BlockCache rows run on both arenas, 'sab' (SharedArrayBuffer, the default)
 * and 'shm' (mmap of a /dev/shm file by the native module; same API). V8 copies into a
 * SharedArrayBuffer at a fraction of memcpy speed, so the copying rows differ most.
 * Threads: the 1- and 2-thread rows run in worker_threads (this file, role in workerData),
 * both in the same run. Every thread attaches, warms up, waits for a common start signal and
 * then runs the same fixed number of operations (THREAD_OPS); the row is total operations /
 * wall time from the first thread's start to the last thread's end (clocks:
 * performance.timeOrigin + now(), shared by the threads of a process), so a thread that
 * finishes early does not inflate the sum. Each figure is the best of THREAD_REPEATS runs,
 * 1- and 2-thread runs interleaved. Control rows (a CPU-only loop on private memory, before
 * and after the thread rows) show how much parallelism the machine gave two threads at the
 * time: on a shared 2-core machine a 2-thread ratio means little unless its control is ~2x.
 * Floor rows: what every acquire+release cannot avoid (two seq-cst read-modify-writes on a
 * shared counter: announce the hold, give it back) and what every put cannot avoid (copying
 * the value into shared memory), measured alone, beside the lru-cache rows they bound.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { open } from 'lmdb';
import { BlockCache } from '../core/block-cache.js';
import type { BlockCacheHandle } from '../core/block-cache.js';
import { report, opsPerSec } from './harness.js';
import type { Row } from './harness.js';
import { seededRandom } from '../core/random.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const ORDER_MASK = (1 << 16) - 1;
const QUICK = process.argv.includes('--quick');
const ROW_MS = QUICK ? 150 : 300;
/** Operations each thread runs in a multi-thread row (a fixed batch, see the header). */
const THREAD_OPS = QUICK ? 1 << 19 : 1 << 21;
const THREAD_PUT_OPS = QUICK ? 1 << 17 : 1 << 19;
const THREAD_REPEATS = QUICK ? 1 : 3;
const FRAGMENTATION_PUTS = QUICK ? 100_000 : 1_000_000;

interface Size { label: string; bytes: number; hitKeys: number; batch: number }
const SIZES: Size[] = [
  { label: '4 KiB', bytes: 4 * KIB, hitKeys: 4096, batch: 256 },
  { label: '64 KiB', bytes: 64 * KIB, hitKeys: 256, batch: 32 },
  { label: '1 MiB', bytes: MIB, hitKeys: 32, batch: 4 },
];
/** Capacity for the hit rows: holds every key. Evicting rows use a quarter of the working set. */
const HIT_CAPACITY_BYTES = 64 * MIB;
const EVICT_CAPACITY_BYTES = 16 * MIB;

function randomOrder(keys: number, seed: number): Int32Array {
  const rand = seededRandom(seed);
  const order = new Int32Array(ORDER_MASK + 1);
  for (let i = 0; i < order.length; i++) order[i] = Math.floor(rand() * keys);
  return order;
}

/** `count` slices of `bytes` each, at 4 KiB multiples of one ArrayBuffer, filled with noise. */
function slices(count: number, bytes: number, seed: number): Uint8Array[] {
  const stride = Math.ceil(bytes / 4096) * 4096;
  const all = new Uint8Array(stride * count);
  const rand = seededRandom(seed);
  for (let i = 0; i < all.length; i += 4096) all.fill(Math.floor(rand() * 256), i, i + 4096);
  return Array.from({ length: count }, (_, i) => all.subarray(i * stride, i * stride + bytes));
}

/** ops/s of `fn` (which does `batch` operations), the best of two tinybench runs. */
async function rate(fn: () => void, batch: number): Promise<number> {
  const first = await opsPerSec(fn, ROW_MS, 100);
  const second = QUICK ? 0 : await opsPerSec(fn, ROW_MS, 20);
  return Math.max(first, second) * batch;
}

// ---------------------------------------------------------------- worker_threads side

type Role = 'bc-acquire' | 'bc-get' | 'bc-put' | 'lmdb-get' | 'control';
interface ThreadJob { role: Role; handle?: BlockCacheHandle; lmdbPath?: string; bytes: number; keys: number; seed: number; ops: number; batch: number }
interface ThreadResult { ops: number; startMs: number; endMs: number; sink: number }

type Backing = 'sab' | 'shm';
const BACKINGS: readonly Backing[] = ['sab', 'shm'];
let shmSeq = 0;

/** A new BlockCache on `backing` ('shm': a fresh /dev/shm file, removed at close). */
function createCache(backing: Backing, capacityBytes: number, policy: 'sieve' | 'lru' | 's3fifo' = 'sieve'): BlockCache {
  if (backing === 'sab') return BlockCache.create({ capacityBytes, policy });
  return BlockCache.create({ capacityBytes, policy, backing: 'shm', path: `/dev/shm/tessera-bench-cache-${process.pid}-${shmSeq++}` });
}

function threadMain(job: ThreadJob, start: Int32Array): void {
  const order = randomOrder(job.keys, job.seed);
  let sink = 0;
  let op: (k: number) => void;
  let close = (): void => {};
  if (job.role === 'control') {
    // CPU only, private memory: how much parallelism the machine gives two threads right now.
    op = (k) => {
      let h = k;
      for (let j = 0; j < 24; j++) h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
      sink += h & 1;
    };
  } else if (job.role === 'lmdb-get') {
    const db = open({ path: job.lmdbPath!, encoding: 'binary', readOnly: true });
    op = (k) => { sink += db.getBinaryFast(k)![0]!; };
    close = () => { void db.close(); };
  } else {
    const cache = BlockCache.attach(job.handle!);
    const target = slices(1, job.bytes, 1)[0]!;
    const source = slices(1, job.bytes, 2)[0]!;
    if (job.role === 'bc-acquire') op = (k) => { const v = cache.acquire(k)!; sink += v.bytes[0]!; v.release(); };
    else if (job.role === 'bc-get') op = (k) => { sink += cache.getInto(k, target); };
    else op = (k) => { cache.put(k + job.seed * 1_000_000, source); };
    close = () => cache.close();
  }
  // Warm-up (optimise the loop before the clock starts), then all threads start together.
  let i = 0;
  for (let n = 0; n < Math.min(job.ops, 1 << 16); n++) op(order[i++ & ORDER_MASK]!);
  parentPort!.postMessage('ready');
  Atomics.wait(start, 0, 0);
  const startMs = performance.timeOrigin + performance.now();
  for (let done = 0; done < job.ops; done += job.batch) {
    for (let b = 0; b < job.batch; b++) op(order[i++ & ORDER_MASK]!);
  }
  const endMs = performance.timeOrigin + performance.now();
  close();
  const result: ThreadResult = { ops: job.ops, startMs, endMs, sink };
  parentPort!.postMessage(result);
}

/** Total ops / wall time of `threads` threads each running job.ops operations from one start signal. */
async function inThreadsOnce(threads: number, job: Omit<ThreadJob, 'seed'>): Promise<number> {
  const start = new Int32Array(new SharedArrayBuffer(4));
  const workers = Array.from({ length: threads }, (_, t) => new Worker(fileURLToPath(import.meta.url), { workerData: { job: { ...job, seed: t + 1 }, start } }));
  const exited = workers.map((w) => new Promise((resolve) => w.once('exit', resolve)));
  const ready: Promise<void>[] = [];
  const results = workers.map((w, t) => new Promise<ThreadResult>((resolve, reject) => {
    let onReady!: () => void;
    ready[t] = new Promise<void>((r) => { onReady = r; });
    w.on('message', (m: 'ready' | ThreadResult) => (m === 'ready' ? onReady() : resolve(m)));
    w.once('error', reject);
  }));
  await Promise.all(ready); // attached and warmed up
  await new Promise((r) => setTimeout(r, 50)); // all parked in Atomics.wait
  Atomics.store(start, 0, 1);
  Atomics.notify(start, 0);
  const done = await Promise.all(results);
  await Promise.all(exited);
  const wallMs = Math.max(...done.map((d) => d.endMs)) - Math.min(...done.map((d) => d.startMs));
  return done.reduce((a, d) => a + d.ops, 0) / (wallMs / 1000);
}

// ---------------------------------------------------------------- main thread side

async function singleThreadRows(rows: Row[], lmdbDir: string): Promise<void> {
  for (const size of SIZES) {
    const s = size.label;
    const values = slices(Math.min(size.hitKeys, 64), size.bytes, 7);
    const valueOf = (k: number): Uint8Array => values[k % values.length]!;
    const order = randomOrder(size.hitKeys, 11);
    let sink = 0;
    let i = 0;
    const B = size.batch;

    const lru = new LRUCache<number, Uint8Array>({ maxSize: HIT_CAPACITY_BYTES, sizeCalculation: (v) => v.length });
    for (let k = 0; k < size.hitKeys; k++) lru.set(k, valueOf(k).slice());
    const db = open({ path: join(lmdbDir, `hit-${size.bytes}`), encoding: 'binary' });
    for (let k = 0; k < size.hitKeys; k++) db.putSync(k, valueOf(k));
    const target = slices(1, size.bytes, 3)[0]!;

    const lruGet = `lru-cache get ${s}`;
    rows.push({ name: lruGet, opsPerSec: await rate(() => { for (let b = 0; b < B; b++) sink += lru.get(order[i++ & ORDER_MASK]!)![0]!; }, B), note: 'reference, no copy' });
    const lmdbGet = `lmdb getBinaryFast ${s}`;
    rows.push({ name: lmdbGet, opsPerSec: await rate(() => { for (let b = 0; b < B; b++) sink += db.getBinaryFast(order[i++ & ORDER_MASK]!)![0]!; }, B), note: 'copy into a reused buffer' });
    // The floor under any cross-thread pin: the two seq-cst read-modify-writes (announce a
    // hold, give it back) on a shared counter, with no lookup at all. lru-cache's get pins
    // nothing (one thread's heap), so it is not bound by this; acquire+release is.
    // The byte read is of the k-th block of a SharedArrayBuffer as large as the cache's data:
    // the fences keep its cache miss from overlapping the next operation's, as in acquire.
    const pinCounters = new Uint16Array(new SharedArrayBuffer(2 * size.hitKeys));
    const floorBlocks = new Uint8Array(new SharedArrayBuffer(size.hitKeys * size.bytes)).fill(1); // touched: no zero page
    rows.push({ name: `floor: Atomics.add+Atomics.sub on a shared counter ${s}`, opsPerSec: await rate(() => {
      for (let b = 0; b < B; b++) {
        const k = order[i++ & ORDER_MASK]!;
        Atomics.add(pinCounters, k, 1);
        sink += floorBlocks[k * size.bytes]!;
        Atomics.sub(pinCounters, k, 1);
      }
    }, B), baseline: lruGet, note: 'pin, read the first byte of block k, release; no lookup' });
    for (const backing of BACKINGS) {
      const cache = createCache(backing, HIT_CAPACITY_BYTES);
      for (let k = 0; k < size.hitKeys; k++) cache.put(k, valueOf(k));
      const on = backing === 'sab' ? '' : ' [shm]';
      const acquire = await rate(() => {
        for (let b = 0; b < B; b++) {
          const v = cache.acquire(order[i++ & ORDER_MASK]!)!;
          sink += v.bytes[0]!;
          v.release();
        }
      }, B);
      rows.push({ name: `BlockCache acquire+release ${s}${on}`, opsPerSec: acquire, baseline: lruGet, note: 'zero-copy view' });
      rows.push({ name: `BlockCache acquire+release ${s}${on} (vs lmdb)`, opsPerSec: acquire, baseline: lmdbGet });
      if (backing === 'sab') {
        // No copy: the backing does not matter for these two, one row each.
        rows.push({ name: `BlockCache acquireHandle+releaseHandle ${s}`, opsPerSec: await rate(() => {
          for (let b = 0; b < B; b++) {
            const h = cache.acquireHandle(order[i++ & ORDER_MASK]!);
            sink += cache.handleBytes(h)[0]!;
            cache.releaseHandle(h);
          }
        }, B), baseline: lruGet, note: 'zero-copy, no object' });
        const read0 = (bytes: Uint8Array): number => bytes[0]!;
        rows.push({ name: `BlockCache withView ${s}`, opsPerSec: await rate(() => { for (let b = 0; b < B; b++) sink += cache.withView(order[i++ & ORDER_MASK]!, read0)!; }, B), baseline: lruGet });
      }
      rows.push({ name: `BlockCache get (copy) ${s}${on}`, opsPerSec: await rate(() => { for (let b = 0; b < B; b++) sink += cache.get(order[i++ & ORDER_MASK]!)![0]!; }, B), baseline: lmdbGet, note: 'new buffer per call' });
      const getInto = await rate(() => { for (let b = 0; b < B; b++) sink += cache.getInto(order[i++ & ORDER_MASK]!, target); }, B);
      rows.push({ name: `BlockCache getInto (copy) ${s}${on}`, opsPerSec: getInto, bytesPerSec: getInto * size.bytes, baseline: lmdbGet, note: 'into a caller buffer' });
      cache.close();
    }
    await db.close();
    lru.clear();

    // Evicting puts: a working set of 4x the capacity, every put (after the first fill) evicts.
    const evictKeys = Math.max(8, Math.ceil((4 * EVICT_CAPACITY_BYTES) / size.bytes));
    const evictOrder = randomOrder(evictKeys, 13);
    const lruSet = `lru-cache set evicting ${s}`;
    const lruSetCopy = `lru-cache set evicting ${s} (copy)`;
    const lruEvict = new LRUCache<number, Uint8Array>({ maxSize: EVICT_CAPACITY_BYTES, sizeCalculation: (v) => v.length });
    rows.push({ name: lruSet, opsPerSec: await rate(() => { for (let b = 0; b < B; b++) { const k = evictOrder[i++ & ORDER_MASK]!; lruEvict.set(k, valueOf(k)); } }, B), note: 'stores the reference' });
    lruEvict.clear();
    const lruCopy = new LRUCache<number, Uint8Array>({ maxSize: EVICT_CAPACITY_BYTES, sizeCalculation: (v) => v.length });
    rows.push({ name: lruSetCopy, opsPerSec: await rate(() => { for (let b = 0; b < B; b++) { const k = evictOrder[i++ & ORDER_MASK]!; lruCopy.set(k, valueOf(k).slice()); } }, B), note: 'stores a copy, as BlockCache does' });
    lruCopy.clear();
    // The floor under any put: copying the value into shared memory (put copies in; the
    // reference-storing lru-cache row copies nothing).
    const sharedTargets = new Uint8Array(new SharedArrayBuffer(8 * Math.ceil(size.bytes / 4096) * 4096));
    const stride = Math.ceil(size.bytes / 4096) * 4096;
    const copyIn = await rate(() => { for (let b = 0; b < B; b++) { const k = evictOrder[i++ & ORDER_MASK]!; sharedTargets.set(valueOf(k), (k & 7) * stride); } }, B);
    rows.push({ name: `floor: copy ${s} into a SharedArrayBuffer`, opsPerSec: copyIn, bytesPerSec: copyIn * size.bytes, baseline: lruSet, note: 'the copy every put makes, alone' });
    const puts: Array<[Backing, 'sieve' | 'lru' | 's3fifo']> = [['sab', 'sieve'], ['sab', 'lru'], ['sab', 's3fifo'], ['shm', 'sieve']];
    for (const [backing, policy] of puts) {
      const evicting = createCache(backing, EVICT_CAPACITY_BYTES, policy);
      const put = await rate(() => { for (let b = 0; b < B; b++) { const k = evictOrder[i++ & ORDER_MASK]!; evicting.put(k, valueOf(k)); } }, B);
      const name = `BlockCache put evicting ${s} (${policy})${backing === 'sab' ? '' : ' [shm]'}`;
      rows.push({ name, opsPerSec: put, bytesPerSec: put * size.bytes, baseline: lruSet, note: `evictions ${evicting.stats().evictions}` });
      if (policy === 'sieve') rows.push({ name: `${name} (vs copying lru-cache)`, opsPerSec: put, baseline: lruSetCopy });
      evicting.close();
    }
    if (sink === 0.5) console.log(sink); // keep the reads alive
  }
}

async function threadRows(rows: Row[], lmdbDir: string): Promise<void> {
  const bytes = 4 * KIB;
  const keys = 4096;
  const values = slices(64, bytes, 5);
  const path = join(lmdbDir, 'threads');
  const db = open({ path, encoding: 'binary' });
  for (let k = 0; k < keys; k++) db.putSync(k, values[k % 64]!);
  await db.close();
  const base = { bytes, keys, ops: THREAD_OPS, batch: 256 };
  const pair = async (label: string, job: Omit<ThreadJob, 'seed'>, note: string): Promise<void> => {
    // Interleaved (1, 2, 1, 2, ...), best of each: load from other processes drifts over time.
    let one = 0;
    let two = 0;
    for (let r = 0; r < THREAD_REPEATS; r++) {
      one = Math.max(one, await inThreadsOnce(1, job));
      two = Math.max(two, await inThreadsOnce(2, job));
    }
    rows.push({ name: `${label}, 1 thread`, opsPerSec: one, note: `worker_thread, ${job.ops} ops` });
    rows.push({ name: `${label}, 2 threads`, opsPerSec: two, baseline: `${label}, 1 thread`, note: `2 x ${job.ops} ops / wall time${note}` });
  };
  await pair('control: CPU-only loop, private memory', { ...base, ops: THREAD_OPS * 4, role: 'control' }, ', the machine\'s parallelism now');
  await pair('lmdb getBinaryFast 4 KiB', { ...base, role: 'lmdb-get', lmdbPath: path }, '');
  for (const backing of BACKINGS) {
    const on = backing === 'sab' ? '' : ' [shm]';
    const cache = createCache(backing, HIT_CAPACITY_BYTES);
    for (let k = 0; k < keys; k++) cache.put(k, values[k % 64]!);
    await pair(`BlockCache acquire+release 4 KiB${on}`, { ...base, role: 'bc-acquire', handle: cache.handle }, '');
    await pair(`BlockCache getInto (copy) 4 KiB${on}`, { ...base, role: 'bc-get', handle: cache.handle }, '');
    cache.close();
    const evicting = createCache(backing, EVICT_CAPACITY_BYTES);
    await pair(`BlockCache put evicting 4 KiB${on}`, { ...base, ops: THREAD_PUT_OPS, keys: 16_384, role: 'bc-put', handle: evicting.handle }, ', one engine lock');
    evicting.close();
  }
  await pair('control: CPU-only loop, private memory (again)', { ...base, ops: THREAD_OPS * 4, role: 'control' }, ', the machine\'s parallelism now');
}

/** Steady evicting workload of mixed sizes: how much of the capacity holds blocks. */
function fragmentation(policy: 'sieve' | 'lru' | 's3fifo'): Record<string, number> {
  const capacityBytes = 256 * MIB;
  const cache = BlockCache.create({ capacityBytes, policy });
  const rand = seededRandom(99);
  const fill = (): void => {};
  const ratios: number[] = [];
  let fragSum = 0;
  let failed = 0;
  const t0 = performance.now();
  for (let i = 0; i < FRAGMENTATION_PUTS; i++) {
    const size = Math.floor(4 * KIB * 1024 ** rand()); // log-uniform in [4 KiB, 4 MiB)
    if (!cache.putWith(i, size, fill)) failed++;
    if (i >= 20_000 && i % 1000 === 0) {
      const s = cache.stats();
      ratios.push(s.usedBytes / capacityBytes);
      fragSum += s.fragmentation;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const s = cache.stats();
  cache.close();
  ratios.sort((a, b) => a - b);
  const at = (q: number): number => ratios[Math.min(ratios.length - 1, Math.floor(q * ratios.length))]!;
  return {
    puts: FRAGMENTATION_PUTS, putsPerSec: Math.round(FRAGMENTATION_PUTS / seconds), failedPuts: failed, samples: ratios.length,
    meanUsedOverCapacity: ratios.reduce((a, b) => a + b, 0) / ratios.length, minUsedOverCapacity: at(0), p1UsedOverCapacity: at(0.01),
    p5UsedOverCapacity: at(0.05), meanFragmentation: fragSum / ratios.length, evictions: s.evictions, blocksAtEnd: s.blockCount,
  };
}

async function main(): Promise<void> {
  const lmdbDir = mkdtempSync(join(tmpdir(), 'tessera-bench-cache-'));
  const rows: Row[] = [];
  try {
    await singleThreadRows(rows, lmdbDir);
    await threadRows(rows, lmdbDir);
  } finally {
    rmSync(lmdbDir, { recursive: true, force: true });
  }
  // Unique ids and no reads: every policy degenerates to FIFO here, so one run says it all.
  const frag = { sieve: fragmentation('sieve') };
  report('cache', rows, { fragmentation: { workload: 'putWith of log-uniform sizes 4 KiB..4 MiB, unique ids, capacity 256 MiB', ...frag } });
}

if (isMainThread) {
  await main();
} else {
  const { job, start } = workerData as { job: ThreadJob; start: Int32Array };
  threadMain(job, start);
}
