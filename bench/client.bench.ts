/**
 * End-to-end client throughput: a 1 GiB file written and read through the FileSystem API per
 * transport (inproc via embedded(), TCP, WebSocket, TLS) and by short-circuit, and the rate of
 * small files (4 KiB: create + write + close + read back) over TCP, beside the peer a user
 * would otherwise pick (node:fs on tmpfs).
 *
 *   npm run bench -- client                 1 GiB per transport
 *   npm run bench -- client --mib=256       a smaller file for quick runs (also --quick: 128 MiB, fewer rounds)
 *
 * The target (issue 8) is end-to-end reads within 0.9x of the worker-level figures of
 * bench/worker.bench.ts. Each client read row therefore has a worker-level row of the same run
 * as its baseline: the worker suite's own method, plus the next block's readBlock asked for a
 * credit window before the current one ends, as the client reads ahead (the plain method is
 * shown too, with the client's ratio to it): readBlock per block on a
 * connection to the worker, each received chunk copied into a 64-byte aligned 1 MiB buffer
 * ("TCP read (readBlock stream)"), or, for short-circuit, the worker's block engine attached
 * and each block pinned there and copied out in 1 MiB copies ("short-circuit read", as that
 * suite does and as the client reads);
 * medians of ROUNDS interleaved rounds of measureThroughput, the worker and the client passes
 * alternating so a busy machine's swings fall on both sides of a ratio, and each ratio the
 * median of the rounds' ratios (bench/harness.ts interleaved). The client reads with `read(buffer)` into the same kind of
 * buffer, sequentially. The worker suite's last committed figures (bench/results/worker.json)
 * are shown for reference only.
 *
 * TCP, WebSocket, TLS and short-circuit run the master and the worker each in a child process
 * (as deployed; the worker bench also puts its worker in another process); inproc runs
 * everything in this process. TLS uses a throwaway self-signed certificate made with the
 * openssl CLI (skipped, and said so, without it). `extra.summary` holds the read and write
 * rates per path (short-circuit, TCP, WebSocket, TLS, inproc) side by side.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aligned, type Certs, enginePass, interleaved as interleavedIn, makeCerts, report, shortCircuitPass, type Row } from './harness.js';
import { BlockCache } from '../core/block-cache.js';
import { embedded } from '../index.js';
import { DEFAULT_STREAM_WINDOW_BYTES } from '../core/constants.js';
import { connect } from '../client/connect.js';
import type { FileSystem } from '../client/file-system.js';
import { MasterHost } from '../master/index.js';
import { WorkerHost } from '../worker/index.js';
import { mapShared, unmap } from '../native/index.js';
import { RpcClient } from '../transports/index.js';
import { WorkerService } from '../transports/protocol/worker.js';

const MIB = 1024 * 1024;
const quick = process.argv.includes('--quick');
const argMib = process.argv.find((a) => a.startsWith('--mib='));
const FILE_MIB = argMib ? Number(argMib.slice(6)) : quick ? 128 : 1024;
const FILE_BYTES = FILE_MIB * MIB;
const CHUNK_BYTES = MIB;
/** As bench/worker.bench.ts: READ_BYTES reads, ROUNDS interleaved rounds of TIME_MS / ROUNDS each. */
const READ_BYTES = MIB;
const ROUNDS = quick ? 3 : 9;
const TIME_MS = quick ? 600 : 2500;
const SMALL_BYTES = 4096;
const SMALL_CONCURRENCY = 1024;
const SMALL_TIME_MS = quick ? 1000 : 5000;
const SMALL_WARMUP_MS = quick ? 300 : 1000;
const here = dirname(fileURLToPath(import.meta.url));
if (!Number.isSafeInteger(FILE_BYTES) || FILE_MIB < 1) throw new Error(`--mib must be a whole number >= 1 (got ${argMib})`);

type Scheme = 'tcp' | 'ws' | 'tls';
// ---- child: a master and a worker serving one scheme ------------------------------------------

/** Certificates handed to the children of a tls:// cluster (in the environment, as JSON). */
const CERTS_ENV = 'TESSERA_BENCH_CLIENT_CERTS';

