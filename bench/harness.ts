/**
 * Shared plumbing for the benchmark suites: one table format, ratios against a named
 * baseline, and machine-readable JSON in bench/results/<suite>.json. Suites measure with
 * tinybench where a call is short, or with `measureThroughput` for bulk transfers and
 * multi-thread runs where the figure is bytes or operations over wall time.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, tmpdir } from 'node:os';
import { Bench } from 'tinybench';
import { setImmediate as setImmediateP } from 'node:timers/promises';
import { nativeAvailable, pageOffsetOf } from '../native/index.js';
import { CLIENT_VIEW_YIELD_BYTES } from '../core/constants.js';
import type { WorkerServiceClient } from '../client/worker-client.js';
import type { BlockCache } from '../core/block-cache.js';

/**
 * `length` bytes of `buffer` starting 64-byte aligned (the native module tells the address;
 * without it, the buffer's start). `buffer` needs 64 spare bytes. memcpy runs far slower from
 * or into misaligned memory, so every suite copies between aligned views.
 */
export function alignedIn(buffer: ArrayBufferLike, length: number): Uint8Array {
  const whole = new Uint8Array(buffer);
  const native = nativeAvailable();
  const skew = native ? (64 - (pageOffsetOf(whole) % 64)) % 64 : 0;
  const v = whole.subarray(skew, skew + length);
  if (native && pageOffsetOf(v) % 64 !== 0) throw new Error('alignment failed');
  return v;
}

/** A fresh 64-byte aligned Buffer of `length` bytes (see alignedIn). */
export function aligned(length: number): Buffer {
  const v = alignedIn(new ArrayBuffer(length + 64), length);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export interface Row {
  /** What was measured, e.g. 'BlockCache acquire+release 4 KiB'. */
  name: string;
  /** Operations per second (or other rate), higher is better. */
  opsPerSec: number;
  /** Bytes per second where the row moves bytes. */
  bytesPerSec?: number;
  /** Name of the row this one is compared to; the ratio is opsPerSec / baseline's. */
  baseline?: string;
  /**
   * Where the two rows were measured in back-to-back pairs: the median over the pairs of this
   * row's rate / the baseline's, reported as the ratio instead of the ratio of the medians.
   * A machine whose speed drifts between rounds moves both halves of a pair alike.
   */
  pairedRatio?: number;
  /** Free-form note (thread count, sizes). */
  note?: string;
}

export interface SuiteResult {
  suite: string;
  node: string;
  cpu: string;
  date: string;
  rows: (Row & { ratio?: number })[];
  extra?: Record<string, unknown>;
}

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');

/** Runs one short function under tinybench and returns its mean ops/s. */
export async function opsPerSec(fn: () => unknown, timeMs = 500, warmupMs = 100): Promise<number> {
  const bench = new Bench({ time: timeMs, warmupTime: warmupMs });
  bench.add('x', fn);
  await bench.run();
  const r = bench.tasks[0]!.result as unknown as { state: string; throughput?: { mean: number }; error?: unknown };
  if (r.state !== 'completed' || !r.throughput) throw new Error(`benchmark failed: ${String(r.error ?? r.state)}`);
  return r.throughput.mean;
}

/** Runs `fn` (which does `opsPerCall` operations) repeatedly for `timeMs` and returns ops/s. */
export async function measureThroughput(fn: () => Promise<number> | number, timeMs = 1000): Promise<number> {
  const start = performance.now();
  let ops = 0;
  do ops += await fn();
  while (performance.now() - start < timeMs);
  return ops / ((performance.now() - start) / 1000);
}

/**
 * Copies `length` bytes of `src` from `start` into `dst`, `readBytes` at a time, with one
 * event-loop turn per CLIENT_VIEW_YIELD_BYTES, as the client's reader copies out of a mapped
 * block (the turns let answers in flight be taken in).
 */
async function copyOut(src: Buffer, start: number, length: number, dst: Buffer, readBytes: number): Promise<void> {
  for (let at = 0; at < length; at += readBytes) {
    src.copy(dst, 0, start + at, start + Math.min(length, at + readBytes));
    if ((at + readBytes) % CLIENT_VIEW_YIELD_BYTES === 0 && at + readBytes < length) await setImmediateP();
  }
}

/**
 * One sequential short-circuit read of `blockIds` with one open per block (a worker that does
 * not let clients attach to its engine; see enginePass): the next block's open is sent
 * (sendNow) before this block's `readBytes` copies out of the mapped `arena` into `dst` (the
 * open's answer is taken in at a copyOut turn), and closes are not waited for until the end of
 * the pass (they only have to arrive before the lease ends). `check` sees the first block's
 * bytes. Returns the bytes read.
 */
export async function shortCircuitPass(
  w: WorkerServiceClient, blockIds: readonly number[], arena: Buffer, dst: Buffer, readBytes: number,
  check?: (first: Buffer) => void,
): Promise<number> {
  const closes: Promise<unknown>[] = [];
  let total = 0;
  let next = w.openShortCircuit({ blockId: blockIds[0]! }, { sendNow: true });
  for (let b = 0; b < blockIds.length; b++) {
    const sc = await next;
    if (b + 1 < blockIds.length) next = w.openShortCircuit({ blockId: blockIds[b + 1]! }, { sendNow: true });
    if (sc.kind !== 'shm') throw new Error('short-circuit refused');
    await copyOut(arena, sc.offsetBytes, sc.lengthBytes, dst, readBytes);
    if (b === 0) check?.(arena.subarray(sc.offsetBytes, sc.offsetBytes + sc.lengthBytes));
    total += sc.lengthBytes;
    closes.push(w.closeShortCircuit({ pinId: sc.pinId }));
  }
  await Promise.all(closes);
  return total;
}

/**
 * One sequential short-circuit read of `blockIds` as the client reads a cached file once it is
 * attached to the worker's block engine (client/worker-client.ts): each block pinned in the
 * engine (BlockCache.acquire, no call to the worker), copied out as copyOut does, released.
 * `check` sees the first block's bytes. Returns the bytes read.
 */
export async function enginePass(
  engine: BlockCache, blockIds: readonly number[], dst: Buffer, readBytes: number, check?: (first: Buffer) => void,
): Promise<number> {
  let total = 0;
  for (let b = 0; b < blockIds.length; b++) {
    const view = engine.acquire(blockIds[b]!);
    if (view === undefined) throw new Error(`block ${blockIds[b]} is not in the worker's engine`);
    try {
      const bytes = Buffer.from(view.bytes.buffer, view.bytes.byteOffset, view.bytes.byteLength);
      await copyOut(bytes, 0, bytes.length, dst, readBytes);
      if (b === 0) check?.(bytes);
      total += bytes.length;
    } finally {
      view.release();
    }
  }
  return total;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

export interface Interleaved {
  /** Each function's median rate. */
  rates: number[];
  /** The median over the rounds of function i's rate / function j's, measured back to back. */
  pairedRatio(i: number, j: number): number;
}

/**
 * Measures the functions in turn, `rounds` times each for timeMs / rounds (after one untimed
 * run each: page faults of fresh mappings, JIT), and returns each one's median rate and the
 * ratios over the rounds. Interleaving keeps the swings of a busy machine from landing on one
 * side of a ratio; a ratio of two functions is best taken per round (pairedRatio).
 */
export async function interleaved(fns: (() => Promise<number> | number)[], rounds: number, timeMs: number): Promise<Interleaved> {
  for (const f of fns) await f();
  const samples = fns.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) samples[i]!.push(await measureThroughput(fns[i]!, timeMs / rounds));
  }
  return {
    rates: samples.map(median),
    pairedRatio: (i, j) => median(samples[i]!.map((x, r) => x / samples[j]![r]!)),
  };
}

