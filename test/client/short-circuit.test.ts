// Short-circuit reads: a client on the worker's host reads blocks straight out of the worker's
// /dev/shm arena (native module), byte-exact, sequentially and positionally; without the native
// module the same reads go by stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nativeAvailable } from '../../native/index.js';
import { BlockCache } from '../../core/block-cache.js';
import { ErrorCode, isTesseraError } from '../../core/errors.js';
import { connect } from '../../client/connect.js';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLIENT_CURSOR_MAX_AGE_MS, CLIENT_ENGINE_RETRY_MS, CLIENT_VIEW_YIELD_BYTES, WORKER_LEASE_SWEEP_INTERVAL_MS } from '../../core/constants.js';
import { MIB, pattern, tcpCluster, type TcpCluster } from './cluster-fixture.js';

async function waitUntil(ok: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) if (ok()) return true;
  return ok();
}

let c: TcpCluster;

test.before(async () => { c = await tcpCluster({ workers: 1, memBacking: nativeAvailable() ? 'shm' : 'sab' }); });
test.after(async () => { await c.close(); });

test('a same-host client reads by short-circuit when the worker arena is shared memory, byte-exact', async () => {
  const data = pattern(5 * MIB + 3, 41);
  await c.fs.writeFile('/sc/f', data, { blockSize: 2 * MIB });
  assert.ok((await c.fs.readFile('/sc/f')).equals(data));
  const [w] = await c.fs.getWorkers();
  const link = await c.fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname });
  assert.is(link.shortCircuit, nativeAvailable(), 'short-circuit exactly when the native module maps the arena');
  assert.is(c.workers[0]!.info().memBacking, nativeAvailable() ? 'shm' : 'sab');
});

test('sequential small reads and positional reads through short-circuit return the right bytes', async () => {
  const data = pattern(5 * MIB + 3, 41);
  const input = await c.fs.openFile('/sc/f');
  const parts: Buffer[] = [];
  for (;;) {
    const b = Buffer.alloc(123_457);
    const n = await input.read(b);
    if (n === 0) break;
    parts.push(b.subarray(0, n));
  }
  assert.ok(Buffer.concat(parts).equals(data));
  const b = Buffer.alloc(3 * MIB);
  assert.is(await input.read(b, MIB + 7), 3 * MIB);
  assert.ok(b.equals(data.subarray(MIB + 7, 4 * MIB + 7)));
  const kept: Buffer[] = [];
  for await (const chunk of input.chunks(0, data.length)) kept.push(chunk as Buffer);
  // Kept chunks are copies: still right after the reads that followed them.
  assert.ok(Buffer.concat(kept).equals(data));
  await input.close();
});

test('a sequential short-circuit reader pins the next block as soon as it reads the first (the open is sent, not held until the block runs out)', async () => {
  if (!nativeAvailable()) { assert.is(c.workers[0]!.info().memBacking, 'sab'); return; }
  // Blocks well over the stream window (8 MiB), so the window rule alone would not read ahead yet.
  const data = pattern(40 * MIB, 43);
  await c.fs.writeFile('/sc/ahead', data, { blockSize: 20 * MIB });
  // Blocks pinned by anyone (the client pins in the worker's engine once it is attached).
  const pinned = (): number => c.workers[0]!.store.mem!.stats().pinnedBlocks;
  const before = pinned();
  // Which reads are marked as read ahead (their short-circuit open is sent at once, sendNow).
  const [w] = await c.fs.getWorkers();
  const link = await c.fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname });
  const readBlock = link.readBlock.bind(link);
  const asked: Array<[number, boolean]> = [];
  link.readBlock = (req) => { asked.push([req.offsetBytes, req.ahead === true]); return readBlock(req); };
  const input = await c.fs.openFile('/sc/ahead');
  const b = Buffer.alloc(4096);
  assert.is(await input.read(b), 4096);
  assert.ok(b.equals(data.subarray(0, 4096)));
  // Block 0 is 20 MiB, far from its end: only the read-ahead-at-once rule opens block 1 now.
  assert.ok(await waitUntil(() => pinned() === before + 2), `block 0's pin and block 1's read ahead after the first read (pins ${pinned() - before})`);
  const rest = Buffer.alloc(data.length - 4096);
  assert.is(await input.read(rest), rest.length);
  assert.ok(rest.equals(data.subarray(4096)));
  await input.close();
  link.readBlock = readBlock;
  assert.equal(asked, [[0, false], [0, true]], 'block 0 read as asked, block 1 as a read ahead');
  assert.ok(await waitUntil(() => pinned() === before), 'both pins given back on close');
});

