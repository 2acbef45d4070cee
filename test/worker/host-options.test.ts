import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerHost, type TierSpec } from '../../worker/index.js';
import { removeStaleArenas } from '../../worker/mem-tier.js';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { isTesseraError } from '../../core/errors.js';

let root = '';
test.before.each(async () => { root = await mkdtemp(join(tmpdir(), 'tessera-ho-')); });
test.after.each(async () => { await rm(root, { recursive: true, force: true }); });

async function refused(tiers: TierSpec[], pattern: RegExp): Promise<void> {
  try {
    const h = await WorkerHost.start({ address: 'tcp://127.0.0.1:0', tiers });
    await h.stop();
    assert.unreachable('start should fail');
  } catch (e) {
    assert.ok(isTesseraError(e, 'TESSERA_ERR_CONFIG'), String(e));
    assert.match((e as Error).message, pattern);
  }
}

test('WorkerHost.start refuses bad tier configurations and names what is wrong', async () => {
  await refused([], /tiers/);
  await refused([{ alias: 'SSD', dirs: [{ path: join(root, 's'), capacityBytes: 1024 }] }, { alias: 'MEM', capacityBytes: 1024 }], /ordered MEM, SSD, HDD/);
  await refused([{ alias: 'MEM', capacityBytes: 0 }], /capacityBytes/);
  await refused([{ alias: 'MEM', capacityBytes: 1 << 20 }, { alias: 'HDD', dirs: [] }], /dirs/);
});

test('a worker reports which MEM backing it runs on, and stop() is idempotent', async () => {
  const h = await WorkerHost.start({ address: 'tcp://127.0.0.1:0', tiers: [{ alias: 'MEM', capacityBytes: 1 << 20 }] });
  const info = h.info();
  assert.ok(info.memBacking === 'shm' || info.memBacking === 'sab');
  assert.is(info.memBacking, h.memBacking);
  if (h.memBacking === 'sab') assert.ok(h.store.mem!.fallbackReason, 'the fallback says why');
  assert.equal(info.tiers.map((t) => t.alias), ['MEM']);
  await Promise.all([h.stop(), h.stop()]);
  await h.stop();
});

test('a worker on a SharedArrayBuffer MEM tier works when shm is not wanted', async () => {
  const h = await WorkerHost.start({ address: 'tcp://127.0.0.1:0', tiers: [{ alias: 'MEM', capacityBytes: 1 << 20, backing: 'sab' }] });
  try {
    assert.is(h.memBacking, 'sab');
    assert.is(h.store.mem!.shmPath, undefined);
  } finally {
    await h.stop();
  }
});

test('arena files of dead workers are removed when a worker starts; live ones stay', async () => {
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const stale = join(root, `tessera-worker-${dead}-deadbeef`);
  const live = join(root, `tessera-worker-${process.pid}-0badf00d`);
  const other = join(root, 'not-ours');
  for (const p of [stale, live, other]) writeFileSync(p, 'x');
  const removed = removeStaleArenas(root);
  assert.equal(removed, [stale]);
  assert.ok(existsSync(live) && existsSync(other));
});

test.run();
