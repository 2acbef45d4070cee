/**
 * The one seam to native code. This file alone loads `native/tessera.node` (the Rust
 * module in native/src, built by native/build.mjs); everything else imports these typed
 * wrappers. Every wrapper checks its arguments before the native call (a wrong type is a
 * TypeError, a bad size or index a RangeError, both naming the argument), so JavaScript
 * can never hand the module memory it should not touch. Operating-system failures become
 * TesseraErrors: MEMLOCK_LIMIT when mlock hits RLIMIT_MEMLOCK, NATIVE_CALL otherwise, and
 * NATIVE_UNAVAILABLE when a function that has no fallback is called without the module.
 *
 * The module is found at <repo>/native/tessera.node (from dist/native/index.js), or at
 * TESSERA_NATIVE_PATH. It is optional. When it is missing, fails to load, or TESSERA_NATIVE=0 is set,
 * `nativeStatus()` says so and why; CRC32C stays on the TS path and arenas stay
 * SharedArrayBuffers. core/crc32c.ts picks this module's CRC32C when it loaded.
 *
 * Not here: policy. Which arena to use is BlockCache's choice (core/block-cache.ts).
 *
 * Not here either, by measurement: pread/pwrite/fallocate/punchHole for the SSD/HDD tiers
 * (issue 3 asks for them only if they beat node:fs for 1-64 MiB blocks). bench/native-fs.ts
 * (section 4 of bench/native.bench.ts), run alone twice on 2026-12-06 on this 2-core VM, files
 * in /tmp (ext4, the SSD tier's file system here), against memcpy of the same size:
 *
 *   | row (1 MiB / 64 MiB blocks)                      | GB/s              | x memcpy                |
 *   |--------------------------------------------------|-------------------|-------------------------|
 *   | memcpy (the ceiling)                             | 47-49 / 21        | 1 / 1                   |
 *   | fs.readSync, page cache                          | 36-40 / 17-19     | 0.76-0.82 / 0.83-0.89   |
 *   | fs.writeSync over cached pages                   | 34-38 / 21-22     | 0.73-0.78 / 1.00-1.04   |
 *   | fs.writeSync into a new file (unlink+open+close) | 8.0-8.3 / 8.2-8.3 | 0.17-0.18 / 0.40        |
 *
 * fs.readSync/writeSync are already one pread(2)/pwrite(2) each from the calling thread (no
 * thread-pool hop; 2 us per call with the syscall, timed with 1-byte reads, against 25-3000 us
 * of copying a 1-64 MiB block), so a native binding could save at most ~1-8 %; the gap to memcpy
 * is the kernel's copy and page-cache work, which a native pread/pwrite would make the same
 * syscall for. A new file per block (the tier's pattern) costs page allocation and file
 * creation, again the same from native code. fallocate, timed once with a throwaway Python
 * script (os.posix_fallocate before the pwrite of a new file, 3 alternating runs): 1 MiB
 * 6.4 vs 9.1-9.4 GB/s without (slower: it allocates disk extents that delayed allocation would
 * defer), 64 MiB 8.5-9.5 vs 7.3-8.5 GB/s (at most ~15 %, inside this machine's noise), and the
 * tier's commit is bound by its fsync anyway. punchHole has no use: the tier deletes whole
 * block files. So node:fs stays; rerun bench/native-fs.ts to revisit.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { markAsUntransferable } from 'node:worker_threads';
import { ErrorCode, TesseraError } from '../core/errors.js';

/** The exports of tessera.node whose layout this file was written for (src/lib.rs ABI_VERSION). */
export const NATIVE_ABI_VERSION = 2;
/** Largest mapping: a Uint8Array in Node 20 views at most 2^32 bytes. */
export const NATIVE_MAP_MAX_BYTES = 2 ** 32;
/** Longest path accepted by mapShared, in UTF-8 bytes (Linux PATH_MAX). */
export const NATIVE_PATH_MAX_BYTES = 4096;
/** Longest single futex sleep; a longer wait is several, so worker.terminate() can interrupt it. */
export const FUTEX_WAIT_SLICE_MS = 250;

export interface NativeStatus {
  /** True when tessera.node is loaded and in use. */
  loaded: boolean;
  /** Why the native path is or is not in use, in one sentence. */
  reason: string;
  /** The module file that was loaded or tried. */
  path?: string;
  /** CPU features the module detected (loaded only). */
  features?: { sse42: boolean; arch: string };
}

