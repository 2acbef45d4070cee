// Faults under a reading client: a worker killed (SIGKILL) in the middle of a read, at a block
// boundary and in the middle of a block (the read resumes at the first byte not delivered), a
// worker frozen (SIGSTOP) in the middle of a block, a block whose only copy is gone, and a
// master restart while the client is connected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { RpcClient } from '../../transports/index.js';
import { WorkerService } from '../../transports/protocol/worker.js';
import { connect } from '../../client/connect.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { isTesseraError } from '../../core/errors.js';
import { MIB, pattern, spyBlockReads, tcpCluster, waitFor, type TcpCluster } from './cluster-fixture.js';
import type { FileInStream } from '../../client/file-system.js';

const childScript = join(dirname(fileURLToPath(import.meta.url)), 'worker-child.js');
let c: TcpCluster;
const children: ChildProcess[] = [];

/** A worker in a child process, registered under its own host name so SpecificHost can target it. */
async function childWorker(hostname: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [childScript, c.master.address, mkdtempSync(join(c.dir, 'cw-')), hostname], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`worker child exited with ${code}`)));
  });
  const { address } = JSON.parse(line) as { address: string };
  await waitFor(() => c.master.master.getWorkers().some((w) => w.address === address && w.state === 'LIVE'), 'child worker registration');
  return { child, address };
}

/** Worker id under which the master knows the worker at `address`. */
function workerIdOf(address: string): number {
  return c.master.master.getWorkers().find((w) => w.address === address)!.workerId;
}

/**
 * Reads a whole file sequentially in small pieces, like a slow consumer; once `pauseAtBytes`
 * have been delivered it stops and runs `fault` (the worker's stream is then part-way through
 * a block), and carries on to the end. Returns the bytes read.
 */
async function readWithFaultAt(input: FileInStream, pauseAtBytes: number, fault: () => Promise<void>): Promise<Buffer> {
  const out = Buffer.alloc(input.lengthBytes);
  let at = 0;
  let faulted = false;
  while (at < out.length) {
    const n = await input.read(out.subarray(at, Math.min(out.length, at + 256 * 1024)));
    assert.ok(n > 0, `read made no progress at ${at}`);
    at += n;
    if (!faulted && at >= pauseAtBytes) { faulted = true; await fault(); }
  }
  assert.ok(faulted);
  return out;
}

/**
 * CACHE_THROUGH blocks of `blockSizeBytes` several times the stream's chunk (1 MiB) and credit
 * window (8 MiB): a worker that stops after the reader took 2 MiB has sent at most ~10 MiB of
 * its 24 MiB block, so the rest must come from somewhere else, starting mid-block.
 */
const MID_BLOCK_BYTES = 24 * MIB;
const MID_FILE_BYTES = MID_BLOCK_BYTES + 16 * MIB;

test.before(async () => { c = await tcpCluster({ workers: 1 }); });
test.after(async () => {
  for (const ch of children) if (ch.exitCode === null) ch.kill('SIGKILL');
  await c.close();
});

test('a worker killed mid-read is replaced by the UFS through another worker, and the caller sees the right bytes', async () => {
  const { child, address } = await childWorker('doomed-1');
  const data = pattern(6 * MIB, 11);
  const fs = c.fs;
  await fs.writeFile('/ufs/kill/f', data, { writeType: 'CACHE_THROUGH', blockSize: MIB, locationPolicy: 'SpecificHost:doomed-1' });
  const { blocks } = await fs.getBlockLocations('/ufs/kill/f');
  assert.ok(blocks.every((b) => b.locations.length === 1 && b.locations[0]!.address === address), 'every block lives on the worker that will be killed');

  const input = await fs.openFile('/ufs/kill/f', { readType: 'NO_CACHE' });
  const got: Buffer[] = [];
  let killed = false;
  for await (const chunk of input.chunks()) {
    got.push(Buffer.from(chunk));
    if (!killed) { child.kill('SIGKILL'); killed = true; await new Promise((r) => child.once('exit', r)); }
  }
  await input.close();
  assert.ok(killed);
  assert.ok(Buffer.concat(got).equals(data), 'bytes read across the kill are exact');
});

