/**
 * RpcClient: one connection to one server address, typed service proxies over it, and
 * listeners for server-pushed events.
 *
 * Reconnects: when the connection is lost, calls in flight fail with CONNECTION_CLOSED (a call
 * is never retried here: only the caller knows whether it is idempotent) and the client
 * emits 'disconnect'. With `reconnect` (the default) the next call opens a new connection
 * (emitting 'connect'); without it, calls fail with CONNECTION_CLOSED until close().
 * Event listeners stay registered across reconnects.
 */
import { EventEmitter } from 'node:events';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { PROTOCOL_VERSION } from '../core/constants.js';
import type { Connection } from './connection.js';
import { parseAddress } from './address.js';
import type { TlsOptions, Transport } from './transport.js';
import { transportFor } from './transport-for.js';
import { type Frame, FrameKind, dataFrame, frame, frameKindName } from './wire.js';
import { InStream, OutStream } from './streams.js';
import {
  type CallOptions, type DownloadCall, type EventBody, type EventNames, type MethodKind, type ServiceClient, type ServiceDef,
  type ServiceShape, type UploadCall, memberKey,
} from './service.js';
import {
  type ClientAuth, type HelloBody, type ReadyBody, type RpcLimits, PROTOCOL_MAGIC, authProof, checkLimits, closedError,
  errorFromWire, newNonce, proofMatches,
} from './rpc-common.js';

export interface RpcClientOptions {
  /** With a token, the client also refuses a server that does not ask for it (UNAUTHENTICATED). */
  auth?: ClientAuth;
  /** Certificates for tls:// and wss:// (ca to verify the server; cert/key for mTLS). */
  tls?: TlsOptions;
  /** Client-side limits (maxFrameBytes, maxInFlightCalls, maxOpenStreams, streamWindowBytes, streamChunkBytes). */
  limits?: Partial<RpcLimits>;
  /** Time for the socket and the handshake together (default DEFAULT_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** Open a new connection on the next call after one was lost (default true). */
  reconnect?: boolean;
  /** Use this transport instead of transportFor(address). */
  transport?: Transport;
  /** inproc: this client's endpoint name (for partitions). */
  localName?: string;
}

const noop = (): void => undefined;

class ClientCall<Res = unknown> {
  readonly kind: MethodKind;
  readonly key: string;
  readonly request: unknown;
  readonly deadlineMs: number | undefined;
  readonly sendNow: boolean;
  readonly result: Promise<Res>;
  id = 0;
  session: ClientSession | undefined;
  settled = false;
  input: InStream | undefined;
  output: OutStream | undefined;
  #resolve!: (v: Res) => void;
  #reject!: (e: TesseraError) => void;
  #timer: NodeJS.Timeout | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;

  constructor(kind: MethodKind, key: string, request: unknown, options: CallOptions | undefined, limits: RpcLimits) {
    this.kind = kind;
    this.key = key;
    this.request = request;
    const sendNow = options?.sendNow;
    if (sendNow !== undefined && typeof sendNow !== 'boolean') {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option sendNow: expected a boolean, got ${typeof sendNow}`);
    }
    this.sendNow = sendNow === true;
    this.result = new Promise<Res>((resolve, reject) => { this.#resolve = resolve; this.#reject = reject; });
    if (kind === 'serverStream') {
      this.input = new InStream(limits.streamWindowBytes, undefined, () => this.cancel());
    } else if (kind === 'clientStream') {
      this.output = new OutStream(0, limits.streamChunkBytes);
    }
    const deadlineMs = options?.deadlineMs;
    if (deadlineMs !== undefined) {
      if (typeof deadlineMs !== 'number' || !(deadlineMs >= 0) || !Number.isFinite(deadlineMs)) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option deadlineMs: expected a number of ms >= 0, got ${String(deadlineMs)}`);
      }
      this.deadlineMs = deadlineMs;
      this.#timer = setTimeout(() => this.abort(new TesseraError(ErrorCode.DEADLINE_EXCEEDED, `${key} exceeded its deadline of ${deadlineMs} ms`)), deadlineMs);
    }
    const signal = options?.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.abort(new TesseraError(ErrorCode.CANCELLED, `${key} cancelled before it started`));
      } else {
        this.#signal = signal;
        this.#onAbort = () => this.abort(new TesseraError(ErrorCode.CANCELLED, `${key} cancelled by its signal`));
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    }
  }

  cancel(): void {
    this.abort(new TesseraError(ErrorCode.CANCELLED, `${this.key} cancelled`));
  }

  /** Gives up on the call locally and tells the server (CANCEL). */
  abort(err: TesseraError): void {
    if (this.settled) return;
    this.session?.cancel(this as ClientCall);
    this.fail(err);
  }

  settle(value: Res): void {
    if (this.settled) return;
    this.#cleanup();
    this.input?.end();
    this.output?.finish();
    this.#resolve(value);
  }

  fail(err: TesseraError): void {
    if (this.settled) return;
    this.#cleanup();
    this.input?.fail(err);
    this.output?.fail(err);
    this.#reject(err);
  }

  #cleanup(): void {
    this.settled = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#signal && this.#onAbort) this.#signal.removeEventListener('abort', this.#onAbort);
    this.session?.forget(this as ClientCall);
  }
}

