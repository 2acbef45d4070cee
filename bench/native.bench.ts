/**
 * The native module against what a user would pick instead:
 *   1. CRC32C: native (SSE4.2, three streams) vs the TS fallback vs node:zlib crc32 (Node's
 *      built-in; it is CRC-32/IEEE, a different polynomial, so the peer for speed only),
 *      on 4 KiB, 1 MiB and 64 MiB.
 *   2. Read bandwidth: copying 1 MiB blocks out of a mapShared /dev/shm arena vs out of a
 *      SharedArrayBuffer vs memcpy between ordinary buffers (Buffer.copy), every source and
 *      destination 64-byte aligned (measured with pageOffsetOf); plus a word scan (Int32 sum).
 *   3. Wake-up latency: futex ping-pong between two threads over a mapShared arena vs
 *      Atomics.wait/notify ping-pong over a SharedArrayBuffer.
 *   4. Would a native pread/pwrite beat node:fs? fs.readSync and fs.writeSync of 1 and 64 MiB
 *      blocks through the page cache of a file in /tmp (overwrite in place, and a new file per
 *      block as the SSD tier writes them), against memcpy of the same size, the ceiling any
 *      pread or pwrite can reach (bench/native-fs.ts, which can be run alone).
 * Targets (issue 3): native crc32c >= 8 GB/s on 1 MiB; TS >= 0.5 GB/s; mapShared reads
 * within 10 % of SharedArrayBuffer reads.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { BlockCache } from '../core/block-cache.js';
import { crc32c, crc32cImplementationName, crc32cTs } from '../core/crc32c.js';
import { crc32cNative, futexWait, futexWake, mapShared, nativeStatus, unmap } from '../native/index.js';
import { alignedIn, measureThroughput, report, type Row } from './harness.js';
import { fsRows } from './native-fs.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const quick = process.argv.includes('--quick');
const TIME_MS = quick ? 200 : 700;
const status = nativeStatus();
if (!status.loaded) console.log(`native module not loaded (${status.reason}); native rows are skipped`);
const rows: Row[] = [];
const extra: Record<string, unknown> = { native: status.reason };

function fill(u8: Uint8Array): void {
  for (let i = 0; i < u8.length; i += 4096) u8[i] = (i * 2654435761) >>> 13;
}

function label(size: number): string {
  return size >= MIB ? `${size / MIB} MiB` : `${size / KIB} KiB`;
}


// ---- 1. CRC32C --------------------------------------------------------------------------

const zcrc = (zlib as unknown as { crc32?: (b: Uint8Array, v?: number) => number }).crc32;
extra.zlibCrc32 = zcrc ? `node:zlib crc32 exists in ${process.version} (CRC-32/IEEE, not CRC32C)` : `node:zlib has no crc32 in ${process.version}`;
for (const size of [4 * KIB, MIB, 64 * MIB]) {
  const data = alignedIn(new ArrayBuffer(size + 64), size);
  fill(data);
  const n = label(size);
  const time = size === 64 * MIB ? TIME_MS * 2 : TIME_MS;
  const base = `zlib.crc32 ${n}`;
  if (zcrc) {
    const ops = await measureThroughput(() => { zcrc(data); return 1; }, time);
    rows.push({ name: base, opsPerSec: ops, bytesPerSec: ops * size });
  }
  if (status.loaded) {
    const ops = await measureThroughput(() => { crc32cNative(data); return 1; }, time);
    rows.push({ name: `crc32c native ${n}`, opsPerSec: ops, bytesPerSec: ops * size, ...(zcrc ? { baseline: base } : {}) });
  }
  const ops = await measureThroughput(() => { crc32cTs(data); return 1; }, time);
  rows.push({ name: `crc32c TS ${n}`, opsPerSec: ops, bytesPerSec: ops * size, ...(zcrc ? { baseline: base } : {}) });
}

// ---- 2. Read bandwidth ---------------------------------------------------------------------

const ARENA_BYTES = 64 * MIB;
const BLOCK_BYTES = MIB;
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tessera-bench-'));
const dst = alignedIn(new ArrayBuffer(BLOCK_BYTES + 64), BLOCK_BYTES);

function copyOut(src: Uint8Array): () => number {
  let off = 0;
  return () => {
    dst.set(src.subarray(off, off + BLOCK_BYTES));
    off = (off + BLOCK_BYTES) % (src.length - BLOCK_BYTES + 1);
    return 1;
  };
}

function bufferCopy(src: Uint8Array): () => number {
  const from = Buffer.from(src.buffer, src.byteOffset, src.length);
  const to = Buffer.from(dst.buffer, dst.byteOffset, dst.length);
  let off = 0;
  return () => {
    from.copy(to, 0, off, off + BLOCK_BYTES);
    off = (off + BLOCK_BYTES) % (src.length - BLOCK_BYTES + 1);
    return 1;
  };
}

function copyIn(dstArena: Uint8Array): () => number {
  const src = dst; // a 64-byte aligned plain 1 MiB block
  let off = 0;
  return () => {
    dstArena.set(src, off);
    off = (off + BLOCK_BYTES) % (dstArena.length - BLOCK_BYTES + 1);
    return 1;
  };
}

/**
 * Sums the Int32 words of a 1 MiB block. Each row gets its own compiled copy of the loop
 * (new Function): one shared function would see both SharedArrayBuffer-backed and ordinary
 * arrays, and its polymorphic feedback would penalise whichever row runs second.
 */
