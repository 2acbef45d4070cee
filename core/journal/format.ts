/**
 * The journal's on-disk format, defined once. Format version 1 (`JOURNAL_FORMAT_VERSION`).
 * All integers little-endian; a u64 holds a sequence number below 2^53.
 *
 * Directory (Tachyon layout, one sub-directory per component):
 *
 *   <dir>/VERSION                       "tessera-journal 1\n"
 *   <dir>/<component>/checkpoint        full snapshot covering sequences 1..S (optional)
 *   <dir>/<component>/checkpoint.tmp    a checkpoint being written (removed at open)
 *   <dir>/<component>/completed/<first>-<last>.log   rolled logs, 16-digit decimal sequences
 *   <dir>/<component>/current.log       the log being appended to
 *   <dir>/<component>/current-<first>-<offset>[-n].broken   a cut torn tail, kept for operators
 *
 * Log file (completed and current alike): a header, then entries back to back. The current
 * log may continue with zeros (space preallocated in JOURNAL_PREALLOCATE_BYTES steps, so that
 * an fdatasync after a group commit has no file size to commit); a completed log is cut to its
 * last entry when it rolls. Twenty zero bytes never decode as an entry (the CRC of zeros is
 * not zero), so the first all-zero header marks the end.
 *
 *   log header, 24 bytes
 *   | offset | size | field                                            |
 *   |--------|------|--------------------------------------------------|
 *   | 0      | 4    | magic 'TJLG' (0x54 0x4a 0x4c 0x47)               |
 *   | 4      | 4    | format version, u32 (1)                          |
 *   | 8      | 8    | first sequence of the log, u64                   |
 *   | 16     | 4    | reserved, zero                                   |
 *   | 20     | 4    | CRC32C of bytes 0..20                            |
 *
 *   entry, 20 + n bytes
 *   | offset | size | field                                            |
 *   |--------|------|--------------------------------------------------|
 *   | 0      | 4    | payload length n, u32 (<= JOURNAL_MAX_ENTRY_BYTES) |
 *   | 4      | 4    | CRC32C of bytes 8..20+n, seeded with n (see below) |
 *   | 8      | 8    | sequence, u64 (previous entry's + 1)             |
 *   | 16     | 4    | type, u32 (the component's)                      |
 *   | 20     | n    | payload                                          |
 *
 *   The entry CRC is `crc32c(bytes[8..20+n], n)`: the checksum of sequence, type and payload,
 *   continued from the payload length as the seed, so that the length is covered too and the
 *   whole check is one call over one contiguous range (replay's hot loop).
 *
 * Checkpoint file: a header, then frames of the component's snapshot bytes, then an end frame.
 *
 *   checkpoint header, 24 bytes
 *   | offset | size | field                                            |
 *   |--------|------|--------------------------------------------------|
 *   | 0      | 4    | magic 'TJCK' (0x54 0x4a 0x43 0x4b)               |
 *   | 4      | 4    | format version, u32 (1)                          |
 *   | 8      | 8    | sequence S covered (entries 1..S), u64           |
 *   | 16     | 4    | reserved, zero                                   |
 *   | 20     | 4    | CRC32C of bytes 0..20                            |
 *
 *   chunk frame, 8 + n bytes (1 <= n <= JOURNAL_CHECKPOINT_CHUNK_BYTES)
 *   | 0      | 4    | chunk length n, u32                              |
 *   | 4      | 4    | CRC32C of the n chunk bytes                      |
 *   | 8      | n    | chunk bytes                                      |
 *
 *   end frame, 8 bytes: length 0, then the CRC32C of all chunk bytes of the file in order
 *   (detects a dropped or reordered frame); the file ends right after it.
 */
import { crc32c } from '../crc32c.js';
import { ErrorCode, TesseraError, isTesseraError } from '../errors.js';

export const JOURNAL_FORMAT_VERSION = 1;
export const VERSION_FILE = 'VERSION';
export const VERSION_TEXT = `tessera-journal ${JOURNAL_FORMAT_VERSION}\n`;
export const VERSION_PREFIX = 'tessera-journal ';

export const CURRENT_LOG_FILE = 'current.log';
export const COMPLETED_DIR = 'completed';
export const CHECKPOINT_FILE = 'checkpoint';
export const CHECKPOINT_TEMP_FILE = 'checkpoint.tmp';

export const LOG_HEADER_BYTES = 24;
export const ENTRY_HEADER_BYTES = 20;
export const CHECKPOINT_HEADER_BYTES = 24;
export const CHECKPOINT_FRAME_HEADER_BYTES = 8;

