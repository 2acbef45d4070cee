/**
 * Pinning over a real MasterHost and WorkerHost (TCP): the worker learns which blocks are
 * pinned from the master (setAttribute → pin/unpin commands, commit replies for blocks cached
 * from the UFS or by `load`, the registration reply after a restart), and eviction never drops
 * a pinned block. A forced free unpins and drops; an unforced one is refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MasterHost } from '../../master/host.js';
import { FileSystemMaster } from '../../master/file-system-master.js';
import { WorkerHost, type WorkerHostOptions } from '../../worker/index.js';
import { RpcClient } from '../../transports/rpc-client.js';
import { MasterService } from '../../transports/protocol/master.js';
import { WorkerService } from '../../transports/protocol/worker.js';
import { isTesseraError } from '../../core/errors.js';
import { pattern, perTestScratch, until } from './fixtures.js';

const MIB = 1024 * 1024;
/** MEM holds about this many 1 MiB blocks; the fills below write twice as many. */
const MEM_BYTES = 8 * MIB;
const { dir, defer, rpc } = perTestScratch(test, 'tessera-pin-');

async function startMaster(): Promise<MasterHost> {
  const m = await MasterHost.start({ address: 'tcp://127.0.0.1:0', journalDir: dir('journal'), format: true, tickIntervalMs: 0 });
  defer(() => m.stop());
  return m;
}

async function startWorker(masterAddress: string, extra: Partial<WorkerHostOptions> = {}): Promise<WorkerHost> {
  const w = await WorkerHost.start({
    masterAddress, address: 'tcp://127.0.0.1:0', heartbeatIntervalMs: 50, stateDir: dir('state'),
    tiers: [{ alias: 'MEM', capacityBytes: MEM_BYTES }],
    onError: (e) => { if (process.env.DEBUG_WORKER) console.error('worker error:', e); },
    ...extra,
  });
  defer(() => w.stop());
  return w;
}

const masterOf = (c: RpcClient) => c.service(MasterService);
const workerOf = (c: RpcClient) => c.service(WorkerService);
interface Cluster { master: ReturnType<typeof masterOf>; worker: ReturnType<typeof workerOf> }

/** Writes a one-block file through the worker (MUST_CACHE); returns its block id. */
async function writeOneBlock(c: Cluster, path: string, bytes: Buffer, createExtra: object = {}): Promise<number> {
  await c.master.createFile({ path, recursive: true, blockSizeBytes: 4 * MIB, ...createExtra });
  const { blockId } = await c.master.getNewBlockId({ path });
  await c.worker.writeBlock({ blockId, reserveBytes: bytes.byteLength }).pipeFrom([bytes]);
  await c.master.completeFile({ path, lengthBytes: bytes.byteLength });
  return blockId;
}

/** Writes twice MEM's capacity of other 1 MiB files; the engine evicts whatever it may. */
async function fillMemory(c: Cluster, tag: string): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < (2 * MEM_BYTES) / MIB; i++) ids.push(await writeOneBlock(c, `/fill/${tag}/${i}`, pattern(100 + i, MIB)));
  return ids;
}

async function readAll(c: Pick<Cluster, 'worker'>, blockId: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of c.worker.readBlock({ blockId })) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function cluster(extra: Partial<WorkerHostOptions> = {}): Promise<{ m: MasterHost; w: WorkerHost; c: Cluster }> {
  const m = await startMaster();
  const w = await startWorker(m.address, extra);
  const c = { master: masterOf(await rpc(m.address)), worker: workerOf(await rpc(w.address)) };
  return { m, w, c };
}

