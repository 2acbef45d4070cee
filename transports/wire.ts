/**
 * The wire format: every frame of every byte transport (tcp, tls, ws), defined once here with
 * its codec. The in-process transport hands `Frame` objects over as they are and never calls
 * this codec (see transports/inproc.ts).
 *
 * A connection is a sequence of frames in each direction. A frame is a fixed 12-byte header and
 * a payload. Protocol version 1 (PROTOCOL_VERSION in core/constants.ts):
 *
 *   offset  size  field
 *   0       4     payloadBytes  u32 LE, bytes after the header; <= maxFrameBytes (a server:
 *                               <= TRANSPORT_HANDSHAKE_FRAME_BYTES until the peer's handshake
 *                               is done), checked on the header before any payload byte is
 *                               buffered
 *   4       1     kind          FrameKind below; anything else is TESSERA_ERR_UNKNOWN_MESSAGE
 *   5       1     flags         bit 0 END (DATA only: last frame of that stream direction);
 *                               other bits 0
 *   6       2     reserved      0
 *   8       4     id            u32 LE: call id (= stream id) for call frames, 0 otherwise
 *   12      n     payload       DATA: raw bytes, never re-encoded;
 *                               every other kind: one msgpack value (msgpackr), or empty
 *                               for `undefined`
 *
 *   kind        dir   id    body
 *   HELLO  1    c->s  0     { magic: 'tessera', version, windowBytes, maxFrameBytes, nonce }  (first frame)
 *   CHALLENGE 2 s->c  0     { nonce: bytes }                    token auth only
 *   AUTH   3    c->s  0     { proof: bytes }                    HMAC-SHA256, see rpc-common.ts
 *   READY  4    s->c  0     { windowBytes, maxFrameBytes, method, proof?: bytes }   handshake done
 *   ERROR  5    both  0     { code, message }   connection-level error; the sender closes
 *   REQUEST 16  c->s  call  [methodKey: string, request, deadlineMs?: number]
 *   RESPONSE 17 s->c  call  response value (ends the call, and its download stream)
 *   FAILURE 18  s->c  call  { code, message }  (ends the call)
 *   CANCEL 19   c->s  call  undefined          the client gave up (deadline, abort)
 *   DATA   32   both  call  raw bytes          stream bytes; END flag on the last
 *   CREDIT 33   both  call  number             the receiver consumed that many more bytes
 *   PUSH   48    s->c  0     [eventKey: string, body]   server-pushed message
 *
 * The parser is a push parser: feed it chunks split anywhere, it emits whole frames or throws a
 * TesseraError (FRAME_TOO_LARGE, UNKNOWN_MESSAGE, PROTOCOL) and stays failed after that.
 */
import { Packr, Unpackr } from 'msgpackr';
import { assert } from '../core/assert.js';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { WRITE_BATCH_BYTES } from '../core/constants.js';

export const FRAME_HEADER_BYTES = 12;
export const FLAG_END = 1;

export const FrameKind = {
  HELLO: 1,
  CHALLENGE: 2,
  AUTH: 3,
  READY: 4,
  ERROR: 5,
  REQUEST: 16,
  RESPONSE: 17,
  FAILURE: 18,
  CANCEL: 19,
  DATA: 32,
  CREDIT: 33,
  PUSH: 48,
} as const;
export type FrameKindValue = (typeof FrameKind)[keyof typeof FrameKind];

const KIND_NAMES = new Map<number, string>(Object.entries(FrameKind).map(([k, v]) => [v, k]));
export function frameKindName(kind: number): string {
  return KIND_NAMES.get(kind) ?? `unknown(${kind})`;
}
export function isFrameKind(kind: number): kind is FrameKindValue {
  return KIND_NAMES.has(kind);
}

/**
 * One frame. DATA frames carry `bytes`; all others carry `body` (undefined when empty).
 * Every frame object has all five fields, so they share one hidden class.
 */
export interface Frame {
  kind: FrameKindValue;
  flags: number;
  id: number;
  body: unknown;
  bytes: Uint8Array | undefined;
}

export function frame(kind: FrameKindValue, id: number, body?: unknown): Frame {
  return { kind, flags: 0, id, body, bytes: undefined };
}

