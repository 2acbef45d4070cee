/**
 * Block table: fixed-size entries (one 64-byte cache line each, so that pins on different
 * blocks never share a line) plus an open-addressing index (hash -> entry) in the arena.
 *
 * Entry (Int32 words; f64 slots are Float64Array indexes of the same 64 bytes):
 *
 *   | word  | f64 | name        | meaning                                                   |
 *   |-------|-----|-------------|-----------------------------------------------------------|
 *   | 0     |     | STATE       | FREE, WRITING, COMMITTED, EVICTING or DELETED (pins are   |
 *   |       |     |             | counted per owner: OWNER_VIEWS in core/block-cache.ts)    |
 *   | 1     |     | HASH        | hash of the id (index rebuild, quick reject)              |
 *   | 2     |     | KEY_LEN     | -1: numeric id in NUM_KEY; else string length (UTF-16)    |
 *   | 3     |     | EXTENT      | allocator granule of the block's extent                   |
 *   | 4     |     | WRITER      | owner slot that is writing it (WRITING), else -1         |
 *   | 5     |     | NEXT_PENDING| DELETED and still held: next entry + 1 on the pending-free |
 *   |       |     |             | list (0 = end); see core/block-cache.ts                   |
 *   | 6-7   |     | -           | unused                                                    |
 *   | 8-9   | 4   | NUM_KEY     | numeric id                                                |
 *   | 10-11 | 5   | LENGTH      | block length in bytes                                     |
 *   | 12-13 | 6   | DATA_OFFSET | arena byte offset of the block's bytes (64-aligned)       |
 *   | 14-15 | 7   | KEY_OFFSET  | arena byte offset of a string id's UTF-16 code units      |
 *
 * A string id is stored in its own extent, in front of the bytes: [header][key][bytes].
 *
 * Index: `bucketCount` (a power of two) Int32 buckets, linear probing; a bucket holds
 * entry + 1, EMPTY (0) or TOMBSTONE (-1). Writers change it only under the engine lock.
 * Readers probe without a lock: a bucket store is one atomic word, a found entry is held
 * and then its key compared (the key of a held, committed entry cannot change), so a hit
 * is always right. Only a rebuild (clearing tombstones) moves entries; it bumps INDEX_SEQ to
 * odd before and to even after, and a reader that missed re-checks INDEX_SEQ and retries.
 */

// const enums: tsc writes the numbers into the code that uses them, so that the lock-free
// lookup in core/block-cache.ts loads no module variables (and stays small enough for the
// compiler to inline it into its callers).

/** Size of an entry: one 64-byte line. */
export const enum Entry {
  BYTES = 64,
  WORDS = 16,
  F64 = 8,
}

/** Int32 word of each field of an entry (the table above). */
export const enum E {
  STATE = 0,
  HASH = 1,
  KEY_LEN = 2,
  EXTENT = 3,
  WRITER = 4,
  NEXT_PENDING = 5,
}

/** Float64 slot of each field of an entry (the table above). */
export const enum EF {
  NUM_KEY = 4,
  LENGTH = 5,
  DATA_OFFSET = 6,
  KEY_OFFSET = 7,
}

export const STATE_MASK = 7;

export const enum BlockState {
  FREE = 0,
  WRITING = 1,
  COMMITTED = 2,
  EVICTING = 3,
  DELETED = 4,
}

export const BUCKET_EMPTY = 0;
export const BUCKET_TOMBSTONE = -1;

/** 32-bit mix (murmur3 finalizer). */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** Hash of a safe-integer id. */
export function hashNumberId(id: number): number {
  if ((id | 0) === id) return fmix(id ^ Math.imul((id < 0 ? -1 : 0) ^ 0x27d4eb2f, 0x9e3779b1)); // fast path, same value
  const lo = id | 0;
  const hi = Math.floor(id / 4294967296) | 0;
  return fmix(lo ^ Math.imul(hi ^ 0x27d4eb2f, 0x9e3779b1));
}

const INT_SALT = Math.imul(0x27d4eb2f, 0x9e3779b1);
const NEGATIVE_INT_SALT = Math.imul(-1 ^ 0x27d4eb2f, 0x9e3779b1);

/** hashNumberId of an int32 id (the same value), small enough to inline into lookups. */
export function hashInt32Id(id: number): number {
  return fmix(id ^ (id < 0 ? NEGATIVE_INT_SALT : INT_SALT));
}

/** Hash of a string id (FNV-1a over UTF-16 code units, then mixed). */
export function hashStringId(id: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return fmix(h ^ 0x5bd1e995);
}

/** Smallest power of two >= n (n >= 1). */
export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
