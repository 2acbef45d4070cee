import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PersistQueue, persistBackoffMs, type PersistJob } from '../../worker/persist-queue.js';
import { UfsPool } from '../../worker/ufs-pool.js';

let root = '';
test.before.each(async () => { root = await mkdtemp(join(tmpdir(), 'tessera-pq-')); });
test.after.each(async () => { await rm(root, { recursive: true, force: true }); });

const req = (fileId: number) => ({ fileId, ufsUri: '/x', ufsPath: `f${fileId}`, blockIds: [fileId * 2 ** 24], lengthBytes: 10, blockSizeBytes: 64 });

test('persistBackoffMs doubles from the base and stops at the ceiling', () => {
  assert.equal([0, 1, 2, 3, 10].map((a) => persistBackoffMs(a, 100, 1000)), [100, 200, 400, 800, 1000]);
});

test('a failing write is retried with back-off, then the master is told once', async () => {
  let writes = 0;
  const reports: [number, boolean][] = [];
  const persisted: number[] = [];
  const q = await PersistQueue.open({
    stateDir: root, retryBaseMs: 5, retryMaxMs: 20,
    write: async () => { if (++writes < 3) throw new Error('UFS down'); },
    report: async (j, ok) => { reports.push([j.fileId, ok]); },
    onPersisted: (j) => persisted.push(j.fileId),
  });
  await q.markBlock(1 * 2 ** 24, { unpersisted: true });
  await q.enqueue(req(1));
  await q.idle();
  assert.is(writes, 3);
  assert.equal(reports, [[1, true]]);
  assert.equal(persisted, [1]);
  assert.is(q.unpersisted.size, 0, 'persisted blocks are no longer sticky');
  await q.close();
  const state = JSON.parse(await readFile(join(root, 'worker-state.json'), 'utf8'));
  assert.equal(state.jobs, []);
});

test('pending persists and unpersisted blocks survive a restart and are resumed', async () => {
  const q1 = await PersistQueue.open({
    stateDir: root, retryBaseMs: 60_000, write: async () => { throw new Error('UFS down'); }, report: async () => {}, onPersisted: () => {},
  });
  await q1.markBlock(7, { unpersisted: true, pinned: true });
  await q1.enqueue(req(2));
  await new Promise((r) => setTimeout(r, 50));
  await q1.close();
  const done: PersistJob[] = [];
  const q2 = await PersistQueue.open({
    stateDir: root, write: async (j) => { done.push(j); }, report: async () => {}, onPersisted: () => {},
  });
  assert.ok(q2.unpersisted.has(7));
  assert.ok(q2.pinned.has(7));
  await q2.idle();
  assert.equal(done.map((j) => j.fileId), [2]);
  assert.is(q2.pendingCount, 0);
  await q2.close();
});

test('a job whose UFS write succeeded but whose report failed is only reported again', async () => {
  let writes = 0;
  let reports = 0;
  const q = await PersistQueue.open({
    stateDir: root, retryBaseMs: 5,
    write: async () => { writes++; }, report: async () => { if (++reports < 3) throw new Error('master away'); }, onPersisted: () => {},
  });
  await q.enqueue(req(3));
  await q.idle();
  assert.is(writes, 1);
  assert.is(reports, 3);
  await q.close();
});

test('a job whose blocks are gone is reported lost once and dropped, with no write and no retry', async () => {
  let writes = 0;
  let reportFailures = 1;
  const reports: [number, boolean, boolean | undefined][] = [];
  const lost: [number, number[]][] = [];
  const q = await PersistQueue.open({
    stateDir: root, retryBaseMs: 5, paused: true,
    write: async () => { writes++; },
    report: async (j, ok, isLost) => {
      if (reportFailures-- > 0) throw new Error('master away');
      reports.push([j.fileId, ok, isLost]);
    },
    missingBlocks: (j) => j.blockIds,
    onLost: (j, missing) => lost.push([j.fileId, missing]),
    onPersisted: () => {},
  });
  await q.enqueue(req(4));
  await new Promise((r) => setTimeout(r, 20));
  assert.is(q.jobs()[0]!.attempts, 0, 'a paused queue runs nothing');
  q.resume();
  await q.idle();
  assert.is(writes, 0);
  assert.equal(reports, [[4, false, true]], 'the master is told once the report gets through');
  assert.equal(lost, [[4, [4 * 2 ** 24]]], 'the loss is noted once, not per attempt');
  await q.close();
  const state = JSON.parse(await readFile(join(root, 'worker-state.json'), 'utf8'));
  assert.equal(state.jobs, []);
});

test('markBlocks records the flags of many blocks with one save', async () => {
  const q = await PersistQueue.open({ stateDir: root, write: async () => {}, report: async () => {}, onPersisted: () => {} });
  await q.markBlocks([1, 2, 3], { pinned: true });
  await q.markBlocks([2], { pinned: false });
  assert.equal([...q.pinned].sort(), [1, 3]);
  await q.close();
  const state = JSON.parse(await readFile(join(root, 'worker-state.json'), 'utf8'));
  assert.equal(state.pinned.sort(), [1, 3]);
});

test('the UFS pool writes blocks as one file from a worker thread and reads ranges back', async () => {
  const ufsDir = join(root, 'ufs');
  await mkdir(ufsDir);
  const blockDir = join(root, 'blocks');
  await mkdir(blockDir);
  const { writeFile } = await import('node:fs/promises');
  const b2 = Buffer.alloc(1000, 2);
  await writeFile(join(blockDir, 'b2'), b2);
  const sab = new Uint8Array(new SharedArrayBuffer(500)).fill(1);
  const pool = new UfsPool(1);
  try {
    const n = await pool.persist(`file://${ufsDir}`, 'dir/file', [{ kind: 'bytes', bytes: sab }, { kind: 'file', path: join(blockDir, 'b2'), lengthBytes: 1000 }]);
    assert.is(n, 1500);
    const whole = await readFile(join(ufsDir, 'dir', 'file'));
    assert.is(whole.byteLength, 1500);
    assert.ok(whole.subarray(0, 500).every((x) => x === 1) && whole.subarray(500).every((x) => x === 2));
    const range = await pool.read(ufsDir, 'dir/file', 400, 200);
    assert.equal([...range.subarray(0, 100)].every((x) => x === 1) && [...range.subarray(100)].every((x) => x === 2), true);
    try { await pool.read(ufsDir, '../escape', 0, 1); assert.unreachable(); } catch (e) { assert.match(String((e as Error).message), /Refused UFS path|leaves/); }
  } finally {
    await pool.close();
  }
});

test.run();
