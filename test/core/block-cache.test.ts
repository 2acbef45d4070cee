import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlockCache } from '../../core/block-cache.js';
import type { BlockId } from '../../core/block-cache.js';
import { ErrorCode, isTesseraError } from '../../core/errors.js';
import type { ErrorCodeValue } from '../../core/errors.js';

function bytesOf(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

function throwsCode(fn: () => unknown, code: ErrorCodeValue): void {
  try {
    fn();
  } catch (err) {
    assert.ok(isTesseraError(err, code), `expected ${code}, got ${String(err)}`);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('put then get returns a copy of exactly the bytes put, for numeric and string ids', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 20 });
  const a = bytesOf(5000, 1);
  const b = bytesOf(123, 2);
  assert.ok(c.put(7, a));
  assert.ok(c.put('seven', b));
  assert.ok(c.put('', bytesOf(0, 0)));
  assert.equal(c.get(7), a);
  assert.equal(c.get('seven'), b);
  assert.equal(c.get(''), new Uint8Array(0));
  assert.is(c.get('7'), undefined);
  assert.is(c.get(8), undefined);
  const copy = c.get(7)!;
  copy[0] = copy[0]! ^ 0xff;
  assert.equal(c.get(7), a, 'the copy is not the arena');
  c.checkInvariants();
  c.close();
});

test('acquire returns a 64-byte aligned zero-copy view that stays unchanged after delete and replace until release', () => {
  const c = BlockCache.create({ capacityBytes: 64 * 1024, policy: 'lru' });
  const a = bytesOf(4096, 3);
  c.put(1, a);
  const v = c.acquire(1)!;
  assert.ok(v.bytes.buffer instanceof SharedArrayBuffer);
  assert.is(v.bytes.byteOffset % 64, 0);
  assert.ok(c.delete(1));
  assert.not.ok(c.has(1));
  for (let i = 0; i < 40; i++) c.put(100 + i, bytesOf(4096, i)); // fill and evict around it
  assert.equal(v.bytes, a);
  c.put(1, bytesOf(4096, 9));
  assert.equal(v.bytes, a, 'a replacement goes to another extent');
  const usedBefore = c.stats().usedBytes;
  v.release();
  assert.ok(v.released);
  assert.is(c.stats().usedBytes, usedBefore - 4096, 'the deleted block is freed at the last release');
  c.checkInvariants();
  c.close();
});

test('a block deleted or replaced while viewed is freed after its last release, before a put needs its room', () => {
  // 4 blocks of 16 KiB fill the cache exactly; SIEVE would evict, so the room must come from the sweep.
  const c = BlockCache.create({ capacityBytes: 64 * 1024, policy: 'sieve' });
  for (let k = 0; k < 4; k++) assert.ok(c.put(k, bytesOf(16 * 1024, k)));
  const views = [c.acquire(0)!, c.acquire(0)!, c.acquire(1)!];
  const other = BlockCache.attach(c.handle);
  const otherView = other.acquire(1)!;
  assert.ok(c.delete(0));
  assert.ok(c.put(1, bytesOf(16 * 1024, 11)), 'replacing a viewed block evicts another one');
  assert.is(c.stats().evictions, 1);
  c.checkInvariants(); // the two held, deleted blocks are on the pending-free list
  for (const v of views) v.release();
  assert.equal(otherView.bytes, bytesOf(16 * 1024, 1), 'another owner still holds the old bytes of 1');
  assert.is(c.stats().usedBytes, 4 * 16 * 1024 - 16 * 1024, 'block 0 is given back once its last view is released');
  otherView.release();
  assert.ok(c.put(20, bytesOf(16 * 1024, 20)), 'the room of the released blocks is used without evicting');
  assert.ok(c.put(21, bytesOf(16 * 1024, 21)));
  assert.is(c.stats().evictions, 1, 'no eviction was needed');
  assert.equal(c.get(1), bytesOf(16 * 1024, 11));
  c.checkInvariants();
  other.close();
  c.close();
});

