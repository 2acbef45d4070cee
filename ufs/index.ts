/**
 * Under file systems: the interface, `local` (a directory) and `memory` (tests), and
 * `openUfs(uri)`, which picks one by URI: `file:///abs/dir` or `/abs/dir` → local,
 * `memory://name` → the named in-memory UFS. (S3 will be one more implementation.)
 */
import { fileURLToPath } from 'node:url';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { LocalUfs } from './local.js';
import { MemoryUfs } from './memory.js';
import type { UnderFileSystem } from './ufs.js';

export { checkUfsPath, ufsError } from './ufs.js';
export type { UfsStatus, UfsWriter, UnderFileSystem } from './ufs.js';
export { LocalUfs } from './local.js';
export { MemoryUfs } from './memory.js';

export async function openUfs(uri: string): Promise<UnderFileSystem> {
  if (typeof uri !== 'string' || uri.length === 0) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid ufsUri: a non-empty string');
  if (uri.indexOf('\0') !== -1) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid ufsUri: contains NUL');
  if (uri.startsWith('memory://')) return MemoryUfs.named(uri.slice('memory://'.length));
  if (uri.startsWith('file://')) {
    let dir: string;
    try { dir = fileURLToPath(uri); } catch (e) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid ufsUri ${uri}: ${(e as Error).message}`);
    }
    return LocalUfs.open(uri, dir);
  }
  if (uri.startsWith('/')) return LocalUfs.open(uri, uri);
  throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid ufsUri ${uri}: unsupported scheme (file:///dir, /dir or memory://name)`);
}
