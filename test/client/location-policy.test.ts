import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  orderWorkersForWrite, orderSourcesForRead, parseLocationPolicy, LOCATION_POLICIES, type WorkerCandidate,
} from '../../client/location-policy.js';
import { MIB } from '../../core/constants.js';
import { isTesseraError } from '../../core/errors.js';

const workers: WorkerCandidate[] = [
  { id: 1, host: 'a', capacityBytes: 100 * MIB, usedBytes: 90 * MIB }, // 10 MiB free, local
  { id: 2, host: 'b', capacityBytes: 100 * MIB, usedBytes: 10 * MIB }, // 90 free
  { id: 3, host: 'c', capacityBytes: 100 * MIB, usedBytes: 50 * MIB }, // 50 free
  { id: 4, host: 'b', capacityBytes: 1 * MIB, usedBytes: 0 }, // too small for a 4 MiB block
];
const ctx = { clientHosts: ['a'], blockSizeBytes: 4 * MIB, cursor: 0 };
const ids = (ws: { id: number }[]) => ws.map((w) => w.id);

test('LocalFirst puts the worker on the client host first, then the others by free space', () => {
  assert.equal(ids(orderWorkersForWrite('LocalFirst', workers, ctx)), [1, 2, 3, 4]);
});

test('LocalFirst with no local worker orders by free space', () => {
  assert.equal(ids(orderWorkersForWrite('LocalFirst', workers, { ...ctx, clientHosts: ['z'] })), [2, 3, 1, 4]);
});

test('MostAvailableFirst orders by free bytes, ties by id', () => {
  const tied = [...workers, { id: 0, host: 'd', capacityBytes: 100 * MIB, usedBytes: 10 * MIB }];
  assert.equal(ids(orderWorkersForWrite('MostAvailableFirst', tied, ctx)), [0, 2, 3, 1, 4]);
});

test('RoundRobin rotates the eligible workers by the cursor', () => {
  assert.equal(ids(orderWorkersForWrite('RoundRobin', workers, { ...ctx, cursor: 0 })), [1, 2, 3, 4]);
  assert.equal(ids(orderWorkersForWrite('RoundRobin', workers, { ...ctx, cursor: 1 })), [2, 3, 1, 4]);
  assert.equal(ids(orderWorkersForWrite('RoundRobin', workers, { ...ctx, cursor: 5 })), [3, 1, 2, 4]);
});

test('SpecificHost keeps only the workers of that host', () => {
  assert.equal(ids(orderWorkersForWrite('SpecificHost', workers, { ...ctx, host: 'b' })), [2, 4]);
  assert.equal(ids(orderWorkersForWrite('SpecificHost', workers, { ...ctx, host: 'nowhere' })), []);
});

test('every policy returns a permutation of a subset of the workers, never inventing one', () => {
  const arbWorkers = fc.uniqueArray(
    fc.record({ id: fc.nat(50), host: fc.constantFrom('a', 'b', 'c'), capacityBytes: fc.nat(1000), usedBytes: fc.nat(1000) }),
    { selector: (w) => w.id, maxLength: 8 },
  );
  fc.assert(fc.property(arbWorkers, fc.constantFrom(...LOCATION_POLICIES), fc.nat(20), fc.nat(1000), (ws, policy, cursor, block) => {
    const out = orderWorkersForWrite(policy, ws, { clientHosts: ['a'], blockSizeBytes: block, cursor, host: 'b' });
    assert.equal(new Set(out.map((w) => w.id)).size, out.length);
    for (const w of out) assert.ok(ws.some((x) => x === w));
    if (policy !== 'SpecificHost') assert.is(out.length, ws.length);
    else assert.is(out.length, ws.filter((w) => w.host === 'b').length);
  }));
});

test('a read tries the local copy first, then rotates remote copies, failed workers last', () => {
  const sources = [{ workerId: 3, host: 'c' }, { workerId: 1, host: 'a' }, { workerId: 2, host: 'b' }, { workerId: 4, host: 'd' }];
  assert.equal(orderSourcesForRead(sources, ['a'], 0).map((s) => s.workerId), [1, 2, 3, 4]);
  assert.equal(orderSourcesForRead(sources, ['a'], 1).map((s) => s.workerId), [1, 3, 4, 2]);
  assert.equal(orderSourcesForRead(sources, ['a'], 0, new Set([1, 3])).map((s) => s.workerId), [2, 4, 3, 1]);
});

test('parseLocationPolicy accepts names in any case and SpecificHost with a host', () => {
  assert.equal(parseLocationPolicy(undefined), { policy: 'LocalFirst' });
  assert.equal(parseLocationPolicy('roundrobin'), { policy: 'RoundRobin' });
  assert.equal(parseLocationPolicy('SpecificHost:10.0.0.5'), { policy: 'SpecificHost', host: '10.0.0.5' });
  assert.equal(parseLocationPolicy({ policy: 'SpecificHost', host: 'h' }), { policy: 'SpecificHost', host: 'h' });
});

test('parseLocationPolicy rejects unknown names and SpecificHost without a host, naming the option', () => {
  for (const bad of ['Nearest', 'SpecificHost', { policy: 'SpecificHost' }, 42]) {
    try {
      parseLocationPolicy(bad, 'locationPolicy');
      assert.unreachable('should throw');
    } catch (err) {
      assert.ok(isTesseraError(err, 'TESSERA_ERR_INVALID_ARGUMENT'));
      assert.match((err as Error).message, 'locationPolicy');
    }
  }
});

test.run();
