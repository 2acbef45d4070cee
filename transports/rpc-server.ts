/**
 * RpcServer: registers service handlers, listens on any number of addresses, and runs one
 * session per accepted connection: handshake and auth first (nothing else is accepted until
 * then), then calls multiplexed by id, with limits on calls in flight and open streams,
 * deadlines and cancellation surfaced as `ctx.signal`, and server-pushed events via `Peer`.
 *
 * Fault model: a peer that breaks the protocol (bad frame, call before auth, stream credit
 * overrun) gets an ERROR frame and loses its connection; other connections are untouched.
 * Until its handshake is done a peer can make the server hold little: frames over
 * TRANSPORT_HANDSHAKE_FRAME_BYTES are refused on their header, and handshakeTimeoutMs counts
 * from the TCP accept (TLS handshake and WebSocket upgrade included, see admission.ts).
 * A handler that throws fails only its call: TesseraErrors keep their code, anything else
 * travels as TESSERA_ERR_REMOTE.
 */
import { EventEmitter } from 'node:events';
import { ErrorCode, type ErrorCodeValue, TesseraError } from '../core/errors.js';
import { PROTOCOL_VERSION, TRANSPORT_HANDSHAKE_FRAME_BYTES, TRANSPORT_IDLE_CHECKS_PER_TIMEOUT } from '../core/constants.js';
import type { Connection } from './connection.js';
import { isLoopbackAddress, parseAddress } from './address.js';
import type { Listener, TlsOptions, Transport } from './transport.js';
import { transportFor } from './transport-for.js';
import { type Frame, FrameKind, dataFrame, frame, frameKindName } from './wire.js';
import { InStream, OutStream } from './streams.js';
import {
  type EventBody, type EventNames, type Handlers, type MethodKind, type ServiceDef, type ServiceShape, type CallContext, memberKey,
} from './service.js';
import {
  type HelloBody, type PeerIdentity, type ReadyBody, type RpcLimits, type ServerAuth, PROTOCOL_MAGIC, authProof, checkLimits,
  closedError, errorFromWire, errorToWire, isNonce, newNonce, proofMatches,
} from './rpc-common.js';

export interface RpcServerOptions {
  /** Default: { mode: 'none' }, allowed only on loopback addresses. */
  auth?: ServerAuth;
  limits?: Partial<RpcLimits>;
  /** Certificates for tls:// and wss:// listeners. */
  tls?: TlsOptions;
  /** Use this transport instead of transportFor(address) (e.g. an InprocTransport on a simulated network). */
  transport?: Transport;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandler = (req: any, ctx: CallContext, stream?: any) => unknown;
interface Registered { kind: MethodKind; fn: AnyHandler; key: string }

/**
 * The server's view of one client connection. Lives from the end of the handshake to the
 * close of the connection; emits 'close' (reason) once. Use it to tie leases and pins to a
 * client, and to push events.
 */
export class Peer extends EventEmitter {
  readonly id: number;
  readonly identity: PeerIdentity;
  readonly connection: Connection;

  constructor(connection: Connection, identity: PeerIdentity) {
    super();
    this.id = connection.id;
    this.connection = connection;
    this.identity = identity;
  }

  get isOpen(): boolean {
    return this.connection.isOpen;
  }

  /** Resolves with the reason when the connection closes. */
  get closed(): Promise<TesseraError> {
    return this.connection.closed;
  }

