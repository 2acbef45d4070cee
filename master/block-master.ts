/**
 * The block master and the worker registry: which worker holds which block, and which workers
 * are alive. As in GFS, none of it is journaled: after a restart the workers' registrations
 * (full block reports) rebuild it. It does no I/O and reads time from an injected clock, so
 * lost-worker detection is tested with a fake clock.
 *
 * Fault model: a worker that misses heartbeats for `workerTimeoutMs` is LOST; its locations
 * are dropped. A heartbeat from a worker the master does not know (restart, or lost and back)
 * gets a `register` command; the worker then registers again with a full report.
 * Commands for a worker wait until its next heartbeat reply. Deletes and frees are sets of
 * block ids the worker holds (or held until the delete), so they are bounded by the blocks
 * the master knows and never dropped: a dropped delete would leak the worker's space for good.
 * A reply carries at most MAX_WORKER_COMMAND_BLOCK_IDS of each; the rest go in later replies.
 * Persist and load commands wait in a queue of MAX_WORKER_PENDING_COMMANDS (a full queue
 * refuses the new command, so its caller knows).
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_WORKER_TIMEOUT_MS, MAX_BLOCK_REPORT_ENTRIES, MAX_WORKER_COMMAND_BLOCK_IDS,
  MAX_WORKER_PENDING_COMMANDS, MAX_WORKERS,
} from '../core/constants.js';
import type {
  BlockReport, RegisterWorkerRequest, WorkerCommand, WorkerHeartbeatRequest, WorkerInfo, WorkerLocation, WorkerSummary,
} from '../transports/protocol/master.js';

export type Clock = () => number;

interface WorkerRecord {
  workerId: number;
  address: string;
  hostname: string;
  capacityBytes: number;
  usedBytes: number;
  blocks: Set<number>;
  lastHeartbeatMs: number;
  startTimeMs: number;
  live: boolean;
  pendingFree: Set<number>;
  pendingDelete: Set<number>;
  pendingOther: WorkerCommand[];
}

interface BlockRecord {
  lengthBytes: number;
  /** Worker ids holding the block (a short array: replication is small). */
  workers: number[];
}

export interface BlockMasterOptions {
  clock?: Clock;
  workerTimeoutMs?: number;
  heartbeatIntervalMs?: number;
}

