/**
 * Many clients writing and reading over TCP at once while the MEM tier evicts and demotes:
 * every read returns exactly the bytes of the block asked for. Readers use a small credit
 * window, so each block goes out as zero-copy views into the arena while other writes reuse
 * its memory. (On loopback the socket rarely keeps a queued view long enough for reuse to show
 * here; data-server-zero-copy.test.ts forces that case for the pin-until-flushed rule.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerHost } from '../../worker/index.js';
import { RpcClient } from '../../transports/rpc-client.js';
import { WorkerService } from '../../transports/protocol/worker.js';
import { isTesseraError } from '../../core/errors.js';

const KIB = 1024;
const MIB = 1024 * KIB;

function block(id: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  b.writeUInt32LE(id, 0);
  for (let i = 4; i < len; i++) b[i] = (id * 11 + i * 3 + (i >> 10)) & 0xff;
  return b;
}

test('concurrent TCP writes and reads under eviction return exactly the bytes of each block', async () => {
  const root = await mkdtemp(join(tmpdir(), 'tessera-dss-'));
  const host = await WorkerHost.start({
    address: 'tcp://127.0.0.1:0',
    tiers: [{ alias: 'MEM', capacityBytes: 8 * MIB }, { alias: 'SSD', dirs: [{ path: join(root, 'ssd'), capacityBytes: 24 * MIB }] }],
  });
  const clients: RpcClient[] = [];
  try {
    const written = new Map<number, number>();
    let nextId = 1;
    const writer = async (): Promise<void> => {
      const c = await RpcClient.connect(host.address);
      clients.push(c);
      const w = c.service(WorkerService);
      for (let i = 0; i < 12; i++) {
        const id = nextId++;
        const len = MIB + ((id * 7919) % MIB);
        await w.writeBlock({ blockId: id, reserveBytes: len }).pipeFrom([block(id, len)]);
        written.set(id, len);
      }
    };
    let reads = 0;
    const reader = async (k: number): Promise<void> => {
      const c = await RpcClient.connect(host.address, { limits: { streamWindowBytes: 256 * KIB } });
      clients.push(c);
      const w = c.service(WorkerService);
      for (let i = 0; i < 30; i++) {
        const ids = [...written.keys()];
        if (ids.length === 0) { await new Promise((r) => setTimeout(r, 5)); continue; }
        const id = ids[(i * 13 + k * 7) % ids.length]!;
        const parts: Buffer[] = [];
        try {
          for await (const chunk of w.readBlock({ blockId: id, readType: i % 2 === 0 ? 'CACHE_PROMOTE' : 'CACHE' })) {
            parts.push(Buffer.from(chunk));
            if (parts.length === 2) await new Promise((r) => setTimeout(r, 1)); // let writers evict meanwhile
          }
        } catch (e) {
          if (isTesseraError(e, 'TESSERA_ERR_BLOCK_NOT_FOUND')) continue; // dropped from the last tier
          throw e;
        }
        const got = Buffer.concat(parts);
        assert.is(got.byteLength, written.get(id), `length of block ${id}`);
        assert.ok(got.equals(block(id, got.byteLength)), `bytes of block ${id}`);
        reads++;
      }
    };
    await Promise.all([writer(), writer(), writer(), reader(0), reader(1), reader(2)]);
    assert.ok(reads > 20, `reads done: ${reads}`);
    const tiers = host.store.tierStats();
    assert.ok(tiers[1]!.blockCount > 0, 'eviction moved blocks down to SSD');
  } finally {
    for (const c of clients) await c.close();
    await host.stop();
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