  /** Pushes an event to this client. Dropped silently if the connection is closed. */
  push<S extends ServiceShape, E extends EventNames<S>>(service: ServiceDef<S>, event: E, body: EventBody<S[E]>): void {
    const m = service.members[event];
    if (m === undefined || m.type !== 'event') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot push: ${service.name}.${event} is not an event`);
    this.connection.send(frame(FrameKind.PUSH, 0, [memberKey(service, event), body]));
  }

  /** Closes the connection (queued frames go out first). */
  close(reason?: TesseraError): Promise<void> {
    return this.connection.close(reason);
  }
}

const enum Phase { HELLO, AUTH, READY }

class ServerCall {
  readonly id: number;
  readonly key: string;
  done = false;
  controller: AbortController | undefined;
  abortReason: TesseraError | undefined;
  timer: NodeJS.Timeout | undefined;
  input: InStream | undefined;
  output: OutStream | undefined;

  constructor(id: number, key: string) {
    this.id = id;
    this.key = key;
  }

  abort(reason: TesseraError): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.input?.fail(reason);
    this.output?.fail(reason);
  }
}

class Context implements CallContext {
  readonly peer: Peer;
  readonly deadline: number | undefined;
  readonly #call: ServerCall;

  constructor(peer: Peer, call: ServerCall, deadline: number | undefined) {
    this.peer = peer;
    this.#call = call;
    this.deadline = deadline;
  }

  get signal(): AbortSignal {
    const c = this.#call;
    if (c.controller === undefined) {
      c.controller = new AbortController();
      if (c.abortReason) c.controller.abort(c.abortReason);
    }
    return c.controller.signal;
  }
}

class ServerSession {
  readonly #server: RpcServerCore;
  readonly #conn: Connection;
  readonly #limits: RpcLimits;
  #phase = Phase.HELLO;
  #clientNonce: Uint8Array | undefined;
  #serverNonce: Buffer | undefined;
  #peerWindowBytes = 0;
  #downloadChunkBytes = 0;
  #peer: Peer | undefined;
  readonly #calls = new Map<number, ServerCall>();
  #streamCount = 0;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Frames received plus calls finished: the idle check only compares it with its last value. */
  #activity = 0;
  #activityAtLastCheck = -1;
  #quietChecks = 0;
  /** Calls held back while the client does not read (see maxUnsentBytes), with their early bytes. */
  #held: { request: Frame; data: Frame[]; dataBytes: number }[] = [];
  #waitingForDrain = false;

  constructor(server: RpcServerCore, conn: Connection) {
    this.#server = server;
    this.#conn = conn;
    this.#limits = server.limits;
    conn.onFrame = (f) => this.#onFrame(f);
    conn.onFrameRejected = (f, err) => this.#onFrameRejected(f, err);
    conn.once('close', (reason: TesseraError) => this.#onClose(reason));
    // One deadline from the TCP accept: a TLS handshake or WebSocket upgrade used part of it.
    const handshakeLeftMs = Math.max(1, this.#limits.handshakeTimeoutMs - (performance.now() - conn.acceptedAtMs));
    this.#handshakeTimer = setTimeout(() => {
      void conn.fail(new TesseraError(ErrorCode.HANDSHAKE_TIMEOUT, `Handshake timed out: no complete HELLO/auth within handshakeTimeoutMs ${this.#limits.handshakeTimeoutMs} of the connection being accepted`));
    }, handshakeLeftMs);
    this.#startIdleChecks();
    conn.drainInbox();
  }

