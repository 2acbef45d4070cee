/**
 * Runs a test file a second time with TESSERA_NATIVE=0, so one file covers the native path
 * and the pure-TS fallback. The child is the same compiled file; it sees
 * TESSERA_TEST_FALLBACK_CHILD=1 and does not recurse.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const isFallbackChild = process.env.TESSERA_TEST_FALLBACK_CHILD === '1';

/** Runs `fileUrl` with the native module disabled; returns its exit status and output. */
export function runUnderFallback(fileUrl: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(fileUrl)], {
    env: { ...process.env, TESSERA_NATIVE: '0', TESSERA_TEST_FALLBACK_CHILD: '1', FORCE_COLOR: '0' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
