/**
 * CRC32C (Castagnoli), the one checksum of the project: journal entries, frames, blocks.
 * This file holds the pure-TS path (slice-by-16 tables over 32-bit words) and picks the native
 * module's SSE4.2 implementation when native/ loaded, so every importer gets the fast path
 * whatever its entry point; every caller goes through `crc32c()`. Tests may switch paths with
 * `setCrc32cImplementation`.
 * The value is the standard one: crc32c("123456789") === 0xe3069283.
 */

import { crc32cNative, nativeStatus } from '../native/index.js';

const POLY_REFLECTED = 0x82f63b78;
/** Table t (0..15) at [t * 256, t * 256 + 256): t0 is the byte table, t[k] advances k more zero bytes. */
const TABLE = buildTable();
/** Below this length a word view is not worth creating. */
const WORD_PATH_MIN_BYTES = 64;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function buildTable(): Int32Array {
  // Int32 (not Uint32) entries stay small integers in V8, with no conversion to doubles.
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    t[n] = c;
  }
  for (let k = 1; k < 16; k++) {
    for (let n = 0; n < 256; n++) {
      const prev = t[(k - 1) * 256 + n]!;
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
}

/**
 * Pure-TS CRC32C. `seed` is a previous result, to checksum data in pieces.
 * Slice-by-16 over 32-bit little-endian words (an Int32Array view of the 4-byte aligned
 * middle of the input): four word loads and sixteen table lookups per 16 bytes.
 */
export function crc32cTs(bytes: Uint8Array, seed = 0): number {
  const t = TABLE;
  let crc = ~seed;
  let i = 0;
  const n = bytes.length;
  if (n >= WORD_PATH_MIN_BYTES && LITTLE_ENDIAN) {
    while (((bytes.byteOffset + i) & 3) !== 0) crc = t[(crc ^ bytes[i++]!) & 0xff]! ^ (crc >>> 8);
    const groups = (n - i) >>> 4;
    const w = new Int32Array(bytes.buffer, bytes.byteOffset + i, groups * 4);
    for (let k = 0; k < w.length; k += 4) {
      const a = crc ^ w[k]!;
      const b = w[k + 1]!;
      const c = w[k + 2]!;
      const d = w[k + 3]!;
      crc = t[3840 + (a & 0xff)]! ^ t[3584 + ((a >>> 8) & 0xff)]! ^ t[3328 + ((a >>> 16) & 0xff)]! ^ t[3072 + (a >>> 24)]!
        ^ t[2816 + (b & 0xff)]! ^ t[2560 + ((b >>> 8) & 0xff)]! ^ t[2304 + ((b >>> 16) & 0xff)]! ^ t[2048 + (b >>> 24)]!
        ^ t[1792 + (c & 0xff)]! ^ t[1536 + ((c >>> 8) & 0xff)]! ^ t[1280 + ((c >>> 16) & 0xff)]! ^ t[1024 + (c >>> 24)]!
        ^ t[768 + (d & 0xff)]! ^ t[512 + ((d >>> 8) & 0xff)]! ^ t[256 + ((d >>> 16) & 0xff)]! ^ t[d >>> 24]!;
    }
    i += groups * 16;
  }
  while (i < n) crc = t[(crc ^ bytes[i++]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

type Crc32cFn = (bytes: Uint8Array, seed?: number) => number;
const native = nativeStatus();
let implementation: Crc32cFn = native.loaded ? crc32cNative : crc32cTs;
let implementationName = native.loaded ? (native.features?.sse42 ? 'native-sse4.2' : 'native-sw') : 'ts';

/** CRC32C of `bytes`, continuing from `seed` (a previous result) when given. */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  return implementation(bytes, seed);
}

/** Installed by native/ when the Rust module loads; tests may reset to the TS path. */
export function setCrc32cImplementation(fn: Crc32cFn | undefined, name = 'native'): void {
  implementation = fn ?? crc32cTs;
  implementationName = fn ? name : 'ts';
}

export function crc32cImplementationName(): string {
  return implementationName;
}
