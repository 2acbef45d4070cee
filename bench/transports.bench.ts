/**
 * Transports benchmark: `npm run bench -- transports`.
 *
 * Per transport (inproc in this process; tcp, tls and ws against a server in a child process,
 * as a deployment would run it), beside a raw node:net socket and a raw ws socket on loopback
 * (and a raw node:tls socket for tls) served by the same child:
 *   - small-call round trips per second on one connection, 1 and 64 in flight
 *     (raw peers: a 32-byte echo);
 *   - stream throughput, 1 MiB chunks, server to client (a block read);
 *   - 64 MiB block transfer time, download and upload.
 * Targets (issue 5): tcp stream >= 0.8x raw net; tcp calls at 64 in flight >= 150 K/s;
 * ws stream >= 0.8x raw ws; inproc >= 1 M calls/s.
 *
 * The same file is the child server when run with `--server`.
 */
import { fork } from 'node:child_process';
import * as net from 'node:net';
import * as tlsLib from 'node:tls';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { DEFAULT_STREAM_WINDOW_BYTES, MIB } from '../core/constants.js';
import { type Row, report, formatRate, makeCerts } from './harness.js';
import {
  InprocNetwork, InprocTransport, RpcClient, RpcServer, type RpcClientOptions, type RpcServerOptions,
  clientStream, defineService, method, serverStream,
} from '../transports/index.js';

const BenchService = defineService('bench', {
  ping: method<{ n: number }, { n: number }>(),
  download: serverStream<{ totalBytes: number }, { bytes: number }>(),
  upload: clientStream<Record<string, never>, { bytes: number }>(),
});

const CHUNK_BYTES = 1 * MIB;
const BLOCK_BYTES = 64 * MIB;
const CALL_TIME_MS = Number(process.env.BENCH_CALL_MS ?? 1000);
const STREAM_TIME_MS = Number(process.env.BENCH_STREAM_MS ?? 2400);
const BLOCK_REPEATS = 5;
const WARMUP_MS = 400;
const STREAM_ROUNDS = 3;
/** Bytes the raw peers keep queued, like the RPC stream's credit window (DEFAULT_STREAM_WINDOW_BYTES). */
const RAW_IN_FLIGHT_BYTES = DEFAULT_STREAM_WINDOW_BYTES;
const ECHO_BYTES = 32;

function registerBench(server: RpcServer): void {
  const chunk = Buffer.alloc(CHUNK_BYTES, 0x5a);
  server.register(BenchService, {
    ping: (req) => req,
    download: async (req, _ctx, out) => {
      let sent = 0;
      while (sent < req.totalBytes) {
        const n = Math.min(CHUNK_BYTES, req.totalBytes - sent);
        await out.write(n === CHUNK_BYTES ? chunk : chunk.subarray(0, n));
        sent += n;
      }
      return { bytes: sent };
    },
    upload: async (_req, _ctx, input) => {
      let bytes = 0;
      for await (const c of input) bytes += c.byteLength;
      return { bytes };
    },
  });
}

// ---------------------------------------------------------------- child: the servers

interface Addresses { tcp: string; tls?: string; ws: string; rawTcpPort: number; rawTlsPort?: number; rawWsUrl: string }

