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
 * Not done here: payload encoding (the component's), cross-component atomicity (each component
 * has its own log and its own sequence numbers), locking the directory against a second
 * process (one master owns a journal directory).
 */
import { join } from 'node:path';
import { assert } from '../assert.js';
import { crc32c } from '../crc32c.js';
import {
  DEFAULT_JOURNAL_LOG_ROLL_BYTES, JOURNAL_CHECKPOINT_CHUNK_BYTES, JOURNAL_CHECKPOINT_WRITE_BYTES,
  JOURNAL_MAX_BATCH_BYTES, JOURNAL_MAX_ENTRY_BYTES, JOURNAL_MAX_PENDING_ENTRIES, JOURNAL_MAX_TORN_TAIL_BYTES,
  JOURNAL_PREALLOCATE_BYTES,
} from '../constants.js';
import { ErrorCode, TesseraError, isTesseraError } from '../errors.js';
import { failpoint } from './failpoints.js';
import {
  CHECKPOINT_FILE, CHECKPOINT_FRAME_HEADER_BYTES, CHECKPOINT_TEMP_FILE, COMPLETED_DIR, COMPONENT_NAME_PATTERN,
  CURRENT_LOG_FILE, ENTRY_HEADER_BYTES, LOG_HEADER_BYTES, VERSION_FILE, VERSION_PREFIX, VERSION_TEXT,
  EntryScanner, completedLogName, decodeLogHeader, encodeCheckpointHeader, encodeEntry, encodeFrameHeader,
  encodeLogHeader, parseCompletedLogName,
} from './format.js';
import { type Fs, type FsFile, isNotFound, nodeFs } from './fs.js';
import { corrupt, openCheckpoint } from './reader.js';
import type { CheckpointWriter, JournaledStateMachine, TailRecovery } from './types.js';

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

interface Pending {
  sequence: number;
  frame: Uint8Array;
  resolve: (sequence: number) => void;
  reject: (err: unknown) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

type JournalState = 'open' | 'closing' | 'closed' | 'failed';

/** One component's log: its files, its sequence counters and its group-commit loop. */
class ComponentLog {
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
  #closing: Promise<void> | undefined;

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
      for (const name of names) await removeTree(fs, join(dir, name));
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
    for (const entry of await fs.readdir(dir)) {
      const s = await fs.stat(join(dir, entry));
      if (s?.kind === 'directory' && !names.has(entry)) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot open journal: ${join(dir, entry)} holds component '${entry}' but no state machine has that name`);
      }
    }
    const ackBeforeFsync = opts.unsafeAckBeforeFsync ?? process.env.TESSERA_JOURNAL_MUTANT === 'ack-before-fsync';
    const recoveries: TailRecovery[] = [];
    const journal = new Journal(dir, fs, logRollBytes, ackBeforeFsync, recoveries);
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

// ---- open: version, replay, torn tails ----

async function checkVersion(fs: Fs, dir: string): Promise<void> {
  const s = await fs.stat(dir);
  if (s === undefined || s.kind !== 'directory') {
    throw new TesseraError(ErrorCode.JOURNAL_NOT_FORMATTED, `Cannot open journal: ${dir} does not exist; run \`tessera format\` first`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(join(dir, VERSION_FILE));
  } catch (err) {
    if (isNotFound(err)) throw new TesseraError(ErrorCode.JOURNAL_NOT_FORMATTED, `Cannot open journal: ${dir} has no ${VERSION_FILE} file; run \`tessera format\` first`);
    throw err;
  }
  const text = new TextDecoder().decode(bytes);
  if (text === VERSION_TEXT) return;
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text);
  if (text.startsWith(VERSION_PREFIX)) {
    throw new TesseraError(ErrorCode.JOURNAL_VERSION, `Cannot open journal: ${join(dir, VERSION_FILE)} says ${shown}, a format this build does not know (it knows ${JSON.stringify(VERSION_TEXT)})`);
  }
  throw new TesseraError(ErrorCode.JOURNAL_VERSION, `Cannot open journal: ${join(dir, VERSION_FILE)} holds ${shown}, not a Tessera journal version`);
}

