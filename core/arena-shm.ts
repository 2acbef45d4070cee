/**
 * ShmArena: an Arena over an mmap (MAP_SHARED) of a file, normally under /dev/shm, made by
 * the native module. Every thread and every process on the host that maps the same file
 * sees the same bytes; `lock` keeps them in RAM with mlock (the worker host's MEM tier).
 *
 * The region is an ordinary ArrayBuffer, not a SharedArrayBuffer, so V8 refuses
 * Atomics.wait on it; wait/wake are futexes without FUTEX_PRIVATE_FLAG, which the kernel
 * keys by file page, so a wake reaches waiters in other processes. (Atomics.notify would not
 * wake a futex waiter, nor the other way round: the engine only uses arena.wait/wake.)
 *
 * Lifecycle: `create` replaces any file at the path with a fresh zero-filled one (a process
 * still mapping the old file keeps its own, now unlinked, copy); `attach` maps an existing
 * file (one that is gone, because its creator closed it, is TESSERA_ERR_CLOSED naming the
 * path); `close` unmaps (idempotent) and detaches the buffer, so a view used after close reads
 * nothing instead of crashing the process, and the arena that created the file removes it
 * (processes still attached keep their mappings; the memory is freed when the last one
 * unmaps). `ShmArena.remove(path)` deletes a file left behind by a process that died.
 *
 * Fault model: a process killed while attached leaves the file and its bytes intact; pins it
 * held are the engine's business (owner slots with pid + start time, see core/block-cache.ts).
 */
import { rmSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Arena, ArenaWaitResult, ShmArenaHandle } from './arena.js';
import { ErrorCode, TesseraError } from './errors.js';
import { futexWait, futexWake, mapShared, nativeAvailable, nativeStatus, NATIVE_MAP_MAX_BYTES, unmap } from '../native/index.js';

export interface ShmArenaCreateOptions {
  /** Absolute path of the shared file, e.g. /dev/shm/tessera-cache. */
  path: string;
  /** Size of the region: a positive multiple of 8, at most NATIVE_MAP_MAX_BYTES. */
  byteLength: number;
  /** mlock the region (fails with TESSERA_ERR_MEMLOCK_LIMIT when RLIMIT_MEMLOCK is too low). */
  lock?: boolean;
}

export interface ShmArenaAttachOptions {
  lock?: boolean;
}

function checkPath(path: unknown, what: string): string {
  if (typeof path !== 'string' || path.length === 0 || !isAbsolute(path) || path.includes('\0')) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot ${what} shm arena: path must be an absolute file path (path ${String(path)})`);
  }
  return path;
}

function checkByteLength(byteLength: unknown, what: string): number {
  if (typeof byteLength !== 'number' || !Number.isSafeInteger(byteLength) || byteLength <= 0 || byteLength % 8 !== 0
    || byteLength > NATIVE_MAP_MAX_BYTES) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT,
      `Cannot ${what} shm arena: byteLength must be a positive multiple of 8 up to ${NATIVE_MAP_MAX_BYTES} (byteLength ${String(byteLength)})`);
  }
  return byteLength;
}

/** Throws NATIVE_UNAVAILABLE before anything touches the file system (no module, no shm arena). */
function checkNative(what: string): void {
  if (!nativeAvailable()) {
    throw new TesseraError(ErrorCode.NATIVE_UNAVAILABLE, `Cannot ${what} shm arena: it needs the native module (${nativeStatus().reason})`);
  }
}

/**
 * The error for an arena file that is not there: its creator closed it (close() removes the
 * file), or it never existed. TESSERA_ERR_CLOSED, like a closed SharedArrayBuffer cache's handle.
 */
function gone(path: string, cause: unknown): TesseraError {
  return new TesseraError(ErrorCode.CLOSED, `Cannot attach shm arena: ${path} does not exist (its creator closed it, or it was never created)`, { cause });
}

function isEnoent(err: unknown): boolean {
  const cause = err instanceof TesseraError ? err.cause : err;
  return typeof cause === 'object' && cause !== null && (cause as { code?: unknown }).code === 'ENOENT';
}

export class ShmArena implements Arena {
  readonly kind = 'shm' as const;
  readonly buffer: ArrayBuffer;
  readonly byteLength: number;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly handle: ShmArenaHandle;
  readonly locked: boolean;
  /** Created (not attached) here: close() removes the file. */
  readonly #owner: boolean;
  #closed = false;

  private constructor(buffer: ArrayBuffer, path: string, locked: boolean, owner: boolean) {
    this.buffer = buffer;
    this.byteLength = buffer.byteLength;
    this.u8 = new Uint8Array(buffer);
    this.i32 = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
    this.handle = { kind: 'shm', path, byteLength: buffer.byteLength };
    this.locked = locked;
    this.#owner = owner;
  }

  /** A fresh zero-filled region in a new file at `path` (an existing file there is replaced). */
  static create(options: ShmArenaCreateOptions): ShmArena {
    if (options === null || typeof options !== 'object') {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Cannot create shm arena: options must be an object');
    }
    const path = checkPath(options.path, 'create');
    const byteLength = checkByteLength(options.byteLength, 'create');
    const lock = options.lock === true;
    checkNative('create');
    rmSync(path, { force: true });
    return new ShmArena(mapShared(path, byteLength, { create: true, lock }), path, lock, true);
  }

  /**
   * Maps the file of an existing arena. `handle.byteLength` may be left out (another process
   * knows only the path); the file's size is used then.
   */
  static attach(handle: ShmArenaHandle, options: ShmArenaAttachOptions = {}): ShmArena {
    if (handle === null || typeof handle !== 'object' || handle.kind !== 'shm') {
      throw new TesseraError(ErrorCode.BAD_HANDLE, 'Cannot attach arena: handle is not a shm arena handle');
    }
    const path = checkPath(handle.path, 'attach');
    checkNative('attach');
    let byteLength = handle.byteLength;
    if (byteLength === undefined) {
      let size: number;
      try {
        size = statSync(path).size;
      } catch (cause) {
        if (isEnoent(cause)) throw gone(path, cause);
        throw new TesseraError(ErrorCode.BAD_HANDLE, `Cannot attach shm arena: ${(cause as Error).message}`, { cause });
      }
      byteLength = size - (size % 8);
    }
    checkByteLength(byteLength, 'attach');
    const lock = options.lock === true;
    let buffer: ArrayBuffer;
    try {
      buffer = mapShared(path, byteLength, { create: false, lock });
    } catch (err) {
      if (isEnoent(err)) throw gone(path, err); // removed between the stat and the open
      throw err;
    }
    return new ShmArena(buffer, path, lock, false);
  }

  /** Deletes the arena's file (attached processes keep their mappings until they close). */
  static remove(path: string): void {
    rmSync(checkPath(path, 'remove'), { force: true });
  }

  get closed(): boolean {
    return this.#closed;
  }

  wait(array: Int32Array, index: number, expected: number, timeoutMs: number): ArenaWaitResult {
    return futexWait(array, index, expected, timeoutMs);
  }

  wake(array: Int32Array, index: number, count: number): number {
    return futexWake(array, index, count);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    unmap(this.buffer);
    if (this.#owner) rmSync(this.handle.path, { force: true });
  }
}