test('a put never fails while released room waits on a long pending-free list', () => {
  const c = BlockCache.create({ capacityBytes: 64 * 1024, maxBlocks: 256, policy: 'lru' });
  let n = 0;
  while (c.stats().evictions === 0) assert.ok(c.put(n++, bytesOf(1024, n))); // fill until full
  const present = [...c.keys()] as number[];
  assert.ok(present.length > 48);
  const viewed = present.slice(0, 40);
  const views = viewed.map((k) => c.acquire(k)!);
  for (const k of viewed) assert.ok(c.delete(k)); // 40 held, deleted blocks: longer than one sweep's share
  for (const k of present.slice(40)) assert.ok(c.pin(k)); // nothing left to evict
  const evictions = c.stats().evictions;
  assert.not.ok(c.put(1000, bytesOf(1024, 1000)), 'no room while the deleted blocks are viewed');
  for (const v of views) v.release();
  for (let k = 0; k < 40; k++) assert.ok(c.put(1000 + k, bytesOf(1024, 1000 + k)), `put ${k} finds the released room`);
  assert.is(c.stats().evictions, evictions, 'nothing was evicted (everything else is pinned)');
  assert.equal(c.get(1039), bytesOf(1024, 1039));
  c.checkInvariants();
  for (const k of present.slice(40)) c.unpin(k);
  c.close();
});

test('release twice throws TESSERA_ERR_ALREADY_RELEASED and leaves the cache consistent', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  c.put('x', bytesOf(10, 1));
  const v = c.acquire('x')!;
  v.release();
  throwsCode(() => v.release(), ErrorCode.ALREADY_RELEASED);
  assert.is(c.stats().pinnedBlocks, 0);
  c.checkInvariants();
  c.close();
});

test('bad ids, non-Uint8Array bytes and blocks larger than the capacity are refused with stable codes', () => {
  const c = BlockCache.create({ capacityBytes: 1000 });
  for (const bad of [1.5, NaN, Infinity, 2 ** 53, -(2 ** 53), {}, null, undefined, 1n, 'x'.repeat(1025)] as unknown[]) {
    throwsCode(() => c.put(bad as BlockId, new Uint8Array(1)), ErrorCode.INVALID_ID);
    throwsCode(() => c.get(bad as BlockId), ErrorCode.INVALID_ID);
    throwsCode(() => c.acquire(bad as BlockId), ErrorCode.INVALID_ID);
    throwsCode(() => c.has(bad as BlockId), ErrorCode.INVALID_ID);
    throwsCode(() => c.delete(bad as BlockId), ErrorCode.INVALID_ID);
  }
  throwsCode(() => c.put(1, [1, 2] as unknown as Uint8Array), ErrorCode.INVALID_ARGUMENT);
  throwsCode(() => c.put(1, new Uint8Array(1001)), ErrorCode.BLOCK_TOO_LARGE);
  assert.ok(c.put(1, new Uint8Array(1000)), 'a block of exactly the capacity fits');
  assert.ok(c.put(-(2 ** 53 - 1), new Uint8Array(0)));
  c.checkInvariants();
  c.close();
});

test('options are checked and name the bad option', () => {
  for (const [opts, name] of [
    [{ capacityBytes: 0 }, 'capacityBytes'], [{ capacityBytes: 1.5 }, 'capacityBytes'], [{}, 'capacityBytes'],
    [{ capacityBytes: 100, policy: 'fifo' }, 'policy'], [{ capacityBytes: 100, maxBlocks: 0 }, 'maxBlocks'],
    [{ capacityBytes: 100, backing: 'disk' }, 'backing'], [{ capacityBytes: 100, ownerLeaseMs: 1 }, 'ownerLeaseMs'],
  ] as const) {
    try {
      BlockCache.create(opts as never);
      assert.unreachable(name);
    } catch (err) {
      assert.ok(isTesseraError(err, ErrorCode.INVALID_ARGUMENT), String(err));
      assert.match((err as Error).message, name);
    }
  }
});