test('a file pinned after it was written keeps its blocks while memory fills; unpinned, they are evicted', async () => {
  const { w, c } = await cluster();
  const bytes = pattern(1, MIB);
  const blockId = await writeOneBlock(c, '/data/late-pin', bytes);
  assert.is(w.store.info(blockId)!.pinned, false);
  await c.master.setAttribute({ path: '/data/late-pin', pinned: true });
  await until('the pin command reaches the worker', () => w.store.info(blockId)?.pinned === true);
  assert.ok(w.persistQueue.pinned.has(blockId), 'the pin is kept durably');
  const fill = await fillMemory(c, 'a');
  assert.ok(fill.some((id) => !w.store.has(id)), 'the fill did evict blocks');
  assert.ok(w.store.has(blockId), 'the pinned block stays');
  assert.ok((await readAll(c, blockId)).equals(bytes));

  await c.master.setAttribute({ path: '/data/late-pin', pinned: false });
  await until('the unpin command reaches the worker', () => w.store.info(blockId)?.pinned === false);
  assert.not.ok(w.persistQueue.pinned.has(blockId));
  await fillMemory(c, 'b');
  assert.not.ok(w.store.has(blockId), 'an unpinned block is evicted like any other');
});

test('pinning a directory recursively pins the blocks of every file under it', async () => {
  const { w, c } = await cluster();
  const a = await writeOneBlock(c, '/tree/x/a', pattern(2, 1000));
  const b = await writeOneBlock(c, '/tree/b', pattern(3, 1000));
  const other = await writeOneBlock(c, '/elsewhere', pattern(4, 1000));
  await c.master.setAttribute({ path: '/tree', pinned: true, recursive: true });
  await until('both files are pinned on the worker', () => w.store.info(a)?.pinned === true && w.store.info(b)?.pinned === true);
  assert.is(w.store.info(other)!.pinned, false);
});

test('a block cached from the UFS for a pinned file, by load or by a read miss, is pinned and stays while memory fills', async () => {
  const ufsDir = dir('ufs');
  await mkdir(ufsDir);
  const loaded = pattern(5, MIB + 17);
  const missed = pattern(6, MIB - 5);
  await writeFile(join(ufsDir, 'loaded'), loaded);
  await writeFile(join(ufsDir, 'missed'), missed);
  const { w, c } = await cluster();
  await c.master.mount({ path: '/mnt', ufsUri: ufsDir });
  await c.master.setAttribute({ path: '/mnt/loaded', pinned: true });
  await c.master.setAttribute({ path: '/mnt/missed', pinned: true });

  const l = await c.master.getStatus({ path: '/mnt/loaded' });
  await c.master.load({ path: '/mnt/loaded' });
  await until('the load command caches the block', () => w.store.has(l.blockIds[0]!));
  await until('and it is pinned', () => w.store.info(l.blockIds[0]!)?.pinned === true);

  const s = await c.master.getStatus({ path: '/mnt/missed' });
  const missId = s.blockIds[0]!;
  const parts: Buffer[] = [];
  const ufs = { ufsUri: ufsDir, ufsPath: 'missed', blockOffsetBytes: 0, blockLengthBytes: missed.byteLength };
  for await (const chunk of c.worker.readBlock({ blockId: missId, readType: 'CACHE', ufs })) parts.push(Buffer.from(chunk));
  assert.ok(Buffer.concat(parts).equals(missed));
  await until('the read miss caches a pinned block', () => w.store.info(missId)?.pinned === true);

  const fill = await fillMemory(c, 'ufs');
  assert.ok(fill.some((id) => !w.store.has(id)), 'the fill did evict blocks');
  assert.ok((await readAll(c, l.blockIds[0]!)).equals(loaded), 'the loaded block stays');
  assert.ok((await readAll(c, missId)).equals(missed), 'the block cached on a miss stays');
});

test('free refuses a pinned file; a forced free unpins it and the worker drops its blocks', async () => {
  const ufsDir = dir('ufs');
  await mkdir(ufsDir);
  await writeFile(join(ufsDir, 'f'), pattern(7, 3000));
  const { w, c } = await cluster();
  await c.master.mount({ path: '/mnt', ufsUri: ufsDir });
  const st = await c.master.setAttribute({ path: '/mnt/f', pinned: true });
  await c.master.load({ path: '/mnt/f' });
  const id = st.blockIds[0]!;
  await until('the block is cached and pinned', () => w.store.info(id)?.pinned === true);
  await until('its location reaches the master', async () => (await c.master.getBlockLocations({ path: '/mnt/f' })).blocks[0]!.locations.length === 1);
  try {
    await c.master.free({ path: '/mnt/f' });
    assert.unreachable('an unforced free of a pinned file is refused');
  } catch (err) {
    assert.ok(isTesseraError(err, 'TESSERA_ERR_FILE_PINNED'), String(err));
  }
  assert.equal(await c.master.free({ path: '/mnt/f', forced: true }), { blockCount: 1 });
  assert.is((await c.master.getStatus({ path: '/mnt/f' })).pinned, false, 'a forced free unpins the file, as in Alluxio');
  await until('the worker drops the freed block', () => !w.store.has(id));
  assert.not.ok(w.persistQueue.pinned.has(id));
});

