/**
 * Helpers shared by the worker tests that run real hosts: deterministic block contents and
 * polling for a condition that a heartbeat or a background task makes true; a per-test
 * scratch directory with clean-ups.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'uvu';
import { RpcClient } from '../../transports/rpc-client.js';

/**
 * `len` bytes that depend on `seed` and on the position, so that misplaced bytes show: the
 * i >> 8 and i >> 16 terms keep a piece moved by a multiple of 256 bytes from matching.
 */
export function pattern(seed: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 131 + i * 7 + (i >> 8) * 13 + (i >> 16) * 29) & 0xff;
  return b;
}

/** Polls `cond` every 20 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A fresh directory per test and the clean-ups it registered, undone in reverse order after
 * each test of `t` (hosts stopped, clients closed), then the directory removed.
 */
export function perTestScratch(t: Test, prefix: string): {
  dir: (...parts: string[]) => string;
  defer: (cleanup: () => Promise<unknown>) => void;
  rpc: (address: string) => Promise<RpcClient>;
} {
  let root = '';
  const cleanups: (() => Promise<unknown>)[] = [];
  t.before.each(async () => { root = await mkdtemp(join(tmpdir(), prefix)); });
  t.after.each(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });
  const defer = (cleanup: () => Promise<unknown>): void => { cleanups.push(cleanup); };
  return {
    dir: (...parts) => join(root, ...parts),
    defer,
    rpc: async (address) => {
      const c = await RpcClient.connect(address);
      defer(() => c.close());
      return c;
    },
  };
}