export function dataFrame(id: number, bytes: Uint8Array, end: boolean): Frame {
  return { kind: FrameKind.DATA, flags: end ? FLAG_END : 0, id, body: undefined, bytes };
}

// One codec for every metadata payload: plain msgpack (no records, so no state across frames).
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false });

export function packBody(body: unknown): Uint8Array {
  return packr.pack(body);
}

export function unpackBody(payload: Uint8Array): unknown {
  return unpackr.unpack(payload);
}

/** The payload bytes of a frame: DATA bytes as they are, any other body msgpack-encoded. */
export function framePayload(f: Frame): Uint8Array | undefined {
  if (f.kind === FrameKind.DATA) {
    assert(f.bytes !== undefined, 'a DATA frame has bytes');
    return f.bytes;
  }
  if (f.body === undefined) return undefined;
  try {
    return packr.pack(f.body);
  } catch (err) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot encode ${frameKindName(f.kind)} frame: ${(err as Error).message}`, { cause: err });
  }
}

/** Payloads at least this big are written as their own buffer instead of being copied. */
export const COPY_LIMIT_BYTES = 16 * 1024;

/**
 * The order to write one flush's frames in, given their ids: each call's frames together, in
 * the order they were sent, calls in the order of their first frame; connection-level frames
 * (id 0) stay where they are and nothing moves across them. Returns undefined when the frames
 * already are in that order.
 *
 * Why: handlers that run at once (a pipelined client) send in turns, one await each, so a
 * flush holds every call's DATA before any call's RESPONSE; the first reader then waits for
 * all the others' bytes before its call ends and it can ask for more, and the pipe empties
 * between rounds. Grouped, a call's RESPONSE follows its own DATA. The order between calls
 * is not part of the protocol (each call's frames stay in order, and the frames of a call are
 * all that its peer matches up).
 */
export function callOrder(ids: readonly number[]): number[] | undefined {
  let seen: Set<number> | undefined;
  let last = 0;
  let grouped = true;
  for (const id of ids) {
    if (id === 0) { seen?.clear(); last = 0; continue; }
    if (id === last) continue;
    seen ??= new Set();
    if (seen.has(id)) { grouped = false; break; }
    seen.add(id);
    last = id;
  }
  if (grouped) return undefined;
  const order: number[] = [];
  const groups = new Map<number, number[]>();
  const close = (): void => {
    for (const g of groups.values()) for (const i of g) order.push(i);
    groups.clear();
  };
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === 0) {
      close();
      order.push(i);
      continue;
    }
    const g = groups.get(id);
    if (g) g.push(i);
    else groups.set(id, [i]);
  }
  close();
  return order;
}

/**
 * Turns frames into few buffers: small frames (and all headers) are packed back to back into
 * one batch buffer; a big DATA payload follows its header as its own buffer, uncopied. `take()`
 * returns the buffers of everything added since the last take, for one vectored write.
 */
export class FrameEncoder {
  /** Frames over this are refused (FRAME_TOO_LARGE): the receiving peer's limit, once known. */
  maxFrameBytes: number;
  #batch: Buffer;
  #start = 0;
  #pos = 0;
  #out: Uint8Array[] = [];
  #pendingBytes = 0;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
    this.#batch = Buffer.allocUnsafe(WRITE_BATCH_BYTES);
  }

  /** Bytes added and not yet taken. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  add(f: Frame): void {
    this.addEncoded(f, framePayload(f));
  }

  /** Adds a frame whose payload `framePayload(f)` already computed. */
  addEncoded(f: Frame, payload: Uint8Array | undefined): void {
    const payloadBytes = payload === undefined ? 0 : payload.byteLength;
    if (payloadBytes > this.maxFrameBytes) {
      throw new TesseraError(ErrorCode.FRAME_TOO_LARGE,
        `Cannot send ${frameKindName(f.kind)} frame: payload of ${payloadBytes} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`);
    }
    const copy = payloadBytes < COPY_LIMIT_BYTES;
    this.#reserve(FRAME_HEADER_BYTES + (copy ? payloadBytes : 0));
    const b = this.#batch;
    const p = this.#pos;
    b.writeUInt32LE(payloadBytes, p);
    b[p + 4] = f.kind;
    b[p + 5] = f.flags;
    b[p + 6] = 0;
    b[p + 7] = 0;
    b.writeUInt32LE(f.id >>> 0, p + 8);
    this.#pos = p + FRAME_HEADER_BYTES;
    if (payload !== undefined && payloadBytes > 0) {
      if (copy) {
        b.set(payload, this.#pos);
        this.#pos += payloadBytes;
      } else {
        this.#cut();
        this.#out.push(payload);
      }
    }
    this.#pendingBytes += FRAME_HEADER_BYTES + payloadBytes;
  }

  /** The buffers to write, in order; the encoder forgets them (the socket now owns them). */
  take(): Uint8Array[] {
    this.#cut();
    const out = this.#out;
    this.#out = [];
    this.#pendingBytes = 0;
    return out;
  }

  #cut(): void {
    if (this.#pos > this.#start) this.#out.push(this.#batch.subarray(this.#start, this.#pos));
    this.#start = this.#pos;
  }

  #reserve(n: number): void {
    if (this.#pos + n <= this.#batch.length) return;
    this.#cut();
    // Buffers already handed out stay owned by the socket, so start a fresh batch buffer.
    this.#batch = Buffer.allocUnsafe(Math.max(WRITE_BATCH_BYTES, n));
    this.#start = 0;
    this.#pos = 0;
  }
}

/** Encodes frames into one contiguous buffer (tests, tools). */
export function encodeFrames(frames: Frame[], maxFrameBytes: number): Buffer {
  const enc = new FrameEncoder(maxFrameBytes);
  for (const f of frames) enc.add(f);
  return Buffer.concat(enc.take());
}

const enum ParseState { HEADER, PAYLOAD, DATA_PIECES, FAILED }

/**
 * Push parser from bytes to frames. Frames whose payload lies in one received chunk reference
 * that chunk (no copy). A metadata payload spread over chunks is assembled once into a buffer
 * of its exact size, allocated only after its length passed the limit check. A DATA payload
 * spread over chunks is never assembled: it comes out as several DATA frames of the same id,
 * one per received piece (zero-copy subarrays), the END flag on the last; stream bytes have
 * no boundaries a reader may rely on.
 */
export class FrameParser {
  /** The limit once lifted (see liftLimit). */
  readonly maxFrameBytes: number;
  /** The limit in force: lower than maxFrameBytes until liftLimit() (a peer still in its handshake). */
  #limitBytes: number;
  #state = ParseState.HEADER;
  #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerFill = 0;
  #kind = 0;
  #flags = 0;
  #id = 0;
  #payload: Buffer | undefined;
  #payloadFill = 0;
  #dataLeft = 0;
  #error: TesseraError | undefined;

  constructor(maxFrameBytes: number, limitBytes: number = maxFrameBytes) {
    assert(Number.isInteger(maxFrameBytes) && maxFrameBytes > 0, 'maxFrameBytes is a positive integer');
    assert(Number.isInteger(limitBytes) && limitBytes > 0 && limitBytes <= maxFrameBytes, 'the first frame limit is a positive integer <= maxFrameBytes');
    this.maxFrameBytes = maxFrameBytes;
    this.#limitBytes = limitBytes;
  }

  /** The largest payload accepted now. */
  get limitBytes(): number {
    return this.#limitBytes;
  }

  /** Raises the limit to maxFrameBytes (the peer finished its handshake). Applies from the next header. */
  liftLimit(): void {
    this.#limitBytes = this.maxFrameBytes;
  }

  /** True while a frame is partly received. */
  get midFrame(): boolean {
    return this.#headerFill > 0 || this.#state === ParseState.PAYLOAD || this.#state === ParseState.DATA_PIECES;
  }

  /** Feeds one chunk; calls `emit` for every whole frame; throws a TesseraError on bad input. */
  push(chunk: Uint8Array, emit: (f: Frame) => void): void {
    if (this.#state === ParseState.FAILED) throw this.#error!;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let off = 0;
    const n = buf.length;
    while (off < n) {
      if (this.#state === ParseState.HEADER) {
        if (this.#headerFill === 0 && n - off >= FRAME_HEADER_BYTES) {
          // Fast path: the whole header, and maybe the whole payload, is in this chunk.
          const len = this.#readHeader(buf, off);
          off += FRAME_HEADER_BYTES;
          if (n - off >= len) {
            emit(this.#makeFrame(buf.subarray(off, off + len)));
            off += len;
          } else {
            this.#startPayload(len);
          }
          continue;
        }
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, n - off);
        buf.copy(this.#header, this.#headerFill, off, off + take);
        this.#headerFill += take;
        off += take;
        if (this.#headerFill < FRAME_HEADER_BYTES) break;
        this.#headerFill = 0;
        const len = this.#readHeader(this.#header, 0);
        if (len === 0) emit(this.#makeFrame(EMPTY));
        else this.#startPayload(len);
      } else if (this.#state === ParseState.DATA_PIECES) {
        // Stream bytes are never assembled: each received piece is passed on as it is.
        const take = Math.min(this.#dataLeft, n - off);
        this.#dataLeft -= take;
        const last = this.#dataLeft === 0;
        if (last) this.#state = ParseState.HEADER;
        emit({ kind: FrameKind.DATA, flags: last ? this.#flags : 0, id: this.#id, body: undefined, bytes: buf.subarray(off, off + take) });
        off += take;
      } else {
        const p = this.#payload!;
        const take = Math.min(p.length - this.#payloadFill, n - off);
        buf.copy(p, this.#payloadFill, off, off + take);
        this.#payloadFill += take;
        off += take;
        if (this.#payloadFill === p.length) {
          this.#payload = undefined;
          this.#state = ParseState.HEADER;
          emit(this.#makeFrame(p));
        }
      }
    }
  }

  #startPayload(len: number): void {
    if (this.#kind === FrameKind.DATA) {
      this.#dataLeft = len;
      this.#state = ParseState.DATA_PIECES;
      return;
    }
    this.#payload = Buffer.allocUnsafe(len);
    this.#payloadFill = 0;
    this.#state = ParseState.PAYLOAD;
  }

  #fail(code: (typeof ErrorCode)[keyof typeof ErrorCode], message: string): never {
    this.#state = ParseState.FAILED;
    this.#error = new TesseraError(code, message);
    throw this.#error;
  }

  #readHeader(b: Buffer, off: number): number {
    const len = b.readUInt32LE(off);
    const kind = b[off + 4]!;
    const flags = b[off + 5]!;
    if (!isFrameKind(kind)) this.#fail(ErrorCode.UNKNOWN_MESSAGE, `Bad frame: unknown message kind ${kind}`);
    if (len > this.#limitBytes) {
      this.#fail(ErrorCode.FRAME_TOO_LARGE, this.#limitBytes === this.maxFrameBytes
        ? `Bad frame: ${frameKindName(kind)} payload of ${len} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`
        : `Bad frame: ${frameKindName(kind)} payload of ${len} bytes exceeds handshakeFrameBytes ${this.#limitBytes} (the limit until the handshake is done)`);
    }
    if (b[off + 6] !== 0 || b[off + 7] !== 0) this.#fail(ErrorCode.PROTOCOL, 'Bad frame: reserved header bytes are not zero');
    if (flags !== 0 && !(kind === FrameKind.DATA && flags === FLAG_END)) {
      this.#fail(ErrorCode.PROTOCOL, `Bad frame: flags ${flags} on a ${frameKindName(kind)} frame`);
    }
    this.#kind = kind;
    this.#flags = flags;
    this.#id = b.readUInt32LE(off + 8);
    return len;
  }

  #makeFrame(payload: Buffer): Frame {
    const kind = this.#kind as FrameKindValue;
    if (kind === FrameKind.DATA) return { kind, flags: this.#flags, id: this.#id, body: undefined, bytes: payload };
    let body: unknown;
    if (payload.length > 0) {
      try {
        body = unpackr.unpack(payload);
      } catch (err) {
        this.#fail(ErrorCode.PROTOCOL, `Bad frame: ${frameKindName(kind)} payload is not valid msgpack (${(err as Error).message})`);
      }
    }
    return { kind, flags: this.#flags, id: this.#id, body, bytes: undefined };
  }
}

const EMPTY = Buffer.alloc(0);
