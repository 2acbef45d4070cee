/**
 * IdIndex: inode id → slot, an open-addressing hash table in two typed arrays.
 *
 * A JS Map of 1 M numbers costs ~40 bytes an entry and rebuilding it at restart is a million
 * rehashing inserts with garbage to collect; this table costs 8 bytes a bucket (at most half
 * full: ≤ 16 bytes an entry), allocates only when it grows, and loads at memory speed.
 *
 * | array  | type   | bucket i holds                                          |
 * |--------|--------|---------------------------------------------------------|
 * | keys   | Uint32 | 0 empty, TOMBSTONE deleted, else id + 1 (ids < 2^29)    |
 * | values | Int32  | the slot of that id                                     |
 *
 * Linear probing from a multiplicative (Fibonacci) hash; the table doubles when live entries
 * plus tombstones pass half the buckets, and is rebuilt in place of tombstones at that point.
 */
import { assert } from '../core/assert.js';
import { MAX_INODE_ID } from '../core/constants.js';

const EMPTY = 0;
const TOMBSTONE = 0xffff_ffff;
const MIN_BUCKETS = 16;

export class IdIndex {
  #keys: Uint32Array;
  #values: Int32Array;
  #mask: number;
  #shift: number;
  #size = 0;
  #used = 0; // live + tombstones

  constructor(expectedEntries = 0) {
    let n = MIN_BUCKETS;
    while (n < expectedEntries * 2) n *= 2;
    this.#keys = new Uint32Array(n);
    this.#values = new Int32Array(n);
    this.#mask = n - 1;
    this.#shift = 32 - Math.log2(n);
  }

  get size(): number { return this.#size; }
  /** Bytes held by the two arrays. */
  get byteLength(): number { return this.#keys.byteLength + this.#values.byteLength; }

  #home(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.#shift;
  }

  get(id: number): number | undefined {
    const key = id + 1;
    const keys = this.#keys;
    for (let i = this.#home(key); ; i = (i + 1) & this.#mask) {
      const k = keys[i]!;
      if (k === key) return this.#values[i];
      if (k === EMPTY) return undefined;
    }
  }

  has(id: number): boolean { return this.get(id) !== undefined; }

  set(id: number, slot: number): void {
    assert(Number.isInteger(id) && id >= 0 && id <= MAX_INODE_ID, 'an inode id is an integer in [0, MAX_INODE_ID]');
    if ((this.#used + 1) * 2 > this.#keys.length) this.#rehash(this.#size + 1);
    const key = id + 1;
    const keys = this.#keys;
    let tomb = -1;
    for (let i = this.#home(key); ; i = (i + 1) & this.#mask) {
      const k = keys[i]!;
      if (k === key) { this.#values[i] = slot; return; }
      if (k === TOMBSTONE) { if (tomb < 0) tomb = i; continue; }
      if (k === EMPTY) {
        const at = tomb >= 0 ? tomb : i;
        if (tomb < 0) this.#used++;
        keys[at] = key;
        this.#values[at] = slot;
        this.#size++;
        return;
      }
    }
  }

  delete(id: number): boolean {
    const key = id + 1;
    const keys = this.#keys;
    for (let i = this.#home(key); ; i = (i + 1) & this.#mask) {
      const k = keys[i]!;
      if (k === key) {
        keys[i] = TOMBSTONE;
        this.#size--;
        return true;
      }
      if (k === EMPTY) return false;
    }
  }

  /** Rebuilds into a table with room for `entries` at under half load, dropping tombstones. */
  #rehash(entries: number): void {
    const oldKeys = this.#keys;
    const oldValues = this.#values;
    let n = MIN_BUCKETS;
    while (n < entries * 2 + 2) n *= 2;
    if (n === oldKeys.length && this.#used === this.#size) n *= 2;
    this.#keys = new Uint32Array(n);
    this.#values = new Int32Array(n);
    this.#mask = n - 1;
    this.#shift = 32 - Math.log2(n);
    this.#size = 0;
    this.#used = 0;
    for (let i = 0; i < oldKeys.length; i++) {
      const k = oldKeys[i]!;
      if (k !== EMPTY && k !== TOMBSTONE) this.#insertFresh(k, oldValues[i]!);
    }
  }

  #insertFresh(key: number, slot: number): void {
    const keys = this.#keys;
    let i = this.#home(key);
    while (keys[i] !== EMPTY) i = (i + 1) & this.#mask;
    keys[i] = key;
    this.#values[i] = slot;
    this.#size++;
    this.#used++;
  }

  /** Calls fn(id, slot) for every entry, in bucket order. */
  forEach(fn: (id: number, slot: number) => void): void {
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (k !== EMPTY && k !== TOMBSTONE) fn(k - 1, this.#values[i]!);
    }
  }
}
