/**
 * The piscina task module of the worker's UFS pool (loaded from dist/ by worker/ufs-pool.ts):
 * the UFS reads of cache misses and the file writes of async persistence run here, off the
 * event loop of the worker host.
 *
 * Block bytes reach this thread without a copy where possible: a view over the
 * SharedArrayBuffer arena is shared by structured clone; a /dev/shm arena is mapped read-only
 * here by path (the host holds the block's pin for the duration of the task); SSD/HDD blocks
 * are read from their files. Each thread keeps its UFS instances and arena mappings open.
 */
import { open } from 'node:fs/promises';
import { move } from 'piscina';
import { openUfs, type UnderFileSystem } from '../ufs/index.js';
import { mapShared } from '../native/index.js';
import { ErrorCode, TesseraError } from '../core/errors.js';

export type PersistPart =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'shm'; path: string; arenaBytes: number; offsetBytes: number; lengthBytes: number }
  | { kind: 'file'; path: string; lengthBytes: number };

export type UfsTask =
  | { op: 'read'; ufsUri: string; ufsPath: string; offsetBytes: number; lengthBytes: number }
  | { op: 'persist'; ufsUri: string; ufsPath: string; parts: PersistPart[] };

const ufsByUri = new Map<string, Promise<UnderFileSystem>>();
const arenaByPath = new Map<string, Uint8Array>();
const FILE_CHUNK_BYTES = 4 * 1024 * 1024;

function ufsFor(uri: string): Promise<UnderFileSystem> {
  let u = ufsByUri.get(uri);
  if (!u) {
    u = openUfs(uri);
    ufsByUri.set(uri, u);
    u.catch(() => ufsByUri.delete(uri));
  }
  return u;
}

export async function readRange(ufs: UnderFileSystem, ufsPath: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
  const out = new Uint8Array(new ArrayBuffer(lengthBytes));
  let at = 0;
  for await (const chunk of ufs.openRead(ufsPath, offsetBytes, lengthBytes)) {
    if (at + chunk.byteLength > lengthBytes) throw new TesseraError(ErrorCode.UFS, `UFS read ${ufsPath}: more bytes than asked for`);
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  if (at !== lengthBytes) {
    throw new TesseraError(ErrorCode.UFS, `UFS read ${ufsPath}: got ${at} of ${lengthBytes} bytes at offset ${offsetBytes} (file shorter than its block list)`);
  }
  return out;
}

function arena(path: string, arenaBytes: number): Uint8Array {
  let a = arenaByPath.get(path);
  if (!a || a.byteLength !== arenaBytes) {
    a = new Uint8Array(mapShared(path, arenaBytes, { create: false, lock: false, readOnly: true }));
    arenaByPath.set(path, a);
  }
  return a;
}

export async function persistParts(ufs: UnderFileSystem, ufsPath: string, parts: PersistPart[]): Promise<number> {
  const w = await ufs.create(ufsPath, { overwrite: true });
  let total = 0;
  try {
    for (const p of parts) {
      if (p.kind === 'bytes') {
        await w.write(p.bytes);
        total += p.bytes.byteLength;
      } else if (p.kind === 'shm') {
        const a = arena(p.path, p.arenaBytes);
        // The UFS may keep the chunk until its write resolves; the host's pin keeps it unchanged.
        await w.write(a.subarray(p.offsetBytes, p.offsetBytes + p.lengthBytes));
        total += p.lengthBytes;
      } else {
        const fh = await open(p.path, 'r');
        try {
          let at = 0;
          while (at < p.lengthBytes) {
            const n = Math.min(FILE_CHUNK_BYTES, p.lengthBytes - at);
            const buf = Buffer.allocUnsafeSlow(n);
            const { bytesRead } = await fh.read(buf, 0, n, at);
            if (bytesRead === 0) throw new TesseraError(ErrorCode.UFS, `Cannot persist: block file ${p.path} is shorter than ${p.lengthBytes} bytes`);
            await w.write(buf.subarray(0, bytesRead));
            at += bytesRead;
          }
        } finally {
          await fh.close();
        }
        total += p.lengthBytes;
      }
    }
    await w.close();
  } catch (err) {
    await w.abort().catch(() => undefined);
    throw err;
  }
  return total;
}

/** Runs one task with UFS instances of the calling thread (also used inline for memory://). */
export async function runUfsTask(task: UfsTask): Promise<Uint8Array | number> {
  const ufs = await ufsFor(task.ufsUri);
  if (task.op === 'read') return readRange(ufs, task.ufsPath, task.offsetBytes, task.lengthBytes);
  return persistParts(ufs, task.ufsPath, task.parts);
}

export default async function ufsTask(task: UfsTask): Promise<unknown> {
  const r = await runUfsTask(task);
  if (r instanceof Uint8Array) return move(r as unknown as ArrayBufferView);
  return r;
}
