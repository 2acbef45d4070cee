/**
 * Service definitions: each wire message of the Tessera protocol is declared once, with its
 * types, in transports/protocol/*.ts, and both sides derive their types from it:
 *
 *   export const MasterService = defineService('master', {
 *     getStatus: method<GetStatusRequest, FileInfo>(),              // request -> response
 *     readBlock: serverStream<ReadBlockRequest, ReadBlockResult>(), // + bytes server -> client
 *     writeBlock: clientStream<WriteBlockRequest, WriteBlockResult>(), // + bytes client -> server
 *     command: event<WorkerCommand>(),                              // server-pushed message
 *   });
 *
 *   server.register(MasterService, { getStatus: async (req, ctx) => ..., ... });
 *   const master = client.service(MasterService);
 *   const info = await master.getStatus({ path }, { deadlineMs: 5000 });
 *
 * Requests, responses and events are msgpack values (plain objects, arrays, strings, numbers,
 * booleans, null, Uint8Array, Date): no class instances, no Maps. Stream bytes are raw.
 * The method key on the wire is `<service>.<name>`.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import type { ByteSink, ByteSource } from './streams.js';
import type { Peer } from './rpc-server.js';

export type MethodKind = 'unary' | 'serverStream' | 'clientStream';

/** A request/response method, optionally with a byte stream one way. Types are phantom. */
export interface MethodDef<Req, Res, K extends MethodKind = MethodKind> {
  readonly type: 'method';
  readonly kind: K;
  /** Phantom fields: never set, only carry the types. */
  readonly __req?: Req;
  readonly __res?: Res;
}

/** A message the server pushes to a client connection. */
export interface EventDef<Body> {
  readonly type: 'event';
  readonly __body?: Body;
}

/** Request -> response. */
export function method<Req, Res>(): MethodDef<Req, Res, 'unary'> {
  return { type: 'method', kind: 'unary' };
}

/** Request -> bytes from the server (with credit) -> response (a trailer: sent after the bytes). */
export function serverStream<Req, Res>(): MethodDef<Req, Res, 'serverStream'> {
  return { type: 'method', kind: 'serverStream' };
}

/** Request + bytes from the client (with credit) -> response (after the handler read them). */
export function clientStream<Req, Res>(): MethodDef<Req, Res, 'clientStream'> {
  return { type: 'method', kind: 'clientStream' };
}

/** A server-pushed message (heartbeat commands, notifications). */
export function event<Body>(): EventDef<Body> {
  return { type: 'event' };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMethod = MethodDef<any, any, MethodKind>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyEvent = EventDef<any>;
export type ServiceShape = Record<string, AnyMethod | AnyEvent>;

export interface ServiceDef<S extends ServiceShape = ServiceShape> {
  readonly name: string;
  readonly members: S;
}

export function defineService<S extends ServiceShape>(name: string, members: S): ServiceDef<S> {
  if (!/^[A-Za-z][\w-]*$/.test(name)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid service name ${JSON.stringify(name)}: letters, digits, _ and -`);
  for (const [k, m] of Object.entries(members)) {
    if (!/^[A-Za-z_]\w*$/.test(k)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid member name ${JSON.stringify(k)} in service ${name}`);
    if (m === null || typeof m !== 'object' || (m.type !== 'method' && m.type !== 'event')) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid member ${name}.${k}: use method(), serverStream(), clientStream() or event()`);
    }
  }
  return Object.freeze({ name, members: Object.freeze({ ...members }) });
}

export function memberKey(service: ServiceDef, name: string): string {
  return `${service.name}.${name}`;
}

/** Names of the methods (not events) of a service shape. */
export type MethodNames<S extends ServiceShape> = { [K in keyof S]: S[K] extends AnyMethod ? K : never }[keyof S] & string;
/** Names of the events of a service shape. */
export type EventNames<S extends ServiceShape> = { [K in keyof S]: S[K] extends AnyEvent ? K : never }[keyof S] & string;
export type EventBody<E> = E extends EventDef<infer B> ? B : never;

/** What a handler learns about the call besides the request. */
export interface CallContext {
  /** The client connection the call came on (identity, push(), 'close' event). */
  readonly peer: Peer;
  /** Aborted when the client cancels, the deadline passes, or the connection closes. */
  readonly signal: AbortSignal;
  /** Absolute deadline (Date.now() based), if the client set one. */
  readonly deadline: number | undefined;
}

type MaybePromise<T> = T | Promise<T>;

/** The handler type for one method. */
export type HandlerOf<M> =
  M extends MethodDef<infer Req, infer Res, 'unary'> ? (req: Req, ctx: CallContext) => MaybePromise<Res>
    : M extends MethodDef<infer Req, infer Res, 'serverStream'> ? (req: Req, ctx: CallContext, out: ByteSink) => MaybePromise<Res>
      : M extends MethodDef<infer Req, infer Res, 'clientStream'> ? (req: Req, ctx: CallContext, input: ByteSource) => MaybePromise<Res>
        : never;

/** Handlers for every method of a service. */
export type Handlers<S extends ServiceShape> = { [K in MethodNames<S>]: HandlerOf<S[K]> };

/** Per-call options on the client side. */
export interface CallOptions {
  /** Fail with DEADLINE_EXCEEDED (and cancel on the server) after this many ms. */
  deadlineMs?: number;
  /** Abort with CANCELLED (and cancel on the server). */
  signal?: AbortSignal;
  /**
   * Write the request to the socket at once instead of with the other frames of this tick.
   * For a latency-bound call whose caller then runs long without yielding (a copy out of a
   * mapped block): otherwise the request waits, unsent, until the caller lets the event loop
   * run. Costs a write per call instead of one per tick.
   */
  sendNow?: boolean;
}

/**
 * A download: iterate the bytes, then await `result`, the handler's return value. The server
 * sends at most the credit window ahead of what was read, and `result` comes after the last
 * byte, so iterate to the end (or cancel): awaiting `result` alone waits forever once the
 * bytes exceed the window. Breaking out of the loop cancels the call.
 */
export interface DownloadCall<Res> extends AsyncIterable<Uint8Array> {
  /** Resolves after the server's handler returned and every byte was received. */
  readonly result: Promise<Res>;
  /** Stops the call: the server's handler sees its signal aborted and its writes fail. */
  cancel(): void;
}

/** An upload: write bytes (each write waits for credit), then `end()` to get the response. */
export interface UploadCall<Res> {
  /** Hands a chunk over; resolves once the receiver has room (do not modify the chunk after). */
  write(chunk: Uint8Array): Promise<void>;
  /** Ends the byte stream and resolves with the handler's return value. */
  end(): Promise<Res>;
  /** Writes every chunk of `source`, then ends. */
  pipeFrom(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Res>;
  /** Resolves like end(); rejects as soon as the call fails. */
  readonly result: Promise<Res>;
  /** Stops the call with CANCELLED. */
  cancel(): void;
}

export type ClientMethodOf<M> =
  M extends MethodDef<infer Req, infer Res, 'unary'> ? (req: Req, options?: CallOptions) => Promise<Res>
    : M extends MethodDef<infer Req, infer Res, 'serverStream'> ? (req: Req, options?: CallOptions) => DownloadCall<Res>
      : M extends MethodDef<infer Req, infer Res, 'clientStream'> ? (req: Req, options?: CallOptions) => UploadCall<Res>
        : never;

/** The typed proxy `client.service(Def)` returns. */
export type ServiceClient<S extends ServiceShape> = { readonly [K in MethodNames<S>]: ClientMethodOf<S[K]> };
