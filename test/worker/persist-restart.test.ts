/**
 * An ASYNC_THROUGH persist pending when a worker stops, over a real MasterHost (TCP), both ways:
 * a worker with an SSD tier moves the block down as it stops and persists the file after its
 * restart; a MEM-only worker loses the block, and after its restart reports the file to the
 * master (LOST) once and drops the job instead of retrying it against nothing.
 *
 * The persist is held pending by an empty directory where the UFS file should go: the UFS write
 * (temp file renamed over it) fails with EISDIR until the directory is removed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readFile, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MasterHost } from '../../master/host.js';
import { WorkerHost, type WorkerHostOptions } from '../../worker/index.js';
import { RpcClient } from '../../transports/rpc-client.js';
import { MasterService } from '../../transports/protocol/master.js';
import { WorkerService } from '../../transports/protocol/worker.js';
import { pattern, perTestScratch, until } from './fixtures.js';

const MIB = 1024 * 1024;
const { dir, defer, rpc } = perTestScratch(test, 'tessera-pr-');

const masterOf = (c: RpcClient) => c.service(MasterService);
interface Setup {
  m: MasterHost;
  master: ReturnType<typeof masterOf>;
  ufsDir: string;
  logs: string[];
  start: (address?: string) => Promise<WorkerHost>;
}

async function setup(tiers: WorkerHostOptions['tiers']): Promise<Setup> {
  const ufsDir = dir('ufs');
  await mkdir(ufsDir);
  const m = await MasterHost.start({ address: 'tcp://127.0.0.1:0', journalDir: dir('journal'), format: true, tickIntervalMs: 0 });
  defer(() => m.stop());
  const master = masterOf(await rpc(m.address));
  await master.mount({ path: '/mnt', ufsUri: ufsDir });
  const logs: string[] = [];
  const start = async (address = 'tcp://127.0.0.1:0'): Promise<WorkerHost> => {
    const w = await WorkerHost.start({
      masterAddress: m.address, address, heartbeatIntervalMs: 50, stateDir: dir('state'), tiers,
      persistRetryBaseMs: 60_000, // a failed persist waits a minute: it stays pending until the restart
      log: (line) => logs.push(line),
      onError: (e) => { if (process.env.DEBUG_WORKER) console.error('worker error:', e); },
    });
    defer(() => w.stop());
    return w;
  };
  return { m, master, ufsDir, logs, start };
}

/** Writes /mnt/out/f ASYNC_THROUGH into the worker's MEM with its persist held pending; returns its block id. */
async function writePending(s: Setup, w: WorkerHost, bytes: Buffer): Promise<number> {
  await s.master.createFile({ path: '/mnt/out/f', recursive: true, blockSizeBytes: 4 * MIB, persistenceState: 'TO_BE_PERSISTED' });
  await mkdir(join(s.ufsDir, 'out', 'f'), { recursive: true }); // the blocker
  const { blockId } = await s.master.getNewBlockId({ path: '/mnt/out/f' });
  const wc = (await rpc(w.address)).service(WorkerService);
  await wc.writeBlock({ blockId, reserveBytes: bytes.byteLength, writeType: 'ASYNC_THROUGH' }).pipeFrom([bytes]);
  await s.master.completeFile({ path: '/mnt/out/f', lengthBytes: bytes.byteLength });
  await until('the persist command arrives and its first write fails', () => w.persistQueue.jobs().some((j) => j.attempts >= 1));
  assert.is(w.store.info(blockId)!.tier, 'MEM');
  assert.is(w.store.info(blockId)!.persisted, false);
  return blockId;
}