test('a worker killed mid-read is replaced by another worker holding a copy (the UFS copy removed)', async () => {
  const a = await childWorker('copy-a');
  const b = await childWorker('copy-b');
  const data = pattern(4 * MIB, 14);
  await c.fs.writeFile('/ufs/copies/f', data, { writeType: 'CACHE_THROUGH', blockSize: MIB, locationPolicy: 'SpecificHost:copy-a' });
  // Worker b caches every block from the UFS (a second copy), then the UFS file goes away.
  const { blocks, file } = await c.fs.getBlockLocations('/ufs/copies/f');
  const rpc = await RpcClient.connect(b.address);
  const wb = rpc.service(WorkerService);
  for (const blk of blocks) {
    const dl = wb.readBlock({ blockId: blk.blockId, readType: 'CACHE', ufs: { ufsUri: c.ufsDir, ufsPath: 'copies/f', blockOffsetBytes: blk.offsetBytes, blockLengthBytes: blk.lengthBytes } });
    for await (const _ of dl) { /* drain */ }
    await dl.result;
  }
  await rpc.close();
  await waitFor(async () => (await c.fs.getBlockLocations('/ufs/copies/f')).blocks.every((x) => x.locations.length === 2), 'two copies of every block');
  rmSync(join(c.ufsDir, 'copies', 'f'));
  assert.is(file.lengthBytes, data.length);
  // A reader that prefers a (it believes a is local) loses a after its first chunk.
  const reader = await connect(c.master.address, { clientHosts: ['copy-a'] });
  try {
    const input = await reader.openFile('/ufs/copies/f', { readType: 'NO_CACHE' });
    const got: Buffer[] = [];
    for await (const chunk of input.chunks()) {
      got.push(Buffer.from(chunk));
      if (a.child.exitCode === null && a.child.signalCode === null) { a.child.kill('SIGKILL'); await new Promise((r) => a.child.once('exit', r)); }
    }
    await input.close();
    assert.ok(Buffer.concat(got).equals(data), 'bytes read across the kill are exact');
  } finally {
    await reader.close();
    b.child.kill('SIGKILL');
  }
});

test('a worker that hangs (SIGSTOP) mid-read is given up after the stream deadline, and the UFS serves the rest', async () => {
  const { child, address } = await childWorker('frozen-1');
  const data = pattern(4 * MIB, 15);
  await c.fs.writeFile('/ufs/frozen/f', data, { writeType: 'CACHE_THROUGH', blockSize: MIB, locationPolicy: 'SpecificHost:frozen-1' });
  assert.ok((await c.fs.getBlockLocations('/ufs/frozen/f')).blocks.every((b) => b.locations[0]?.address === address));
  const reader = await connect(c.master.address, { blockStreamDeadlineMs: 1000, callDeadlineMs: 1000 });
  try {
    const input = await reader.openFile('/ufs/frozen/f', { readType: 'NO_CACHE' });
    const got: Buffer[] = [];
    let frozen = false;
    for await (const chunk of input.chunks()) {
      got.push(Buffer.from(chunk));
      if (!frozen) { child.kill('SIGSTOP'); frozen = true; }
    }
    await input.close();
    assert.ok(Buffer.concat(got).equals(data), 'bytes read across the hang are exact');
  } finally {
    await reader.close();
    child.kill('SIGKILL');
  }
});

test('a worker SIGKILLed part-way through a block: the read resumes at the first undelivered byte, from the UFS through another worker', async () => {
  const { child, address } = await childWorker('mid-kill');
  const data = pattern(MID_FILE_BYTES, 21);
  await c.fs.writeFile('/ufs/midkill/f', data, { writeType: 'CACHE_THROUGH', blockSize: MID_BLOCK_BYTES, locationPolicy: 'SpecificHost:mid-kill' });
  const { blocks } = await c.fs.getBlockLocations('/ufs/midkill/f');
  assert.ok(blocks.every((b) => b.locations.length === 1 && b.locations[0]!.address === address), 'every block lives on the worker that will be killed');
  const killedId = workerIdOf(address);
  const reader = await connect(c.master.address);
  const spy = spyBlockReads();
  try {
    const input = await reader.openFile('/ufs/midkill/f', { readType: 'NO_CACHE' });
    const got = await readWithFaultAt(input, 2 * MIB, async () => {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    });
    await input.close();
    assert.ok(got.equals(data), 'bytes read across the kill are exact');
  } finally {
    spy.restore();
    await reader.close();
  }
  const first = spy.reads[0]!;
  assert.equal([first.workerId, first.blockId, first.offsetBytes], [killedId, blocks[0]!.blockId, 0], 'the read starts on the doomed worker');
  const resumed = spy.reads.find((r) => r.blockId === blocks[0]!.blockId && r.workerId !== killedId);
  assert.ok(resumed, `block 0 was read again elsewhere: ${JSON.stringify(spy.reads)}`);
  assert.ok(resumed.offsetBytes > 2 * MIB && resumed.offsetBytes < MID_BLOCK_BYTES, `resumed mid-block at ${resumed.offsetBytes}`);
  assert.is(resumed.offsetBytes + resumed.lengthBytes, MID_BLOCK_BYTES, 'the resumed read asks for exactly the rest of the block');
});

