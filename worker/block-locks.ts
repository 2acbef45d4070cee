/**
 * Block locks: many readers or one mover per block. Readers (stream reads, short-circuit
 * pins, persistence) take a shared lock; move (promote, demote), remove and evict take the
 * exclusive lock and wait until the readers are gone. A waiting exclusive request stops new
 * readers from entering (writer preference), so a stream of readers cannot starve a remove.
 *
 * Locks live in this process only: they order the worker's own operations. The engine's pins
 * (BlockCache acquire) protect the bytes of a MEM block against reuse independently.
 */
import { assert } from '../core/assert.js';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { WORKER_LOCK_WAITERS_MAX } from '../core/constants.js';

type Waiter = { exclusive: boolean; grant: () => void };

interface LockState {
  readers: number;
  exclusive: boolean;
  waiters: Waiter[];
}

export type Unlock = () => void;

export class BlockLocks {
  readonly #locks = new Map<number, LockState>();

  /** Shared lock now, or undefined when a mover holds or waits for the block. */
  tryRead(id: number): Unlock | undefined {
    const s = this.#state(id);
    if (s.exclusive || s.waiters.length > 0) {
      this.#gc(id, s);
      return undefined;
    }
    s.readers++;
    return this.#readUnlock(id, s);
  }

  /** Shared lock, waiting behind a mover. */
  async read(id: number): Promise<Unlock> {
    const now = this.tryRead(id);
    if (now) return now;
    const s = this.#state(id);
    await this.#enqueue(s, false);
    return this.#readUnlock(id, s);
  }

  /** Exclusive lock now, or undefined when anyone holds the block. */
  tryExclusive(id: number): Unlock | undefined {
    const s = this.#state(id);
    if (s.exclusive || s.readers > 0 || s.waiters.length > 0) {
      this.#gc(id, s);
      return undefined;
    }
    s.exclusive = true;
    return this.#exclusiveUnlock(id, s);
  }

  /** Exclusive lock, waiting until the readers are gone. */
  async exclusive(id: number): Promise<Unlock> {
    const now = this.tryExclusive(id);
    if (now) return now;
    const s = this.#state(id);
    await this.#enqueue(s, true);
    return this.#exclusiveUnlock(id, s);
  }

  readers(id: number): number {
    return this.#locks.get(id)?.readers ?? 0;
  }

  isLocked(id: number): boolean {
    const s = this.#locks.get(id);
    return s !== undefined && (s.readers > 0 || s.exclusive || s.waiters.length > 0);
  }

  get lockedCount(): number {
    return this.#locks.size;
  }

  #state(id: number): LockState {
    let s = this.#locks.get(id);
    if (!s) {
      s = { readers: 0, exclusive: false, waiters: [] };
      this.#locks.set(id, s);
    }
    return s;
  }

  #enqueue(s: LockState, exclusive: boolean): Promise<void> {
    if (s.waiters.length >= WORKER_LOCK_WAITERS_MAX) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot lock block: too many waiters (WORKER_LOCK_WAITERS_MAX ${WORKER_LOCK_WAITERS_MAX})`);
    }
    return new Promise<void>((resolve) => s.waiters.push({ exclusive, grant: resolve }));
  }

  #readUnlock(id: number, s: LockState): Unlock {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      assert(s.readers > 0, 'read unlock without a reader');
      s.readers--;
      this.#wake(id, s);
    };
  }

  #exclusiveUnlock(id: number, s: LockState): Unlock {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      assert(s.exclusive, 'exclusive unlock without the lock');
      s.exclusive = false;
      this.#wake(id, s);
    };
  }

  /** Grants waiters in order: one mover, or a run of readers. */
  #wake(id: number, s: LockState): void {
    while (s.waiters.length > 0 && !s.exclusive) {
      const w = s.waiters[0]!;
      if (w.exclusive) {
        if (s.readers > 0) break;
        s.waiters.shift();
        s.exclusive = true;
        w.grant();
        break;
      }
      s.waiters.shift();
      s.readers++;
      w.grant();
    }
    this.#gc(id, s);
  }

  #gc(id: number, s: LockState): void {
    if (s.readers === 0 && !s.exclusive && s.waiters.length === 0) this.#locks.delete(id);
  }
}