async function ensureDir(fs: Fs, path: string, parent: string): Promise<void> {
  if ((await fs.stat(path)) !== undefined) return;
  await fs.mkdir(path);
  await fs.syncDir(parent);
}

async function replayComponent(fs: Fs, log: ComponentLog, recoveries: TailRecovery[]): Promise<void> {
  await ensureDir(fs, log.dir, log.journalDir);
  await ensureDir(fs, log.completedDir, log.dir);
  log.machine.reset();
  const temp = join(log.dir, CHECKPOINT_TEMP_FILE);
  if ((await fs.stat(temp)) !== undefined) await fs.unlink(temp);

  let checkpointSequence = 0;
  const checkpointPath = join(log.dir, CHECKPOINT_FILE);
  if ((await fs.stat(checkpointPath)) !== undefined) {
    const reader = await openCheckpoint(fs, checkpointPath);
    try {
      await log.machine.loadCheckpoint(reader.chunks());
      await reader.finish();
    } catch (err) {
      if (isTesseraError(err, ErrorCode.JOURNAL_CORRUPT)) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw corrupt(checkpointPath, reader.offsetBytes, `the state machine '${log.name}' could not load it: ${detail}`, err);
    } finally {
      await reader.close();
    }
    checkpointSequence = reader.sequence;
  }
  log.checkpointSequence = checkpointSequence;

  let last = checkpointSequence; // last sequence applied so far
  let replayedLog = false;
  const completed = [];
  for (const name of await fs.readdir(log.completedDir)) {
    const parsed = parseCompletedLogName(name);
    if (parsed === undefined) throw corrupt(join(log.completedDir, name), 0, 'unexpected file in completed/ (expected <first>-<last>.log)');
    completed.push({ name, ...parsed });
  }
  completed.sort((a, b) => a.firstSequence - b.firstSequence);
  for (const c of completed) {
    const path = join(log.completedDir, c.name);
    if (c.lastSequence <= checkpointSequence) continue; // covered by the checkpoint; removed below
    if (c.firstSequence > last + 1) throw corrupt(path, 0, `sequence gap: the journal holds entries up to ${last}, this log starts at ${c.firstSequence}`);
    if (replayedLog && c.firstSequence <= last) throw corrupt(path, 0, `sequence disorder: this log starts at ${c.firstSequence}, but the previous log already reached ${last}`);
    const bytes = await fs.readFile(path);
    const header = decodeLogHeader(bytes);
    if (!header.ok) throw corrupt(path, 0, header.reason);
    if (header.sequence !== c.firstSequence) throw corrupt(path, 8, `log header says first sequence ${header.sequence}, its name says ${c.firstSequence}`);
    let expected = c.firstSequence;
    let offset = LOG_HEADER_BYTES;
    const scanner = new EntryScanner(bytes, JOURNAL_MAX_ENTRY_BYTES);
    while (offset < bytes.length) {
      if (!scanner.decodeAt(offset)) throw corrupt(path, offset, scanner.reason);
      if (scanner.sequence !== expected) throw corrupt(path, offset, `sequence disorder: expected ${expected}, found ${scanner.sequence}`);
      if (expected > checkpointSequence) applyReplayed(log, path, offset, scanner);
      expected += 1;
      offset += scanner.frameBytes;
    }
    if (expected - 1 !== c.lastSequence) throw corrupt(path, offset, `log holds entries up to ${expected - 1}, its name says ${c.lastSequence}`);
    last = c.lastSequence;
    replayedLog = true;
  }
  await replayCurrentLog(fs, log, last, replayedLog, recoveries);
  await removeCoveredLogs(fs, log);
}

function applyReplayed(log: ComponentLog, path: string, offset: number, scanner: EntryScanner): void {
  const { sequence, type } = scanner;
  const start = offset + ENTRY_HEADER_BYTES;
  try {
    log.machine.apply({ sequence, type, payload: scanner.bytes.subarray(start, start + scanner.payloadLength) });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw corrupt(path, offset, `the state machine '${log.name}' rejected entry ${sequence} (type ${type}): ${detail}`, err);
  }
  log.appliedSequence = sequence;
}

