/**
 * The MEM tier: the block engine (core BlockCache) over an mlocked /dev/shm arena when the
 * native module is there, or over a SharedArrayBuffer when it is not (`backing` says which).
 * Same-host clients map the shm file read-only for short-circuit reads; with a
 * SharedArrayBuffer there is no file and reads go over the stream.
 *
 * Eviction is the engine's: inline in the put that needs room, by its policy. This tier adds
 * two hooks: `canEvict` (the store vetoes blocks that must not leave memory now) and
 * `onEvict` (the store receives the victim's bytes before they are freed, and demotes them).
 * Both run inside put, under the engine's lock, so they only touch the store's own maps.
 *
 * What this file does not do: decide where evicted blocks go (tiered-store.ts does).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BlockCache, type BlockView } from '../core/block-cache.js';
import { registerIsolateEngine, unregisterIsolateEngine } from '../core/isolate-engines.js';
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';

export type MemBacking = 'shm' | 'sab';

export interface MemTierOptions {
  capacityBytes: number;
  /** 'auto' (default): shm when the native module loads, else sab. */
  backing?: 'auto' | MemBacking;
  /** Path of the shm file (default /dev/shm/tessera-worker-<pid>-<random>). */
  shmPath?: string;
  /** mlock the shm arena (default true). */
  lock?: boolean;
  policy?: 'lru' | 'sieve';
  canEvict: (id: number) => boolean;
  onEvict: (id: number, bytes: Uint8Array) => void;
}

/**
 * Arena files of this process's open MEM tiers: removed at process exit if a tier was never
 * closed (an uncaught error, process.exit), so /dev/shm does not fill with dead arenas. A
 * SIGKILL still leaves the file; the next worker started on the host removes it
 * (removeStaleArenas).
 */
const liveShmPaths = new Set<string>();
let exitHookInstalled = false;
function trackShm(path: string): void {
  liveShmPaths.add(path);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const p of liveShmPaths) {
      try { rmSync(p, { force: true }); } catch { /* best effort at exit */ }
    }
  });
}

const SHM_DIR = '/dev/shm';
const SHM_NAME_RE = /^tessera-worker-(\d+)-[0-9a-f]{8}$/;

let closedStandIn: BlockCache | undefined;
/** A closed BlockCache of the smallest size: what a closed MemTier calls (every call fails with CLOSED, as on the real one). */
function closedCache(): BlockCache {
  if (closedStandIn === undefined) {
    closedStandIn = BlockCache.create({ capacityBytes: 64 * 1024 });
    closedStandIn.close();
  }
  return closedStandIn;
}

/**
 * Removes arena files left in /dev/shm by workers that died without closing (SIGKILL): names
 * this module made (tessera-worker-<pid>-<random>) whose pid is not running. A client that
 * still maps one keeps its mapping; only the name goes. Returns the paths removed.
 */
