/**
 * Checkpoint files (layout in format.ts). Writing: frames of the machine's snapshot chunks,
 * gathered into writes of about JOURNAL_CHECKPOINT_WRITE_BYTES, then fdatasync; the caller
 * renames the temp file into place. Reading back, verified as it streams: each chunk's
 * CRC32C, the running CRC32C of all chunks in the end frame, and nothing after it. Any
 * mismatch throws TESSERA_ERR_JOURNAL_CORRUPT naming the file and the byte offset. Used by
 * replay and by the dump tool. (Logs are a roll's worth and are read whole; see replay.ts.)
 */
import { crc32c } from '../crc32c.js';
import { assert } from '../assert.js';
import { JOURNAL_CHECKPOINT_CHUNK_BYTES, JOURNAL_CHECKPOINT_WRITE_BYTES, MIB } from '../constants.js';
import { ErrorCode, TesseraError } from '../errors.js';
import {
  CHECKPOINT_FRAME_HEADER_BYTES, CHECKPOINT_HEADER_BYTES, corrupt, decodeCheckpointHeader, decodeFrameHeader,
  encodeCheckpointHeader, encodeFrameHeader, hex32,
} from './format.js';
import type { Fs, FsFile } from './fs.js';
import type { CheckpointWriter } from './types.js';

const READ_BLOCK_BYTES = 1 * MIB;

export class CheckpointFileReader {
  /** The sequence the checkpoint covers. */
  readonly sequence: number;
  readonly sizeBytes: number;
  /** Where the next frame starts. */
  offsetBytes = CHECKPOINT_HEADER_BYTES;
  chunkCount = 0;
  #runningCrc = 0;
  #done = false;
  #block = new Uint8Array(0);
  #blockStart = 0;

  constructor(readonly path: string, private readonly file: FsFile, sizeBytes: number, sequence: number) {
    this.sizeBytes = sizeBytes;
    this.sequence = sequence;
  }

  /** Reads exactly n bytes at position, or fewer at the end of the file. Never reuses memory. */
  async #readAt(position: number, n: number): Promise<Uint8Array> {
    const inBlock = position - this.#blockStart;
    if (inBlock >= 0 && inBlock + n <= this.#block.length) return this.#block.subarray(inBlock, inBlock + n);
    const want = Math.min(Math.max(n, READ_BLOCK_BYTES), Math.max(0, this.sizeBytes - position));
    const block = new Uint8Array(want);
    let got = 0;
    while (got < want) {
      const r = await this.file.read(block, got, want - got, position + got);
      if (r <= 0) break;
      got += r;
    }
    this.#block = block.subarray(0, got);
    this.#blockStart = position;
    return this.#block.subarray(0, Math.min(n, got));
  }

