/**
 * UFS files being written through the worker (CACHE_THROUGH and THROUGH writes). A file's
 * blocks arrive one writeBlock call at a time, in order, on one client connection; their bytes
 * are appended to one UFS writer (temp file or multipart upload), synchronously before each
 * block commits, and the file becomes visible in the UFS only at `complete` (the client calls
 * completeUfsFile before completeFile). A connection that closes aborts its open files.
 *
 * These writes are streaming I/O that the UFS implementation already does asynchronously;
 * the piscina pool is for whole-block reads and whole-file persists.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import { openUfs, type UfsWriter } from '../ufs/index.js';

interface OpenFile {
  writer: UfsWriter;
  writtenBytes: number;
  owner: string;
}

export class UfsThroughWriters {
  readonly #files = new Map<string, OpenFile>();

  static key(ufsUri: string, ufsPath: string): string {
    return `${ufsUri}\u0000${ufsPath}`;
  }

  get openCount(): number {
    return this.#files.size;
  }

  /** Appends one block's bytes at `blockOffsetBytes` (must follow the bytes written so far). */
  async append(owner: string, ufsUri: string, ufsPath: string, blockOffsetBytes: number, bytes: Uint8Array): Promise<void> {
    const key = UfsThroughWriters.key(ufsUri, ufsPath);
    let f = this.#files.get(key);
    if (!f) {
      if (blockOffsetBytes !== 0) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot write ${ufsPath} through: block at offset ${blockOffsetBytes} arrived before the file's first block (blocks of a through-written file go to one worker, in order)`);
      }
      const ufs = await openUfs(ufsUri);
      f = { writer: await ufs.create(ufsPath, { overwrite: true }), writtenBytes: 0, owner };
      this.#files.set(key, f);
    }
    if (f.owner !== owner) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot write ${ufsPath} through: another client is writing it`);
    if (blockOffsetBytes !== f.writtenBytes) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot write ${ufsPath} through: block offset ${blockOffsetBytes}, expected ${f.writtenBytes}`);
    }
    await f.writer.write(bytes);
    f.writtenBytes += bytes.byteLength;
  }

  /** Makes the file visible (or drops it with `abort`). Returns its length. */
  async complete(owner: string, ufsUri: string, ufsPath: string, abort = false): Promise<number> {
    const key = UfsThroughWriters.key(ufsUri, ufsPath);
    const f = this.#files.get(key);
    if (!f || f.owner !== owner) {
      if (abort) return 0;
      // A file with no block (empty) is created here.
      const ufs = await openUfs(ufsUri);
      const w = await ufs.create(ufsPath, { overwrite: true });
      await w.close();
      return 0;
    }
    this.#files.delete(key);
    if (abort) await f.writer.abort();
    else await f.writer.close();
    return f.writtenBytes;
  }

  /** Aborts every file of an owner (its connection closed). */
  async abortOwner(owner: string): Promise<void> {
    for (const [key, f] of [...this.#files]) {
      if (f.owner !== owner) continue;
      this.#files.delete(key);
      await f.writer.abort().catch(() => undefined);
    }
  }

  async abortAll(): Promise<void> {
    for (const f of this.#files.values()) await f.writer.abort().catch(() => undefined);
    this.#files.clear();
  }
}
