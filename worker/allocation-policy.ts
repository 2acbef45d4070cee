/**
 * Allocation policies: which directory of a tier receives a new block. Pure functions, no I/O
 * and no clock, so they are tested from fixtures and benchmarked alone. A policy sees each
 * directory's capacity and the bytes already used or reserved there, and the size to place;
 * it answers with a directory index, or -1 when no directory has room (the caller then evicts
 * and asks again, or falls to the next tier).
 *
 * RoundRobin keeps a cursor; the cursor is state owned by the caller and passed in and out,
 * which keeps the function pure.
 */
import { assert, assertNever } from '../core/assert.js';

export interface DirSpace {
  readonly capacityBytes: number;
  /** Committed plus reserved bytes. */
  readonly usedBytes: number;
}

export interface AllocationChoice {
  /** Index into the directory list, or -1 when nothing fits. */
  readonly dirIndex: number;
  /** Cursor to pass to the next call (only RoundRobin moves it). */
  readonly nextCursor: number;
}

export type AllocationPolicyName = 'maxFree' | 'greedy' | 'roundRobin';
export const ALLOCATION_POLICY_NAMES: readonly AllocationPolicyName[] = ['maxFree', 'greedy', 'roundRobin'];

export type AllocationPolicy = (dirs: readonly DirSpace[], sizeBytes: number, cursor: number) => AllocationChoice;

function freeBytes(d: DirSpace): number {
  return d.capacityBytes - d.usedBytes;
}

function checkInput(dirs: readonly DirSpace[], sizeBytes: number, cursor: number): void {
  assert(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0, `sizeBytes must be a non-negative integer: ${sizeBytes}`);
  assert(Number.isSafeInteger(cursor) && cursor >= 0, `cursor must be a non-negative integer: ${cursor}`);
  for (const d of dirs) assert(d.capacityBytes >= 0 && d.usedBytes >= 0, 'directory space must be non-negative');
}

/** The directory with the most free bytes (the first of equals), if the block fits there. */
export const maxFree: AllocationPolicy = (dirs, sizeBytes, cursor) => {
  checkInput(dirs, sizeBytes, cursor);
  let best = -1;
  for (let i = 0; i < dirs.length; i++) {
    if (best === -1 || freeBytes(dirs[i]!) > freeBytes(dirs[best]!)) best = i;
  }
  const dirIndex = best !== -1 && freeBytes(dirs[best]!) >= sizeBytes ? best : -1;
  return { dirIndex, nextCursor: cursor };
};

/** The first directory, in list order, where the block fits. */
export const greedy: AllocationPolicy = (dirs, sizeBytes, cursor) => {
  checkInput(dirs, sizeBytes, cursor);
  const dirIndex = dirs.findIndex((d) => freeBytes(d) >= sizeBytes);
  return { dirIndex, nextCursor: cursor };
};

/** The next directory after the cursor where the block fits; the cursor moves past it. */
export const roundRobin: AllocationPolicy = (dirs, sizeBytes, cursor) => {
  checkInput(dirs, sizeBytes, cursor);
  const n = dirs.length;
  for (let k = 0; k < n; k++) {
    const i = (cursor + k) % n;
    if (freeBytes(dirs[i]!) >= sizeBytes) return { dirIndex: i, nextCursor: (i + 1) % n };
  }
  return { dirIndex: -1, nextCursor: n === 0 ? 0 : cursor % n };
};

export function allocationPolicy(name: AllocationPolicyName): AllocationPolicy {
  switch (name) {
    case 'maxFree': return maxFree;
    case 'greedy': return greedy;
    case 'roundRobin': return roundRobin;
    default: return assertNever(name, 'allocation policy');
  }
}

/**
 * Victims for a tier without an engine of its own (SSD/HDD): least recently used first,
 * skipping blocks that may not move now, until `neededBytes` would be free. Returns the ids
 * in eviction order, or undefined when even all candidates would not free enough.
 */
export interface VictimCandidate {
  readonly id: number;
  readonly lengthBytes: number;
  readonly lastAccessTick: number;
  /** False when the block is locked by a reader or a move right now. */
  readonly movable: boolean;
}

export function chooseVictimsLru(candidates: readonly VictimCandidate[], neededBytes: number): number[] | undefined {
  assert(neededBytes >= 0, 'neededBytes must be non-negative');
  if (neededBytes === 0) return [];
  const order = candidates.filter((c) => c.movable).sort((a, b) => a.lastAccessTick - b.lastAccessTick || a.id - b.id);
  const out: number[] = [];
  let freed = 0;
  for (const c of order) {
    out.push(c.id);
    freed += c.lengthBytes;
    if (freed >= neededBytes) return out;
  }
  return undefined;
}
