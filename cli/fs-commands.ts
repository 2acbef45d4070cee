/**
 * `tessera fs <command>`: Alluxio's everyday file system commands over the client API. Each
 * command is a small function of (FileSystem, arguments, options, Out); registration with
 * commander is in main.ts. Output is plain text for people and `--json` for scripts.
 */
import { createReadStream as localReadStream, createWriteStream as localWriteStream } from 'node:fs';
import { stat as localStat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';
import { CLI_HEAD_TAIL_DEFAULT_BYTES } from '../core/constants.js';
import type { FileSystem } from '../client/file-system.js';
import type { FileStatus } from '../client/types.js';
import { formatBytes, normalizePath, parseDurationMs, parseSizeBytes, parseTtlAction, parseReadType, parseWriteType } from '../client/options.js';
import { UsageError, type Out } from './output.js';

type Opts = Record<string, unknown>;

function size(n: number, human: boolean): string {
  return human ? formatBytes(n) : String(n);
}

function modeString(st: FileStatus): string {
  const bits = 'rwxrwxrwx';
  let s = st.isDirectory ? 'd' : '-';
  for (let i = 0; i < 9; i++) s += st.mode & (1 << (8 - i)) ? bits[i] : '-';
  return s;
}

function time(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}

function inMemory(st: FileStatus): string {
  return st.isDirectory ? '' : st.persistenceState;
}

function lsLine(st: FileStatus, human: boolean): string {
  return [
    modeString(st), st.owner.padEnd(8), st.group.padEnd(8), size(st.lengthBytes, human).padStart(human ? 8 : 12),
    inMemory(st).padEnd(15), time(st.modificationTimeMs), st.path,
  ].join('  ');
}

function path(p: unknown): string {
  if (typeof p !== 'string') throw new UsageError('missing path argument');
  return normalizePath(p);
}

export async function ls(fs: FileSystem, p: string, o: Opts, out: Out): Promise<void> {
  const entries = await fs.listStatus(path(p), { recursive: o.recursive === true });
  out.value(entries, (es) => es.map((e) => lsLine(e, o.human === true)));
}

export async function mkdir(fs: FileSystem, paths: string[], o: Opts, out: Out): Promise<void> {
  const made: FileStatus[] = [];
  for (const p of paths) made.push(await fs.mkdir(path(p), { recursive: o.parents === true, allowExists: o.parents === true }));
  out.value(made.map((m) => m.path), (ps) => ps.map((x) => `Successfully created directory ${x}`));
}

export async function touch(fs: FileSystem, p: string, _o: Opts, out: Out): Promise<void> {
  const st = await fs.writeFile(path(p), new Uint8Array(0));
  out.value({ path: st.path }, (v) => `${v.path} has been created`);
}

export async function cat(fs: FileSystem, p: string, o: Opts, out: Out): Promise<void> {
  const input = await fs.openFile(path(p), o.readType !== undefined ? { readType: parseReadType(o.readType, '--read-type') } : {});
  try {
    for await (const chunk of input.chunks()) await out.bytes(chunk);
  } finally {
    await input.close();
  }
}

async function range(fs: FileSystem, p: string, o: Opts, out: Out, fromEnd: boolean): Promise<void> {
  const n = o.bytes !== undefined ? parseSizeBytes(o.bytes, '-c') : CLI_HEAD_TAIL_DEFAULT_BYTES;
  const input = await fs.openFile(path(p));
  try {
    const len = input.lengthBytes;
    const start = fromEnd ? Math.max(0, len - n) : 0;
    const end = fromEnd ? len : Math.min(len, n);
    for await (const chunk of input.chunks(start, end)) await out.bytes(chunk);
  } finally {
    await input.close();
  }
}

export const head = (fs: FileSystem, p: string, o: Opts, out: Out) => range(fs, p, o, out, false);
export const tail = (fs: FileSystem, p: string, o: Opts, out: Out) => range(fs, p, o, out, true);

export async function rm(fs: FileSystem, paths: string[], o: Opts, out: Out): Promise<void> {
  const removed: string[] = [];
  for (const p of paths) {
    const np = path(p);
    const st = await fs.getStatus(np);
    if (st.isDirectory && o.recursive !== true) {
      throw new TesseraError(ErrorCode.IS_A_DIRECTORY, `Cannot remove ${np}: it is a directory (use -R to remove it and everything under it)`);
    }
    await fs.delete(np, { recursive: o.recursive === true });
    removed.push(np);
  }
  out.value(removed, (rs) => rs.map((r) => `${r} has been removed`));
}

export async function mv(fs: FileSystem, src: string, dst: string, _o: Opts, out: Out): Promise<void> {
  let d = path(dst);
  const s = path(src);
  // Like mv(1): moving into an existing directory keeps the name.
  const target = await fs.getStatus(d).catch((err) => { if (isTesseraError(err, ErrorCode.FILE_NOT_FOUND)) return undefined; throw err; });
  if (target?.isDirectory) d = (d === '/' ? '' : d) + '/' + s.split('/').pop();
  await fs.rename(s, d);
  out.value({ src: s, dst: d }, (v) => `Renamed ${v.src} to ${v.dst}`);
}

export async function stat(fs: FileSystem, p: string, _o: Opts, out: Out): Promise<void> {
  const st = await fs.getStatus(path(p));
  out.value(st, (s) => [
    `${s.isDirectory ? 'Directory' : 'File'} ${s.path}`,
    `  id: ${s.fileId}`,
    ...(s.isDirectory ? [`  children: ${s.childCount}`] : [
      `  length: ${s.lengthBytes} (${formatBytes(s.lengthBytes)})`,
      `  blockSize: ${formatBytes(s.blockSizeBytes)}`,
      `  blocks: ${s.blockIds.length}${s.blockIds.length ? ` (${s.blockIds.slice(0, 8).join(', ')}${s.blockIds.length > 8 ? ', ...' : ''})` : ''}`,
      `  completed: ${s.completed}`,
      `  persistence: ${s.persistenceState}`,
    ]),
    `  mode: ${modeString(s)} (${s.mode.toString(8)})  owner: ${s.owner}  group: ${s.group}`,
    `  pinned: ${s.pinned}  ttl: ${s.ttlMs < 0 ? 'none' : `${s.ttlMs} ms (${s.ttlAction})`}`,
    `  created: ${time(s.creationTimeMs)}  modified: ${time(s.modificationTimeMs)}`,
    ...(s.mountPoint ? ['  mount point: yes'] : []),
    ...(s.ufsPath ? [`  ufs path: ${s.ufsPath}`] : []),
  ]);
}

export async function du(fs: FileSystem, p: string, o: Opts, out: Out): Promise<void> {
  const np = path(p);
  const all = await fs.listStatus(np, { recursive: true });
  const files = all.filter((e) => !e.isDirectory);
  if (o.summarize === true) {
    const total = files.reduce((n, f) => n + f.lengthBytes, 0);
    out.value({ path: np, lengthBytes: total }, (v) => `${size(v.lengthBytes, o.human === true).padEnd(12)} ${v.path}`);
    return;
  }
  out.value(files.map((f) => ({ path: f.path, lengthBytes: f.lengthBytes })),
    (fsz) => fsz.map((f) => `${size(f.lengthBytes, o.human === true).padEnd(12)} ${f.path}`));
}

export async function count(fs: FileSystem, p: string, o: Opts, out: Out): Promise<void> {
  const np = path(p);
  const root = await fs.getStatus(np);
  const all = root.isDirectory ? await fs.listStatus(np, { recursive: true }) : [root];
  const files = all.filter((e) => !e.isDirectory);
  const v = {
    path: np,
    fileCount: files.length,
    folderCount: all.filter((e) => e.isDirectory).length + (root.isDirectory ? 1 : 0),
    lengthBytes: files.reduce((n, f) => n + f.lengthBytes, 0),
  };
  out.value(v, (x) => [
    'File Count'.padEnd(16) + 'Folder Count'.padEnd(16) + 'Folder Size',
    String(x.fileCount).padEnd(16) + String(x.folderCount).padEnd(16) + size(x.lengthBytes, o.human === true),
  ]);
}

function progressTap(onBytes: (n: number) => void): Transform {
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      onBytes(done);
      cb(null, chunk);
    },
  });
}

