/**
 * The worker host against its physical limits and against the tool a user would pick:
 *
 *   1. Sequential read of a cached file (default 1 GiB, `--mib=N` for quick runs) in 1 MiB
 *      reads into a 64-byte aligned buffer:
 *        - short-circuit, as the client reads: one openShortCircuit, whose answer lets the
 *          reader attach to the worker's block engine; then each block pinned in the engine
 *          (BlockCache.acquire, no call to the worker), copied out, released; baseline memcpy
 *          (Buffer.copy) of the same bytes between 64-byte aligned heap buffers in this
 *          process;
 *        - short-circuit, open per block (what a worker started with shortCircuitEngine: false
 *          gives): openShortCircuit per block (the next block's asked for, with sendNow, before
 *          this one is copied, as the client's read-ahead does: a round trip to the other
 *          process costs 0.3-0.8 ms on this VM, tens of ms in its tail), copy out of the
 *          read-only mapped arena, closeShortCircuit not waited for; same baseline;
 *        - over TCP: readBlock streams; baseline a raw node:net socket sending the same bytes
 *          from a buffer in the same server process (one socket.write per block), read the
 *          same way (each received chunk copied into the 1 MiB buffer).
 *   2. Write throughput of MUST_CACHE blocks over TCP (64 MiB blocks in 1 MiB chunks).
 *   3. 1 MiB values, VALUE_IN_FLIGHT reads in flight on one connection (as an application
 *      reading many values does; ioredis pipelines the GETs, Tessera multiplexes readBlock
 *      streams), each value copied into its reader's buffer: Tessera (TCP stream, and
 *      short-circuit) against a Redis GET with ioredis; and the TCP pair again one read at a
 *      time. The bench starts its own redis-server (Debian package) on 127.0.0.1 on a port
 *      chosen at run time with --save '' and stops it; without redis-server the Redis rows are
 *      skipped and the bench says so.
 *
 * The worker and the raw socket server run in a child process (this file with --role=child),
 * so the client and the server each have a core, as they would on a real host.
 * Rows that are compared are measured interleaved (ROUNDS rounds each, medians), so a busy
 * machine's swings fall on both sides of a ratio; each ratio is the median over the rounds of
 * the two rows' ratio in that round (the ratio of the medians is in the note).
 * Targets (issue 7): short-circuit >= 0.8x memcpy; TCP read >= 0.8x raw socket; >= 3x Redis
 * for 1 MiB values (the in-flight rows; the one-at-a-time pair is for reference).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect as netConnect, type Socket, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { aligned, enginePass, interleaved as interleavedIn, measureThroughput, report, shortCircuitPass, type Row } from './harness.js';
import { BlockCache } from '../core/block-cache.js';
import { mapShared, nativeStatus, unmap } from '../native/index.js';
import { RpcClient } from '../transports/rpc-client.js';
import { WorkerService } from '../transports/protocol/worker.js';
import type { ServiceClient } from '../transports/service.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const READ_BYTES = MIB;
const VALUE_BYTES = MIB;
const argMib = process.argv.find((a) => a.startsWith('--mib='));
const FILE_BYTES = (argMib ? Number(argMib.slice('--mib='.length)) : 1024) * MIB;
const BLOCK_BYTES = Math.min(64 * MIB, FILE_BYTES);
const VALUE_COUNT = 64;
/** Reads of 1 MiB values in flight at once, the same for Redis and Tessera. */
const VALUE_IN_FLIGHT = 8;
/** Values read per measured call when reads are in flight (a sliding window over them). */
const VALUE_BATCH = 4 * VALUE_IN_FLIGHT;
const quick = process.argv.includes('--quick');
const TIME_MS = quick ? 600 : 2500;
if (!Number.isSafeInteger(FILE_BYTES) || FILE_BYTES < MIB || FILE_BYTES % BLOCK_BYTES !== 0) {
  throw new Error(`--mib must be a whole number >= 1, a multiple of 64 above 64 (got ${argMib})`);
}
const BLOCK_COUNT = FILE_BYTES / BLOCK_BYTES;
const status = nativeStatus();
/** As the client opens short-circuit reads (WorkerClient): the request goes out at once. */
const SEND_NOW = { sendNow: true } as const;

function fill(b: Buffer): void {
  for (let i = 0; i < b.length; i += 4096) b.writeUInt32LE((i * 2654435761) >>> 0, i);
}

