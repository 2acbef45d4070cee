/**
 * ws:// and wss:// transports over the `ws` package (masking via its optional `bufferutil`).
 * The frames travel as a byte stream cut into binary WebSocket messages: small frames of one
 * tick share a message; a big payload (a 1 MiB stream chunk) is a message of its own, right
 * after the message that ends with its header, so no side copies it to join the two. No
 * message is larger than the peer's maxFrameBytes + FRAME_HEADER_BYTES, so `maxPayload`
 * (checked by ws on the message header, before buffering) is the frame limit. Per-message
 * deflate is off: block bytes are not compressed.
 *
 * A listener admits TCP connections through an AdmissionGate (admission.ts): the HTTP upgrade
 * (and, for wss://, the TLS handshake before it) must finish within handshakeTimeoutMs of the
 * TCP accept, and connections still upgrading count against maxConnections. Until the RPC
 * handshake is done, the message limit is handshakeFrameBytes + a header (see setMessageLimit).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { type Admission, ByteConnection, type Connection, type TlsPeerInfo } from './connection.js';
import { AdmissionGate } from './admission.js';
import { formatAddress, parseAddress } from './address.js';
import { FRAME_HEADER_BYTES, type Frame, FrameEncoder } from './wire.js';
import {
  checkHandshakeFrameBytes, checkHandshakeTimeoutMs, checkMaxConnections, checkMaxFrameBytes, checkTimeoutMs,
  type ConnectOptions, type Listener, type ListenOptions, type Transport,
} from './transport.js';

const CLOSE_LINGER_MS = 2000;
const SEND_OPTIONS = { binary: true, compress: false, fin: true } as const;
/** WebSocket close code for a message over maxPayload (RFC 6455, 1009). */
const WS_MESSAGE_TOO_BIG = 1009;

function tlsInfo(socket: net.Socket | undefined): TlsPeerInfo | undefined {
  if (!(socket instanceof tls.TLSSocket)) return undefined;
  const cert = socket.getPeerCertificate();
  const cn = cert && cert.subject ? cert.subject.CN : undefined;
  const authError = socket.authorizationError as unknown;
  return {
    authorized: socket.authorized,
    authorizationError: authError === null || authError === undefined ? undefined : String(authError),
    subjectCN: typeof cn === 'string' ? cn : Array.isArray(cn) ? cn[0] : undefined,
  };
}

/**
 * Sets the largest message ws accepts on this connection, checked on the message header
 * before ws buffers a byte of it. ws takes maxPayload per server, not per connection, and
 * keeps it on the connection's receiver (ws 8: `_receiver._maxPayload`, set before the
 * 'connection' event, read on every message header). Should a later ws move it, this does
 * nothing: messages stay limited to maxFrameBytes + a header, and the frame parser still
 * refuses an oversized frame on its header.
 */
function setMessageLimit(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } | null })._receiver;
  if (receiver != null && typeof receiver._maxPayload === 'number') receiver._maxPayload = bytes;
}

export class WsConnection extends ByteConnection {
  readonly #ws: WebSocket;
  readonly #socket: net.Socket | undefined;
  readonly #encoder: FrameEncoder;
  #messageLimitBytes: number;
  /** The largest message we accept once the handshake is done (ws maxPayload). */
  readonly #receiveLimitBytes: number;

