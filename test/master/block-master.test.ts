/**
 * The block master and worker registry with a fake clock: registration, heartbeats, lost-worker
 * detection, re-registration, location updates and command delivery; plus a fast-check model of
 * locations against a plain Map under random reports, losses and re-registrations.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { BlockMaster } from '../../master/block-master.js';
import { isTesseraError } from '../../core/errors.js';
import { MAX_WORKER_COMMAND_BLOCK_IDS, MAX_WORKER_PENDING_COMMANDS } from '../../core/constants.js';
import type { RegisterWorkerRequest } from '../../transports/protocol/master.js';

function reg(address: string, blocks: [number, number][] = []): RegisterWorkerRequest {
  return { address, hostname: address.split(':')[1]!.slice(2), capacityBytes: 1000, usedBytes: 0, blocks };
}
const hb = (workerId: number, added: [number, number][] = [], removed: number[] = []) =>
  ({ workerId, capacityBytes: 1000, usedBytes: 10, addedBlocks: added, removedBlocks: removed });

test('a registered worker reports its blocks and the master knows their locations and lengths', () => {
  let now = 0;
  const bm = new BlockMaster({ clock: () => now, workerTimeoutMs: 100 });
  const w1 = bm.register(reg('tcp://a:1', [[10, 5], [11, 6]]));
  const w2 = bm.register(reg('tcp://b:1', [[11, 6]]));
  assert.equal(bm.locations(11).map((l) => l.workerId), [w1, w2]);
  assert.is(bm.blockLength(10), 5);
  now = 50;
  assert.equal(bm.heartbeat(hb(w1, [[12, 7]], [10])), []);
  assert.equal(bm.locations(10), []);
  assert.equal(bm.locations(12).map((l) => l.workerId), [w1]);
  assert.equal(bm.summary(), { live: 2, lost: 0, capacityBytes: 2000, usedBytes: 10 });
});

test('a worker that misses heartbeats for the timeout is lost and its locations are dropped', () => {
  let now = 0;
  const bm = new BlockMaster({ clock: () => now, workerTimeoutMs: 100 });
  const w1 = bm.register(reg('tcp://a:1', [[1, 1]]));
  const w2 = bm.register(reg('tcp://b:1', [[1, 1]]));
  now = 100;
  assert.equal(bm.detectLostWorkers(), []); // exactly the timeout: not yet
  bm.heartbeat(hb(w2));
  now = 101;
  assert.equal(bm.detectLostWorkers(), [w1]);
  assert.equal(bm.locations(1).map((l) => l.workerId), [w2]);
  assert.equal(bm.workers().map((w) => w.state), ['LOST', 'LIVE']);
  assert.equal(bm.summary().lost, 1);
});

test('a lost or unknown worker is told to register again, and keeps its id when it does', () => {
  let now = 0;
  const bm = new BlockMaster({ clock: () => now, workerTimeoutMs: 100 });
  const w1 = bm.register(reg('tcp://a:1', [[1, 1]]));
  now = 500;
  bm.detectLostWorkers();
  assert.equal(bm.heartbeat(hb(w1)), [{ type: 'register' }]);
  assert.equal(bm.heartbeat(hb(999)), [{ type: 'register' }]);
  assert.is(bm.register(reg('tcp://a:1', [[1, 1], [2, 2]])), w1);
  assert.equal(bm.locations(2).map((l) => l.workerId), [w1]);
  assert.equal(bm.workers().map((w) => w.state), ['LIVE']);
});

test('a re-registration replaces the old block report in full', () => {
  const bm = new BlockMaster({ clock: () => 0 });
  const w = bm.register(reg('tcp://a:1', [[1, 1], [2, 2]]));
  bm.register(reg('tcp://a:1', [[3, 3]]));
  assert.equal(bm.locations(1), []);
  assert.equal(bm.locations(3).map((l) => l.workerId), [w]);
});

test('delete and free become commands in the holders\' next heartbeat reply, once', () => {
  const bm = new BlockMaster({ clock: () => 0 });
  const w1 = bm.register(reg('tcp://a:1', [[1, 1], [2, 2]]));
  const w2 = bm.register(reg('tcp://b:1', [[2, 2]]));
  bm.deleteBlocks([1]);
  bm.freeBlocks([2]);
  bm.queueCommand(w2, { type: 'load', fileId: 0, ufsUri: 'memory://x', ufsPath: 'f', blockIds: [5], lengthBytes: 1, blockSizeBytes: 1 });
  assert.equal(bm.heartbeat(hb(w1)), [{ type: 'delete', blockIds: [1] }, { type: 'free', blockIds: [2] }]);
  assert.equal(bm.heartbeat(hb(w1)), []);
  assert.equal(bm.heartbeat(hb(w2)).map((c) => c.type), ['free', 'load']);
  assert.equal(bm.locations(1), []);
});

test('deletes and frees beyond MAX_WORKER_PENDING_COMMANDS are never dropped: every id reaches the worker over a few heartbeats', () => {
  const n = MAX_WORKER_PENDING_COMMANDS * 2 + MAX_WORKER_COMMAND_BLOCK_IDS / 2;
  const bm = new BlockMaster({ clock: () => 0 });
  const blocks = Array.from({ length: n }, (_, i): [number, number] => [i + 1, 1]);
  const w = bm.register(reg('tcp://a:1', blocks));
  const deleted = blocks.filter(([id]) => id % 2 === 0).map(([id]) => id);
  const freed = blocks.filter(([id]) => id % 2 === 1).map(([id]) => id);
  // In several calls, as many deletes of files would come, one after another.
  for (let i = 0; i < deleted.length; i += 1000) bm.deleteBlocks(deleted.slice(i, i + 1000));
  assert.is(bm.freeBlocks(freed), freed.length);
  const got = { delete: [] as number[], free: [] as number[] };
  let replies = 0;
  for (;;) {
    const cmds = bm.heartbeat(hb(w));
    if (cmds.length === 0) break;
    replies++;
    for (const c of cmds) {
      assert.ok(c.type === 'delete' || c.type === 'free', c.type);
      assert.ok(c.blockIds.length <= MAX_WORKER_COMMAND_BLOCK_IDS, `${c.blockIds.length} ids in one command`);
      got[c.type].push(...c.blockIds);
    }
  }
  assert.equal(got.delete.sort((a, b) => a - b), deleted);
  assert.equal(got.free.sort((a, b) => a - b), freed);
  assert.is(replies, Math.ceil(Math.max(deleted.length, freed.length) / MAX_WORKER_COMMAND_BLOCK_IDS));
});

test('commitBlock from an unregistered worker is WORKER_NOT_FOUND; bad reports are INVALID_ARGUMENT', () => {
  const bm = new BlockMaster({ clock: () => 0 });
  try {
    bm.commitBlock(7, 1, 1);
    assert.unreachable();
  } catch (e) {
    assert.ok(isTesseraError(e, 'TESSERA_ERR_WORKER_NOT_FOUND'));
  }
  try {
    bm.register({ ...reg('tcp://a:1'), capacityBytes: -1 });
    assert.unreachable();
  } catch (e) {
    assert.ok(isTesseraError(e, 'TESSERA_ERR_INVALID_ARGUMENT'));
  }
});

test('bad options are INVALID_ARGUMENT errors that name the option', () => {
  assert.throws(() => new BlockMaster({ workerTimeoutMs: 0 }), /workerTimeoutMs/);
  assert.throws(() => new BlockMaster({ heartbeatIntervalMs: -5 }), /heartbeatIntervalMs/);
});

test('locations always equal a plain model under random reports, losses and re-registrations', () => {
  const addr = fc.constantFrom('tcp://a:1', 'tcp://b:1', 'tcp://c:1');
  const block = fc.integer({ min: 1, max: 6 });
  const op = fc.oneof(
    fc.record({ t: fc.constant('register' as const), a: addr, blocks: fc.uniqueArray(block) }),
    fc.record({ t: fc.constant('heartbeat' as const), a: addr, added: fc.uniqueArray(block), removed: fc.uniqueArray(block) }),
    fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 150 }) }),
    fc.record({ t: fc.constant('delete' as const), b: block }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
    let now = 0;
    const bm = new BlockMaster({ clock: () => now, workerTimeoutMs: 100 });
    const ids = new Map<string, number>();
    const model = new Map<string, { blocks: Set<number>; last: number; live: boolean }>();
    for (const o of ops) {
      if (o.t === 'register') {
        ids.set(o.a, bm.register(reg(o.a, o.blocks.map((b) => [b, b]))));
        model.set(o.a, { blocks: new Set(o.blocks), last: now, live: true });
      } else if (o.t === 'heartbeat') {
        const id = ids.get(o.a);
        if (id === undefined) continue;
        const cmds = bm.heartbeat(hb(id, o.added.map((b) => [b, b]), o.removed));
        const w = model.get(o.a)!;
        if (!w.live) { assert.equal(cmds, [{ type: 'register' }]); continue; }
        w.last = now;
        for (const b of o.added) w.blocks.add(b);
        for (const b of o.removed) w.blocks.delete(b);
      } else if (o.t === 'advance') {
        now += o.ms;
        bm.detectLostWorkers();
        for (const w of model.values()) if (w.live && now - w.last > 100) { w.live = false; w.blocks.clear(); }
      } else {
        bm.deleteBlocks([o.b]);
        for (const w of model.values()) w.blocks.delete(o.b);
      }
      for (let b = 1; b <= 6; b++) {
        const expected = [...model.entries()].filter(([, w]) => w.live && w.blocks.has(b)).map(([a]) => ids.get(a)!).sort();
        assert.equal(bm.locations(b).map((l) => l.workerId).sort(), expected, `block ${b}`);
      }
    }
  }), { numRuns: 300 });
});

test.run();
