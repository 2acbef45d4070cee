/**
 * Block engines of this thread (V8 isolate), by key: how a client in the same thread as a
 * worker finds the worker's SharedArrayBuffer engine to attach to. A worker whose MEM tier is
 * a SharedArrayBuffer (no /dev/shm file to name) registers its engine's handle here; its
 * answer to a short-circuit open from an inproc:// peer (which can only be in this thread)
 * names the key, and the client attaches with BlockCache.attach(handle). A key means nothing
 * in another thread or process; the worker removes it when it closes its tier.
 */
import { randomBytes } from 'node:crypto';
import type { BlockCache, BlockCacheHandle } from './block-cache.js';

/** Weakly held: an engine its owner dropped without closing is not kept alive by this map. */
const engines = new Map<string, WeakRef<BlockCache>>();

/** Registers an engine; returns the key that names it in this thread. */
export function registerIsolateEngine(cache: BlockCache): string {
  const key = `isolate-${process.pid}-${randomBytes(6).toString('hex')}`;
  engines.set(key, new WeakRef(cache));
  return key;
}

/** The handle of the engine registered under `key` in this thread, or undefined (another thread's key, closed, or gone). */
export function isolateEngine(key: string): BlockCacheHandle | undefined {
  const cache = engines.get(key)?.deref();
  if (cache === undefined || cache.closed) {
    engines.delete(key);
    return undefined;
  }
  return cache.handle;
}

export function unregisterIsolateEngine(key: string): void {
  engines.delete(key);
}