function scan(src: Uint8Array): () => number {
  const i32 = new Int32Array(src.buffer, src.byteOffset, src.length >>> 2);
  const sum = new Function('a', 'off', 'n', 'let s = 0; const end = off + n; for (let i = off; i < end; i++) s = (s + a[i]) | 0; return s;') as
    (a: Int32Array, off: number, n: number) => number;
  const words = BLOCK_BYTES >>> 2;
  let off = 0;
  return () => {
    const s = sum(i32, off, words);
    off = (off + words) % (i32.length - words + 1);
    return s === 0.5 ? 0 : 1;
  };
}

const sabSrc = alignedIn(new SharedArrayBuffer(ARENA_BYTES + 64), ARENA_BYTES);
fill(sabSrc);
const plainSrc = alignedIn(new ArrayBuffer(ARENA_BYTES + 64), ARENA_BYTES);
fill(plainSrc);
const plainBuf = Buffer.from(plainSrc.buffer, plainSrc.byteOffset, plainSrc.length);
const dstBuf = Buffer.from(dst.buffer, dst.byteOffset, dst.length);
let memOff = 0;
const memcpy = (): number => {
  plainBuf.copy(dstBuf, 0, memOff, memOff + BLOCK_BYTES);
  memOff = (memOff + BLOCK_BYTES) % (ARENA_BYTES - BLOCK_BYTES + 1);
  return 1;
};
const readRows: [string, () => number, string?][] = [
  ['memcpy (Buffer.copy) 1 MiB', memcpy],
  ['SharedArrayBuffer copy-out 1 MiB', copyOut(sabSrc), 'memcpy (Buffer.copy) 1 MiB'],
];
let shm: ArrayBuffer | undefined;
if (status.loaded) {
  shm = mapShared(join(dir, 'arena'), ARENA_BYTES, { create: true, lock: true });
  const shmSrc = new Uint8Array(shm, 0, ARENA_BYTES);
  fill(shmSrc);
  readRows.push(['mapShared copy-out 1 MiB', copyOut(shmSrc), 'SharedArrayBuffer copy-out 1 MiB']);
  readRows.push(['SharedArrayBuffer Buffer.copy 1 MiB', bufferCopy(sabSrc), 'memcpy (Buffer.copy) 1 MiB']);
  readRows.push(['mapShared Buffer.copy 1 MiB', bufferCopy(shmSrc), 'SharedArrayBuffer Buffer.copy 1 MiB']);
  readRows.push(['SharedArrayBuffer copy-in 1 MiB', copyIn(sabSrc), 'memcpy (Buffer.copy) 1 MiB']);
  readRows.push(['mapShared copy-in 1 MiB', copyIn(shmSrc), 'SharedArrayBuffer copy-in 1 MiB']);
  readRows.push(['SharedArrayBuffer scan 1 MiB', scan(sabSrc)]);
  readRows.push(['mapShared scan 1 MiB', scan(shmSrc), 'SharedArrayBuffer scan 1 MiB']);
} else {
  readRows.push(['SharedArrayBuffer scan 1 MiB', scan(sabSrc)]);
}
// Interleaved rounds, best of each: on a shared machine a single pass compares noise.
const READ_ROUNDS = 4;
const best = new Map<string, number>();
for (let round = 0; round < READ_ROUNDS; round++) {
  const order = round % 2 === 0 ? readRows : [...readRows].reverse();
  for (const [name, fn] of order) best.set(name, Math.max(best.get(name) ?? 0, await measureThroughput(fn, TIME_MS / 2)));
}
for (const [name, , baseline] of readRows) {
  const ops = best.get(name)!;
  rows.push({ name, opsPerSec: ops, bytesPerSec: ops * BLOCK_BYTES, ...(baseline ? { baseline } : {}), note: `64-byte aligned, best of ${READ_ROUNDS}` });
}

