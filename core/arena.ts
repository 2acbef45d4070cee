/**
 * Arena: one contiguous shared region that the block engine lives in, behind an interface so
 * that the backing can change without touching the engine.
 *
 * Two backings:
 *   - 'sab': a SharedArrayBuffer (pure TS, this file). Every worker_thread of a process that
 *     receives the handle (structured clone shares the memory) sees the same bytes.
 *   - 'shm': an mmap of a /dev/shm file (native, core/arena-shm.ts). Its region is an
 *     ArrayBuffer that is NOT a SharedArrayBuffer; V8 allows every Atomics operation on it
 *     except `Atomics.wait`, so the native module supplies futex wait/wake.
 *
 * The engine never calls `Atomics.wait`/`Atomics.notify` itself: it goes through
 * `arena.wait()` / `arena.wake()`, which each backing implements.
 *
 * What an arena does not do: it knows nothing of the layout inside the region (see
 * core/block-cache.ts for the header table) and does not zero or validate it.
 */
import { ErrorCode, TesseraError } from './errors.js';

export type ArenaKind = 'sab' | 'shm';

/** Handle of a SharedArrayBuffer arena: structured-cloneable, shares the memory. */
export interface SabArenaHandle {
  readonly kind: 'sab';
  readonly buffer: SharedArrayBuffer;
}

/**
 * Handle of a /dev/shm arena: structured-cloneable; another thread or process maps the same
 * file. Defined here so that the engine's handle type is closed; core/arena-shm.ts owns it.
 */
export interface ShmArenaHandle {
  readonly kind: 'shm';
  /** Absolute path of the shared file, e.g. /dev/shm/tessera-worker-1. */
  readonly path: string;
  /** Size of the mapping; another process that knows only the path leaves it out (the file's size is used). */
  readonly byteLength?: number;
}

export type ArenaHandle = SabArenaHandle | ShmArenaHandle;

/** Same meanings as the strings `Atomics.wait` returns. */
export type ArenaWaitResult = 'ok' | 'not-equal' | 'timed-out';

export interface Arena {
  readonly kind: ArenaKind;
  /** The whole region. For 'sab' a SharedArrayBuffer; for 'shm' an ArrayBuffer over the mapping. */
  readonly buffer: ArrayBufferLike;
  readonly byteLength: number;
  /** Views over the whole region (created once; the engine derives its views from `buffer`). */
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  /** Structured-cloneable description another thread (or process, for 'shm') attaches with. */
  readonly handle: ArenaHandle;
  readonly closed: boolean;
  /**
   * Blocks while `array[index] === expected`, at most `timeoutMs` (Infinity allowed).
   * `array` must be a view over this arena's `buffer`.
   */
  wait(array: Int32Array, index: number, expected: number, timeoutMs: number): ArenaWaitResult;
  /** Wakes up to `count` waiters on `array[index]`; returns how many were woken (if known). */
  wake(array: Int32Array, index: number, count: number): number;
  /** Drops this attachment (idempotent). For 'sab' the memory lives while any thread holds it. */
  close(): void;
}

/** Byte alignment of the region's start; every engine offset is a multiple of it. */
export const ARENA_ALIGNMENT_BYTES = 64;

/** An Arena over a SharedArrayBuffer. */
export class SabArena implements Arena {
  readonly kind = 'sab' as const;
  readonly buffer: SharedArrayBuffer;
  readonly byteLength: number;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly handle: SabArenaHandle;
  #closed = false;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.byteLength = buffer.byteLength;
    this.u8 = new Uint8Array(buffer);
    this.i32 = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
    this.handle = { kind: 'sab', buffer };
  }

  /** A new zero-filled region of `byteLength` bytes (a multiple of 8). */
  static create(byteLength: number): SabArena {
    if (!Number.isSafeInteger(byteLength) || byteLength <= 0 || byteLength % 8 !== 0) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot create arena: byteLength must be a positive multiple of 8 (byteLength ${byteLength})`);
    }
    let buffer: SharedArrayBuffer;
    try {
      buffer = new SharedArrayBuffer(byteLength);
    } catch (cause) {
      throw new TesseraError(ErrorCode.NO_SPACE, `Cannot create arena: SharedArrayBuffer allocation failed (byteLength ${byteLength})`, { cause });
    }
    return new SabArena(buffer);
  }

  static attach(handle: SabArenaHandle): SabArena {
    if (handle === null || typeof handle !== 'object' || handle.kind !== 'sab' || !(handle.buffer instanceof SharedArrayBuffer)) {
      throw new TesseraError(ErrorCode.BAD_HANDLE, 'Cannot attach arena: handle is not a SharedArrayBuffer arena handle');
    }
    return new SabArena(handle.buffer);
  }

  get closed(): boolean {
    return this.#closed;
  }

  wait(array: Int32Array, index: number, expected: number, timeoutMs: number): ArenaWaitResult {
    return Atomics.wait(array, index, expected, timeoutMs);
  }

  wake(array: Int32Array, index: number, count: number): number {
    return Atomics.notify(array, index, count);
  }

  close(): void {
    this.#closed = true;
  }
}
