/**
 * The journal: durable, ordered state changes for the master's components.
 *
 * Every change of a component is an entry. `append()` checks and encodes the entry, applies it
 * to the component's state machine synchronously (so in-memory order equals log order), queues
 * it, and resolves with its sequence number only once the entry is durable. Appends that
 * arrive while a write + fdatasync is in flight wait together and go out in the next one
 * (group commit): one write and one fdatasync per batch, per component.
 *
 * Fault model: the process may die at any instruction and the machine may lose power at any
 * moment; only what was fdatasynced (files) or fsynced (directories) survives, and an unsynced
 * write may survive in part (torn). A failed write, fdatasync, roll or directory fsync is
 * fatal: the journal enters the failed state, every unacknowledged append rejects with
 * TESSERA_ERR_JOURNAL_FAILED and so does every later one. The process is expected to exit and
 * replay (on Linux a failed fsync may have dropped dirty pages; retrying it can lie).
 * Checkpoint failures are not fatal: the logs a checkpoint would cover are removed only after
 * it is durable.
 *
 * `onFailure()` tells the owner at the moment of failure, so that it can stop serving state
 * that was applied but will never be acknowledged (the master host does; see master/host.ts).
 *
 * A second process is kept off the directory by a lock file (dir-lock.ts) taken at open and
 * released at close, on the real file system only.
 *
 * Not done here: payload encoding (the component's), cross-component atomicity (each component
 * has its own log and its own sequence numbers).
 */
import { join } from 'node:path';
import { assert } from '../assert.js';
import {
  DEFAULT_JOURNAL_LOG_ROLL_BYTES, JOURNAL_MAX_BATCH_BYTES, JOURNAL_MAX_ENTRY_BYTES, JOURNAL_MAX_PENDING_ENTRIES,
  JOURNAL_PREALLOCATE_BYTES,
} from '../constants.js';
import { ErrorCode, TesseraError } from '../errors.js';
import { writeCheckpointFile } from './checkpoint-file.js';
import { ComponentLog, type JournalStats, type Pending } from './component-log.js';
import { failpoint } from './failpoints.js';
import {
  CHECKPOINT_FILE, CHECKPOINT_TEMP_FILE, COMPONENT_NAME_PATTERN, ENTRY_HEADER_BYTES, LOG_HEADER_BYTES, VERSION_FILE,
  VERSION_TEXT, completedLogName, encodeEntry,
} from './format.js';
import { type Fs, nodeFs } from './fs.js';
import { DirLock, LOCK_FILE } from './dir-lock.js';
import { checkVersion, createCurrentLog, removeCoveredLogs, replayComponent } from './replay.js';
import type { CheckpointWriter, JournaledStateMachine, TailRecovery } from './types.js';

export type { JournalStats };

export interface JournalFormatOptions {
  fs?: Fs;
  /** Erase whatever the directory holds first. Without it, a non-empty directory is refused. */
  force?: boolean;
}

export interface JournalOpenOptions {
  fs?: Fs;
  /** The current log rolls into completed/ when a write would take it past this size. */
  logRollBytes?: number;
  /**
   * TEST ONLY. A mutant for the power-loss tests: acknowledges a batch before its fdatasync.
   * Also enabled by TESSERA_JOURNAL_MUTANT=ack-before-fsync. Never set it in production.
   */
  unsafeAckBeforeFsync?: boolean;
}

type JournalState = 'open' | 'closing' | 'closed' | 'failed';

export class Journal {
  readonly dir: string;
  /** Torn tails that open() cut off (each saved in a .broken file). Empty after a clean stop. */
  readonly recoveries: readonly TailRecovery[];
  readonly #fs: Fs;
  readonly #logRollBytes: number;
  readonly #ackBeforeFsync: boolean;
  readonly #logs = new Map<string, ComponentLog>();
  #state: JournalState = 'open';
  #failure: TesseraError | undefined;
  #failureListeners: ((failure: TesseraError) => void)[] = [];
  #closing: Promise<void> | undefined;
  /** Held from open to close on real directories (see dir-lock.ts). */
  #lock: DirLock | undefined;

  private constructor(dir: string, fs: Fs, logRollBytes: number, ackBeforeFsync: boolean, recoveries: TailRecovery[]) {
    this.dir = dir;
    this.#fs = fs;
    this.#logRollBytes = logRollBytes;
    this.#ackBeforeFsync = ackBeforeFsync;
    this.recoveries = recoveries;
  }

