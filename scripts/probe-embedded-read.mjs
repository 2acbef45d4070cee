#!/usr/bin/env node
// Sequential 1 MiB reads of a 512 MiB file through embedded(), with the workers' MEM tier in a
// SharedArrayBuffer (the default: the client finds the engine by its key in this thread) and
// in a /dev/shm arena (memBacking 'shm', native module only: the client maps the file). Either
// way the client pins blocks in the engine. Three timed passes each, after one untimed.
//
//   node scripts/probe-embedded-read.mjs          (after npm run build)
const { embedded } = await import(new URL('../dist/index.js', import.meta.url));
const { nativeAvailable } = await import(new URL('../dist/native/index.js', import.meta.url));
const MIB = 1 << 20;
for (const memBacking of nativeAvailable() ? ['sab', 'shm'] : ['sab']) {
  const fs = await embedded({ workers: 1, workerMemBytes: 600 * MIB, memBacking });
  try {
    await fs.writeFile('/f', Buffer.alloc(512 * MIB, 7), { blockSize: 64 * MIB });
    const dst = Buffer.alloc(MIB);
    const rates = [];
    for (let pass = 0; pass < 4; pass++) {
      const t0 = performance.now();
      const input = await fs.openFile('/f');
      let total = 0;
      for (let n; (n = await input.read(dst)) > 0;) total += n;
      await input.close();
      if (pass > 0) rates.push(total / ((performance.now() - t0) / 1000) / 1e9);
    }
    const [w] = await fs.getWorkers();
    const link = await fs._link({ workerId: w.workerId, address: w.address, hostname: w.hostname });
    console.log(`memBacking ${memBacking}: ${rates.map((r) => r.toFixed(2)).join(', ')} GB/s (short-circuit ${link.shortCircuit}, engine ${link.enginePath ?? 'not attached'})`);
  } finally {
    await fs.close();
  }
}
