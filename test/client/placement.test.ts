// Location policies end to end: three workers registered under three host names, a client that
// lives on one of them; where do the blocks of a new file land?
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../client/connect.js';
import type { FileSystem } from '../../client/file-system.js';
import { isTesseraError } from '../../core/errors.js';
import { MIB, pattern, tcpCluster, waitFor, type TcpCluster } from './cluster-fixture.js';

let c: TcpCluster;
let fs: FileSystem;
const hostOf = new Map<number, string>();

async function hostsOfBlocks(path: string): Promise<string[]> {
  const { blocks } = await fs.getBlockLocations(path);
  return blocks.map((b) => b.locations.map((l) => l.hostname).join('+'));
}

test.before(async () => {
  c = await tcpCluster({ workers: 3, workerHosts: ['host-a', 'host-b', 'host-c'] });
  fs = await connect(c.master.address, { clientHosts: ['host-b'] });
  for (const w of await fs.getWorkers()) hostOf.set(w.workerId, w.hostname);
});
test.after(async () => { await fs?.close(); await c.close(); });

test('LocalFirst (the default) writes every block to the worker on the client host', async () => {
  await fs.writeFile('/p/local', pattern(3 * MIB, 1), { blockSize: MIB });
  assert.equal(await hostsOfBlocks('/p/local'), ['host-b', 'host-b', 'host-b']);
});

test('SpecificHost writes every block to the named host', async () => {
  await fs.writeFile('/p/specific', pattern(2 * MIB, 2), { blockSize: MIB, locationPolicy: 'SpecificHost:host-c' });
  assert.equal(await hostsOfBlocks('/p/specific'), ['host-c', 'host-c']);
});

test('SpecificHost naming a host without workers fails with TESSERA_ERR_NO_WORKER', async () => {
  try {
    await fs.writeFile('/p/nowhere', pattern(10, 3), { locationPolicy: { policy: 'SpecificHost', host: 'host-z' } });
    assert.unreachable('should fail');
  } catch (err) {
    assert.ok(isTesseraError(err, 'TESSERA_ERR_NO_WORKER'), String(err));
  }
});

test('RoundRobin spreads consecutive blocks over every worker', async () => {
  await fs.writeFile('/p/rr', pattern(6 * MIB, 4), { blockSize: MIB, locationPolicy: 'RoundRobin' });
  const hosts = await hostsOfBlocks('/p/rr');
  assert.is(hosts.length, 6);
  assert.equal(new Set(hosts), new Set(['host-a', 'host-b', 'host-c']));
});

test('MostAvailableFirst picks the worker with the most free bytes', async () => {
  // host-b and host-c hold blocks now; host-a has the most free space once heartbeats report usage.
  await waitFor(async () => {
    const ws = await fs.getWorkers();
    return ws.filter((w) => w.hostname !== 'host-a').every((w) => w.usedBytes > 0);
  }, 'heartbeats reporting used bytes');
  await fs.writeFile('/p/most', pattern(MIB, 5), { blockSize: MIB, locationPolicy: 'MostAvailableFirst' });
  assert.equal(await hostsOfBlocks('/p/most'), ['host-a']);
});

test('reads come back byte-exact whatever host the blocks are on', async () => {
  assert.ok((await fs.readFile('/p/rr')).equals(pattern(6 * MIB, 4)));
  assert.ok((await fs.readFile('/p/specific')).equals(pattern(2 * MIB, 2)));
});

test.run();
