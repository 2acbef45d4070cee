/**
 * End-to-end client throughput: a 1 GiB file written and read through the FileSystem API per
 * transport (inproc via embedded(), TCP, WebSocket) and by short-circuit, and the rate of
 * small files (4 KiB: create + write + close + read back) over TCP, beside the peer a user
 * would otherwise pick (node:fs on tmpfs) and the worker-level figures of bench/worker.bench.ts
 * (read from bench/results/worker.json, as baselines for the ratios).
 *
 *   npm run bench -- client                 1 GiB per transport
 *   npm run bench -- client --mib=256       a smaller file for quick runs (also --quick: 128 MiB)
 *
 * TCP, WebSocket and short-circuit run the master and the worker each in a child process (as
 * deployed; the worker bench also puts its worker in another process); inproc runs
 * everything in this process.
 * Reads use `read(buffer)` with a reused 1 MiB buffer, sequentially, like the worker bench.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, type Row } from './harness.js';
import { embedded } from '../index.js';
import { connect } from '../client/connect.js';
import type { FileSystem } from '../client/file-system.js';
import { MasterHost } from '../master/index.js';
import { WorkerHost } from '../worker/index.js';
import { mapShared, nativeAvailable, pageOffsetOf } from '../native/index.js';
import { RpcClient } from '../transports/index.js';
import { WorkerService } from '../transports/protocol/worker.js';

const MIB = 1024 * 1024;
const argMib = process.argv.find((a) => a.startsWith('--mib='));
const FILE_MIB = argMib ? Number(argMib.slice(6)) : process.argv.includes('--quick') ? 128 : 1024;
const FILE_BYTES = FILE_MIB * MIB;
const CHUNK_BYTES = MIB;
const SMALL_BYTES = 4096;
const SMALL_CONCURRENCY = 1024;
const SMALL_TIME_MS = 5000;
const SMALL_WARMUP_MS = 1000;
const here = dirname(fileURLToPath(import.meta.url));

// ---- child: a master and a worker serving one scheme ------------------------------------------

/** A child process running the master (`--role=master`) or the worker (`--role=worker --master=...`). */
async function child(role: 'master' | 'worker'): Promise<void> {
  const scheme = process.argv.find((a) => a.startsWith('--scheme='))!.slice(9);
  const dir = mkdtempSync(join(tmpdir(), `tessera-bench-client-${role}-`));
  const addr = (port: number) => (scheme === 'ws' ? `ws://127.0.0.1:${port}/` : `tcp://127.0.0.1:${port}`);
  let stop: () => Promise<void>;
  if (role === 'master') {
    const master = await MasterHost.start({ address: addr(0), journalDir: join(dir, 'journal'), format: true, heartbeatIntervalMs: 200 });
    stop = () => master.stop();
    process.send!({ address: master.address });
  } else {
    const masterAddress = process.argv.find((a) => a.startsWith('--master='))!.slice(9);
    const worker = await WorkerHost.start({
      masterAddress, address: addr(0), heartbeatIntervalMs: 200, stateDir: dir,
      tiers: [{ alias: 'MEM', capacityBytes: FILE_BYTES + 256 * MIB, backing: 'auto', lock: false }],
    });
    stop = () => worker.stop();
    process.send!({ address: worker.address, memBacking: worker.info().memBacking });
  }
  process.on('message', async (m) => {
    if (m !== 'stop') return;
    await stop();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
  // A parent that dies without saying stop: go too.
  process.on('disconnect', () => { void stop().finally(() => process.exit(0)); });
}

interface Cluster { procs: ChildProcess[]; master: string; memBacking: string }

function forkRole(args: string[]): Promise<{ proc: ChildProcess; msg: { address: string; memBacking?: string } }> {
  const proc = fork(fileURLToPath(import.meta.url), [...args, ...process.argv.slice(2)], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    proc.once('message', (m) => resolve({ proc, msg: m as { address: string; memBacking?: string } }));
    proc.once('exit', (code) => reject(new Error(`${args[0]} child exited with ${code}`)));
  });
}

/** A master and a worker, each in its own process (as deployed), serving one scheme. */
async function startChild(scheme: string): Promise<Cluster> {
  const m = await forkRole(['--role=master', `--scheme=${scheme}`]);
  const w = await forkRole(['--role=worker', `--scheme=${scheme}`, `--master=${m.msg.address}`]);
  const probe = await connect(m.msg.address);
  try {
    while ((await probe.getWorkers()).filter((x) => x.state === 'LIVE').length === 0) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await probe.close();
  }
  return { procs: [w.proc, m.proc], master: m.msg.address, memBacking: w.msg.memBacking ?? 'unknown' };
}

async function stopChild(procs: ChildProcess[]): Promise<void> {
  for (const proc of procs) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.send('stop');
    await exited;
  }
}

