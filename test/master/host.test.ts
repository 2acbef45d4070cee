/**
 * End to end: a MasterHost served over inproc://, tcp:// and ws://, the same test for each.
 * A client and a fake worker (plain RPC calls, as issue 7's worker makes them) drive it;
 * the host is stopped and started again on the same journal.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MasterHost } from '../../master/host.js';
import { RpcClient, InprocNetwork, InprocTransport } from '../../transports/index.js';
import { MasterService, blockIdOf } from '../../transports/protocol/master.js';
import { MemoryUfs } from '../../ufs/index.js';
import { isTesseraError } from '../../core/errors.js';
import { SimFs } from '../../core/journal/index.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isTesseraError(e) ? e.code : String(e);
  }
}

for (const scheme of ['inproc', 'tcp', 'ws'] as const) {
  test(`the master serves clients and workers over ${scheme}, and comes back after a restart`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-master-host-'));
    const address = scheme === 'inproc' ? `inproc://master-host-test-${process.pid}` : scheme === 'ws' ? 'ws://127.0.0.1:0/master' : 'tcp://127.0.0.1:0';
    let host = await MasterHost.start({ address, journalDir: dir, format: true, tickIntervalMs: 0, webPort: scheme === 'tcp' ? 0 : undefined });
    let client = await RpcClient.connect(host.address);
    try {
      let master = client.service(MasterService);
      assert.equal(await master.health({}), { ok: true });
      const info = await master.getInfo({});
      assert.is(info.inodeCount, 1);
      assert.ok(info.uptimeMs >= 0);

      await master.mkdir({ path: '/data/logs', recursive: true });
      const created = await master.createFile({ path: '/data/logs/a', blockSizeBytes: 1024 });
      assert.is(created.completed, false);
      const { blockId } = await master.getNewBlockId({ path: '/data/logs/a' });
      assert.is(blockId, blockIdOf(created.fileId, 0));

      // A worker registers, commits the block; the client completes the file.
      const reg = await master.registerWorker({ address: 'tcp://10.0.0.1:29999', hostname: 'w1', capacityBytes: 1 << 30, usedBytes: 0, blocks: [] });
      await master.commitBlock({ workerId: reg.workerId, blockId, lengthBytes: 700 });
      const done = await master.completeFile({ path: '/data/logs/a', lengthBytes: 700 });
      assert.is(done.completed, true);
      const locs = await master.getBlockLocations({ path: '/data/logs/a' });
      assert.equal(locs.blocks.map((b) => [b.blockId, b.offsetBytes, b.lengthBytes, b.locations.map((l) => l.hostname)]), [[blockId, 0, 700, ['w1']]]);

      // Error codes cross the wire unchanged.
      assert.is(await code(master.getStatus({ path: '/nope' })), 'TESSERA_ERR_FILE_NOT_FOUND');
      assert.is(await code(master.createFile({ path: 'bad' })), 'TESSERA_ERR_INVALID_PATH');
      assert.is(await code(master.delete({ path: '/data' })), 'TESSERA_ERR_DIRECTORY_NOT_EMPTY');
      assert.is(await code(master.rename({ src: '/data', dst: '/data/logs/x' })), 'TESSERA_ERR_INVALID_RENAME');
      assert.is(await master.exists({ path: '/data/logs/a' }), true);
      assert.is(await master.exists({ path: '/data/logs/b' }), false);

      await master.rename({ src: '/data/logs/a', dst: '/data/a' });
      await master.setAttribute({ path: '/data/a', pinned: true, mode: 0o600, owner: 'alice' });
      const listed = await master.listStatus({ path: '/data' });
      assert.equal(listed.entries.map((e) => e.name), ['a', 'logs']);

      // Mount an in-memory UFS and read its metadata on first access.
      const ufs = MemoryUfs.named(`host-test-${scheme}-${process.pid}`);
      const w = await ufs.create('in/u.txt');
      await w.write(new Uint8Array(5000));
      await w.close();
      await master.mount({ path: '/mnt', ufsUri: ufs.uri });
      const u = await master.getStatus({ path: '/mnt/in/u.txt' });
      assert.is(u.lengthBytes, 5000);
      assert.is(u.persistenceState, 'PERSISTED');

      // A delete turns into a delete command in the worker's next heartbeat.
      await master.createFile({ path: '/tmp1' });
      const b2 = (await master.getNewBlockId({ path: '/tmp1' })).blockId;
      await master.commitBlock({ workerId: reg.workerId, blockId: b2, lengthBytes: 1 });
      await master.delete({ path: '/tmp1' });
      const hb = await master.workerHeartbeat({ workerId: reg.workerId, capacityBytes: 1 << 30, usedBytes: 701, addedBlocks: [], removedBlocks: [] });
      assert.equal(hb.commands.filter((c) => c.type === 'delete'), [{ type: 'delete', blockIds: [b2] }]); // pin commands may come too (/data/a is pinned)

      if (host.webAddress) {
        const metrics = await (await fetch(host.webAddress + '/metrics')).text();
        assert.match(metrics, /tessera_master_inodes \d+/);
        assert.match(metrics, /tessera_master_calls_total\{method="getStatus"\} \d+/);
        const api = await (await fetch(host.webAddress + '/api/info')).json() as { info: { inodeCount: number } };
        assert.ok(api.info.inodeCount > 1);
      }

      // Restart: same namespace; the worker is told to register again and its locations return.
      await client.close();
      await host.stop();
      await host.stop(); // idempotent
      host = await MasterHost.start({ address, journalDir: dir, tickIntervalMs: 0 });
      client = await RpcClient.connect(host.address);
      master = client.service(MasterService);
      const a = await master.getStatus({ path: '/data/a' });
      assert.equal([a.lengthBytes, a.pinned, a.mode, a.owner, a.completed], [700, true, 0o600, 'alice', true]);
      assert.equal((await master.getMountTable({})).map((m) => m.path), ['/mnt']);
      assert.is((await master.getStatus({ path: '/mnt/in/u.txt' })).lengthBytes, 5000);
      const again = await master.workerHeartbeat({ workerId: reg.workerId, capacityBytes: 1 << 30, usedBytes: 700, addedBlocks: [], removedBlocks: [] });
      assert.equal(again.commands, [{ type: 'register' }]);
      assert.equal((await master.getBlockLocations({ path: '/data/a' })).blocks[0]!.locations, []);
      await master.registerWorker({ address: 'tcp://10.0.0.1:29999', hostname: 'w1', capacityBytes: 1 << 30, usedBytes: 700, blocks: [[blockId, 700]] });
      assert.equal((await master.getBlockLocations({ path: '/data/a' })).blocks[0]!.locations.map((l) => l.hostname), ['w1']);
      assert.is((await master.getInfo({})).workers.live, 1);
      MemoryUfs.drop(`host-test-${scheme}-${process.pid}`);
    } finally {
      await client.close();
      await host.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('MasterHost takes a transport: a simulated inproc network serves the same service', async () => {
  const net = new InprocNetwork();
  const transport = new InprocTransport(net);
  const host = await MasterHost.start({ transport, address: 'inproc://sim-master', tickIntervalMs: 0 });
  const client = await RpcClient.connect('inproc://sim-master', { transport });
  try {
    const master = client.service(MasterService);
    await master.createFile({ path: '/sim/x', recursive: true });
    assert.is((await master.getInfo({})).inodeCount, 3);
  } finally {
    await client.close();
    await host.stop();
  }
});

test('a failed journal stops the master: calls fail with JOURNAL_FAILED, health says why, a restart replays what was acknowledged', async () => {
  const fs = new SimFs();
  const address = `inproc://master-journal-failure-${process.pid}`;
  const host = await MasterHost.start({ address, journalDir: '/journal', journalFs: fs, format: true, tickIntervalMs: 0 });
  const client = await RpcClient.connect(host.address);
  let failedWith: string | undefined;
  void host.failed.then((e) => { failedWith = e.code; });
  try {
    const master = client.service(MasterService);
    await master.createFile({ path: '/kept', recursive: true });
    assert.equal(await master.health({}), { ok: true });

    fs.failNext('datasync');
    // Applied in memory, never acknowledged: the caller sees the failure ...
    assert.is(await code(master.createFile({ path: '/lost' })), 'TESSERA_ERR_JOURNAL_FAILED');
    assert.is(failedWith, 'TESSERA_ERR_JOURNAL_FAILED', 'host.failed resolved');
    // ... and nobody reads it afterwards: every call but health is refused, reads included.
    for (const call of [master.getStatus({ path: '/lost' }), master.getStatus({ path: '/kept' }), master.listStatus({ path: '/' }),
      master.exists({ path: '/lost' }), master.getInfo({}), master.mkdir({ path: '/x' }),
      master.workerHeartbeat({ workerId: 1, capacityBytes: 1, usedBytes: 0, addedBlocks: [], removedBlocks: [] })]) {
      assert.is(await code(call), 'TESSERA_ERR_JOURNAL_FAILED');
    }
    const health = await master.health({});
    assert.is(health.ok, false);
    assert.ok(!health.ok && health.code === 'TESSERA_ERR_JOURNAL_FAILED' && /EIO/.test(health.message), JSON.stringify(health));
  } finally {
    await client.close();
    await host.stop();
  }
  // The power goes (unsynced bytes are dropped); the restarted master replays the journal.
  const after = await MasterHost.start({ address, journalDir: '/journal', journalFs: fs.crash(), tickIntervalMs: 0 });
  try {
    assert.is(after.master.formattedJournal, false);
    assert.is(await after.master.exists({ path: '/kept' }), true);
    assert.is(await after.master.exists({ path: '/lost' }), false);
    assert.equal(after.health(), { ok: true });
  } finally {
    await after.stop();
  }
});

test('a pipelined client gets every reply of many calls in flight', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-master-pipe-'));
  const host = await MasterHost.start({ address: 'tcp://127.0.0.1:0', journalDir: dir, format: true, tickIntervalMs: 0 });
  const client = await RpcClient.connect(host.address);
  try {
    const master = client.service(MasterService);
    await master.mkdir({ path: '/p' });
    const created = await Promise.all(Array.from({ length: 500 }, (_, i) => master.createFile({ path: `/p/f${i}` })));
    assert.is(new Set(created.map((c) => c.fileId)).size, 500);
    const page = await master.listStatus({ path: '/p', limit: 100, startAfter: 'f450' });
    assert.is(page.entries[0]!.name, 'f451');
    assert.is(page.truncated, true);
  } finally {
    await client.close();
    await host.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