test('a short-circuit reader lets the event loop run every CLIENT_VIEW_YIELD_BYTES while it reads from a mapped block', async () => {
  if (!nativeAvailable()) { assert.is(c.workers[0]!.info().memBacking, 'sab'); return; }
  const data = pattern(40 * MIB, 47);
  await c.fs.writeFile('/sc/yield', data, { blockSize: 40 * MIB });
  const input = await c.fs.openFile('/sc/yield');
  const b = Buffer.alloc(64 * 1024);
  let at = 0;
  assert.is(await input.read(b), b.length);
  at += b.length;
  // Reads from the mapped view resolve in microtasks only: without the periodic yield this
  // immediate would run only when the block (40 MiB) ran out.
  let firedAt = -1;
  setImmediate(() => { firedAt = at; });
  while (at < data.length) {
    const n = await input.read(b);
    assert.ok(b.subarray(0, n).equals(data.subarray(at, at + n)));
    at += n;
  }
  await input.close();
  assert.ok(firedAt > 0 && firedAt <= b.length + CLIENT_VIEW_YIELD_BYTES, `the event loop ran at ${firedAt}, within ${CLIENT_VIEW_YIELD_BYTES} bytes`);
});

test('a short-circuit reader that idles gives its pins back, and reads on from the right byte', async () => {
  if (!nativeAvailable()) { assert.is(c.workers[0]!.info().memBacking, 'sab'); return; }
  const data = pattern(6 * MIB, 73);
  await c.fs.writeFile('/sc/idle', data, { blockSize: 3 * MIB });
  const pinned = (): number => c.workers[0]!.store.mem!.stats().pinnedBlocks;
  const before = pinned();
  const input = await c.fs.openFile('/sc/idle');
  const b = Buffer.alloc(64 * 1024);
  let at = 0;
  // Many small reads of one held view (the fast path), each one putting the idle release off.
  for (let i = 0; i < 8; i++) {
    assert.is(await input.read(b), b.length);
    assert.ok(b.equals(data.subarray(at, at + b.length)));
    at += b.length;
  }
  assert.ok(pinned() > before, 'the block (and the next, read ahead) pinned while reading');
  await new Promise((r) => setTimeout(r, CLIENT_CURSOR_MAX_AGE_MS + 300));
  assert.ok(await waitUntil(() => pinned() === before), 'pins given back after the reader idled');
  const rest = Buffer.alloc(data.length - at);
  assert.is(await input.read(rest), rest.length);
  assert.ok(rest.equals(data.subarray(at)));
  await input.close();
  assert.ok(await waitUntil(() => pinned() === before));
});

test('once attached to the worker\'s engine, a client re-reads a cached file with no call to the worker, and its pins are the engine\'s', async () => {
  if (!nativeAvailable()) { assert.is(c.workers[0]!.info().memBacking, 'sab'); return; }
  const data = pattern(9 * MIB + 11, 53);
  await c.fs.writeFile('/sc/engine', data, { blockSize: 2 * MIB });
  assert.ok((await c.fs.readFile('/sc/engine')).equals(data));
  const worker = c.workers[0]!;
  const [w] = await c.fs.getWorkers();
  const link = await c.fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname }) as { enginePath?: string };
  assert.is(link.enginePath, worker.store.mem!.shmPath, 'the link is attached to the worker\'s arena');
  // Every short-circuit open the worker serves adds a lease pin: count them.
  const add = worker.leases.add.bind(worker.leases);
  let opens = 0;
  worker.leases.add = (...args) => { opens++; return add(...args); };
  try {
    assert.ok((await c.fs.readFile('/sc/engine')).equals(data));
    const input = await c.fs.openFile('/sc/engine');
    const b = Buffer.alloc(MIB);
    assert.is(await input.read(b, 5 * MIB + 3), MIB);
    assert.ok(b.equals(data.subarray(5 * MIB + 3, 6 * MIB + 3)));
    await input.close();
  } finally {
    worker.leases.add = add;
  }
  assert.is(opens, 0, 'no open went to the worker');
  assert.is(worker.leases.pinCount(), 0);
  assert.ok(await waitUntil(() => worker.store.mem!.stats().pinnedBlocks === 0), 'every engine pin released');
});