/** Raw peers: first byte 'S' + u32 total => that many bytes back in 1 MiB writes; anything else is echoed. */
async function runServers(tlsCerts?: { cert: string; key: string }): Promise<Addresses> {
  const server = new RpcServer(tlsCerts ? { tls: tlsCerts } : {});
  registerBench(server);
  const tcp = (await server.listen('tcp://127.0.0.1:0')).address;
  const ws = (await server.listen('ws://127.0.0.1:0/bench')).address;
  const tls = tlsCerts ? (await server.listen('tls://127.0.0.1:0')).address : undefined;
  const chunk = Buffer.alloc(CHUNK_BYTES, 0x5a);

  const rawPeer = (s: net.Socket): void => {
    let mode: 'unknown' | 'echo' = 'unknown';
    s.on('data', (d: Buffer) => {
      if (mode === 'unknown' && d[0] === 0x53 && d.length >= 5) {
        let left = d.readUInt32LE(1) * MIB;
        // Keep up to RAW_IN_FLIGHT_BYTES queued (as the RPC stream's credit window does), not just
        // one chunk: write() returns false past a 16 KiB high-water mark, which would starve the pipe.
        const pump = (): void => {
          while (left > 0) {
            if (s.writableLength >= RAW_IN_FLIGHT_BYTES) { s.once('drain', pump); return; }
            left -= CHUNK_BYTES;
            s.write(chunk);
          }
        };
        pump();
        return;
      }
      mode = 'echo';
      s.write(d);
    });
    s.on('error', () => undefined);
  };
  const raw = net.createServer({ noDelay: true }, rawPeer);
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
  let rawTlsPort: number | undefined;
  if (tlsCerts) {
    const rawTls = tlsServer(tlsCerts, rawPeer);
    await new Promise<void>((r) => rawTls.listen(0, '127.0.0.1', () => r()));
    rawTlsPort = (rawTls.address() as net.AddressInfo).port;
  }

  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 2 * CHUNK_BYTES });
  wss.on('connection', (sock) => {
    sock.on('message', (d: Buffer) => {
      if (d.length === 5 && d[0] === 0x53) {
        let left = d.readUInt32LE(1);
        let inFlight = 0;
        const pump = (): void => {
          while (left > 0 && inFlight * CHUNK_BYTES < RAW_IN_FLIGHT_BYTES) {
            left--;
            inFlight++;
            sock.send(chunk, { binary: true }, () => { inFlight--; pump(); });
          }
        };
        pump();
        return;
      }
      sock.send(d, { binary: true });
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const wsPort = (wss.address() as net.AddressInfo).port;
  return {
    tcp, ws, ...(tls ? { tls } : {}), ...(rawTlsPort ? { rawTlsPort } : {}),
    rawTcpPort: (raw.address() as net.AddressInfo).port, rawWsUrl: `ws://127.0.0.1:${wsPort}/`,
  };
}

function tlsServer(certs: { cert: string; key: string }, onSocket: (s: net.Socket) => void): tlsLib.Server {
  return tlsLib.createServer({ cert: certs.cert, key: certs.key }, (s) => { s.setNoDelay(true); onSocket(s); });
}

// ---------------------------------------------------------------- measurements

/** Calls per second with `inFlight` loops each awaiting one call at a time. */
async function callsPerSec(call: () => Promise<unknown>, inFlight: number, timeMs = CALL_TIME_MS): Promise<number> {
  // Warm-up: long enough for the JIT on both sides to settle (a few hundred calls are not).
  const warmEnd = performance.now() + WARMUP_MS;
  await Promise.all(Array.from({ length: inFlight }, async () => { while (performance.now() < warmEnd) await call(); }));
  const start = performance.now();
  const end = start + timeMs;
  let count = 0;
  // The clock is read every 8 calls: reading it per call costs ~10% of an inproc call.
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      for (let i = 0; i < 8; i++) await call();
      count += 8;
    }
  }));
  return count / ((performance.now() - start) / 1000);
}

/** Bytes per second of repeated downloads of `totalBytes`. */
async function streamBytesPerSec(download: (totalBytes: number) => Promise<number>, timeMs: number): Promise<number> {
  const start = performance.now();
  let bytes = 0;
  while (performance.now() - start < timeMs) bytes += await download(128 * MIB);
  return bytes / ((performance.now() - start) / 1000);
}

/** Stream measurements run last, interleaved in rounds, best round kept: the machine is shared. */
interface StreamJob { name: string; baseline?: string; download: (totalBytes: number) => Promise<number> }
const streamJobs: StreamJob[] = [];
const closers: (() => Promise<void>)[] = [];

async function runStreamJobs(rows: Row[]): Promise<void> {
  const best = new Map<string, number>();
  for (const j of streamJobs) await j.download(32 * MIB); // warm-up
  for (let round = 0; round < STREAM_ROUNDS; round++) {
    for (const j of streamJobs) {
      const bps = await streamBytesPerSec(j.download, STREAM_TIME_MS / STREAM_ROUNDS);
      best.set(j.name, Math.max(best.get(j.name) ?? 0, bps));
    }
  }
  for (const j of streamJobs) {
    const bps = best.get(j.name)!;
    rows.push({ name: j.name, opsPerSec: bps / CHUNK_BYTES, bytesPerSec: bps, ...(j.baseline ? { baseline: j.baseline } : {}), note: `best of ${STREAM_ROUNDS} interleaved rounds` });
  }
}

