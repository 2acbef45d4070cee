/**
 * Byte streams with credit-based flow control, one per direction of a call.
 *
 *   sender (OutStream)                         receiver (InStream)
 *   credit = peer window ───── DATA n ───────>  queue (<= window bytes, else PROTOCOL error)
 *   credit -= n                                 consumer takes a chunk: consumed += n
 *   credit += k  <──────────── CREDIT k ──────  when consumed >= window/4: grant k = consumed
 *
 * The sender never has more than the receiver's window in flight, so a reader that stops
 * stalls the writer (its write() promise stays pending) and memory stays bounded on both
 * sides. Chunks are handed over as they are (subarrays when split), never copied here.
 */
import { assert } from '../core/assert.js';
import { ErrorCode, TesseraError } from '../core/errors.js';

/** Where a handler (or a client upload) writes bytes. */
export interface ByteSink {
  /**
   * Hands a chunk over. Resolves once every byte of it is sent, which waits for credit
   * when the reader is slow. Do not modify the chunk afterwards. Rejects once the call ended
   * (cancelled, deadline, connection closed).
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Bytes that can be written now without waiting. */
  readonly credit: number;
  /** Total bytes handed over so far. */
  readonly bytesWritten: number;
}

/** Where a handler (or a client download) reads bytes: an async iterable of chunks. */
export interface ByteSource extends AsyncIterable<Uint8Array> {
  /** Reads to the end into one buffer; fails with LIMIT_EXCEEDED past `maxBytes`. */
  readAll(maxBytes: number): Promise<Uint8Array>;
  /** Total bytes received so far. */
  readonly bytesRead: number;
}

const RESOLVED = Promise.resolve();
const noop = (): void => undefined;

export class OutStream implements ByteSink {
  #credit: number;
  #chunkBytes: number;
  #send: ((bytes: Uint8Array, end: boolean) => void) | undefined;
  #error: TesseraError | undefined;
  #finished = false;
  #tail: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #bytesWritten = 0;

  /** `send` may be bound later (a client call before its connection is ready). */
  constructor(initialCredit: number, chunkBytes: number, send?: (bytes: Uint8Array, end: boolean) => void) {
    assert(chunkBytes > 0 && initialCredit >= 0, 'stream chunk and credit sizes are valid');
    this.#credit = initialCredit;
    this.#chunkBytes = chunkBytes;
    this.#send = send;
  }

