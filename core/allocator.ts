/**
 * TLSF (two-level segregated fit) allocator of contiguous extents inside an arena.
 *
 * Purpose: hand out 64-byte-aligned contiguous extents in O(1) (two bitmap scans, one list
 * pop, one split) and free them in O(1) (coalescing with both physical neighbours), with all
 * of its state inside the shared region, so that any attached thread can allocate and free.
 * It does NOT lock: the caller (core/block-cache.ts) holds the engine lock around every call.
 *
 * Units: the allocator counts in granules of GRANULE_BYTES (64) bytes; an extent's first
 * granule is its header (in-band boundary tag), the caller's bytes start one granule later.
 * Alignment to 64 bytes keeps memcpy on the fast path (see issue 2: a copy whose destination
 * sits 8-16 bytes off the source's page offset runs ~25x slower).
 *
 * Extent header (Int32 words at the extent's first granule):
 *
 *   | word | name          | meaning                                                   |
 *   |------|---------------|-----------------------------------------------------------|
 *   | 0    | SIZE          | extent size in granules, header included                 |
 *   | 1    | FLAGS         | bit 0: free                                               |
 *   | 2    | PREV_PHYS     | granule of the physically previous extent, -1 for first   |
 *   | 3    | NEXT_FREE     | next extent in its free list, -1 = none (free only)      |
 *   | 4    | PREV_FREE     | previous extent in its free list, -1 = none (free only)  |
 *   | 5    | TAG           | caller's tag (block-table entry index) while allocated    |
 *   | 6-15 | -             | free for the caller (unused)                              |
 *
 * The region ends with a one-granule sentinel extent that is always "allocated", so
 * coalescing never runs off the end.
 *
 * Metadata (Int32 words at `metaWordOffset`):
 *
 *   | words        | name        | meaning                                               |
 *   |--------------|-------------|-------------------------------------------------------|
 *   | 0            | FL_BITMAP   | bit f set = some second-level list of class f non-empty |
 *   | 1..32        | SL_BITMAPS  | per first-level class: bit s set = list (f, s) non-empty |
 *   | 33..33+32*16 | HEADS       | head granule of list (f, s), -1 = empty               |
 *   | 545          | GRANULES    | granules in the region, sentinel included             |
 *   | 546          | FREE        | free granules (headers of free extents included)      |
 *   | 547          | FREE_COUNT  | number of free extents                                |
 *
 * Size classes: sizes below 16 granules have one exact list each (f = 0, s = size); larger
 * sizes use f = floor(log2 size) - 3 and 16 linear subdivisions (s). An allocation searches
 * from the class rounded up (every extent there fits), and if that finds nothing, scans its
 * own class list (bounded) for a fit, which keeps fragmentation low near a full arena.
 */
import { assert } from './assert.js';

export const GRANULE_BYTES = 64;
export const GRANULE_WORDS = GRANULE_BYTES / 4;
const SL_LOG2 = 4;
const SL_COUNT = 1 << SL_LOG2;
const FL_COUNT = 32;
/** Bounded scan of the exact class list when the rounded-up search finds nothing. */
const FALLBACK_SCAN_LIMIT = 64;

const H_SIZE = 0;
const H_FLAGS = 1;
const H_PREV_PHYS = 2;
const H_NEXT_FREE = 3;
const H_PREV_FREE = 4;
const H_TAG = 5;
const FLAG_FREE = 1;

const M_FL = 0;
const M_SL = 1;
const M_HEADS = M_SL + FL_COUNT;
const M_GRANULES = M_HEADS + FL_COUNT * SL_COUNT;
const M_FREE = M_GRANULES + 1;
const M_FREE_COUNT = M_GRANULES + 2;
/** Int32 words of allocator metadata. */
export const ALLOCATOR_META_WORDS = M_FREE_COUNT + 1;

function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

export class TlsfAllocator {
  readonly #w: Int32Array;
  readonly #meta: number;
  readonly #data: number;
  #fl = 0;
  #sl = 0;

