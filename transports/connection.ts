/**
 * `Connection`: one base class owns the lifecycle of every transport's connections, so that
 * close and destroy mean the same thing over inproc, TCP, TLS and WebSocket. Implementations
 * only move frames: `_sendFrames` out, `_receive` in, `_end`/`_destroy` for the socket.
 *
 *   open ──close()──> closing ──(pending frames flushed, peer told)──> closed
 *     └──────────destroy() / peer gone / protocol error──────────────────┘
 *
 * close() and destroy() are idempotent; the first reason wins and is what `closeReason` and
 * the single 'close' event carry (a TesseraError, CONNECTION_CLOSED for an orderly close).
 * Frames sent in one tick are handed to the implementation together (one socket write).
 * A connection does not know about calls or auth: that is the RPC layer (rpc-*.ts).
 *
 * `flushed()` tells when the bytes handed over so far have left the process: each flush is a
 * numbered batch, and the implementation reports a batch done from the socket's write
 * callback (tcp, tls, ws) or once the peer received its frames (inproc). Until then the
 * socket may still read the buffers given to send(), so a sender of views into memory it
 * reuses (the worker's arena) keeps that memory until flushed() settles:
 *
 *   send(f) ... send(g)  ──tick──>  batch n handed to the socket  ──write cb──>  written n
 *   flushed() taken here waits for batch n: resolves at "written n", or rejects with the
 *   close reason if the connection closes first (the socket then writes nothing more, so the
 *   buffers are no longer read either way).
 */
import { EventEmitter } from 'node:events';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { COPY_LIMIT_BYTES, FRAME_HEADER_BYTES, type Frame, FrameEncoder, FrameKind, FrameParser, callOrder, frame, frameKindName, framePayload } from './wire.js';

/** What TLS says about the peer (only on tls:// and wss:// connections). */
export interface TlsPeerInfo {
  /** True when the peer presented a certificate that chains to our CA. */
  authorized: boolean;
  authorizationError: string | undefined;
  /** Subject common name of the peer certificate, if any. */
  subjectCN: string | undefined;
}

let nextConnectionId = 1;
const RESOLVED = Promise.resolve();

interface FlushWaiter { batch: number; resolve: () => void; reject: (reason: TesseraError) => void }

export abstract class Connection extends EventEmitter {
  /** Process-unique id, for logs and for tying leases to a connection. */
  readonly id = nextConnectionId++;
  readonly localAddress: string;
  readonly remoteAddress: string;
  /**
   * When the transport accepted the underlying connection (performance.now() ms): before a
   * TLS handshake or WebSocket upgrade, so the RPC handshake deadline counts from there.
   * Connections made by connect(): when the object was made.
   */
  readonly acceptedAtMs: number;
  /** Set by the RPC layer: called for each received frame, in order. */
  onFrame: ((f: Frame) => void) | undefined;
  /**
   * Set by the RPC layer: called (asynchronously) with a frame that could not be sent because
   * it is over the peer's frame limit or cannot be encoded; the connection stays up. Without
   * it, such a frame closes the connection.
   */
  onFrameRejected: ((f: Frame, err: TesseraError) => void) | undefined;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #reason: TesseraError | undefined;
  #outbox: Frame[] = [];
  #flushScheduled = false;
  #inbox: Frame[] | undefined;
  #closed: Promise<TesseraError>;
  #resolveClosed!: (r: TesseraError) => void;
  /** Batches handed to the implementation, and how many of them it reported written. */
  #batchesHanded = 0;
  #batchesWritten = 0;
  #flushWaiters: FlushWaiter[] = [];

  constructor(localAddress: string, remoteAddress: string, acceptedAtMs?: number) {
    super();
    this.localAddress = localAddress;
    this.remoteAddress = remoteAddress;
    this.acceptedAtMs = acceptedAtMs ?? performance.now();
    this.#closed = new Promise((resolve) => { this.#resolveClosed = resolve; });
  }

  /**
   * Bytes handed to the socket that the kernel has not taken yet (0 where there is no socket).
   * The implementation emits 'drain' when it falls back to zero.
   */
  get unsentBytes(): number {
    return 0;
  }

