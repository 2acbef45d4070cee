/**
 * The periodic tick with a fake clock. TTLs: DELETE removes expired files and directories, FREE frees
 * a persisted file's blocks and clears its TTL; nothing happens before expiry. Lost workers,
 * and the checkpoint every checkpointPeriodEntries entries.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSystemMaster } from '../../master/file-system-master.js';
import { MemoryUfs } from '../../ufs/index.js';

test('an expired TTL with action DELETE removes the file, and only once it expires', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-ttl-'));
  let now = 10_000;
  const m = await FileSystemMaster.open({ journalDir: dir, format: true, clock: () => now });
  try {
    await m.createFile({ path: '/a/f', recursive: true, ttlMs: 1000 });
    await m.mkdir({ path: '/d/e', recursive: true });
    await m.createFile({ path: '/d/e/g' });
    await m.setAttribute({ path: '/d', ttlMs: 5000 });
    await m.createFile({ path: '/keep' });
    now += 1000;
    assert.equal((await m.tick()).expired, ['/a/f']);
    assert.is(await m.exists({ path: '/a/f' }), false);
    assert.is(await m.exists({ path: '/d/e/g' }), true);
    now += 4000;
    assert.equal((await m.tick()).expired, ['/d']);
    assert.is(await m.exists({ path: '/d' }), false);
    assert.equal((await m.listStatus({ path: '/' })).entries.map((e) => e.name), ['a', 'keep']);
    assert.equal((await m.tick()).expired, []);
  } finally {
    await m.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('an expired TTL with action FREE frees the blocks of a persisted file and clears the TTL', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-ttl-free-'));
  let now = 0;
  const m = await FileSystemMaster.open({ journalDir: dir, format: true, clock: () => now });
  const name = `ttl-free-${process.pid}`;
  try {
    const ufs = MemoryUfs.named(name);
    const w = await ufs.create('f');
    await w.write(new Uint8Array(10));
    await w.close();
    await m.mount({ path: '/mnt', ufsUri: ufs.uri });
    const f = await m.getStatus({ path: '/mnt/f' });
    const worker = (await m.registerWorker({ address: 'tcp://w:1', hostname: 'w', capacityBytes: 100, usedBytes: 10, blocks: [[f.blockIds[0]!, 10]] })).workerId;
    await m.setAttribute({ path: '/mnt/f', ttlMs: 100, ttlAction: 'FREE' });
    now = 99;
    assert.equal((await m.tick()).expired, []);
    now = 100;
    assert.equal((await m.tick()).expired, ['/mnt/f']);
    const after = await m.getStatus({ path: '/mnt/f' });
    assert.equal([after.ttlMs, after.persistenceState], [-1, 'PERSISTED']);
    const cmds = m.workerHeartbeat({ workerId: worker, capacityBytes: 100, usedBytes: 10, addedBlocks: [], removedBlocks: [] }).commands;
    assert.equal(cmds, [{ type: 'free', blockIds: [f.blockIds[0]!] }]);
  } finally {
    MemoryUfs.drop(name);
    await m.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a lost worker is found by tick() once the fake clock passes the timeout', async () => {
  let now = 0;
  const m = await FileSystemMaster.open({ clock: () => now, workerTimeoutMs: 10_000 });
  const w = (await m.registerWorker({ address: 'tcp://w:1', hostname: 'w', capacityBytes: 1, usedBytes: 0, blocks: [] })).workerId;
  now = 10_001;
  assert.equal((await m.tick()).lostWorkers, [w]);
  assert.equal(m.getInfo().workers, { live: 0, lost: 1, capacityBytes: 0, usedBytes: 0 });
  await m.close();
});

test('a complete, unpersisted file whose only copy was on a lost worker is LOST, and back when the worker re-registers', async () => {
  let now = 0;
  const m = await FileSystemMaster.open({ clock: () => now, workerTimeoutMs: 1000 });
  try {
    const reg = { address: 'tcp://w:1', hostname: 'w', capacityBytes: 100, usedBytes: 0, blocks: [] as [number, number][] };
    const w = (await m.registerWorker(reg)).workerId;
    const f = await m.createFile({ path: '/only-copy', blockSizeBytes: 10 });
    const { blockId } = await m.getNewBlockId({ path: '/only-copy' });
    m.commitBlock({ workerId: w, blockId, lengthBytes: 5 });
    await m.completeFile({ path: '/only-copy', lengthBytes: 5 });
    await m.createFile({ path: '/incomplete' });
    now = 1001;
    const t = await m.tick();
    assert.equal([t.lostWorkers, t.lostFiles], [[w], [f.fileId]]);
    assert.is((await m.getStatus({ path: '/only-copy' })).persistenceState, 'LOST');
    assert.is((await m.getStatus({ path: '/incomplete' })).persistenceState, 'NOT_PERSISTED');
    await m.registerWorker({ ...reg, blocks: [[blockId, 5]] });
    assert.is((await m.getStatus({ path: '/only-copy' })).persistenceState, 'NOT_PERSISTED');
  } finally {
    await m.close();
  }
});

test('tick() starts a checkpoint once enough entries follow the last one, and a restart loads it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-ckpt-'));
  const m = await FileSystemMaster.open({ journalDir: dir, format: true, checkpointPeriodEntries: 10 });
  try {
    for (let i = 0; i < 9; i++) await m.createFile({ path: `/f${i}` });
    assert.is((await m.tick()).checkpointStarted, false);
    await m.createFile({ path: '/f9' });
    assert.is((await m.tick()).checkpointStarted, true);
    await m.close();
    const again = await FileSystemMaster.open({ journalDir: dir });
    assert.is(again.journal!.checkpointSequence('namespace'), 10);
    assert.is((await again.listStatus({ path: '/' })).entries.length, 10);
    await again.close();
  } finally {
    await m.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
