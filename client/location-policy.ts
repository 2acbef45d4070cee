/**
 * Location policies: which worker receives a new block, and in which order a reader tries the
 * copies of a block. Pure functions (no I/O, no clock, no hidden state): the round-robin
 * cursor is passed in by the caller, so every decision replays from its inputs and is tested
 * from fixtures.
 *
 * Write placement (Alluxio's names):
 *   LocalFirst          the worker on the client's host when it can hold the block, then the
 *                       others by most free space (default)
 *   MostAvailableFirst  the worker with the most free bytes first
 *   RoundRobin          eligible workers in id order, rotated by the caller's cursor
 *   SpecificHost        only the workers on one named host
 * Every policy returns an ordering, not one choice: the writer moves on to the next worker
 * when one fails. A worker is eligible when its capacity can hold one block at all (a full
 * worker evicts to make room); eligible workers come first, ordered by the policy; the
 * others follow by free space, so a cluster of small workers still takes small files.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';

export const LOCATION_POLICIES = ['LocalFirst', 'MostAvailableFirst', 'RoundRobin', 'SpecificHost'] as const;
export type LocationPolicyName = (typeof LOCATION_POLICIES)[number];
export const DEFAULT_LOCATION_POLICY: LocationPolicyName = 'LocalFirst';

/** What a policy knows about a worker. */
export interface WorkerCandidate {
  /** Stable worker id (the master's). */
  id: number;
  /** Host name or address the worker runs on; compared with the client's host. */
  host: string;
  capacityBytes: number;
  usedBytes: number;
}

export interface PlacementContext {
  /** The client's host names/addresses (a client may be known under several). */
  clientHosts: readonly string[];
  /** Size of the block to place. */
  blockSizeBytes: number;
  /** RoundRobin cursor; the caller increments it after each placement. */
  cursor: number;
  /** SpecificHost: the host to write to. */
  host?: string;
}

export interface LocationPolicySpec {
  policy: LocationPolicyName;
  /** Required for SpecificHost. */
  host?: string;
}

/** Accepts `'RoundRobin'`, `{ policy: 'SpecificHost', host }` or `'SpecificHost:host'`. */
export function parseLocationPolicy(value: unknown, option = 'locationPolicy'): LocationPolicySpec {
  if (value === undefined) return { policy: DEFAULT_LOCATION_POLICY };
  let policy: unknown = value;
  let host: unknown;
  if (typeof value === 'string' && value.includes(':')) {
    const i = value.indexOf(':');
    policy = value.slice(0, i);
    host = value.slice(i + 1);
  } else if (typeof value === 'object' && value !== null) {
    policy = (value as { policy?: unknown }).policy;
    host = (value as { host?: unknown }).host;
  }
  const found = LOCATION_POLICIES.find((p) => typeof policy === 'string' && p.toLowerCase() === policy.toLowerCase());
  if (!found) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option ${option}: expected one of ${LOCATION_POLICIES.join(', ')} (got ${JSON.stringify(value)})`);
  }
  if (found === 'SpecificHost') {
    if (typeof host !== 'string' || host.length === 0) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option ${option}: SpecificHost needs a host, e.g. { policy: 'SpecificHost', host: '10.0.0.5' } or 'SpecificHost:10.0.0.5'`);
    }
    return { policy: found, host };
  }
  return { policy: found };
}

export function freeBytes(w: WorkerCandidate): number {
  return Math.max(0, w.capacityBytes - w.usedBytes);
}

function byMostFree(a: WorkerCandidate, b: WorkerCandidate): number {
  return freeBytes(b) - freeBytes(a) || a.id - b.id;
}

function byId(a: WorkerCandidate, b: WorkerCandidate): number {
  return a.id - b.id;
}

export function isLocal(w: { host: string }, clientHosts: readonly string[]): boolean {
  return clientHosts.includes(w.host);
}

/**
 * The workers to try for a new block, best first. Empty when no worker qualifies (no
 * workers, or SpecificHost names a host with none).
 */
export function orderWorkersForWrite(policy: LocationPolicyName, workers: readonly WorkerCandidate[], ctx: PlacementContext): WorkerCandidate[] {
  const pool = policy === 'SpecificHost' ? workers.filter((w) => w.host === ctx.host) : [...workers];
  const eligible = pool.filter((w) => w.capacityBytes >= ctx.blockSizeBytes);
  const rest = pool.filter((w) => w.capacityBytes < ctx.blockSizeBytes).sort(byMostFree);
  let ordered: WorkerCandidate[];
  switch (policy) {
    case 'LocalFirst': {
      const local = eligible.filter((w) => isLocal(w, ctx.clientHosts)).sort(byMostFree);
      const remote = eligible.filter((w) => !isLocal(w, ctx.clientHosts)).sort(byMostFree);
      ordered = [...local, ...remote];
      break;
    }
    case 'MostAvailableFirst':
    case 'SpecificHost':
      ordered = eligible.sort(byMostFree);
      break;
    case 'RoundRobin': {
      const sorted = eligible.sort(byId);
      const n = sorted.length;
      const start = n === 0 ? 0 : ((ctx.cursor % n) + n) % n;
      ordered = [...sorted.slice(start), ...sorted.slice(0, start)];
      break;
    }
    default: {
      const never: never = policy;
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Unknown location policy ${String(never)}`);
    }
  }
  return [...ordered, ...rest];
}

/** A copy of a block a reader may use. */
export interface BlockSource {
  workerId: number;
  host: string;
}

/**
 * The order in which a reader tries the copies of a block: copies on the client's host
 * first (short-circuit), then the remote ones rotated by the cursor so that many readers
 * spread over the copies; workers that already failed this read go last (still tried: they
 * may have been a transient failure, and the retry budget is bounded by the caller).
 */
export function orderSourcesForRead<T extends BlockSource>(sources: readonly T[], clientHosts: readonly string[], cursor: number, failedWorkerIds: ReadonlySet<number> = new Set()): T[] {
  const fresh = sources.filter((s) => !failedWorkerIds.has(s.workerId));
  const failed = sources.filter((s) => failedWorkerIds.has(s.workerId));
  const local = fresh.filter((s) => isLocal(s, clientHosts));
  const remote = fresh.filter((s) => !isLocal(s, clientHosts)).sort((a, b) => a.workerId - b.workerId);
  const n = remote.length;
  const start = n === 0 ? 0 : ((cursor % n) + n) % n;
  return [...local, ...remote.slice(start), ...remote.slice(0, start), ...failed];
}
