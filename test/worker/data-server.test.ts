import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, mkdir, writeFile, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { WorkerHost } from '../../worker/index.js';
import { RpcClient } from '../../transports/rpc-client.js';
import { WorkerService } from '../../transports/protocol/worker.js';
import { ErrorCode, isTesseraError } from '../../core/errors.js';
import { BlockCache } from '../../core/block-cache.js';
import { MemTier } from '../../worker/mem-tier.js';
import { mapShared, nativeAvailable, unmap } from '../../native/index.js';
import { pattern, until } from './fixtures.js';

const KIB = 1024;
const MIB = 1024 * KIB;
let root = '';
let host: WorkerHost | undefined;
const clients: RpcClient[] = [];

test.before.each(async () => { root = await mkdtemp(join(tmpdir(), 'tessera-ds-')); });
test.after.each(async () => {
  for (const c of clients.splice(0)) await c.close();
  await host?.stop();
  host = undefined;
  await rm(root, { recursive: true, force: true });
});

async function startWorker(extra: Partial<Parameters<typeof WorkerHost.start>[0]> = {}): Promise<WorkerHost> {
  host = await WorkerHost.start({
    address: 'tcp://127.0.0.1:0',
    tiers: [{ alias: 'MEM', capacityBytes: 16 * MIB }, { alias: 'SSD', dirs: [{ path: join(root, 'ssd'), capacityBytes: 64 * MIB }] }],
    ...extra,
  });
  return host;
}

async function client(address: string, streamWindowBytes?: number) {
  const c = await RpcClient.connect(address, streamWindowBytes ? { limits: { streamWindowBytes } } : {});
  clients.push(c);
  return { c, w: c.service(WorkerService) };
}

async function download(dl: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of dl) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function upload(w: Awaited<ReturnType<typeof client>>['w'], blockId: number, bytes: Uint8Array, extra: object = {}) {
  const up = w.writeBlock({ blockId, reserveBytes: bytes.byteLength, ...extra });
  for (let at = 0; at < bytes.byteLength; at += 256 * KIB) await up.write(bytes.subarray(at, Math.min(at + 256 * KIB, bytes.byteLength)));
  return up.end();
}

test('a block written as a stream over TCP reads back whole and by range', async () => {
  const h = await startWorker();
  const { w } = await client(h.address);
  const bytes = pattern(1, 3 * MIB + 123);
  const res = await upload(w, 42, bytes);
  assert.equal(res, { blockId: 42, lengthBytes: bytes.byteLength, tier: 'MEM' });
  const dl = w.readBlock({ blockId: 42 });
  assert.ok((await download(dl)).equals(bytes));
  assert.equal((await dl.result).source, 'MEM');
  const part = w.readBlock({ blockId: 42, offsetBytes: MIB - 5, lengthBytes: MIB + 10 });
  assert.ok((await download(part)).equals(bytes.subarray(MIB - 5, 2 * MIB + 5)));
  assert.equal(await w.getBlockInfo({ blockId: 42 }), { blockId: 42, lengthBytes: bytes.byteLength, tier: 'MEM', pinned: false, persisted: true });
});

