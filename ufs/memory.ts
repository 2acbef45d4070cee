/**
 * `memory`: a UFS held in a Map, for tests and the embedded mode. Instances are named
 * (`memory://name`), so a master and workers in one process see the same one.
 * Files become visible on writer close, like the local and S3 implementations.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import { checkUfsPath, type UfsStatus, type UfsWriter, type UnderFileSystem } from './ufs.js';

type Node = { dir: true; mtimeMs: number } | { dir: false; data: Buffer; mtimeMs: number };

const named = new Map<string, MemoryUfs>();

export class MemoryUfs implements UnderFileSystem {
  readonly uri: string;
  /** Normalised relative path ('' root, 'a/b') → node. */
  readonly #nodes = new Map<string, Node>([['', { dir: true, mtimeMs: 0 }]]);
  readonly #clock: () => number;

  constructor(uri = 'memory://', clock: () => number = Date.now) {
    this.uri = uri;
    this.#clock = clock;
  }

  /** The shared instance for `memory://name`. */
  static named(name: string): MemoryUfs {
    let u = named.get(name);
    if (u === undefined) named.set(name, u = new MemoryUfs(`memory://${name}`));
    return u;
  }

  static drop(name: string): void { named.delete(name); }

  #key(path: string): string { return checkUfsPath(path).join('/'); }
  #parent(key: string): string { const i = key.lastIndexOf('/'); return i < 0 ? '' : key.slice(0, i); }
  #name(key: string): string { return key.slice(key.lastIndexOf('/') + 1); }

  #status(key: string, n: Node): UfsStatus {
    return { name: this.#name(key), isDirectory: n.dir, lengthBytes: n.dir ? 0 : n.data.byteLength, modificationTimeMs: n.mtimeMs };
  }

  #mkdirs(key: string): void {
    if (key === '') return;
    const n = this.#nodes.get(key);
    if (n !== undefined) {
      if (!n.dir) throw new TesseraError(ErrorCode.NOT_A_DIRECTORY, `UFS mkdir ${key}: a file is in the way`);
      return;
    }
    this.#mkdirs(this.#parent(key));
    this.#nodes.set(key, { dir: true, mtimeMs: this.#clock() });
  }

  async list(path: string): Promise<UfsStatus[]> {
    const key = this.#key(path);
    const n = this.#nodes.get(key);
    if (n === undefined) throw new TesseraError(ErrorCode.FILE_NOT_FOUND, `UFS list ${path}: not found`);
    if (!n.dir) throw new TesseraError(ErrorCode.NOT_A_DIRECTORY, `UFS list ${path}: not a directory`);
    const out: UfsStatus[] = [];
    for (const [k, v] of this.#nodes) if (k !== '' && this.#parent(k) === key) out.push(this.#status(k, v));
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async stat(path: string): Promise<UfsStatus | undefined> {
    const key = this.#key(path);
    const n = this.#nodes.get(key);
    return n === undefined ? undefined : this.#status(key, n);
  }

  async exists(path: string): Promise<boolean> { return this.#nodes.has(this.#key(path)); }

  async *openRead(path: string, offsetBytes = 0, lengthBytes?: number): AsyncIterable<Uint8Array> {
    const n = this.#nodes.get(this.#key(path));
    if (n === undefined) throw new TesseraError(ErrorCode.FILE_NOT_FOUND, `UFS read ${path}: not found`);
    if (n.dir) throw new TesseraError(ErrorCode.IS_A_DIRECTORY, `UFS read ${path}: is a directory`);
    const end = lengthBytes === undefined ? n.data.byteLength : Math.min(n.data.byteLength, offsetBytes + lengthBytes);
    if (offsetBytes < end) yield n.data.subarray(offsetBytes, end);
  }

  async create(path: string, options: { overwrite?: boolean } = {}): Promise<UfsWriter> {
    const key = this.#key(path);
    if (key === '') throw new TesseraError(ErrorCode.IS_A_DIRECTORY, 'Cannot create the UFS root as a file');
    const chunks: Buffer[] = [];
    let done = false;
    return {
      write: async (c) => {
        if (done) throw new TesseraError(ErrorCode.CLOSED, `Cannot write ${path}: the writer is closed`);
        chunks.push(Buffer.from(c));
      },
      close: async () => {
        if (done) return;
        done = true;
        const old = this.#nodes.get(key);
        if (old?.dir) throw new TesseraError(ErrorCode.IS_A_DIRECTORY, `UFS create ${path}: is a directory`);
        if (old !== undefined && !options.overwrite) throw new TesseraError(ErrorCode.FILE_ALREADY_EXISTS, `UFS create ${path}: exists`);
        this.#mkdirs(this.#parent(key));
        this.#nodes.set(key, { dir: false, data: Buffer.concat(chunks), mtimeMs: this.#clock() });
      },
      abort: async () => { done = true; },
    };
  }

  async delete(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    const key = this.#key(path);
    if (key === '') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Cannot delete the UFS root');
    const n = this.#nodes.get(key);
    if (n === undefined) throw new TesseraError(ErrorCode.FILE_NOT_FOUND, `UFS delete ${path}: not found`);
    const below = [...this.#nodes.keys()].filter((k) => k.startsWith(key + '/'));
    if (below.length > 0 && !options.recursive) throw new TesseraError(ErrorCode.DIRECTORY_NOT_EMPTY, `UFS delete ${path}: directory not empty`);
    for (const k of below) this.#nodes.delete(k);
    this.#nodes.delete(key);
  }

  async rename(src: string, dst: string): Promise<void> {
    const a = this.#key(src);
    const b = this.#key(dst);
    if (!this.#nodes.has(a)) throw new TesseraError(ErrorCode.FILE_NOT_FOUND, `UFS rename ${src}: not found`);
    if (this.#nodes.has(b)) throw new TesseraError(ErrorCode.FILE_ALREADY_EXISTS, `UFS rename ${src} to ${dst}: the destination exists`);
    if (b.startsWith(a + '/')) throw new TesseraError(ErrorCode.INVALID_RENAME, `UFS rename ${src} to ${dst}: into itself`);
    this.#mkdirs(this.#parent(b));
    for (const [k, v] of [...this.#nodes]) {
      if (k === a || k.startsWith(a + '/')) { this.#nodes.delete(k); this.#nodes.set(b + k.slice(a.length), v); }
    }
  }

  async mkdir(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    const key = this.#key(path);
    if (this.#nodes.has(key)) throw new TesseraError(ErrorCode.FILE_ALREADY_EXISTS, `UFS mkdir ${path}: exists`);
    if (!options.recursive && !this.#nodes.get(this.#parent(key))?.dir) throw new TesseraError(ErrorCode.FILE_NOT_FOUND, `UFS mkdir ${path}: parent missing`);
    this.#mkdirs(key);
  }

  async close(): Promise<void> {}
}