async function replayCurrentLog(fs: Fs, log: ComponentLog, last: number, replayedLog: boolean, recoveries: TailRecovery[]): Promise<void> {
  const path = log.currentPath;
  log.appliedSequence = Math.max(log.appliedSequence, last);
  if ((await fs.stat(path)) === undefined) {
    await createCurrentLog(fs, log, last + 1);
    log.durableSequence = log.appliedSequence;
    return;
  }
  const bytes = await fs.readFile(path);
  const header = decodeLogHeader(bytes);
  if (!header.ok) {
    // The header is written and fdatasynced before any entry: a torn header has nothing after it.
    if (bytes.length > LOG_HEADER_BYTES) throw corrupt(path, 0, `${header.reason}, and the log is ${bytes.length} bytes long`);
    if (bytes.length > 0) await saveBroken(fs, log, bytes, 0, last + 1, header.reason, recoveries);
    await createCurrentLog(fs, log, last + 1);
    log.durableSequence = log.appliedSequence;
    return;
  }
  const first = header.sequence;
  if (first > last + 1) throw corrupt(path, 8, `sequence gap: the journal holds entries up to ${last}, the current log starts at ${first}`);
  if (replayedLog && first <= last) throw corrupt(path, 8, `sequence disorder: the current log starts at ${first}, but the completed logs already reached ${last}`);
  let expected = first;
  let offset = LOG_HEADER_BYTES;
  const scanner = new EntryScanner(bytes, JOURNAL_MAX_ENTRY_BYTES);
  while (offset < bytes.length) {
    if (!scanner.decodeAt(offset)) {
      // Only zeros from here: the end of the log and its preallocated space. Otherwise a crash
      // leaves at most one unsynced batch at the end: bad bytes that close to the end are a
      // torn tail; further from it, corruption of acknowledged entries.
      const dataEnd = endOfNonZero(bytes, offset);
      if (dataEnd === offset) break;
      if (dataEnd - offset > JOURNAL_MAX_TORN_TAIL_BYTES) throw corrupt(path, offset, `${scanner.reason}, and ${dataEnd - offset} bytes of data follow (more than one batch, JOURNAL_MAX_TORN_TAIL_BYTES ${JOURNAL_MAX_TORN_TAIL_BYTES})`);
      await saveBroken(fs, log, bytes.subarray(0, dataEnd), offset, first, scanner.reason, recoveries);
      break;
    }
    if (scanner.sequence !== expected) throw corrupt(path, offset, `sequence disorder: expected ${expected}, found ${scanner.sequence}`);
    if (expected > log.checkpointSequence) applyReplayed(log, path, offset, scanner);
    expected += 1;
    offset += scanner.frameBytes;
  }
  if (expected === first && first !== last + 1) {
    // No entries, and a first sequence that would not follow what was replayed: start afresh.
    await createCurrentLog(fs, log, last + 1);
    log.durableSequence = log.appliedSequence;
    return;
  }
  if (expected - 1 < last) throw corrupt(path, offset, `the current log ends at sequence ${expected - 1}, before the checkpoint and completed logs (${last})`);
  log.file = await fs.open(path, 'readwrite');
  log.fileFirstSequence = first;
  log.fileSizeBytes = offset;
  log.allocatedBytes = await log.file.sizeBytes();
  log.durableSequence = log.appliedSequence;
  assert(log.appliedSequence === Math.max(last, expected - 1), 'replay applied every entry up to the end of the current log');
}

/** Index after the last non-zero byte of bytes[from..]; `from` when there is none. */
function endOfNonZero(bytes: Uint8Array, from: number): number {
  let end = bytes.length;
  while (end > from && bytes[end - 1] === 0) end -= 1;
  return end;
}