test('an engine-pinned chunk keeps its bytes while the worker removes the block and reuses the room', async () => {
  if (!nativeAvailable()) { assert.is(c.workers[0]!.info().memBacking, 'sab'); return; }
  const data = pattern(4 * MIB, 59);
  await c.fs.writeFile('/sc/removed', data, { blockSize: 4 * MIB });
  assert.ok((await c.fs.readFile('/sc/removed')).equals(data));
  const [info] = (await c.fs.getBlockLocations('/sc/removed')).blocks;
  const [w] = await c.fs.getWorkers();
  const link = await c.fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname });
  const it = link.readBlock({ blockId: info!.blockId, offsetBytes: 0, lengthBytes: data.length, readType: 'CACHE' })[Symbol.asyncIterator]();
  const first = await it.next();
  assert.ok(!first.done && Buffer.from(first.value).equals(data));
  await c.fs.delete('/sc/removed');
  await waitUntil(() => !c.workers[0]!.store.has(info!.blockId));
  assert.is(c.workers[0]!.store.has(info!.blockId), false, 'the worker dropped the block');
  // Fill the MEM tier over again: the held extent is not handed out while the chunk is pinned.
  await c.fs.writeFile('/sc/filler', pattern(48 * MIB, 61), { blockSize: 4 * MIB });
  assert.ok(Buffer.from(first.value!).equals(data), 'the chunk still holds the removed block\'s bytes');
  assert.ok((await it.next()).done);
  await c.fs.delete('/sc/filler');
});

test('a client that finds every owner slot of the engine taken reads by one open per block, the same bytes, and attaches once a slot is free', async () => {
  if (!nativeAvailable()) return;
  const worker = c.workers[0]!;
  const data = pattern(3 * MIB + 9, 79);
  await c.fs.writeFile('/sc/slots', data, { blockSize: 2 * MIB });
  // Take every free owner slot of the worker's engine (32 by default).
  const taken: BlockCache[] = [];
  try {
    for (;;) taken.push(BlockCache.attach({ path: worker.store.mem!.shmPath! }));
  } catch (err) {
    assert.ok(isTesseraError(err, ErrorCode.LIMIT_EXCEEDED), String(err));
  }
  const fs2 = await connect(c.master.address);
  try {
    const add = worker.leases.add.bind(worker.leases);
    let opens = 0;
    worker.leases.add = (...args) => { opens++; return add(...args); };
    try {
      assert.ok((await fs2.readFile('/sc/slots')).equals(data));
      assert.ok((await fs2.readFile('/sc/slots')).equals(data));
    } finally {
      worker.leases.add = add;
    }
    assert.is(opens, 4, 'two blocks, twice, each opened by the worker');
    const [w] = await fs2.getWorkers();
    const link = await fs2._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname }) as { enginePath?: string; shortCircuit: boolean };
    assert.is(link.shortCircuit, true, 'still short-circuit, by open');
    assert.is(link.enginePath, undefined);
    // Slots free up; after CLIENT_ENGINE_RETRY_MS the next open's answer attaches.
    for (const t of taken.splice(0)) t.close();
    await new Promise((r) => setTimeout(r, CLIENT_ENGINE_RETRY_MS + 100));
    assert.ok((await fs2.readFile('/sc/slots')).equals(data));
    assert.is(link.enginePath, worker.store.mem!.shmPath, 'attached by the first open after the wait');
    opens = 0;
    worker.leases.add = (...args) => { opens++; return add(...args); };
    try {
      assert.ok((await fs2.readFile('/sc/slots')).equals(data));
    } finally {
      worker.leases.add = add;
    }
    assert.is(opens, 0, 'both blocks pinned in the engine');
  } finally {
    for (const t of taken) t.close();
    await fs2.close();
  }
});

