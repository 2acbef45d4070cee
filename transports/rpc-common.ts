/**
 * What the RPC server and client share: limits and their checks, the handshake bodies, the
 * token challenge-response, and how errors cross the wire.
 *
 * Handshake (first exchange of every connection, before any call):
 *
 *   client                                   server
 *   HELLO { magic, version, windowBytes, maxFrameBytes, nonce: Nc }  ──>  version checked (PROTOCOL_VERSION)
 *                      auth 'none' / 'mtls' <──  READY { windowBytes, maxFrameBytes, method }
 *                      auth 'token'         <──  CHALLENGE { nonce: Ns }
 *   AUTH { proof: HMAC(secret, "client" Ns Nc) }  ──>  timing-safe compare
 *                                           <──  READY { ..., proof: HMAC(secret, "server" Nc Ns) }
 *   anything wrong                          <──  ERROR { code, message }, then close
 *
 * Both nonces are fresh random bytes per connection, so a recorded proof is worthless on
 * another connection (no replay), and the client checks the server's proof too (mutual).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode, type ErrorCodeValue, TesseraError } from '../core/errors.js';
import {
  AUTH_NONCE_BYTES, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT_CALLS, DEFAULT_MAX_OPEN_STREAMS, DEFAULT_STREAM_CHUNK_BYTES,
  DEFAULT_STREAM_WINDOW_BYTES, DEFAULT_MAX_UNSENT_BYTES, GIB, MIB,
} from '../core/constants.js';

export const PROTOCOL_MAGIC = 'tessera';

/** Every limit of a connection; each option is checked and named when wrong. */
export interface RpcLimits {
  /** Largest frame payload accepted (DEFAULT_MAX_FRAME_BYTES). */
  maxFrameBytes: number;
  /** Calls in flight per connection (DEFAULT_MAX_IN_FLIGHT_CALLS); more fail with LIMIT_EXCEEDED. */
  maxInFlightCalls: number;
  /** Byte-stream calls open per connection (DEFAULT_MAX_OPEN_STREAMS). */
  maxOpenStreams: number;
  /**
   * Server: connections at once per listener (DEFAULT_MAX_CONNECTIONS); more get an error frame.
   * On tls, ws and wss, connections still in their TLS handshake or HTTP upgrade count too,
   * and one over the limit there is dropped without a frame (it cannot read one yet).
   */
  maxConnections: number;
  /**
   * Server: time from the TCP accept to the end of HELLO and auth, a TLS handshake or
   * WebSocket upgrade included (DEFAULT_HANDSHAKE_TIMEOUT_MS).
   */
  handshakeTimeoutMs: number;
  /**
   * Server: close a connection with no call in flight and no frame for this long
   * (DEFAULT_IDLE_TIMEOUT_MS); the close comes at most 2 * idleTimeoutMs /
   * TRANSPORT_IDLE_CHECKS_PER_TIMEOUT later.
   */
  idleTimeoutMs: number;
  /** Credit window of each receiving stream (DEFAULT_STREAM_WINDOW_BYTES). */
  streamWindowBytes: number;
  /** Largest DATA frame payload sent (DEFAULT_STREAM_CHUNK_BYTES; at most maxFrameBytes). */
  streamChunkBytes: number;
  /**
   * Server: while more than this many bytes wait in the socket for a client that does not read,
   * new calls are held back (DEFAULT_MAX_UNSENT_BYTES); a client that piles up more than
   * maxInFlightCalls meanwhile is disconnected with LIMIT_EXCEEDED.
   */
  maxUnsentBytes: number;
}

export const DEFAULT_LIMITS: Readonly<RpcLimits> = Object.freeze({
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxInFlightCalls: DEFAULT_MAX_IN_FLIGHT_CALLS,
  maxOpenStreams: DEFAULT_MAX_OPEN_STREAMS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  streamWindowBytes: DEFAULT_STREAM_WINDOW_BYTES,
  streamChunkBytes: DEFAULT_STREAM_CHUNK_BYTES,
  maxUnsentBytes: DEFAULT_MAX_UNSENT_BYTES,
});