test('eviction inside put keeps usedBytes within capacity and never takes a pinned or acquired block', () => {
  for (const policy of ['lru', 'sieve', 's3fifo'] as const) {
    const c = BlockCache.create({ capacityBytes: 10 * 1024, policy });
    c.put('pinned', bytesOf(1024, 1));
    c.put('viewed', bytesOf(1024, 2));
    assert.ok(c.pin('pinned'));
    const v = c.acquire('viewed')!;
    for (let i = 0; i < 100; i++) {
      assert.ok(c.put(i, bytesOf(1024, i)));
      assert.ok(c.stats().usedBytes <= 10 * 1024);
    }
    assert.ok(c.has('pinned') && c.has('viewed'));
    assert.ok(c.stats().evictions > 80);
    c.unpin('pinned');
    v.release();
    // New blocks that are read right away: LRU ranks them newer; SIEVE's hand skips them and
    // wraps around to the tail, where the formerly pinned blocks wait.
    for (let i = 100; i < 130; i++) {
      c.put(i, bytesOf(1024, i));
      c.get(i);
    }
    assert.not.ok(c.has('pinned') || c.has('viewed'), `${policy}: unpinned blocks become evictable`);
    c.checkInvariants();
    c.close();
  }
});

test('put returns false, changing nothing pinned, when everything is pinned', () => {
  const c = BlockCache.create({ capacityBytes: 4096 });
  assert.ok(c.put(1, bytesOf(2048, 1)));
  assert.ok(c.put(2, bytesOf(1024, 2)));
  c.pin(1);
  c.pin(2);
  assert.not.ok(c.put(3, bytesOf(2048, 3)));
  assert.not.ok(c.has(3));
  assert.equal(c.get(1), bytesOf(2048, 1));
  assert.ok(c.put(4, bytesOf(1024, 4)), 'what fits beside the pinned blocks still goes in');
  c.checkInvariants();
  c.close();
});

test('lru evicts the least recently used block, sieve keeps a visited one', () => {
  const lru = BlockCache.create({ capacityBytes: 3 * 1024, maxBlocks: 3, policy: 'lru' });
  for (const id of [1, 2, 3]) lru.put(id, bytesOf(1000, id));
  lru.put(9, bytesOf(1, 0)); // tick advances
  assert.not.ok(lru.has(1));
  lru.withView(2, () => 0); // 2 is now newer than 3
  lru.put(10, bytesOf(1, 0));
  assert.ok(lru.has(2));
  assert.not.ok(lru.has(3));
  lru.close();
  const sieve = BlockCache.create({ capacityBytes: 3 * 1024, maxBlocks: 3, policy: 'sieve' });
  for (const id of [1, 2, 3]) sieve.put(id, bytesOf(1000, id));
  sieve.get(1);
  sieve.put(4, bytesOf(1000, 4));
  assert.ok(sieve.has(1), 'visited survives');
  assert.not.ok(sieve.has(2));
  sieve.close();
});

test('s3fifo evicts a block read once before one read repeatedly, and names itself', () => {
  const c = BlockCache.create({ capacityBytes: 10 * 1024, maxBlocks: 10, policy: 's3fifo' });
  assert.is(c.policy, 's3fifo');
  for (let i = 0; i < 10; i++) c.put(i, bytesOf(1000, i));
  c.get(0);
  c.get(0);
  for (let i = 10; i < 15; i++) c.put(i, bytesOf(1000, i));
  assert.ok(c.has(0), 'hit twice: promoted to the main queue');
  assert.not.ok(c.has(1));
  c.checkInvariants();
  c.close();
});

test('the table limit (maxBlocks) is enforced by evicting', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 20, maxBlocks: 4 });
  for (let i = 0; i < 10; i++) assert.ok(c.put(i, bytesOf(10, i)));
  assert.is(c.stats().blockCount, 4);
  assert.equal([...c.keys()].sort(), [6, 7, 8, 9]);
  c.checkInvariants();
  c.close();
});