interface NativeBinding {
  abiVersion: number;
  mapShared(path: string, sizeBytes: number, create: boolean, lock: boolean, readOnly: boolean): ArrayBuffer;
  unmap(buffer: ArrayBuffer): void;
  madvise(buffer: ArrayBuffer, offsetBytes: number, lengthBytes: number, advice: number): void;
  msync(buffer: ArrayBuffer, offsetBytes: number, lengthBytes: number, async: boolean): void;
  futexWait(array: Int32Array, index: number, expected: number, timeoutMs: number): number;
  futexWake(array: Int32Array, index: number, count: number): number;
  crc32c(bytes: Uint8Array, seed: number): number;
  pageSize(): number;
  liveMappings(): number;
  pageOffsetOf(view: Uint8Array): number;
  memlockLimit(): { soft: number; hard: number };
  features(): { sse42: boolean; arch: string };
}

const moduleDir = dirname(fileURLToPath(import.meta.url));
/** dist/native/index.js → <repo>/native/tessera.node; native/index.ts (ts-node style) → native/tessera.node. */
function defaultModulePath(): string {
  const fromDist = join(moduleDir, '..', '..', 'native', 'tessera.node');
  return existsSync(fromDist) ? fromDist : join(moduleDir, 'tessera.node');
}

let binding: NativeBinding | undefined;
let status: NativeStatus;

function load(): void {
  const path = process.env.TESSERA_NATIVE_PATH || defaultModulePath();
  if (process.env.TESSERA_NATIVE === '0') {
    status = { loaded: false, reason: 'disabled by TESSERA_NATIVE=0', path };
    return;
  }
  if (process.platform !== 'linux') {
    status = { loaded: false, reason: `platform ${process.platform} is not supported (Linux only)`, path };
    return;
  }
  if (!existsSync(path)) {
    status = { loaded: false, reason: 'module not built (no cargo at install time? run `node native/build.mjs`)', path };
    return;
  }
  let b: NativeBinding;
  try {
    b = createRequire(import.meta.url)(path) as NativeBinding;
  } catch (err) {
    status = { loaded: false, reason: `module failed to load: ${(err as Error).message.split('\n')[0]}`, path };
    return;
  }
  if (b.abiVersion !== NATIVE_ABI_VERSION) {
    status = { loaded: false, reason: `module is stale (abiVersion ${String(b.abiVersion)}, expected ${NATIVE_ABI_VERSION}); rebuild it`, path };
    return;
  }
  binding = b;
  const features = b.features();
  status = {
    loaded: true,
    reason: `tessera.node loaded; CRC32C uses ${features.sse42 ? 'the SSE4.2 crc32 instruction' : 'software slice-by-8 (no SSE4.2)'}`,
    path,
    features,
  };
}
load();

/** Which path is in use, and why. */
export function nativeStatus(): NativeStatus {
  return { ...status, ...(status.features ? { features: { ...status.features } } : {}) };
}

export function nativeAvailable(): boolean {
  return binding !== undefined;
}

function need(what: string): NativeBinding {
  if (binding) return binding;
  throw new TesseraError(ErrorCode.NATIVE_UNAVAILABLE, `${what} needs the native module: ${status.reason}`);
}

/** Runs a native call, turning its OS errors into TesseraErrors; TypeError/RangeError pass through. */
function call<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError || err instanceof TesseraError) throw err;
    const e = err as Error & { code?: string };
    if (e.code === 'MEMLOCK_LIMIT') {
      throw new TesseraError(ErrorCode.MEMLOCK_LIMIT, `Cannot lock ${what} in RAM: ${e.message}`, { cause: err });
    }
    throw new TesseraError(ErrorCode.NATIVE_CALL, `${what} failed: ${e.message}`, { cause: err });
  }
}

// ---- argument checks ----------------------------------------------------------------------

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

function checkBool(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${typeof v}`);
  return v;
}

function checkOptions(name: string, v: unknown): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${name} must be an object`);
  return v as Record<string, unknown>;
}

function checkInt32Array(name: string, v: unknown): Int32Array {
  if (!(v instanceof Int32Array)) throw new TypeError(`${name} must be an Int32Array`);
  return v;
}

// ---- shared mappings ----------------------------------------------------------------------

export interface MapSharedOptions {
  /** Create the file (mode 0600) and reserve sizeBytes in it if it is shorter. Default false. */
  create?: boolean;
  /** mlock the mapping (page-locked; counts against RLIMIT_MEMLOCK). Default false. */
  lock?: boolean;
  /**
   * Open the file read-only. The mapping is copy-on-write (MAP_PRIVATE): a stray write from
   * JavaScript stays private to this process instead of crashing it (PROT_READ would make it
   * a SIGSEGV), but the written page then stops following the file. See src/mapping.rs.
   * Default false.
   */
  readOnly?: boolean;
}