  /** The verified chunks, in order. Throws JOURNAL_CORRUPT at the first problem. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    while (!this.#done) {
      const at = this.offsetBytes;
      const head = await this.#readAt(at, CHECKPOINT_FRAME_HEADER_BYTES);
      if (head.length < CHECKPOINT_FRAME_HEADER_BYTES) throw corrupt(this.path, at, `checkpoint ends without its end frame (${this.sizeBytes} bytes)`);
      const { length, crc } = decodeFrameHeader(head);
      if (length === 0) {
        if (crc !== this.#runningCrc) throw corrupt(this.path, at, `checkpoint end frame CRC32C ${hex32(crc)} does not match its chunks (${hex32(this.#runningCrc)}): a frame is missing or out of order`);
        if (at + CHECKPOINT_FRAME_HEADER_BYTES !== this.sizeBytes) throw corrupt(this.path, at + CHECKPOINT_FRAME_HEADER_BYTES, `${this.sizeBytes - at - CHECKPOINT_FRAME_HEADER_BYTES} bytes follow the checkpoint end frame`);
        this.#done = true;
        return;
      }
      if (length > JOURNAL_CHECKPOINT_CHUNK_BYTES) throw corrupt(this.path, at, `checkpoint chunk length ${length} exceeds the limit ${JOURNAL_CHECKPOINT_CHUNK_BYTES}`);
      const chunk = await this.#readAt(at + CHECKPOINT_FRAME_HEADER_BYTES, length);
      if (chunk.length < length) throw corrupt(this.path, at, `checkpoint chunk is cut short (${chunk.length} of ${length} bytes)`);
      const actual = crc32c(chunk);
      if (actual !== crc) throw corrupt(this.path, at, `checkpoint chunk CRC32C mismatch (stored ${hex32(crc)}, computed ${hex32(actual)})`);
      this.#runningCrc = crc32c(chunk, this.#runningCrc);
      this.offsetBytes = at + CHECKPOINT_FRAME_HEADER_BYTES + length;
      this.chunkCount += 1;
      yield chunk;
    }
  }

  /** Verifies whatever the consumer of chunks() did not read, up to the end frame. */
  async finish(): Promise<void> {
    for await (const _ of this.chunks()) { /* verify only */ }
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

export async function openCheckpoint(fs: Fs, path: string): Promise<CheckpointFileReader> {
  const file = await fs.open(path, 'read');
  try {
    const sizeBytes = await file.sizeBytes();
    const head = new Uint8Array(CHECKPOINT_HEADER_BYTES);
    const got = sizeBytes >= CHECKPOINT_HEADER_BYTES ? await file.read(head, 0, CHECKPOINT_HEADER_BYTES, 0) : 0;
    const header = decodeCheckpointHeader(head.subarray(0, got));
    if (!header.ok) throw corrupt(path, 0, header.reason);
    return new CheckpointFileReader(path, file, sizeBytes, header.sequence);
  } catch (err) {
    await file.close();
    throw err;
  }
}

/** Writes a complete, fdatasynced checkpoint of `writer` (covering 1..sequence) at `path`. */
export async function writeCheckpointFile(fs: Fs, path: string, sequence: number, writer: CheckpointWriter, component: string): Promise<void> {
  const file = await fs.open(path, 'truncate');
  try {
    let position = 0;
    const staged: Uint8Array[] = [];
    let stagedBytes = 0;
    const flush = async (): Promise<void> => {
      if (stagedBytes === 0) return;
      const out = staged.length === 1 ? staged[0]! : concat(staged, stagedBytes);
      await file.write(out, position);
      position += stagedBytes;
      staged.length = 0;
      stagedBytes = 0;
    };
    const stage = async (bytes: Uint8Array): Promise<void> => {
      staged.push(bytes);
      stagedBytes += bytes.length;
      if (stagedBytes >= JOURNAL_CHECKPOINT_WRITE_BYTES) await flush();
    };
    await stage(encodeCheckpointHeader(sequence));
    let runningCrc = 0;
    for await (const whole of writer) {
      if (!(whole instanceof Uint8Array)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot checkpoint '${component}': snapshot() yielded a ${typeof whole}, not a Uint8Array`);
      // A chunk above the frame limit goes out as several frames (and is read back so).
      for (let at = 0; at < whole.length; at += JOURNAL_CHECKPOINT_CHUNK_BYTES) {
        const chunk = whole.subarray(at, Math.min(whole.length, at + JOURNAL_CHECKPOINT_CHUNK_BYTES));
        await stage(encodeFrameHeader(chunk.length, crc32c(chunk)));
        // The chunk may belong to the machine: copy it if it stays staged across an await.
        await stage(stagedBytes + chunk.length >= JOURNAL_CHECKPOINT_WRITE_BYTES ? chunk : chunk.slice());
        runningCrc = crc32c(chunk, runningCrc);
      }
    }
    await stage(encodeFrameHeader(0, runningCrc));
    await flush();
    await file.datasync();
    assert(position >= CHECKPOINT_FRAME_HEADER_BYTES, 'a checkpoint has at least its header and end frame');
  } finally {
    await file.close();
  }
}

function concat(parts: Uint8Array[], totalBytes: number): Uint8Array {
  const out = new Uint8Array(totalBytes);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