  /** TLS facts about the peer, or undefined on transports without TLS. */
  get tls(): TlsPeerInfo | undefined {
    return undefined;
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** Why the connection closed (or is closing); undefined while open. */
  get closeReason(): TesseraError | undefined {
    return this.#reason;
  }

  /** Resolves with the close reason once the connection is closed. */
  get closed(): Promise<TesseraError> {
    return this.#closed;
  }

  /** Queues a frame; frames of one tick go out in one write. Dropped once closing. */
  send(f: Frame): void {
    if (this.#state !== 'open') return;
    try {
      this._enqueue(f);
    } catch (err) {
      this.destroy(err instanceof TesseraError ? err
        : new TesseraError(ErrorCode.CONNECTION_CLOSED, `Connection closed: cannot send (${(err as Error).message})`, { cause: err }));
      return;
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(this.#onTick);
    }
  }

  /**
   * Hands the frames queued so far to the wire now, instead of at the end of this tick. For a
   * caller about to run long without yielding (a copy out of a mapped block) whose request
   * should be on its way meanwhile; frames sent later in the tick still go out together.
   */
  flushNow(): void {
    if (this.#flushScheduled) this.#flush();
  }

  /**
   * Resolves once every frame sent before this call has been written to the socket (the
   * kernel has the bytes; inproc: the peer received them), so their buffers are no longer
   * read. Rejects with the close reason if the connection closes before that; after a close,
   * resolves only when nothing was left unwritten.
   */
  flushed(): Promise<void> {
    const batch = this.#flushScheduled ? this.#batchesHanded + 1 : this.#batchesHanded;
    if (this.#batchesWritten >= batch) return RESOLVED;
    if (this.#state === 'closed') return Promise.reject(this.#reason!);
    return new Promise<void>((resolve, reject) => { this.#flushWaiters.push({ batch, resolve, reject }); });
  }

  /**
   * Stops reading from the peer: received bytes stay in the socket (inproc: frames are held),
   * so a peer that keeps sending stalls once the buffers between us are full. For tests and
   * for receivers that must push back below the RPC layer.
   */
  pauseReading(): void {
    this._setReading(false);
  }

  /** Reads again after pauseReading(). */
  resumeReading(): void {
    this._setReading(true);
  }

  /** Sends a connection-level ERROR frame, then closes with that error as reason. */
  fail(err: TesseraError): Promise<void> {
    if (this.#state === 'open') this.send(frame(FrameKind.ERROR, 0, { code: err.code, message: err.message }));
    return this.close(err);
  }

  /** Orderly close: queued frames go out first. Idempotent; the first reason wins. */
  close(reason?: TesseraError): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'closing';
      this.#reason = reason ?? new TesseraError(ErrorCode.CONNECTION_CLOSED, 'Connection closed: closed locally');
      this.#flush();
      void this._end().catch(() => undefined).finally(() => this.#finish());
    }
    return this.#closed.then(() => undefined);
  }

  /** Immediate close: queued frames are dropped. Idempotent; the first reason wins. */
  destroy(reason?: TesseraError): void {
    if (this.#state === 'closed') return;
    this.#reason ??= reason ?? new TesseraError(ErrorCode.CONNECTION_CLOSED, 'Connection closed: destroyed locally');
    this.#outbox = [];
    this.#state = 'closing';
    try {
      this._destroy();
    } finally {
      this.#finish();
    }
  }

  /**
   * Tells the connection the largest frame the peer accepts (learned in the handshake), so a
   * frame over it is refused on this side (`onFrameRejected`) instead of killing the connection
   * on the other. Until then, our own limit is assumed.
   */
  setPeerMaxFrameBytes(bytes: number): void {
    void bytes;
  }

  /**
   * The layer above calls this once the peer passed its handshake: from then on frames up to
   * maxFrameBytes are accepted, not only up to the listener's handshakeFrameBytes. No-op where
   * there is no separate limit (inproc hands frames over without buffering them).
   */
  liftHandshakeLimit(): void {
    // Nothing to lift.
  }

  /** Called by implementations when the peer or the network ended the connection. */
  protected _peerGone(reason?: TesseraError): void {
    if (this.#state === 'closed') return;
    this.#reason ??= reason ?? new TesseraError(ErrorCode.CONNECTION_CLOSED, `Connection closed: closed by peer ${this.remoteAddress}`);
    this.destroy();
  }

  /** Implementations call this for a frame they cannot send (FRAME_TOO_LARGE, INVALID_ARGUMENT). */
  protected _rejectFrame(f: Frame, err: TesseraError): void {
    const handler = this.onFrameRejected;
    if (handler === undefined) throw err;
    queueMicrotask(() => handler(f, err));
  }

  /** Called by implementations for every received frame, in order. */
  protected _receive(f: Frame): void {
    if (this.#state === 'closed') return;
    if (this.onFrame === undefined) {
      (this.#inbox ??= []).push(f);
      return;
    }
    this.onFrame(f);
  }

  /** The RPC layer calls this once after setting onFrame, to get frames that came first. */
  drainInbox(): void {
    const inbox = this.#inbox;
    this.#inbox = undefined;
    if (inbox) for (const f of inbox) this._receive(f);
  }

  /** Takes a frame to send at the next flush (byte transports encode it right away). */
  protected _enqueue(f: Frame): void {
    this.#outbox.push(f);
  }

  /**
   * Hands everything enqueued since the last flush to the wire, once per tick, and calls
   * `written` once when the socket has written it (right away when there was nothing).
   */
  protected _flush(written: () => void): void {
    if (this.#outbox.length === 0) { written(); return; }
    const frames = this.#outbox;
    this.#outbox = [];
    this._sendFrames(frames, written);
  }

  /** The end-of-tick flush; a no-op when flushNow() or close() has flushed since. */
  #onTick = (): void => this.flushNow();

  #flush = (): void => {
    this.#flushScheduled = false;
    if (this.#state === 'closed') return;
    const batch = ++this.#batchesHanded;
    try {
      this._flush(() => this.#written(batch));
    } catch (err) {
      this.destroy(err instanceof TesseraError ? err
        : new TesseraError(ErrorCode.CONNECTION_CLOSED, `Connection closed: write failed (${(err as Error).message})`, { cause: err }));
    }
  };

  /**
   * Batches are reported in order; resolves the flushed() promises they complete. Reports
   * after the close are ignored: node calls the write callbacks of a reset socket without an
   * error, though the bytes never left.
   */
  #written(batch: number): void {
    if (batch <= this.#batchesWritten || this.#state === 'closed') return;
    this.#batchesWritten = batch;
    const waiters = this.#flushWaiters;
    let i = 0;
    while (i < waiters.length && waiters[i]!.batch <= batch) waiters[i++]!.resolve();
    if (i > 0) this.#flushWaiters = waiters.slice(i);
  }

  #finish(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    const reason = this.#reason!;
    const waiters = this.#flushWaiters;
    this.#flushWaiters = [];
    for (const w of waiters) w.reject(reason);
    this.#resolveClosed(reason);
    this.emit('close', reason);
  }

  /**
   * Moves frames towards the peer, in order (used by the default _flush); calls `written`
   * once they are out of the process (not at all if the write fails: the connection closes).
   */
  protected abstract _sendFrames(frames: Frame[], written: () => void): void;
  /** Pauses (false) or resumes (true) reading from the peer. */
  protected abstract _setReading(on: boolean): void;
  /** Ends the connection after the frames already given were sent. */
  protected abstract _end(): Promise<void>;
  /** Tears the connection down now. */
  protected abstract _destroy(): void;
}

/** How a listener admitted a server-side connection (absent for client connections). */
export interface Admission {
  /** performance.now() when the TCP connection was accepted. */
  acceptedAtMs: number;
  /** Frame limit until liftHandshakeLimit() (ListenOptions.handshakeFrameBytes). */
  handshakeFrameBytes: number;
}

/**
 * Base for transports that move bytes (tcp, tls, ws): frames are encoded into few buffers per
 * tick, received bytes are parsed into frames; a parse error sends an ERROR frame and closes.
 */
export abstract class ByteConnection extends Connection {
  #encoder: FrameEncoder | undefined; // made on first flush (ws encodes its own way)
  #peerMaxFrameBytes: number;
  readonly #parser: FrameParser;
  #emit = (f: Frame): void => this._receive(f);
  /** Frames of this tick with their encoded payloads, and their bytes on the wire. */
  #frames: Frame[] = [];
  #payloads: (Uint8Array | undefined)[] = [];
  #queuedBytes = 0;
  /** A DATA payload of this tick goes out as its own buffer (so it is worth grouping, see callOrder). */
  #bigData = false;

  constructor(localAddress: string, remoteAddress: string, maxFrameBytes: number, admission?: Admission) {
    super(localAddress, remoteAddress, admission?.acceptedAtMs);
    this.#peerMaxFrameBytes = maxFrameBytes;
    this.#parser = new FrameParser(maxFrameBytes, admission?.handshakeFrameBytes ?? maxFrameBytes);
  }

  override liftHandshakeLimit(): void {
    this.#parser.liftLimit();
  }

  /** True while a frame has been partly received. */
  get midFrame(): boolean {
    return this.#parser.midFrame;
  }

  override setPeerMaxFrameBytes(bytes: number): void {
    this.#peerMaxFrameBytes = bytes;
    if (this.#encoder) this.#encoder.maxFrameBytes = bytes;
  }

  /**
   * Encodes the frame's payload now (so unsentBytes counts it, and a frame that cannot be sent
   * is refused at once); the frames of a tick are written at the flush, grouped by call.
   */
  protected override _enqueue(f: Frame): void {
    let payload: Uint8Array | undefined;
    let n = 0;
    try {
      payload = framePayload(f);
      n = payload === undefined ? 0 : payload.byteLength;
      if (n > this.#peerMaxFrameBytes) {
        throw new TesseraError(ErrorCode.FRAME_TOO_LARGE,
          `Cannot send ${frameKindName(f.kind)} frame: payload of ${n} bytes exceeds maxFrameBytes ${this.#peerMaxFrameBytes}`);
      }
    } catch (err) {
      if (!(err instanceof TesseraError)) throw err;
      this._rejectFrame(f, err);
      return;
    }
    this.#frames.push(f);
    this.#payloads.push(payload);
    this.#queuedBytes += FRAME_HEADER_BYTES + n;
    if (f.kind === FrameKind.DATA && n >= COPY_LIMIT_BYTES) this.#bigData = true;
  }

  protected override _flush(written: () => void): void {
    const frames = this.#frames;
    if (frames.length === 0) { written(); return; }
    const payloads = this.#payloads;
    const order = this.#bigData && frames.length > 2 ? callOrder(frames.map((f) => f.id)) : undefined;
    this.#frames = [];
    this.#payloads = [];
    this.#queuedBytes = 0;
    this.#bigData = false;
    this._writeBuffers(this._encode(frames, payloads, order), written);
  }

  /**
   * The buffers that carry `frames` (each with its encoded payload), in `order` (indexes; all
   * of them in turn when undefined). By default headers and small payloads are packed back to
   * back and a big payload follows its header uncopied (FrameEncoder).
   */
  protected _encode(frames: Frame[], payloads: (Uint8Array | undefined)[], order: number[] | undefined): Uint8Array[] {
    const enc = (this.#encoder ??= new FrameEncoder(this.#peerMaxFrameBytes));
    if (order === undefined) for (let i = 0; i < frames.length; i++) enc.addEncoded(frames[i]!, payloads[i]);
    else for (const i of order) enc.addEncoded(frames[i]!, payloads[i]);
    return enc.take();
  }

  protected override _sendFrames(frames: Frame[], written: () => void): void {
    for (const f of frames) this._enqueue(f);
    this._flush(written);
  }

  /** Queued for the next flush, plus what the socket still holds. */
  override get unsentBytes(): number {
    return this.#queuedBytes + this._socketUnsentBytes();
  }

  /** Bytes the socket holds that the kernel has not taken yet. */
  protected _socketUnsentBytes(): number {
    return 0;
  }

  /** Implementations call this with every chunk read from the socket. */
  protected _receiveBytes(chunk: Uint8Array): void {
    if (!this.isOpen) return;
    try {
      this.#parser.push(chunk, this.#emit);
    } catch (err) {
      if (err instanceof TesseraError) void this.fail(err);
      else throw err;
    }
  }

  /**
   * Writes the buffers in order, ideally as one vectored write, and calls `written` from the
   * socket's write callback of the last one (not at all when the write fails).
   */
  protected abstract _writeBuffers(buffers: Uint8Array[], written: () => void): void;
}