test('canEvict vetoes victims and onEvict sees each victim\'s bytes before they are freed', () => {
  const evicted: Array<[BlockId, number]> = [];
  const c = BlockCache.create({
    capacityBytes: 4 * 1024, maxBlocks: 4,
    canEvict: (id) => id !== 'keep',
    onEvict: (id, bytes) => { evicted.push([id, bytes[0]!]); },
  });
  c.put('keep', bytesOf(1024, 50));
  for (let i = 0; i < 8; i++) c.put(i, bytesOf(1000, i));
  assert.ok(c.has('keep'));
  assert.is(evicted.length, 5);
  assert.equal(evicted[0], [0, bytesOf(1, 0)[0]]);
  assert.not.ok(evicted.some(([id]) => id === 'keep'));
  c.close();
});

test('evicting puts of one size (the victim\'s extent passes to the new block) keep every byte, hook and invariant, under every policy', () => {
  for (const policy of ['sieve', 'lru', 's3fifo'] as const) {
    const size = 4096;
    const hooked: string[] = [];
    const c = BlockCache.create({
      capacityBytes: 8 * size, policy,
      onEvict: (id, bytes) => {
        // The victim's bytes are intact when the hook runs (its extent is reused only after).
        if (!Buffer.from(bytes).equals(Buffer.from(bytesOf(size, id as number)))) hooked.push(`${policy}: victim ${String(id)} changed before its hook`);
      },
    });
    const held = new Map<number, ReturnType<BlockCache['acquire']>>();
    for (let i = 0; i < 2000; i++) {
      assert.ok(c.put(i, bytesOf(size, i)), `${policy}: put ${i}`);
      // Keep a few views open across puts: held blocks are never victims, their bytes stay.
      if (i % 7 === 0) held.set(i, c.acquire(i));
      if (i % 7 === 3) { const old = [...held.keys()][0]; if (old !== undefined) { held.get(old)!.release(); held.delete(old); } }
      for (const [id, v] of held) assert.ok(Buffer.from(v!.bytes).equals(Buffer.from(bytesOf(size, id))), `${policy}: held view of ${id} unchanged`);
      if (i % 250 === 0) c.checkInvariants();
    }
    for (const id of c.keys()) assert.ok(Buffer.from(c.get(id)!).equals(Buffer.from(bytesOf(size, id as number))), `${policy}: block ${String(id)} reads back`);
    const st = c.stats();
    assert.is(st.usedBytes, st.blockCount * size);
    assert.ok(st.evictions >= 2000 - 8 - held.size, `${policy}: evicted ${st.evictions}`);
    assert.equal(hooked, []);
    for (const v of held.values()) v!.release();
    c.checkInvariants();
    c.close();
  }
});

test('an eviction hook that calls into the cache gets an error, and the put still completes', () => {
  let seen: unknown;
  const c = BlockCache.create({
    capacityBytes: 2048, maxBlocks: 2,
    onEvict: () => { try { c.get(1); } catch (err) { seen = err; } },
  });
  c.put(1, bytesOf(1000, 1));
  c.put(2, bytesOf(1000, 2));
  assert.ok(c.put(3, bytesOf(1000, 3)));
  assert.ok(isTesseraError(seen, ErrorCode.INVALID_ARGUMENT));
  c.checkInvariants();
  c.close();
});

test('pin and unpin: unpin without a pin throws ALREADY_RELEASED; unpin works after delete', () => {
  const c = BlockCache.create({ capacityBytes: 8192 });
  c.put('p', bytesOf(100, 1));
  assert.ok(c.pin('p'));
  assert.not.ok(c.pin('absent'));
  throwsCode(() => c.unpin('absent'), ErrorCode.ALREADY_RELEASED);
  const used = c.stats().usedBytes;
  c.delete('p');
  assert.is(c.stats().usedBytes, used, 'still pinned');
  c.unpin('p');
  assert.is(c.stats().usedBytes, used - 100);
  throwsCode(() => c.unpin('p'), ErrorCode.ALREADY_RELEASED);
  c.checkInvariants();
  c.close();
});

