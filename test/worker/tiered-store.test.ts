import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TieredBlockStore, type TierSpec } from '../../worker/tiered-store.js';
import { isTesseraError } from '../../core/errors.js';

const KIB = 1024;
let root = '';
const stores: TieredBlockStore[] = [];
test.before.each(async () => { root = await mkdtemp(join(tmpdir(), 'tessera-ts-')); });
test.after.each(async () => {
  for (const s of stores.splice(0)) await s.close();
  await rm(root, { recursive: true, force: true });
});

function pattern(id: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (id * 31 + i * 7) & 0xff;
  return b;
}

async function open(tiers: TierSpec[]): Promise<TieredBlockStore> {
  const s = await TieredBlockStore.open(tiers);
  stores.push(s);
  return s;
}

async function readAll(s: TieredBlockStore, id: number, promote = false): Promise<{ bytes: Uint8Array; source: string } | undefined> {
  const r = await s.openReader(id, { promote });
  if (!r) return undefined;
  try {
    return { bytes: Uint8Array.from(await r.read(0, r.lengthBytes)), source: r.source };
  } finally {
    r.release();
  }
}

const mem = (capacityBytes: number): TierSpec => ({ alias: 'MEM', capacityBytes, backing: 'sab' });
const ssd = (capacityBytes: number): TierSpec => ({ alias: 'SSD', dirs: [{ path: join(root, 'ssd'), capacityBytes }] });
const hdd = (capacityBytes: number): TierSpec => ({ alias: 'HDD', dirs: [{ path: join(root, 'hdd0'), capacityBytes: capacityBytes / 2 }, { path: join(root, 'hdd1'), capacityBytes: capacityBytes / 2 }] });

test('spillUnpersisted moves unpersisted MEM blocks to the first file tier and leaves the rest in MEM', async () => {
  const s = await open([mem(1024 * KIB), ssd(1024 * KIB)]);
  await s.putBlock(1, pattern(1, 100 * KIB), { persisted: false });
  await s.putBlock(2, pattern(2, 100 * KIB));
  await s.putBlock(3, pattern(3, 100 * KIB), { persisted: false, pinned: true });
  const { moved, left } = await s.spillUnpersisted();
  assert.equal([moved.sort(), left], [[1, 3], []]);
  assert.equal([1, 2, 3].map((id) => s.info(id)!.tier), ['SSD', 'MEM', 'SSD']);
  assert.is(s.mem!.has(1), false);
  assert.equal((await readAll(s, 1))!.bytes, pattern(1, 100 * KIB));
  assert.equal((await readAll(s, 3))!.bytes, pattern(3, 100 * KIB));
  const memOnly = await open([mem(1024 * KIB)]);
  await memOnly.putBlock(4, pattern(4, 10 * KIB), { persisted: false });
  assert.equal(await memOnly.spillUnpersisted(), { moved: [], left: [4] });
});

