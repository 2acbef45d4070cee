/**
 * tcp:// and tls:// transports over node:net and node:tls. Nagle is off (setNoDelay) and the
 * frames of one tick leave in one vectored write (cork/uncork), so many small calls in flight
 * share few syscalls while one call alone is not delayed. Big stream payloads are written
 * as they are, never copied into a batch.
 *
 * TLS: certificates come from options. A listener with `requestCert` asks for a client
 * certificate but lets the handshake finish even without a valid one, so that the RPC layer
 * can answer with an UNAUTHENTICATED error frame instead of a bare reset (see rpc-server.ts).
 * A tls:// listener admits TCP connections through an AdmissionGate (admission.ts): the TLS
 * handshake must finish within handshakeTimeoutMs of the TCP accept, and connections still in
 * it count against maxConnections.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { type Admission, ByteConnection, type Connection, type TlsPeerInfo } from './connection.js';
import { AdmissionGate } from './admission.js';
import { formatAddress, parseAddress, type Scheme } from './address.js';
import {
  checkHandshakeFrameBytes, checkHandshakeTimeoutMs, checkMaxConnections, checkMaxFrameBytes, checkTimeoutMs,
  type ConnectOptions, type Listener, type ListenOptions, type Transport,
} from './transport.js';

/** How long an orderly close waits for the peer before it destroys the socket. */
const CLOSE_LINGER_MS = 2000;
export class SocketConnection extends ByteConnection {
  readonly #socket: net.Socket;

  constructor(socket: net.Socket, localAddress: string, remoteAddress: string, maxFrameBytes: number, admission?: Admission) {
    super(localAddress, remoteAddress, maxFrameBytes, admission);
    this.#socket = socket;
    socket.setNoDelay(true);
    // node's own reads (64 KiB buffers). An `onread` reader into 4 MiB slabs was tried and
    // removed: in-process A/B runs on the project's AMD EPYC VM (worker suite, 4 repetitions
    // of 5 interleaved rounds, one connection of each kind to the same worker) had these
    // plain reads 1.08-1.26x faster on 64 MiB block downloads; fresh slabs cost page faults.
    socket.on('data', (chunk: Buffer) => this._receiveBytes(chunk));
    socket.on('error', (err) => {
      this._peerGone(new TesseraError(ErrorCode.CONNECTION_CLOSED, `Connection closed: socket error (${err.message})`, { cause: err }));
    });
    socket.on('close', () => this._peerGone());
    socket.on('drain', () => this.emit('drain'));
  }

  protected override _socketUnsentBytes(): number {
    return this.#socket.writableLength;
  }

  override get tls(): TlsPeerInfo | undefined {
    const s = this.#socket;
    if (!(s instanceof tls.TLSSocket)) return undefined;
    const cert = s.getPeerCertificate();
    const cn = cert && cert.subject ? cert.subject.CN : undefined;
    const authError = s.authorizationError as unknown;
    return {
      authorized: s.authorized,
      authorizationError: authError === null || authError === undefined ? undefined : String(authError),
      subjectCN: typeof cn === 'string' ? cn : Array.isArray(cn) ? cn[0] : undefined,
    };
  }

  protected override _writeBuffers(buffers: Uint8Array[], written: () => void): void {
    const s = this.#socket;
    // Write callbacks run in order, after libuv handed the bytes to the kernel. A failed write
    // leaves `written` uncalled (the connection closes instead); node also calls the
    // callbacks of a reset socket without an error, hence the destroyed check.
    const done = (err?: Error | null): void => { if (!err && !s.destroyed) written(); };
    const last = buffers.length - 1;
    if (last === 0) {
      s.write(buffers[0]!, done);
      return;
    }
    s.cork();
    for (let i = 0; i < last; i++) s.write(buffers[i]!);
    s.write(buffers[last]!, done);
    s.uncork();
  }

  protected override _setReading(on: boolean): void {
    if (on) this.#socket.resume();
    else this.#socket.pause();
  }

  protected override _end(): Promise<void> {
    const s = this.#socket;
    return new Promise((resolve) => {
      if (s.destroyed) return resolve();
      const timer = setTimeout(() => s.destroy(), CLOSE_LINGER_MS);
      timer.unref();
      s.once('close', () => { clearTimeout(timer); resolve(); });
      s.end();
    });
  }

  protected override _destroy(): void {
    this.#socket.destroy();
  }
}

class SocketListener implements Listener {
  readonly address: string;
  readonly #server: net.Server;
  readonly #gate: AdmissionGate | undefined;
  readonly #connections = new Set<Connection>();
  #closing: Promise<void> | undefined;

