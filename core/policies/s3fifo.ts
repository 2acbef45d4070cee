/**
 * S3-FIFO eviction (Yang et al., SOSP 2023) as pure functions over typed arrays.
 *
 * Three FIFO queues: a small one (S, about 10 % of the entries) where every new entry
 * starts, a main one (M), and a ghost of ids recently evicted from S (hashes only). An entry
 * hit at least twice while in S is moved to M when it reaches S's tail, others are evicted
 * ("quick demotion" of one-hit wonders); M is a FIFO with a 2-bit frequency that gives an
 * entry another round per hit (CLOCK-like). An id that comes back while its hash is in the
 * ghost goes straight to M. A hit only increments `freq[e]` (a byte store, no lock).
 *
 *    new --> [ S: head ... tail ] --freq>1--> [ M: head ... tail ] --freq=0--> evicted
 *                          \--freq<=1--> evicted, hash into ghost      ^-- freq>0: freq-1, to head
 *
 * The ghost is a counting filter (Uint8 counters indexed by hash) plus a ring of the hashes
 * in it, so it forgets in FIFO order; a false positive only sends a new entry to M early.
 *
 * No I/O, no clock. `meta` words: 0 COUNT_S, 1 COUNT_M, 2 HEAD_S, 3 TAIL_S, 4 HEAD_M,
 * 5 TAIL_M, 6 GHOST_NEXT (ring write index), 7 GHOST_COUNT.
 */

export interface S3FifoState {
  readonly prev: Int32Array;
  readonly next: Int32Array;
  /** 0: in no queue, 1: S, 2: M. */
  readonly queue: Uint8Array;
  readonly freq: Uint8Array;
  /** Hashes in the ghost, oldest first from GHOST_NEXT (length = ghost capacity). */
  readonly ghostRing: Int32Array;
  /** Counting filter over ghost hashes (length a power of two). */
  readonly ghostFilter: Uint8Array;
  readonly meta: Int32Array;
}

export const S3FIFO_META_WORDS = 8;
const COUNT_S = 0;
const COUNT_M = 1;
const HEAD_S = 2;
const TAIL_S = 3;
const HEAD_M = 4;
const TAIL_M = 5;
const GHOST_NEXT = 6;
const GHOST_COUNT = 7;
const IN_S = 1;
const IN_M = 2;
const MAX_FREQ = 3;
/** S holds about this share of the entries. */
const SMALL_SHARE = 0.1;

export function s3fifoCreate(capacity: number): S3FifoState {
  let filter = 1;
  while (filter < capacity * 4) filter *= 2;
  const s = {
    prev: new Int32Array(capacity), next: new Int32Array(capacity), queue: new Uint8Array(capacity), freq: new Uint8Array(capacity),
    ghostRing: new Int32Array(Math.max(1, capacity)), ghostFilter: new Uint8Array(filter), meta: new Int32Array(S3FIFO_META_WORDS),
  };
  s3fifoReset(s);
  return s;
}

export function s3fifoReset(s: S3FifoState): void {
  s.meta.fill(0);
  s.meta[HEAD_S] = -1;
  s.meta[TAIL_S] = -1;
  s.meta[HEAD_M] = -1;
  s.meta[TAIL_M] = -1;
  s.ghostFilter.fill(0);
}

export function s3fifoCount(s: S3FifoState): number {
  return s.meta[COUNT_S]! + s.meta[COUNT_M]!;
}

function pushHead(s: S3FifoState, e: number, q: number): void {
  const headSlot = q === IN_S ? HEAD_S : HEAD_M;
  const head = s.meta[headSlot]!;
  s.prev[e] = -1;
  s.next[e] = head;
  if (head >= 0) s.prev[head] = e;
  else s.meta[q === IN_S ? TAIL_S : TAIL_M] = e;
  s.meta[headSlot] = e;
  s.queue[e] = q;
  s.meta[q === IN_S ? COUNT_S : COUNT_M]!++;
}