export function checkLimits(partial: Partial<RpcLimits> | undefined): RpcLimits {
  const l: RpcLimits = { ...DEFAULT_LIMITS, ...(partial ?? {}) };
  // A smaller frame limit without an explicit chunk size brings the chunk size down with it.
  if (partial?.streamChunkBytes === undefined && Number.isInteger(l.maxFrameBytes)) l.streamChunkBytes = Math.min(l.streamChunkBytes, l.maxFrameBytes);
  const bad = (name: string, why: string): never => {
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option limits.${name}: ${why}, got ${String((l as unknown as Record<string, unknown>)[name])}`);
  };
  const int = (name: keyof RpcLimits, min: number, max: number): void => {
    const v = l[name];
    if (!Number.isInteger(v) || v < min || v > max) bad(name, `expected an integer in [${min}, ${max}]`);
  };
  int('maxFrameBytes', 1024, 0xffff_ffff);
  int('maxInFlightCalls', 1, 1 << 20);
  int('maxOpenStreams', 0, 1 << 20);
  int('maxConnections', 1, 1 << 20);
  int('handshakeTimeoutMs', 1, 3_600_000);
  int('idleTimeoutMs', 1, 2 ** 31 - 1);
  int('streamWindowBytes', 1024, GIB);
  int('streamChunkBytes', 1, l.maxFrameBytes);
  // At least a socket's high-water mark, so a held-back connection always gets a 'drain'.
  int('maxUnsentBytes', MIB, 2 ** 40);
  return l;
}

/** Server authentication: no auth (default, loopback only), a shared token, or client certificates. */
export type ServerAuth = { mode: 'none' } | { mode: 'token'; secret: string | Uint8Array } | { mode: 'mtls' };

/**
 * Client credentials: the shared token (certificates go in `tls`). A client with a token
 * requires the token exchange: a server that answers READY without a CHALLENGE is refused.
 */
export interface ClientAuth {
  token?: string | Uint8Array;
}

/** Who is on the other side of a server connection, as established by the handshake. */
export interface PeerIdentity {
  /** How the peer was authenticated. */
  method: 'none' | 'token' | 'mtls';
  /** The client certificate's subject CN (mtls). */
  subject: string | undefined;
  /** Transport address of the peer, e.g. tcp://127.0.0.1:50123. */
  remoteAddress: string;
}

/** `maxFrameBytes`: the largest frame the sender accepts; the other side caps its stream chunks to it. */
export interface HelloBody { magic: string; version: number; windowBytes: number; maxFrameBytes: number; nonce: Uint8Array }
export interface ReadyBody { windowBytes: number; maxFrameBytes: number; method: PeerIdentity['method']; proof?: Uint8Array }

export function newNonce(): Buffer {
  return randomBytes(AUTH_NONCE_BYTES);
}

function secretBytes(secret: string | Uint8Array): Uint8Array {
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
}

/** HMAC-SHA256 over a role label and both nonces; the label keeps client and server proofs apart. */
export function authProof(secret: string | Uint8Array, role: 'client' | 'server', first: Uint8Array, second: Uint8Array): Buffer {
  return createHmac('sha256', secretBytes(secret)).update(`tessera-auth-v1 ${role}`).update(first).update(second).digest();
}

/** Constant-time compare of a received proof with the expected one. */
export function proofMatches(received: unknown, expected: Buffer): boolean {
  if (!(received instanceof Uint8Array) || received.byteLength !== expected.byteLength) return false;
  return timingSafeEqual(received, expected);
}

export function isNonce(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.byteLength === AUTH_NONCE_BYTES;
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

export interface WireError { code: string; message: string }

export function errorToWire(err: unknown, what: string): WireError {
  if (err instanceof TesseraError) return { code: err.code, message: err.message };
  const msg = err instanceof Error ? err.message : String(err);
  return { code: ErrorCode.REMOTE, message: `${what} failed: ${msg}` };
}

/** A TesseraError with the same code as the remote one (REMOTE for codes we do not know). */
export function errorFromWire(body: unknown, fallback: string): TesseraError {
  if (body !== null && typeof body === 'object') {
    const { code, message } = body as Partial<WireError>;
    if (typeof code === 'string' && typeof message === 'string') {
      return KNOWN_CODES.has(code) ? new TesseraError(code as ErrorCodeValue, message) : new TesseraError(ErrorCode.REMOTE, `${message} (remote code ${code})`);
    }
  }
  return new TesseraError(ErrorCode.PROTOCOL, `${fallback}: malformed error body`);
}

export function closedError(reason: TesseraError | undefined, what: string): TesseraError {
  if (reason && reason.code === ErrorCode.CONNECTION_CLOSED) return new TesseraError(ErrorCode.CONNECTION_CLOSED, `${what}: ${reason.message}`, { cause: reason });
  return new TesseraError(ErrorCode.CONNECTION_CLOSED, `${what}: connection closed${reason ? ` (${reason.code}: ${reason.message})` : ''}`, reason ? { cause: reason } : undefined);
}