// ---- measurements -----------------------------------------------------------------------------

const source = Buffer.alloc(64 * MIB);
for (let i = 0; i < source.length; i += 4) source.writeUInt32LE((i * 2654435761) >>> 0, i);

async function writeBig(fs: FileSystem, path: string): Promise<number> {
  const out = await fs.createFile(path, { blockSize: 64 * MIB });
  const t0 = performance.now();
  for (let at = 0; at < FILE_BYTES; at += CHUNK_BYTES) {
    const o = at % source.length;
    await out.write(source.subarray(o, o + CHUNK_BYTES));
  }
  await out.close();
  return FILE_BYTES / ((performance.now() - t0) / 1000);
}

// The destination is page-aligned, like the worker bench's (copy speed depends on alignment here).
const dstRaw = Buffer.alloc(CHUNK_BYTES + 4096);
const dstShift = nativeAvailable() ? (4096 - pageOffsetOf(dstRaw)) % 4096 : 0;
const dst = dstRaw.subarray(dstShift, dstShift + CHUNK_BYTES);

async function readBig(fs: FileSystem, path: string): Promise<number> {
  const input = await fs.openFile(path, { readType: 'CACHE' });
  const t0 = performance.now();
  let total = 0;
  for (;;) {
    const n = await input.read(dst);
    if (n === 0) break;
    if (total === 0 && !dst.subarray(0, 4096).equals(source.subarray(0, 4096))) throw new Error('read other bytes than written');
    total += n;
  }
  const secs = (performance.now() - t0) / 1000;
  await input.close();
  if (total !== FILE_BYTES) throw new Error(`read ${total} of ${FILE_BYTES} bytes`);
  return FILE_BYTES / secs;
}

async function bestOf(n: number, fn: () => Promise<number>): Promise<number> {
  let best = 0;
  for (let i = 0; i < n; i++) best = Math.max(best, await fn());
  return best;
}

/** Files per second over SMALL_TIME_MS, after SMALL_WARMUP_MS of the same load (JIT, connections, group commit). */
async function smallFiles(doOne: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  let done = 0;
  const start = performance.now();
  const t0 = start + SMALL_WARMUP_MS;
  const deadline = t0 + SMALL_TIME_MS;
  let doneAtT0 = -1;
  await Promise.all(Array.from({ length: SMALL_CONCURRENCY }, async () => {
    while (performance.now() < deadline) {
      await doOne(next++);
      done++;
      if (doneAtT0 < 0 && performance.now() >= t0) doneAtT0 = done;
    }
  }));
  return (done - Math.max(0, doneAtT0)) / ((performance.now() - t0) / 1000);
}