/** Median time in ms of `fn`. */
async function medianMs(fn: () => Promise<unknown>, repeats = BLOCK_REPEATS): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function rpcRows(label: string, client: RpcClient, rows: Row[], baselines: { echo1?: string; echo64?: string; stream?: string }): Promise<void> {
  const s = client.service(BenchService);
  let n = 0;
  const ping = (): Promise<unknown> => s.ping({ n: n++ });
  const c1 = await callsPerSec(ping, 1);
  rows.push({ name: `${label} calls, 1 in flight`, opsPerSec: c1, ...(baselines.echo1 ? { baseline: baselines.echo1 } : {}) });
  const c64 = await callsPerSec(ping, 64);
  rows.push({ name: `${label} calls, 64 in flight`, opsPerSec: c64, ...(baselines.echo64 ? { baseline: baselines.echo64 } : {}) });
  const download = async (totalBytes: number): Promise<number> => {
    const dl = s.download({ totalBytes });
    let got = 0;
    for await (const c of dl) got += c.byteLength;
    await dl.result;
    return got;
  };
  streamJobs.push({ name: `${label} stream 1 MiB chunks`, ...(baselines.stream ? { baseline: baselines.stream } : {}), download });
  const dlMs = await medianMs(() => download(BLOCK_BYTES));
  rows.push({ name: `${label} 64 MiB block read`, opsPerSec: 1000 / dlMs, bytesPerSec: BLOCK_BYTES / (dlMs / 1000), note: `${dlMs.toFixed(1)} ms` });
  const chunk = Buffer.alloc(CHUNK_BYTES, 1);
  const upMs = await medianMs(async () => {
    const up = s.upload({});
    for (let i = 0; i < BLOCK_BYTES / CHUNK_BYTES; i++) await up.write(chunk);
    await up.end();
  });
  rows.push({ name: `${label} 64 MiB block write`, opsPerSec: 1000 / upMs, bytesPerSec: BLOCK_BYTES / (upMs / 1000), note: `${upMs.toFixed(1)} ms` });
  console.log(`${label}: ${formatRate(c1)}/s (1), ${formatRate(c64)}/s (64), 64 MiB read ${dlMs.toFixed(1)} ms, write ${upMs.toFixed(1)} ms`);
}

async function rawTcpRows(port: number, rows: Row[]): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise((r) => s.once('connect', r));
  // Echo: each call is ECHO_BYTES out and back; replies are matched by count.
  let waiting: (() => void)[] = [];
  let pending = 0;
  s.on('data', (d: Buffer) => {
    pending += d.length;
    while (pending >= ECHO_BYTES && waiting.length > 0) { pending -= ECHO_BYTES; waiting.shift()!(); }
  });
  const msg = Buffer.alloc(ECHO_BYTES, 1);
  const echo = (): Promise<void> => new Promise((r) => { waiting.push(r); s.write(msg); });
  rows.push({ name: 'raw net echo, 1 in flight', opsPerSec: await callsPerSec(echo, 1) });
  rows.push({ name: 'raw net echo, 64 in flight', opsPerSec: await callsPerSec(echo, 64) });
  s.destroy();
  waiting = [];

  const download = (totalBytes: number): Promise<number> => new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => {
      const req = Buffer.alloc(5);
      req[0] = 0x53;
      req.writeUInt32LE(totalBytes / MIB, 1);
      c.write(req);
    });
    let got = 0;
    c.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= totalBytes) { c.destroy(); resolve(got); }
    });
  });
  streamJobs.push({ name: 'raw net stream 1 MiB chunks', download });
  const ms = await medianMs(() => download(BLOCK_BYTES));
  rows.push({ name: 'raw net 64 MiB block read', opsPerSec: 1000 / ms, bytesPerSec: BLOCK_BYTES / (ms / 1000), note: `${ms.toFixed(1)} ms` });
}

/** Raw TLS baseline: stream throughput only (TLS costs are the crypto, not the framing). */
async function rawTlsRows(port: number, ca: string, rows: Row[]): Promise<void> {
  const download = (totalBytes: number): Promise<number> => new Promise((resolve) => {
    const c = tlsLib.connect({ port, host: '127.0.0.1', ca }, () => {
      const req = Buffer.alloc(5);
      req[0] = 0x53;
      req.writeUInt32LE(totalBytes / MIB, 1);
      c.write(req);
    });
    let got = 0;
    c.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= totalBytes) { c.destroy(); resolve(got); }
    });
  });
  streamJobs.push({ name: 'raw tls stream 1 MiB chunks', download });
}

