/**
 * Async persistence (ASYNC_THROUGH, and the master's persist command): a file's blocks are
 * written, in order, as one UFS file in the UFS pool, then the master is told; each step is
 * retried with exponential back-off. The queue and the set of not-yet-persisted blocks are kept
 * in a small durable file, so a worker restart resumes pending persists and still refuses to
 * drop blocks that exist nowhere else.
 *
 * Durable state file (`<stateDir>/worker-state.json`, version 1), replaced atomically
 * (write temp, fsync, rename, fsync dir) on every change:
 *
 *   { "version": 1,
 *     "unpersisted": [blockId, ...],       blocks of ASYNC_THROUGH files not yet in the UFS
 *     "pinned": [blockId, ...],            blocks of pinned files
 *     "jobs": [{ fileId, ufsUri, ufsPath, blockIds, lengthBytes, blockSizeBytes,
 *                stage: 'write' | 'report', attempts }] }
 *
 * Fault model: a crash before the rename keeps the previous state; a job whose UFS write
 * finished but whose state was not saved is simply written again (overwrite), which is
 * idempotent. A job whose blocks are no longer on this worker (a MEM-only worker restarted, or
 * they were dropped) is not retried: no attempt can succeed. The master is told the data is
 * gone (`lost`; it marks the file LOST unless another worker holds every block) and the job
 * is dropped. A queue opened `paused` runs nothing until resume(), so a restarted worker reports
 * only once it has registered with the master.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../core/assert.js';
import { ErrorCode, TesseraError } from '../core/errors.js';
import {
  WORKER_PERSIST_ATTEMPTS_MAX, WORKER_PERSIST_PENDING_MAX, WORKER_PERSIST_RETRY_BASE_MS, WORKER_PERSIST_RETRY_MAX_MS,
} from '../core/constants.js';
import type { PersistFileRequest } from '../transports/protocol/worker.js';

export const WORKER_STATE_VERSION = 1;
export const WORKER_STATE_FILE = 'worker-state.json';

export interface PersistJob extends PersistFileRequest {
  stage: 'write' | 'report';
  attempts: number;
}

interface StateFile {
  version: number;
  unpersisted: number[];
  pinned: number[];
  jobs: PersistJob[];
}

export interface PersistQueueOptions {
  /** Directory of the durable state file; without it the state lives in memory only. */
  stateDir?: string;
  /** Writes the file's blocks to the UFS (throws to retry). */
  write: (job: PersistJob) => Promise<void>;
  /** Tells the master (throws to retry); `lost`: the worker no longer holds some of the file's blocks. */
  report: (job: PersistJob, ok: boolean, lost?: boolean) => Promise<void>;
  /** The job's blocks that are not on this worker; a non-empty answer drops the job as lost. */
  missingBlocks?: (job: PersistJob) => number[];
  /** Called once when a job is found lost (the host logs it). */
  onLost?: (job: PersistJob, missingBlockIds: number[]) => void;
  /** Run nothing until resume() (default false). */
  paused?: boolean;
  /** Called when a job's file is in the UFS (the store clears its blocks' unpersisted flag). */
  onPersisted: (job: PersistJob) => void;
  retryBaseMs?: number;
  retryMaxMs?: number;
  attemptsMax?: number;
  onError?: (job: PersistJob, err: unknown) => void;
}

/** Back-off before attempt `attempts + 1`: base · 2^attempts, capped. Pure. */
export function persistBackoffMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempts, 30));
}

export class PersistQueue {
  readonly unpersisted = new Set<number>();
  readonly pinned = new Set<number>();
  readonly #jobs = new Map<number, PersistJob>();
  readonly #options: PersistQueueOptions;
  readonly #path: string | undefined;
  #saveChain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #dueAtMs = new Map<number, number>();
  #closed = false;
  #paused: boolean;
  /** Jobs found lost, whose report to the master has not got through yet. */
  readonly #lost = new Set<number>();
  #idleWaiters: (() => void)[] = [];

  private constructor(options: PersistQueueOptions) {
    this.#options = options;
    this.#path = options.stateDir ? join(options.stateDir, WORKER_STATE_FILE) : undefined;
    this.#paused = options.paused === true;
  }

