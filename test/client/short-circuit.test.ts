// Short-circuit reads: a client on the worker's host reads blocks straight out of the worker's
// /dev/shm arena (native module), byte-exact, sequentially and positionally; without the native
// module the same reads go by stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nativeAvailable } from '../../native/index.js';
import { CLIENT_VIEW_YIELD_BYTES } from '../../core/constants.js';
import { MIB, pattern, tcpCluster, type TcpCluster } from './cluster-fixture.js';

async function waitUntil(ok: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) if (ok()) return true;
  return ok();
}

let c: TcpCluster;

test.before(async () => { c = await tcpCluster({ workers: 1, memBacking: nativeAvailable() ? 'shm' : 'sab' }); });
test.after(async () => { await c.close(); });

test('a same-host client reads by short-circuit when the worker arena is shared memory, byte-exact', async () => {
  const data = pattern(5 * MIB + 3, 41);
  await c.fs.writeFile('/sc/f', data, { blockSize: 2 * MIB });
  assert.ok((await c.fs.readFile('/sc/f')).equals(data));
  const [w] = await c.fs.getWorkers();
  const link = await c.fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname });
  assert.is(link.shortCircuit, nativeAvailable(), 'short-circuit exactly when the native module maps the arena');
  assert.is(c.workers[0]!.info().memBacking, nativeAvailable() ? 'shm' : 'sab');
});

test('sequential small reads and positional reads through short-circuit return the right bytes', async () => {
  const data = pattern(5 * MIB + 3, 41);
  const input = await c.fs.openFile('/sc/f');
  const parts: Buffer[] = [];
  for (;;) {
    const b = Buffer.alloc(123_457);
    const n = await input.read(b);
    if (n === 0) break;
    parts.push(b.subarray(0, n));
  }
  assert.ok(Buffer.concat(parts).equals(data));
  const b = Buffer.alloc(3 * MIB);
  assert.is(await input.read(b, MIB + 7), 3 * MIB);
  assert.ok(b.equals(data.subarray(MIB + 7, 4 * MIB + 7)));
  const kept: Buffer[] = [];
  for await (const chunk of input.chunks(0, data.length)) kept.push(chunk as Buffer);
  // Kept chunks are copies: still right after the reads that followed them.
  assert.ok(Buffer.concat(kept).equals(data));
  await input.close();
});

test('a sequential short-circuit reader pins the next block as soon as it reads the first (the open is sent, not held until the block runs out)', async () => {
  if (!nativeAvailable()) { assert.is(c.workers[0]!.info().memBacking, 'sab'); return; }
  // Blocks well over the stream window (8 MiB), so the window rule alone would not read ahead yet.
  const data = pattern(40 * MIB, 43);
  await c.fs.writeFile('/sc/ahead', data, { blockSize: 20 * MIB });
  const leases = c.workers[0]!.leases;
  const before = leases.pinCount();
  // Which reads are marked as read ahead (their short-circuit open is sent at once, sendNow).
  const [w] = await c.fs.getWorkers();
  const link = await c.fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname });
  const readBlock = link.readBlock.bind(link);
  const asked: Array<[number, boolean]> = [];
  link.readBlock = (req) => { asked.push([req.offsetBytes, req.ahead === true]); return readBlock(req); };
  const input = await c.fs.openFile('/sc/ahead');
  const b = Buffer.alloc(4096);
  assert.is(await input.read(b), 4096);
  assert.ok(b.equals(data.subarray(0, 4096)));
  // Block 0 is 20 MiB, far from its end: only the read-ahead-at-once rule opens block 1 now.
  assert.ok(await waitUntil(() => leases.pinCount() === before + 2), `block 0's pin and block 1's read ahead after the first read (pins ${leases.pinCount() - before})`);
  const rest = Buffer.alloc(data.length - 4096);
  assert.is(await input.read(rest), rest.length);
  assert.ok(rest.equals(data.subarray(4096)));
  await input.close();
  link.readBlock = readBlock;
  assert.equal(asked, [[0, false], [0, true]], 'block 0 read as asked, block 1 as a read ahead');
  assert.ok(await waitUntil(() => leases.pinCount() === before), 'both pins given back on close');
});

test('a short-circuit reader lets the event loop run every CLIENT_VIEW_YIELD_BYTES while it reads from a mapped block', async () => {
  if (!nativeAvailable()) { assert.is(c.workers[0]!.info().memBacking, 'sab'); return; }
  const data = pattern(40 * MIB, 47);
  await c.fs.writeFile('/sc/yield', data, { blockSize: 40 * MIB });
  const input = await c.fs.openFile('/sc/yield');
  const b = Buffer.alloc(64 * 1024);
  let at = 0;
  assert.is(await input.read(b), b.length);
  at += b.length;
  // Reads from the mapped view resolve in microtasks only: without the periodic yield this
  // immediate would run only when the block (40 MiB) ran out.
  let firedAt = -1;
  setImmediate(() => { firedAt = at; });
  while (at < data.length) {
    const n = await input.read(b);
    assert.ok(b.subarray(0, n).equals(data.subarray(at, at + n)));
    at += n;
  }
  await input.close();
  assert.ok(firedAt > 0 && firedAt <= b.length + CLIENT_VIEW_YIELD_BYTES, `the event loop ran at ${firedAt}, within ${CLIENT_VIEW_YIELD_BYTES} bytes`);
});

test.run();
