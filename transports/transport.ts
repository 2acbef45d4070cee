/**
 * The one interface every transport implements (inproc.ts; tcp.ts for tcp:// and tls://; ws.ts
 * for ws:// and wss://) and the
 * option checks they share. `transportFor` (transport-for.ts) picks one by address scheme;
 * code above this folder names an address and never a transport.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FRAME_BYTES,
} from '../core/constants.js';
import type { Connection } from './connection.js';
import type { Scheme } from './address.js';

/** Certificates for tls:// and wss:// (PEM strings or Buffers, as node:tls takes them). */
export interface TlsOptions {
  cert?: string | Buffer;
  key?: string | Buffer;
  /** CA certificates that peers' certificates must chain to (client certs, or the server's). */
  ca?: string | Buffer | (string | Buffer)[];
  /** Listener: ask clients for a certificate (mTLS). The RPC layer refuses unverified ones. */
  requestCert?: boolean;
  /** Connector: the name to verify in the server certificate (default: the address host). */
  servername?: string;
  /** Connector: verify the server certificate (default true). */
  rejectUnauthorized?: boolean;
}

export interface ListenOptions {
  /** Largest frame payload accepted (default DEFAULT_MAX_FRAME_BYTES). */
  maxFrameBytes?: number;
  /**
   * Byte transports: largest frame payload accepted from a peer until the layer above calls
   * its connection's `liftHandshakeLimit()` (default maxFrameBytes: no separate limit). The
   * RPC server sets TRANSPORT_HANDSHAKE_FRAME_BYTES, so an unauthenticated peer cannot make it
   * buffer a whole frame.
   */
  handshakeFrameBytes?: number;
  /**
   * tls, ws, wss: a peer still in its TLS handshake or HTTP upgrade this long after its TCP
   * connection was accepted is dropped (default DEFAULT_HANDSHAKE_TIMEOUT_MS). The accepted
   * connection's `acceptedAtMs` lets the layer above keep one deadline for its own handshake.
   */
  handshakeTimeoutMs?: number;
  /**
   * tls, ws, wss: TCP connections open at once, those still in their TLS handshake or HTTP
   * upgrade included; one more is dropped at once, as it cannot be sent an error frame yet
   * (default DEFAULT_MAX_CONNECTIONS). tcp hands connections over at once: the layer above
   * counts them and refuses with an error frame.
   */
  maxConnections?: number;
  tls?: TlsOptions;
}

export interface ConnectOptions {
  /** Largest frame payload accepted (default DEFAULT_MAX_FRAME_BYTES). */
  maxFrameBytes?: number;
  /** Give up connecting after this long (default DEFAULT_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  tls?: TlsOptions;
  /** inproc only: this endpoint's name in the simulated network (for partitions). */
  localName?: string;
}

export interface Listener {
  /** The bound address, with the real port when listening on port 0. */
  readonly address: string;
  /** Stops accepting and destroys the connections it accepted. Idempotent. */
  close(): Promise<void>;
}

export interface Transport {
  readonly scheme: Scheme;
  listen(address: string, onConnection: (c: Connection) => void, options?: ListenOptions): Promise<Listener>;
  connect(address: string, options?: ConnectOptions): Promise<Connection>;
}

export function checkMaxFrameBytes(value: number | undefined): number {
  const v = value ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isInteger(v) || v < 1024 || v > 0xffff_ffff) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option maxFrameBytes: expected an integer in [1024, 2^32-1], got ${String(value)}`);
  }
  return v;
}

/** The first-frame limit: an integer in [1, maxFrameBytes]; default maxFrameBytes. */
export function checkHandshakeFrameBytes(value: number | undefined, maxFrameBytes: number): number {
  const v = value ?? maxFrameBytes;
  if (!Number.isInteger(v) || v < 1 || v > maxFrameBytes) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option handshakeFrameBytes: expected an integer in [1, maxFrameBytes ${maxFrameBytes}], got ${String(value)}`);
  }
  return v;
}

export function checkMaxConnections(value: number | undefined): number {
  const v = value ?? DEFAULT_MAX_CONNECTIONS;
  if (!Number.isInteger(v) || v < 1) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option maxConnections: expected a positive integer, got ${String(value)}`);
  }
  return v;
}

export function checkHandshakeTimeoutMs(value: number | undefined): number {
  return checkTimeoutMs('handshakeTimeoutMs', value, DEFAULT_HANDSHAKE_TIMEOUT_MS);
}

export function checkTimeoutMs(name: string, value: number | undefined, dflt: number = DEFAULT_CONNECT_TIMEOUT_MS): number {
  const v = value ?? dflt;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option ${name}: expected a positive number of milliseconds, got ${String(value)}`);
  }
  return v;
}