// ---- 2b. The same through BlockCache: acquire + checksum a 1 MiB block, sab vs shm backing --

async function cacheRow(backing: 'sab' | 'shm'): Promise<number> {
  const cache = BlockCache.create({ capacityBytes: 32 * MIB, ...(backing === 'shm' ? { backing, path: join(dir, 'cache') } : {}) });
  const block = alignedIn(new ArrayBuffer(BLOCK_BYTES + 64), BLOCK_BYTES);
  fill(block);
  for (let i = 0; i < 16; i++) cache.put(i, block);
  let i = 0;
  const ops = await measureThroughput(() => {
    const v = cache.acquire(i++ & 15)!;
    crc32c(v.bytes);
    v.release();
    return 1;
  }, TIME_MS);
  cache.close();
  return ops;
}
rows.push({ name: 'BlockCache sab acquire+crc32c 1 MiB', opsPerSec: await cacheRow('sab'), note: `crc32c: ${crc32cImplementationName()}` });
rows[rows.length - 1]!.bytesPerSec = rows[rows.length - 1]!.opsPerSec * BLOCK_BYTES;
if (status.loaded) {
  const ops = await cacheRow('shm');
  rows.push({ name: 'BlockCache shm acquire+crc32c 1 MiB', opsPerSec: ops, bytesPerSec: ops * BLOCK_BYTES, baseline: 'BlockCache sab acquire+crc32c 1 MiB' });
}

// ---- 3. Ping-pong ---------------------------------------------------------------------------

const ROUNDS = quick ? 5_000 : 10_000;
const nativeUrl = new URL('../native/index.js', import.meta.url).href;
/** Worker: waits for word 0 to become 1, sets it to 0 and wakes, `rounds` times. */
const workerCode = (kind: 'futex' | 'atomics'): string => `
  const { workerData, parentPort } = require('node:worker_threads');
  (async () => {
    const n = ${kind === 'futex' ? `await import(${JSON.stringify(nativeUrl)})` : 'null'};
    const buf = workerData.path ? n.mapShared(workerData.path, 4096) : workerData.buffer;
    const i32 = new Int32Array(buf);
    const wait = ${kind === 'futex' ? '(i, v) => n.futexWait(i32, i, v, Infinity)' : '(i, v) => Atomics.wait(i32, i, v)'};
    const wake = ${kind === 'futex' ? '(i) => n.futexWake(i32, i, 1)' : '(i) => Atomics.notify(i32, i, 1)'};
    parentPort.postMessage('ready');
    for (let r = 0; r < workerData.rounds; r++) {
      while (Atomics.load(i32, 0) !== 1) wait(0, 0);
      Atomics.store(i32, 0, 0);
      wake(0);
    }
    if (workerData.path) n.unmap(buf);
    parentPort.postMessage('done');
  })();
`;