test('a block is visible to readers only after commit, with the bytes written', async () => {
  const s = await open([mem(1024 * KIB)]);
  const w = s.createWriter(1, 64 * KIB);
  w.append(pattern(1, 40 * KIB));
  w.append(pattern(2, 24 * KIB));
  assert.is(s.has(1), false);
  assert.is(await s.openReader(1), undefined);
  await w.commit();
  const got = await readAll(s, 1);
  assert.is(got!.source, 'MEM');
  assert.equal(got!.bytes.subarray(0, 40 * KIB), pattern(1, 40 * KIB));
  assert.equal(got!.bytes.subarray(40 * KIB), pattern(2, 24 * KIB));
  try { s.createWriter(1, 10); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_BLOCK_EXISTS')); }
});

test('blocks evicted from MEM are demoted to SSD, then HDD, and read back unchanged', async () => {
  const s = await open([mem(256 * KIB), ssd(256 * KIB), hdd(512 * KIB)]);
  for (let id = 1; id <= 12; id++) await s.putBlock(id, pattern(id, 64 * KIB));
  await s.settle();
  const where = new Map<string, number>();
  for (let id = 1; id <= 12; id++) {
    const got = await readAll(s, id);
    assert.ok(got, `block ${id} is still on the worker`);
    assert.equal(got!.bytes, pattern(id, 64 * KIB), `block ${id} bytes`);
    where.set(got!.source, (where.get(got!.source) ?? 0) + 1);
  }
  assert.ok((where.get('MEM') ?? 0) >= 1 && (where.get('SSD') ?? 0) >= 1 && (where.get('HDD') ?? 0) >= 1, JSON.stringify([...where]));
  for (const t of s.tierStats()) assert.ok(t.usedBytes <= t.capacityBytes, `${t.alias} within its quota`);
});

test('the last tier drops the least recently used droppable blocks when full', async () => {
  const s = await open([mem(128 * KIB), ssd(128 * KIB)]);
  for (let id = 1; id <= 8; id++) await s.putBlock(id, pattern(id, 64 * KIB));
  await s.settle();
  assert.ok(s.blockCount <= 4 && s.blockCount >= 3, `blocks kept: ${s.blockCount}`);
  assert.ok(s.has(8), 'the newest block is kept');
  const { removed } = s.takeChanges();
  assert.ok(removed.length >= 4 && removed.includes(1), `dropped blocks are reported: ${removed}`);
});

test('CACHE_PROMOTE moves a block from SSD back up to MEM', async () => {
  const s = await open([mem(128 * KIB), ssd(1024 * KIB)]);
  for (let id = 1; id <= 4; id++) await s.putBlock(id, pattern(id, 64 * KIB));
  await s.settle();
  const low = [1, 2, 3, 4].find((id) => s.info(id)!.tier === 'SSD')!;
  assert.ok(low !== undefined);
  const plain = await readAll(s, low);
  assert.is(plain!.source, 'SSD', 'a read without promote leaves it in place');
  const promoted = await readAll(s, low, true);
  assert.is(promoted!.source, 'MEM');
  assert.equal(promoted!.bytes, pattern(low, 64 * KIB));
  await s.settle();
  assert.is(s.info(low)!.tier, 'MEM');
  for (let id = 1; id <= 4; id++) assert.equal((await readAll(s, id))!.bytes, pattern(id, 64 * KIB));
});

test('pinned and unpersisted blocks are never dropped: a write that needs their room fails with NO_SPACE', async () => {
  const s = await open([mem(128 * KIB)]);
  await s.putBlock(1, pattern(1, 64 * KIB), { pinned: true });
  await s.putBlock(2, pattern(2, 64 * KIB), { persisted: false });
  try { await s.putBlock(3, pattern(3, 64 * KIB)); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_NO_SPACE'), String(e)); }
  assert.equal((await readAll(s, 1))!.bytes, pattern(1, 64 * KIB));
  assert.equal((await readAll(s, 2))!.bytes, pattern(2, 64 * KIB));
  s.setFlags(2, { persisted: true });
  await s.putBlock(3, pattern(3, 64 * KIB));
  assert.is(s.has(2), false, 'once persisted, the block may go');
  assert.ok(s.has(1) && s.has(3));
});

test('sticky blocks move down a tier but are never dropped from the last one', async () => {
  const s = await open([mem(128 * KIB), ssd(128 * KIB)]);
  for (let id = 1; id <= 4; id++) await s.putBlock(id, pattern(id, 64 * KIB), { persisted: false });
  await s.settle();
  try { await s.putBlock(5, pattern(5, 64 * KIB)); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_NO_SPACE'), String(e)); }
  for (let id = 1; id <= 4; id++) assert.equal((await readAll(s, id))!.bytes, pattern(id, 64 * KIB), `sticky block ${id} kept`);
});

test('a block larger than any tier directory is refused with NO_SPACE', async () => {
  const s = await open([mem(64 * KIB), ssd(64 * KIB)]);
  try { await s.putBlock(1, pattern(1, 128 * KIB)); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_NO_SPACE')); }
  assert.is(s.blockCount, 0);
});

test('remove waits until the block has no reader', async () => {
  const s = await open([mem(64 * KIB), ssd(1024 * KIB)]);
  await s.putBlock(1, pattern(1, 4 * KIB), { tier: 'SSD' });
  const r = (await s.openReader(1))!;
  let removed = false;
  const p = s.remove(1).then((x) => { removed = x; });
  await new Promise((res) => setTimeout(res, 20));
  assert.is(removed, false);
  assert.equal(Uint8Array.from(await r.read(0, 4 * KIB)), pattern(1, 4 * KIB), 'the reader still reads its block');
  r.release();
  await p;
  assert.is(removed, true);
  assert.is(s.has(1), false);
});

test('a reopened store finds the blocks its file tiers hold on disk', async () => {
  const tiers = [mem(64 * KIB), ssd(1024 * KIB), hdd(1024 * KIB)];
  const s1 = await TieredBlockStore.open(tiers);
  await s1.putBlock(10, pattern(10, 8 * KIB), { tier: 'SSD' });
  await s1.putBlock(11, pattern(11, 9 * KIB), { tier: 'HDD' });
  await s1.putBlock(12, pattern(12, 1 * KIB));
  await s1.close();
  const s2 = await open(tiers);
  assert.equal(s2.report().sort((a, b) => a[0] - b[0]), [[10, 8 * KIB], [11, 9 * KIB]]);
  assert.equal((await readAll(s2, 10))!.bytes, pattern(10, 8 * KIB));
  assert.equal((await readAll(s2, 11))!.bytes, pattern(11, 9 * KIB));
});

test('takeChanges reports added and removed blocks once, and restoreChanges gives them back', async () => {
  const s = await open([mem(1024 * KIB)]);
  await s.putBlock(1, pattern(1, 100));
  await s.putBlock(2, pattern(2, 200));
  await s.remove(1);
  const c = s.takeChanges();
  assert.equal(c.added, [[2, 200]]);
  assert.equal(c.removed, [1]);
  assert.equal(s.takeChanges(), { added: [], removed: [] });
  s.restoreChanges(c);
  assert.equal(s.takeChanges(), c);
});

test.run();