test('clients in several worker_threads of one process each attach to the engine and read the same bytes at once', async () => {
  if (!nativeAvailable()) return;
  const data = pattern(12 * MIB + 5, 89);
  await c.fs.writeFile('/sc/threads', data, { blockSize: 4 * MIB });
  const want = createHash('sha256').update(data).digest('hex');
  const mem = c.workers[0]!.store.mem!;
  const before = mem.stats().pinnedBlocks;
  const connectUrl = new URL('../../client/connect.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { createHash } = require('node:crypto');
    (async () => {
      const { connect } = await import(workerData.connectUrl);
      const fs = await connect(workerData.master);
      const hashes = [];
      for (let i = 0; i < 3; i++) hashes.push(createHash('sha256').update(await fs.readFile('/sc/threads')).digest('hex'));
      const [w] = await fs.getWorkers();
      const link = await fs._link({ workerId: w.workerId, address: w.address, hostname: w.hostname });
      const engine = link.enginePath ?? null;
      await fs.close();
      parentPort.postMessage({ hashes, engine });
    })().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));`;
  const results = await Promise.all([0, 1, 2].map(() => new Promise<{ hashes?: string[]; engine?: string | null; error?: string }>((resolve, reject) => {
    const t = new Worker(code, { eval: true, workerData: { connectUrl, master: c.master.address } });
    t.once('message', (m) => { resolve(m); void t.terminate(); });
    t.once('error', reject);
  })));
  for (const r of results) {
    assert.is(r.error, undefined, r.error);
    assert.equal(r.hashes, [want, want, want]);
    assert.is(r.engine, mem.shmPath, 'each thread attached');
  }
  assert.ok(await waitUntil(() => mem.stats().pinnedBlocks === before), 'every thread\'s pins released when its client closed');
  await c.fs.delete('/sc/threads');
});

test('a same-host client process killed while it holds engine pins: the worker gets the room back', async () => {
  if (!nativeAvailable()) return;
  const data = pattern(8 * MIB, 83);
  await c.fs.writeFile('/sc/killed', data, { blockSize: 4 * MIB });
  const mem = c.workers[0]!.store.mem!;
  const before = mem.stats().pinnedBlocks;
  const child = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'sc-reader-child.js'), c.master.address, '/sc/killed'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]!); });
      child.once('exit', (code) => reject(new Error(`reader child exited with ${code}`)));
    });
    const { engine, heldBytes } = JSON.parse(line) as { engine: string | null; heldBytes: number };
    assert.is(engine, mem.shmPath, 'the child pins in the worker\'s engine');
    assert.is(heldBytes, 4 * MIB);
    assert.is(mem.stats().pinnedBlocks, before + 1, 'the block it holds is pinned');
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  // The worker reaps dead engine owners every WORKER_LEASE_SWEEP_INTERVAL_MS: a dead process is
  // found by its /proc entry (the engine's own scan runs only every ownerLeaseMs / 2, 15 s).
  assert.ok(await waitUntil(() => mem.stats().pinnedBlocks === before, WORKER_LEASE_SWEEP_INTERVAL_MS * 8), 'the dead client\'s pins released');
  await c.fs.delete('/sc/killed');
});

test('a worker started with shortCircuitEngine: false is read by one open per block, read-only, and the client never attaches', async () => {
  if (!nativeAvailable()) return;
  const c2 = await tcpCluster({ workers: 1, memBacking: 'shm', shortCircuitEngine: false });
  try {
    const data = pattern(5 * MIB + 1, 67);
    await c2.fs.writeFile('/f', data, { blockSize: 2 * MIB });
    const worker = c2.workers[0]!;
    const add = worker.leases.add.bind(worker.leases);
    let opens = 0;
    worker.leases.add = (...args) => { opens++; return add(...args); };
    assert.ok((await c2.fs.readFile('/f')).equals(data));
    assert.ok((await c2.fs.readFile('/f')).equals(data));
    assert.is(opens, 6, 'three blocks, twice, each opened by the worker');
    const [w] = await c2.fs.getWorkers();
    const link = await c2.fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname }) as { enginePath?: string; shortCircuit: boolean };
    assert.is(link.shortCircuit, true);
    assert.is(link.enginePath, undefined);
  } finally {
    await c2.close();
  }
});

test('when the worker stops, a chunk pinned in its engine stays readable; the link then lets the engine go', async () => {
  if (!nativeAvailable()) return;
  const c2 = await tcpCluster({ workers: 1, memBacking: 'shm' });
  try {
    const data = pattern(3 * MIB, 71);
    await c2.fs.writeFile('/f', data, { blockSize: 3 * MIB });
    assert.ok((await c2.fs.readFile('/f')).equals(data));
    const [info] = (await c2.fs.getBlockLocations('/f')).blocks;
    const [w] = await c2.fs.getWorkers();
    const link = await c2.fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname }) as Awaited<ReturnType<typeof c2.fs._link>> & { enginePath?: string };
    assert.ok(link.enginePath);
    const req = { blockId: info!.blockId, offsetBytes: 0, lengthBytes: data.length, readType: 'CACHE' as const };
    const it = link.readBlock(req)[Symbol.asyncIterator]();
    const held = await it.next();
    await c2.workers[0]!.stop();
    assert.ok(Buffer.from(held.value!).equals(data), 'readable and unchanged after the worker closed its arena');
    // The next read finds the engine closed, lets it go, and asks the (stopped) worker.
    let failed = false;
    try {
      for await (const _ of link.readBlock(req)) { /* drain */ }
    } catch {
      failed = true;
    }
    assert.ok(failed, 'nothing to read from a stopped worker');
    assert.is(link.enginePath, undefined, 'detached');
    assert.ok(Buffer.from(held.value!).equals(data), 'the held chunk outlives the detach');
    assert.ok((await it.next()).done);
    assert.is(held.value!.byteLength, 0, 'unmapped once its last pin was released');
  } finally {
    await c2.close();
  }
});

test.run();