  constructor(server: net.Server, address: string, gate: AdmissionGate | undefined) {
    this.#server = server;
    this.address = address;
    this.#gate = gate;
  }

  track(c: Connection): void {
    this.#connections.add(c);
    c.once('close', () => this.#connections.delete(c));
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#gate?.destroyPending();
      for (const c of this.#connections) c.destroy(new TesseraError(ErrorCode.CONNECTION_CLOSED, 'Connection closed: listener closed'));
    });
    return this.#closing;
  }
}

function tlsServerOptions(o: ListenOptions): tls.TlsOptions {
  const t = o.tls;
  if (!t || !t.cert || !t.key) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid option tls: a tls:// listener needs tls.cert and tls.key');
  return {
    cert: t.cert, key: t.key, ca: t.ca, requestCert: t.requestCert ?? false,
    // Unverified client certificates are refused by the RPC handshake with an error frame.
    rejectUnauthorized: false,
  };
}

class SocketTransport implements Transport {
  readonly scheme: Scheme;
  constructor(scheme: 'tcp' | 'tls') {
    this.scheme = scheme;
  }

  async listen(address: string, onConnection: (c: Connection) => void, options: ListenOptions = {}): Promise<Listener> {
    const a = parseAddress(address);
    if (a.scheme !== this.scheme) throw new TesseraError(ErrorCode.BAD_ADDRESS, `Bad transport address ${address}: not a ${this.scheme} address`);
    const maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes);
    const handshakeFrameBytes = checkHandshakeFrameBytes(options.handshakeFrameBytes, maxFrameBytes);
    const handshakeTimeoutMs = checkHandshakeTimeoutMs(options.handshakeTimeoutMs);
    const isTls = this.scheme === 'tls';
    const server = isTls ? tls.createServer({ ...tlsServerOptions(options), handshakeTimeout: handshakeTimeoutMs })
      : net.createServer({ noDelay: true });
    const gate = isTls ? new AdmissionGate(checkMaxConnections(options.maxConnections), handshakeTimeoutMs) : undefined;
    let listener: SocketListener | undefined;
    const accept = (socket: net.Socket): void => {
      if (listener === undefined) { socket.destroy(); return; }
      const acceptedAtMs = gate === undefined ? performance.now() : gate.handOver(socket);
      if (acceptedAtMs === undefined) return; // timed out meanwhile: destroyed
      const remote = `${a.scheme}://${socket.remoteAddress}:${socket.remotePort}`;
      const c = new SocketConnection(socket, listener.address, remote, maxFrameBytes, { acceptedAtMs, handshakeFrameBytes });
      listener.track(c);
      onConnection(c);
    };
    // The gate sees every TCP connection in the tick node:tls wraps it, before a byte is read.
    if (gate !== undefined) server.on('connection', (raw: net.Socket) => gate.admit(raw));
    server.on(isTls ? 'secureConnection' : 'connection', accept);
    // A failed TLS handshake concerns that client only.
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot listen on ${address}: ${err.message}`, { cause: err })));
      server.listen(a.port, a.host, () => resolve());
    });
    server.on('error', () => undefined);
    const bound = server.address() as net.AddressInfo;
    listener = new SocketListener(server, formatAddress({ ...a, port: bound.port }), gate);
    return listener;
  }

  connect(address: string, options: ConnectOptions = {}): Promise<Connection> {
    const a = parseAddress(address);
    if (a.scheme !== this.scheme) throw new TesseraError(ErrorCode.BAD_ADDRESS, `Bad transport address ${address}: not a ${this.scheme} address`);
    const maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes);
    const timeoutMs = checkTimeoutMs('connectTimeoutMs', options.connectTimeoutMs);
    return new Promise<Connection>((resolve, reject) => {
      let socket: net.Socket;
      if (this.scheme === 'tls') {
        const t = options.tls ?? {};
        socket = tls.connect({
          host: a.host, port: a.port, ca: t.ca, cert: t.cert, key: t.key,
          rejectUnauthorized: t.rejectUnauthorized ?? true,
          ...(t.servername !== undefined ? { servername: t.servername } : net.isIP(a.host) ? {} : { servername: a.host }),
        });
      } else {
        socket = net.connect({ host: a.host, port: a.port, noDelay: true });
      }
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot connect to ${address}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot connect to ${address}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.once(this.scheme === 'tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        const local = `${a.scheme}://${socket.localAddress}:${socket.localPort}`;
        resolve(new SocketConnection(socket, local, address, maxFrameBytes));
      });
    });
  }
}

export const tcpTransport: Transport = new SocketTransport('tcp');
export const tlsTransport: Transport = new SocketTransport('tls');
