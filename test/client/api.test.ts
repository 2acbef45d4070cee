// The FileSystem API's metadata operations and its errors, over embedded() (inproc): every
// error that reaches a caller is a TesseraError with a stable code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embedded, isTesseraError } from '../../index.js';
import type { FileSystem } from '../../client/file-system.js';
import { MIB, pattern, spyBlockReads, waitFor } from './cluster-fixture.js';

let fs: Awaited<ReturnType<typeof embedded>>;
const dir = mkdtempSync(join(tmpdir(), 'tessera-api-'));

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
    assert.unreachable(`expected ${code}`);
  } catch (err) {
    assert.ok(isTesseraError(err), `not a TesseraError: ${String(err)}`);
    assert.is((err as { code: string }).code, code, (err as Error).message);
  }
}

test.before(async () => { fs = await embedded({ workers: 1, ufsUri: dir, heartbeatIntervalMs: 100 }); });
test.after(async () => { await fs.close(); rmSync(dir, { recursive: true, force: true }); });

test('mkdir, listStatus, getStatus, exists, rename and delete shape the namespace', async () => {
  await fs.mkdir('/a/b/c', { recursive: true });
  await fs.writeFile('/a/b/c/f', 'x');
  await fs.writeFile('/a/g', 'yy');
  assert.equal((await fs.listStatus('/a')).map((s) => s.name), ['b', 'g']);
  assert.equal((await fs.listStatus('/a', { recursive: true })).map((s) => s.path), ['/a/b', '/a/b/c', '/a/b/c/f', '/a/g']);
  assert.is((await fs.getStatus('/a/g')).lengthBytes, 2);
  assert.ok(await fs.exists('/a/b/c/f'));
  await fs.rename('/a/g', '/a/h');
  assert.not.ok(await fs.exists('/a/g'));
  await rejectsWith(fs.delete('/a'), 'TESSERA_ERR_DIRECTORY_NOT_EMPTY');
  await fs.delete('/a', { recursive: true });
  assert.not.ok(await fs.exists('/a'));
});

test('setAttribute sets pin, TTL and mode, and null removes the TTL', async () => {
  await fs.writeFile('/attr', 'z');
  let st = await fs.setAttribute('/attr', { pinned: true, ttlMs: 60_000, ttlAction: 'FREE', mode: 0o600 });
  assert.equal([st.pinned, st.ttlMs, st.ttlAction, st.mode], [true, 60_000, 'FREE', 0o600]);
  st = await fs.setAttribute('/attr', { ttlMs: null, pinned: false });
  assert.equal([st.pinned, st.ttlMs], [false, -1]);
});

test('mount, persist, free, load and unmount work through the API', async () => {
  const ufs2 = mkdtempSync(join(dir, 'm2-'));
  writeFileSync(join(ufs2, 'old.bin'), pattern(MIB + 1, 8));
  await fs.mount('/m2', ufs2);
  assert.ok((await fs.getMountTable()).some((m) => m.path === '/m2'));
  assert.ok((await fs.readFile('/m2/old.bin')).equals(pattern(MIB + 1, 8)), 'a file already in the UFS reads through');
  await fs.writeFile('/m2/new.bin', pattern(2 * MIB, 9), { blockSize: MIB });
  const st = await fs.persist('/m2/new.bin', { wait: true, timeoutMs: 30_000 });
  assert.is(st.persistenceState, 'PERSISTED');
  assert.ok(readFileSync(join(ufs2, 'new.bin')).equals(pattern(2 * MIB, 9)));
  await fs.free('/m2/new.bin');
  await waitFor(async () => (await fs.getBlockLocations('/m2/new.bin')).blocks.every((b) => b.locations.length === 0), 'blocks freed');
  const progress: number[] = [];
  const r = await fs.load('/m2/new.bin', { onProgress: (done) => progress.push(done) });
  assert.is(r.loadedBytes, 2 * MIB);
  assert.is(progress[progress.length - 1], 2 * MIB);
  assert.ok((await fs.getBlockLocations('/m2/new.bin')).blocks.every((b) => b.locations.length === 1));
  await fs.unmount('/m2');
  assert.not.ok(await fs.exists('/m2'));
});

