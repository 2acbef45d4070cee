/**
 * Reading checkpoints back, verified as they stream: each chunk's CRC32C, the running CRC32C
 * of all chunks in the end frame, and nothing after it. Any mismatch throws
 * TESSERA_ERR_JOURNAL_CORRUPT naming the file and the byte offset. Used by replay and by the
 * dump tool. (Logs are small enough, a roll's worth, to be read whole; see journal.ts.)
 */
import { crc32c } from '../crc32c.js';
import { JOURNAL_CHECKPOINT_CHUNK_BYTES, MIB } from '../constants.js';
import { ErrorCode, TesseraError } from '../errors.js';
import { CHECKPOINT_FRAME_HEADER_BYTES, CHECKPOINT_HEADER_BYTES, decodeCheckpointHeader, decodeFrameHeader, hex32 } from './format.js';
import type { Fs, FsFile } from './fs.js';

const READ_BLOCK_BYTES = 1 * MIB;

export function corrupt(path: string, offsetBytes: number, reason: string, cause?: unknown): TesseraError {
  return new TesseraError(ErrorCode.JOURNAL_CORRUPT, `Journal is corrupt: ${path} at offset ${offsetBytes}: ${reason}`, cause === undefined ? undefined : { cause });
}

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
