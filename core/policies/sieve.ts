/**
 * SIEVE eviction (Zhang et al., NSDI 2024) as pure functions over typed arrays.
 *
 * A FIFO queue (doubly linked through `prev`/`next`, newest at head) and a hand that walks
 * from the tail towards the head. A hit only sets `visited[e] = 1` (one byte store, no lock,
 * no list move), which is what lets lookups stay lock-free. To find a victim the hand clears
 * visited bits until it meets an unvisited entry that `canEvict` accepts; survivors stay in
 * place (no re-insertion), so new entries and old popular ones are separated cheaply.
 *
 *        head (newest)                                  tail (oldest)
 *          [e7] <-> [e3] <-> [e9] <-> [e1] <-> [e4] <-> [e2]
 *                                        ^ hand moves this way <-
 *
 * No I/O, no clock: the caller owns the arrays (in the engine they live in the arena and
 * are changed only under the engine lock, except `visited`, which hits set racily; a lost
 * set only makes SIEVE a little less precise).
 *
 * `meta` words: 0 COUNT, 1 HEAD, 2 TAIL, 3 HAND (-1 = none).
 */

export interface SieveState {
  readonly prev: Int32Array;
  readonly next: Int32Array;
  readonly visited: Uint8Array;
  readonly meta: Int32Array;
}

export const SIEVE_META_WORDS = 4;
const COUNT = 0;
const HEAD = 1;
const TAIL = 2;
const HAND = 3;

/** A fresh state for entries 0..capacity-1 (plain arrays; the engine passes arena views). */
export function sieveCreate(capacity: number): SieveState {
  const s = { prev: new Int32Array(capacity), next: new Int32Array(capacity), visited: new Uint8Array(capacity), meta: new Int32Array(SIEVE_META_WORDS) };
  sieveReset(s);
  return s;
}

export function sieveReset(s: SieveState): void {
  s.meta[COUNT] = 0;
  s.meta[HEAD] = -1;
  s.meta[TAIL] = -1;
  s.meta[HAND] = -1;
}

export function sieveCount(s: SieveState): number {
  return s.meta[COUNT]!;
}

/** Inserts entry `e` at the head, unvisited. */
export function sieveInsert(s: SieveState, e: number): void {
  const head = s.meta[HEAD]!;
  s.prev[e] = -1;
  s.next[e] = head;
  s.visited[e] = 0;
  if (head >= 0) s.prev[head] = e;
  else s.meta[TAIL] = e;
  s.meta[HEAD] = e;
  s.meta[COUNT]!++;
}

/** Unlinks entry `e` (which must be in the queue). */
export function sieveRemove(s: SieveState, e: number): void {
  const p = s.prev[e]!;
  const n = s.next[e]!;
  if (s.meta[HAND] === e) s.meta[HAND] = p;
  if (p >= 0) s.next[p] = n;
  else s.meta[HEAD] = n;
  if (n >= 0) s.prev[n] = p;
  else s.meta[TAIL] = p;
  s.prev[e] = -1;
  s.next[e] = -1;
  s.meta[COUNT]!--;
}

/** Records a hit on `e`. */
export function sieveTouch(s: SieveState, e: number): void {
  if (s.visited[e] === 0) s.visited[e] = 1;
}

/**
 * Moves the hand to the next victim and returns it (still queued: the caller removes it), or
 * -1 when no entry is evictable. `canEvict(e)` may refuse an entry (pinned, vetoed); a
 * refused entry keeps its place and its visited bit. At most two passes over the queue.
 */
export function sieveVictim(s: SieveState, canEvict: (e: number) => boolean): number {
  const count = s.meta[COUNT]!;
  if (count === 0) return -1;
  let e = s.meta[HAND]!;
  if (e < 0) e = s.meta[TAIL]!;
  for (let steps = 0; steps <= 2 * count; steps++) {
    if (s.visited[e] !== 0) {
      s.visited[e] = 0;
    } else if (canEvict(e)) {
      s.meta[HAND] = s.prev[e]!;
      return e;
    }
    e = s.prev[e]!;
    if (e < 0) e = s.meta[TAIL]!;
  }
  s.meta[HAND] = e;
  return -1;
}