async function rawWsRows(url: string, rows: Row[]): Promise<void> {
  const open = async (): Promise<WebSocket> => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 2 * CHUNK_BYTES });
    await new Promise((r) => ws.once('open', r));
    return ws;
  };
  const ws = await open();
  const waiting: (() => void)[] = [];
  ws.on('message', () => waiting.shift()?.());
  const msg = Buffer.alloc(ECHO_BYTES, 1);
  const echo = (): Promise<void> => new Promise((r) => { waiting.push(r); ws.send(msg, { binary: true }); });
  rows.push({ name: 'raw ws echo, 1 in flight', opsPerSec: await callsPerSec(echo, 1) });
  rows.push({ name: 'raw ws echo, 64 in flight', opsPerSec: await callsPerSec(echo, 64) });
  ws.terminate();

  const dws = await open();
  let done: ((n: number) => void) | undefined;
  let got = 0;
  let want = 0;
  dws.on('message', (d: Buffer) => {
    got += d.length;
    if (got >= want && done) { const r = done; done = undefined; r(got); }
  });
  const download = (totalBytes: number): Promise<number> => new Promise((resolve) => {
    got = 0;
    want = totalBytes;
    done = resolve;
    const req = Buffer.alloc(5);
    req[0] = 0x53;
    req.writeUInt32LE(totalBytes / CHUNK_BYTES, 1);
    dws.send(req, { binary: true });
  });
  streamJobs.push({ name: 'raw ws stream 1 MiB chunks', download });
  const ms = await medianMs(() => download(BLOCK_BYTES));
  rows.push({ name: 'raw ws 64 MiB block read', opsPerSec: 1000 / ms, bytesPerSec: BLOCK_BYTES / (ms / 1000), note: `${ms.toFixed(1)} ms` });
  closers.push(async () => { dws.terminate(); });
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const certs = makeCerts();
  const child = fork(fileURLToPath(import.meta.url), ['--server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    child.send({ certs: certs ? { cert: certs.cert, key: certs.key } : undefined });
    const addr = await new Promise<Addresses>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Addresses));
      child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    });

    // inproc first, in a quiet process (before the raw peers fill the heap and the sockets).
    for (const isolation of ['clone', 'none'] as const) {
      const t = new InprocTransport(new InprocNetwork({ isolation }));
      const server = new RpcServer({ transport: t } as RpcServerOptions);
      registerBench(server);
      await server.listen(`inproc://bench-${isolation}`);
      const client = await RpcClient.connect(`inproc://bench-${isolation}`, { transport: t } as RpcClientOptions);
      await rpcRows(`inproc (isolation ${isolation})`, client, rows, {});
      closers.push(async () => { await client.close(); await server.close(); });
    }

    await rawTcpRows(addr.rawTcpPort, rows);
    if (addr.rawTlsPort && certs) await rawTlsRows(addr.rawTlsPort, certs.ca, rows);
    await rawWsRows(addr.rawWsUrl, rows);

    const tcp = await RpcClient.connect(addr.tcp);
    await rpcRows('tcp', tcp, rows, { echo1: 'raw net echo, 1 in flight', echo64: 'raw net echo, 64 in flight', stream: 'raw net stream 1 MiB chunks' });
    closers.push(() => tcp.close());
    if (addr.tls && certs) {
      const tls = await RpcClient.connect(addr.tls, { tls: { ca: certs.ca } });
      await rpcRows('tls', tls, rows, { echo1: 'raw net echo, 1 in flight', echo64: 'raw net echo, 64 in flight', stream: 'raw tls stream 1 MiB chunks' });
      closers.push(() => tls.close());
    }
    const ws = await RpcClient.connect(addr.ws);
    await rpcRows('ws', ws, rows, { echo1: 'raw ws echo, 1 in flight', echo64: 'raw ws echo, 64 in flight', stream: 'raw ws stream 1 MiB chunks' });
    closers.push(() => ws.close());
    await runStreamJobs(rows);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    child.kill();
  }

  const get = (name: string): Row | undefined => rows.find((r) => r.name === name);
  const ratio = (a: string, b: string): number => (get(a)?.bytesPerSec ?? 0) / (get(b)?.bytesPerSec ?? 1);
  const targets = {
    tcpStreamVsRaw: { value: ratio('tcp stream 1 MiB chunks', 'raw net stream 1 MiB chunks'), target: 0.8 },
    tcpCalls64PerSec: { value: get('tcp calls, 64 in flight')?.opsPerSec ?? 0, target: 150_000 },
    wsStreamVsRaw: { value: ratio('ws stream 1 MiB chunks', 'raw ws stream 1 MiB chunks'), target: 0.8 },
    inprocCallsPerSec: {
      value: Math.max(get('inproc (isolation clone) calls, 64 in flight')?.opsPerSec ?? 0, get('inproc (isolation none) calls, 64 in flight')?.opsPerSec ?? 0),
      target: 1_000_000,
    },
  };
  const met = Object.fromEntries(Object.entries(targets).map(([k, v]) => [k, { ...v, met: v.value >= v.target }]));
  report('transports', rows, { targets: met, notes: 'tcp/tls/ws servers and raw peers run in a child process; inproc in-process' });
}

if (process.argv.includes('--server')) {
  process.once('message', (m: { certs?: { cert: string; key: string } }) => {
    runServers(m.certs).then((a) => process.send!(a), (err) => { console.error(err); process.exit(1); });
  });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
  process.exit(0);
}
