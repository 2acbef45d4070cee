/**
 * `doctorReport()`: which native paths Tessera uses on this host and why, in a few lines a
 * human reads (`tessera doctor` prints it; so does `node dist/native/doctor.js`).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { crc32cImplementationName } from '../core/crc32c.js';
import { memlockLimit, nativeStatus, pageSize } from './index.js';

function bytes(n: number): string {
  if (n === Infinity) return 'unlimited';
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}

export function doctorReport(): string {
  const s = nativeStatus();
  const lines = [
    `native module: ${s.loaded ? 'loaded' : 'not loaded'} (${s.reason})`,
    `  file: ${s.path ?? 'n/a'}`,
    `crc32c: ${crc32cImplementationName()}`,
    `arenas: SharedArrayBuffer (in-process)${s.loaded ? ', /dev/shm mmap with mlock and futex (cross-process)' : '; /dev/shm arenas need the native module'}`,
    `locks: ${s.loaded ? 'futex on mmap arenas, Atomics.wait on SharedArrayBuffer' : 'spin then Atomics.wait (SharedArrayBuffer only)'}`,
  ];
  const m = memlockLimit();
  if (m) {
    lines.push(`RLIMIT_MEMLOCK: soft ${bytes(m.soft)}, hard ${bytes(m.hard)} (mlock of a larger arena needs CAP_IPC_LOCK or a higher limit)`);
    lines.push(`page size: ${pageSize()} bytes`);
  }
  if (!s.loaded && process.env.TESSERA_NATIVE !== '0') lines.push('hint: build it with `node native/build.mjs` (needs cargo)');
  return lines.join('\n');
}

function isMain(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) console.log(doctorReport());