export function removeStaleArenas(dir = SHM_DIR): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = SHM_NAME_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    try {
      rmSync(join(dir, name), { force: true });
      removed.push(join(dir, name));
    } catch { /* another worker removed it first */ }
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class MemTier {
  readonly backing: MemBacking;
  /** Why shm is not used (or not mlocked), when it is not. */
  readonly fallbackReason: string | undefined;
  readonly capacityBytes: number;
  readonly shmPath: string | undefined;
  /** For 'sab': the key under which inproc clients of this thread find the engine (core/isolate-engines.ts). */
  readonly isolateKey: string | undefined;
  /** True when the shm arena is page-locked (mlock). */
  readonly locked: boolean;
  /** The engine; once closed, a closed stand-in, so this tier (still referenced by a host the user keeps) no longer holds the arena's memory. */
  #cache: BlockCache;
  #closed = false;
  #arenaBytes: number | undefined;

  private constructor(cache: BlockCache, backing: MemBacking, capacityBytes: number, shmPath: string | undefined, fallbackReason: string | undefined, locked: boolean) {
    this.#cache = cache;
    this.locked = locked;
    this.backing = backing;
    this.capacityBytes = capacityBytes;
    this.shmPath = shmPath;
    this.fallbackReason = fallbackReason;
    if (shmPath) trackShm(shmPath);
    this.isolateKey = backing === 'sab' ? registerIsolateEngine(cache) : undefined;
  }

  static create(options: MemTierOptions): MemTier {
    if (!(Number.isSafeInteger(options.capacityBytes) && options.capacityBytes > 0)) {
      throw new TesseraError(ErrorCode.CONFIG, `Invalid MEM tier: capacityBytes must be a positive integer (got ${options.capacityBytes})`);
    }
    const want = options.backing ?? 'auto';
    const hooks = {
      canEvict: (id: number | string) => typeof id === 'number' && options.canEvict(id),
      onEvict: (id: number | string, bytes: Uint8Array) => { if (typeof id === 'number') options.onEvict(id, bytes); },
    };
    const common = { capacityBytes: options.capacityBytes, policy: options.policy ?? 'lru', ...hooks };
    let fallbackReason: string | undefined;
    if (want !== 'sab') {
      if (options.shmPath === undefined) removeStaleArenas();
      const path = options.shmPath ?? join(SHM_DIR, `tessera-worker-${process.pid}-${randomBytes(4).toString('hex')}`);
      const lock = options.lock ?? true;
      try {
        const cache = BlockCache.create({ ...common, backing: 'shm', path, lock });
        return new MemTier(cache, 'shm', options.capacityBytes, path, undefined, lock);
      } catch (err) {
        rmSync(path, { force: true });
        if (!isTesseraError(err)) throw err;
        if (lock && isTesseraError(err, ErrorCode.MEMLOCK_LIMIT)) {
          // Not allowed to page-lock this much: keep the shared file (short-circuit still
          // works), unlocked, and say why.
          const cache = BlockCache.create({ ...common, backing: 'shm', path, lock: false });
          return new MemTier(cache, 'shm', options.capacityBytes, path, `not mlocked: ${err.message}`, false);
        }
        if (want === 'shm') throw err;
        fallbackReason = `${err.code}: ${err.message}`;
      }
    }
    const cache = BlockCache.create({ ...common, backing: 'sab' });
    return new MemTier(cache, 'sab', options.capacityBytes, undefined, fallbackReason ?? 'backing sab requested', false);
  }

  /** Copies a whole block in; false when it cannot fit (everything left is pinned or vetoed). */
  put(id: number, bytes: Uint8Array): boolean {
    if (bytes.byteLength > this.capacityBytes) return false;
    return this.#cache.put(id, bytes);
  }

  acquire(id: number): BlockView | undefined {
    return this.#cache.acquire(id);
  }

  has(id: number): boolean {
    return this.#cache.has(id);
  }

  delete(id: number): boolean {
    return this.#cache.delete(id);
  }

  /** Bytes of the arena file a short-circuit client maps (shm only). */
  get arenaBytes(): number {
    const h = this.#cache.handle;
    if (h.kind !== 'shm') return 0;
    this.#arenaBytes ??= h.byteLength ?? statSync(h.path).size;
    return this.#arenaBytes;
  }

  get usedBytes(): number {
    return this.#cache.usage().usedBytes;
  }

  get blockCount(): number {
    return this.#cache.usage().blockCount;
  }

  /** Capacity, used bytes and block count in O(1) (heartbeats); stats() scans the whole table. */
  usage(): ReturnType<BlockCache['usage']> {
    return this.#cache.usage();
  }

  stats(): ReturnType<BlockCache['stats']> {
    return this.#cache.stats();
  }

  /**
   * Gives back the pins of engine owners that are gone: a same-host client process that died
   * holding blocks it pinned itself (short-circuit engine pins), or one whose lease ran out.
   * The engine scans by itself only every ownerLeaseMs / 2 (15 s); the worker calls this every
   * WORKER_LEASE_SWEEP_INTERVAL_MS. Returns how many owners were reaped.
   */
  reapDeadOwners(): number {
    return this.#closed ? 0 : this.#cache.reapDeadOwners();
  }

  ids(): number[] {
    return [...this.#cache.keys()].filter((k): k is number => typeof k === 'number');
  }

  get handle(): BlockCache['handle'] {
    return this.#cache.handle;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.isolateKey !== undefined) unregisterIsolateEngine(this.isolateKey);
    try {
      this.#cache.close();
    } finally {
      this.#cache = closedCache();
      if (this.shmPath) {
        rmSync(this.shmPath, { force: true });
        liveShmPaths.delete(this.shmPath);
      }
    }
  }
}
