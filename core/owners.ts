/**
 * Owners: one slot per attached BlockCache instance (a thread, or a thread of another process
 * for 'shm' arenas), which records who it is, a lease heartbeat, and every pin it holds, so
 * that the pins of a thread that died can be given back. Every hold (a view from acquire,
 * withView or get, or a pin) is a count in the owner's own row of a Uint16 array beside
 * the slots (OWNER_VIEWS in core/block-cache.ts): the hold and its record are one store,
 * so a thread killed at any instruction leaves exact counts, and reaping zeroes its row.
 * The slot's records below only index the explicit pins (pin/unpin, at most pinsPerOwner
 * distinct blocks) so that unpin(id) finds a pinned block even after it was deleted.
 *
 * Fault model (what is detected, and how):
 *   - A worker_thread that exits or is terminated (worker.terminate()) or crashes: its timer
 *     stops refreshing HEARTBEAT; once the heartbeat is older than the cache's lease
 *     (ownerLeaseMs), any other owner that scans (a put that needs room, the periodic timer,
 *     reapDeadOwners()) releases its pins. The parent that sees the Worker's 'exit' event can
 *     release at once with cache.releaseThread(worker.threadId).
 *   - Another process that dies: detected at once by /proc/<pid>/stat missing or showing a
 *     different start time (field 22) than the token recorded at attach (pid reuse).
 *   - Not covered: a live thread whose event loop is blocked longer than the lease while it
 *     holds views (its pins would be reaped; its next call throws TESSERA_ERR_LEASE_EXPIRED),
 *     and a thread killed while holding the engine lock (see core/block-cache.ts).
 *
 * Slot layout (Int32 words from the slot's start; f64 = Float64Array index within the slot):
 *
 *   | word  | f64 | name          | meaning                                                   |
 *   |-------|-----|---------------|-----------------------------------------------------------|
 *   | 0     |     | STATE         | 0 FREE, 1 LIVE                                            |
 *   | 1     |     | GEN           | incremented at every claim and release of the slot       |
 *   | 2     |     | PID           | process id                                                |
 *   | 3     |     | THREAD_ID     | worker_threads threadId (0 = main thread)                 |
 *   | 4     |     | RECORDS_USED  | pin records in use                                       |
 *   | 5     |     | -             |                                                           |
 *   | 6-7   | 3   | START_TOKEN   | /proc/<pid>/stat field 22 (start time in clock ticks)    |
 *   | 8-9   | 4   | HEARTBEAT_MS  | Date.now() of the last refresh                            |
 *   | 10-11 | 5   | HITS          | hits flushed by the owner                                 |
 *   | 12-13 | 6   | MISSES        | misses flushed by the owner                               |
 *   | 14-15 |     | -             |                                                           |
 *   | 16+4r |     | record r      | [entry + 1 (0 = empty), unused, pins, unused]            |
 *
 * Records form a linear-probing hash (entry -> counts) with backward-shift deletion; only
 * the owner writes its records (plain stores), a reaper reads them after the owner died.
 */
import { readFileSync } from 'node:fs';
import { assert } from './assert.js';

export const OWNER_HEADER_WORDS = 16;
export const RECORD_WORDS = 4;
export const O_STATE = 0;
export const O_GEN = 1;
export const O_PID = 2;
export const O_THREAD_ID = 3;
export const O_RECORDS_USED = 4;
export const OF_START_TOKEN = 3;
export const OF_HEARTBEAT_MS = 4;
export const OF_HITS = 5;
export const OF_MISSES = 6;
export const OWNER_FREE = 0;
export const OWNER_LIVE = 1;
/** Record count words: views (acquire, withView, get) and explicit pins (pin/unpin). */
export const R_VIEWS = 1;
export const R_PINS = 2;

/**
 * Start time of process `pid` (field 22 of /proc/<pid>/stat, clock ticks since boot), or
 * undefined when the process does not exist or /proc is not available. Pure TS.
 */
