/**
 * LRU eviction as pure functions over typed arrays: a binary min-heap of entries keyed by
 * the tick of their last access, with lazy keys.
 *
 * Why a heap and not a linked list: a list LRU moves the entry to the head on every hit,
 * which needs the lock on the read path. Here a hit only stores the current tick in
 * `lastAccess[e]` (no lock). The heap's own key `heapKey[pos]` may lag behind; when the heap
 * top's real `lastAccess` is newer than its key, the key is refreshed and the entry sifted
 * down, so the top that survives is the true least recently used entry. Each hit costs at
 * most one sift (O(log n)) and only when the entry reaches the top.
 *
 * Resolution: ticks are whatever the caller passes (the engine uses a counter advanced by
 * every put), so accesses between two puts tie; ties are broken by heap order.
 *
 * No I/O, no clock. `meta` words: 0 COUNT. `scratch` holds entries set aside while looking
 * for an evictable one (refused by `canEvict`); they are pushed back before returning.
 */

export interface LruState {
  readonly lastAccess: Float64Array;
  readonly heap: Int32Array;
  readonly heapKey: Float64Array;
  readonly heapPos: Int32Array;
  readonly scratch: Int32Array;
  readonly meta: Int32Array;
}

export const LRU_META_WORDS = 1;

export function lruCreate(capacity: number): LruState {
  return {
    lastAccess: new Float64Array(capacity), heap: new Int32Array(capacity), heapKey: new Float64Array(capacity),
    heapPos: new Int32Array(capacity).fill(-1), scratch: new Int32Array(capacity), meta: new Int32Array(LRU_META_WORDS),
  };
}

export function lruReset(s: LruState): void {
  s.meta[0] = 0;
}

export function lruCount(s: LruState): number {
  return s.meta[0]!;
}

function place(s: LruState, pos: number, e: number, key: number): void {
  s.heap[pos] = e;
  s.heapKey[pos] = key;
  s.heapPos[e] = pos;
}

function siftUp(s: LruState, pos: number): void {
  const e = s.heap[pos]!;
  const key = s.heapKey[pos]!;
  while (pos > 0) {
    const parent = (pos - 1) >> 1;
    if (s.heapKey[parent]! <= key) break;
    place(s, pos, s.heap[parent]!, s.heapKey[parent]!);
    pos = parent;
  }
  place(s, pos, e, key);
}

function siftDown(s: LruState, pos: number): void {
  const n = s.meta[0]!;
  const e = s.heap[pos]!;
  const key = s.heapKey[pos]!;
  for (;;) {
    let child = 2 * pos + 1;
    if (child >= n) break;
    if (child + 1 < n && s.heapKey[child + 1]! < s.heapKey[child]!) child++;
    if (s.heapKey[child]! >= key) break;
    place(s, pos, s.heap[child]!, s.heapKey[child]!);
    pos = child;
  }
  place(s, pos, e, key);
}

function push(s: LruState, e: number, key: number): void {
  const pos = s.meta[0]!;
  s.meta[0] = pos + 1;
  place(s, pos, e, key);
  siftUp(s, pos);
}

/** Inserts entry `e`, accessed at `tick`. */
export function lruInsert(s: LruState, e: number, tick: number): void {
  s.lastAccess[e] = tick;
  push(s, e, tick);
}

/** Removes entry `e` (which must be in the heap). */
export function lruRemove(s: LruState, e: number): void {
  const pos = s.heapPos[e]!;
  const last = s.meta[0]! - 1;
  s.meta[0] = last;
  s.heapPos[e] = -1;
  if (pos === last) return;
  place(s, pos, s.heap[last]!, s.heapKey[last]!);
  siftDown(s, pos);
  siftUp(s, pos); // no-op when siftDown moved it: the new occupant is a former child
}

/** Records an access to `e` at `tick`. */
export function lruTouch(s: LruState, e: number, tick: number): void {
  if (s.lastAccess[e] !== tick) s.lastAccess[e] = tick;
}

/**
 * Returns the least recently used entry that `canEvict` accepts (still in the heap: the
 * caller removes it), or -1 when none is. Refused entries keep their place.
 */
export function lruVictim(s: LruState, canEvict: (e: number) => boolean): number {
  let aside = 0;
  let victim = -1;
  while (s.meta[0]! > 0) {
    const top = s.heap[0]!;
    const seen = s.lastAccess[top]!;
    if (seen > s.heapKey[0]!) {
      s.heapKey[0] = seen;
      siftDown(s, 0);
      continue;
    }
    if (canEvict(top)) {
      victim = top;
      break;
    }
    s.scratch[aside++] = top;
    lruRemove(s, top);
  }
  for (let i = 0; i < aside; i++) {
    const e = s.scratch[i]!;
    push(s, e, s.lastAccess[e]!);
  }
  return victim;
}
