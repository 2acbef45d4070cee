/**
 * Read types, write types and the option checks of the client's public entry points.
 * Everything here is pure: it names the bad option in a TesseraError (INVALID_ARGUMENT) and
 * turns the user's spelling (`'64MiB'`, `'1h'`) into numbers with units in their names.
 *
 * Read types (Alluxio's):
 *   CACHE_PROMOTE  read from the fastest copy; a block found in a lower tier moves up to MEM;
 *                  a block read from the UFS is cached (default)
 *   CACHE          read from any copy; a block read from the UFS is cached where it is read
 *   NO_CACHE       never cache what is read
 * Write types:
 *   MUST_CACHE     blocks only in worker memory, never in the UFS (default)
 *   CACHE_THROUGH  blocks in memory and written to the UFS before close() resolves
 *   THROUGH        straight to the UFS, nothing cached
 *   ASYNC_THROUGH  blocks in memory, persisted to the UFS after close() in the background
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import { GIB, KIB, MIB } from '../core/constants.js';

export const READ_TYPES = ['CACHE_PROMOTE', 'CACHE', 'NO_CACHE'] as const;
export type ReadType = (typeof READ_TYPES)[number];
export const DEFAULT_READ_TYPE: ReadType = 'CACHE_PROMOTE';

export const WRITE_TYPES = ['MUST_CACHE', 'CACHE_THROUGH', 'THROUGH', 'ASYNC_THROUGH'] as const;
export type WriteType = (typeof WRITE_TYPES)[number];
export const DEFAULT_WRITE_TYPE: WriteType = 'MUST_CACHE';

export const TTL_ACTIONS = ['DELETE', 'FREE'] as const;
export type TtlAction = (typeof TTL_ACTIONS)[number];

/** True when blocks written with this type go to worker memory. */
export function writeTypeCaches(t: WriteType): boolean {
  return t !== 'THROUGH';
}

/** True when blocks written with this type reach the UFS before close() resolves. */
export function writeTypePersistsSync(t: WriteType): boolean {
  return t === 'CACHE_THROUGH' || t === 'THROUGH';
}

/** True when a block this read type fetched from the UFS (or a lower tier) is kept in cache. */
export function readTypeCaches(t: ReadType): boolean {
  return t !== 'NO_CACHE';
}

function invalid(option: string, detail: string): TesseraError {
  return new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option ${option}: ${detail}`);
}

export function parseReadType(value: unknown, option = 'readType'): ReadType {
  if (value === undefined) return DEFAULT_READ_TYPE;
  const v = typeof value === 'string' ? value.toUpperCase() : value;
  if (typeof v === 'string' && (READ_TYPES as readonly string[]).includes(v)) return v as ReadType;
  throw invalid(option, `expected one of ${READ_TYPES.join(', ')} (got ${JSON.stringify(value)})`);
}

export function parseWriteType(value: unknown, option = 'writeType'): WriteType {
  if (value === undefined) return DEFAULT_WRITE_TYPE;
  const v = typeof value === 'string' ? value.toUpperCase() : value;
  if (typeof v === 'string' && (WRITE_TYPES as readonly string[]).includes(v)) return v as WriteType;
  throw invalid(option, `expected one of ${WRITE_TYPES.join(', ')} (got ${JSON.stringify(value)})`);
}

export function parseTtlAction(value: unknown, option = 'ttlAction'): TtlAction {
  if (value === undefined) return 'DELETE';
  const v = typeof value === 'string' ? value.toUpperCase() : value;
  if (typeof v === 'string' && (TTL_ACTIONS as readonly string[]).includes(v)) return v as TtlAction;
  throw invalid(option, `expected one of ${TTL_ACTIONS.join(', ')} (got ${JSON.stringify(value)})`);
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: KIB, kb: KIB, kib: KIB,
  m: MIB, mb: MIB, mib: MIB,
  g: GIB, gb: GIB, gib: GIB,
  t: GIB * 1024, tb: GIB * 1024, tib: GIB * 1024,
};

/**
 * A size in bytes from a number or a string such as `'64MiB'`, `'512k'`, `'1.5GB'` (binary
 * units throughout, as Alluxio does). Throws INVALID_ARGUMENT naming the option.
 */
export function parseSizeBytes(value: unknown, option: string, opts: { min?: number; max?: number } = {}): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
    const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) throw invalid(option, `expected a size such as 64MiB or 4096 (got ${JSON.stringify(value)})`);
    n = Math.round(Number(m[1]) * unit);
  } else throw invalid(option, `expected a size such as 64MiB or 4096 (got ${JSON.stringify(value)})`);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(option, `expected a whole number of bytes ≥ 0 (got ${String(value)})`);
  if (opts.min !== undefined && n < opts.min) throw invalid(option, `must be at least ${formatBytes(opts.min)} (got ${formatBytes(n)})`);
  if (opts.max !== undefined && n > opts.max) throw invalid(option, `must be at most ${formatBytes(opts.max)} (got ${formatBytes(n)})`);
  return n;
}

const DURATION_UNITS: Record<string, number> = {
  '': 1, ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000,
};

/** A duration in milliseconds from a number or a string such as `'500ms'`, `'10s'`, `'1h'`. */
export function parseDurationMs(value: unknown, option: string): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
    const unit = m ? DURATION_UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) throw invalid(option, `expected a duration such as 500ms, 10s, 1h or a number of ms (got ${JSON.stringify(value)})`);
    n = Math.round(Number(m[1]) * unit);
  } else throw invalid(option, `expected a duration such as 10s (got ${JSON.stringify(value)})`);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(option, `expected a duration ≥ 0 (got ${String(value)})`);
  return n;
}

/** `1536` → `'1.5KiB'`; exact small values stay in bytes: `'512B'`. */
export function formatBytes(n: number): string {
  if (n < KIB) return `${n}B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / KIB;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)}${units[i]}`;
}

/** Normalises a namespace path: absolute, no empty or `.`/`..` segments, no NUL. */
export function normalizePath(path: unknown, option = 'path'): string {
  if (typeof path !== 'string' || path.length === 0) throw new TesseraError(ErrorCode.INVALID_PATH, `Invalid ${option}: expected an absolute path such as /dir/file (got ${JSON.stringify(path)})`);
  if (!path.startsWith('/')) throw new TesseraError(ErrorCode.INVALID_PATH, `Invalid ${option}: path must be absolute (got ${JSON.stringify(path)})`);
  if (path.includes('\0')) throw new TesseraError(ErrorCode.INVALID_PATH, `Invalid ${option}: path contains NUL`);
  const parts = path.split('/').filter((p) => p.length > 0);
  for (const p of parts) {
    if (p === '.' || p === '..') throw new TesseraError(ErrorCode.INVALID_PATH, `Invalid ${option}: '.' and '..' are not allowed (got ${JSON.stringify(path)})`);
  }
  return '/' + parts.join('/');
}