export function readProcessStartToken(pid: number | 'self'): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // Field 2 (comm) is in parentheses and may contain spaces: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const token = Number(fields[22 - 3]);
  return Number.isFinite(token) ? token : undefined;
}

/** Owner slots and their pin records, over Int32/Float64 views of the arena. */
export class OwnerTable {
  readonly #w: Int32Array;
  readonly #f: Float64Array;
  readonly #base: number;
  readonly #count: number;
  readonly #stride: number;
  readonly #mask: number;
  readonly #limit: number;

  /**
   * @param base word index of slot 0; `recordSlots` a power of two; `limit` the most records
   * (distinct pinned blocks) an owner may hold.
   */
  constructor(w: Int32Array, f: Float64Array, base: number, count: number, recordSlots: number, limit: number) {
    assert(base % 2 === 0 && (recordSlots & (recordSlots - 1)) === 0 && limit < recordSlots, 'owner table geometry');
    this.#w = w;
    this.#f = f;
    this.#base = base;
    this.#count = count;
    this.#stride = OWNER_HEADER_WORDS + RECORD_WORDS * recordSlots;
    this.#mask = recordSlots - 1;
    this.#limit = limit;
  }

  static strideWords(recordSlots: number): number {
    return OWNER_HEADER_WORDS + RECORD_WORDS * recordSlots;
  }

  get count(): number {
    return this.#count;
  }

  slotWord(o: number): number {
    return this.#base + o * this.#stride;
  }