  constructor(ws: WebSocket, socket: net.Socket | undefined, localAddress: string, remoteAddress: string, maxFrameBytes: number, admission?: Admission) {
    super(localAddress, remoteAddress, maxFrameBytes, admission);
    this.#ws = ws;
    this.#socket = socket;
    this.#encoder = new FrameEncoder(maxFrameBytes);
    this.#messageLimitBytes = maxFrameBytes + FRAME_HEADER_BYTES;
    this.#receiveLimitBytes = maxFrameBytes + FRAME_HEADER_BYTES;
    if (admission !== undefined && admission.handshakeFrameBytes < maxFrameBytes) setMessageLimit(ws, admission.handshakeFrameBytes + FRAME_HEADER_BYTES);
    ws.binaryType = 'nodebuffer';
    socket?.on('drain', () => this.emit('drain'));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        void this.fail(new TesseraError(ErrorCode.PROTOCOL, 'Bad frame: a text WebSocket message (only binary messages carry frames)'));
        return;
      }
      this._receiveBytes(data);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      const tooBig = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || /max payload/i.test(err.message);
      this._peerGone(tooBig
        ? new TesseraError(ErrorCode.FRAME_TOO_LARGE, `Bad frame: WebSocket message over the frame limit (${err.message})`)
        : new TesseraError(ErrorCode.CONNECTION_CLOSED, `Connection closed: WebSocket error (${err.message})`, { cause: err }));
    });
    ws.on('close', (code: number) => {
      this._peerGone(code === WS_MESSAGE_TOO_BIG
        ? new TesseraError(ErrorCode.FRAME_TOO_LARGE, `Connection closed: peer refused a message over its frame limit (WebSocket code ${code})`)
        : undefined);
    });
  }

  override get tls(): TlsPeerInfo | undefined {
    return tlsInfo(this.#socket);
  }

  override liftHandshakeLimit(): void {
    super.liftHandshakeLimit();
    setMessageLimit(this.#ws, this.#receiveLimitBytes);
  }

  /** The peer's maxPayload is its frame limit plus a header: our messages must fit it. */
  override setPeerMaxFrameBytes(bytes: number): void {
    super.setPeerMaxFrameBytes(bytes);
    this.#messageLimitBytes = bytes + FRAME_HEADER_BYTES;
    this.#encoder.maxFrameBytes = bytes;
  }

  /**
   * Cuts the buffers so that no message is over the peer's limit: a batch is taken whenever
   * the next frame would not fit beside it.
   */
  protected override _encode(frames: Frame[], payloads: (Uint8Array | undefined)[], order: number[] | undefined): Uint8Array[] {
    const enc = this.#encoder;
    const out: Uint8Array[] = [];
    let batchBytes = 0;
    for (let k = 0; k < frames.length; k++) {
      const i = order === undefined ? k : order[k]!;
      const payload = payloads[i];
      const bytes = FRAME_HEADER_BYTES + (payload === undefined ? 0 : payload.byteLength);
      if (batchBytes > 0 && batchBytes + bytes > this.#messageLimitBytes) {
        for (const b of enc.take()) out.push(b);
        batchBytes = 0;
      }
      enc.addEncoded(frames[i]!, payload);
      batchBytes += bytes;
    }
    for (const b of enc.take()) out.push(b);
    return out;
  }

  protected override _setReading(on: boolean): void {
    if (on) this.#ws.resume();
    else this.#ws.pause();
  }

  /** What ws and the socket still hold (no compression: the socket's); the queue is counted above. */
  protected override _socketUnsentBytes(): number {
    return (this.#socket?.writableLength ?? 0) + this.#ws.bufferedAmount;
  }

  /**
   * Sends each buffer as its own binary message: a batch of small frames (ending, maybe, with
   * the header of a big DATA frame), or one big payload alone. Neither side copies a payload to
   * join it to its header; the receiving parser reads the messages as one byte stream.
   * ws calls a send's callback from the socket's write callback of its last part (unmasked
   * server messages are written as given, never copied), so `written` rides on the last one.
   * A connection that is no longer open writes nothing and never reports written (its close
   * rejects the flushed() promises).
   */
  protected override _writeBuffers(buffers: Uint8Array[], written: () => void): void {
    const ws = this.#ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    const last = buffers.length - 1;
    for (let i = 0; i < last; i++) ws.send(buffers[i]!, SEND_OPTIONS);
    // A reset socket calls back without an error: only a live socket's callback counts.
    const socket = this.#socket;
    ws.send(buffers[last]!, SEND_OPTIONS, (err?: Error) => { if (!err && socket?.destroyed !== true) written(); });
  }

  protected override _end(): Promise<void> {
    const ws = this.#ws;
    return new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      const timer = setTimeout(() => ws.terminate(), CLOSE_LINGER_MS);
      timer.unref();
      ws.once('close', () => { clearTimeout(timer); resolve(); });
      ws.close(1000);
    });
  }

  protected override _destroy(): void {
    this.#ws.terminate();
  }
}

class WsListener implements Listener {
  readonly address: string;
  readonly #http: http.Server;
  readonly #wss: WebSocketServer;
  readonly #gate: AdmissionGate;
  readonly #connections = new Set<Connection>();
  #closing: Promise<void> | undefined;

  constructor(httpServer: http.Server, wss: WebSocketServer, address: string, gate: AdmissionGate) {
    this.#http = httpServer;
    this.#wss = wss;
    this.address = address;
    this.#gate = gate;
  }

  track(c: Connection): void {
    this.#connections.add(c);
    c.once('close', () => this.#connections.delete(c));
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#wss.close();
      this.#http.close(() => resolve());
      this.#gate.destroyPending();
      for (const c of this.#connections) c.destroy(new TesseraError(ErrorCode.CONNECTION_CLOSED, 'Connection closed: listener closed'));
      this.#http.closeAllConnections?.();
    });
    return this.#closing;
  }
}