test('a worker that restarts learns from its registration which of its blocks were pinned or unpinned meanwhile', async () => {
  const m = await startMaster();
  const tiers: WorkerHostOptions['tiers'] = [{ alias: 'MEM', capacityBytes: MEM_BYTES }, { alias: 'SSD', dirs: [{ path: dir('ssd'), capacityBytes: 64 * MIB }] }];
  let w = await startWorker(m.address, { tiers });
  const address = w.address;
  const master = masterOf(await rpc(m.address));
  let c = { master, worker: workerOf(await rpc(w.address)) };
  const write = async (path: string, seed: number, pinned: boolean): Promise<number> => {
    await master.createFile({ path, blockSizeBytes: 4 * MIB, pinned });
    const { blockId } = await master.getNewBlockId({ path });
    await c.worker.writeBlock({ blockId, reserveBytes: 1000, tier: 'SSD', pinned }).pipeFrom([pattern(seed, 1000)]);
    await master.completeFile({ path, lengthBytes: 1000 });
    return blockId;
  };
  const willPin = await write('/will-pin', 8, false);
  const willUnpin = await write('/will-unpin', 9, true);
  assert.equal([w.store.info(willPin)!.pinned, w.store.info(willUnpin)!.pinned], [false, true]);
  await w.stop();
  await master.setAttribute({ path: '/will-pin', pinned: true });
  await master.setAttribute({ path: '/will-unpin', pinned: false });
  w = await startWorker(m.address, { tiers, address });
  c = { master, worker: workerOf(await rpc(w.address)) };
  await until('the registration reply sets both flags', () => w.store.info(willPin)?.pinned === true && w.store.info(willUnpin)?.pinned === false);
  assert.ok(w.persistQueue.pinned.has(willPin));
  assert.not.ok(w.persistQueue.pinned.has(willUnpin));
});

test('the master pins an added block of a pinned file in the reply that reports it, and sends pin changes after frees', async () => {
  const m = await FileSystemMaster.open();
  try {
    const reg = () => m.registerWorker({ address: 'tcp://w:1', hostname: 'w', capacityBytes: MIB, usedBytes: 0, blocks: [] });
    const w = (await reg()).workerId;
    const beat = (added: [number, number][] = []) => m.workerHeartbeat({ workerId: w, capacityBytes: MIB, usedBytes: 0, addedBlocks: added, removedBlocks: [] }).commands;
    await m.createFile({ path: '/p', pinned: true });
    const { blockId } = await m.getNewBlockId({ path: '/p' });
    await m.completeFile({ path: '/p', lengthBytes: 10 });
    assert.equal(beat([[blockId, 10]]), [{ type: 'pin', blockIds: [blockId] }]);
    assert.equal(beat(), []);
    assert.equal(m.commitBlock({ workerId: w, blockId, lengthBytes: 10 }), { pinned: true });
    const again = await m.registerWorker({ address: 'tcp://w:1', hostname: 'w', capacityBytes: MIB, usedBytes: 0, blocks: [[blockId, 10]] });
    assert.equal(again.pinnedBlockIds, [blockId]);
    await m.setAttribute({ path: '/p', pinned: false });
    await m.setAttribute({ path: '/p', pinned: true });
    await m.setAttribute({ path: '/p', pinned: false });
    assert.equal(beat(), [{ type: 'unpin', blockIds: [blockId] }], 'the latest change of a block wins');
    assert.equal(m.commitBlock({ workerId: w, blockId, lengthBytes: 10 }), { pinned: false });
  } finally {
    await m.close();
  }
});

test.run();