  /** Claims a free slot (CAS on STATE); returns its index or -1 when all are taken. */
  claim(pid: number, threadId: number, token: number, nowMs: number): number {
    const w = this.#w;
    for (let o = 0; o < this.#count; o++) {
      const s = this.slotWord(o);
      if (Atomics.compareExchange(w, s + O_STATE, OWNER_FREE, OWNER_LIVE) !== OWNER_FREE) continue;
      w[s + O_PID] = pid;
      w[s + O_THREAD_ID] = threadId;
      w[s + O_RECORDS_USED] = 0;
      w.fill(0, s + OWNER_HEADER_WORDS, s + this.#stride);
      const f = s >> 1;
      this.#f[f + OF_START_TOKEN] = token;
      this.#f[f + OF_HEARTBEAT_MS] = nowMs;
      this.#f[f + OF_HITS] = 0;
      this.#f[f + OF_MISSES] = 0;
      Atomics.add(w, s + O_GEN, 1);
      return o;
    }
    return -1;
  }

  /** Frees slot `o` (its records must have been given back already). */
  free(o: number): void {
    const s = this.slotWord(o);
    Atomics.add(this.#w, s + O_GEN, 1);
    Atomics.store(this.#w, s + O_STATE, OWNER_FREE);
  }

  isLive(o: number): boolean {
    return Atomics.load(this.#w, this.slotWord(o) + O_STATE) === OWNER_LIVE;
  }

  gen(o: number): number {
    return Atomics.load(this.#w, this.slotWord(o) + O_GEN);
  }

  pid(o: number): number {
    return this.#w[this.slotWord(o) + O_PID]!;
  }

  threadId(o: number): number {
    return this.#w[this.slotWord(o) + O_THREAD_ID]!;
  }

  startToken(o: number): number {
    return this.#f[(this.slotWord(o) >> 1) + OF_START_TOKEN]!;
  }

  heartbeatMs(o: number): number {
    return this.#f[(this.slotWord(o) >> 1) + OF_HEARTBEAT_MS]!;
  }

  heartbeat(o: number, nowMs: number): void {
    this.#f[(this.slotWord(o) >> 1) + OF_HEARTBEAT_MS] = nowMs;
  }

  addCounters(o: number, hits: number, misses: number): void {
    const f = (this.slotWord(o) >> 1);
    this.#f[f + OF_HITS] = this.#f[f + OF_HITS]! + hits;
    this.#f[f + OF_MISSES] = this.#f[f + OF_MISSES]! + misses;
  }

  hits(o: number): number {
    return this.#f[(this.slotWord(o) >> 1) + OF_HITS]!;
  }

  misses(o: number): number {
    return this.#f[(this.slotWord(o) >> 1) + OF_MISSES]!;
  }

  #home(entry: number): number {
    return (Math.imul(entry + 1, 0x9e3779b1) >>> 7) & this.#mask;
  }

  /**
   * Adds one to `which` (R_VIEWS or R_PINS) of owner `o`'s record for `entry`.
   * Returns false (and changes nothing) when the owner already holds `limit` records.
   */
  add(o: number, entry: number, which: number): boolean {
    const w = this.#w;
    const s = this.slotWord(o);
    const recs = s + OWNER_HEADER_WORDS;
    for (let i = this.#home(entry); ; i = (i + 1) & this.#mask) {
      const r = recs + i * RECORD_WORDS;
      const k = w[r]!;
      if (k === entry + 1) {
        w[r + which]!++;
        return true;
      }
      if (k === 0) {
        if (w[s + O_RECORDS_USED]! >= this.#limit) return false;
        w[r + R_VIEWS] = 0;
        w[r + R_PINS] = 0;
        w[r + which] = 1;
        w[r] = entry + 1;
        w[s + O_RECORDS_USED]!++;
        return true;
      }
    }
  }

  /** Count `which` of owner `o` for `entry` (0 when there is no record). */
  countOf(o: number, entry: number, which: number): number {
    const r = this.#find(o, entry);
    return r < 0 ? 0 : this.#w[r + which]!;
  }

  #find(o: number, entry: number): number {
    const w = this.#w;
    const recs = this.slotWord(o) + OWNER_HEADER_WORDS;
    for (let i = this.#home(entry); ; i = (i + 1) & this.#mask) {
      const r = recs + i * RECORD_WORDS;
      const k = w[r]!;
      if (k === entry + 1) return r;
      if (k === 0) return -1;
    }
  }

  /** Subtracts one from `which`; returns false when the count was already 0. */
  sub(o: number, entry: number, which: number): boolean {
    const w = this.#w;
    const r = this.#find(o, entry);
    if (r < 0 || w[r + which]! === 0) return false;
    w[r + which]!--;
    if (w[r + R_VIEWS] === 0 && w[r + R_PINS] === 0) this.#delete(o, r);
    return true;
  }

  /** Backward-shift deletion keeps probe chains intact without tombstones. */
  #delete(o: number, r: number): void {
    const w = this.#w;
    const s = this.slotWord(o);
    const recs = s + OWNER_HEADER_WORDS;
    let hole = (r - recs) / RECORD_WORDS;
    let j = hole;
    for (;;) {
      j = (j + 1) & this.#mask;
      const rj = recs + j * RECORD_WORDS;
      const k = w[rj]!;
      if (k === 0) break;
      const home = this.#home(k - 1);
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      const rh = recs + hole * RECORD_WORDS;
      w[rh] = k;
      w[rh + R_VIEWS] = w[rj + R_VIEWS]!;
      w[rh + R_PINS] = w[rj + R_PINS]!;
      hole = j;
    }
    w[recs + hole * RECORD_WORDS] = 0;
    w[s + O_RECORDS_USED]!--;
  }

  /** Calls fn(entry, views, pins) for every record of owner `o`. */
  forEachRecord(o: number, fn: (entry: number, views: number, pins: number) => void): void {
    const w = this.#w;
    const recs = this.slotWord(o) + OWNER_HEADER_WORDS;
    for (let i = 0; i <= this.#mask; i++) {
      const r = recs + i * RECORD_WORDS;
      if (w[r]! !== 0) fn(w[r]! - 1, w[r + R_VIEWS]!, w[r + R_PINS]!);
    }
  }

  /** Clears every record of owner `o`. */
  clearRecords(o: number): void {
    const s = this.slotWord(o);
    this.#w.fill(0, s + OWNER_HEADER_WORDS, s + this.#stride);
    this.#w[s + O_RECORDS_USED] = 0;
  }
}