test('errors reaching the caller carry stable codes', async () => {
  await rejectsWith(fs.openFile('/missing'), 'TESSERA_ERR_FILE_NOT_FOUND');
  await fs.mkdir('/dir');
  await rejectsWith(fs.openFile('/dir'), 'TESSERA_ERR_IS_A_DIRECTORY');
  await rejectsWith(fs.mkdir('/dir'), 'TESSERA_ERR_FILE_ALREADY_EXISTS');
  await rejectsWith(fs.getStatus('relative'), 'TESSERA_ERR_INVALID_PATH');
  await rejectsWith(fs.createFile('/x', { writeType: 'FAST' as never }), 'TESSERA_ERR_INVALID_ARGUMENT');
  await rejectsWith(fs.createFile('/x', { blockSize: 'huge' }), 'TESSERA_ERR_INVALID_ARGUMENT');
  await rejectsWith(fs.createFile('/not-mounted', { writeType: 'THROUGH' }), 'TESSERA_ERR_NOT_MOUNTED');
  const out = await fs.createFile('/incomplete');
  await out.write(Buffer.from('abc'));
  await rejectsWith(fs.openFile('/incomplete'), 'TESSERA_ERR_FILE_INCOMPLETE');
  await out.close();
  await rejectsWith(out.write(Buffer.from('more')), 'TESSERA_ERR_CLOSED');
  const input = await fs.openFile('/incomplete');
  await input.close();
  await rejectsWith(input.read(Buffer.alloc(1)), 'TESSERA_ERR_CLOSED');
  await rejectsWith(() => input.seek(-1), 'TESSERA_ERR_INVALID_ARGUMENT');
});

test('a sequential reader that pauses longer than its cursor lives picks up at the right byte', async () => {
  const data = pattern(2 * MIB, 31);
  await fs.writeFile('/paused', data, { blockSize: MIB });
  const input = await fs.openFile('/paused');
  const a = Buffer.alloc(1000);
  assert.is(await input.read(a), 1000);
  await new Promise((r) => setTimeout(r, 1300)); // past CLIENT_CURSOR_MAX_AGE_MS: the stream is given back
  const b = Buffer.alloc(MIB);
  assert.is(await input.read(b), MIB);
  assert.ok(a.equals(data.subarray(0, 1000)) && b.equals(data.subarray(1000, 1000 + MIB)));
  await input.close();
});

test('a write at a position fails with TESSERA_ERR_INVALID_ARGUMENT (files are append-only), and the stream carries on', async () => {
  const out = await fs.createFile('/append-only');
  await out.write(Buffer.from('abc'));
  // JavaScript callers can pass a position; TypeScript ones cannot.
  const writeAt = out.write as unknown as (data: Uint8Array, position: number) => Promise<void>;
  await rejectsWith(writeAt.call(out, Buffer.from('X'), 1), 'TESSERA_ERR_INVALID_ARGUMENT');
  await rejectsWith(writeAt.call(out, Buffer.from('X'), 3), 'TESSERA_ERR_INVALID_ARGUMENT');
  await out.write(Buffer.from('def'));
  await out.close();
  assert.is((await fs.readFile('/append-only')).toString(), 'abcdef');
  await rejectsWith(() => fs.createWriteStream('/append-only-2', { start: 10 } as never), 'TESSERA_ERR_INVALID_ARGUMENT');
  assert.not.ok(await fs.exists('/append-only-2'));
});