test('a worker with an SSD tier moves a pending persist\'s MEM block down as it stops and persists the file after its restart', async () => {
  const s = await setup([{ alias: 'MEM', capacityBytes: 8 * MIB }, { alias: 'SSD', dirs: [{ path: dir('ssd'), capacityBytes: 64 * MIB }] }]);
  let w = await s.start();
  const address = w.address;
  const bytes = pattern(1, 2 * MIB + 9);
  const blockId = await writePending(s, w, bytes);
  await w.stop();
  assert.ok(s.logs.some((l) => /moved 1 blocks not yet persisted from MEM to SSD/.test(l)), s.logs.join('\n'));
  await rmdir(join(s.ufsDir, 'out', 'f'));
  w = await s.start(address);
  assert.equal([w.store.info(blockId)?.tier, w.store.info(blockId)?.persisted], ['SSD', false], 'the block survived the restart, still unpersisted');
  await until('the master learns the file is persisted', async () => (await s.master.getStatus({ path: '/mnt/out/f' })).persistenceState === 'PERSISTED');
  assert.ok((await readFile(join(s.ufsDir, 'out', 'f'))).equals(bytes));
  assert.is(w.persistQueue.pendingCount, 0);
});

test('a MEM-only worker that restarts with a pending persist reports the file LOST once and drops the job', async () => {
  const s = await setup([{ alias: 'MEM', capacityBytes: 8 * MIB }]);
  let w = await s.start();
  const address = w.address;
  const blockId = await writePending(s, w, pattern(2, MIB));
  await w.stop();
  assert.ok(s.logs.some((l) => /1 blocks not yet persisted \(\d+\) are lost with the MEM arena: this worker has no SSD\/HDD tier/.test(l)), s.logs.join('\n'));
  await rmdir(join(s.ufsDir, 'out', 'f'));
  w = await s.start(address);
  assert.not.ok(w.store.has(blockId));
  await until('the master marks the file LOST', async () => (await s.master.getStatus({ path: '/mnt/out/f' })).persistenceState === 'LOST');
  await until('the job is dropped, not retried', () => w.persistQueue.pendingCount === 0);
  const dropped = s.logs.filter((l) => l.includes('dropping the persist of file'));
  assert.is(dropped.length, 1, s.logs.join('\n'));
  assert.match(dropped[0]!, /1 of its 1 blocks .* are not on this worker/);
  assert.is(await stat(join(s.ufsDir, 'out', 'f')).then(() => true, () => false), false, 'nothing was written to the UFS');
  // The durable state no longer holds the job: a second restart has nothing to report.
  await w.stop();
  w = await s.start(address);
  assert.is(w.persistQueue.pendingCount, 0);
});

test('a master told that a worker lost its blocks keeps the file NOT_PERSISTED when another worker holds them all', async () => {
  const ufsDir = dir('ufs');
  await mkdir(ufsDir);
  const m = await MasterHost.start({ address: 'tcp://127.0.0.1:0', tickIntervalMs: 0 });
  defer(() => m.stop());
  const master = masterOf(await rpc(m.address));
  await master.mount({ path: '/mnt', ufsUri: ufsDir });
  const reg = (address: string) => master.registerWorker({ address, hostname: 'h', capacityBytes: MIB, usedBytes: 0, blocks: [] });
  const a = (await reg('tcp://a:1')).workerId;
  const b = (await reg('tcp://b:1')).workerId;
  const make = async (path: string, holders: number[]): Promise<number> => {
    const f = await master.createFile({ path, persistenceState: 'TO_BE_PERSISTED' });
    const { blockId } = await master.getNewBlockId({ path });
    for (const w of holders) await master.commitBlock({ workerId: w, blockId, lengthBytes: 10 });
    await master.completeFile({ path, lengthBytes: 10 });
    return f.fileId;
  };
  const shared = await make('/mnt/shared', [a, b]);
  const only = await make('/mnt/only', [a]);
  await master.reportPersisted({ workerId: a, fileId: shared, ok: false, lost: true });
  await master.reportPersisted({ workerId: a, fileId: only, ok: false, lost: true });
  assert.is((await master.getStatus({ path: '/mnt/shared' })).persistenceState, 'NOT_PERSISTED');
  assert.is((await master.getStatus({ path: '/mnt/only' })).persistenceState, 'LOST');
});

test.run();