function unlink(s: S3FifoState, e: number): void {
  const q = s.queue[e]!;
  const p = s.prev[e]!;
  const n = s.next[e]!;
  if (p >= 0) s.next[p] = n;
  else s.meta[q === IN_S ? HEAD_S : HEAD_M] = n;
  if (n >= 0) s.prev[n] = p;
  else s.meta[q === IN_S ? TAIL_S : TAIL_M] = p;
  s.queue[e] = 0;
  s.meta[q === IN_S ? COUNT_S : COUNT_M]!--;
}

function ghostHas(s: S3FifoState, hash: number): boolean {
  return s.ghostFilter[hash & (s.ghostFilter.length - 1)]! > 0;
}

/** Records that an entry with id hash `hash` was evicted from S (call it for victims from S). */
export function s3fifoRemember(s: S3FifoState, hash: number): void {
  const ring = s.ghostRing;
  const mask = s.ghostFilter.length - 1;
  const at = s.meta[GHOST_NEXT]!;
  if (s.meta[GHOST_COUNT]! === ring.length) {
    const old = ring[at]! & mask;
    if (s.ghostFilter[old]! > 0) s.ghostFilter[old]!--;
  } else {
    s.meta[GHOST_COUNT]!++;
  }
  ring[at] = hash;
  const slot = hash & mask;
  if (s.ghostFilter[slot]! < 255) s.ghostFilter[slot]!++;
  s.meta[GHOST_NEXT] = (at + 1) % ring.length;
}

/** Inserts entry `e` whose id hashes to `hash`: into M if the ghost remembers it, else S. */
export function s3fifoInsert(s: S3FifoState, e: number, hash: number): void {
  s.freq[e] = 0;
  pushHead(s, e, ghostHas(s, hash) ? IN_M : IN_S);
}

/** Unlinks entry `e` (which must be queued). */
export function s3fifoRemove(s: S3FifoState, e: number): void {
  unlink(s, e);
}

/** True when `e` is in the small queue (its eviction should be remembered in the ghost). */
export function s3fifoInSmall(s: S3FifoState, e: number): boolean {
  return s.queue[e] === IN_S;
}

export function s3fifoTouch(s: S3FifoState, e: number): void {
  const f = s.freq[e]!;
  if (f < MAX_FREQ) s.freq[e] = f + 1;
}

/**
 * Returns the next victim (still queued: the caller removes it, and calls s3fifoRemember
 * with its hash if s3fifoInSmall said it was in S), or -1 when `canEvict` refuses every
 * entry. Entries moved from S to M and second chances in M happen here.
 */
export function s3fifoVictim(s: S3FifoState, canEvict: (e: number) => boolean): number {
  const limit = (MAX_FREQ + 3) * s3fifoCount(s) + 2;
  let refusedS = 0; // refused entries rotated within this call: once every entry of a
  let refusedM = 0; // queue was refused, that queue is done
  for (let steps = 0; steps < limit; steps++) {
    const countS = s.meta[COUNT_S]!;
    const countM = s.meta[COUNT_M]!;
    const smallTarget = Math.max(1, Math.floor(SMALL_SHARE * (countS + countM)));
    if (countS > refusedS && (countS >= smallTarget || countM <= refusedM)) {
      const t = s.meta[TAIL_S]!;
      if (s.freq[t]! > 1) {
        unlink(s, t);
        s.freq[t] = 0;
        pushHead(s, t, IN_M);
      } else if (canEvict(t)) {
        return t;
      } else {
        unlink(s, t);
        pushHead(s, t, IN_S); // refused (pinned): keep it, look further
        refusedS++;
      }
    } else if (countM > refusedM) {
      const t = s.meta[TAIL_M]!;
      if (s.freq[t]! > 0) {
        s.freq[t]!--;
        unlink(s, t);
        pushHead(s, t, IN_M);
      } else if (canEvict(t)) {
        return t;
      } else {
        unlink(s, t);
        pushHead(s, t, IN_M);
        refusedM++;
      }
    } else {
      return -1;
    }
  }
  return -1;
}
