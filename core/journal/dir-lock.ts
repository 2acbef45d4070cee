/**
 * One process at a time per journal directory. Two masters appending to one journal would
 * interleave sequence numbers and destroy it, so `Journal.open` takes `<dir>/LOCK` first.
 *
 * The lock is a file created with O_EXCL that names its holder: `<pid> <start token>\n`
 * (the start token is field 22 of /proc/<pid>/stat, so a recycled pid is not mistaken for
 * the holder). A lock whose holder is gone (SIGKILL, power loss) is stale and taken over;
 * a lock held by a live process, this one included, refuses with TESSERA_ERR_JOURNAL_LOCKED.
 * Only real directories are locked: the simulated Fs of the power-loss tests has no
 * processes to exclude.
 */
import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, TesseraError } from '../errors.js';
import { readProcessStartToken } from '../owners.js';

export const LOCK_FILE = 'LOCK';
/** Attempts to take over a stale lock before giving up (another process may race us). */
const LOCK_TAKEOVER_ATTEMPTS = 3;

export class DirLock {
  readonly path: string;
  #held = true;

  private constructor(path: string) {
    this.path = path;
  }

  static acquire(dir: string): DirLock {
    const path = join(dir, LOCK_FILE);
    const me = `${process.pid} ${readProcessStartToken('self') ?? 0}\n`;
    for (let attempt = 0; attempt < LOCK_TAKEOVER_ATTEMPTS; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, 'wx', 0o644);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new TesseraError(ErrorCode.JOURNAL_FAILED, `Cannot lock journal ${dir}: ${(err as Error).message}`, { cause: err });
        }
        const holder = readHolder(path);
        if (holder !== undefined && holderIsAlive(holder)) {
          throw new TesseraError(ErrorCode.JOURNAL_LOCKED,
            `Cannot open journal ${dir}: it is in use by process ${holder.pid} (lock file ${path})`);
        }
        try { unlinkSync(path); } catch { /* another process took it over first; retry */ }
        continue;
      }
      try { writeSync(fd, me); } finally { closeSync(fd); }
      return new DirLock(path);
    }
    throw new TesseraError(ErrorCode.JOURNAL_LOCKED, `Cannot open journal ${dir}: could not take over the stale lock file ${path}`);
  }

  /** Idempotent. Removes the lock file only while it still names this process. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    const holder = readHolder(this.path);
    if (holder?.pid === process.pid) {
      try { unlinkSync(this.path); } catch { /* already gone */ }
    }
  }
}

interface Holder { pid: number; startToken: number }

function readHolder(path: string): Holder | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
  const [pid, startToken] = text.trim().split(' ').map(Number);
  if (!Number.isSafeInteger(pid) || pid! <= 0) return undefined; // torn or empty: its writer died mid-write
  return { pid: pid!, startToken: Number.isFinite(startToken) ? startToken! : 0 };
}

function holderIsAlive(holder: Holder): boolean {
  const token = readProcessStartToken(holder.pid);
  return token !== undefined && (holder.startToken === 0 || token === holder.startToken);
}