  /** Loads the durable state (if any) and starts working on pending jobs. */
  static async open(options: PersistQueueOptions): Promise<PersistQueue> {
    const q = new PersistQueue(options);
    if (q.#path) {
      await mkdir(options.stateDir!, { recursive: true });
      let text: string | undefined;
      try {
        text = await readFile(q.#path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (text !== undefined) {
        let s: StateFile;
        try {
          s = JSON.parse(text) as StateFile;
        } catch (cause) {
          throw new TesseraError(ErrorCode.CONFIG, `Cannot read worker state ${q.#path}: not JSON`, { cause });
        }
        if (s.version !== WORKER_STATE_VERSION) throw new TesseraError(ErrorCode.CONFIG, `Cannot read worker state ${q.#path}: version ${s.version}, expected ${WORKER_STATE_VERSION}`);
        for (const id of s.unpersisted) q.unpersisted.add(id);
        for (const id of s.pinned ?? []) q.pinned.add(id);
        for (const j of s.jobs) q.#jobs.set(j.fileId, j);
      }
    }
    q.#schedule(0);
    return q;
  }

  get pendingCount(): number {
    return this.#jobs.size;
  }

  jobs(): PersistJob[] {
    return [...this.#jobs.values()];
  }

  /** Remembers block flags durably (written blocks of ASYNC_THROUGH or pinned files). */
  async markBlock(id: number, flags: { unpersisted?: boolean; pinned?: boolean }): Promise<void> {
    await this.markBlocks([id], flags);
  }

  /** markBlock for many blocks, saved once. */
  async markBlocks(ids: Iterable<number>, flags: { unpersisted?: boolean; pinned?: boolean }): Promise<void> {
    let changed = false;
    for (const id of ids) {
      if (flags.unpersisted !== undefined && flags.unpersisted !== this.unpersisted.has(id)) {
        if (flags.unpersisted) this.unpersisted.add(id); else this.unpersisted.delete(id);
        changed = true;
      }
      if (flags.pinned !== undefined && flags.pinned !== this.pinned.has(id)) {
        if (flags.pinned) this.pinned.add(id); else this.pinned.delete(id);
        changed = true;
      }
    }
    if (changed) await this.#save();
  }

  /** Forgets a block that left the worker. */
  async forgetBlock(id: number): Promise<void> {
    if (this.unpersisted.delete(id) || this.pinned.delete(id)) await this.#save();
  }

  /** Queues a file for persistence (a second request for the same file replaces the first). */
  async enqueue(req: PersistFileRequest): Promise<void> {
    if (this.#closed) throw new TesseraError(ErrorCode.CLOSED, 'Cannot queue persist: the worker is stopping');
    if (!this.#jobs.has(req.fileId) && this.#jobs.size >= WORKER_PERSIST_PENDING_MAX) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot queue persist of file ${req.fileId}: ${this.#jobs.size} pending (WORKER_PERSIST_PENDING_MAX ${WORKER_PERSIST_PENDING_MAX})`);
    }
    const job: PersistJob = {
      fileId: req.fileId, ufsUri: req.ufsUri, ufsPath: req.ufsPath, blockIds: [...req.blockIds],
      lengthBytes: req.lengthBytes, blockSizeBytes: req.blockSizeBytes, stage: 'write', attempts: 0,
    };
    this.#jobs.set(job.fileId, job);
    this.#dueAtMs.delete(job.fileId);
    this.#lost.delete(job.fileId);
    await this.#save();
    this.#schedule(0);
  }

  /** Resolves when no job is pending (tests, orderly stop). */
  idle(): Promise<void> {
    if (this.#jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Starts a queue opened `paused`. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#schedule(0);
  }

  #schedule(delayMs: number): void {
    if (this.#closed || this.#paused) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => { this.#timer = undefined; void this.#runDue(); }, delayMs);
  }

  async #runDue(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      const now = Date.now();
      for (const job of [...this.#jobs.values()]) {
        if (this.#closed) return;
        if ((this.#dueAtMs.get(job.fileId) ?? 0) > now) continue;
        await this.#step(job);
      }
    } finally {
      this.#running = false;
    }
    if (this.#jobs.size === 0) {
      for (const w of this.#idleWaiters.splice(0)) w();
      return;
    }
    const next = Math.min(...[...this.#jobs.keys()].map((id) => this.#dueAtMs.get(id) ?? 0));
    this.#schedule(Math.max(0, next - Date.now()));
  }

  async #step(job: PersistJob): Promise<void> {
    const o = this.#options;
    try {
      if (job.stage === 'write') {
        const missing = o.missingBlocks?.(job) ?? [];
        if (missing.length > 0) {
          if (!this.#lost.has(job.fileId)) {
            this.#lost.add(job.fileId);
            o.onLost?.(job, missing);
          }
          await o.report(job, false, true);
          this.#drop(job);
          await this.#save();
          return;
        }
        await o.write(job);
        job.stage = 'report';
        for (const id of job.blockIds) this.unpersisted.delete(id);
        o.onPersisted(job);
        await this.#save();
      }
      assert(job.stage === 'report', 'persist job reaches the report stage');
      await o.report(job, true);
      this.#drop(job);
      await this.#save();
    } catch (err) {
      o.onError?.(job, err);
      job.attempts++;
      if (job.attempts >= (o.attemptsMax ?? WORKER_PERSIST_ATTEMPTS_MAX)) {
        const lost = this.#lost.has(job.fileId);
        this.#drop(job);
        if (job.stage === 'write') await o.report(job, false, lost).catch(() => undefined);
        await this.#save();
        return;
      }
      this.#dueAtMs.set(job.fileId, Date.now() + persistBackoffMs(job.attempts - 1, o.retryBaseMs ?? WORKER_PERSIST_RETRY_BASE_MS, o.retryMaxMs ?? WORKER_PERSIST_RETRY_MAX_MS));
    }
  }

  #drop(job: PersistJob): void {
    this.#jobs.delete(job.fileId);
    this.#dueAtMs.delete(job.fileId);
    this.#lost.delete(job.fileId);
  }

  #save(): Promise<void> {
    const path = this.#path;
    if (!path) return Promise.resolve();
    const state: StateFile = {
      version: WORKER_STATE_VERSION, unpersisted: [...this.unpersisted], pinned: [...this.pinned], jobs: [...this.#jobs.values()],
    };
    const text = JSON.stringify(state);
    const next = this.#saveChain.then(() => writeAtomic(path, text));
    this.#saveChain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#saveChain;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dir = await open(join(path, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