const LOG_MAGIC = 0x474c4a54; // 'TJLG' read as a little-endian u32
const CHECKPOINT_MAGIC = 0x4b434a54; // 'TJCK'
const TWO_32 = 0x1_0000_0000;
const MAX_SEQUENCE_HIGH = 0x20_0000; // high word of 2^53

export const COMPONENT_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
const COMPLETED_NAME_PATTERN = /^(\d{16})-(\d{16})\.log$/;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function setU64(dv: DataView, offset: number, value: number): void {
  dv.setUint32(offset, value % TWO_32, true);
  dv.setUint32(offset + 4, Math.floor(value / TWO_32), true);
}

/** undefined when the value is not below 2^53. */
function getU64(dv: DataView, offset: number): number | undefined {
  const high = dv.getUint32(offset + 4, true);
  if (high >= MAX_SEQUENCE_HIGH) return undefined;
  return high * TWO_32 + dv.getUint32(offset, true);
}

// ---- entries ----

/** Writes one entry frame at `offset` of `target` (which must have room); returns its length. */
export function encodeEntryInto(target: Uint8Array, offset: number, sequence: number, type: number, payload: Uint8Array): number {
  const frameBytes = ENTRY_HEADER_BYTES + payload.length;
  const dv = view(target);
  dv.setUint32(offset, payload.length, true);
  setU64(dv, offset + 8, sequence);
  dv.setUint32(offset + 16, type, true);
  target.set(payload, offset + ENTRY_HEADER_BYTES);
  const crc = crc32c(target.subarray(offset + 8, offset + frameBytes), payload.length);
  dv.setUint32(offset + 4, crc, true);
  return frameBytes;
}

export function encodeEntry(sequence: number, type: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(ENTRY_HEADER_BYTES + payload.length);
  encodeEntryInto(frame, 0, sequence, type, payload);
  return frame;
}

/**
 * Decodes entries of a whole log read into memory without allocating per entry (replay's hot
 * loop): `decodeAt(offset)` fills the public fields, or returns false and sets `reason`.
 */
export class EntryScanner {
  sequence = 0;
  type = 0;
  payloadLength = 0;
  frameBytes = 0;
  reason = '';
  constructor(readonly bytes: Uint8Array, private readonly maxPayloadBytes: number) {}

  decodeAt(offset: number): boolean {
    const b = this.bytes;
    const left = b.length - offset;
    if (left < ENTRY_HEADER_BYTES) return this.#bad(`incomplete entry header (${left} of ${ENTRY_HEADER_BYTES} bytes)`);
    const length = (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0;
    if (length > this.maxPayloadBytes) return this.#bad(`entry length ${length} exceeds the limit ${this.maxPayloadBytes}`);
    const frameBytes = ENTRY_HEADER_BYTES + length;
    if (left < frameBytes) return this.#bad(`incomplete entry (${left} of ${frameBytes} bytes)`);
    const stored = (b[offset + 4]! | (b[offset + 5]! << 8) | (b[offset + 6]! << 16) | (b[offset + 7]! << 24)) >>> 0;
    const actual = crc32c(b.subarray(offset + 8, offset + frameBytes), length);
    if (stored !== actual) return this.#bad(`entry CRC32C mismatch (stored ${hex32(stored)}, computed ${hex32(actual)})`);
    const low = (b[offset + 8]! | (b[offset + 9]! << 8) | (b[offset + 10]! << 16) | (b[offset + 11]! << 24)) >>> 0;
    const high = (b[offset + 12]! | (b[offset + 13]! << 8) | (b[offset + 14]! << 16) | (b[offset + 15]! << 24)) >>> 0;
    if (high >= MAX_SEQUENCE_HIGH) return this.#bad('entry sequence is not below 2^53');
    this.sequence = high * TWO_32 + low;
    this.type = (b[offset + 16]! | (b[offset + 17]! << 8) | (b[offset + 18]! << 16) | (b[offset + 19]! << 24)) >>> 0;
    this.payloadLength = length;
    this.frameBytes = frameBytes;
    return true;
  }

  #bad(reason: string): false {
    this.reason = reason;
    return false;
  }
}

export type DecodedEntry =
  | { ok: true; sequence: number; type: number; payload: Uint8Array; frameBytes: number }
  | { ok: false; reason: string };

