/**
 * Block engines of this thread (V8 isolate), by key: how a client in the same thread as a
 * worker finds the worker's SharedArrayBuffer engine to attach to. A worker whose MEM tier is
 * a SharedArrayBuffer (no /dev/shm file to name) registers its engine's handle here; its
 * answer to a short-circuit open from an inproc:// peer (which can only be in this thread)
 * names the key, and the client attaches with BlockCache.attach(handle). A key means nothing
 * in another thread or process; the worker removes it when it closes its tier.
 */
import { randomBytes } from 'node:crypto';
import type { BlockCacheHandle } from './block-cache.js';

const engines = new Map<string, BlockCacheHandle>();

/** Registers an engine's handle; returns the key that names it in this thread. */
export function registerIsolateEngine(handle: BlockCacheHandle): string {
  const key = `isolate-${process.pid}-${randomBytes(6).toString('hex')}`;
  engines.set(key, handle);
  return key;
}

/** The handle registered under `key` in this thread, or undefined (another thread's key, or closed). */
export function isolateEngine(key: string): BlockCacheHandle | undefined {
  return engines.get(key);
}

export function unregisterIsolateEngine(key: string): void {
  engines.delete(key);
}