test('pinsPerOwner bounds the blocks one thread pins: TESSERA_ERR_LIMIT_EXCEEDED', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16, pinsPerOwner: 3 });
  for (let i = 0; i < 5; i++) c.put(i, bytesOf(10, i));
  for (const i of [0, 1, 2, 0]) assert.ok(c.pin(i)); // pinning the same block again: same record
  throwsCode(() => c.pin(3), ErrorCode.LIMIT_EXCEEDED);
  const v = c.acquire(3)!; // views are not bounded by pinsPerOwner
  assert.is(c.stats().pinnedBlocks, 4);
  for (const i of [0, 1, 2, 0]) c.unpin(i);
  v.release();
  assert.ok(c.pin(3));
  c.unpin(3);
  assert.is(c.stats().pinnedBlocks, 0);
  c.close();
});

test('putWith writes the block in place; a throwing fill drops it; getInto copies without allocating', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  assert.ok(c.putWith('w', 300, (b) => b.set(bytesOf(300, 4))));
  assert.equal(c.get('w'), bytesOf(300, 4));
  const used = c.stats().usedBytes;
  assert.throws(() => c.putWith('x', 500, () => { throw new Error('fill failed'); }), /fill failed/);
  assert.not.ok(c.has('x'));
  assert.is(c.stats().usedBytes, used);
  const target = new Uint8Array(400);
  assert.is(c.getInto('w', target), 300);
  assert.equal(target.subarray(0, 300), bytesOf(300, 4));
  assert.is(c.getInto('none', target), -1);
  throwsCode(() => c.getInto('w', new Uint8Array(10)), ErrorCode.INVALID_ARGUMENT);
  throwsCode(() => c.putWith('y', -1, () => {}), ErrorCode.INVALID_ARGUMENT);
  assert.is(c.stats().pinnedBlocks, 0);
  c.checkInvariants();
  c.close();
});

test('acquireHandle/handleBytes/releaseHandle: a zero-copy view without an object; releasing more than acquired throws', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  c.put('h', bytesOf(500, 8));
  const h = c.acquireHandle('h');
  assert.ok(h >= 0);
  assert.is(c.acquireHandle('nope'), -1);
  assert.equal(c.handleBytes(h), bytesOf(500, 8));
  const h2 = c.acquireHandle('h');
  assert.is(h2, h, 'the same block has the same handle');
  c.delete('h');
  assert.equal(c.handleBytes(h), bytesOf(500, 8), 'still valid after delete');
  c.releaseHandle(h);
  assert.is(c.stats().usedBytes, 500);
  c.releaseHandle(h2);
  assert.is(c.stats().usedBytes, 0, 'freed at the last release');
  throwsCode(() => c.releaseHandle(h), ErrorCode.ALREADY_RELEASED);
  throwsCode(() => c.handleBytes(h), ErrorCode.ALREADY_RELEASED);
  throwsCode(() => c.releaseHandle(-3), ErrorCode.INVALID_ARGUMENT);
  throwsCode(() => c.releaseHandle(1e9), ErrorCode.INVALID_ARGUMENT);
  c.checkInvariants();
  c.close();
});

test('stats counts hits, misses, blocks and fragmentation', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  c.put(1, bytesOf(100, 1));
  c.get(1);
  c.acquire(1)!.release();
  c.withView(1, (b) => b.length);
  c.get(2);
  const s = c.stats();
  assert.is(s.hits, 3);
  assert.is(s.misses, 1);
  assert.is(s.blockCount, 1);
  assert.is(s.usedBytes, 100);
  assert.is(s.owners, 1);
  assert.is(s.fragmentation, 0);
  c.close();
});

test('usage() reports what stats() does of capacity, used bytes and blocks, through puts, deletes while viewed and evictions; CLOSED after close', () => {
  const c = BlockCache.create({ capacityBytes: 8 * 4096 });
  const same = (): void => {
    const u = c.usage();
    const s = c.stats();
    assert.equal(u, { capacityBytes: s.capacityBytes, usedBytes: s.usedBytes, blockCount: s.blockCount });
  };
  same();
  for (let i = 0; i < 5; i++) c.put(i, bytesOf(4000 + i, i));
  same();
  const v = c.acquire(2)!;
  c.delete(2); // held: its room waits for the release
  same();
  v.release();
  same(); // the released room is swept first, as in stats()
  assert.is(c.usage().blockCount, 4);
  for (let i = 10; i < 30; i++) c.put(i, bytesOf(4096, i)); // evicting
  same();
  assert.ok(c.usage().usedBytes <= 8 * 4096);
  c.close();
  throwsCode(() => c.usage(), ErrorCode.CLOSED);
});