function row(name: string, bytesPerSec: number, note: string, baseline?: string): Row {
  return { name, opsPerSec: bytesPerSec / MIB, bytesPerSec, note: `MiB/s as ops/s; ${note}`, ...(baseline ? { baseline } : {}) };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const extra: Record<string, unknown> = { fileMib: FILE_MIB, chunkBytes: CHUNK_BYTES, smallConcurrency: SMALL_CONCURRENCY };

  // Worker-level figures (bench/worker.bench.ts) as the baselines the targets name.
  const workerJson = join(here, '..', '..', 'bench', 'results', 'worker.json');
  const W_TCP = 'worker-level TCP read (worker.json)';
  const W_TCP_RUN = 'worker-level TCP read (this run)';
  const W_SC_RUN = 'worker-level short-circuit read (this run)';
  const W_SC = 'worker-level short-circuit read (worker.json)';
  let haveWorker = false;
  if (existsSync(workerJson)) {
    const w = JSON.parse(readFileSync(workerJson, 'utf8')) as { rows: Row[]; date: string };
    const tcp = w.rows.find((r) => r.name === 'TCP read (readBlock stream)');
    const sc = w.rows.find((r) => r.name === 'short-circuit read');
    if (tcp?.bytesPerSec && sc?.bytesPerSec) {
      rows.push(row(W_TCP, tcp.bytesPerSec, `from the worker suite run of ${w.date}`));
      rows.push(row(W_SC, sc.bytesPerSec, `from the worker suite run of ${w.date}`));
      haveWorker = true;
    }
  }
  if (!haveWorker) extra.workerJson = 'bench/results/worker.json missing (its rows are shown for reference only; the ratios use the worker-level rows of this run)';

  // Peer: node:fs on tmpfs, the same 1 MiB writes and reads.
  const shmDir = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/tessera-bench-') : mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  try {
    const { open } = await import('node:fs/promises');
    const f = join(shmDir, 'big');
    let t0 = performance.now();
    const wh = await open(f, 'w');
    for (let at = 0; at < FILE_BYTES; at += CHUNK_BYTES) { const o = at % source.length; await wh.write(source, o, CHUNK_BYTES); }
    await wh.close();
    rows.push(row('node:fs write (tmpfs)', FILE_BYTES / ((performance.now() - t0) / 1000), `${FILE_MIB} MiB in 1 MiB writes`));
    const rh = await open(f, 'r');
    t0 = performance.now();
    let pos = 0;
    for (;;) { const { bytesRead } = await rh.read(dst, 0, CHUNK_BYTES, pos); if (bytesRead === 0) break; pos += bytesRead; }
    await rh.close();
    rows.push(row('node:fs read (tmpfs)', FILE_BYTES / ((performance.now() - t0) / 1000), `${FILE_MIB} MiB in 1 MiB reads`));
    await rm(f);
  } finally {
    rmSync(shmDir, { recursive: true, force: true });
  }

  // inproc: embedded(), everything in this process.
  {
    const fs = await embedded({ workers: 1, workerMemBytes: FILE_BYTES + 256 * MIB });
    try {
      rows.push(row('client write inproc (embedded)', await writeBig(fs, '/big'), `${FILE_MIB} MiB, 64 MiB blocks, 1 MiB writes`, 'node:fs write (tmpfs)'));
      rows.push(row('client read inproc (embedded)', await bestOf(2, () => readBig(fs, '/big')), 'best of 2', 'node:fs read (tmpfs)'));
    } finally {
      await fs.close();
    }
  }

  // TCP (stream reads) and short-circuit, master and worker in a child process.
  {
    const { procs, master, memBacking } = await startChild('tcp');
    extra.tcpWorkerMemBacking = memBacking;
    const fs = await connect(master, { shortCircuit: false });
    const sc = await connect(master, { shortCircuit: true });
    try {
      rows.push(row('client write TCP', await writeBig(fs, '/big'), `${FILE_MIB} MiB, 64 MiB blocks, 1 MiB writes`, 'node:fs write (tmpfs)'));
      // Worker-level reads of the same blocks in the same run (what bench/worker.bench.ts measures):
      // the baselines of the 0.9x targets, interleaved with the client's reads so load drifts hit both.
      const { blocks } = await fs.getBlockLocations('/big');
      const wc = await RpcClient.connect(blocks[0]!.locations[0]!.address);
      const w = wc.service(WorkerService);
      const rawTcp = async () => {
        const t0 = performance.now();
        for (const b of blocks) {
          const dl = w.readBlock({ blockId: b.blockId, readType: 'CACHE' });
          let got = 0;
          for await (const chunk of dl) { dst.set(chunk.subarray(0, Math.min(chunk.length, CHUNK_BYTES)), 0); got += chunk.length; }
          await dl.result;
          if (got !== b.lengthBytes) throw new Error('short worker-level read');
        }
        return FILE_BYTES / ((performance.now() - t0) / 1000);
      };
      let map: ArrayBuffer | undefined;
      const rawSc = async () => {
        const t0 = performance.now();
        for (const b of blocks) {
          const sc = await w.openShortCircuit({ blockId: b.blockId });
          if (sc.kind !== 'shm') throw new Error(`short-circuit refused: ${sc.reason}`);
          map ??= mapShared(sc.path, sc.arenaBytes, { readOnly: true });
          const arena = new Uint8Array(map);
          for (let at = 0; at < sc.lengthBytes; at += CHUNK_BYTES) dst.set(arena.subarray(sc.offsetBytes + at, sc.offsetBytes + at + CHUNK_BYTES));
          await w.closeShortCircuit({ pinId: sc.pinId });
        }
        return FILE_BYTES / ((performance.now() - t0) / 1000);
      };
      let bestRawTcp = 0; let bestTcp = 0; let bestRawSc = 0; let bestSc = 0;
      for (let i = 0; i < 2; i++) {
        bestRawTcp = Math.max(bestRawTcp, await rawTcp());
        bestTcp = Math.max(bestTcp, await readBig(fs, '/big'));
        if (memBacking === 'shm') {
          bestRawSc = Math.max(bestRawSc, await rawSc());
          bestSc = Math.max(bestSc, await readBig(sc, '/big'));
        }
      }
      await wc.close();
      rows.push(row(W_TCP_RUN, bestRawTcp, 'readBlock per 64 MiB block, chunks copied to a 1 MiB buffer; best of 2'));
      rows.push(row('client read TCP', bestTcp, 'read(1 MiB buffer) sequentially; best of 2', W_TCP_RUN));
      if (memBacking === 'shm') {
        rows.push(row(W_SC_RUN, bestRawSc, 'open + 1 MiB copies + close per block; best of 2'));
        rows.push(row('client read short-circuit', bestSc, 'read(1 MiB buffer) sequentially; best of 2', W_SC_RUN));
      } else {
        extra.shortCircuit = `not measured: the worker's MEM tier is ${memBacking} (short-circuit needs the native module)`;
      }
      await fs.delete('/big');

      // Small files: 4 KiB create+write+close then read back, 64 in flight.
      const small = Buffer.alloc(SMALL_BYTES, 7);
      await fs.mkdir('/small', { recursive: true });
      const rate = await smallFiles(async (i) => {
        await fs.writeFile(`/small/f${i}`, small);
        const back = await fs.readFile(`/small/f${i}`);
        if (back.length !== SMALL_BYTES) throw new Error('short small-file read');
      });
      const peerDir = mkdtempSync(existsSync('/dev/shm') ? '/dev/shm/tessera-small-' : join(tmpdir(), 'tessera-small-'));
      try {
        await mkdir(peerDir, { recursive: true });
        const peer = await smallFiles(async (i) => {
          await writeFile(join(peerDir, `f${i}`), small);
          const back = await readFile(join(peerDir, `f${i}`));
          if (back.length !== SMALL_BYTES) throw new Error('short peer read');
        });
        rows.push({ name: 'node:fs 4 KiB write+read (tmpfs)', opsPerSec: peer, note: `files/s, ${SMALL_CONCURRENCY} in flight` });
      } finally {
        rmSync(peerDir, { recursive: true, force: true });
      }
      rows.push({ name: 'client 4 KiB create+write+close+read TCP', opsPerSec: rate, baseline: 'node:fs 4 KiB write+read (tmpfs)', note: `files/s, ${SMALL_CONCURRENCY} in flight, journal with fsync` });
      extra.smallFilesTargetMet = rate >= 5000;
    } finally {
      await fs.close();
      await sc.close();
      await stopChild(procs);
    }
  }

  // WebSocket.
  {
    const { procs, master } = await startChild('ws');
    const fs = await connect(master, { shortCircuit: false });
    try {
      rows.push(row('client write WebSocket', await writeBig(fs, '/big'), `${FILE_MIB} MiB, 64 MiB blocks, 1 MiB writes`, 'node:fs write (tmpfs)'));
      rows.push(row('client read WebSocket', await bestOf(2, () => readBig(fs, '/big')), 'best of 2', W_TCP_RUN));
    } finally {
      await fs.close();
      await stopChild(procs);
    }
  }

  const result = report('client', rows, extra);
  const ratio = (name: string) => result.rows.find((r) => r.name === name)?.ratio;
  console.log(`targets: read TCP ${ratio('client read TCP')?.toFixed(2) ?? 'n/a'}x worker-level in this run (want >= 0.9); `
    + `short-circuit ${ratio('client read short-circuit')?.toFixed(2) ?? 'n/a'}x (want >= 0.9); `
    + `small files ${Math.round(result.rows.find((r) => r.name === 'client 4 KiB create+write+close+read TCP')?.opsPerSec ?? 0)}/s (want >= 5000)`);
}

if (process.argv.includes('--role=master')) await child('master');
else if (process.argv.includes('--role=worker')) await child('worker');
else await main();
