import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlockLocks } from '../../worker/block-locks.js';
import { LeaseTable } from '../../worker/leases.js';
import { isTesseraError } from '../../core/errors.js';

test('an exclusive lock waits until every reader has unlocked', async () => {
  const locks = new BlockLocks();
  const r1 = locks.tryRead(7)!;
  const r2 = locks.tryRead(7)!;
  let granted = false;
  const p = locks.exclusive(7).then((u) => { granted = true; return u; });
  await new Promise((r) => setImmediate(r));
  assert.is(granted, false);
  r1();
  await new Promise((r) => setImmediate(r));
  assert.is(granted, false);
  r2();
  const unlock = await p;
  assert.is(granted, true);
  assert.is(locks.tryRead(7), undefined, 'no reader while the mover holds the block');
  unlock();
  assert.ok(locks.tryRead(7));
});

test('a waiting mover stops new readers from entering', async () => {
  const locks = new BlockLocks();
  const r = locks.tryRead(1)!;
  const p = locks.exclusive(1);
  assert.is(locks.tryRead(1), undefined);
  const later = locks.read(1);
  r();
  const u = await p;
  u();
  const r2 = await later;
  assert.is(locks.readers(1), 1);
  r2();
  assert.is(locks.lockedCount, 0, 'state of free blocks is dropped');
});

test('tryExclusive fails while a reader holds the block, and unlock is idempotent', () => {
  const locks = new BlockLocks();
  const r = locks.tryRead(3)!;
  assert.is(locks.tryExclusive(3), undefined);
  r(); r();
  const x = locks.tryExclusive(3);
  assert.ok(x);
  x!();
  assert.is(locks.isLocked(3), false);
});

test('pins of an owner whose lease runs out are released by sweep', () => {
  const t = new LeaseTable({ leaseMs: 1000 });
  const released: number[] = [];
  t.add('a', 1, () => released.push(1), 0);
  t.add('a', 2, () => released.push(2), 0);
  t.add('b', 3, () => released.push(3), 500);
  assert.is(t.sweep(999), 0);
  t.renew('a', 900);
  assert.is(t.sweep(1500), 1);
  assert.equal(released, [3]);
  assert.is(t.sweep(1900), 2);
  assert.equal(released.sort(), [1, 2, 3]);
  try { t.renew('a', 2000); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_LEASE_EXPIRED')); }
});

test('releaseOwner releases every pin of a disconnected client exactly once', () => {
  const t = new LeaseTable({ leaseMs: 1000 });
  let n = 0;
  const p = t.add('c', 1, () => n++, 0);
  t.add('c', 2, () => n++, 0);
  assert.is(t.remove('c', p), true);
  assert.is(t.remove('c', p), false);
  assert.is(t.releaseOwner('c'), 1);
  assert.is(t.releaseOwner('c'), 0);
  assert.is(n, 2);
  assert.is(t.pinCount(), 0);
});

test('an owner cannot hold more pins than its limit', () => {
  const t = new LeaseTable({ leaseMs: 1000, pinsPerOwnerMax: 2 });
  t.add('x', 1, () => {}, 0);
  t.add('x', 2, () => {}, 0);
  try { t.add('x', 3, () => {}, 0); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_LIMIT_EXCEEDED')); }
});

test.run();