test('withView passes the bytes and returns fn\'s result; a throwing fn still releases', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  c.put('a', bytesOf(64, 5));
  assert.is(c.withView('a', (b) => b[3]), bytesOf(64, 5)[3]);
  assert.is(c.withView('zz', () => 1), undefined);
  assert.throws(() => c.withView('a', () => { throw new Error('boom'); }), /boom/);
  assert.is(c.stats().pinnedBlocks, 0);
  c.close();
});

test('use after close throws TESSERA_ERR_CLOSED; attaching a closed cache\'s handle throws too', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  c.put(1, bytesOf(10, 1));
  const other = BlockCache.attach(c.handle);
  const handle = c.handle;
  c.close();
  c.close();
  for (const op of [() => c.put(2, new Uint8Array(1)), () => c.get(1), () => c.acquire(1), () => c.has(1), () => c.delete(1), () => c.stats()]) {
    throwsCode(op, ErrorCode.CLOSED);
  }
  throwsCode(() => other.get(1), ErrorCode.CLOSED);
  throwsCode(() => BlockCache.attach(handle), ErrorCode.CLOSED);
  throwsCode(() => BlockCache.attach({ kind: 'sab', buffer: new SharedArrayBuffer(1024) }), ErrorCode.BAD_HANDLE);
  throwsCode(() => BlockCache.attach({ kind: 'nope' } as never), ErrorCode.BAD_HANDLE);
  other.close();
});

test('a view released after its instance closed throws TESSERA_ERR_CLOSED; one of an attached instance still releases after the creator closed', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  c.put('a', bytesOf(500, 2));
  const d = BlockCache.attach(c.handle);
  const e = BlockCache.attach(c.handle);
  const dv = d.acquire('a')!;
  const ev = e.acquire('a')!;
  const cv = c.acquire('a')!;
  d.close();
  throwsCode(() => dv.release(), ErrorCode.CLOSED);
  assert.is(c.stats().pinnedBlocks, 1, 'e and c still hold the block');
  c.close();
  throwsCode(() => cv.release(), ErrorCode.CLOSED);
  assert.equal(ev.bytes, bytesOf(500, 2), 'the attached instance\'s view is unchanged');
  ev.release();
  throwsCode(() => ev.release(), ErrorCode.ALREADY_RELEASED);
  throwsCode(() => e.get('a'), ErrorCode.CLOSED);
  e.close();
});

test('two instances on one arena see each other\'s blocks; closing an attached one releases its views only', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  const d = BlockCache.attach(c.handle);
  c.put('a', bytesOf(300, 1));
  assert.equal(d.get('a'), bytesOf(300, 1));
  const v = d.acquire('a')!;
  assert.is(c.stats().pinnedBlocks, 1);
  assert.is(c.stats().owners, 2);
  d.close();
  assert.is(c.stats().pinnedBlocks, 0);
  assert.is(c.stats().owners, 1);
  assert.ok(v.bytes.length === 300);
  c.checkInvariants();
  c.close();
});

test('keys() iterates the ids stored now', () => {
  const c = BlockCache.create({ capacityBytes: 1 << 16 });
  const ids: BlockId[] = [1, 'b', -5, 'ü\u{1F600}', 2 ** 40];
  for (const id of ids) c.put(id, bytesOf(10, 0));
  c.delete('b');
  assert.equal(new Set(c.keys()), new Set([1, -5, 'ü\u{1F600}', 2 ** 40]));
  c.close();
});

test('import { BlockCache } from \'tessera\' resolves (package self-reference) to the same class', async () => {
  const pkg = (await import('tessera')) as { BlockCache: unknown };
  assert.is(pkg.BlockCache, BlockCache);
});

test.run();
