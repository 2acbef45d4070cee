/**
 * The file system seam of the journal. `Fs` is the handful of operations the journal needs,
 * with durability made explicit: `FsFile.datasync()` makes a file's bytes durable and
 * `Fs.syncDir()` makes a directory's entries (creates, renames, unlinks) durable. Nothing else
 * is assumed durable. Two implementations: `nodeFs` (node:fs/promises, real fdatasync and
 * directory fsync) and `SimFs` (core/journal/sim-fs.ts, in memory, for power-loss tests).
 *
 * Errors: a missing path throws an error whose `code` is 'ENOENT' (as node:fs does);
 * `isNotFound()` tests for it.
 */
import { open, readdir, stat, mkdir, rename, unlink, rmdir, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/**
 * How a file is opened:
 * - 'read': existing file, read only.
 * - 'readwrite': existing file, read and write.
 * - 'create': new file, read and write; fails if it exists (O_EXCL).
 * - 'truncate': create or truncate to zero, read and write.
 */
export type FsOpenMode = 'read' | 'readwrite' | 'create' | 'truncate';

export interface FsStat {
  kind: 'file' | 'directory' | 'other';
  sizeBytes: number;
}

export interface FsFile {
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; returns bytes read. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Writes all of `bytes` at `position`. Not durable until `datasync()`. */
  write(bytes: Uint8Array, position: number): Promise<void>;
  /** fdatasync: the file's data (and size) are durable when this resolves. */
  datasync(): Promise<void>;
  truncate(lengthBytes: number): Promise<void>;
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}

export interface Fs {
  open(path: string, mode: FsOpenMode): Promise<FsFile>;
  /** Whole file; ENOENT when missing. */
  readFile(path: string): Promise<Uint8Array>;
  /** Names in a directory (no '.' or '..'), sorted. ENOENT when missing. */
  readdir(path: string): Promise<string[]>;
  /** undefined when the path does not exist. */
  stat(path: string): Promise<FsStat | undefined>;
  /** Creates one directory level; no error when it exists already as a directory. */
  mkdir(path: string): Promise<void>;
  /** Atomically replaces `to` with `from` (rename(2)). Durable after syncDir of both parents. */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  /** fsync of a directory: its entries are durable when this resolves. */
  syncDir(path: string): Promise<void>;
}

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}

const NODE_FLAGS: Record<FsOpenMode, string> = { read: 'r', readwrite: 'r+', create: 'wx+', truncate: 'w+' };

class NodeFile implements FsFile {
  readonly #handle: FileHandle;
  constructor(handle: FileHandle) { this.#handle = handle; }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.#handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  async write(bytes: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.#handle.write(bytes, done, bytes.length - done, position + done);
      if (bytesWritten <= 0) throw new Error(`short write at position ${position + done}`);
      done += bytesWritten;
    }
  }

  datasync(): Promise<void> { return this.#handle.datasync(); }
  truncate(lengthBytes: number): Promise<void> { return this.#handle.truncate(lengthBytes); }
  async sizeBytes(): Promise<number> { return (await this.#handle.stat()).size; }
  close(): Promise<void> { return this.#handle.close(); }
}

/** The real file system: node:fs/promises with real fdatasync and directory fsync. */
export const nodeFs: Fs = {
  async open(path, mode) { return new NodeFile(await open(path, NODE_FLAGS[mode])); },
  async readFile(path) {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength); // a view, not a copy
  },
  async readdir(path) { return (await readdir(path)).sort(); },
  async stat(path) {
    try {
      const s = await stat(path);
      return { kind: s.isFile() ? 'file' : s.isDirectory() ? 'directory' : 'other', sizeBytes: s.size };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  },
  async mkdir(path) {
    try {
      await mkdir(path);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      const s = await stat(path);
      if (!s.isDirectory()) throw err;
    }
  },
  rename(from, to) { return rename(from, to); },
  unlink(path) { return unlink(path); },
  rmdir(path) { return rmdir(path); },
  async syncDir(path) {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};
