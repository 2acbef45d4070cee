/**
 * An SSD or HDD tier: a list of directories, each with a quota, holding one file per block
 * named by the block id (as Tachyon does). A block is written to a temporary file, then
 * committed (fsync the file, rename it into place, fsync the directory) or aborted; readers
 * only ever see committed files. On start the tier scans its directories, removes temporary
 * files left by a crash and reports the blocks it finds.
 *
 * On-disk layout of one tier directory (version 1):
 *
 *   <dir>/<blockId>          committed block, exactly its length in bytes (decimal id)
 *   <dir>/.tmp/<blockId>     block being written; deleted on start
 *
 * Space: `usedBytes` of a directory counts committed bytes plus reservations of blocks being
 * written, so two writes never both count on the same free bytes. Which directory gets a block
 * is a pure allocation policy (allocation-policy.ts). This file does no eviction: the tiered
 * store decides what leaves a tier.
 */
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../core/assert.js';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { allocationPolicy, type AllocationPolicy, type AllocationPolicyName, type DirSpace } from './allocation-policy.js';

export const TEMP_DIR_NAME = '.tmp';
const BLOCK_FILE_RE = /^(0|[1-9][0-9]{0,15})$/;

export interface TierDirOptions {
  path: string;
  capacityBytes: number;
}

export interface FileTierOptions {
  /** 'SSD' or 'HDD' (any name; used in messages and reports). */
  alias: string;
  dirs: TierDirOptions[];
  policy?: AllocationPolicyName;
}

export interface FileBlockEntry {
  readonly id: number;
  readonly dirIndex: number;
  readonly lengthBytes: number;
  readonly path: string;
}

interface DirState {
  path: string;
  capacityBytes: number;
  committedBytes: number;
  reservedBytes: number;
}

/** A block being written into the tier. */
export class FileTempBlock {
  writtenBytes = 0;
  #closed = false;
  constructor(
    readonly id: number,
    readonly dirIndex: number,
    readonly path: string,
    readonly reservedBytes: number,
    readonly fh: FileHandle,
  ) {}

  get closed(): boolean {
    return this.#closed;
  }

  markClosed(): void {
    assert(!this.#closed, 'temp block closed twice');
    this.#closed = true;
  }
}

export class FileTier {
  readonly alias: string;
  readonly #dirs: DirState[];
  readonly #blocks = new Map<number, FileBlockEntry>();
  readonly #writing = new Set<number>();
  readonly #policy: AllocationPolicy;
  #cursor = 0;

  private constructor(options: FileTierOptions) {
    this.alias = options.alias;
    this.#policy = allocationPolicy(options.policy ?? 'maxFree');
    this.#dirs = options.dirs.map((d) => ({ path: d.path, capacityBytes: d.capacityBytes, committedBytes: 0, reservedBytes: 0 }));
  }

  /** Opens (creating directories as needed) and scans the tier; returns it with the blocks found. */
  static async open(options: FileTierOptions): Promise<FileTier> {
    if (!Array.isArray(options.dirs) || options.dirs.length === 0) {
      throw new TesseraError(ErrorCode.CONFIG, `Invalid tier ${options.alias}: dirs must list at least one directory`);
    }
    for (const d of options.dirs) {
      if (typeof d.path !== 'string' || d.path.length === 0) throw new TesseraError(ErrorCode.CONFIG, `Invalid tier ${options.alias}: a directory has no path`);
      if (!(Number.isSafeInteger(d.capacityBytes) && d.capacityBytes > 0)) {
        throw new TesseraError(ErrorCode.CONFIG, `Invalid tier ${options.alias}: capacityBytes of ${d.path} must be a positive integer (got ${d.capacityBytes})`);
      }
    }
    const tier = new FileTier(options);
    for (let i = 0; i < tier.#dirs.length; i++) await tier.#scan(i);
    return tier;
  }

  async #scan(dirIndex: number): Promise<void> {
    const dir = this.#dirs[dirIndex]!;
    await mkdir(dir.path, { recursive: true });
    await rm(join(dir.path, TEMP_DIR_NAME), { recursive: true, force: true });
    await mkdir(join(dir.path, TEMP_DIR_NAME), { recursive: true });
    for (const name of await readdir(dir.path)) {
      if (!BLOCK_FILE_RE.test(name)) continue;
      const id = Number(name);
      if (!Number.isSafeInteger(id)) continue;
      const path = join(dir.path, name);
      const st = await stat(path);
      if (!st.isFile()) continue;
      if (this.#blocks.has(id)) {
        // The same block in two directories of a tier (a crash mid-move): keep the first.
        await rm(path, { force: true });
        continue;
      }
      this.#blocks.set(id, { id, dirIndex, lengthBytes: st.size, path });
      dir.committedBytes += st.size;
    }
  }