/** A child process running the master (`--role=master`) or the worker (`--role=worker --master=...`). */
async function child(role: 'master' | 'worker'): Promise<void> {
  const scheme = process.argv.find((a) => a.startsWith('--scheme='))!.slice(9) as Scheme;
  const dir = mkdtempSync(join(tmpdir(), `tessera-bench-client-${role}-`));
  const addr = (port: number) => (scheme === 'ws' ? `ws://127.0.0.1:${port}/` : `${scheme}://127.0.0.1:${port}`);
  const certs = scheme === 'tls' ? JSON.parse(process.env[CERTS_ENV]!) as Certs : undefined;
  const rpc = certs ? { rpc: { tls: { cert: certs.cert, key: certs.key } } } : {};
  let stop: () => Promise<void>;
  if (role === 'master') {
    const master = await MasterHost.start({ address: addr(0), journalDir: join(dir, 'journal'), format: true, heartbeatIntervalMs: 200, ...rpc });
    stop = () => master.stop();
    process.send!({ address: master.address });
  } else {
    const masterAddress = process.argv.find((a) => a.startsWith('--master='))!.slice(9);
    const worker = await WorkerHost.start({
      masterAddress, address: addr(0), heartbeatIntervalMs: 200, stateDir: dir, ...rpc,
      ...(certs ? { masterRpc: { tls: { ca: certs.ca } } } : {}),
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

function forkRole(args: string[], env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; msg: { address: string; memBacking?: string } }> {
  const proc = fork(fileURLToPath(import.meta.url), [...args, ...process.argv.slice(2)], { stdio: 'inherit', env });
  return new Promise((resolve, reject) => {
    proc.once('message', (m) => resolve({ proc, msg: m as { address: string; memBacking?: string } }));
    proc.once('exit', (code) => reject(new Error(`${args[0]} child exited with ${code}`)));
  });
}

/** A master and a worker, each in its own process (as deployed), serving one scheme. */
async function startChild(scheme: Scheme, certs?: Certs): Promise<Cluster> {
  const env = { ...process.env, ...(certs ? { [CERTS_ENV]: JSON.stringify(certs) } : {}) };
  const m = await forkRole(['--role=master', `--scheme=${scheme}`], env);
  const w = await forkRole(['--role=worker', `--scheme=${scheme}`, `--master=${m.msg.address}`], env);
  const probe = await connect(m.msg.address, certs ? { tls: { ca: certs.ca } } : {});
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

const dst = aligned(READ_BYTES);

/** One sequential pass over the file through the client, read(READ_BYTES buffer); returns READ_BYTES units read. */
async function clientPass(fs: FileSystem, path: string): Promise<number> {
  const input = await fs.openFile(path, { readType: 'CACHE' });
  let total = 0;
  try {
    for (;;) {
      const n = await input.read(dst);
      if (n === 0) break;
      if (total === 0 && !dst.subarray(0, 4096).equals(source.subarray(0, 4096))) throw new Error('read other bytes than written');
      total += n;
    }
  } finally {
    await input.close();
  }
  if (total !== FILE_BYTES) throw new Error(`read ${total} of ${FILE_BYTES} bytes`);
  return FILE_BYTES / READ_BYTES;
}


/**
 * The worker suite's "TCP read (readBlock stream)" pass (bench/worker.bench.ts, `tcp`): one
 * readBlock stream per block, each chunk copied into the aligned 1 MiB buffer at the running
 * offset modulo its size. Returns READ_BYTES units read.
 *
 * With `ahead`, the next block's readBlock is asked for once the current one has a credit
 * window (DEFAULT_STREAM_WINDOW_BYTES) left, as the client reads ahead. That is the baseline
 * of the client's stream reads: on this VM the plain pass falls at times to ~0.3 GB/s for a
 * whole run (a window per round trip), where the client, with two streams in flight, does not,
 * which made ratios against it say more about the VM than about the client.
 */
function workerStreamPass(w: ReturnType<typeof workerService>, blocks: { blockId: number; lengthBytes: number }[], ahead: boolean): () => Promise<number> {
  return async () => {
    const open = (i: number) => w.readBlock({ blockId: blocks[i]!.blockId, readType: 'CACHE' });
    let next: ReturnType<typeof open> | undefined = open(0);
    for (let i = 0; i < blocks.length; i++) {
      const dl = next!;
      next = undefined;
      const len = blocks[i]!.lengthBytes;
      let got = 0;
      for await (const chunk of dl) {
        Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).copy(dst, got % READ_BYTES);
        got += chunk.byteLength;
        if (ahead && next === undefined && i + 1 < blocks.length && len - got <= DEFAULT_STREAM_WINDOW_BYTES) next = open(i + 1);
      }
      if (got !== len) throw new Error('short worker-level read');
      await dl.result;
      if (next === undefined && i + 1 < blocks.length) next = open(i + 1);
    }
    return FILE_BYTES / READ_BYTES;
  };
}

/** The suite's interleaved rounds (bench/harness.ts), with this suite's ROUNDS and TIME_MS. */
const interleaved = (fns: (() => Promise<number>)[]) => interleavedIn(fns, ROUNDS, TIME_MS);

function workerService(c: RpcClient) {
  return c.service(WorkerService);
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

function row(name: string, bytesPerSec: number, note: string, baseline?: string, pairedRatio?: number): Row {
  return { name, opsPerSec: bytesPerSec / MIB, bytesPerSec, note: `MiB/s as ops/s; ${note}`, ...(baseline ? { baseline } : {}), ...(pairedRatio !== undefined ? { pairedRatio } : {}) };
}

const LABEL: Record<Scheme, string> = { tcp: 'TCP', ws: 'WebSocket', tls: 'TLS' };
const METHOD_NOTE = `median of ${ROUNDS} interleaved rounds; a ratio is the median of the rounds' ratios`;

interface PathFigures { writeBytesPerSec?: number; readBytesPerSec?: number; workerLevelReadBytesPerSec?: number; readRatio?: number }

/**
 * A master and a worker serving `scheme` in child processes: the client's write, then its
 * reads interleaved with the worker-level reads of the same blocks; over TCP also
 * short-circuit and the small files.
 */
async function transportRows(scheme: Scheme, rows: Row[], extra: Record<string, unknown>, summary: Record<string, PathFigures>, certs?: Certs): Promise<void> {
  const label = LABEL[scheme];
  const tls = certs ? { tls: { ca: certs.ca } } : {};
  const { procs, master, memBacking } = await startChild(scheme, certs);
  extra[`${scheme}WorkerMemBacking`] = memBacking;
  const fs = await connect(master, { shortCircuit: false, ...tls });
  const sc = scheme === 'tcp' && memBacking === 'shm' ? await connect(master, { shortCircuit: true }) : undefined;
  let wc: RpcClient | undefined;
  let map: ArrayBuffer | undefined;
  let engine: BlockCache | undefined;
  try {
    const writeRate = await writeBig(fs, '/big');
    rows.push(row(`client write ${label}`, writeRate, `${FILE_MIB} MiB, 64 MiB blocks, 1 MiB writes`, 'node:fs write (tmpfs)'));
    const { blocks } = await fs.getBlockLocations('/big');
    wc = await RpcClient.connect(blocks[0]!.locations[0]!.address, tls);
    const w = workerService(wc);
    const fns = [workerStreamPass(w, blocks, false), workerStreamPass(w, blocks, true), () => clientPass(fs, '/big')];
    if (sc) {
      const probe = await w.openShortCircuit({ blockId: blocks[0]!.blockId });
      if (probe.kind !== 'shm') throw new Error(`short-circuit refused: ${probe.kind === 'none' ? probe.reason : probe.kind}`);
      await w.closeShortCircuit({ pinId: probe.pinId });
      const ids = blocks.map((b) => b.blockId);
      if (probe.engine) {
        // The worker suite's pass, as the client reads once attached (enginePass).
        engine = BlockCache.attach({ path: probe.path, byteLength: probe.arenaBytes });
        const attached = engine;
        fns.push(async () => (await enginePass(attached, ids, dst, READ_BYTES)) / READ_BYTES, () => clientPass(sc, '/big'));
      } else {
        map = mapShared(probe.path, probe.arenaBytes, { readOnly: true });
        const arena = Buffer.from(map);
        fns.push(async () => (await shortCircuitPass(w, ids, arena, dst, READ_BYTES)) / READ_BYTES, () => clientPass(sc, '/big'));
      }
    }
    const measured = await interleaved(fns);
    const [plainOps, rawOps, clientOps, rawScOps, scOps] = measured.rates;
    const plainName = `worker-level ${label} read (this run)`;
    const wName = `worker-level ${label} read, next block ahead (this run)`;
    rows.push(row(plainName, plainOps! * READ_BYTES, `readBlock per block, chunks copied into an aligned 1 MiB buffer (worker suite method); ${METHOD_NOTE}`));
    rows.push(row(wName, rawOps! * READ_BYTES, `the same, the next block asked for a window before the end (as the client); ${METHOD_NOTE}`));
    rows.push(row(`client read ${label}`, clientOps! * READ_BYTES, `read(1 MiB buffer) sequentially; ${METHOD_NOTE}`, wName, measured.pairedRatio(2, 1)));
    rows.push(row(`client read ${label} (vs worker suite method)`, clientOps! * READ_BYTES, 'the row above, against the plain worker-level pass', plainName, measured.pairedRatio(2, 0)));
    summary[scheme] = { writeBytesPerSec: writeRate, readBytesPerSec: clientOps! * READ_BYTES, workerLevelReadBytesPerSec: rawOps! * READ_BYTES, readRatio: measured.pairedRatio(2, 1) };
    if (scOps !== undefined && rawScOps !== undefined) {
      const scName = 'worker-level short-circuit read (this run)';
      const scMethod = engine
        ? 'attached to the worker\'s engine, each block pinned there (BlockCache.acquire), copied in 1 MiB copies, released (worker suite method)'
        : 'open per block, the next one sent before the 1 MiB copies, close not waited for (worker suite method)';
      rows.push(row(scName, rawScOps * READ_BYTES, `${scMethod}; ${METHOD_NOTE}`));
      rows.push(row('client read short-circuit', scOps * READ_BYTES, `read(1 MiB buffer) sequentially; ${METHOD_NOTE}`, scName, measured.pairedRatio(4, 3)));
      summary.shortCircuit = { readBytesPerSec: scOps * READ_BYTES, workerLevelReadBytesPerSec: rawScOps * READ_BYTES, readRatio: measured.pairedRatio(4, 3) };
    } else if (scheme === 'tcp') {
      extra.shortCircuit = `not measured: the worker's MEM tier is ${memBacking} (short-circuit needs the native module)`;
    }
    await fs.delete('/big');
    if (scheme === 'tcp') await smallFileRows(fs, rows, extra);
  } finally {
    engine?.close();
    if (map) unmap(map);
    await wc?.close();
    await fs.close();
    await sc?.close();
    await stopChild(procs);
  }
}

/** Small files: 4 KiB create+write+close then read back, SMALL_CONCURRENCY in flight, beside node:fs on tmpfs. */
async function smallFileRows(fs: FileSystem, rows: Row[], extra: Record<string, unknown>): Promise<void> {
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
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const summary: Record<string, PathFigures> = {};
  const extra: Record<string, unknown> = { fileMib: FILE_MIB, chunkBytes: CHUNK_BYTES, readBytes: READ_BYTES, rounds: ROUNDS, smallConcurrency: SMALL_CONCURRENCY };

  // The worker suite's last committed figures, for reference (the ratios use this run's worker-level rows).
  const workerJson = join(here, '..', '..', 'bench', 'results', 'worker.json');
  if (existsSync(workerJson)) {
    const w = JSON.parse(readFileSync(workerJson, 'utf8')) as { rows: Row[]; date: string };
    const tcp = w.rows.find((r) => r.name === 'TCP read (readBlock stream)');
    const sc = w.rows.find((r) => r.name === 'short-circuit read');
    if (tcp?.bytesPerSec) rows.push(row('worker-level TCP read (worker.json)', tcp.bytesPerSec, `reference: the worker suite run of ${w.date}`));
    if (sc?.bytesPerSec) rows.push(row('worker-level short-circuit read (worker.json)', sc.bytesPerSec, `reference: the worker suite run of ${w.date}`));
  } else {
    extra.workerJson = 'bench/results/worker.json missing: no reference rows';
  }

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

  await transportRows('tcp', rows, extra, summary);
  await transportRows('ws', rows, extra, summary);
  const certs = makeCerts();
  if (certs) await transportRows('tls', rows, extra, summary, certs);
  else extra.tls = 'not measured: no openssl CLI to make a certificate';

  // inproc: embedded(), everything in this process. It runs after the sections that measure
  // other processes, so the arena it allocates and frees in this one is not in their way.
  {
    const fs = await embedded({ workers: 1, workerMemBytes: FILE_BYTES + 256 * MIB });
    try {
      const writeRate = await writeBig(fs, '/big');
      rows.push(row('client write inproc (embedded)', writeRate, `${FILE_MIB} MiB, 64 MiB blocks, 1 MiB writes`, 'node:fs write (tmpfs)'));
      const [readOps] = (await interleaved([() => clientPass(fs, '/big')])).rates;
      rows.push(row('client read inproc (embedded)', readOps! * READ_BYTES, METHOD_NOTE, 'node:fs read (tmpfs)'));
      summary.inproc = { writeBytesPerSec: writeRate, readBytesPerSec: readOps! * READ_BYTES };
    } finally {
      await fs.close();
    }
  }

  extra.summary = summary;
  const result = report('client', rows, extra);
  const ratio = (name: string) => result.rows.find((r) => r.name === name)?.ratio;
  const r2 = (name: string) => ratio(name)?.toFixed(2) ?? 'n/a';
  console.log(`targets (>= 0.9x worker-level, same run, same method): read TCP ${r2('client read TCP')}x; short-circuit ${r2('client read short-circuit')}x; `
    + `WebSocket ${r2('client read WebSocket')}x; TLS ${r2('client read TLS')}x; `
    + `small files ${Math.round(result.rows.find((r) => r.name === 'client 4 KiB create+write+close+read TCP')?.opsPerSec ?? 0)}/s (want >= 5000)`);
}

if (process.argv.includes('--role=master')) await child('master');
else if (process.argv.includes('--role=worker')) await child('worker');
else await main();