export function formatRate(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return n.toFixed(1);
}

export function formatBytesRate(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB/s`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB/s`;
  return `${(n / 1e3).toFixed(1)} KB/s`;
}

/** Prints the table (with ratios) and writes bench/results/<suite>.json. */
export function report(suite: string, rows: Row[], extra?: Record<string, unknown>): SuiteResult {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const withRatio = rows.map((r): Row & { ratio?: number } => {
    const base = r.baseline ? byName.get(r.baseline) : undefined;
    return base ? { ...r, ratio: r.pairedRatio ?? r.opsPerSec / base.opsPerSec } : { ...r };
  });
  const table = withRatio.map((r) => ({
    name: r.name,
    'ops/s': formatRate(r.opsPerSec),
    bandwidth: r.bytesPerSec ? formatBytesRate(r.bytesPerSec) : '',
    ratio: r.ratio !== undefined ? `${r.ratio.toFixed(2)}x vs ${r.baseline}` : '',
    note: r.note ?? '',
  }));
  console.table(table);
  if (extra) console.log(JSON.stringify(extra, null, 2));
  const result: SuiteResult = {
    suite, node: process.version, cpu: cpus()[0]?.model ?? 'unknown', date: new Date().toISOString(), rows: withRatio, ...(extra ? { extra } : {}),
  };
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${suite}.json`), JSON.stringify(result, null, 2) + '\n');
  return result;
}

/** A certificate, its key and the CA that signs it (the certificate itself when self-signed). */
export interface Certs { cert: string; key: string; ca: string }

/** A throwaway self-signed certificate for 127.0.0.1 from the openssl command; undefined without openssl. */
export function makeCerts(): Certs | undefined {
  try {
    execFileSync('which', ['openssl'], { stdio: 'pipe' });
  } catch {
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-certs-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem',
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'pipe' });
    const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
    return { cert, key: readFileSync(join(dir, 'k.pem'), 'utf8'), ca: cert };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