  /**
   * Checks for idleness TRANSPORT_IDLE_CHECKS_PER_TIMEOUT times per idleTimeoutMs, comparing a
   * counter (no clock read per frame), and closes after enough quiet checks in a row to cover
   * idleTimeoutMs: the last activity fell in the interval before the first of them, so the
   * close comes between idleTimeoutMs and idleTimeoutMs + 2 check intervals after it.
   */
  #startIdleChecks(): void {
    const idleMs = this.#limits.idleTimeoutMs;
    const checkMs = Math.max(1, Math.floor(idleMs / TRANSPORT_IDLE_CHECKS_PER_TIMEOUT));
    const quietChecksToClose = Math.ceil(idleMs / checkMs);
    this.#idleTimer = setInterval(() => {
      const quiet = this.#activity === this.#activityAtLastCheck && this.#calls.size === 0 && this.#held.length === 0 && this.#phase === Phase.READY;
      this.#activityAtLastCheck = this.#activity;
      this.#quietChecks = quiet ? this.#quietChecks + 1 : 0;
      if (this.#quietChecks >= quietChecksToClose) {
        clearInterval(this.#idleTimer);
        void this.#conn.fail(new TesseraError(ErrorCode.IDLE_TIMEOUT, `Connection idle: no frame and no call for idleTimeoutMs ${idleMs}`));
      }
    }, checkMs);
    this.#idleTimer.unref();
  }

  #onClose(reason: TesseraError): void {
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#idleTimer);
    const err = closedError(reason, 'Call aborted');
    for (const c of this.#calls.values()) this.#finish(c, err);
    this.#server.sessionClosed(this.#conn, this.#peer, reason);
  }

  /** A frame over the client's limit: a response becomes a FAILURE of that call; a push is dropped. */
  #onFrameRejected(f: Frame, err: TesseraError): void {
    if (f.kind === FrameKind.RESPONSE) {
      this.#conn.send(frame(FrameKind.FAILURE, f.id, { code: err.code, message: `Cannot send the response: ${err.message}` }));
    } else if (f.kind !== FrameKind.PUSH) {
      void this.#conn.fail(err);
    }
  }

  #protocolError(message: string, code: typeof ErrorCode.PROTOCOL | typeof ErrorCode.UNAUTHENTICATED = ErrorCode.PROTOCOL): void {
    void this.#conn.fail(new TesseraError(code, message));
  }

  #onFrame(f: Frame): void {
    this.#activity++;
    if (this.#phase !== Phase.READY) {
      this.#onHandshakeFrame(f);
      return;
    }
    if (f.kind === FrameKind.REQUEST || ((f.kind === FrameKind.DATA || f.kind === FrameKind.CANCEL) && this.#held.length > 0)) {
      if (this.#holdBack(f)) return;
    }
    switch (f.kind) {
      case FrameKind.REQUEST: this.#onRequest(f); return;
      case FrameKind.DATA: this.#onData(f); return;
      case FrameKind.CREDIT: this.#onCredit(f); return;
      case FrameKind.CANCEL: this.#onCancel(f); return;
      case FrameKind.ERROR: void this.#conn.close(errorFromWire(f.body, 'Peer error')); return;
      default: this.#protocolError(`Unexpected ${frameKindName(f.kind)} frame from a client`);
    }
  }

  #onHandshakeFrame(f: Frame): void {
    if (f.kind === FrameKind.ERROR) { void this.#conn.close(errorFromWire(f.body, 'Peer error')); return; }
    if (this.#phase === Phase.HELLO) {
      if (f.kind !== FrameKind.HELLO) {
        this.#protocolError(`Unauthenticated: ${frameKindName(f.kind)} frame before the HELLO exchange finished`, ErrorCode.UNAUTHENTICATED);
        return;
      }
      const h = f.body as Partial<HelloBody> | undefined;
      if (h === null || typeof h !== 'object' || h.magic !== PROTOCOL_MAGIC) { this.#protocolError('Bad HELLO: not a Tessera client'); return; }
      if (h.version !== PROTOCOL_VERSION) {
        void this.#conn.fail(new TesseraError(ErrorCode.PROTOCOL_VERSION, `Unsupported protocol version ${String(h.version)}: this server speaks version ${PROTOCOL_VERSION}`));
        return;
      }
      if (!Number.isInteger(h.windowBytes) || h.windowBytes! < 1024 || !Number.isInteger(h.maxFrameBytes) || h.maxFrameBytes! < 1024 || !isNonce(h.nonce)) {
        this.#protocolError('Bad HELLO: windowBytes, maxFrameBytes or nonce missing');
        return;
      }
      this.#peerWindowBytes = h.windowBytes!;
      this.#downloadChunkBytes = Math.min(this.#limits.streamChunkBytes, h.maxFrameBytes!);
      this.#conn.setPeerMaxFrameBytes(h.maxFrameBytes!);
      this.#clientNonce = h.nonce;
      const auth = this.#server.auth;
      if (auth.mode === 'token') {
        this.#serverNonce = newNonce();
        this.#phase = Phase.AUTH;
        this.#conn.send(frame(FrameKind.CHALLENGE, 0, { nonce: this.#serverNonce }));
        return;
      }
      if (auth.mode === 'mtls') {
        const t = this.#conn.tls;
        if (!t || !t.authorized) {
          this.#protocolError(`Unauthenticated: a verified client certificate is required${t?.authorizationError ? ` (${t.authorizationError})` : ''}`, ErrorCode.UNAUTHENTICATED);
          return;
        }
        this.#ready({ method: 'mtls', subject: t.subjectCN, remoteAddress: this.#conn.remoteAddress }, undefined);
        return;
      }
      this.#ready({ method: 'none', subject: undefined, remoteAddress: this.#conn.remoteAddress }, undefined);
      return;
    }
    // Phase.AUTH
    const auth = this.#server.auth;
    if (f.kind !== FrameKind.AUTH || auth.mode !== 'token') {
      this.#protocolError(`Unauthenticated: ${frameKindName(f.kind)} frame before authentication`, ErrorCode.UNAUTHENTICATED);
      return;
    }
    const proof = (f.body as { proof?: unknown } | undefined)?.proof;
    const expected = authProof(auth.secret, 'client', this.#serverNonce!, this.#clientNonce!);
    if (!proofMatches(proof, expected)) {
      this.#protocolError('Unauthenticated: wrong token', ErrorCode.UNAUTHENTICATED);
      return;
    }
    const serverProof = authProof(auth.secret, 'server', this.#clientNonce!, this.#serverNonce!);
    this.#ready({ method: 'token', subject: undefined, remoteAddress: this.#conn.remoteAddress }, serverProof);
  }

  #ready(identity: PeerIdentity, proof: Buffer | undefined): void {
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#phase = Phase.READY;
    this.#conn.liftHandshakeLimit();
    const body: ReadyBody = { windowBytes: this.#limits.streamWindowBytes, maxFrameBytes: this.#limits.maxFrameBytes, method: identity.method };
    if (proof) body.proof = proof;
    this.#conn.send(frame(FrameKind.READY, 0, body));
    this.#peer = new Peer(this.#conn, identity);
    this.#server.sessionReady(this.#peer);
  }

  /**
   * Holds a call back while the client leaves more than maxUnsentBytes unread in the socket, or
   * while earlier calls are held (order is kept). True when the frame was taken care of here.
   * CREDIT frames are never held: they are what lets the socket drain.
   */
  #holdBack(f: Frame): boolean {
    const held = this.#held;
    if (f.kind === FrameKind.REQUEST) {
      if (held.length === 0 && this.#conn.unsentBytes <= this.#limits.maxUnsentBytes) return false;
      if (held.length + this.#calls.size >= this.#limits.maxInFlightCalls) {
        void this.#conn.fail(new TesseraError(ErrorCode.LIMIT_EXCEEDED,
          `Connection closed: the client sent more than maxInFlightCalls ${this.#limits.maxInFlightCalls} calls while not reading ${this.#conn.unsentBytes} bytes of answers`));
        return true;
      }
      held.push({ request: f, data: [], dataBytes: 0 });
      if (!this.#waitingForDrain) {
        this.#waitingForDrain = true;
        this.#conn.once('drain', () => { this.#waitingForDrain = false; this.#releaseHeld(); });
      }
      return true;
    }
    const i = held.findIndex((h) => h.request.id === f.id);
    if (i < 0) return false;
    if (f.kind === FrameKind.CANCEL) {
      held.splice(i, 1); // never started, nothing to answer
      return true;
    }
    const h = held[i]!;
    h.dataBytes += f.bytes!.byteLength;
    if (h.dataBytes > this.#limits.streamWindowBytes) {
      this.#protocolError(`Bad DATA frame: call ${f.id} overran its credit window`);
      return true;
    }
    h.data.push(f);
    return true;
  }

  #releaseHeld(): void {
    if (!this.#conn.isOpen) return;
    while (this.#held.length > 0 && this.#conn.unsentBytes <= this.#limits.maxUnsentBytes) {
      const h = this.#held.shift()!;
      this.#onRequest(h.request);
      for (const d of h.data) this.#onData(d);
    }
    if (this.#held.length > 0 && !this.#waitingForDrain) {
      this.#waitingForDrain = true;
      this.#conn.once('drain', () => { this.#waitingForDrain = false; this.#releaseHeld(); });
    }
  }

  #onRequest(f: Frame): void {
    const id = f.id;
    const body = f.body;
    if (!Array.isArray(body) || typeof body[0] !== 'string' || (body[2] != null && typeof body[2] !== 'number')) {
      this.#protocolError('Bad REQUEST frame: expected [methodKey, request, deadlineMs?]');
      return;
    }
    if (this.#calls.has(id)) { this.#protocolError(`Bad REQUEST frame: call id ${id} is already in flight`); return; }
    const key = body[0] as string;
    if (this.#calls.size >= this.#limits.maxInFlightCalls) {
      this.#refuse(id, ErrorCode.LIMIT_EXCEEDED, `Cannot start ${key}: ${this.#calls.size} calls in flight on this connection (maxInFlightCalls ${this.#limits.maxInFlightCalls})`);
      return;
    }
    const entry = this.#server.handlers.get(key);
    if (entry === undefined) { this.#refuse(id, ErrorCode.UNKNOWN_METHOD, `Unknown method ${key}`); return; }
    const streaming = entry.kind !== 'unary';
    if (streaming && this.#streamCount >= this.#limits.maxOpenStreams) {
      this.#refuse(id, ErrorCode.LIMIT_EXCEEDED, `Cannot start ${key}: ${this.#streamCount} streams open on this connection (maxOpenStreams ${this.#limits.maxOpenStreams})`);
      return;
    }
    const call = new ServerCall(id, key);
    this.#calls.set(id, call);
    let deadline: number | undefined;
    const deadlineMs = body[2] as number | null | undefined;
    if (deadlineMs != null) {
      deadline = Date.now() + deadlineMs;
      call.timer = setTimeout(() => {
        this.#finish(call, new TesseraError(ErrorCode.DEADLINE_EXCEEDED, `${key} exceeded its deadline of ${deadlineMs} ms`));
      }, Math.max(0, deadlineMs));
    }
    let stream: InStream | OutStream | undefined;
    if (entry.kind === 'serverStream') {
      this.#streamCount++;
      stream = call.output = new OutStream(this.#peerWindowBytes, this.#downloadChunkBytes, (bytes, end) => this.#conn.send(dataFrame(id, bytes, end)));
    } else if (entry.kind === 'clientStream') {
      this.#streamCount++;
      stream = call.input = new InStream(this.#limits.streamWindowBytes, (n) => this.#conn.send(frame(FrameKind.CREDIT, id, n)), () => undefined);
    }
    const ctx = new Context(this.#peer!, call, deadline);
    let result: unknown;
    try {
      result = entry.fn(body[1], ctx, stream);
    } catch (err) {
      this.#respondError(call, err);
      return;
    }
    if (result instanceof Promise) result.then((v) => this.#respond(call, v), (err) => this.#respondError(call, err));
    else this.#respond(call, result);
  }

  /** Answers a call that never started. */
  #refuse(id: number, code: ErrorCodeValue, message: string): void {
    this.#conn.send(frame(FrameKind.FAILURE, id, { code, message }));
  }

  #respond(call: ServerCall, value: unknown): void {
    if (call.done) return;
    const out = call.output;
    if (out !== undefined) {
      // The response ends the download: it must follow every byte the handler wrote.
      out.drain().then(() => {
        if (call.done) return;
        this.#conn.send(frame(FrameKind.RESPONSE, call.id, value));
        this.#finish(call, undefined);
      }, (err) => this.#respondError(call, err));
      return;
    }
    this.#conn.send(frame(FrameKind.RESPONSE, call.id, value));
    this.#finish(call, undefined);
  }

  #respondError(call: ServerCall, err: unknown): void {
    if (call.done) return;
    this.#conn.send(frame(FrameKind.FAILURE, call.id, errorToWire(err, `Handler ${call.key}`)));
    this.#finish(call, err instanceof TesseraError ? err : new TesseraError(ErrorCode.REMOTE, 'handler failed'));
  }

  /** Ends a call: `reason` set when it ended abnormally (its signal and streams see it). */
  #finish(call: ServerCall, reason: TesseraError | undefined): void {
    if (call.done) return;
    call.done = true;
    this.#activity++;
    if (this.#calls.get(call.id) === call) this.#calls.delete(call.id);
    if (call.timer) clearTimeout(call.timer);
    if (call.input || call.output) this.#streamCount--;
    if (reason) call.abort(reason);
    else call.output?.finish();
  }

  #onCancel(f: Frame): void {
    const call = this.#calls.get(f.id);
    if (call) this.#finish(call, new TesseraError(ErrorCode.CANCELLED, `${call.key} cancelled by the client`));
  }

  #onData(f: Frame): void {
    const call = this.#calls.get(f.id);
    if (call === undefined) return; // late bytes of a call that ended: dropped
    if (call.input === undefined) { this.#protocolError(`Bad DATA frame: call ${f.id} (${call.key}) takes no bytes`); return; }
    if (!call.input.push(f.bytes!, (f.flags & 1) !== 0)) this.#protocolError(`Bad DATA frame: call ${f.id} overran its credit window`);
  }

  #onCredit(f: Frame): void {
    const n = f.body;
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) { this.#protocolError('Bad CREDIT frame: expected a positive integer'); return; }
    this.#calls.get(f.id)?.output?.addCredit(n);
  }
}

/** The parts of the server a session needs. */
interface RpcServerCore {
  readonly limits: RpcLimits;
  readonly auth: ServerAuth;
  readonly handlers: Map<string, Registered>;
  sessionReady(peer: Peer): void;
  sessionClosed(conn: Connection, peer: Peer | undefined, reason: TesseraError): void;
}

/**
 * Serves registered services on one or more listeners. Events: 'connection' (peer) once a
 * client passed the handshake; 'disconnect' (peer, reason) when it goes.
 */
export class RpcServer extends EventEmitter {
  readonly #core: RpcServerCore;
  readonly #options: RpcServerOptions;
  readonly #listeners: Listener[] = [];
  readonly #connections = new Set<Connection>();
  readonly #peers = new Set<Peer>();
  #closed = false;

  constructor(options: RpcServerOptions = {}) {
    super();
    this.#options = options;
    const auth = options.auth ?? { mode: 'none' };
    if (auth.mode === 'token' && !(typeof auth.secret === 'string' ? auth.secret.length > 0 : auth.secret instanceof Uint8Array && auth.secret.byteLength > 0)) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid option auth.secret: a token server needs a non-empty secret');
    }
    if (auth.mode !== 'none' && auth.mode !== 'token' && auth.mode !== 'mtls') {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option auth.mode: expected 'none', 'token' or 'mtls', got ${String((auth as { mode: unknown }).mode)}`);
    }
    this.#core = {
      limits: checkLimits(options.limits),
      auth,
      handlers: new Map(),
      sessionReady: (peer) => {
        this.#peers.add(peer);
        this.emit('connection', peer);
      },
      sessionClosed: (conn, peer, reason) => {
        this.#connections.delete(conn);
        if (peer) {
          this.#peers.delete(peer);
          peer.emit('close', reason);
          this.emit('disconnect', peer, reason);
        }
      },
    };
  }

  get limits(): Readonly<RpcLimits> {
    return this.#core.limits;
  }

  /** Clients that passed the handshake and are still connected. */
  get peers(): ReadonlySet<Peer> {
    return this.#peers;
  }

  /** Registers the handlers of one service; every method must have one. */
  register<S extends ServiceShape>(service: ServiceDef<S>, handlers: Handlers<S>): this {
    for (const [name, m] of Object.entries(service.members)) {
      if (m.type !== 'method') continue;
      const fn = (handlers as Record<string, AnyHandler | undefined>)[name];
      if (typeof fn !== 'function') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot register ${service.name}: no handler for ${name}`);
      const key = memberKey(service, name);
      if (this.#core.handlers.has(key)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot register ${service.name}: ${key} is already registered`);
      this.#core.handlers.set(key, { kind: m.kind, fn: fn.bind(handlers), key });
    }
    return this;
  }

  /** Pushes an event to every connected peer. */
  broadcast<S extends ServiceShape, E extends EventNames<S>>(service: ServiceDef<S>, event: E, body: EventBody<S[E]>): void {
    for (const p of this.#peers) p.push(service, event, body);
  }

  /** Listens on an address; resolves with the listener (its `.address` has the real port). */
  async listen(address: string): Promise<Listener> {
    if (this.#closed) throw new TesseraError(ErrorCode.CLOSED, 'Cannot listen: the server is closed');
    const a = parseAddress(address);
    const auth = this.#core.auth;
    if (this.#options.auth === undefined && !isLoopbackAddress(a)) {
      throw new TesseraError(ErrorCode.CONFIG, `Cannot listen on ${address}: auth must be configured for a non-loopback address (use { mode: 'token' | 'mtls' }, or { mode: 'none' } explicitly)`);
    }
    if (auth.mode === 'mtls' && !((a.scheme === 'tls' || a.scheme === 'wss') && this.#options.tls?.requestCert && this.#options.tls.ca)) {
      throw new TesseraError(ErrorCode.CONFIG, `Cannot listen on ${address}: auth mode 'mtls' needs a tls:// or wss:// address and tls.requestCert with tls.ca`);
    }
    const transport = this.#options.transport ?? transportFor(address);
    const open = new Set<Connection>(); // this listener's connections, for maxConnections
    const limits = this.#core.limits;
    const listener = await transport.listen(address, (c) => this.#accept(c, open), {
      maxFrameBytes: limits.maxFrameBytes,
      handshakeFrameBytes: Math.min(TRANSPORT_HANDSHAKE_FRAME_BYTES, limits.maxFrameBytes),
      handshakeTimeoutMs: limits.handshakeTimeoutMs,
      maxConnections: limits.maxConnections,
      ...(this.#options.tls ? { tls: this.#options.tls } : {}),
    });
    this.#listeners.push(listener);
    return listener;
  }

  #accept(conn: Connection, open: Set<Connection>): void {
    if (this.#closed) { conn.destroy(); return; }
    if (open.size >= this.#core.limits.maxConnections) {
      void conn.fail(new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Connection refused: ${open.size} connections open on ${conn.localAddress} (maxConnections ${this.#core.limits.maxConnections})`));
      return;
    }
    open.add(conn);
    conn.once('close', () => open.delete(conn));
    this.#connections.add(conn);
    new ServerSession(this.#core, conn);
  }

  /** Stops listening and closes every connection. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const reason = new TesseraError(ErrorCode.CONNECTION_CLOSED, 'Connection closed: server shutting down');
    await Promise.all([...this.#connections].map((c) => c.close(reason)));
    await Promise.all(this.#listeners.splice(0).map((l) => l.close()));
  }
}
