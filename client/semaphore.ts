/**
 * A counting semaphore with FIFO waiters and no timeout (what it guards, RPC calls and
 * streams, end or fail on their own deadlines). The client keeps its calls and streams per
 * connection below the transport's limits with it, so any number of concurrent API calls
 * queue here instead of failing with TESSERA_ERR_LIMIT_EXCEEDED at the RPC layer.
 */
import { assert } from '../core/assert.js';

export class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];

  constructor(count: number) {
    assert(Number.isInteger(count) && count > 0, 'a semaphore has a positive count');
    this.#free = count;
  }

  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }

  /** Runs `fn` holding one unit. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
