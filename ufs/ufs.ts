/**
 * The under file system (UFS) interface: the storage behind the cache (a local directory now,
 * S3 later). Paths given to a UFS are relative to its root ('' is the root, 'a/b' below it);
 * `checkUfsPath` refuses any that could leave the root (`..`, absolute, NUL, backslash), and
 * implementations that have links (local) also check where the path really lands.
 *
 * The interface is the intersection of what a POSIX directory and an object store do well:
 * list one level, stat, ranged read as a stream, create as a streamed write that becomes
 * visible only on close (S3 multipart / temp file + rename), delete, rename, mkdir, exists.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import { MAX_NAME_LENGTH, MAX_PATH_LENGTH } from '../core/constants.js';

export interface UfsStatus {
  /** Last component ('' for the root). */
  name: string;
  isDirectory: boolean;
  lengthBytes: number;
  modificationTimeMs: number;
}

export interface UfsWriter {
  /** Appends bytes; resolves when the bytes may be reused by the caller. */
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the object visible at its path, whole. */
  close(): Promise<void>;
  /** Drops what was written; the path is unchanged. */
  abort(): Promise<void>;
}

export interface UnderFileSystem {
  /** The URI this UFS was opened with. */
  readonly uri: string;
  /** One level of a directory, sorted by name. */
  list(path: string): Promise<UfsStatus[]>;
  /** Status of a path, or undefined when it does not exist. */
  stat(path: string): Promise<UfsStatus | undefined>;
  exists(path: string): Promise<boolean>;
  /** Bytes [offsetBytes, offsetBytes + lengthBytes) of a file (to its end when lengthBytes is omitted), as a stream of chunks. */
  openRead(path: string, offsetBytes?: number, lengthBytes?: number): AsyncIterable<Uint8Array>;
  /** A streamed write; parents are created. With `overwrite` false (default) an existing file is FILE_ALREADY_EXISTS on close. */
  create(path: string, options?: { overwrite?: boolean }): Promise<UfsWriter>;
  delete(path: string, options?: { recursive?: boolean }): Promise<void>;
  rename(src: string, dst: string): Promise<void>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  close(): Promise<void>;
}

function escape(path: unknown, why: string): TesseraError {
  return new TesseraError(ErrorCode.UFS_PATH_ESCAPE, `Refused UFS path ${JSON.stringify(String(path))}: ${why}`);
}

/** Validates a root-relative UFS path and returns its components ([] for the root). */
export function checkUfsPath(path: unknown): string[] {
  if (typeof path !== 'string') throw escape(path, 'not a string');
  if (path.length > MAX_PATH_LENGTH) throw escape(path.slice(0, 100), `longer than ${MAX_PATH_LENGTH}`);
  if (path.indexOf('\0') !== -1) throw escape(path, 'contains NUL');
  if (path.startsWith('/')) throw escape(path, 'absolute paths leave the mount root');
  if (path.indexOf('\\') !== -1) throw escape(path, 'contains a backslash');
  const out: string[] = [];
  for (const c of path.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw escape(path, "'..' leaves the mount root");
    if (c.length > MAX_NAME_LENGTH) throw escape(path, `a component is longer than ${MAX_NAME_LENGTH}`);
    out.push(c);
  }
  return out;
}

export function ufsError(op: string, path: string, cause: unknown): TesseraError {
  const e = cause as NodeJS.ErrnoException;
  if (e instanceof TesseraError) return e;
  if (e?.code === 'ENOENT') return new TesseraError(ErrorCode.FILE_NOT_FOUND, `UFS ${op} ${path}: not found`, { cause });
  if (e?.code === 'EEXIST') return new TesseraError(ErrorCode.FILE_ALREADY_EXISTS, `UFS ${op} ${path}: exists`, { cause });
  if (e?.code === 'ENOTEMPTY') return new TesseraError(ErrorCode.DIRECTORY_NOT_EMPTY, `UFS ${op} ${path}: directory not empty`, { cause });
  if (e?.code === 'ENOTDIR') return new TesseraError(ErrorCode.NOT_A_DIRECTORY, `UFS ${op} ${path}: not a directory`, { cause });
  if (e?.code === 'EISDIR') return new TesseraError(ErrorCode.IS_A_DIRECTORY, `UFS ${op} ${path}: is a directory`, { cause });
  return new TesseraError(ErrorCode.UFS, `UFS ${op} ${path} failed: ${e?.message ?? String(cause)}`, { cause });
}