  /** Creates an empty journal in `dir` (created if missing): just the VERSION file. */
  static async format(dir: string, opts: JournalFormatOptions = {}): Promise<void> {
    if (typeof dir !== 'string' || dir === '') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Cannot format journal: dir must be a non-empty string');
    const fs = opts.fs ?? nodeFs;
    const existing = await fs.stat(dir);
    if (existing === undefined) {
      await fs.mkdir(dir);
    } else if (existing.kind !== 'directory') {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot format journal: ${dir} is not a directory`);
    } else {
      const names = await fs.readdir(dir);
      if (names.length > 0 && !opts.force) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot format journal: ${dir} is not empty (${names.length} entries); pass force to erase it`);
      }
      // Erasing a journal that a live process has open would corrupt it under that process.
      const lock = fs === nodeFs && names.includes(LOCK_FILE) ? DirLock.acquire(dir) : undefined;
      try {
        for (const name of names) if (name !== LOCK_FILE) await removeTree(fs, join(dir, name));
      } finally {
        lock?.release();
      }
    }
    const temp = join(dir, `${VERSION_FILE}.tmp`);
    const file = await fs.open(temp, 'truncate');
    try {
      await file.write(new TextEncoder().encode(VERSION_TEXT), 0);
      await file.datasync();
    } finally {
      await file.close();
    }
    await fs.rename(temp, join(dir, VERSION_FILE));
    await fs.syncDir(dir);
  }

  /**
   * Opens a formatted journal and replays it into `machines` (each reset first): checkpoint,
   * completed logs in order, current log. A torn tail of a current log is cut (see
   * `recoveries`); anything else wrong refuses with TESSERA_ERR_JOURNAL_CORRUPT naming the file
   * and offset. Components without a directory yet start empty.
   */
  static async open(dir: string, machines: readonly JournaledStateMachine[], opts: JournalOpenOptions = {}): Promise<Journal> {
    const fs = opts.fs ?? nodeFs;
    const logRollBytes = opts.logRollBytes ?? DEFAULT_JOURNAL_LOG_ROLL_BYTES;
    if (!Number.isSafeInteger(logRollBytes) || logRollBytes < LOG_HEADER_BYTES + ENTRY_HEADER_BYTES) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot open journal: logRollBytes must be an integer >= ${LOG_HEADER_BYTES + ENTRY_HEADER_BYTES} (got ${String(logRollBytes)})`);
    }
    const names = new Set<string>();
    for (const m of machines) {
      if (typeof m?.name !== 'string' || !COMPONENT_NAME_PATTERN.test(m.name)) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot open journal: machine name ${JSON.stringify(m?.name)} must match ${COMPONENT_NAME_PATTERN}`);
      }
      if (names.has(m.name)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot open journal: two machines are named '${m.name}'`);
      names.add(m.name);
    }
    await checkVersion(fs, dir);
    const lock = fs === nodeFs ? DirLock.acquire(dir) : undefined;
    try {
      return await Journal.#openLocked(dir, machines, opts, fs, logRollBytes, names, lock);
    } catch (err) {
      lock?.release();
      throw err;
    }
  }

  static async #openLocked(dir: string, machines: readonly JournaledStateMachine[], opts: JournalOpenOptions, fs: Fs,
    logRollBytes: number, names: Set<string>, lock: DirLock | undefined): Promise<Journal> {
    for (const entry of await fs.readdir(dir)) {
      const s = await fs.stat(join(dir, entry));
      if (s?.kind === 'directory' && !names.has(entry)) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot open journal: ${join(dir, entry)} holds component '${entry}' but no state machine has that name`);
      }
    }
    const ackBeforeFsync = opts.unsafeAckBeforeFsync ?? process.env.TESSERA_JOURNAL_MUTANT === 'ack-before-fsync';
    const recoveries: TailRecovery[] = [];
    const journal = new Journal(dir, fs, logRollBytes, ackBeforeFsync, recoveries);
    journal.#lock = lock;
    try {
      for (const machine of machines) {
        const log = new ComponentLog(dir, machine);
        journal.#logs.set(machine.name, log);
        await replayComponent(fs, log, recoveries);
      }
    } catch (err) {
      for (const log of journal.#logs.values()) await log.file?.close().catch(() => undefined);
      throw err;
    }
    return journal;
  }

  /**
   * Appends one entry to `component`'s log. Synchronously: checks the arguments, applies the
   * entry to the machine (if `apply` throws, nothing is written and the error is rethrown) and
   * queues it. Errors found before the entry is accepted are thrown synchronously (bad
   * argument, unknown component, JOURNAL_CLOSED, JOURNAL_FAILED, the machine's own error).
   * The promise resolves with the entry's sequence number once it is durable, or rejects with
   * JOURNAL_FAILED if the write or fdatasync failed.
   */
  append(component: string, type: number, payload: Uint8Array): Promise<number> {
    this.#checkUsable('append');
    const log = this.#logs.get(component);
    if (log === undefined) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot append: no component named ${JSON.stringify(component)}`);
    if (!Number.isInteger(type) || type < 0 || type > 0xffff_ffff) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot append to '${component}': type must be a u32 (got ${String(type)})`);
    }
    if (!(payload instanceof Uint8Array)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot append to '${component}': payload must be a Uint8Array`);
    if (payload.length > JOURNAL_MAX_ENTRY_BYTES) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot append to '${component}': payload is ${payload.length} bytes (JOURNAL_MAX_ENTRY_BYTES ${JOURNAL_MAX_ENTRY_BYTES})`);
    }
    if (log.pendingCount >= JOURNAL_MAX_PENDING_ENTRIES) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot append to '${component}': ${log.pendingCount} entries wait for the disk (JOURNAL_MAX_PENDING_ENTRIES ${JOURNAL_MAX_PENDING_ENTRIES})`);
    }
    const sequence = log.appliedSequence + 1;
    const frame = encodeEntry(sequence, type, payload);
    log.machine.apply({ sequence, type, payload: frame.subarray(ENTRY_HEADER_BYTES) });
    log.appliedSequence = sequence;
    return new Promise<number>((resolve, reject) => {
      log.pending.push({ sequence, frame, resolve, reject });
      this.#kick(log);
    });
  }

  /**
   * Writes a checkpoint of one component (or of all, in turn) and removes the logs it covers.
   * The snapshot is taken synchronously at the current sequence; appends continue meanwhile.
   * Resolves once the checkpoint is durable. Checkpoints of one component run one at a time.
   */
  checkpoint(component?: string): Promise<void> {
    try {
      this.#checkUsable('checkpoint');
    } catch (err) {
      return Promise.reject(err);
    }
    if (component === undefined) {
      const all = [...this.#logs.values()].map((log) => this.#startCheckpoint(log));
      return Promise.all(all).then(() => undefined);
    }
    const log = this.#logs.get(component);
    if (log === undefined) return Promise.reject(new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot checkpoint: no component named ${JSON.stringify(component)}`));
    return this.#startCheckpoint(log);
  }

  /** Snapshots now (synchronously), then writes after the component's earlier checkpoints. */
  #startCheckpoint(log: ComponentLog): Promise<void> {
    const sequence = log.appliedSequence;
    let writer: CheckpointWriter;
    try {
      writer = log.machine.snapshot();
    } catch (err) {
      return Promise.reject(err);
    }
    const run = log.checkpointChain.then(() => this.#checkpointOne(log, sequence, writer));
    log.checkpointChain = run.catch(() => undefined);
    return run;
  }

  /** Last sequence applied to `component` (acknowledged or not yet). 0 when empty. */
  lastSequence(component: string): number {
    return this.#log(component).appliedSequence;
  }

  /** Last sequence of `component` known durable. */
  durableSequence(component: string): number {
    return this.#log(component).durableSequence;
  }

  /** Sequence covered by `component`'s checkpoint; 0 when it has none. */
  checkpointSequence(component: string): number {
    return this.#log(component).checkpointSequence;
  }

  /** Counters of `component` since open (a copy). */
  stats(component: string): JournalStats {
    return { ...this.#log(component).stats };
  }

  /** The error that made the journal fail, if it has. */
  get failure(): TesseraError | undefined {
    return this.#failure;
  }

  /**
   * Calls `listener` once with the JOURNAL_FAILED error when the journal fails: synchronously,
   * before any unacknowledged append's promise rejects; on a microtask if it has failed already.
   * A listener that throws is a bug: the error is rethrown as an uncaught exception.
   */
  onFailure(listener: (failure: TesseraError) => void): void {
    if (typeof listener !== 'function') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Cannot watch the journal: listener must be a function');
    const failure = this.#failure;
    if (failure !== undefined) queueMicrotask(() => listener(failure));
    else this.#failureListeners.push(listener);
  }

  /**
   * Waits for queued appends and checkpoints to finish, then closes the files. Idempotent.
   * New appends throw JOURNAL_CLOSED from the moment it is called.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#state === 'open') this.#state = 'closing';
    this.#closing = (async () => {
      for (const log of this.#logs.values()) {
        await log.checkpointChain;
        if (log.running) await new Promise<void>((resolve) => log.idleWaiters.push(resolve));
      }
      for (const log of this.#logs.values()) {
        const file = log.file;
        log.file = undefined;
        if (file) await file.close().catch(() => undefined);
      }
      if (this.#state === 'closing') this.#state = 'closed';
      this.#lock?.release();
    })();
    return this.#closing;
  }

  #log(component: string): ComponentLog {
    const log = this.#logs.get(component);
    if (log === undefined) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `No journal component named ${JSON.stringify(component)}`);
    return log;
  }

  #checkUsable(what: string, allowClosing = false): void {
    if (this.#state === 'closing' && allowClosing) return;
    if (this.#state === 'failed') {
      throw new TesseraError(ErrorCode.JOURNAL_FAILED, `Cannot ${what}: the journal has failed: ${this.#failure?.message ?? 'unknown'}`, { cause: this.#failure });
    }
    if (this.#state !== 'open') throw new TesseraError(ErrorCode.JOURNAL_CLOSED, `Cannot ${what}: the journal is closed`);
  }

  #kick(log: ComponentLog): void {
    if (log.running) return;
    log.running = true;
    // A microtask, so that appends made in the same synchronous run join the first batch.
    queueMicrotask(() => { void this.#run(log); });
  }

  /** The group-commit loop of one component: at most one runs per component. */
  async #run(log: ComponentLog): Promise<void> {
    try {
      while (this.#state !== 'failed') {
        const batch = this.#takeBatch(log);
        if (batch.length > 0) {
          await this.#writeBatch(log, batch);
          continue;
        }
        if (log.rollAt !== undefined) {
          assert(log.durableSequence >= log.rollAt, 'a roll waits for the entries it covers');
          if (log.fileFirstSequence <= log.rollAt) await this.#roll(log);
          log.rollAt = undefined;
          const waiters = log.rollWaiters;
          log.rollWaiters = [];
          for (const w of waiters) w.resolve();
          continue;
        }
        break;
      }
    } catch (err) {
      this.#fail(log, err);
    } finally {
      log.running = false;
      const waiters = log.idleWaiters;
      log.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  #takeBatch(log: ComponentLog): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    while (log.pendingHead < log.pending.length) {
      const p = log.pending[log.pendingHead]!;
      if (log.rollAt !== undefined && p.sequence > log.rollAt) break;
      if (batch.length > 0 && bytes + p.frame.length > JOURNAL_MAX_BATCH_BYTES) break;
      batch.push(p);
      bytes += p.frame.length;
      log.pendingHead += 1;
    }
    if (log.pendingHead === log.pending.length) {
      log.pending = [];
      log.pendingHead = 0;
    } else if (log.pendingHead > 4096 && log.pendingHead * 2 > log.pending.length) {
      log.pending = log.pending.slice(log.pendingHead);
      log.pendingHead = 0;
    }
    return batch;
  }

  async #writeBatch(log: ComponentLog, batch: Pending[]): Promise<void> {
    log.inflight = batch;
    let bytes = 0;
    for (const p of batch) bytes += p.frame.length;
    const first = batch[0]!;
    const last = batch[batch.length - 1]!;
    assert(first.sequence === log.durableSequence + 1, `batch starts at ${first.sequence}, after durable ${log.durableSequence}`);
    assert(last.sequence === first.sequence + batch.length - 1, 'a batch holds consecutive sequences');
    if (log.fileSizeBytes > LOG_HEADER_BYTES && log.fileSizeBytes + bytes > this.#logRollBytes) await this.#roll(log);
    // Past the preallocated zeros, the same write extends the file by another step of zeros.
    const end = log.fileSizeBytes + bytes;
    const writeBytes = end <= log.allocatedBytes ? bytes
      : Math.max(end, Math.min(end + JOURNAL_PREALLOCATE_BYTES, this.#logRollBytes)) - log.fileSizeBytes;
    if (log.writeBuffer.length < writeBytes) log.writeBuffer = new Uint8Array(Math.max(writeBytes, log.writeBuffer.length * 2));
    let offset = 0;
    for (const p of batch) {
      log.writeBuffer.set(p.frame, offset);
      offset += p.frame.length;
    }
    if (writeBytes > bytes) log.writeBuffer.fill(0, bytes, writeBytes);
    const file = log.file;
    assert(file !== undefined, 'the current log is open');
    await file.write(log.writeBuffer.subarray(0, writeBytes), log.fileSizeBytes);
    failpoint('after-write');
    if (this.#ackBeforeFsync) this.#acknowledge(log, batch); // the mutant: acknowledged, not durable
    failpoint('fsync-eio');
    await file.datasync();
    failpoint('after-fsync');
    log.fileSizeBytes += bytes;
    log.allocatedBytes = Math.max(log.allocatedBytes, log.fileSizeBytes - bytes + writeBytes);
    log.durableSequence = last.sequence;
    log.stats.entriesWritten += batch.length;
    log.stats.batches += 1;
    log.stats.bytesWritten += bytes;
    log.inflight = [];
    if (!this.#ackBeforeFsync) this.#acknowledge(log, batch);
  }

  #acknowledge(_log: ComponentLog, batch: Pending[]): void {
    for (const p of batch) p.resolve(p.sequence);
  }

  /** Moves a non-empty current log into completed/ and starts a new one. */
  async #roll(log: ComponentLog): Promise<void> {
    if (log.durableSequence < log.fileFirstSequence) return; // nothing in it
    const file = log.file;
    assert(file !== undefined, 'the current log is open');
    log.file = undefined;
    if (log.allocatedBytes > log.fileSizeBytes) {
      await file.truncate(log.fileSizeBytes); // a completed log ends at its last entry
      await file.datasync();
    }
    await file.close();
    const name = completedLogName(log.fileFirstSequence, log.durableSequence);
    await this.#fs.rename(log.currentPath, join(log.completedDir, name));
    await this.#fs.syncDir(log.completedDir);
    await this.#fs.syncDir(log.dir);
    failpoint('after-roll-rename');
    await createCurrentLog(this.#fs, log, log.durableSequence + 1);
    log.stats.rolls += 1;
  }

  async #checkpointOne(log: ComponentLog, sequence: number, writer: CheckpointWriter): Promise<void> {
    this.#checkUsable('checkpoint', true); // one asked for before close() still completes
    if (sequence <= log.checkpointSequence) return;
    // Roll so that the current log holds nothing the checkpoint covers; this also waits until
    // every entry up to `sequence` is durable: a checkpoint never holds an unacknowledged entry.
    await new Promise<void>((resolve, reject) => {
      if (log.durableSequence >= sequence && log.fileFirstSequence > sequence) return resolve();
      log.rollAt = Math.max(log.rollAt ?? 0, sequence);
      log.rollWaiters.push({ resolve, reject });
      this.#kick(log);
    });
    this.#checkUsable('checkpoint', true);
    const temp = join(log.dir, CHECKPOINT_TEMP_FILE);
    try {
      await writeCheckpointFile(this.#fs, temp, sequence, writer, log.name);
    } catch (err) {
      await this.#fs.unlink(temp).catch(() => undefined);
      throw err;
    }
    await this.#fs.rename(temp, join(log.dir, CHECKPOINT_FILE));
    failpoint('after-checkpoint-rename');
    await this.#fs.syncDir(log.dir);
    log.checkpointSequence = sequence;
    log.stats.checkpoints += 1;
    await removeCoveredLogs(this.#fs, log);
  }

  #fail(log: ComponentLog, err: unknown): void {
    if (this.#state !== 'failed') {
      const detail = err instanceof Error ? err.message : String(err);
      this.#failure = new TesseraError(ErrorCode.JOURNAL_FAILED, `Journal failed: writing ${log.currentPath} failed: ${detail}; nothing more is acknowledged, restart to replay`, { cause: err });
      this.#state = 'failed';
      const listeners = this.#failureListeners;
      this.#failureListeners = [];
      for (const listener of listeners) {
        try {
          listener(this.#failure);
        } catch (listenerErr) {
          queueMicrotask(() => { throw listenerErr; });
        }
      }
    }
    const failure = this.#failure!;
    for (const other of this.#logs.values()) {
      const rejected = [...other.inflight, ...other.pending.slice(other.pendingHead)];
      other.inflight = [];
      other.pending = [];
      other.pendingHead = 0;
      for (const p of rejected) p.reject(failure);
      const waiters = other.rollWaiters;
      other.rollWaiters = [];
      other.rollAt = undefined;
      for (const w of waiters) w.reject(failure);
    }
  }
}

async function removeTree(fs: Fs, path: string): Promise<void> {
  const s = await fs.stat(path);
  if (s === undefined) return;
  if (s.kind === 'directory') {
    for (const name of await fs.readdir(path)) await removeTree(fs, join(path, name));
    await fs.rmdir(path);
  } else {
    await fs.unlink(path);
  }
}