  /**
   * @param words Int32 view over the whole arena.
   * @param metaWordOffset word index of the metadata block.
   * @param dataByteOffset byte offset of the data region (multiple of 64).
   */
  constructor(words: Int32Array, metaWordOffset: number, dataByteOffset: number) {
    assert(dataByteOffset % GRANULE_BYTES === 0, 'allocator data region is 64-byte aligned');
    this.#w = words;
    this.#meta = metaWordOffset;
    this.#data = dataByteOffset >>> 2;
  }

  /** Writes an empty allocator over `granules` granules (the last becomes the sentinel). */
  format(granules: number): void {
    assert(Number.isInteger(granules) && granules >= 3 && granules < 2 ** 31, 'allocator granule count in range');
    const w = this.#w;
    const m = this.#meta;
    w.fill(0, m, m + ALLOCATOR_META_WORDS);
    w.fill(-1, m + M_HEADS, m + M_HEADS + FL_COUNT * SL_COUNT);
    w[m + M_GRANULES] = granules;
    const sentinel = granules - 1;
    const sh = this.#h(sentinel);
    w[sh + H_SIZE] = 1;
    w[sh + H_FLAGS] = 0;
    w[sh + H_PREV_PHYS] = 0;
    const h = this.#h(0);
    w[h + H_SIZE] = granules - 1;
    w[h + H_PREV_PHYS] = -1;
    w[h + H_TAG] = -1;
    this.#insertFree(0, granules - 1);
    w[m + M_FREE] = granules - 1;
    w[m + M_FREE_COUNT] = 1;
  }