async function pingPong(kind: 'futex' | 'atomics'): Promise<number> {
  let buf: ArrayBufferLike;
  let workerData: Record<string, unknown>;
  const path = join(dir, 'pingpong');
  if (kind === 'futex') {
    buf = mapShared(path, 4096, { create: true });
    workerData = { path, rounds: ROUNDS };
  } else {
    buf = new SharedArrayBuffer(4096);
    workerData = { buffer: buf, rounds: ROUNDS };
  }
  const i32 = new Int32Array(buf);
  const wait = kind === 'futex' ? (v: number) => futexWait(i32, 0, v, Infinity) : (v: number) => Atomics.wait(i32, 0, v);
  const wake = kind === 'futex' ? () => futexWake(i32, 0, 1) : () => Atomics.notify(i32, 0, 1);
  const w = new Worker(workerCode(kind), { eval: true, workerData });
  await new Promise<void>((r) => w.once('message', () => r()));
  const start = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    Atomics.store(i32, 0, 1);
    wake();
    while (Atomics.load(i32, 0) !== 0) wait(1);
  }
  const secs = (performance.now() - start) / 1000;
  await new Promise<void>((r) => w.once('message', () => r()));
  await w.terminate();
  if (kind === 'futex') unmap(buf as ArrayBuffer);
  return ROUNDS / secs;
}

// Alternating runs, median of each: wake-up latency on a loaded 2-core machine swings widely.
const PING_RUNS = 3;
const pings: Record<'futex' | 'atomics', number[]> = { futex: [], atomics: [] };
for (let run = 0; run < PING_RUNS; run++) {
  pings.atomics.push(await pingPong('atomics'));
  if (status.loaded) pings.futex.push(await pingPong('futex'));
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
rows.push({ name: 'Atomics.wait ping-pong (round trips)', opsPerSec: median(pings.atomics), note: `two threads, SharedArrayBuffer, median of ${PING_RUNS}` });
if (status.loaded) {
  rows.push({ name: 'futex ping-pong (round trips)', opsPerSec: median(pings.futex), baseline: 'Atomics.wait ping-pong (round trips)', note: `two threads, mapShared arena, median of ${PING_RUNS}` });
}

// ---- 4. node:fs pread/pwrite vs the memcpy ceiling (bench/native-fs.ts) --------------------

rows.push(...await fsRows(plainSrc, (length) => alignedIn(new ArrayBuffer(length + 64), length), TIME_MS));

if (shm) unmap(shm);
rmSync(dir, { recursive: true, force: true });

// ---- targets ---------------------------------------------------------------------------------

const bw = (name: string): number | undefined => rows.find((r) => r.name === name)?.bytesPerSec;
const nat1 = bw('crc32c native 1 MiB');
const ts1 = bw('crc32c TS 1 MiB');
const sabCopy = bw('SharedArrayBuffer Buffer.copy 1 MiB');
const shmCopy = bw('mapShared Buffer.copy 1 MiB');
const sabScan = bw('SharedArrayBuffer scan 1 MiB');
const shmScan = bw('mapShared scan 1 MiB');
extra.targets = {
  'native crc32c >= 8 GB/s on 1 MiB': nat1 === undefined ? 'not measured (no native module)' : `${(nat1 / 1e9).toFixed(2)} GB/s: ${nat1 >= 8e9 ? 'met' : 'NOT met'}`,
  'TS crc32c >= 0.5 GB/s on 1 MiB': `${((ts1 ?? 0) / 1e9).toFixed(2)} GB/s: ${(ts1 ?? 0) >= 0.5e9 ? 'met' : 'NOT met'}`,
  'mapShared reads within 10 % of SharedArrayBuffer (Buffer.copy)': shmCopy === undefined || sabCopy === undefined ? 'not measured' : `${((shmCopy / sabCopy) * 100).toFixed(1)} % of SAB: ${shmCopy >= 0.9 * sabCopy ? 'met' : 'NOT met'}`,
  'mapShared reads within 10 % of SharedArrayBuffer (Int32 scan)': shmScan === undefined || sabScan === undefined ? 'not measured' : `${((shmScan / sabScan) * 100).toFixed(1)} % of SAB: ${shmScan >= 0.9 * sabScan ? 'met' : 'NOT met'}`,
  'note': 'copies out of a SharedArrayBuffer (Uint8Array.set, and Buffer.copy which uses it) go through V8\'s relaxed-atomic copy, several times slower than memcpy; a mapShared buffer is an ordinary ArrayBuffer and copies at memcpy speed',
};
report('native', rows, extra);
