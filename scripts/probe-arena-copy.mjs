#!/usr/bin/env node
// Is a copy out of a worker's MEM arena slower than memcpy between heap buffers? Copies 1 GiB
// in 1 MiB copies, interleaved over 15 rounds, from: a heap buffer (the worker bench's memcpy
// baseline), the worker's arena (16 blocks of 64 MiB pinned through its engine; worker in a
// child process, arena mlocked unless LOCK=0), and a /dev/shm file this process made and
// filled (no RPC and no yields: the memory alone); and the worker bench's short-circuit pass
// (bench/harness.ts enginePass) over the worker's arena.
//
//   node scripts/probe-arena-copy.mjs          (after npm run build)
//   LOCK=0 node scripts/probe-arena-copy.mjs
import { fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const D = new URL('../dist/', import.meta.url);
const MIB = 1 << 20, FILE = 1024 * MIB, BLOCK = 64 * MIB, N = FILE / BLOCK;
if (process.argv[2] === 'child') {
  const { WorkerHost } = await import(new URL('worker/index.js', D));
  const host = await WorkerHost.start({ address: 'tcp://127.0.0.1:0', tiers: [{ alias: 'MEM', capacityBytes: FILE + 64 * MIB, lock: process.env.LOCK !== '0' }] });
  process.send({ address: host.address });
  process.on('message', async () => { await host.stop(); process.exit(0); });
} else {
  const { aligned, enginePass, interleaved } = await import(new URL('bench/harness.js', D));
  const { mapShared } = await import(new URL('native/index.js', D));
  const { BlockCache } = await import(new URL('core/block-cache.js', D));
  const { RpcClient } = await import(new URL('transports/rpc-client.js', D));
  const { WorkerService } = await import(new URL('transports/protocol/worker.js', D));
  const proc = fork(fileURLToPath(import.meta.url), ['child'], { stdio: 'inherit' });
  const info = await new Promise((r) => proc.once('message', r));
  const client = await RpcClient.connect(info.address);
  const w = client.service(WorkerService);
  const file = aligned(FILE);
  for (let i = 0; i < FILE; i += 4096) file.writeUInt32LE((i * 2654435761) >>> 0, i);
  const dst = aligned(MIB);
  const ids = Array.from({ length: N }, (_, b) => 1_000_000 + b);
  for (let b = 0; b < N; b++) {
    const chunks = [];
    for (let at = 0; at < BLOCK; at += MIB) chunks.push(file.subarray(b * BLOCK + at, b * BLOCK + at + MIB));
    await w.writeBlock({ blockId: ids[b], reserveBytes: BLOCK, writeType: 'MUST_CACHE' }).pipeFrom(chunks);
  }
  const probe = await w.openShortCircuit({ blockId: ids[0] });
  await w.closeShortCircuit({ pinId: probe.pinId });
  const engine = BlockCache.attach({ path: probe.path, byteLength: probe.arenaBytes });
  const views = ids.map((id) => engine.acquire(id));
  const path = `/dev/shm/tessera-probe-${process.pid}`;
  try {
    const mine = Buffer.from(mapShared(path, FILE, { create: true }), 0, FILE);
    file.copy(mine);
    const copyAll = (bufs) => () => {
      for (const b of bufs) for (let at = 0; at < b.length; at += MIB) b.copy(dst, 0, at, at + MIB);
      return FILE / MIB;
    };
    const blocksOf = (buf) => ids.map((_, b) => buf.subarray(b * BLOCK, (b + 1) * BLOCK));
    const arena = views.map((v) => Buffer.from(v.bytes.buffer, v.bytes.byteOffset, v.bytes.byteLength));
    // And the worker bench's short-circuit pass over the same blocks (pin, copy with the
    // client's yields, release), to tell the pass's costs from the memory's.
    const pass = async () => (await enginePass(engine, ids, dst, MIB)) / MIB;
    const r = await interleaved([copyAll(blocksOf(file)), copyAll(arena), copyAll(blocksOf(mine)), pass], 15, 15 * 400);
    const gb = (x) => (x * MIB / 1e9).toFixed(1);
    console.log(`LOCK=${process.env.LOCK ?? 1} GB/s: heap ${gb(r.rates[0])}, worker arena ${gb(r.rates[1])}, own shm ${gb(r.rates[2])}, enginePass ${gb(r.rates[3])}; `
      + `arena/heap ${r.pairedRatio(1, 0).toFixed(2)}, own shm/heap ${r.pairedRatio(2, 0).toFixed(2)}, enginePass/heap ${r.pairedRatio(3, 0).toFixed(2)}, enginePass/arena ${r.pairedRatio(3, 1).toFixed(2)} (medians of 15 pairs)`);
  } finally {
    for (const v of views) v.release();
    engine.close();
    rmSync(path, { force: true });
    await client.close();
    proc.send('stop');
  }
}