  /** Word index of extent `g`'s header. */
  #h(g: number): number {
    return this.#data + g * GRANULE_WORDS;
  }

  /** Byte offset (in the arena) of the first byte after extent `g`'s header. */
  payloadByteOffset(g: number): number {
    return (this.#data + (g + 1) * GRANULE_WORDS) * 4;
  }

  get granules(): number {
    return this.#w[this.#meta + M_GRANULES]!;
  }

  get freeGranules(): number {
    return this.#w[this.#meta + M_FREE]!;
  }

  get freeExtentCount(): number {
    return this.#w[this.#meta + M_FREE_COUNT]!;
  }

  sizeOf(g: number): number {
    return this.#w[this.#h(g) + H_SIZE]!;
  }

  tagOf(g: number): number {
    return this.#w[this.#h(g) + H_TAG]!;
  }

  #mapInsert(size: number): void {
    if (size < SL_COUNT) {
      this.#fl = 0;
      this.#sl = size;
    } else {
      const t = 31 - Math.clz32(size);
      this.#sl = (size >>> (t - SL_LOG2)) ^ SL_COUNT;
      this.#fl = t - SL_LOG2 + 1;
    }
  }

  #insertFree(g: number, size: number): void {
    const w = this.#w;
    const m = this.#meta;
    this.#mapInsert(size);
    const list = m + M_HEADS + this.#fl * SL_COUNT + this.#sl;
    const head = w[list]!;
    const h = this.#h(g);
    w[h + H_FLAGS] = FLAG_FREE;
    w[h + H_NEXT_FREE] = head;
    w[h + H_PREV_FREE] = -1;
    if (head >= 0) w[this.#h(head) + H_PREV_FREE] = g;
    w[list] = g;
    w[m + M_FL] = w[m + M_FL]! | (1 << this.#fl);
    w[m + M_SL + this.#fl] = w[m + M_SL + this.#fl]! | (1 << this.#sl);
  }

  #removeFree(g: number): void {
    const w = this.#w;
    const m = this.#meta;
    const h = this.#h(g);
    assert((w[h + H_FLAGS]! & FLAG_FREE) !== 0, 'removing a free extent');
    this.#mapInsert(w[h + H_SIZE]!);
    const next = w[h + H_NEXT_FREE]!;
    const prev = w[h + H_PREV_FREE]!;
    if (next >= 0) w[this.#h(next) + H_PREV_FREE] = prev;
    if (prev >= 0) {
      w[this.#h(prev) + H_NEXT_FREE] = next;
    } else {
      const list = m + M_HEADS + this.#fl * SL_COUNT + this.#sl;
      assert(w[list] === g, 'free extent without predecessor heads its list');
      w[list] = next;
      if (next < 0) {
        const slMap = w[m + M_SL + this.#fl]! & ~(1 << this.#sl);
        w[m + M_SL + this.#fl] = slMap;
        if (slMap === 0) w[m + M_FL] = w[m + M_FL]! & ~(1 << this.#fl);
      }
    }
    w[h + H_FLAGS] = 0;
  }

  /** Finds a free extent of at least `size` granules, or -1. */
  #find(size: number): number {
    const w = this.#w;
    const m = this.#meta;
    let rounded = size;
    if (size >= SL_COUNT) rounded = size + (1 << (31 - Math.clz32(size) - SL_LOG2)) - 1;
    this.#mapInsert(rounded);
    let fl = this.#fl;
    let slMap = fl < FL_COUNT ? w[m + M_SL + fl]! & (~0 << this.#sl) : 0;
    if (slMap === 0) {
      const flMap = fl + 1 < FL_COUNT ? w[m + M_FL]! & (~0 << (fl + 1)) : 0;
      if (flMap !== 0) {
        fl = ctz(flMap);
        slMap = w[m + M_SL + fl]!;
      }
    }
    if (slMap !== 0) return w[m + M_HEADS + fl * SL_COUNT + ctz(slMap)]!;
    // Nothing in a class that surely fits: scan the exact class for one that does.
    this.#mapInsert(size);
    let g = w[m + M_HEADS + this.#fl * SL_COUNT + this.#sl]!;
    for (let n = 0; g >= 0 && n < FALLBACK_SCAN_LIMIT; n++) {
      if (w[this.#h(g) + H_SIZE]! >= size) return g;
      g = w[this.#h(g) + H_NEXT_FREE]!;
    }
    return -1;
  }

  /**
   * Allocates an extent of `size` granules (header included), tagged with `tag`.
   * Returns its granule index, or -1 when no free extent is large enough.
   */
  alloc(size: number, tag: number): number {
    assert(Number.isInteger(size) && size >= 1, 'allocation size is a positive granule count');
    const w = this.#w;
    const m = this.#meta;
    const g = this.#find(size);
    if (g < 0) return -1;
    this.#removeFree(g);
    const h = this.#h(g);
    const have = w[h + H_SIZE]!;
    assert(have >= size, 'found extent is large enough');
    w[m + M_FREE_COUNT] = w[m + M_FREE_COUNT]! - 1;
    if (have - size >= 2) {
      const rest = g + size;
      const rh = this.#h(rest);
      w[rh + H_SIZE] = have - size;
      w[rh + H_PREV_PHYS] = g;
      w[rh + H_TAG] = -1;
      w[this.#h(g + have) + H_PREV_PHYS] = rest;
      this.#insertFree(rest, have - size);
      w[h + H_SIZE] = size;
      w[m + M_FREE_COUNT] = w[m + M_FREE_COUNT]! + 1;
    }
    w[h + H_TAG] = tag;
    w[m + M_FREE] = w[m + M_FREE]! - w[h + H_SIZE]!;
    return g;
  }

  /** Frees extent `g`, coalescing it with free physical neighbours. */
  free(g: number): void {
    const w = this.#w;
    const m = this.#meta;
    let h = this.#h(g);
    assert(g >= 0 && g < w[m + M_GRANULES]! - 1, 'freed extent is inside the region');
    assert((w[h + H_FLAGS]! & FLAG_FREE) === 0, 'extent is not freed twice');
    let size = w[h + H_SIZE]!;
    w[m + M_FREE] = w[m + M_FREE]! + size;
    w[m + M_FREE_COUNT] = w[m + M_FREE_COUNT]! + 1;
    w[h + H_TAG] = -1;
    const next = g + size;
    const nh = this.#h(next);
    if ((w[nh + H_FLAGS]! & FLAG_FREE) !== 0) {
      this.#removeFree(next);
      size += w[nh + H_SIZE]!;
      w[m + M_FREE_COUNT] = w[m + M_FREE_COUNT]! - 1;
    }
    const prev = w[h + H_PREV_PHYS]!;
    if (prev >= 0 && (w[this.#h(prev) + H_FLAGS]! & FLAG_FREE) !== 0) {
      this.#removeFree(prev);
      size += w[this.#h(prev) + H_SIZE]!;
      w[m + M_FREE_COUNT] = w[m + M_FREE_COUNT]! - 1;
      g = prev;
      h = this.#h(g);
    }
    w[h + H_SIZE] = size;
    w[this.#h(g + size) + H_PREV_PHYS] = g;
    this.#insertFree(g, size);
  }

  /** Granule of the largest free extent, or -1 (walks only the highest non-empty class). */
  largestFreeExtent(): number {
    const w = this.#w;
    const m = this.#meta;
    const flMap = w[m + M_FL]!;
    if (flMap === 0) return -1;
    const fl = 31 - Math.clz32(flMap);
    const sl = 31 - Math.clz32(w[m + M_SL + fl]!);
    let best = -1;
    let bestSize = 0;
    let g = w[m + M_HEADS + fl * SL_COUNT + sl]!;
    for (let n = 0; g >= 0 && n < 1 << 16; n++) {
      const s = w[this.#h(g) + H_SIZE]!;
      if (s > bestSize) {
        bestSize = s;
        best = g;
      }
      g = w[this.#h(g) + H_NEXT_FREE]!;
    }
    return best;
  }

  /**
   * The allocated physical neighbours of free extent `g` as [before, after] granules (-1 when
   * there is none: region start or sentinel). Evicting them grows the hole at `g`.
   */
  neighboursOf(g: number): [number, number] {
    const w = this.#w;
    const h = this.#h(g);
    const next = g + w[h + H_SIZE]!;
    const after = next < w[this.#meta + M_GRANULES]! - 1 ? next : -1;
    return [w[h + H_PREV_PHYS]!, after];
  }

  /** Size in granules of the largest free extent (walks only the highest non-empty class). */
  largestFreeGranules(): number {
    const w = this.#w;
    const m = this.#meta;
    const flMap = w[m + M_FL]!;
    if (flMap === 0) return 0;
    const fl = 31 - Math.clz32(flMap);
    const sl = 31 - Math.clz32(w[m + M_SL + fl]!);
    let best = 0;
    let g = w[m + M_HEADS + fl * SL_COUNT + sl]!;
    for (let n = 0; g >= 0 && n < 1 << 16; n++) {
      const s = w[this.#h(g) + H_SIZE]!;
      if (s > best) best = s;
      g = w[this.#h(g) + H_NEXT_FREE]!;
    }
    return best;
  }

  /**
   * Walks the whole region and checks the physical chain (sizes tile the region, prev links
   * agree, no two adjacent free extents, free count and free granules agree with the lists).
   * O(extents); for tests. Returns the allocated extents as [granule, size] pairs.
   */
  check(): Array<[number, number]> {
    const w = this.#w;
    const m = this.#meta;
    const total = w[m + M_GRANULES]!;
    const used: Array<[number, number]> = [];
    let g = 0;
    let prev = -1;
    let prevFree = false;
    let freeGranules = 0;
    let freeCount = 0;
    while (g < total - 1) {
      const h = this.#h(g);
      const size = w[h + H_SIZE]!;
      assert(size >= 1 && g + size <= total - 1, `extent ${g} has a sane size ${size}`);
      assert(w[h + H_PREV_PHYS] === prev, `extent ${g} links to its physical predecessor`);
      const free = (w[h + H_FLAGS]! & FLAG_FREE) !== 0;
      assert(!(free && prevFree), `no two adjacent free extents at ${g}`);
      if (free) {
        freeGranules += size;
        freeCount++;
      } else {
        used.push([g, size]);
      }
      prevFree = free;
      prev = g;
      g += size;
    }
    assert(g === total - 1, 'extents tile the region up to the sentinel');
    assert(w[this.#h(total - 1) + H_PREV_PHYS] === prev, 'sentinel links to the last extent');
    assert(freeGranules === w[m + M_FREE], `free granules agree (${freeGranules} vs ${w[m + M_FREE]})`);
    assert(freeCount === w[m + M_FREE_COUNT], 'free extent count agrees');
    let listed = 0;
    for (let i = 0; i < FL_COUNT * SL_COUNT; i++) {
      for (let e = w[m + M_HEADS + i]!; e >= 0; e = w[this.#h(e) + H_NEXT_FREE]!) listed++;
    }
    assert(listed === freeCount, 'every free extent is on exactly one list');
    return used;
  }
}