  get capacityBytes(): number {
    return this.#dirs.reduce((s, d) => s + d.capacityBytes, 0);
  }

  /** Committed plus reserved bytes. */
  get usedBytes(): number {
    return this.#dirs.reduce((s, d) => s + d.committedBytes + d.reservedBytes, 0);
  }

  get committedBytes(): number {
    return this.#dirs.reduce((s, d) => s + d.committedBytes, 0);
  }

  get blockCount(): number {
    return this.#blocks.size;
  }

  /** The largest block this tier could ever hold (its largest directory). */
  get largestDirBytes(): number {
    return Math.max(...this.#dirs.map((d) => d.capacityBytes));
  }

  dirSpaces(): DirSpace[] {
    return this.#dirs.map((d) => ({ capacityBytes: d.capacityBytes, usedBytes: d.committedBytes + d.reservedBytes }));
  }

  has(id: number): boolean {
    return this.#blocks.has(id);
  }

  entry(id: number): FileBlockEntry | undefined {
    return this.#blocks.get(id);
  }

  entries(): IterableIterator<FileBlockEntry> {
    return this.#blocks.values();
  }

  /** Committed blocks of one directory (eviction candidates when that directory is full). */
  entriesOfDir(dirIndex: number): FileBlockEntry[] {
    return [...this.#blocks.values()].filter((e) => e.dirIndex === dirIndex);
  }

  /** The directory the policy would pick for `sizeBytes` now, or -1 (no I/O). */
  chooseDir(sizeBytes: number): number {
    return this.#policy(this.dirSpaces(), sizeBytes, this.#cursor).dirIndex;
  }

  /**
   * Reserves room and opens a temporary file; undefined when no directory has room (the
   * caller evicts and tries again). Throws BLOCK_EXISTS when the block is already here or
   * being written.
   */
  async createTemp(id: number, reserveBytes: number): Promise<FileTempBlock | undefined> {
    assert(Number.isSafeInteger(id) && id >= 0, `block id must be a non-negative safe integer: ${id}`);
    assert(Number.isSafeInteger(reserveBytes) && reserveBytes >= 0, 'reserveBytes must be a non-negative integer');
    if (this.#blocks.has(id) || this.#writing.has(id)) {
      throw new TesseraError(ErrorCode.BLOCK_EXISTS, `Cannot create block ${id}: it already exists in tier ${this.alias}`);
    }
    const choice = this.#policy(this.dirSpaces(), reserveBytes, this.#cursor);
    if (choice.dirIndex === -1) return undefined;
    this.#cursor = choice.nextCursor;
    const dir = this.#dirs[choice.dirIndex]!;
    dir.reservedBytes += reserveBytes;
    this.#writing.add(id);
    const path = join(dir.path, TEMP_DIR_NAME, String(id));
    try {
      const fh = await open(path, 'w');
      return new FileTempBlock(id, choice.dirIndex, path, reserveBytes, fh);
    } catch (err) {
      dir.reservedBytes -= reserveBytes;
      this.#writing.delete(id);
      throw new TesseraError(ErrorCode.UFS, `Cannot create block file ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async append(temp: FileTempBlock, chunk: Uint8Array): Promise<void> {
    assert(!temp.closed, 'append to a closed temp block');
    if (temp.writtenBytes + chunk.byteLength > temp.reservedBytes) {
      throw new TesseraError(ErrorCode.BLOCK_TOO_LARGE, `Cannot write block ${temp.id}: ${temp.writtenBytes + chunk.byteLength} bytes exceed the ${temp.reservedBytes} reserved`);
    }
    let off = 0;
    while (off < chunk.byteLength) {
      const { bytesWritten } = await temp.fh.write(chunk, off, chunk.byteLength - off, temp.writtenBytes + off);
      off += bytesWritten;
    }
    temp.writtenBytes += chunk.byteLength;
  }

  /** fsync, rename into place, fsync the directory; the block is visible from here on. */
  async commit(temp: FileTempBlock): Promise<FileBlockEntry> {
    assert(!temp.closed, 'commit of a closed temp block');
    temp.markClosed();
    const dir = this.#dirs[temp.dirIndex]!;
    const finalPath = join(dir.path, String(temp.id));
    try {
      await temp.fh.sync();
      await temp.fh.close();
      await rename(temp.path, finalPath);
      await fsyncDir(dir.path);
    } catch (err) {
      dir.reservedBytes -= temp.reservedBytes;
      this.#writing.delete(temp.id);
      await rm(temp.path, { force: true });
      throw new TesseraError(ErrorCode.UFS, `Cannot commit block ${temp.id} in tier ${this.alias}: ${(err as Error).message}`, { cause: err });
    }
    dir.reservedBytes -= temp.reservedBytes;
    dir.committedBytes += temp.writtenBytes;
    this.#writing.delete(temp.id);
    const entry: FileBlockEntry = { id: temp.id, dirIndex: temp.dirIndex, lengthBytes: temp.writtenBytes, path: finalPath };
    this.#blocks.set(temp.id, entry);
    assert(dir.reservedBytes >= 0, 'reserved bytes never go negative');
    return entry;
  }

  async abort(temp: FileTempBlock): Promise<void> {
    if (temp.closed) return;
    temp.markClosed();
    const dir = this.#dirs[temp.dirIndex]!;
    dir.reservedBytes -= temp.reservedBytes;
    this.#writing.delete(temp.id);
    await temp.fh.close().catch(() => undefined);
    await rm(temp.path, { force: true });
  }

  /** Writes a whole block from chunks (demotion and promotion between tiers). */
  async writeWhole(id: number, chunks: readonly Uint8Array[]): Promise<FileBlockEntry | undefined> {
    const total = chunks.reduce((s, c) => s + c.byteLength, 0);
    const temp = await this.createTemp(id, total);
    if (!temp) return undefined;
    try {
      for (const c of chunks) await this.append(temp, c);
      return await this.commit(temp);
    } catch (err) {
      await this.abort(temp);
      throw err;
    }
  }

  /** Reads `target.byteLength` bytes at `offsetBytes` of a committed block into `target`. */
  async readInto(id: number, offsetBytes: number, target: Uint8Array): Promise<void> {
    const e = this.#blocks.get(id);
    if (!e) throw new TesseraError(ErrorCode.BLOCK_NOT_FOUND, `Cannot read block ${id}: not in tier ${this.alias}`);
    assert(offsetBytes >= 0 && offsetBytes + target.byteLength <= e.lengthBytes, 'read range inside the block');
    const fh = await open(e.path, 'r');
    try {
      let done = 0;
      while (done < target.byteLength) {
        const { bytesRead } = await fh.read(target, done, target.byteLength - done, offsetBytes + done);
        if (bytesRead === 0) throw new TesseraError(ErrorCode.UFS, `Cannot read block ${id}: file ${e.path} is shorter than its recorded length`);
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }

  /** Removes a committed block; false when it is not here. */
  async remove(id: number): Promise<boolean> {
    const e = this.#blocks.get(id);
    if (!e) return false;
    this.#blocks.delete(id);
    this.#dirs[e.dirIndex]!.committedBytes -= e.lengthBytes;
    await rm(e.path, { force: true });
    return true;
  }
}

async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
