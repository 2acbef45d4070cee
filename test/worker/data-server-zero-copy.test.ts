/**
 * readBlock sends MEM blocks as views into the arena, with no copy. The hazard: a view that is
 * still queued in the socket when its block is deleted and the arena space reused would send
 * the new owner's bytes. Here every read's pin release is followed at once by a delete of the
 * block and a write of other bytes into the arena (landing in the freed space), while many
 * 1 MiB reads are in flight on one TCP connection, far more than loopback socket buffers hold.
 * The client checks a CRC-32C of every read. Releasing the pin when the handler returns (before
 * the socket has written the views) fails this test; releasing it on Connection.flushed() passes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WorkerHost } from '../../worker/index.js';
import type { BlockReader } from '../../worker/tiered-store.js';
import { RpcClient } from '../../transports/rpc-client.js';
import { WorkerService } from '../../transports/protocol/worker.js';
import { crc32c } from '../../core/crc32c.js';

const MIB = 1024 * 1024;
const BLOCK_BYTES = MIB;
const IN_FLIGHT = 24;
const ROUNDS = 4;
const SCRAMBLE_ID_BASE = 1_000_000;

function block(id: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i += 4) b.writeUInt32LE((Math.imul(id + 1, 0x9e3779b1) ^ Math.imul(i, 0x85ebca6b)) >>> 0, i);
  return b;
}

test('a block deleted and its arena space rewritten as soon as a read releases it: every read still returns its own bytes', async () => {
  const host = await WorkerHost.start({
    address: 'tcp://127.0.0.1:0',
    tiers: [{ alias: 'MEM', capacityBytes: (IN_FLIGHT + 8) * BLOCK_BYTES }],
  });
  const client = await RpcClient.connect(host.address);
  try {
    const w = client.service(WorkerService);
    const store = host.store;
    const garbage = Buffer.alloc(BLOCK_BYTES, 0xee);
    let releases = 0;
    let reused = 0;
    const scrambles: Promise<void>[] = [];
    // Instrument the real store: right after a reader lets go of a block, delete it and write
    // other bytes into the arena, then free those too (the space keeps the garbage).
    const openReader = store.openReader.bind(store);
    store.openReader = async (id, options) => {
      const reader = await openReader(id, options);
      if (!reader || id >= SCRAMBLE_ID_BASE) return reader;
      const offset = reader.memBytes?.byteOffset;
      const release = reader.release.bind(reader);
      const wrapped: BlockReader = {
        id: reader.id, lengthBytes: reader.lengthBytes, source: reader.source, memBytes: reader.memBytes,
        inArena: reader.inArena, filePath: reader.filePath, read: (o, n) => reader.read(o, n),
        release: () => {
          release();
          releases++;
          scrambles.push((async () => {
            await store.remove(id);
            const g = SCRAMBLE_ID_BASE + id;
            await store.putBlock(g, garbage);
            const r = await openReader(g);
            if (r?.memBytes?.byteOffset === offset) reused++;
            r?.release();
            await store.remove(g);
          })());
        },
      };
      return wrapped;
    };

    let reads = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const ids = Array.from({ length: IN_FLIGHT }, (_, i) => round * 1000 + i);
      for (const id of ids) await w.writeBlock({ blockId: id, reserveBytes: BLOCK_BYTES }).pipeFrom([block(id)]);
      const expected = new Map(ids.map((id) => [id, crc32c(block(id))]));
      const got = await Promise.all(ids.map(async (id) => {
        const dl = w.readBlock({ blockId: id });
        let crc = 0;
        let n = 0;
        for await (const chunk of dl) {
          crc = crc32c(chunk, crc);
          n += chunk.byteLength;
        }
        await dl.result;
        return { id, crc, n };
      }));
      for (const g of got) {
        assert.is(g.n, BLOCK_BYTES);
        assert.is(g.crc, expected.get(g.id), `block ${g.id} arrived with other bytes than written`);
        reads++;
      }
      await Promise.all(scrambles.splice(0));
      for (const id of ids) assert.is(store.info(id), undefined, `block ${id} was deleted after its read`);
    }
    assert.is(reads, ROUNDS * IN_FLIGHT);
    assert.is(releases, ROUNDS * IN_FLIGHT);
    assert.ok(reused > 0, `the rewrites reused the arena space of a block just read (${reused} times), so a queued view would have shown it`);
  } finally {
    await client.close();
    await host.stop();
  }
});

test.run();
