/**
 * `local`: a UFS over a directory of the local file system. Every path is checked twice: by
 * name (checkUfsPath: no `..`, absolute, NUL) and by where it really lands (realpath of the
 * deepest existing ancestor must stay under the real root), so a symlink inside the mount
 * cannot lead out of it. Writes go to a temporary file in the target directory, fsynced, then
 * linked (no overwrite) or renamed (overwrite) into place: a reader never sees half a file.
 */
import * as fsp from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { checkUfsPath, ufsError, type UfsStatus, type UfsWriter, type UnderFileSystem } from './ufs.js';

const TEMP_MARK = '.tessera-tmp-';

export class LocalUfs implements UnderFileSystem {
  readonly uri: string;
  readonly #root: string;

  private constructor(uri: string, realRoot: string) {
    this.uri = uri;
    this.#root = realRoot;
  }

  /** Opens a local directory (absolute path); it must exist. */
  static async open(uri: string, dir: string): Promise<LocalUfs> {
    if (!dir.startsWith('/')) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid ufsUri ${uri}: a local directory must be absolute`);
    let real: string;
    try {
      real = await fsp.realpath(dir);
      const st = await fsp.stat(real);
      if (!st.isDirectory()) throw new TesseraError(ErrorCode.NOT_A_DIRECTORY, `Cannot open UFS ${uri}: ${dir} is not a directory`);
    } catch (e) {
      throw ufsError('open', dir, e);
    }
    return new LocalUfs(uri, real);
  }

  #inside(real: string): boolean {
    return real === this.#root || real.startsWith(this.#root.endsWith(sep) ? this.#root : this.#root + sep);
  }

  /** Absolute path of a checked relative path whose real location stays under the root. */
  async #resolve(path: string): Promise<string> {
    const comps = checkUfsPath(path);
    const abs = comps.length === 0 ? this.#root : join(this.#root, ...comps);
    let probe = abs;
    for (;;) {
      try {
        const real = await fsp.realpath(probe);
        if (!this.#inside(real)) {
          throw new TesseraError(ErrorCode.UFS_PATH_ESCAPE, `Refused UFS path ${JSON.stringify(path)}: it resolves outside the mount root (through a symlink)`);
        }
        return abs;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || probe === this.#root) throw ufsError('resolve', path, e);
        probe = dirname(probe);
      }
    }
  }

  async list(path: string): Promise<UfsStatus[]> {
    const abs = await this.#resolve(path);
    try {
      const names = (await fsp.readdir(abs)).filter((n) => !n.includes(TEMP_MARK)).sort();
      const out: UfsStatus[] = [];
      for (const name of names) {
        const child = join(abs, name);
        try {
          const real = await fsp.realpath(child);
          if (!this.#inside(real)) continue; // a symlink out of the mount is not part of it
          const st = await fsp.stat(real);
          out.push({ name, isDirectory: st.isDirectory(), lengthBytes: st.isDirectory() ? 0 : st.size, modificationTimeMs: Math.floor(st.mtimeMs) });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // gone meanwhile, or a dangling link
        }
      }
      return out;
    } catch (e) {
      throw ufsError('list', path, e);
    }
  }

  async stat(path: string): Promise<UfsStatus | undefined> {
    const abs = await this.#resolve(path);
    try {
      const st = await fsp.stat(abs);
      const comps = checkUfsPath(path);
      return { name: comps[comps.length - 1] ?? '', isDirectory: st.isDirectory(), lengthBytes: st.isDirectory() ? 0 : st.size, modificationTimeMs: Math.floor(st.mtimeMs) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ufsError('stat', path, e);
    }
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  async *openRead(path: string, offsetBytes = 0, lengthBytes?: number): AsyncIterable<Uint8Array> {
    const abs = await this.#resolve(path);
    if (lengthBytes === 0) return;
    const end = lengthBytes === undefined ? undefined : offsetBytes + lengthBytes - 1;
    try {
      const stream = createReadStream(abs, { start: offsetBytes, ...(end !== undefined ? { end } : {}) });
      for await (const chunk of stream) yield chunk as Buffer;
    } catch (e) {
      throw ufsError('read', path, e);
    }
  }

  async create(path: string, options: { overwrite?: boolean } = {}): Promise<UfsWriter> {
    const abs = await this.#resolve(path);
    if (checkUfsPath(path).length === 0) throw new TesseraError(ErrorCode.IS_A_DIRECTORY, 'Cannot create the UFS root as a file');
    try {
      await fsp.mkdir(dirname(abs), { recursive: true });
    } catch (e) {
      throw ufsError('create', path, e);
    }
    await this.#resolve(path); // the parents just made must not lead out either
    const tmp = join(dirname(abs), `${TEMP_MARK}${randomBytes(6).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx');
    let done = false;
    return {
      write: async (chunk) => {
        if (done) throw new TesseraError(ErrorCode.CLOSED, `Cannot write ${path}: the writer is closed`);
        let off = 0;
        while (off < chunk.byteLength) off += (await fh.write(chunk, off, chunk.byteLength - off)).bytesWritten;
      },
      close: async () => {
        if (done) return;
        done = true;
        try {
          await fh.sync();
          await fh.close();
          if (options.overwrite) await fsp.rename(tmp, abs);
          else { await fsp.link(tmp, abs); await fsp.unlink(tmp); }
        } catch (e) {
          await fsp.rm(tmp, { force: true });
          throw ufsError('create', path, e);
        }
      },
      abort: async () => {
        if (done) return;
        done = true;
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
      },
    };
  }

  async delete(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    const abs = await this.#resolve(path);
    if (abs === this.#root) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Cannot delete the UFS root');
    try {
      const st = await fsp.lstat(abs);
      if (st.isDirectory()) await fsp.rm(abs, { recursive: options.recursive === true });
      else await fsp.unlink(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_FS_EISDIR') throw new TesseraError(ErrorCode.DIRECTORY_NOT_EMPTY, `UFS delete ${path}: directory (use recursive)`);
      throw ufsError('delete', path, e);
    }
  }

  async rename(src: string, dst: string): Promise<void> {
    const a = await this.#resolve(src);
    const b = await this.#resolve(dst);
    try {
      await fsp.mkdir(dirname(b), { recursive: true });
      await fsp.rename(a, b);
    } catch (e) {
      throw ufsError('rename', src, e);
    }
  }

  async mkdir(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    const abs = await this.#resolve(path);
    try {
      await fsp.mkdir(abs, { recursive: options.recursive === true });
    } catch (e) {
      throw ufsError('mkdir', path, e);
    }
  }

  async close(): Promise<void> {}
}
