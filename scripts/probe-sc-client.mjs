#!/usr/bin/env node
// The client's short-circuit read of a cached file against the worker-level pass it is
// measured by (bench/client.bench.ts, "client read short-circuit"), with what a client pass
// spends where: the open at the master, the reads, reads that took over 1 ms (GC pauses,
// the VM), and, with HEAP=1, the garbage each 1 MiB read leaves (sampling heap profiler,
// objects collected by scavenges included). A master and a worker run in child processes
// (the client bench's roles), the file is 1 GiB in 64 MiB blocks, the passes interleave.
//
//   node scripts/probe-sc-client.mjs [ROUNDS]        (after npm run build)
//   HEAP=1 node scripts/probe-sc-client.mjs
//   node --trace-gc-nvp scripts/probe-sc-client.mjs 5 | grep gc=s     (scavenge phases)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const D = new URL('../dist/', import.meta.url);
const { aligned, interleaved, enginePass } = await import(new URL('bench/harness.js', D));
const { connect } = await import(new URL('client/connect.js', D));
const { BlockCache } = await import(new URL('core/block-cache.js', D));
const { RpcClient } = await import(new URL('transports/rpc-client.js', D));
const { WorkerService } = await import(new URL('transports/protocol/worker.js', D));
const MIB = 1 << 20, FILE = 1024 * MIB;
const role = (args) => new Promise((resolve, reject) => {
  const p = fork(fileURLToPath(new URL('bench/client.bench.js', D)), [...args, '--mib=1024'], { stdio: 'inherit' });
  p.once('message', (m) => resolve({ p, m }));
  p.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
});
const master = await role(['--role=master', '--scheme=tcp']);
const worker = await role(['--role=worker', '--scheme=tcp', `--master=${master.m.address}`]);
const fs = await connect(master.m.address, { shortCircuit: false });
while ((await fs.getWorkers()).filter((x) => x.state === 'LIVE').length === 0) await new Promise((r) => setTimeout(r, 20));
const sc = await connect(master.m.address, { shortCircuit: true });
const src = Buffer.alloc(64 * MIB);
for (let i = 0; i < src.length; i += 4) src.writeUInt32LE((i * 2654435761) >>> 0, i);
const out = await fs.createFile('/big', { blockSize: 64 * MIB });
for (let at = 0; at < FILE; at += MIB) await out.write(src.subarray(at % src.length, at % src.length + MIB));
await out.close();
const { blocks } = await fs.getBlockLocations('/big');
const wc = await RpcClient.connect(blocks[0].locations[0].address);
const ws = wc.service(WorkerService);
const probe = await ws.openShortCircuit({ blockId: blocks[0].blockId });
if (probe.kind !== 'shm' || !probe.engine) throw new Error('no engine to attach to (native module missing?)');
await ws.closeShortCircuit({ pinId: probe.pinId });
const engine = BlockCache.attach({ path: probe.path, byteLength: probe.arenaBytes });
const dst = aligned(MIB);
const ids = blocks.map((b) => b.blockId);
const t = { open: [], read: [], slow: [] };
const clientPass = async () => {
  let t0 = performance.now();
  const input = await sc.openFile('/big', { readType: 'CACHE' });
  t.open.push(performance.now() - t0);
  t0 = performance.now();
  let total = 0;
  for (;;) {
    const r0 = performance.now();
    const n = await input.read(dst);
    const dt = performance.now() - r0;
    if (dt > 1) t.slow.push(+dt.toFixed(1));
    if (n === 0) break;
    total += n;
  }
  t.read.push(performance.now() - t0);
  await input.close();
  if (total !== FILE) throw new Error(`read ${total} bytes`);
  return total / MIB;
};
const rounds = Number(process.argv[2] ?? 9);
try {
  if (process.env.HEAP) {
    const { Session } = await import('node:inspector/promises');
    const session = new Session();
    session.connect();
    for (let i = 0; i < 3; i++) await clientPass();
    await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
    const passes = 20;
    for (let i = 0; i < passes; i++) await clientPass();
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const bySite = new Map();
    const walk = (n, stack) => {
      const f = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
      const st = [...stack, f];
      if (n.selfSize) bySite.set(st.slice(-3).join(' < '), (bySite.get(st.slice(-3).join(' < ')) ?? 0) + n.selfSize);
      for (const c of n.children) walk(c, st);
    };
    walk(profile.head, []);
    const total = [...bySite.values()].reduce((a, b) => a + b, 0);
    console.log(`bytes of garbage per 1 MiB read: ${(total / passes / 1024).toFixed(0)}`);
    for (const [k, v] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${(v / passes / 1024).toFixed(1)}  ${k}`);
  } else {
    const eng = async () => (await enginePass(engine, ids, dst, MIB)) / MIB;
    const r = await interleaved([eng, clientPass], rounds, rounds * 1000);
    const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1].toFixed(2);
    console.log(`GB/s: worker-level (engine) ${(r.rates[0] * MIB / 1e9).toFixed(2)}, client ${(r.rates[1] * MIB / 1e9).toFixed(2)}; client/worker-level ${r.pairedRatio(1, 0).toFixed(3)} (median of ${rounds} pairs)`);
    console.log(`client pass, ms at the median: open ${med(t.open)}, reads ${med(t.read)}; reads over 1 ms: ${t.slow.length} in ${t.read.length} passes (first pass's page faults included): ${t.slow.slice(-20).join(' ')}`);
  }
} finally {
  engine.close();
  await wc.close();
  await sc.close();
  await fs.close();
  worker.p.send('stop');
  master.p.send('stop');
}
