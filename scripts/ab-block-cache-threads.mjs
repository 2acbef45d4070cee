#!/usr/bin/env node
// A/B of builds of core/block-cache.js with THREADS worker_threads working on one cache at once
// (the multi-thread rows of bench/cache.bench.ts, in short): `put` does evicting 4 KiB puts
// into a 16 MiB SIEVE cache (each thread its own 16,384 keys), `acq` acquire+release of 4 KiB
// hits over 4,096 keys in a 64 MiB cache. Each run creates the cache, starts the threads, and
// reports total operations / wall time from the first thread's start to the last one's end;
// the builds run in turn, ROUNDS times. On a shared machine only the same round compares.
//
//   node scripts/ab-block-cache-threads.mjs put|acq THREADS ROUNDS OLD/block-cache.js NEW/block-cache.js ...
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const MIB = 1 << 20;
const WARM_OPS = 1 << 16;
const OPS = { put: 1 << 19, acq: 1 << 22 };

if (!isMainThread) {
  const { url, handle, seed, row } = workerData;
  const { BlockCache } = await import(url);
  const cache = BlockCache.attach(handle);
  const src = new Uint8Array(4096).fill(seed);
  const order = new Int32Array(65536);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < order.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; order[i] = x % 16384; }
  let i = 0;
  let sink = 0;
  const op = row === 'put'
    ? () => { cache.put(order[i++ & 65535] + seed * 1e6, src); }
    : () => { const v = cache.acquire(order[i++ & 65535] & 4095); sink += v.bytes[0]; v.release(); };
  for (let n = 0; n < WARM_OPS; n++) op();
  const t0 = performance.timeOrigin + performance.now();
  for (let n = 0; n < OPS[row]; n++) op();
  const t1 = performance.timeOrigin + performance.now();
  cache.close();
  parentPort.postMessage({ t0, t1, sink });
} else {
  const [row, threadsArg, roundsArg, ...paths] = process.argv.slice(2);
  const threads = Number(threadsArg);
  const rounds = Number(roundsArg);
  if (!(row in OPS) || !(threads >= 1) || !(rounds >= 1) || paths.length < 1) {
    console.error('usage: node scripts/ab-block-cache-threads.mjs put|acq THREADS ROUNDS BUILD/block-cache.js ...');
    process.exit(2);
  }
  const run = async (path) => {
    const url = pathToFileURL(resolve(path)).href;
    const { BlockCache } = await import(url);
    const cache = BlockCache.create({ capacityBytes: (row === 'put' ? 16 : 64) * MIB, policy: 'sieve' });
    if (row === 'acq') for (let k = 0; k < 4096; k++) cache.put(k, new Uint8Array(4096).fill(k & 255));
    const res = await Promise.all(Array.from({ length: threads }, (_, t) => new Promise((done, fail) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { url, handle: cache.handle, seed: t + 1, row } });
      w.once('message', done);
      w.once('error', fail);
    })));
    cache.close();
    const wallMs = Math.max(...res.map((r) => r.t1)) - Math.min(...res.map((r) => r.t0));
    return (threads * OPS[row]) / wallMs / 1000;
  };
  const rates = paths.map(() => []);
  for (let r = 0; r < rounds; r++) for (let k = 0; k < paths.length; k++) rates[k].push(await run(paths[k]));
  for (let k = 0; k < paths.length; k++) console.log(`${row}, ${threads} thread(s), ${paths[k]}: ${rates[k].map((x) => x.toFixed(2)).join(' ')} M ops/s`);
}