class WsTransport implements Transport {
  readonly scheme: 'ws' | 'wss';
  constructor(scheme: 'ws' | 'wss') {
    this.scheme = scheme;
  }

  async listen(address: string, onConnection: (c: Connection) => void, options: ListenOptions = {}): Promise<Listener> {
    const a = parseAddress(address);
    if (a.scheme !== this.scheme) throw new TesseraError(ErrorCode.BAD_ADDRESS, `Bad transport address ${address}: not a ${this.scheme} address`);
    const maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes);
    const handshakeFrameBytes = checkHandshakeFrameBytes(options.handshakeFrameBytes, maxFrameBytes);
    const handshakeTimeoutMs = checkHandshakeTimeoutMs(options.handshakeTimeoutMs);
    const gate = new AdmissionGate(checkMaxConnections(options.maxConnections), handshakeTimeoutMs);
    let httpServer: http.Server;
    if (this.scheme === 'wss') {
      const t = options.tls;
      if (!t || !t.cert || !t.key) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid option tls: a wss:// listener needs tls.cert and tls.key');
      httpServer = https.createServer({
        cert: t.cert, key: t.key, ca: t.ca, requestCert: t.requestCert ?? false, rejectUnauthorized: false, handshakeTimeout: handshakeTimeoutMs,
      });
    } else {
      httpServer = http.createServer();
    }
    // Every TCP connection (raw, before TLS) passes the gate in the tick it is accepted.
    httpServer.on('connection', (raw: net.Socket) => gate.admit(raw));
    httpServer.on('request', (_req, res) => { res.writeHead(426).end('Tessera speaks WebSocket here\n'); });
    const wss = new WebSocketServer({
      server: httpServer, path: a.path, maxPayload: maxFrameBytes + FRAME_HEADER_BYTES, perMessageDeflate: false, clientTracking: false,
    });
    let listener: WsListener | undefined;
    wss.on('connection', (ws, req) => {
      if (listener === undefined) { ws.terminate(); return; }
      const acceptedAtMs = gate.handOver(req.socket);
      if (acceptedAtMs === undefined) { ws.terminate(); return; }
      const remote = `${a.scheme}://${req.socket.remoteAddress}:${req.socket.remotePort}`;
      const c = new WsConnection(ws, req.socket, listener.address, remote, maxFrameBytes, { acceptedAtMs, handshakeFrameBytes });
      listener.track(c);
      onConnection(c);
    });
    wss.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', (err) => reject(new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot listen on ${address}: ${err.message}`, { cause: err })));
      httpServer.listen(a.port, a.host, () => resolve());
    });
    httpServer.on('error', () => undefined);
    httpServer.on('tlsClientError', () => undefined);
    const bound = httpServer.address() as net.AddressInfo;
    listener = new WsListener(httpServer, wss, formatAddress({ ...a, port: bound.port }), gate);
    return listener;
  }

  connect(address: string, options: ConnectOptions = {}): Promise<Connection> {
    const a = parseAddress(address);
    if (a.scheme !== this.scheme) throw new TesseraError(ErrorCode.BAD_ADDRESS, `Bad transport address ${address}: not a ${this.scheme} address`);
    const maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes);
    const timeoutMs = checkTimeoutMs('connectTimeoutMs', options.connectTimeoutMs);
    const t = options.tls ?? {};
    const host = a.host.includes(':') ? `[${a.host}]` : a.host;
    const url = `${a.scheme}://${host}:${a.port}${a.path}`;
    return new Promise<Connection>((resolve, reject) => {
      const ws = new WebSocket(url, {
        maxPayload: maxFrameBytes + FRAME_HEADER_BYTES,
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
        ...(this.scheme === 'wss' ? {
          ca: t.ca, cert: t.cert, key: t.key, rejectUnauthorized: t.rejectUnauthorized ?? true,
          ...(t.servername !== undefined ? { servername: t.servername } : {}),
        } : {}),
      });
      let socket: net.Socket | undefined;
      ws.once('upgrade', (res) => { socket = res.socket as net.Socket; });
      const onError = (err: Error): void => {
        ws.terminate();
        reject(new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot connect to ${address}: ${err.message}`, { cause: err }));
      };
      ws.once('error', onError);
      ws.once('open', () => {
        ws.off('error', onError);
        const local = socket ? `${a.scheme}://${socket.localAddress}:${socket.localPort}` : url;
        resolve(new WsConnection(ws, socket, local, address, maxFrameBytes));
      });
    });
  }
}

export const wsTransport: Transport = new WsTransport('ws');
export const wssTransport: Transport = new WsTransport('wss');
