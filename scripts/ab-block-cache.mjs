#!/usr/bin/env node
// In-process A/B of two builds of core/block-cache.js on the hit rows of bench/cache.bench.ts
// (4 KiB blocks, 4096 keys in a 64 MiB SIEVE cache, the bench's random key order, batches of
// 256 calls, each reading byte 0). The first build is the reference. Rounds run the builds
// back to back, in alternating order, so that load from other processes hits all of them;
// the line per row gives each build's median ops/s, its 80th percentile, and the median of
// its per-round ratio to the reference. On a shared machine only ratios mean much.
//
//   node --expose-gc scripts/ab-block-cache.mjs ROUNDS MS ROWS OLD/block-cache.js NEW/block-cache.js ...
//   e.g. ... 16 100 acq,handle,with,get /tmp/tessera-old/dist/core/block-cache.js dist/core/block-cache.js
//
// ROWS: acq (acquire + view.release), handle (acquireHandle, handleBytes, releaseHandle),
// with (withView), get (copy), getInto; put: evicting puts of 4 KiB into a 16 MiB cache over
// 16,384 keys, as the bench's evicting put row. An old build: `git worktree add /tmp/tessera-old REV`,
// link node_modules into it and run tsc there.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { seededRandom } from '../dist/core/random.js';

const [rounds, roundMs] = [Number(process.argv[2]), Number(process.argv[3])];
const rows = (process.argv[4] ?? '').split(',');
const paths = process.argv.slice(5);
if (!(rounds > 0) || !(roundMs > 0) || paths.length < 2) {
  console.error('usage: node --expose-gc scripts/ab-block-cache.mjs ROUNDS MS ROWS REF.js OTHER.js ...');
  process.exit(2);
}
const mods = await Promise.all(paths.map((p) => import(pathToFileURL(resolve(p)).href)));
const ORDER_MASK = (1 << 16) - 1;
const BATCH = 256;

function randomOrder(keys, seed) {
  const rand = seededRandom(seed);
  const order = new Int32Array(ORDER_MASK + 1);
  for (let i = 0; i < order.length; i++) order[i] = Math.floor(rand() * keys);
  return order;
}

function slices(count, bytes, seed) {
  const stride = Math.ceil(bytes / 4096) * 4096;
  const all = new Uint8Array(stride * count);
  const rand = seededRandom(seed);
  for (let i = 0; i < all.length; i += 4096) all.fill(Math.floor(rand() * 256), i, i + 4096);
  return Array.from({ length: count }, (_, i) => all.subarray(i * stride, i * stride + bytes));
}

const values = slices(64, 4096, 7);
const order = randomOrder(4096, 11);
const target = slices(1, 4096, 3)[0];
const evictOrder = randomOrder(16_384, 13);
const BODY = {
  acq: 'const v = cache.acquire(order[i++ & 65535]); sink += v.bytes[0]; v.release();',
  handle: 'const h = cache.acquireHandle(order[i++ & 65535]); sink += cache.handleBytes(h)[0]; cache.releaseHandle(h);',
  with: 'sink += cache.withView(order[i++ & 65535], read0);',
  get: 'sink += cache.get(order[i++ & 65535])[0];',
  getInto: 'sink += cache.getInto(order[i++ & 65535], target);',
  put: 'const k = order[i++ & 65535]; cache.put(k, values[k & 63]);',
};

let tag = 0;
/** A filled cache of `mod` and a batch function of its own (new Function: no shared feedback). */
function make(mod, row) {
  const put = row === 'put';
  const cache = mod.BlockCache.create({ capacityBytes: (put ? 16 : 64) * 1024 * 1024, policy: 'sieve' });
  for (let k = 0; k < 4096; k++) cache.put(k, values[k % 64]);
  const src = `/* build ${tag++} */ let i = 0; let sink = 0; const read0 = (b) => b[0];
    return { fn() { for (let b = 0; b < ${BATCH}; b++) { ${BODY[row]} } }, sink: () => sink };`;
  return { cache, ...new Function('cache', 'order', 'target', 'values', src)(cache, put ? evictOrder : order, target, values) };
}

function opsPerSec(fn, ms) {
  const t0 = performance.now();
  let batches = 0;
  let t;
  do {
    for (let k = 0; k < 16; k++) fn();
    batches += 16;
    t = performance.now();
  } while (t - t0 < ms);
  return (batches * BATCH) / ((t - t0) / 1000);
}

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => sorted(xs)[xs.length >> 1];
const p80 = (xs) => sorted(xs)[Math.floor(xs.length * 0.8)];
const mops = (x) => `${(x / 1e6).toFixed(2)}M`;

for (const row of rows) {
  if (BODY[row] === undefined) throw new Error(`unknown row ${row}`);
  const builds = mods.map((m) => make(m, row));
  for (const b of builds) opsPerSec(b.fn, 300); // warm-up: optimised before the rounds
  const rates = builds.map(() => []);
  const ratios = builds.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const runOrder = builds.map((_, k) => k);
    if (r & 1) runOrder.reverse();
    const got = [];
    for (const k of runOrder) got[k] = opsPerSec(builds[k].fn, roundMs);
    got.forEach((x, k) => { rates[k].push(x); ratios[k].push(x / got[0]); });
  }
  for (const b of builds) b.cache.close();
  console.log(`${row}: ${paths.map((p, k) => `${p} ${mops(median(rates[k]))} (p80 ${mops(p80(rates[k]))}) x${median(ratios[k]).toFixed(3)}`).join(' | ')}`);
}