export async function copyFromLocal(fs: FileSystem, local: string, remote: string, o: Opts, out: Out): Promise<void> {
  const st = await localStat(local).catch((err: NodeJS.ErrnoException) => {
    throw new TesseraError(ErrorCode.FILE_NOT_FOUND, `Cannot read local file ${local}: ${err.code ?? err.message}`);
  });
  if (!st.isFile()) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot copy ${local}: not a regular file`);
  let dst = path(remote);
  const target = await fs.getStatus(dst).catch((err) => { if (isTesseraError(err, ErrorCode.FILE_NOT_FOUND)) return undefined; throw err; });
  if (target?.isDirectory) dst = (dst === '/' ? '' : dst) + '/' + local.split('/').pop();
  const opts: Parameters<FileSystem['createWriteStream']>[1] = {};
  if (o.writeType !== undefined) opts.writeType = parseWriteType(o.writeType, '--write-type');
  if (o.blockSize !== undefined) opts.blockSize = parseSizeBytes(o.blockSize, '--block-size', { min: 1 });
  if (o.overwrite === true) opts.overwrite = true;
  opts.expectedLengthBytes = st.size;
  const bar = out.progress(`copyFromLocal ${dst}`, st.size);
  const started = Date.now();
  try {
    await pipeline(localReadStream(local, { highWaterMark: 1 << 20 }), progressTap((n) => bar.update(n)), fs.createWriteStream(dst, opts));
  } finally {
    bar.stop();
  }
  const secs = Math.max(0.001, (Date.now() - started) / 1000);
  out.value({ src: local, dst, lengthBytes: st.size, seconds: secs },
    (v) => `Copied ${v.src} to ${v.dst} (${formatBytes(v.lengthBytes)} in ${v.seconds.toFixed(2)} s, ${formatBytes(Math.round(v.lengthBytes / v.seconds))}/s)`);
}

export async function copyToLocal(fs: FileSystem, remote: string, local: string, o: Opts, out: Out): Promise<void> {
  const src = path(remote);
  const st = await fs.getStatus(src);
  if (st.isDirectory) throw new TesseraError(ErrorCode.IS_A_DIRECTORY, `Cannot copy ${src}: it is a directory`);
  let dst = local;
  const lst = await localStat(local).catch(() => undefined);
  if (lst?.isDirectory()) dst = local.replace(/\/$/, '') + '/' + (src.split('/').pop() ?? 'file');
  const bar = out.progress(`copyToLocal ${src}`, st.lengthBytes);
  const started = Date.now();
  try {
    const rs = fs.createReadStream(src, o.readType !== undefined ? { readType: parseReadType(o.readType, '--read-type') } : {});
    await pipeline(rs, progressTap((n) => bar.update(n)), localWriteStream(dst));
  } finally {
    bar.stop();
  }
  const secs = Math.max(0.001, (Date.now() - started) / 1000);
  out.value({ src, dst, lengthBytes: st.lengthBytes, seconds: secs },
    (v) => `Copied ${v.src} to ${v.dst} (${formatBytes(v.lengthBytes)} in ${v.seconds.toFixed(2)} s, ${formatBytes(Math.round(v.lengthBytes / v.seconds))}/s)`);
}

export async function mount(fs: FileSystem, p: string, ufsUri: string, o: Opts, out: Out): Promise<void> {
  const m = await fs.mount(path(p), ufsUri, { readOnly: o.readonly === true });
  out.value(m, (v) => `Mounted ${v.ufsUri} at ${v.path}${v.readOnly ? ' (read-only)' : ''}`);
}

export async function unmount(fs: FileSystem, p: string, _o: Opts, out: Out): Promise<void> {
  await fs.unmount(path(p));
  out.value({ path: path(p) }, (v) => `Unmounted ${v.path}`);
}

export async function mountTable(fs: FileSystem, _o: Opts, out: Out): Promise<void> {
  const ms = await fs.getMountTable();
  out.value(ms, (v) => v.map((m) => `${m.ufsUri}  on  ${m.path}${m.readOnly ? '  (read-only)' : ''}`));
}

export async function pin(fs: FileSystem, p: string, pinned: boolean, out: Out): Promise<void> {
  const st = await fs.setAttribute(path(p), { pinned, recursive: true });
  out.value({ path: st.path, pinned }, (v) => `File ${v.path} was successfully ${pinned ? 'pinned' : 'unpinned'}.`);
}

export async function setTtl(fs: FileSystem, p: string, ttl: string, o: Opts, out: Out): Promise<void> {
  const ttlMs = parseDurationMs(/^\d+$/.test(ttl) ? Number(ttl) : ttl, 'ttl');
  const ttlAction = parseTtlAction(o.action, '--action');
  const st = await fs.setAttribute(path(p), { ttlMs, ttlAction });
  out.value({ path: st.path, ttlMs, ttlAction }, (v) => `TTL of ${v.path} set to ${v.ttlMs} ms (action ${v.ttlAction})`);
}

export async function unsetTtl(fs: FileSystem, p: string, _o: Opts, out: Out): Promise<void> {
  const st = await fs.setAttribute(path(p), { ttlMs: null });
  out.value({ path: st.path }, (v) => `TTL of ${v.path} removed`);
}

export async function free(fs: FileSystem, p: string, o: Opts, out: Out): Promise<void> {
  const r = await fs.free(path(p), { recursive: true, forced: o.force === true });
  out.value({ path: path(p), ...r }, (v) => `${v.path} was successfully freed from Tessera space (${v.blockCount} blocks)`);
}

export async function load(fs: FileSystem, p: string, _o: Opts, out: Out): Promise<void> {
  const np = path(p);
  const all = await fs.listStatus(np, { recursive: true });
  const total = all.filter((e) => !e.isDirectory).reduce((n, f) => n + f.lengthBytes, 0);
  const bar = out.progress(`load ${np}`, total);
  let r: { fileCount: number; loadedBytes: number };
  try {
    r = await fs.load(np, { onProgress: (done) => bar.update(done) });
  } finally {
    bar.stop();
  }
  out.value({ path: np, ...r }, (v) => `${v.path} loaded into Tessera space (${v.fileCount} file${v.fileCount === 1 ? '' : 's'}, ${formatBytes(v.loadedBytes)} read from under storage)`);
}

export async function persist(fs: FileSystem, paths: string[], o: Opts, out: Out): Promise<void> {
  const done: { path: string; persistenceState: string }[] = [];
  const timeoutMs = o.timeout !== undefined ? parseDurationMs(o.timeout, '--timeout') : 120_000;
  for (const p of paths) {
    const st = await fs.persist(path(p), { wait: true, timeoutMs });
    done.push({ path: st.path, persistenceState: st.persistenceState });
  }
  out.value(done, (v) => v.map((d) => `persisted file ${d.path}`));
}

export async function location(fs: FileSystem, p: string, _o: Opts, out: Out): Promise<void> {
  const { file, blocks } = await fs.getBlockLocations(path(p));
  out.value({ path: file.path, lengthBytes: file.lengthBytes, blocks }, (v) => [
    `${v.path} with ${v.blocks.length} block${v.blocks.length === 1 ? '' : 's'} (${formatBytes(v.lengthBytes)})`,
    ...v.blocks.map((b) => `  block ${b.blockId}  offset ${b.offsetBytes}  length ${b.lengthBytes}  on ${b.locations.length === 0 ? '(no worker: not cached)' : b.locations.map((l) => `worker ${l.workerId} ${l.hostname} ${l.address} ${l.tier}`).join('; ')}`),
  ]);
}

export async function checksum(fs: FileSystem, p: string, o: Opts, out: Out): Promise<void> {
  const algorithm = o.algorithm === 'md5' ? 'md5' : o.algorithm === undefined || o.algorithm === 'sha256' ? 'sha256' : undefined;
  if (!algorithm) throw new UsageError(`--algorithm must be sha256 or md5 (got ${String(o.algorithm)})`);
  const sum = await fs.checksum(path(p), algorithm);
  out.value({ path: path(p), algorithm, checksum: sum }, (v) => `${v.algorithm} of ${v.path} is ${v.checksum}`);
}

/** test(1) semantics: resolves true or false; the caller exits 0 or 1. */
export async function testPath(fs: FileSystem, p: string, o: Opts): Promise<boolean> {
  const np = path(p);
  const flags = ['d', 'e', 'f', 's', 'z'].filter((f) => o[f] === true);
  if (flags.length !== 1) throw new UsageError('fs test takes exactly one of -d, -e, -f, -s, -z');
  const st = await fs.getStatus(np).catch((err) => { if (isTesseraError(err, ErrorCode.FILE_NOT_FOUND)) return undefined; throw err; });
  switch (flags[0]) {
    case 'e': return st !== undefined;
    case 'd': return st?.isDirectory === true;
    case 'f': return st !== undefined && !st.isDirectory;
    case 's': return st !== undefined && (st.isDirectory ? st.childCount > 0 : st.lengthBytes > 0);
    case 'z': return st !== undefined && !st.isDirectory && st.lengthBytes === 0;
    default: return false;
  }
}

export async function chmod(fs: FileSystem, mode: string, p: string, o: Opts, out: Out): Promise<void> {
  if (!/^[0-7]{3,4}$/.test(mode)) throw new UsageError(`mode must be octal such as 755 (got ${mode})`);
  const st = await fs.setAttribute(path(p), { mode: parseInt(mode, 8), recursive: o.recursive === true });
  out.value({ path: st.path, mode: st.mode.toString(8) }, (v) => `Changed permission of ${v.path} to ${v.mode}`);
}
