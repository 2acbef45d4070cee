/**
 * The state of one component's log inside a Journal: its files, its sequence counters, its
 * group-commit queue. Plain data; journal.ts runs the loop and replay.ts fills it at open.
 *
 *   appended ──> pending[pendingHead..] ──> inflight (written, fdatasync in flight) ──> durable
 *   sequences:   durableSequence < inflight < pending <= appliedSequence
 */
import { join } from 'node:path';
import { COMPLETED_DIR, CURRENT_LOG_FILE } from './format.js';
import type { FsFile } from './fs.js';
import type { JournaledStateMachine } from './types.js';

/** Counters of one component since open, for metrics and benchmarks. */
export interface JournalStats {
  /** Entries written and fdatasynced (acknowledged, or about to be). */
  entriesWritten: number;
  /** Group-commit batches: each one write and one fdatasync. */
  batches: number;
  bytesWritten: number;
  rolls: number;
  checkpoints: number;
}

export interface Pending {
  sequence: number;
  frame: Uint8Array;
  resolve: (sequence: number) => void;
  reject: (err: unknown) => void;
}

export interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** One component's log: its files, its sequence counters and its group-commit loop. */
export class ComponentLog {
  readonly dir: string;
  readonly completedDir: string;
  readonly currentPath: string;
  /** Last sequence applied to the machine (accepted by append or replayed). */
  appliedSequence = 0;
  /** Last sequence known durable. */
  durableSequence = 0;
  /** Sequence covered by the durable checkpoint (0: none). */
  checkpointSequence = 0;
  file: FsFile | undefined;
  fileFirstSequence = 1;
  /** Where the next entry goes: the end of the last entry. */
  fileSizeBytes = 0;
  /** The file's real size: fileSizeBytes plus preallocated zeros. */
  allocatedBytes = 0;
  pending: Pending[] = [];
  pendingHead = 0;
  inflight: Pending[] = [];
  running = false;
  idleWaiters: (() => void)[] = [];
  rollAt: number | undefined;
  rollWaiters: Waiter[] = [];
  checkpointChain: Promise<void> = Promise.resolve();
  writeBuffer = new Uint8Array(64 * 1024);
  readonly stats: JournalStats = { entriesWritten: 0, batches: 0, bytesWritten: 0, rolls: 0, checkpoints: 0 };

  constructor(readonly journalDir: string, readonly machine: JournaledStateMachine) {
    this.dir = join(journalDir, machine.name);
    this.completedDir = join(this.dir, COMPLETED_DIR);
    this.currentPath = join(this.dir, CURRENT_LOG_FILE);
  }

  get name(): string { return this.machine.name; }
  get pendingCount(): number { return this.pending.length - this.pendingHead; }
}
