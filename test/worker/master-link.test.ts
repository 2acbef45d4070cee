/**
 * A WorkerHost with a real MasterHost over TCP: registration with a full report, block commits
 * becoming locations, commands (delete, persist) carried out, re-registration after a master
 * restart, and an ASYNC_THROUGH persist that survives a worker restart.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { MasterHost } from '../../master/host.js';
import { WorkerHost, type WorkerHostOptions } from '../../worker/index.js';
import { RpcClient } from '../../transports/rpc-client.js';
import { MasterService } from '../../transports/protocol/master.js';
import { WorkerService } from '../../transports/protocol/worker.js';
import { isTesseraError } from '../../core/errors.js';
import { pattern, perTestScratch, until } from './fixtures.js';

const MIB = 1024 * 1024;
const { dir, defer, rpc } = perTestScratch(test, 'tessera-ml-');

async function startMaster(address = 'tcp://127.0.0.1:0', extra: Partial<Parameters<typeof MasterHost.start>[0]> = {}): Promise<MasterHost> {
  const m = await MasterHost.start({ address, journalDir: dir('journal'), format: true, tickIntervalMs: 0, ...extra });
  defer(() => m.stop());
  return m;
}

async function startWorker(masterAddress: string, extra: Partial<WorkerHostOptions> = {}): Promise<WorkerHost> {
  const w = await WorkerHost.start({
    masterAddress, address: 'tcp://127.0.0.1:0', heartbeatIntervalMs: 50,
    onError: (e) => { if (process.env.DEBUG_WORKER) console.error('worker error:', e); },
    tiers: [{ alias: 'MEM', capacityBytes: 8 * MIB }, { alias: 'SSD', dirs: [{ path: dir('ssd'), capacityBytes: 64 * MIB }] }],
    ...extra,
  });
  defer(() => w.stop());
  return w;
}

async function writeFileThroughWorker(mc: RpcClient, worker: WorkerHost, path: string, bytes: Buffer, extra: object = {}, createExtra: object = {}): Promise<number> {
  const master = mc.service(MasterService);
  await master.createFile({ path, recursive: true, blockSizeBytes: 4 * MIB, ...createExtra });
  const { blockId } = await master.getNewBlockId({ path });
  const w = (await rpc(worker.address)).service(WorkerService);
  await w.writeBlock({ blockId, reserveBytes: bytes.byteLength, ...extra }).pipeFrom([bytes]);
  await master.completeFile({ path, lengthBytes: bytes.byteLength });
  return blockId;
}

test('a worker registers with a real master over TCP; committed blocks become locations; a delete reaches it', async () => {
  const m = await startMaster();
  const w = await startWorker(m.address);
  assert.ok(w.masterLink!.registered);
  const mc = await rpc(m.address);
  const master = mc.service(MasterService);
  const workers = await master.getWorkers({});
  assert.equal(workers.map((x) => [x.address, x.state]), [[w.address, 'LIVE']]);
  const blockId = await writeFileThroughWorker(mc, w, '/a/file', pattern(1, 3 * MIB));
  const locs = await master.getBlockLocations({ path: '/a/file' });
  assert.equal(locs.blocks.map((b) => [b.blockId, b.lengthBytes, b.locations.map((l) => l.address)]), [[blockId, 3 * MIB, [w.address]]]);
  await until('a heartbeat carries capacity', async () => (await master.getWorkers({}))[0]!.usedBytes >= 3 * MIB);
  // A block of a file the master does not know is refused and not kept.
  const wc = (await rpc(w.address)).service(WorkerService);
  try {
    await wc.writeBlock({ blockId: 999 * 2 ** 24, reserveBytes: 10 }).pipeFrom([new Uint8Array(10)]);
    assert.unreachable();
  } catch (e) {
    assert.ok(isTesseraError(e, 'TESSERA_ERR_FILE_NOT_FOUND'), String(e));
  }
  assert.is(w.store.has(999 * 2 ** 24), false);
  await master.delete({ path: '/a/file' });
  await until('the delete command removes the block', () => !w.store.has(blockId));
});

test('a worker whose master is down starts serving and registers once the master is up', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const address = `tcp://127.0.0.1:${port}`;
  const w = await startWorker(address);
  assert.is(w.masterLink!.registered, false);
  const wc = (await rpc(w.address)).service(WorkerService);
  assert.equal(await wc.health({}), { ok: true });
  const m = await startMaster(address);
  await until('the worker registers', () => w.masterLink!.registered);
  const mc = await rpc(m.address);
  assert.equal((await mc.service(MasterService).getWorkers({})).map((x) => x.address), [w.address]);
});

test('a delete waits for a short-circuit reader while heartbeats go on', async () => {
  const m = await startMaster();
  const w = await startWorker(m.address);
  const mc = await rpc(m.address);
  const master = mc.service(MasterService);
  const blockId = await writeFileThroughWorker(mc, w, '/sc/file', pattern(6, 100_000));
  const wc = (await rpc(w.address)).service(WorkerService);
  const sc = await wc.openShortCircuit({ blockId });
  await master.delete({ path: '/sc/file' });
  if (sc.kind === 'shm') {
    const beats = w.masterLink!.heartbeats;
    await until('heartbeats continue while the delete waits', () => w.masterLink!.heartbeats >= beats + 3);
    assert.ok(w.store.has(blockId), 'the pinned block stays until its reader lets go');
    assert.equal(await wc.closeShortCircuit({ pinId: sc.pinId }), { released: true });
  }
  await until('the block is deleted', () => !w.store.has(blockId));
});

test('the worker registers again with its full block report after the master restarts', async () => {
  let m = await startMaster();
  const address = m.address;
  const w = await startWorker(address);
  const mc = await rpc(address);
  const blockId = await writeFileThroughWorker(mc, w, '/r/file', pattern(2, MIB));
  await mc.close();
  await m.stop();
  m = await startMaster(address);
  const mc2 = await rpc(address);
  const master = mc2.service(MasterService);
  await until('locations return after re-registration', async () => {
    const locs = await master.getBlockLocations({ path: '/r/file' });
    return locs.blocks[0]!.locations.some((l) => l.address === w.address);
  });
  assert.ok(w.masterLink!.registrations >= 2);
  assert.ok(w.store.has(blockId));
});

test('an ASYNC_THROUGH file is persisted on the master\'s command even across a worker restart', async () => {
  const ufsDir = dir('ufs');
  await mkdir(ufsDir);
  const m = await startMaster();
  const mc = await rpc(m.address);
  const master = mc.service(MasterService);
  await master.mount({ path: '/mnt', ufsUri: ufsDir });
  // No heartbeat for a minute: the persist command waits at the master for this worker.
  let w = await startWorker(m.address, { heartbeatIntervalMs: 60_000 });
  const bytes = pattern(3, 2 * MIB + 17);
  const blockId = await writeFileThroughWorker(mc, w, '/mnt/out/f', bytes, { writeType: 'ASYNC_THROUGH', tier: 'SSD' }, { persistenceState: 'TO_BE_PERSISTED' });
  assert.is(w.store.info(blockId)!.persisted, false);
  assert.is((await master.getStatus({ path: '/mnt/out/f' })).persistenceState, 'TO_BE_PERSISTED');
  const workerAddress = w.address;
  await w.stop();
  w = await startWorker(m.address, { heartbeatIntervalMs: 50, address: workerAddress });
  assert.is(w.store.info(blockId)!.persisted, false, 'the restarted worker still knows the block is not persisted');
  await until('the master learns the file is persisted', async () => (await master.getStatus({ path: '/mnt/out/f' })).persistenceState === 'PERSISTED');
  assert.ok((await readFile(join(ufsDir, 'out', 'f'))).equals(bytes));
  assert.is(w.store.info(blockId)!.persisted, true);
});

test('a worker the master declared lost registers again on its next heartbeat', async () => {
  const m = await startMaster('tcp://127.0.0.1:0', { workerTimeoutMs: 200, tickIntervalMs: 50 });
  const w = await startWorker(m.address, { heartbeatIntervalMs: 60_000 });
  const mc = await rpc(m.address);
  const master = mc.service(MasterService);
  await writeFileThroughWorker(mc, w, '/lost/file', pattern(4, 1000));
  await until('the master declares the silent worker lost', async () => (await master.getWorkers({}))[0]!.state === 'LOST');
  assert.equal((await master.getBlockLocations({ path: '/lost/file' })).blocks[0]!.locations, []);
  await w.masterLink!.beatNow();
  assert.is(w.masterLink!.registrations, 2);
  const locs = await master.getBlockLocations({ path: '/lost/file' });
  assert.equal(locs.blocks[0]!.locations.map((l) => l.address), [w.address]);
});

test('load and free from the master reach the worker: blocks are read from the UFS, then dropped', async () => {
  const ufsDir = dir('ufs');
  await mkdir(join(ufsDir, 'in'), { recursive: true });
  const bytes = pattern(5, 5 * MIB + 3);
  await writeFile(join(ufsDir, 'in', 'big'), bytes);
  const m = await startMaster();
  const mc = await rpc(m.address);
  const master = mc.service(MasterService);
  await master.mount({ path: '/mnt', ufsUri: ufsDir });
  const w = await startWorker(m.address);
  const status = await master.getStatus({ path: '/mnt/in/big' });
  assert.is(status.persistenceState, 'PERSISTED');
  const { blockCount } = await master.load({ path: '/mnt/in/big' });
  assert.ok(blockCount >= 1);
  await until('every block is cached', () => status.blockIds.every((id) => w.store.has(id)));
  const wc = (await rpc(w.address)).service(WorkerService);
  const parts: Buffer[] = [];
  for (const id of status.blockIds) for await (const c of wc.readBlock({ blockId: id })) parts.push(Buffer.from(c));
  assert.ok(Buffer.concat(parts).equals(bytes), 'loaded blocks hold the file');
  await until('locations reach the master', async () => (await master.getBlockLocations({ path: '/mnt/in/big' })).blocks.every((b) => b.locations.length === 1));
  await master.free({ path: '/mnt/in/big' });
  await until('free drops the cached blocks', () => status.blockIds.every((id) => !w.store.has(id)));
});

test.run();
