import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTier } from '../../worker/file-tier.js';
import { isTesseraError } from '../../core/errors.js';

let root = '';
test.before.each(async () => { root = await mkdtemp(join(tmpdir(), 'tessera-ft-')); });
test.after.each(async () => { await rm(root, { recursive: true, force: true }); });

test('a block is visible only after commit, and abort leaves nothing behind', async () => {
  const tier = await FileTier.open({ alias: 'SSD', dirs: [{ path: join(root, 'a'), capacityBytes: 1000 }] });
  const t = (await tier.createTemp(5, 100))!;
  await tier.append(t, new Uint8Array(60).fill(1));
  assert.is(tier.has(5), false);
  assert.is(tier.usedBytes, 100, 'reservation counts as used');
  await tier.commit(t);
  assert.is(tier.has(5), true);
  assert.is(tier.usedBytes, 60);
  const back = new Uint8Array(60);
  await tier.readInto(5, 0, back);
  assert.ok(back.every((b) => b === 1));
  const t2 = (await tier.createTemp(6, 100))!;
  await tier.append(t2, new Uint8Array(10));
  await tier.abort(t2);
  assert.is(tier.has(6), false);
  assert.equal(await readdir(join(root, 'a', '.tmp')), []);
  assert.is(tier.usedBytes, 60);
});

test('createTemp answers undefined when no directory has room under its quota', async () => {
  const tier = await FileTier.open({ alias: 'SSD', dirs: [{ path: join(root, 'a'), capacityBytes: 100 }, { path: join(root, 'b'), capacityBytes: 50 }] });
  assert.ok(await tier.writeWhole(1, [new Uint8Array(80)]));
  assert.ok(await tier.writeWhole(2, [new Uint8Array(50)]), 'second block goes to the directory with room');
  assert.is(tier.entry(2)!.dirIndex, 1);
  assert.is(await tier.createTemp(3, 21), undefined);
  try { await tier.createTemp(1, 1); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_BLOCK_EXISTS')); }
});

test('a reopened tier finds its committed blocks and drops temporary files of a crash', async () => {
  const dirs = [{ path: join(root, 'a'), capacityBytes: 1 << 20 }, { path: join(root, 'b'), capacityBytes: 1 << 20 }];
  const tier = await FileTier.open({ alias: 'HDD', dirs, policy: 'roundRobin' });
  for (let id = 10; id < 14; id++) await tier.writeWhole(id, [new Uint8Array(id * 10).fill(id)]);
  const leftover = (await tier.createTemp(99, 10))!;
  await tier.append(leftover, new Uint8Array(10));
  await leftover.fh.close();
  await writeFile(join(root, 'a', 'not-a-block'), 'x');
  const again = await FileTier.open({ alias: 'HDD', dirs });
  assert.equal([...again.entries()].map((e) => e.id).sort(), [10, 11, 12, 13]);
  assert.is(again.committedBytes, 100 + 110 + 120 + 130);
  assert.is(again.has(99), false);
  assert.equal(await readdir(join(root, 'a', '.tmp')), []);
  const b = new Uint8Array(130);
  await again.readInto(13, 0, b);
  assert.ok(b.every((x) => x === 13));
});

test('open refuses a tier without directories or with a bad quota, naming the option', async () => {
  for (const dirs of [[], [{ path: join(root, 'x'), capacityBytes: 0 }]]) {
    try { await FileTier.open({ alias: 'SSD', dirs }); assert.unreachable(); } catch (e) {
      assert.ok(isTesseraError(e, 'TESSERA_ERR_CONFIG'));
      assert.match((e as Error).message, /dirs|capacityBytes/);
    }
  }
  await mkdir(join(root, 'y'));
});

test('remove deletes the block file and frees its bytes', async () => {
  const tier = await FileTier.open({ alias: 'SSD', dirs: [{ path: join(root, 'a'), capacityBytes: 1000 }] });
  await tier.writeWhole(1, [new Uint8Array(10), new Uint8Array(20)]);
  assert.is(tier.entry(1)!.lengthBytes, 30);
  assert.is(await tier.remove(1), true);
  assert.is(await tier.remove(1), false);
  assert.is(tier.usedBytes, 0);
  assert.equal((await readdir(join(root, 'a'))).filter((n) => n !== '.tmp'), []);
});

test.run();