  get credit(): number {
    return this.#send === undefined ? 0 : this.#credit;
  }

  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** Binds the stream to its call: the sender, the peer's window, and its largest chunk. */
  bind(send: (bytes: Uint8Array, end: boolean) => void, credit: number, chunkBytes: number): void {
    assert(chunkBytes > 0, 'stream chunk size is positive');
    this.#send = send;
    this.#chunkBytes = Math.min(this.#chunkBytes, chunkBytes);
    this.addCredit(credit);
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (!(chunk instanceof Uint8Array)) return Promise.reject(new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Cannot write to stream: chunk is not a Uint8Array'));
    if (this.#finished || chunk.byteLength === 0) return RESOLVED;
    const n = chunk.byteLength;
    if (this.#tail === undefined && this.#send !== undefined && n <= this.#credit && n <= this.#chunkBytes) {
      this.#credit -= n;
      this.#bytesWritten += n;
      this.#send(chunk, false);
      return RESOLVED;
    }
    const p = (this.#tail ?? RESOLVED).then(() => this.#writeSlow(chunk));
    this.#tail = p;
    const clear = (): void => { if (this.#tail === p) this.#tail = undefined; };
    p.then(clear, clear);
    return p;
  }

  async #writeSlow(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.byteLength) {
      if (this.#error) throw this.#error;
      if (this.#finished) return;
      if (this.#send === undefined || this.#credit <= 0) {
        await new Promise<void>((resolve) => { this.#wake = resolve; });
        continue;
      }
      const n = Math.min(this.#credit, this.#chunkBytes, chunk.byteLength - off);
      this.#credit -= n;
      this.#bytesWritten += n;
      this.#send(chunk.subarray(off, off + n), false);
      off += n;
    }
  }

  /** Resolves when every write so far has been handed to the connection. */
  drain(): Promise<void> {
    return this.#tail ?? (this.#error ? Promise.reject(this.#error) : RESOLVED);
  }

  /** After the pending writes, sends the END mark (uploads); resolves when it is sent. */
  async end(): Promise<void> {
    await this.drain();
    if (this.#error) throw this.#error;
    if (this.#finished) return;
    this.#finished = true;
    assert(this.#send !== undefined, 'a stream is bound before it ends');
    this.#send(new Uint8Array(0), true);
  }

  addCredit(n: number): void {
    this.#credit += n;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The call is over: later writes are no-ops (the peer answered and needs no more bytes). */
  finish(): void {
    this.#finished = true;
    this.addCredit(0);
  }

  /** The call failed: pending and later writes reject with `err`. */
  fail(err: TesseraError): void {
    if (this.#error || this.#finished) return;
    this.#error = err;
    if (this.#tail) this.#tail.catch(noop);
    this.addCredit(0);
  }
}

export class InStream implements ByteSource, AsyncIterator<Uint8Array> {
  readonly #windowBytes: number;
  readonly #grantThresholdBytes: number;
  #grant: ((n: number) => void) | undefined;
  readonly #onAbandon: () => void;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #queuedBytes = 0;
  #consumedUngranted = 0;
  #ended = false;
  #abandoned = false;
  #error: TesseraError | undefined;
  #waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: unknown) => void } | undefined;
  #bytesRead = 0;
  #iterating = false;

  constructor(windowBytes: number, grant: ((n: number) => void) | undefined, onAbandon: () => void) {
    this.#windowBytes = windowBytes;
    this.#grantThresholdBytes = Math.max(1, Math.floor(windowBytes / 4));
    this.#grant = grant;
    this.#onAbandon = onAbandon;
  }

  get bytesRead(): number {
    return this.#bytesRead;
  }

  bindGrant(grant: (n: number) => void): void {
    this.#grant = grant;
  }

  /** Receives bytes; false when the sender broke the credit window (a protocol error). */
  push(bytes: Uint8Array, end: boolean): boolean {
    if (this.#ended || this.#error || this.#abandoned) return true;
    if (bytes.byteLength > 0) {
      if (this.#queuedBytes + this.#consumedUngranted + bytes.byteLength > this.#windowBytes) return false;
      const w = this.#waiter;
      if (w !== undefined) {
        this.#waiter = undefined;
        this.#consume(bytes.byteLength);
        w.resolve({ done: false, value: bytes });
      } else {
        this.#chunks.push(bytes);
        this.#queuedBytes += bytes.byteLength;
      }
    }
    if (end) this.end();
    return true;
  }

  end(): void {
    if (this.#ended || this.#error) return;
    this.#ended = true;
    if (this.#waiter && this.#head >= this.#chunks.length) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve({ done: true, value: undefined });
    }
  }

  fail(err: TesseraError): void {
    if (this.#ended || this.#error) return;
    this.#error = err;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(err);
  }

  #consume(n: number): void {
    this.#bytesRead += n;
    this.#consumedUngranted += n;
    if (this.#consumedUngranted >= this.#grantThresholdBytes && this.#grant !== undefined && !this.#ended) {
      const k = this.#consumedUngranted;
      this.#consumedUngranted = 0;
      this.#grant(k);
    }
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#head < this.#chunks.length) {
      const value = this.#chunks[this.#head]!;
      this.#chunks[this.#head++] = EMPTY;
      if (this.#head === this.#chunks.length) { this.#chunks = []; this.#head = 0; }
      this.#queuedBytes -= value.byteLength;
      this.#consume(value.byteLength);
      return Promise.resolve({ done: false, value });
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended || this.#abandoned) return Promise.resolve({ done: true, value: undefined });
    assert(this.#waiter === undefined, 'one next() at a time on a byte stream');
    return new Promise((resolve, reject) => { this.#waiter = { resolve, reject }; });
  }

  /** The consumer stopped early (break out of for-await): the call is cancelled. */
  return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.#ended && !this.#error && !this.#abandoned) {
      this.#abandoned = true;
      this.#chunks = [];
      this.#head = 0;
      this.#onAbandon();
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    assert(!this.#iterating, 'a byte stream is iterated once');
    this.#iterating = true;
    return this;
  }

  async readAll(maxBytes: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const r = await this.next();
      if (r.done) break;
      total += r.value.byteLength;
      if (total > maxBytes) {
        void this.return();
        throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot read stream: more than maxBytes ${maxBytes}`);
      }
      parts.push(r.value);
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
  }
}

const EMPTY = new Uint8Array(0);