test('a sequential reader has the next block read ahead before it reaches the boundary, with read() and chunks()', async () => {
  const data = pattern(12 * MIB, 33);
  await fs.writeFile('/ahead', data, { blockSize: 4 * MIB });
  const { blocks } = await fs.getBlockLocations('/ahead');
  const spy = spyBlockReads();
  try {
    const input = await fs.openFile('/ahead');
    const got = Buffer.alloc(data.length);
    let at = 0;
    const askedBefore: number[] = [];
    while (at < got.length) {
      // What had been asked when the reader crossed into each block.
      if (at % (4 * MIB) === 0) askedBefore.push(spy.reads.length);
      const n = await input.read(got.subarray(at, at + MIB));
      at += n;
    }
    await input.close();
    assert.ok(got.equals(data));
    assert.equal(spy.reads.map((r) => r.blockId), blocks.map((b) => b.blockId), 'each block read once, in order');
    assert.equal(askedBefore, [0, 2, 3], 'blocks 1 and 2 were asked for while the block before was still being read');
    spy.reads.length = 0;
    const in2 = await fs.openFile('/ahead');
    const parts: Uint8Array[] = [];
    for await (const chunk of in2.chunks()) parts.push(chunk);
    await in2.close();
    assert.ok(Buffer.concat(parts).equals(data));
    assert.equal(spy.reads.map((r) => r.blockId), blocks.map((b) => b.blockId));
  } finally {
    spy.restore();
  }
});

test('a block read ahead is dropped when the reader seeks elsewhere, and the bytes stay right', async () => {
  const data = pattern(8 * MIB, 34);
  await fs.writeFile('/ahead-seek', data, { blockSize: 2 * MIB });
  const input = await fs.openFile('/ahead-seek');
  const a = Buffer.alloc(MIB + 512 * 1024);
  assert.is(await input.read(a), a.length); // block 1 is now read ahead
  input.seek(6 * MIB + 5);
  const b = Buffer.alloc(MIB);
  assert.is(await input.read(b), MIB);
  input.seek(2 * MIB);
  const c2 = Buffer.alloc(3 * MIB);
  assert.is(await input.read(c2), 3 * MIB);
  assert.ok(a.equals(data.subarray(0, a.length)) && b.equals(data.subarray(6 * MIB + 5, 7 * MIB + 5)) && c2.equals(data.subarray(2 * MIB, 5 * MIB)));
  await input.close();
  // Nothing is left pinned or streaming: the file goes and its blocks with it.
  await fs.delete('/ahead-seek');
  assert.not.ok(await fs.exists('/ahead-seek'));
});

test('a block read ahead is given back when the reader stops at a block boundary and idles', async () => {
  const data = pattern(4 * MIB, 35);
  await fs.writeFile('/ahead-idle', data, { blockSize: 2 * MIB });
  const spy = spyBlockReads();
  try {
    const input = await fs.openFile('/ahead-idle');
    const a = Buffer.alloc(MIB);
    for (let i = 0; i < 2; i++) assert.is(await input.read(a), MIB); // exactly block 0
    assert.ok(a.equals(data.subarray(MIB, 2 * MIB)));
    assert.is(spy.reads.length, 2, 'block 1 is read ahead');
    assert.ok(spy.reads[0]!.closed && !spy.reads[1]!.closed);
    await waitFor(() => spy.reads[1]!.closed, 'the read ahead to be given back', 5000);
    // The reader carries on from the right byte after the idle.
    assert.is(await input.read(a), MIB);
    assert.ok(a.equals(data.subarray(2 * MIB, 3 * MIB)));
    await input.close();
    assert.ok(spy.reads.every((r) => r.closed), 'close() gives every read back');
  } finally {
    spy.restore();
  }
});

test('cancel() drops a file being written', async () => {
  const out = await fs.createFile('/cancelled', { blockSize: MIB });
  await out.write(pattern(MIB + 5, 1));
  await out.cancel();
  assert.not.ok(await fs.exists('/cancelled'));
});

test('a write stream destroyed before end() leaves no file behind', async () => {
  const ws = fs.createWriteStream('/destroyed', { blockSize: MIB });
  await new Promise<void>((resolve, reject) => ws.write(pattern(MIB + 10, 2), (err) => (err ? reject(err) : resolve())));
  const closed = new Promise((r) => ws.once('close', r));
  ws.destroy();
  await closed;
  await waitFor(async () => !(await fs.exists('/destroyed')), 'the incomplete file to go');
});