/** Decodes the entry at `offset` of `bytes` (a whole log read into memory), checking its CRC. */
export function decodeEntryAt(bytes: Uint8Array, offset: number, maxPayloadBytes: number): DecodedEntry {
  const scanner = new EntryScanner(bytes, maxPayloadBytes);
  if (!scanner.decodeAt(offset)) return { ok: false, reason: scanner.reason };
  const start = offset + ENTRY_HEADER_BYTES;
  return { ok: true, sequence: scanner.sequence, type: scanner.type, payload: bytes.subarray(start, start + scanner.payloadLength), frameBytes: scanner.frameBytes };
}

// ---- headers (log and checkpoint share one shape) ----

function encodeHeader(magic: number, sequence: number): Uint8Array {
  const out = new Uint8Array(LOG_HEADER_BYTES);
  const dv = view(out);
  dv.setUint32(0, magic, true);
  dv.setUint32(4, JOURNAL_FORMAT_VERSION, true);
  setU64(dv, 8, sequence);
  dv.setUint32(20, crc32c(out.subarray(0, 20)), true);
  return out;
}

function decodeHeader(magic: number, what: string, bytes: Uint8Array): { ok: true; sequence: number } | { ok: false; reason: string } {
  if (bytes.length < LOG_HEADER_BYTES) return { ok: false, reason: `incomplete ${what} header (${bytes.length} of ${LOG_HEADER_BYTES} bytes)` };
  const dv = view(bytes);
  const stored = dv.getUint32(20, true);
  const actual = crc32c(bytes.subarray(0, 20));
  if (stored !== actual) return { ok: false, reason: `${what} header CRC32C mismatch (stored ${hex32(stored)}, computed ${hex32(actual)})` };
  if (dv.getUint32(0, true) !== magic) return { ok: false, reason: `bad ${what} magic ${hex32(dv.getUint32(0, true))}` };
  const version = dv.getUint32(4, true);
  if (version !== JOURNAL_FORMAT_VERSION) return { ok: false, reason: `${what} format version ${version} is unknown (this build knows ${JOURNAL_FORMAT_VERSION})` };
  const sequence = getU64(dv, 8);
  if (sequence === undefined) return { ok: false, reason: `${what} sequence is not below 2^53` };
  return { ok: true, sequence };
}

export const encodeLogHeader = (firstSequence: number): Uint8Array => encodeHeader(LOG_MAGIC, firstSequence);
export const decodeLogHeader = (bytes: Uint8Array) => decodeHeader(LOG_MAGIC, 'log', bytes);
export const encodeCheckpointHeader = (sequence: number): Uint8Array => encodeHeader(CHECKPOINT_MAGIC, sequence);
export const decodeCheckpointHeader = (bytes: Uint8Array) => decodeHeader(CHECKPOINT_MAGIC, 'checkpoint', bytes);

// ---- checkpoint frames ----

export function encodeFrameHeader(length: number, crc: number): Uint8Array {
  const out = new Uint8Array(CHECKPOINT_FRAME_HEADER_BYTES);
  const dv = view(out);
  dv.setUint32(0, length, true);
  dv.setUint32(4, crc, true);
  return out;
}

export function decodeFrameHeader(bytes: Uint8Array): { length: number; crc: number } {
  const dv = view(bytes);
  return { length: dv.getUint32(0, true), crc: dv.getUint32(4, true) };
}

// ---- errors ----

/** The one error for a journal that is not what it should be: names the file and the offset. */
export function corrupt(path: string, offsetBytes: number, reason: string, cause?: unknown): TesseraError {
  return new TesseraError(ErrorCode.JOURNAL_CORRUPT, `${corruptPrefix(path)}${offsetBytes}: ${reason}`, cause === undefined ? undefined : { cause });
}

function corruptPrefix(path: string): string {
  return `Journal is corrupt: ${path} at offset `;
}

/** True when `err` is a JOURNAL_CORRUPT made by corrupt() for `path` (so it names the file and offset already). */
export function isCorruptAt(err: unknown, path: string): boolean {
  return isTesseraError(err, ErrorCode.JOURNAL_CORRUPT) && err.message.startsWith(corruptPrefix(path));
}

// ---- names ----

export function completedLogName(firstSequence: number, lastSequence: number): string {
  return `${String(firstSequence).padStart(16, '0')}-${String(lastSequence).padStart(16, '0')}.log`;
}

export function parseCompletedLogName(name: string): { firstSequence: number; lastSequence: number } | undefined {
  const m = COMPLETED_NAME_PATTERN.exec(name);
  if (!m) return undefined;
  const firstSequence = Number(m[1]);
  const lastSequence = Number(m[2]);
  if (firstSequence < 1 || lastSequence < firstSequence) return undefined;
  return { firstSequence, lastSequence };
}

export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}