// ---- child: the worker host and the raw socket server --------------------------------------

async function child(): Promise<void> {
  const { WorkerHost } = await import('../worker/index.js');
  const host = await WorkerHost.start({
    address: 'tcp://127.0.0.1:0',
    tiers: [{ alias: 'MEM', capacityBytes: FILE_BYTES + VALUE_COUNT * VALUE_BYTES + 64 * MIB }],
  });
  const source = aligned(FILE_BYTES);
  fill(source);
  // Raw peer: a request is 16 bytes [offset u64 LE, length u64 LE]; the reply is those bytes.
  const raw = createServer({ noDelay: true }, (sock) => {
    let pending = Buffer.alloc(0);
    sock.on('data', async (d) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 16) {
        const off = Number(pending.readBigUInt64LE(0));
        const len = Number(pending.readBigUInt64LE(8));
        pending = pending.subarray(16);
        // The whole block in one write, as a user of a raw socket would send it; libuv
        // writes it out as the reader drains its side.
        sock.pause();
        if (!sock.write(source.subarray(off, off + len))) await new Promise((r) => sock.once('drain', r));
        sock.resume();
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  process.send!({ workerAddress: host.address, rawPort: (raw.address() as AddressInfo).port, memBacking: host.memBacking, fallback: host.store.mem?.fallbackReason });
  const stop = async (): Promise<void> => {
    raw.close();
    await host.stop();
    process.exit(0);
  };
  process.on('message', (m) => { if (m === 'stop') void stop(); });
  process.once('disconnect', () => void stop()); // the parent died: do not leave the arena behind
}

// ---- parent: the client side and the peers -----------------------------------------------

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface RedisPeer { get(i: number, dst: Buffer): Promise<number>; close(): Promise<void> }

/** Starts redis-server on a free port and loads the values; a string says why it cannot. */
async function startRedis(valueOf: (i: number) => Buffer): Promise<RedisPeer | string> {
  const port = await freePort();
  let proc: ChildProcess;
  try {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('spawn', () => resolve());
    });
  } catch (err) {
    return `redis-server not found (${(err as Error).message}); install it with apt-get install -y redis-server. Redis row skipped.`;
  }
  const { Redis } = await import('ioredis');
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 3, retryStrategy: (n: number) => (n > 50 ? null : 50) });
  const close = async (): Promise<void> => {
    redis.disconnect();
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  };
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await redis.connect();
        break;
      } catch (err) {
        if (attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (let i = 0; i < VALUE_COUNT; i++) await redis.set(`v${i}`, valueOf(i));
    const check = await redis.getBuffer('v0');
    if (!check || !check.equals(valueOf(0))) throw new Error('redis returned other bytes');
  } catch (err) {
    await close();
    throw err;
  }
  return {
    async get(i: number, dst: Buffer): Promise<number> {
      const v = await redis.getBuffer(`v${i % VALUE_COUNT}`);
      if (!v || v.length !== VALUE_BYTES) throw new Error('short value');
      v.copy(dst, 0);
      return 1;
    },
    close,
  };
}

const ROUNDS = quick ? 3 : 9;

/**
 * Runs `count` reads, at most `width` in flight (a sliding window: a new read starts as soon
 * as one ends); read `i` gets slot `i % width`'s destination buffer.
 */
async function window(width: number, count: number, read: (slot: number) => Promise<number>): Promise<number> {
  let next = 0;
  let done = 0;
  const lane = async (slot: number): Promise<void> => {
    while (next < count) {
      next++;
      const n = await read(slot); // not `done += await ...`: that reads `done` before the await
      done += n;
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, (_, slot) => lane(slot)));
  return done;
}

const interleaved = (fns: (() => Promise<number> | number)[]) => interleavedIn(fns, ROUNDS, TIME_MS);