/** Saves bytes[offset..] of the current log in a .broken file and cuts the log at offset. */
async function saveBroken(fs: Fs, log: ComponentLog, bytes: Uint8Array, offset: number, first: number, reason: string, recoveries: TailRecovery[]): Promise<void> {
  let brokenPath = join(log.dir, `current-${first}-${offset}.broken`);
  for (let n = 1; (await fs.stat(brokenPath)) !== undefined; n++) brokenPath = join(log.dir, `current-${first}-${offset}-${n}.broken`);
  const broken = await fs.open(brokenPath, 'create');
  try {
    await broken.write(bytes.subarray(offset), 0);
    await broken.datasync();
  } finally {
    await broken.close();
  }
  await fs.syncDir(log.dir);
  const current = await fs.open(log.currentPath, 'readwrite');
  try {
    await current.truncate(offset);
    await current.datasync();
  } finally {
    await current.close();
  }
  recoveries.push({ component: log.name, file: log.currentPath, offsetBytes: offset, cutBytes: bytes.length - offset, brokenFile: brokenPath, reason });
}

async function createCurrentLog(fs: Fs, log: ComponentLog, firstSequence: number): Promise<void> {
  const file = await fs.open(log.currentPath, 'truncate');
  await file.write(encodeLogHeader(firstSequence), 0);
  await file.datasync();
  await fs.syncDir(log.dir);
  log.file = file;
  log.fileFirstSequence = firstSequence;
  log.fileSizeBytes = LOG_HEADER_BYTES;
  log.allocatedBytes = LOG_HEADER_BYTES;
}

async function removeCoveredLogs(fs: Fs, log: ComponentLog): Promise<void> {
  let removed = 0;
  for (const name of await fs.readdir(log.completedDir)) {
    const parsed = parseCompletedLogName(name);
    if (parsed !== undefined && parsed.lastSequence <= log.checkpointSequence) {
      await fs.unlink(join(log.completedDir, name));
      removed += 1;
    }
  }
  if (removed > 0) await fs.syncDir(log.completedDir);
}

// ---- checkpoint writing ----

async function writeCheckpointFile(fs: Fs, path: string, sequence: number, writer: CheckpointWriter, component: string): Promise<void> {
  const file = await fs.open(path, 'truncate');
  try {
    let position = 0;
    const staged: Uint8Array[] = [];
    let stagedBytes = 0;
    const flush = async (): Promise<void> => {
      if (stagedBytes === 0) return;
      const out = staged.length === 1 ? staged[0]! : concat(staged, stagedBytes);
      await file.write(out, position);
      position += stagedBytes;
      staged.length = 0;
      stagedBytes = 0;
    };
    const stage = async (bytes: Uint8Array): Promise<void> => {
      staged.push(bytes);
      stagedBytes += bytes.length;
      if (stagedBytes >= JOURNAL_CHECKPOINT_WRITE_BYTES) await flush();
    };
    await stage(encodeCheckpointHeader(sequence));
    let runningCrc = 0;
    for await (const whole of writer) {
      if (!(whole instanceof Uint8Array)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot checkpoint '${component}': snapshot() yielded a ${typeof whole}, not a Uint8Array`);
      // A chunk above the frame limit goes out as several frames (and is read back so).
      for (let at = 0; at < whole.length; at += JOURNAL_CHECKPOINT_CHUNK_BYTES) {
        const chunk = whole.subarray(at, Math.min(whole.length, at + JOURNAL_CHECKPOINT_CHUNK_BYTES));
        await stage(encodeFrameHeader(chunk.length, crc32c(chunk)));
        // The chunk may belong to the machine: copy it if it stays staged across an await.
        await stage(stagedBytes + chunk.length >= JOURNAL_CHECKPOINT_WRITE_BYTES ? chunk : chunk.slice());
        runningCrc = crc32c(chunk, runningCrc);
      }
    }
    await stage(encodeFrameHeader(0, runningCrc));
    await flush();
    await file.datasync();
    assert(position >= CHECKPOINT_FRAME_HEADER_BYTES, 'a checkpoint has at least its header and end frame');
  } finally {
    await file.close();
  }
}

function concat(parts: Uint8Array[], totalBytes: number): Uint8Array {
  const out = new Uint8Array(totalBytes);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
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