test('a worker frozen (SIGSTOP) part-way through a block: after the stream deadline the read resumes mid-block from another copy', async () => {
  const a = await childWorker('mid-stop-a');
  const b = await childWorker('mid-stop-b');
  const data = pattern(MID_FILE_BYTES, 22);
  await c.fs.writeFile('/ufs/midstop/f', data, { writeType: 'CACHE_THROUGH', blockSize: MID_BLOCK_BYTES, locationPolicy: 'SpecificHost:mid-stop-a' });
  // Worker b caches every block from the UFS (a second copy), then the UFS file goes away.
  const { blocks } = await c.fs.getBlockLocations('/ufs/midstop/f');
  const rpc = await RpcClient.connect(b.address);
  const wb = rpc.service(WorkerService);
  for (const blk of blocks) {
    const dl = wb.readBlock({ blockId: blk.blockId, readType: 'CACHE', ufs: { ufsUri: c.ufsDir, ufsPath: 'midstop/f', blockOffsetBytes: blk.offsetBytes, blockLengthBytes: blk.lengthBytes } });
    for await (const _ of dl) { /* drain */ }
    await dl.result;
  }
  await rpc.close();
  await waitFor(async () => (await c.fs.getBlockLocations('/ufs/midstop/f')).blocks.every((x) => x.locations.length === 2), 'two copies of every block');
  rmSync(join(c.ufsDir, 'midstop', 'f'));
  const [aId, bId] = [workerIdOf(a.address), workerIdOf(b.address)];
  // The reader believes a is local, so it starts there.
  const reader = await connect(c.master.address, { clientHosts: ['mid-stop-a'], blockStreamDeadlineMs: 1000, callDeadlineMs: 1000 });
  const spy = spyBlockReads();
  try {
    const input = await reader.openFile('/ufs/midstop/f', { readType: 'NO_CACHE' });
    const got = await readWithFaultAt(input, 2 * MIB, async () => { a.child.kill('SIGSTOP'); });
    await input.close();
    assert.ok(got.equals(data), 'bytes read across the hang are exact');
  } finally {
    spy.restore();
    await reader.close();
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  }
  assert.is(spy.reads[0]!.workerId, aId, 'the read starts on the worker that hangs');
  const resumed = spy.reads.find((r) => r.blockId === blocks[0]!.blockId && r.workerId === bId);
  assert.ok(resumed, `block 0 was read again from the other copy: ${JSON.stringify(spy.reads)}`);
  assert.ok(resumed.offsetBytes > 2 * MIB && resumed.offsetBytes < MID_BLOCK_BYTES, `resumed mid-block at ${resumed.offsetBytes}`);
  assert.is(resumed.offsetBytes + resumed.lengthBytes, MID_BLOCK_BYTES);
});

test('a block whose only copy is gone fails with TESSERA_ERR_BLOCK_UNAVAILABLE, bounded', async () => {
  const { child, address } = await childWorker('doomed-2');
  const fs = c.fs;
  // MUST_CACHE, not persisted: the child's copy is the only one.
  await fs.writeFile('/lost/f', pattern(2 * MIB, 12), { blockSize: MIB, locationPolicy: 'SpecificHost:doomed-2' });
  const { blocks } = await fs.getBlockLocations('/lost/f');
  assert.ok(blocks.every((b) => b.locations[0]?.address === address));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const started = Date.now();
  try {
    await fs.readFile('/lost/f');
    assert.unreachable('the read should fail');
  } catch (err) {
    assert.ok(isTesseraError(err, 'TESSERA_ERR_BLOCK_UNAVAILABLE'), `got ${String(err)}`);
  }
  assert.ok(Date.now() - started < 60_000, 'retries are bounded');
});

test('a master restart while the client is connected: the client reconnects and carries on', async () => {
  const fs = c.fs;
  const data = pattern(MIB + 100, 13);
  await fs.writeFile('/restart/f', data, { blockSize: MIB });
  await c.restartMaster();
  // The next calls reconnect by themselves.
  assert.ok(await fs.exists('/restart/f'));
  assert.is((await fs.getStatus('/restart/f')).lengthBytes, data.length);
  await fs.mkdir('/restart/after', { recursive: true });
  // Blocks come back when the worker re-registers; the read waits for them within its bounds.
  await waitFor(() => c.master.master.getWorkers().some((w) => w.state === 'LIVE'), 'worker re-registration');
  assert.ok((await fs.readFile('/restart/f')).equals(data));
});

test.run();