/** Buffers this file handed out, to make unmap idempotent and to answer isMapped(). */
const mapped = new WeakSet<ArrayBuffer>();

/**
 * An ArrayBuffer over a MAP_SHARED mapping of the first `sizeBytes` of the file at `path`
 * (for the MEM tier, a file in /dev/shm). Without `create`, the file must exist and be at
 * least `sizeBytes` long. The buffer stays valid until `unmap(buffer)` or until it is
 * garbage-collected.
 */
export function mapShared(path: string, sizeBytes: number, options?: MapSharedOptions): ArrayBuffer {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${typeof path}`);
  if (path.length === 0 || path.includes('\0')) throw new TypeError('path must be a non-empty string without NUL');
  if (Buffer.byteLength(path) > NATIVE_PATH_MAX_BYTES) throw new RangeError(`path is longer than ${NATIVE_PATH_MAX_BYTES} bytes`);
  checkInt('sizeBytes', sizeBytes, 1, NATIVE_MAP_MAX_BYTES);
  const o = checkOptions('options', options);
  const create = checkBool('options.create', o.create, false);
  const lock = checkBool('options.lock', o.lock, false);
  const readOnly = checkBool('options.readOnly', o.readOnly, false);
  if (create && readOnly) throw new TypeError('options.create and options.readOnly cannot both be true');
  const b = need('mapShared');
  const buffer = call(`mapping of ${path} (${sizeBytes} bytes)`, () => b.mapShared(path, sizeBytes, create, lock, readOnly));
  mapped.add(buffer);
  // The mapping belongs to this thread (its finalizer runs here): in a postMessage transfer
  // list it is copied, never moved. Other threads attach by path.
  markAsUntransferable(buffer);
  return buffer;
}

/** True when `buffer` came from mapShared and is not unmapped yet. */
export function isMapped(buffer: unknown): boolean {
  return buffer instanceof ArrayBuffer && mapped.has(buffer) && buffer.byteLength > 0;
}

/**
 * Unmaps a buffer from mapShared and detaches it: every view of it becomes zero-length, so a
 * later access reads undefined (or throws) in JavaScript instead of touching unmapped memory.
 * Idempotent for buffers from mapShared; any other ArrayBuffer is a TypeError.
 */
export function unmap(buffer: ArrayBuffer): void {
  if (!(buffer instanceof ArrayBuffer) || !mapped.has(buffer)) throw new TypeError('buffer must be an ArrayBuffer returned by mapShared');
  if (buffer.byteLength === 0) return; // already unmapped (detached)
  const b = need('unmap');
  call('munmap', () => b.unmap(buffer));
}

export type Advice = 'willneed' | 'dontneed' | 'hugepage';
const ADVICE: Record<Advice, number> = { willneed: 0, dontneed: 1, hugepage: 2 };

export interface RangeOptions {
  /** Start of the range; a multiple of the page size. Default 0. */
  offsetBytes?: number;
  /** Length of the range. Default: to the end of the mapping. */
  lengthBytes?: number;
}

function checkRange(buffer: ArrayBuffer, options: unknown): { offsetBytes: number; lengthBytes: number; o: Record<string, unknown> } {
  if (!isMapped(buffer)) throw new TypeError('buffer must be a live ArrayBuffer returned by mapShared');
  const o = checkOptions('options', options);
  const size = buffer.byteLength;
  const offsetBytes = o.offsetBytes === undefined ? 0 : checkInt('options.offsetBytes', o.offsetBytes, 0, size);
  const lengthBytes = o.lengthBytes === undefined ? size - offsetBytes : checkInt('options.lengthBytes', o.lengthBytes, 0, size);
  if (offsetBytes + lengthBytes > size) throw new RangeError(`offsetBytes + lengthBytes (${offsetBytes + lengthBytes}) exceeds the mapping (${size} bytes)`);
  const page = pageSize();
  if (offsetBytes % page !== 0) throw new RangeError(`options.offsetBytes must be a multiple of the page size ${page}`);
  return { offsetBytes, lengthBytes, o };
}

/** madvise(2) on (part of) a mapping: 'willneed' reads ahead, 'dontneed' drops this process's pages, 'hugepage' asks for THP. */
export function madvise(buffer: ArrayBuffer, advice: Advice, options?: RangeOptions): void {
  if (typeof advice !== 'string' || !Object.hasOwn(ADVICE, advice)) throw new TypeError(`advice must be one of ${Object.keys(ADVICE).join(', ')}`);
  const { offsetBytes, lengthBytes } = checkRange(buffer, options);
  const b = need('madvise');
  call(`madvise(${advice})`, () => b.madvise(buffer, offsetBytes, lengthBytes, ADVICE[advice]));
}

/** msync(2): flush (part of) a mapping to its file; `async` schedules it without waiting. */
export function msync(buffer: ArrayBuffer, options?: RangeOptions & { async?: boolean }): void {
  const { offsetBytes, lengthBytes, o } = checkRange(buffer, options);
  const async = checkBool('options.async', o.async, false);
  const b = need('msync');
  call('msync', () => b.msync(buffer, offsetBytes, lengthBytes, async));
}

// ---- futex ----------------------------------------------------------------------------------

export type WaitResult = 'ok' | 'not-equal' | 'timed-out';
const WAIT_RESULTS: readonly WaitResult[] = ['ok', 'not-equal', 'timed-out'];

function checkIndex(array: Int32Array, index: unknown): number {
  if (array.length === 0) throw new RangeError('array is empty (or its buffer was unmapped)');
  return checkInt('index', index, 0, array.length - 1);
}

/**
 * Blocks the calling thread while `array[index] === expected`, until futexWake or the timeout,
 * like Atomics.wait but on any memory, including a MAP_SHARED arena, and across processes
 * (no FUTEX_PRIVATE_FLAG). A negative or NaN timeout means 0 and Infinity, as for Atomics.wait.
 */
export function futexWait(array: Int32Array, index: number, expected: number, timeoutMs = Infinity): WaitResult {
  checkInt32Array('array', array);
  checkIndex(array, index);
  checkInt('expected', expected, -(2 ** 31), 2 ** 31 - 1);
  if (typeof timeoutMs !== 'number') throw new TypeError(`timeoutMs must be a number, got ${typeof timeoutMs}`);
  const t = Number.isNaN(timeoutMs) ? Infinity : Math.max(0, timeoutMs);
  const b = need('futexWait');
  // Wait in slices so that worker.terminate() (which only takes effect when JS runs) can stop
  // a thread blocked here, as it can stop one in Atomics.wait.
  const start = performance.now();
  for (let slice = 0; ; slice++) {
    const left = t - (performance.now() - start);
    const r = WAIT_RESULTS[call('futex wait', () => b.futexWait(array, index, expected, Math.max(0, Math.min(left, FUTEX_WAIT_SLICE_MS))))]!;
    // After the first slice the value was `expected` when we began, so a change is a wake-up.
    if (r !== 'timed-out') return slice > 0 && r === 'not-equal' ? 'ok' : r;
    if (left <= FUTEX_WAIT_SLICE_MS) return 'timed-out';
  }
}

/** Wakes up to `count` threads (any process) waiting on `array[index]`; returns how many woke. */
export function futexWake(array: Int32Array, index: number, count = Infinity): number {
  checkInt32Array('array', array);
  checkIndex(array, index);
  if (typeof count !== 'number') throw new TypeError(`count must be a number, got ${typeof count}`);
  const n = count === Infinity ? 2 ** 31 - 1 : checkInt('count', count, 0, 2 ** 31 - 1);
  const b = need('futexWake');
  return call('futex wake', () => b.futexWake(array, index, n));
}

// ---- CRC32C and facts ----------------------------------------------------------------------

/** Native CRC32C; equal to core/crc32c.ts's crc32cTs. Most code calls core's crc32c() instead. */
export function crc32cNative(bytes: Uint8Array, seed = 0): number {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes must be a Uint8Array');
  if (seed !== 0) checkInt('seed', seed, 0, 2 ** 32 - 1);
  return need('crc32c').crc32c(bytes, seed);
}

let pageSizeCache = 0;
/** The system page size (4096 without the native module). */
export function pageSize(): number {
  if (pageSizeCache === 0) pageSizeCache = binding ? binding.pageSize() : 4096;
  return pageSizeCache;
}

/** RLIMIT_MEMLOCK in bytes (Infinity when unlimited), or undefined without the module. */
export function memlockLimit(): { soft: number; hard: number } | undefined {
  return binding?.memlockLimit();
}

/** How many mappings are live in this thread's process (tests use it to see leaks). */
export function liveMappings(): number {
  return binding ? binding.liveMappings() : 0;
}

/** Where a view's first byte sits within its page (address % page size): benchmarks use it to control alignment. */
export function pageOffsetOf(view: Uint8Array): number {
  if (!(view instanceof Uint8Array)) throw new TypeError('view must be a Uint8Array');
  return need('pageOffsetOf').pageOffsetOf(view);
}
