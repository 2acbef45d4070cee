/**
 * The mount table: namespace path → UFS URI. Part of the namespace state (it is journaled
 * with the inode tree, in the same entries, so a mount and its mount-point directory appear
 * and vanish together). Mount points are few (MAX_MOUNTS): lookups scan them, longest prefix wins.
 * It does no I/O: opening a UFS for a URI is the host's job (ufs/).
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import { MAX_MOUNTS } from '../core/constants.js';
import { isAncestorOrSelf } from './path.js';

export interface MountPoint {
  mountId: number;
  /** Normalised namespace path. */
  path: string;
  ufsUri: string;
  readOnly: boolean;
}

export interface MountResolution {
  mount: MountPoint;
  /** Path below the mount point, '' for the mount point itself, else 'a/b' (no leading slash). */
  relativePath: string;
}

export class MountTable {
  #byPath = new Map<string, MountPoint>();
  #nextMountId = 1;

  get size(): number { return this.#byPath.size; }

  list(): MountPoint[] {
    return [...this.#byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  get(path: string): MountPoint | undefined { return this.#byPath.get(path); }

  /** The mount `path` lives under (longest prefix), if any. */
  resolve(path: string): MountResolution | undefined {
    let best: MountPoint | undefined;
    for (const m of this.#byPath.values()) {
      if (isAncestorOrSelf(m.path, path) && (best === undefined || m.path.length > best.path.length)) best = m;
    }
    if (best === undefined) return undefined;
    const rel = path === best.path ? '' : best.path === '/' ? path.slice(1) : path.slice(best.path.length + 1);
    return { mount: best, relativePath: rel };
  }

  /** True when a mount point is `path` or below it. */
  hasMountAtOrBelow(path: string): boolean {
    for (const p of this.#byPath.keys()) if (isAncestorOrSelf(path, p)) return true;
    return false;
  }

  /** Checks a new mount; throws MOUNT_CONFLICT. Does not change the table. */
  checkAdd(path: string, ufsUri: string): void {
    if (this.#byPath.size >= MAX_MOUNTS) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot mount ${path}: too many mount points (MAX_MOUNTS ${MAX_MOUNTS})`);
    }
    for (const m of this.#byPath.values()) {
      if (isAncestorOrSelf(m.path, path) || isAncestorOrSelf(path, m.path)) {
        throw new TesseraError(ErrorCode.MOUNT_CONFLICT, `Cannot mount ${ufsUri} at ${path}: it nests with the mount point ${m.path}`);
      }
    }
  }

  add(path: string, ufsUri: string, readOnly: boolean): MountPoint {
    this.checkAdd(path, ufsUri);
    const m: MountPoint = { mountId: this.#nextMountId++, path, ufsUri, readOnly };
    this.#byPath.set(path, m);
    return m;
  }

  remove(path: string): MountPoint {
    const m = this.#byPath.get(path);
    if (m === undefined) throw new TesseraError(ErrorCode.NOT_MOUNTED, `Cannot unmount ${path}: not a mount point`);
    this.#byPath.delete(path);
    return m;
  }

  reset(): void {
    this.#byPath.clear();
    this.#nextMountId = 1;
  }

  toJSON(): { nextMountId: number; mounts: MountPoint[] } {
    return { nextMountId: this.#nextMountId, mounts: this.list() };
  }

  load(state: { nextMountId: number; mounts: MountPoint[] }): void {
    this.reset();
    for (const m of state.mounts) this.#byPath.set(m.path, { ...m });
    this.#nextMountId = state.nextMountId;
  }
}
