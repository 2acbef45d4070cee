/**
 * The worker's pool for UFS work: a piscina pool of worker_threads running worker/ufs-task.ts,
 * so UFS reads of cache misses and async persistence never run on the event loop that serves
 * clients. `memory://` UFSes exist per thread (tests), so their tasks run inline instead.
 */
import { Piscina } from 'piscina';
import { WORKER_UFS_POOL_THREADS_MAX } from '../core/constants.js';
import { runUfsTask, type PersistPart, type UfsTask } from './ufs-task.js';

export class UfsPool {
  readonly #pool: Piscina;
  #closed = false;

  constructor(threads = WORKER_UFS_POOL_THREADS_MAX) {
    this.#pool = new Piscina({
      filename: new URL('./ufs-task.js', import.meta.url).href,
      minThreads: 0,
      maxThreads: Math.max(1, threads),
      idleTimeout: 30_000,
    });
  }

  async #run(task: UfsTask): Promise<unknown> {
    if (task.ufsUri.startsWith('memory://')) return runUfsTask(task);
    return this.#pool.run(task);
  }

  /** Bytes [offset, offset+length) of a UFS file. */
  async read(ufsUri: string, ufsPath: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const r = await this.#run({ op: 'read', ufsUri, ufsPath, offsetBytes, lengthBytes });
    return r as Uint8Array;
  }

  /** Writes the parts, in order, as one UFS file (replacing it). Returns its length. */
  async persist(ufsUri: string, ufsPath: string, parts: PersistPart[]): Promise<number> {
    return (await this.#run({ op: 'persist', ufsUri, ufsPath, parts })) as number;
  }

  get threadCount(): number {
    return this.#pool.threads.length;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.destroy();
  }
}