async function parent(): Promise<void> {
  const rows: Row[] = [];
  const extra: Record<string, unknown> = { fileBytes: FILE_BYTES, blockBytes: BLOCK_BYTES, readBytes: READ_BYTES, native: status.reason };
  const proc = fork(fileURLToPath(import.meta.url), ['--role=child', ...process.argv.slice(2)], { stdio: 'inherit' });
  const info = await new Promise<{ workerAddress: string; rawPort: number; memBacking: string; fallback?: string }>((resolve, reject) => {
    proc.once('message', (m) => resolve(m as never));
    proc.once('exit', (code) => reject(new Error(`worker child exited with ${code}`)));
  });
  extra.memBacking = info.memBacking;
  if (info.fallback) extra.memFallback = info.fallback;
  console.log(`worker MEM tier: ${info.memBacking}${info.fallback ? ` (${info.fallback})` : ''}; file ${FILE_BYTES / MIB} MiB in ${BLOCK_COUNT} blocks`);
  const client = await RpcClient.connect(info.workerAddress);
  const w = client.service(WorkerService);
  const file = aligned(FILE_BYTES);
  fill(file);
  const dst = aligned(READ_BYTES);
  const blockId = (i: number): number => 1_000_000 + i;
  const valueId = (i: number): number => 2_000_000 + i;

  try {
    // ---- 2. writes (the last pass leaves the file cached for the reads) ----
    const writeAll = async (): Promise<number> => {
      for (let b = 0; b < BLOCK_COUNT; b++) {
        const chunks: Buffer[] = [];
        for (let at = 0; at < BLOCK_BYTES; at += MIB) chunks.push(file.subarray(b * BLOCK_BYTES + at, b * BLOCK_BYTES + at + MIB));
        await w.writeBlock({ blockId: blockId(b), reserveBytes: BLOCK_BYTES, writeType: 'MUST_CACHE' }).pipeFrom(chunks);
      }
      return FILE_BYTES / MIB;
    };
    let first = true;
    const writeOps = await measureThroughput(async () => {
      if (!first) for (let b = 0; b < BLOCK_COUNT; b++) await w.removeBlock({ blockId: blockId(b) });
      first = false;
      return writeAll();
    }, TIME_MS);
    rows.push({ name: 'write MUST_CACHE over TCP', opsPerSec: writeOps, bytesPerSec: writeOps * MIB, note: `${BLOCK_BYTES / MIB} MiB blocks, 1 MiB chunks` });

    await writeValues(w, valueId);

    // ---- 1a. memcpy baseline and short-circuit, interleaved ----
    const memcpy = (): number => {
      for (let at = 0; at < FILE_BYTES; at += READ_BYTES) file.copy(dst, 0, at, at + READ_BYTES);
      return FILE_BYTES / READ_BYTES;
    };
    const probe = await w.openShortCircuit({ blockId: blockId(0) });
    let map: ArrayBuffer | undefined;
    let engine: BlockCache | undefined;
    const scFns: (() => Promise<number>)[] = [];
    let scValue: ((slotDst: Buffer) => Promise<number>) | undefined;
    if (probe.kind === 'shm') {
      await w.closeShortCircuit({ pinId: probe.pinId });
      map = mapShared(probe.path, probe.arenaBytes, { readOnly: true });
      const arena = Buffer.from(map);
      const ids = Array.from({ length: BLOCK_COUNT }, (_, b) => blockId(b));
      const sameBytes = (first: Buffer): void => {
        if (!first.subarray(0, 4096).equals(file.subarray(0, 4096))) throw new Error('short-circuit read other bytes than written');
      };
      let vi = 0;
      // As the client reads a file (see enginePass and shortCircuitPass in harness.ts).
      if (probe.engine) {
        engine = BlockCache.attach({ path: probe.path, byteLength: probe.arenaBytes });
        const attached = engine;
        scFns.push(async () => (await enginePass(attached, ids, dst, READ_BYTES, sameBytes)) / READ_BYTES);
        scValue = async (slotDst: Buffer) => {
          const view = attached.acquire(valueId(vi++ % VALUE_COUNT));
          if (view === undefined) throw new Error('value not in the engine');
          slotDst.set(view.bytes);
          view.release();
          return 1;
        };
      }
      scFns.push(async () => (await shortCircuitPass(w, ids, arena, dst, READ_BYTES, sameBytes)) / READ_BYTES);
      scValue ??= async (slotDst: Buffer) => {
        const sc = await w.openShortCircuit({ blockId: valueId(vi++ % VALUE_COUNT) }, SEND_NOW);
        if (sc.kind !== 'shm') throw new Error('short-circuit refused');
        arena.copy(slotDst, 0, sc.offsetBytes, sc.offsetBytes + sc.lengthBytes);
        // As the client does: the release only has to arrive before the lease ends.
        w.closeShortCircuit({ pinId: sc.pinId }).catch(() => undefined);
        return 1;
      };
      extra.shortCircuit = engine ? 'shm, engine attached' : 'shm, open per block (the worker does not allow attaching)';
    } else {
      const reason = probe.kind === 'none' ? probe.reason : probe.kind;
      extra.shortCircuit = `unavailable: ${reason}`;
      console.log(`short-circuit unavailable (${reason}): its rows are skipped`);
    }
    const scPair = await interleaved([memcpy, ...scFns]);
    const [memcpyOps, ...scOps] = scPair.rates;
    rows.push({ name: 'memcpy (Buffer.copy)', opsPerSec: memcpyOps!, bytesPerSec: memcpyOps! * READ_BYTES, note: '1 MiB copies, 64-byte aligned' });
    const pairNote = (i: number): string => `ratio: median of ${ROUNDS} back-to-back pairs (ratio of medians ${(scOps[i]! / memcpyOps!).toFixed(2)})`;
    if (engine) {
      rows.push({
        name: 'short-circuit read', opsPerSec: scOps[0]!, bytesPerSec: scOps[0]! * READ_BYTES, baseline: 'memcpy (Buffer.copy)', pairedRatio: scPair.pairedRatio(1, 0),
        note: `worker in another process; attached to its engine (one open, then BlockCache.acquire per block, no call to the worker), as the client reads; ${pairNote(0)}`,
      });
    }
    const rpcAt = engine ? 1 : 0;
    if (scOps[rpcAt] !== undefined) {
      rows.push({
        name: engine ? 'short-circuit read, open per block' : 'short-circuit read', opsPerSec: scOps[rpcAt]!, bytesPerSec: scOps[rpcAt]! * READ_BYTES,
        baseline: 'memcpy (Buffer.copy)', pairedRatio: scPair.pairedRatio(rpcAt + 1, 0),
        note: `worker in another process; openShortCircuit per block (the next asked for before copying), close not waited for (a worker started with shortCircuitEngine: false); ${pairNote(rpcAt)}`,
      });
    }

    // ---- 1b. raw socket baseline and TCP read, interleaved ----
    const sock: Socket = netConnect({ port: info.rawPort, host: '127.0.0.1', noDelay: true });
    await new Promise((r) => sock.once('connect', r));
    sock.pause();
    const rawRead = (off: number, len: number): Promise<void> => new Promise((resolve) => {
      const req = Buffer.alloc(16);
      req.writeBigUInt64LE(BigInt(off), 0);
      req.writeBigUInt64LE(BigInt(len), 8);
      let got = 0;
      const onData = (d: Buffer): void => {
        let o = 0;
        while (o < d.length) {
          const pos = got % READ_BYTES;
          const n = Math.min(d.length - o, READ_BYTES - pos);
          d.copy(dst, pos, o, o + n);
          o += n;
          got += n;
        }
        if (got >= len) {
          sock.off('data', onData);
          sock.pause();
          resolve();
        }
      };
      sock.on('data', onData);
      sock.resume();
      sock.write(req);
    });
    const raw = async (): Promise<number> => {
      for (let b = 0; b < BLOCK_COUNT; b++) await rawRead(b * BLOCK_BYTES, BLOCK_BYTES);
      return FILE_BYTES / READ_BYTES;
    };
    const tcp = async (): Promise<number> => {
      for (let b = 0; b < BLOCK_COUNT; b++) {
        const dl = w.readBlock({ blockId: blockId(b), readType: 'CACHE' });
        let got = 0;
        for await (const chunk of dl) {
          Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).copy(dst, got % READ_BYTES);
          got += chunk.byteLength;
        }
        if (got !== BLOCK_BYTES) throw new Error('short TCP read');
        await dl.result;
      }
      return FILE_BYTES / READ_BYTES;
    };
    const tcpPair = await interleaved([raw, tcp]);
    const [rawOps, tcpOps] = tcpPair.rates;
    sock.destroy();
    rows.push({ name: 'raw socket read (node:net)', opsPerSec: rawOps!, bytesPerSec: rawOps! * READ_BYTES, note: 'same server process, one write per block' });
    rows.push({
      name: 'TCP read (readBlock stream)', opsPerSec: tcpOps!, bytesPerSec: tcpOps! * READ_BYTES, baseline: 'raw socket read (node:net)', pairedRatio: tcpPair.pairedRatio(1, 0),
      note: `worker in another process; ratio: median of ${ROUNDS} back-to-back pairs (ratio of medians ${(tcpOps! / rawOps!).toFixed(2)})`,
    });

    // ---- 3. 1 MiB values: Redis, short-circuit, TCP, interleaved ----
    const redis = await startRedis((i) => file.subarray(i * VALUE_BYTES, (i + 1) * VALUE_BYTES));
    if (typeof redis === 'string') {
      console.log(redis);
      extra.redis = redis;
    }
    const slotDst = Array.from({ length: VALUE_IN_FLIGHT }, () => aligned(VALUE_BYTES));
    let ti = 0;
    const tcpValue = async (into: Buffer): Promise<number> => {
      const dl = w.readBlock({ blockId: valueId(ti++ % VALUE_COUNT) });
      let got = 0;
      for await (const chunk of dl) {
        Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).copy(into, got);
        got += chunk.byteLength;
      }
      if (got !== VALUE_BYTES) throw new Error('short value read');
      await dl.result;
      return 1;
    };
    let ri = 0;
    const many = (read: (into: Buffer) => Promise<number>) => () => window(VALUE_IN_FLIGHT, VALUE_BATCH, (slot) => read(slotDst[slot]!));
    const fns: { name: string; fn: () => Promise<number>; note: string; baseline?: string }[] = [];
    const redisMany = `Redis GET 1 MiB (ioredis, ${VALUE_IN_FLIGHT} in flight)`;
    const redisOne = 'Redis GET 1 MiB (ioredis, one at a time)';
    if (typeof redis !== 'string') fns.push({ name: redisMany, fn: many((into) => redis.get(ri++, into)), note: 'redis-server on 127.0.0.1, pipelined GETs, value copied out' });
    if (scValue) fns.push({ name: `Tessera short-circuit 1 MiB values (${VALUE_IN_FLIGHT} in flight)`, fn: many(scValue), note: engine ? 'pinned in the attached engine, copied, released (as the client does)' : 'open + copy per value, close not awaited (as the client does)', baseline: redisMany });
    fns.push({ name: `Tessera readBlock 1 MiB values (TCP, ${VALUE_IN_FLIGHT} in flight)`, fn: many(tcpValue), note: 'readBlock streams on one connection, value copied out', baseline: redisMany });
    if (typeof redis !== 'string') fns.push({ name: redisOne, fn: () => redis.get(ri++, slotDst[0]!), note: 'one GET at a time' });
    fns.push({ name: 'Tessera readBlock 1 MiB values (TCP, one at a time)', fn: () => tcpValue(slotDst[0]!), note: 'one read at a time', baseline: redisOne });
    try {
      const values = await interleaved(fns.map((f) => f.fn));
      fns.forEach((f, i) => {
        const rate = values.rates[i]!;
        const base = fns.findIndex((g) => g.name === f.baseline);
        rows.push({
          name: f.name, opsPerSec: rate, bytesPerSec: rate * VALUE_BYTES,
          ...(base >= 0 ? { baseline: f.baseline!, pairedRatio: values.pairedRatio(i, base) } : {}),
          note: base >= 0 ? `${f.note}; ratio: median over ${ROUNDS} rounds (ratio of medians ${(rate / values.rates[base]!).toFixed(2)})` : f.note,
        });
      });
      extra.valueInFlight = VALUE_IN_FLIGHT;
    } finally {
      if (typeof redis !== 'string') await redis.close();
      engine?.close();
      if (map) unmap(map);
    }
  } finally {
    await client.close();
    proc.send('stop');
    await new Promise((r) => proc.once('exit', r));
  }
  // Order the rows so each sits under its baseline.
  const order = ['write MUST_CACHE over TCP', 'memcpy (Buffer.copy)', 'short-circuit read', 'short-circuit read, open per block', 'raw socket read (node:net)', 'TCP read (readBlock stream)'];
  const rank = (name: string): number => (order.includes(name) ? order.indexOf(name) : order.length);
  rows.sort((a, b) => rank(a.name) - rank(b.name)); // stable: the value rows keep their order
  report('worker', rows, extra);
}

async function writeValues(w: ServiceClient<typeof WorkerService.members>, valueId: (i: number) => number): Promise<number> {
  const v = aligned(VALUE_BYTES);
  for (let i = 0; i < VALUE_COUNT; i++) {
    fill(v);
    v.writeUInt32LE(i, 0);
    await w.writeBlock({ blockId: valueId(i), reserveBytes: VALUE_BYTES }).pipeFrom([Buffer.from(v)]);
  }
  return VALUE_COUNT;
}

if (process.argv.includes('--role=child')) await child();
else await parent();
