/**
 * CRC32C (Castagnoli), the one checksum of the project: journal entries, frames, blocks.
 * This file is the pure-TS path (slice-by-8 tables); `native/` may install a faster
 * implementation with `setCrc32cImplementation`, and every caller goes through `crc32c()`.
 * The value is the standard one: crc32c("123456789") === 0xe3069283.
 */

const POLY_REFLECTED = 0x82f63b78;
const TABLES = buildTables();

function buildTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1]!;
    const cur = new Uint32Array(256);
    for (let n = 0; n < 256; n++) cur[n] = ((prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!) >>> 0;
    tables.push(cur);
  }
  return tables;
}

/** Pure-TS CRC32C. `seed` is a previous result, to checksum data in pieces. */
export function crc32cTs(bytes: Uint8Array, seed = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array,
    Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let crc = ~seed >>> 0;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const a = (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    crc = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]!
      ^ t3[bytes[i + 4]!]! ^ t2[bytes[i + 5]!]! ^ t1[bytes[i + 6]!]! ^ t0[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < n) crc = t0[(crc ^ bytes[i++]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

type Crc32cFn = (bytes: Uint8Array, seed?: number) => number;
let implementation: Crc32cFn = crc32cTs;
let implementationName = 'ts';

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