class Download<Res> implements DownloadCall<Res> {
  readonly #call: ClientCall<Res>;
  readonly result: Promise<Res>;
  constructor(call: ClientCall<Res>) {
    this.#call = call;
    this.result = call.result;
    this.result.catch(noop); // the iterator reports the same failure
  }
  cancel(): void { this.#call.cancel(); }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> { return this.#call.input![Symbol.asyncIterator](); }
}

class Upload<Res> implements UploadCall<Res> {
  readonly #call: ClientCall<Res>;
  readonly result: Promise<Res>;
  constructor(call: ClientCall<Res>) {
    this.#call = call;
    this.result = call.result;
    this.result.catch(noop); // reported by write()/end() as well
  }
  write(chunk: Uint8Array): Promise<void> { return this.#call.output!.write(chunk); }
  async end(): Promise<Res> {
    await this.#call.output!.end().catch((err) => {
      if (this.#call.settled) return; // the call's own outcome says more
      throw err;
    });
    return this.result;
  }
  async pipeFrom(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Res> {
    try {
      for await (const chunk of source) await this.write(chunk);
    } catch (err) {
      if (!this.#call.settled) this.#call.abort(err instanceof TesseraError ? err : new TesseraError(ErrorCode.CANCELLED, `Upload source failed: ${(err as Error).message}`));
      return this.result;
    }
    return this.end();
  }
  cancel(): void { this.#call.cancel(); }
}

/** One authenticated connection and the calls on it. */
class ClientSession {
  readonly connection: Connection;
  readonly #limits: RpcLimits;
  readonly #calls = new Map<number, ClientCall>();
  readonly #onPush: (key: string, body: unknown) => void;
  #nextId = 1;
  #streamCount = 0;
  #peerWindowBytes = 0;
  #uploadChunkBytes = 0;
  #ready = false;

  constructor(connection: Connection, limits: RpcLimits, onPush: (key: string, body: unknown) => void) {
    this.connection = connection;
    this.#limits = limits;
    this.#onPush = onPush;
  }

  get isOpen(): boolean {
    return this.#ready && this.connection.isOpen;
  }

  /** Runs the handshake; resolves when the server said READY. */
  handshake(auth: ClientAuth | undefined, timeoutMs: number): Promise<void> {
    const conn = this.connection;
    const clientNonce = newNonce();
    return new Promise<void>((resolve, reject) => {
      let serverNonce: Uint8Array | undefined;
      const timer = setTimeout(() => {
        const err = new TesseraError(ErrorCode.HANDSHAKE_TIMEOUT, `Cannot connect to ${conn.remoteAddress}: no handshake answer within ${timeoutMs} ms`);
        conn.destroy(err);
      }, timeoutMs);
      const onClose = (reason: TesseraError): void => {
        clearTimeout(timer);
        reject(reason.code === ErrorCode.CONNECTION_CLOSED
          ? new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot connect to ${conn.remoteAddress}: closed during the handshake`, { cause: reason })
          : reason);
      };
      conn.once('close', onClose);
      const fail = (err: TesseraError): void => { void conn.fail(err); };
      conn.onFrame = (f: Frame) => {
        if (f.kind === FrameKind.ERROR) { conn.destroy(errorFromWire(f.body, 'Handshake refused')); return; }
        if (f.kind === FrameKind.CHALLENGE && serverNonce === undefined) {
          const n = (f.body as { nonce?: unknown } | undefined)?.nonce;
          if (!(n instanceof Uint8Array)) { fail(new TesseraError(ErrorCode.PROTOCOL, 'Bad CHALLENGE frame')); return; }
          if (auth?.token === undefined) { fail(new TesseraError(ErrorCode.UNAUTHENTICATED, `Cannot connect to ${conn.remoteAddress}: the server requires a token (auth.token)`)); return; }
          serverNonce = n;
          conn.send(frame(FrameKind.AUTH, 0, { proof: authProof(auth.token, 'client', n, clientNonce) }));
          return;
        }
        if (f.kind === FrameKind.READY) {
          const r = f.body as Partial<ReadyBody> | undefined;
          if (!r || !Number.isInteger(r.windowBytes) || r.windowBytes! < 1024 || !Number.isInteger(r.maxFrameBytes) || r.maxFrameBytes! < 1024) { fail(new TesseraError(ErrorCode.PROTOCOL, 'Bad READY frame')); return; }
          // A client with a token talks only to a server that proves it knows it: READY
          // without a CHALLENGE first is a downgrade, or a server that is not ours.
          if (auth?.token !== undefined && serverNonce === undefined) {
            fail(new TesseraError(ErrorCode.UNAUTHENTICATED, `Cannot connect to ${conn.remoteAddress}: the server did not ask for the token (READY without a CHALLENGE), so it cannot prove it knows it`));
            return;
          }
          if (serverNonce !== undefined && !proofMatches(r.proof, authProof(auth!.token!, 'server', clientNonce, serverNonce))) {
            fail(new TesseraError(ErrorCode.UNAUTHENTICATED, `Cannot connect to ${conn.remoteAddress}: the server did not prove it knows the token`));
            return;
          }
          clearTimeout(timer);
          conn.off('close', onClose);
          this.#peerWindowBytes = r.windowBytes!;
          this.#uploadChunkBytes = Math.min(this.#limits.streamChunkBytes, r.maxFrameBytes!);
          conn.setPeerMaxFrameBytes(r.maxFrameBytes!);
          this.#ready = true;
          conn.onFrame = (fr) => this.#onFrame(fr);
          conn.onFrameRejected = (fr, err) => {
            // A request over the server's frame limit fails that call only.
            if (fr.kind === FrameKind.REQUEST) this.#calls.get(fr.id)?.fail(err);
            else void conn.fail(err);
          };
          conn.once('close', (reason: TesseraError) => this.#onClose(reason));
          resolve();
          return;
        }
        fail(new TesseraError(ErrorCode.PROTOCOL, `Unexpected ${frameKindName(f.kind)} frame during the handshake`));
      };
      conn.drainInbox();
      const hello: HelloBody = {
        magic: PROTOCOL_MAGIC, version: PROTOCOL_VERSION, windowBytes: this.#limits.streamWindowBytes, maxFrameBytes: this.#limits.maxFrameBytes, nonce: clientNonce,
      };
      conn.send(frame(FrameKind.HELLO, 0, hello));
    });
  }

  /** Sends the call's REQUEST; fails it at once when a limit or the connection says no. */
  start(call: ClientCall): void {
    if (call.settled) return;
    const conn = this.connection;
    if (!conn.isOpen) { call.fail(closedError(conn.closeReason, `Cannot call ${call.key}`)); return; }
    if (this.#calls.size >= this.#limits.maxInFlightCalls) {
      call.fail(new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot call ${call.key}: ${this.#calls.size} calls in flight (maxInFlightCalls ${this.#limits.maxInFlightCalls})`));
      return;
    }
    const streaming = call.kind !== 'unary';
    if (streaming && this.#streamCount >= this.#limits.maxOpenStreams) {
      call.fail(new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot call ${call.key}: ${this.#streamCount} streams open (maxOpenStreams ${this.#limits.maxOpenStreams})`));
      return;
    }
    let id = this.#nextId;
    this.#nextId = id >= 0xffff_ffff ? 1 : id + 1;
    while (this.#calls.has(id)) id = id >= 0xffff_ffff ? 1 : id + 1;
    call.id = id;
    call.session = this;
    this.#calls.set(id, call);
    if (streaming) this.#streamCount++;
    conn.send(frame(FrameKind.REQUEST, id, call.deadlineMs === undefined ? [call.key, call.request] : [call.key, call.request, call.deadlineMs]));
    if (call.input) call.input.bindGrant((n) => conn.send(frame(FrameKind.CREDIT, id, n)));
    if (call.output) call.output.bind((bytes, end) => conn.send(dataFrame(id, bytes, end)), this.#peerWindowBytes, this.#uploadChunkBytes);
    if (call.sendNow) conn.flushNow();
  }

  cancel(call: ClientCall): void {
    if (this.#calls.get(call.id) === call) this.connection.send(frame(FrameKind.CANCEL, call.id));
  }

  forget(call: ClientCall): void {
    if (this.#calls.get(call.id) !== call) return;
    this.#calls.delete(call.id);
    if (call.kind !== 'unary') this.#streamCount--;
  }

  #onFrame(f: Frame): void {
    switch (f.kind) {
      case FrameKind.RESPONSE: this.#calls.get(f.id)?.settle(f.body); return;
      case FrameKind.FAILURE: this.#calls.get(f.id)?.fail(errorFromWire(f.body, 'Bad FAILURE frame')); return;
      case FrameKind.DATA: {
        const call = this.#calls.get(f.id);
        if (call === undefined) return; // late bytes of a call we gave up on
        if (call.input === undefined || !call.input.push(f.bytes!, (f.flags & 1) !== 0)) {
          void this.connection.fail(new TesseraError(ErrorCode.PROTOCOL, `Bad DATA frame for call ${f.id} (${call.key})`));
        }
        return;
      }
      case FrameKind.CREDIT: {
        const n = f.body;
        if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) { void this.connection.fail(new TesseraError(ErrorCode.PROTOCOL, 'Bad CREDIT frame')); return; }
        this.#calls.get(f.id)?.output?.addCredit(n);
        return;
      }
      case FrameKind.PUSH: {
        const b = f.body;
        if (!Array.isArray(b) || typeof b[0] !== 'string') { void this.connection.fail(new TesseraError(ErrorCode.PROTOCOL, 'Bad PUSH frame')); return; }
        this.#onPush(b[0], b[1]);
        return;
      }
      case FrameKind.ERROR: this.connection.destroy(errorFromWire(f.body, 'Server error')); return;
      default: void this.connection.fail(new TesseraError(ErrorCode.PROTOCOL, `Unexpected ${frameKindName(f.kind)} frame from the server`));
    }
  }

  #onClose(reason: TesseraError): void {
    this.#ready = false;
    const calls = [...this.#calls.values()];
    for (const c of calls) c.fail(closedError(reason, `Call ${c.key} aborted`));
  }
}

export class RpcClient extends EventEmitter {
  readonly address: string;
  readonly #options: RpcClientOptions;
  readonly #limits: RpcLimits;
  readonly #transport: Transport;
  readonly #eventListeners = new Map<string, Set<(body: unknown) => void>>();
  #session: ClientSession | undefined;
  #connecting: Promise<ClientSession> | undefined;
  #closed = false;

  private constructor(address: string, options: RpcClientOptions) {
    super();
    parseAddress(address);
    this.address = address;
    this.#options = options;
    this.#limits = checkLimits(options.limits);
    this.#transport = options.transport ?? transportFor(address);
  }

  /** Connects (socket and handshake) and resolves with a ready client. */
  static async connect(address: string, options: RpcClientOptions = {}): Promise<RpcClient> {
    const c = new RpcClient(address, options);
    await c.#ensureSession();
    return c;
  }

  /** True while a connection is up and authenticated. */
  get connected(): boolean {
    return this.#session?.isOpen === true;
  }

  /** The current connection, if any (for its id, addresses and 'close' event). */
  get connection(): Connection | undefined {
    return this.#session?.connection;
  }

  /** Waits for a connection (reconnecting when allowed). */
  async ready(): Promise<void> {
    await this.#ensureSession();
  }

  #ensureSession(): Promise<ClientSession> {
    const s = this.#session;
    if (s !== undefined && s.isOpen) return Promise.resolve(s);
    if (this.#closed) return Promise.reject(new TesseraError(ErrorCode.CONNECTION_CLOSED, `Cannot call ${this.address}: the client is closed`));
    if (s !== undefined && this.#options.reconnect === false) {
      return Promise.reject(closedError(s.connection.closeReason, `Cannot call ${this.address}`));
    }
    this.#connecting ??= this.#open().finally(() => { this.#connecting = undefined; });
    return this.#connecting;
  }

  async #open(): Promise<ClientSession> {
    const timeoutMs = this.#options.connectTimeoutMs;
    const started = Date.now();
    const conn = await this.#transport.connect(this.address, {
      maxFrameBytes: this.#limits.maxFrameBytes,
      ...(timeoutMs !== undefined ? { connectTimeoutMs: timeoutMs } : {}),
      ...(this.#options.tls ? { tls: this.#options.tls } : {}),
      ...(this.#options.localName ? { localName: this.#options.localName } : {}),
    });
    const session = new ClientSession(conn, this.#limits, (key, body) => this.#dispatch(key, body));
    const left = Math.max(1, (timeoutMs ?? 10_000) - (Date.now() - started));
    await session.handshake(this.#options.auth, left);
    if (this.#closed) {
      conn.destroy();
      throw new TesseraError(ErrorCode.CONNECTION_CLOSED, `Cannot call ${this.address}: the client is closed`);
    }
    this.#session = session;
    conn.once('close', (reason: TesseraError) => {
      if (this.#session === session) this.emit('disconnect', reason);
    });
    this.emit('connect', conn);
    return session;
  }

  #dispatch(key: string, body: unknown): void {
    const set = this.#eventListeners.get(key);
    if (set === undefined) return;
    for (const fn of set) {
      try {
        fn(body);
      } catch (err) {
        this.emit('error', err);
      }
    }
  }

  /** Listens to a server-pushed event; returns the function that stops listening. */
  onEvent<S extends ServiceShape, E extends EventNames<S>>(service: ServiceDef<S>, event: E, listener: (body: EventBody<S[E]>) => void): () => void {
    const m = service.members[event];
    if (m === undefined || m.type !== 'event') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot listen: ${service.name}.${event} is not an event`);
    const key = memberKey(service, event);
    let set = this.#eventListeners.get(key);
    if (set === undefined) this.#eventListeners.set(key, set = new Set());
    const fn = listener as (body: unknown) => void;
    set.add(fn);
    return () => { set!.delete(fn); };
  }

  /** A typed proxy with one function per method of the service. */
  service<S extends ServiceShape>(service: ServiceDef<S>): ServiceClient<S> {
    const proxy: Record<string, unknown> = {};
    for (const [name, m] of Object.entries(service.members)) {
      if (m.type !== 'method') continue;
      const key = memberKey(service, name);
      const kind = m.kind;
      if (kind === 'unary') proxy[name] = (req: unknown, options?: CallOptions) => this.#call(kind, key, req, options).result;
      else if (kind === 'serverStream') proxy[name] = (req: unknown, options?: CallOptions) => new Download(this.#call(kind, key, req, options));
      else proxy[name] = (req: unknown, options?: CallOptions) => new Upload(this.#call(kind, key, req, options));
    }
    return Object.freeze(proxy) as ServiceClient<S>;
  }

  #call(kind: MethodKind, key: string, req: unknown, options: CallOptions | undefined): ClientCall {
    const call = new ClientCall(kind, key, req, options, this.#limits);
    const s = this.#session;
    if (s !== undefined && s.isOpen) s.start(call);
    else this.#ensureSession().then((session) => session.start(call), (err: TesseraError) => call.fail(err));
    return call;
  }

  /** Closes the connection; calls in flight fail with CONNECTION_CLOSED. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const s = this.#session;
    if (s) await s.connection.close(new TesseraError(ErrorCode.CONNECTION_CLOSED, 'Connection closed: client closed'));
  }
}