test('reads of a missing block or a range past its end fail with clear codes', async () => {
  const h = await startWorker();
  const { w } = await client(h.address);
  await upload(w, 1, pattern(1, 1000));
  try { await download(w.readBlock({ blockId: 2 })); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_BLOCK_NOT_FOUND'), String(e)); }
  try { await download(w.readBlock({ blockId: 1, offsetBytes: 900, lengthBytes: 200 })); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_INVALID_ARGUMENT'), String(e)); }
  try { await upload(w, 1, pattern(1, 10)); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_BLOCK_EXISTS'), String(e)); }
  try { await w.writeBlock({ blockId: 3, reserveBytes: 4 }).pipeFrom([new Uint8Array(5)]); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_BLOCK_TOO_LARGE'), String(e)); }
  assert.is(h.store.has(3), false, 'an aborted write leaves nothing');
});

test('short-circuit and stream reads return identical bytes (stream fallback without shm)', async () => {
  const h = await startWorker();
  const { w } = await client(h.address);
  const bytes = pattern(7, 2 * MIB + 64);
  await upload(w, 7, bytes);
  const streamed = await download(w.readBlock({ blockId: 7 }));
  const sc = await w.openShortCircuit({ blockId: 7 });
  if (h.memBacking === 'shm') {
    assert.is(sc.kind, 'shm');
    if (sc.kind !== 'shm') return;
    assert.ok(nativeAvailable());
    const map = mapShared(sc.path, sc.arenaBytes, { readOnly: true });
    try {
      const view = new Uint8Array(map, sc.offsetBytes, sc.lengthBytes);
      assert.ok(Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(streamed));
    } finally {
      unmap(map);
    }
    assert.is(h.leases.pinCount(), 1);
    assert.equal(await w.closeShortCircuit({ pinId: sc.pinId }), { released: true });
    assert.is(h.leases.pinCount(), 0);
    assert.is(sc.engine, true, 'clients may attach to the engine by default');
  } else {
    assert.equal(sc, { kind: 'none', reason: 'no-shm' });
  }
  assert.ok(streamed.equals(bytes));
});

test('the arena a short-circuit open names is a block engine another process can pin the block in; shortCircuitEngine: false says not to', async () => {
  const h = await startWorker();
  if (h.memBacking !== 'shm') return void assert.is(h.store.mem?.backing, 'sab');
  const { w } = await client(h.address);
  const bytes = pattern(8, MIB + 5);
  await upload(w, 8, bytes);
  const sc = await w.openShortCircuit({ blockId: 8 });
  if (sc.kind !== 'shm') return void assert.unreachable('a MEM block of an shm arena opens by short-circuit');
  await w.closeShortCircuit({ pinId: sc.pinId });
  assert.is(sc.engine, true);
  const engine = BlockCache.attach({ path: sc.path, byteLength: sc.arenaBytes });
  try {
    const view = engine.acquire(8);
    assert.ok(view, 'the block is in the engine under its id');
    assert.ok(Buffer.from(view!.bytes).equals(bytes));
    assert.is(view!.bytes.byteOffset, sc.offsetBytes, 'at the extent the open named');
    // The worker removes it while this owner holds it: the bytes stay until release.
    await w.removeBlock({ blockId: 8 });
    await upload(w, 9, pattern(9, MIB + 5));
    assert.ok(Buffer.from(view!.bytes).equals(bytes), 'still the removed block\'s bytes');
    view!.release();
    assert.is(engine.acquire(8), undefined);
  } finally {
    engine.close();
  }
  await h.stop();
  host = undefined;
  const h2 = await startWorker({ shortCircuitEngine: false });
  const { w: w2 } = await client(h2.address);
  await upload(w2, 8, bytes);
  const sc2 = await w2.openShortCircuit({ blockId: 8 });
  assert.is(sc2.kind === 'shm' && sc2.engine, false);
  if (sc2.kind === 'shm') await w2.closeShortCircuit({ pinId: sc2.pinId });
  try { await startWorker({ shortCircuitEngine: 'yes' as never }); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, ErrorCode.INVALID_ARGUMENT), String(e)); }
});

test('a process that attached to the engine and died holding a pin: MemTier.reapDeadOwners gives the pin back at once', async () => {
  if (!nativeAvailable()) return;
  // A tier of its own (no worker host, whose sweep would reap first).
  const mem = MemTier.create({ capacityBytes: 8 * MIB, backing: 'shm', lock: false, canEvict: () => true, onEvict: () => {} });
  try {
    assert.ok(mem.put(10, pattern(10, MIB)));
    // The engine's own first scan runs at its first 1 s tick (a timer that fires before this
    // one); the next is ownerLeaseMs / 2 (15 s) later, long after this test.
    await new Promise((r) => setTimeout(r, 1500));
    const blockCacheUrl = new URL('../../core/block-cache.js', import.meta.url).href;
    const code = `const { BlockCache } = await import(${JSON.stringify(blockCacheUrl)});
      const view = BlockCache.attach({ path: ${JSON.stringify(mem.shmPath)} }).acquire(10);
      process.stdout.write(view ? 'pinned\\n' : 'missing\\n');
      setInterval(() => {}, 1 << 30);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
        child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
      });
      assert.is(line, 'pinned');
      assert.is(mem.stats().pinnedBlocks, 1);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    assert.is(mem.stats().pinnedBlocks, 1, 'still held: the engine scans by itself only every ownerLeaseMs / 2');
    assert.is(mem.reapDeadOwners(), 1, 'the dead process\'s owner reaped');
    assert.is(mem.stats().pinnedBlocks, 0);
    assert.is(mem.reapDeadOwners(), 0);
  } finally {
    mem.close();
  }
});

test('a miss of a block of a persisted file is read from the UFS and cached per read type', async () => {
  const ufsDir = join(root, 'ufs');
  await mkdir(ufsDir);
  const file = pattern(3, 3 * MIB);
  await writeFile(join(ufsDir, 'data.bin'), file);
  const h = await startWorker();
  const { w } = await client(h.address);
  const ufs = (i: number) => ({ ufsUri: `file://${ufsDir}`, ufsPath: 'data.bin', blockOffsetBytes: i * MIB, blockLengthBytes: MIB });
  const noCache = w.readBlock({ blockId: 100, readType: 'NO_CACHE', ufs: ufs(0), offsetBytes: 10, lengthBytes: 1000 });
  assert.ok((await download(noCache)).equals(file.subarray(10, 1010)));
  assert.is((await noCache.result).source, 'UFS');
  assert.is(h.store.has(100), false, 'NO_CACHE leaves nothing behind');
  const cached = w.readBlock({ blockId: 101, readType: 'CACHE', ufs: ufs(1) });
  assert.ok((await download(cached)).equals(file.subarray(MIB, 2 * MIB)));
  assert.is(h.store.info(101)!.tier, 'MEM');
  const again = w.readBlock({ blockId: 101, ufs: ufs(1) });
  assert.ok((await download(again)).equals(file.subarray(MIB, 2 * MIB)));
  assert.is((await again.result).source, 'MEM', 'the second read is a hit');
  const [a, b] = await Promise.all([download(w.readBlock({ blockId: 102, ufs: ufs(2) })), download(w.readBlock({ blockId: 102, ufs: ufs(2) }))]);
  assert.ok(a.equals(file.subarray(2 * MIB)) && b.equals(a), 'concurrent misses of one block both get its bytes');
});

test('CACHE_THROUGH writes the UFS before commit, THROUGH bypasses the cache', async () => {
  const ufsDir = join(root, 'ufs');
  await mkdir(ufsDir);
  const h = await startWorker();
  const { w } = await client(h.address);
  const b0 = pattern(10, MIB);
  const b1 = pattern(11, 1000);
  const ufs = (path: string, off: number, len: number) => ({ ufsUri: ufsDir, ufsPath: path, blockOffsetBytes: off, blockLengthBytes: len });
  await upload(w, 200, b0, { writeType: 'CACHE_THROUGH', ufs: ufs('ct/file', 0, MIB) });
  await upload(w, 201, b1, { writeType: 'CACHE_THROUGH', ufs: ufs('ct/file', MIB, 1000) });
  assert.equal(await w.completeUfsFile({ ufsUri: ufsDir, ufsPath: 'ct/file' }), { lengthBytes: MIB + 1000 });
  assert.ok((await readFile(join(ufsDir, 'ct', 'file'))).equals(Buffer.concat([b0, b1])));
  assert.ok(h.store.has(200) && h.store.has(201));
  const res = await upload(w, 300, b1, { writeType: 'THROUGH', ufs: ufs('th', 0, 1000) });
  assert.equal(res.tier, 'UFS');
  await w.completeUfsFile({ ufsUri: ufsDir, ufsPath: 'th' });
  assert.ok((await readFile(join(ufsDir, 'th'))).equals(b1));
  assert.is(h.store.has(300), false);
  try { await upload(w, 301, b1, { writeType: 'THROUGH', ufs: ufs('gap', 5, 1000) }); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_INVALID_ARGUMENT'), String(e)); }
});

test('ASYNC_THROUGH blocks persist after a worker restart and stay sticky until then', async () => {
  const ufsDir = join(root, 'ufs-later');
  const tiers = [{ alias: 'MEM' as const, capacityBytes: 4 * MIB }, { alias: 'SSD' as const, dirs: [{ path: join(root, 'ssd'), capacityBytes: 64 * MIB }] }];
  let h = await startWorker({ tiers, persistRetryBaseMs: 20 });
  let { w, c } = await client(h.address);
  const b0 = pattern(20, MIB);
  const b1 = pattern(21, 500);
  await upload(w, 2 ** 24 * 5, b0, { writeType: 'ASYNC_THROUGH', tier: 'SSD' });
  await upload(w, 2 ** 24 * 5 + 1, b1, { writeType: 'ASYNC_THROUGH', tier: 'SSD' });
  assert.is(h.store.info(2 ** 24 * 5)!.persisted, false);
  // The UFS directory does not exist yet: the persist fails and is retried.
  await w.persistFile({ fileId: 5, ufsUri: ufsDir, ufsPath: 'f5', blockIds: [2 ** 24 * 5, 2 ** 24 * 5 + 1], lengthBytes: MIB + 500, blockSizeBytes: MIB });
  await new Promise((r) => setTimeout(r, 100));
  assert.is(h.persistQueue.pendingCount, 1);
  await c.close();
  clients.length = 0;
  await h.stop();
  await mkdir(ufsDir);
  h = await startWorker({ tiers, persistRetryBaseMs: 20 });
  assert.is(h.store.info(2 ** 24 * 5)!.persisted, false, 'still sticky after the restart');
  await h.persistQueue.idle();
  assert.ok((await readFile(join(ufsDir, 'f5'))).equals(Buffer.concat([b0, b1])));
  assert.is(h.store.info(2 ** 24 * 5)!.persisted, true);
  ({ w } = await client(h.address));
  assert.ok((await download(w.readBlock({ blockId: 2 ** 24 * 5 + 1 }))).equals(b1), 'blocks on disk survive the restart');
  assert.ok((await stat(join(root, 'ssd', 'worker-state.json'))).isFile());
});

test('a reader that pauses keeps the block locked until its stream ends, then gets every byte', async () => {
  const h = await startWorker();
  await upload((await client(h.address)).w, 9, pattern(9, 12 * MIB));
  const { w } = await client(h.address, MIB);
  const bytes = pattern(9, 12 * MIB);
  const dl = w.readBlock({ blockId: 9 });
  const it = dl[Symbol.asyncIterator]();
  const first = await it.next();
  assert.ok(!first.done);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(h.store.locks.readers(9), 1, 'the block stays locked by the unfinished reader');
  const rest: Buffer[] = [Buffer.from(first.value!)];
  for (let r = await it.next(); !r.done; r = await it.next()) rest.push(Buffer.from(r.value));
  assert.ok(Buffer.concat(rest).equals(bytes));
  await dl.result;
  assert.is(h.store.locks.readers(9), 0);
});

test('the pins of a client that disconnects are released, and the blocks can move again', async () => {
  const h = await startWorker();
  const writer = await client(h.address);
  await upload(writer.w, 1, pattern(1, 100 * KIB));
  await upload(writer.w, 2, pattern(2, 100 * KIB));
  const reader = await client(h.address);
  const a = await reader.w.openShortCircuit({ blockId: 1 });
  const b = await reader.w.openShortCircuit({ blockId: 2 });
  if (h.memBacking !== 'shm') {
    assert.equal([a.kind, b.kind], ['none', 'none']);
    return;
  }
  assert.is(h.leases.pinCount(), 2);
  let removed = false;
  const removal = h.store.remove(1).then((r) => { removed = r; });
  await new Promise((r) => setTimeout(r, 50));
  assert.is(removed, false, 'a pinned block is not removed under its reader');
  await reader.c.close();
  await until('pins released', () => h.leases.pinCount() === 0);
  await removal;
  assert.is(removed, true);
  assert.is(h.store.locks.readers(2), 0);
});

test('short-circuit pins whose lease is not renewed are released', async () => {
  const h = await startWorker({ leaseMs: 100 });
  const { w } = await client(h.address);
  await upload(w, 1, pattern(1, 10 * KIB));
  const sc = await w.openShortCircuit({ blockId: 1 });
  if (sc.kind !== 'shm') {
    assert.is(h.memBacking, 'sab');
    return;
  }
  assert.is(sc.leaseMs, 100);
  await until('the lease expires', () => h.leases.pinCount() === 0);
  assert.is(h.store.locks.readers(1), 0);
  try { await w.renewLease({}); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_LEASE_EXPIRED'), String(e)); }
  assert.equal(await w.closeShortCircuit({ pinId: sc.pinId }), { released: false });
});

test('the same service runs over inproc, and inproc clients count as same-host', async () => {
  const h = await startWorker({ extraAddresses: [`inproc://worker-ds-${process.pid}`] });
  const { w } = await client(`inproc://worker-ds-${process.pid}`);
  const bytes = pattern(5, MIB + 1);
  await upload(w, 5, bytes);
  assert.ok((await download(w.readBlock({ blockId: 5 }))).equals(bytes));
  const sc = await w.openShortCircuit({ blockId: 5 });
  assert.is(sc.kind, h.memBacking === 'shm' ? 'shm' : 'none');
  assert.equal(await w.health({}), { ok: true });
  const info = await w.getInfo({});
  assert.is(info.memBacking, h.memBacking);
  assert.is(info.blockCount, 1);
});

test.run();