function weakRefsOf(fs: Awaited<ReturnType<typeof embedded>>): { arena: WeakRef<SharedArrayBuffer>; staging: WeakRef<Buffer> } {
  const handle = fs.cluster.workers[0]!.store.mem!.handle;
  assert.is(handle.kind, 'sab');
  const store = fs.cluster.workers[0]!.store;
  const b = store.takeStaging(8 * MIB);
  store.giveStaging(b);
  return { arena: new WeakRef((handle as { buffer: SharedArrayBuffer }).buffer), staging: new WeakRef(b) };
}

test('a closed embedded() FileSystem that the caller still holds keeps no worker arena or staging memory', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) { assert.ok(true, 'needs --expose-gc (npm test gives it)'); return; }
  const held = await embedded({ workers: 1, workerMemBytes: 128 * MIB });
  try {
    await held.writeFile('/big', pattern(8 * MIB, 3), { blockSize: 8 * MIB });
    // A read attaches the client to the worker's engine (by its key in this thread).
    assert.ok((await held.readFile('/big')).equals(pattern(8 * MIB, 3)));
    // Weak references to what close() must let go of: the arena and a staging buffer the store
    // keeps for reuse (made in a plain function, so that no strong reference stays in this frame).
    const { arena, staging } = weakRefsOf(held);
    await held.close();
    // `held` and its cluster (hosts, stores, tiers) stay reachable from here; their buffers may not.
    assert.ok(held.cluster.workers.length === 1);
    const gone = async (r: WeakRef<object>): Promise<boolean> => {
      for (const end = Date.now() + 10_000; Date.now() < end;) {
        await new Promise((res) => setTimeout(res, 20));
        gc();
        if (r.deref() === undefined) return true;
      }
      return false;
    };
    assert.ok(await gone(arena), 'the worker arena is collected after close');
    assert.ok(await gone(staging), 'the staging buffers are collected after close');
    await rejectsWith(held.getStatus('/big'), 'TESSERA_ERR_CLOSED');
  } finally {
    await held.close();
  }
});

test('a client of embedded() pins blocks in its worker\'s SharedArrayBuffer engine: after the first open of a file, no call per block', async () => {
  const data = pattern(6 * MIB + 3, 97);
  await fs.writeFile('/engine', data, { blockSize: 2 * MIB });
  const worker = fs.cluster.workers[0]!;
  const [w] = await fs.getWorkers();
  const link = await fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname }) as { enginePath?: string; shortCircuit: boolean; volatileChunks: boolean };
  assert.ok((await fs.readFile('/engine')).equals(data));
  assert.is(link.enginePath, worker.store.mem!.isolateKey, 'attached by the key the worker registered in this thread');
  assert.ok(link.shortCircuit && link.volatileChunks, 'chunks are views of the engine: consumers copy what they keep');
  // Every open the worker serves goes through store.openReader: count them.
  const openReader = worker.store.openReader.bind(worker.store);
  let opens = 0;
  worker.store.openReader = (...args: Parameters<typeof openReader>) => { opens++; return openReader(...args); };
  try {
    assert.ok((await fs.readFile('/engine')).equals(data));
    const kept: Buffer[] = [];
    for await (const chunk of (await fs.openFile('/engine')).chunks()) kept.push(chunk as Buffer);
    assert.ok(Buffer.concat(kept).equals(data), 'chunks kept across the reads are right');
  } finally {
    worker.store.openReader = openReader;
  }
  assert.is(opens, 0, 'no open went to the worker');
  await waitFor(() => worker.store.mem!.stats().pinnedBlocks === 0, 'every pin released');
  await fs.delete('/engine');
});

test('a closed FileSystem refuses calls with TESSERA_ERR_CLOSED', async () => {
  const other = await embedded({ workers: 0 });
  await other.close();
  await rejectsWith(other.getStatus('/'), 'TESSERA_ERR_CLOSED');
});

test.run();