function checkCount(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid ${name}: ${String(v)} (a non-negative integer)`);
  }
  return v;
}

export class BlockMaster {
  readonly clock: Clock;
  readonly workerTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  #workers = new Map<number, WorkerRecord>();
  #byAddress = new Map<string, number>();
  #blocks = new Map<number, BlockRecord>();
  #nextWorkerId = 1;
  /** Blocks that lost their last location when a worker was lost, until taken. */
  #orphaned: number[] = [];

  constructor(o: BlockMasterOptions = {}) {
    this.clock = o.clock ?? Date.now;
    this.workerTimeoutMs = o.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS;
    this.heartbeatIntervalMs = o.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    for (const [name, v] of [['workerTimeoutMs', this.workerTimeoutMs], ['heartbeatIntervalMs', this.heartbeatIntervalMs]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option ${name}: ${String(v)} (a positive integer of ms)`);
    }
  }

  get blockCount(): number { return this.#blocks.size; }

  // ---- worker calls ----------------------------------------------------------------------

  register(req: RegisterWorkerRequest): number {
    if (typeof req.address !== 'string' || req.address.length === 0) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Cannot register worker: address must be a non-empty string');
    }
    checkCount('capacityBytes', req.capacityBytes);
    checkCount('usedBytes', req.usedBytes);
    if (!Array.isArray(req.blocks) || req.blocks.length > MAX_BLOCK_REPORT_ENTRIES) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot register worker ${req.address}: blocks must be an array of at most ${MAX_BLOCK_REPORT_ENTRIES}`);
    }
    const now = this.clock();
    let id = this.#byAddress.get(req.address);
    const old = id === undefined ? undefined : this.#workers.get(id);
    if (old !== undefined) this.#dropLocations(old);
    if (id === undefined) {
      if (this.#byAddress.size >= MAX_WORKERS) throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot register worker ${req.address}: MAX_WORKERS ${MAX_WORKERS}`);
      id = this.#nextWorkerId++;
      this.#byAddress.set(req.address, id);
    }
    const w: WorkerRecord = {
      workerId: id, address: req.address, hostname: String(req.hostname ?? ''), capacityBytes: req.capacityBytes, usedBytes: req.usedBytes,
      blocks: new Set(), lastHeartbeatMs: now, startTimeMs: now, live: true,
      pendingFree: new Set(), pendingDelete: new Set(), pendingOther: old?.pendingOther ?? [],
    };
    this.#workers.set(id, w);
    for (const b of req.blocks) this.#addLocation(w, b);
    return id;
  }

  /** Records a heartbeat and returns the worker's commands; `register` when the worker is unknown or lost. */
  heartbeat(req: WorkerHeartbeatRequest): WorkerCommand[] {
    const w = this.#workers.get(req.workerId);
    if (w === undefined || !w.live) return [{ type: 'register' }];
    checkCount('capacityBytes', req.capacityBytes);
    checkCount('usedBytes', req.usedBytes);
    w.lastHeartbeatMs = this.clock();
    w.capacityBytes = req.capacityBytes;
    w.usedBytes = req.usedBytes;
    for (const b of req.addedBlocks ?? []) this.#addLocation(w, b);
    for (const id of req.removedBlocks ?? []) this.#removeLocation(w, id);
    return this.#drain(w);
  }

  /** A worker committed block `blockId` of `lengthBytes`. */
  commitBlock(workerId: number, blockId: number, lengthBytes: number): void {
    const w = this.#workers.get(workerId);
    if (w === undefined || !w.live) throw new TesseraError(ErrorCode.WORKER_NOT_FOUND, `Cannot commit block ${blockId}: worker ${workerId} is not registered`);
    this.#addLocation(w, [blockId, lengthBytes]);
  }

  /** Marks workers that missed heartbeats for the timeout as lost; returns their ids. */
  detectLostWorkers(): number[] {
    const now = this.clock();
    const lost: number[] = [];
    for (const w of this.#workers.values()) {
      if (w.live && now - w.lastHeartbeatMs > this.workerTimeoutMs) {
        w.live = false;
        for (const id of w.blocks) {
          const b = this.#blocks.get(id);
          if (b !== undefined && b.workers.length === 1 && b.workers[0] === w.workerId) this.#orphaned.push(id);
        }
        this.#dropLocations(w);
        w.pendingFree.clear();
        w.pendingDelete.clear();
        lost.push(w.workerId);
      }
    }
    return lost;
  }

  /** Blocks left with no location by lost workers since the last call (the master marks their files LOST). */
  takeOrphanedBlocks(): number[] {
    const o = this.#orphaned;
    this.#orphaned = [];
    return o;
  }

  // ---- master-side changes ---------------------------------------------------------------

  /** The blocks' files are gone: forget them and tell their workers to delete them. */
  deleteBlocks(blockIds: Iterable<number>): void {
    for (const id of blockIds) {
      const b = this.#blocks.get(id);
      if (b === undefined) continue;
      for (const wid of b.workers) {
        const w = this.#workers.get(wid)!;
        w.blocks.delete(id);
        w.pendingDelete.add(id);
      }
      this.#blocks.delete(id);
    }
  }

  /** Tells the holders of these blocks to drop them from cache; locations go when they report it. */
  freeBlocks(blockIds: Iterable<number>): number {
    let n = 0;
    for (const id of blockIds) {
      const b = this.#blocks.get(id);
      if (b === undefined) continue;
      n++;
      for (const wid of b.workers) {
        this.#workers.get(wid)!.pendingFree.add(id);
      }
    }
    return n;
  }

  queueCommand(workerId: number, cmd: WorkerCommand): void {
    const w = this.#workers.get(workerId);
    if (w === undefined || !w.live) throw new TesseraError(ErrorCode.WORKER_NOT_FOUND, `Cannot send ${cmd.type} to worker ${workerId}: it is not registered`);
    if (w.pendingOther.length >= MAX_WORKER_PENDING_COMMANDS) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot queue ${cmd.type} for worker ${workerId}: MAX_WORKER_PENDING_COMMANDS ${MAX_WORKER_PENDING_COMMANDS}`);
    }
    w.pendingOther.push(cmd);
  }

  // ---- queries ---------------------------------------------------------------------------

  blockLength(blockId: number): number | undefined { return this.#blocks.get(blockId)?.lengthBytes; }

  locations(blockId: number): WorkerLocation[] {
    const b = this.#blocks.get(blockId);
    if (b === undefined) return [];
    return b.workers.map((wid) => {
      const w = this.#workers.get(wid)!;
      return { workerId: wid, address: w.address, hostname: w.hostname, tier: 'MEM' };
    });
  }

  /** Live workers, most free space first (a pure choice for persist/load targets). */
  liveWorkerIds(): number[] {
    return [...this.#workers.values()].filter((w) => w.live)
      .sort((a, b) => (b.capacityBytes - b.usedBytes) - (a.capacityBytes - a.usedBytes) || a.workerId - b.workerId)
      .map((w) => w.workerId);
  }

  isLive(workerId: number): boolean { return this.#workers.get(workerId)?.live === true; }

  workers(): WorkerInfo[] {
    return [...this.#workers.values()].sort((a, b) => a.workerId - b.workerId).map((w) => ({
      workerId: w.workerId, address: w.address, hostname: w.hostname, state: w.live ? 'LIVE' : 'LOST',
      capacityBytes: w.capacityBytes, usedBytes: w.usedBytes, blockCount: w.blocks.size,
      lastHeartbeatMs: w.lastHeartbeatMs, startTimeMs: w.startTimeMs,
    }));
  }

  summary(): WorkerSummary {
    const s: WorkerSummary = { live: 0, lost: 0, capacityBytes: 0, usedBytes: 0 };
    for (const w of this.#workers.values()) {
      if (!w.live) { s.lost++; continue; }
      s.live++;
      s.capacityBytes += w.capacityBytes;
      s.usedBytes += w.usedBytes;
    }
    return s;
  }

  // ---- internals -------------------------------------------------------------------------

  #addLocation(w: WorkerRecord, report: BlockReport): void {
    const [blockId, lengthBytes] = report;
    checkCount('blockId', blockId);
    checkCount('lengthBytes', lengthBytes);
    let b = this.#blocks.get(blockId);
    if (b === undefined) this.#blocks.set(blockId, b = { lengthBytes, workers: [] });
    else b.lengthBytes = lengthBytes;
    if (!b.workers.includes(w.workerId)) b.workers.push(w.workerId);
    w.blocks.add(blockId);
  }

  #removeLocation(w: WorkerRecord, blockId: number): void {
    w.blocks.delete(blockId);
    const b = this.#blocks.get(blockId);
    if (b === undefined) return;
    const i = b.workers.indexOf(w.workerId);
    if (i >= 0) b.workers.splice(i, 1);
    // The block record stays without locations: its length is still known (it may be in the UFS).
  }

  #dropLocations(w: WorkerRecord): void {
    for (const id of w.blocks) this.#removeLocation(w, id);
    w.blocks.clear();
  }

  #drain(w: WorkerRecord): WorkerCommand[] {
    const out: WorkerCommand[] = [];
    if (w.pendingDelete.size > 0) out.push({ type: 'delete', blockIds: takeSome(w.pendingDelete, MAX_WORKER_COMMAND_BLOCK_IDS) });
    if (w.pendingFree.size > 0) out.push({ type: 'free', blockIds: takeSome(w.pendingFree, MAX_WORKER_COMMAND_BLOCK_IDS) });
    if (w.pendingOther.length > 0) { out.push(...w.pendingOther); w.pendingOther = []; }
    return out;
  }
}

/** Removes and returns up to `max` ids of `set`, oldest first. */
function takeSome(set: Set<number>, max: number): number[] {
  if (set.size <= max) {
    const all = [...set];
    set.clear();
    return all;
  }
  const out: number[] = [];
  for (const id of set) {
    if (out.length === max) break;
    out.push(id);
  }
  for (const id of out) set.delete(id);
  return out;
}
