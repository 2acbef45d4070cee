// Faults under a reading client: a worker killed (SIGKILL) in the middle of a read, a block whose
// only copy is gone, and a master restart while the client is connected.
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
import { MIB, pattern, tcpCluster, waitFor, type TcpCluster } from './cluster-fixture.js';

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
