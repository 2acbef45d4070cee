/**
 * Section 4 of bench/native.bench.ts, in its own module so that it can be run alone: would a
 * native pread/pwrite (or fallocate) beat node:fs for the SSD/HDD tier's 1-64 MiB block files?
 * Both directions against memcpy of the same size, the ceiling any read or write through the
 * page cache can reach (the kernel copies the bytes, as memcpy does):
 *   - fs.readSync of a block from a file in the page cache;
 *   - fs.writeSync over a block already in the page cache (copy + dirtying, no allocation);
 *   - a block written into a new file (unlink, open, writeSync, close): the tier's pattern of
 *     one new file per block, page allocation included, without its fsync (disk-bound, and
 *     the same syscall whoever makes it).
 * The files live in os.tmpdir() (/tmp), on the file system the SSD tier's directories use here.
 * Each row is the best of FS_ROUNDS interleaved rounds.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureThroughput, type Row } from './harness.js';

const KIB = 1024;
const MIB = 1024 * KIB;
export const FS_BLOCK_SIZES = [MIB, 64 * MIB] as const;
const FS_ROUNDS = 2;

function label(size: number): string {
  return size >= MIB ? `${size / MIB} MiB` : `${size / KIB} KiB`;
}

/**
 * `src`: at least 64 MiB of filled, 64-byte aligned bytes; `alignedBuffer(n)`: a fresh
 * 64-byte aligned Uint8Array of n bytes. Returns the rows (memcpy first for each size).
 */
export async function fsRows(src: Uint8Array, alignedBuffer: (length: number) => Uint8Array, timeMs: number): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-fs-'));
  const rows: Row[] = [];
  try {
    for (const size of FS_BLOCK_SIZES) {
      const n = label(size);
      const block = src.subarray(0, size);
      const into = alignedBuffer(size);
      const readFile = join(dir, `read-${size}`);
      const overwriteFile = join(dir, `overwrite-${size}`);
      const newFile = join(dir, `new-${size}`);
      const readFd = openSync(readFile, 'w+');
      writeSync(readFd, block, 0, size, 0);
      readSync(readFd, into, 0, size, 0); // in the page cache from here on
      const overwriteFd = openSync(overwriteFile, 'w+');
      writeSync(overwriteFd, block, 0, size, 0);
      closeSync(openSync(newFile, 'w'));
      const ceiling = `memcpy ${n} (pread/pwrite ceiling)`;
      const cases: Array<[string, () => number]> = [
        [ceiling, () => { into.set(block); return 1; }],
        [`fs.readSync ${n} (page cache)`, () => { readSync(readFd, into, 0, size, 0); return 1; }],
        [`fs.writeSync ${n} (overwrite, page cache)`, () => { writeSync(overwriteFd, block, 0, size, 0); return 1; }],
        [`fs.writeSync ${n} (new file: unlink, open, write, close)`, () => {
          unlinkSync(newFile);
          const fd = openSync(newFile, 'w');
          writeSync(fd, block, 0, size, 0);
          closeSync(fd);
          return 1;
        }],
      ];
      const best = new Map<string, number>();
      for (let round = 0; round < FS_ROUNDS; round++) {
        for (const [name, fn] of round % 2 === 0 ? cases : [...cases].reverse()) {
          best.set(name, Math.max(best.get(name) ?? 0, await measureThroughput(fn, timeMs)));
        }
      }
      for (const [name] of cases) {
        const ops = best.get(name)!;
        rows.push({
          name, opsPerSec: ops, bytesPerSec: ops * size, ...(name === ceiling ? {} : { baseline: ceiling }),
          note: `${tmpdir()}, 64-byte aligned, best of ${FS_ROUNDS}`,
        });
      }
      closeSync(readFd);
      closeSync(overwriteFd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
