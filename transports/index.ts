/**
 * Tessera transports: one RPC and byte-stream layer over inproc://, tcp://, tls://, ws:// and
 * wss://. The public surface of this folder; import from here, not from the files.
 *
 * Define a service once (transports/protocol/*.ts):
 *
 *   import { defineService, method, serverStream, clientStream, event } from '../index.js';
 *   export const WorkerService = defineService('worker', {
 *     ping: method<{ n: number }, { n: number }>(),
 *     readBlock: serverStream<{ blockId: string; offset: number; length: number }, { bytes: number }>(),
 *     writeBlock: clientStream<{ blockId: string }, { bytes: number }>(),
 *     evicted: event<{ blockId: string }>(),
 *   });
 *
 * Serve it:
 *
 *   const server = new RpcServer({ auth: { mode: 'token', secret } });   // auth optional on loopback
 *   server.register(WorkerService, {
 *     ping: async (req, ctx) => ({ n: req.n }),                           // ctx.peer, ctx.signal, ctx.deadline
 *     readBlock: async (req, ctx, out) => { await out.write(bytes); return { bytes: bytes.length }; },
 *     writeBlock: async (req, ctx, input) => { for await (const c of input) store(c); return { bytes: n }; },
 *   });
 *   const listener = await server.listen('tcp://127.0.0.1:0');           // listener.address has the port
 *   server.on('connection', (peer) => peer.on('close', () => releaseLeasesOf(peer.id)));
 *   peer.push(WorkerService, 'evicted', { blockId });                    // server-pushed message
 *
 * Call it:
 *
 *   const client = await RpcClient.connect(listener.address, { auth: { token: secret } });
 *   const worker = client.service(WorkerService);
 *   await worker.ping({ n: 1 }, { deadlineMs: 1000, signal });
 *   const dl = worker.readBlock({ blockId, offset: 0, length });         // for await (const chunk of dl), then await dl.result
 *   const up = worker.writeBlock({ blockId }); await up.write(chunk); const res = await up.end();
 *   client.onEvent(WorkerService, 'evicted', (body) => ...);
 *   await client.close();
 *
 * Errors: a TesseraError thrown by a handler reaches the caller with the same code and message;
 * any other error becomes TESSERA_ERR_REMOTE. Connection loss fails calls in flight with
 * TESSERA_ERR_CONNECTION_CLOSED; the next call reconnects (unless `reconnect: false`).
 * Deadlines give DEADLINE_EXCEEDED, aborts CANCELLED; both cancel the handler's ctx.signal.
 * Stream bytes travel as raw frames with credit-based backpressure (a stalled reader stalls
 * the writer's write() promise); chunks are handed over, not copied: do not modify them after
 * write(). write() resolves when the chunk is handed to the connection, not when the socket has
 * sent it: a sender of views into memory it will reuse waits for `peer.connection.flushed()`
 * (resolves once every frame sent before the call has been written to the socket; rejects
 * with the close reason if the connection closes first, after which the socket reads no
 * buffer either). Over inproc the peer gets the very buffers, so such a sender copies there.
 * A stream is a byte stream: the reader may see the bytes cut into other chunks than
 * the writer wrote (never assembled on the way, so a 1 MiB write may arrive as 64 KiB pieces).
 *
 * Limits (RpcLimits, defaults in core/constants.ts): maxFrameBytes (announced in the handshake;
 * a message over the peer's limit fails its call with FRAME_TOO_LARGE), maxInFlightCalls,
 * maxOpenStreams, maxConnections per listener (on tls, ws and wss counting connections still
 * in their TLS handshake or HTTP upgrade), handshakeTimeoutMs (from the TCP accept to READY),
 * idleTimeoutMs, streamWindowBytes, streamChunkBytes; until its handshake is done, a peer's
 * frames are limited to TRANSPORT_HANDSHAKE_FRAME_BYTES. A client with a token refuses a
 * server that does not ask for it. Auth (RpcServerOptions.auth): none (default, loopback
 * only), { mode: 'token', secret } (HMAC challenge-response), { mode: 'mtls' } (tls:// or wss://
 * with tls.requestCert and tls.ca). The inproc transport can simulate a bad network:
 * `new InprocTransport(new InprocNetwork({ faults: { seed, delayMs, dropRate, duplicateRate } }))`,
 * `network.partition(a, b)`.
 *
 * Lower layers, for transports' own tests and tools: `transportFor(address)` gives the
 * `Transport` (listen/connect of frame `Connection`s); wire.ts has the frame layout.
 */
export { transportFor } from './transport-for.js';
export type { Transport, Listener, ListenOptions, ConnectOptions, TlsOptions } from './transport.js';
export { Connection, type TlsPeerInfo } from './connection.js';
export { parseAddress, formatAddress, isLoopbackAddress, type ParsedAddress, type Scheme } from './address.js';
export { InprocNetwork, InprocTransport, defaultInprocNetwork, seededRandom, type InprocFaults, type InprocNetworkOptions } from './inproc.js';
export { tcpTransport, tlsTransport } from './tcp.js';
export { wsTransport, wssTransport } from './ws.js';
export {
  defineService, method, serverStream, clientStream, event, memberKey,
  type ServiceDef, type ServiceShape, type MethodDef, type EventDef, type MethodKind, type Handlers, type HandlerOf,
  type CallContext, type CallOptions, type DownloadCall, type UploadCall, type ServiceClient, type MethodNames, type EventNames,
} from './service.js';
export type { ByteSink, ByteSource } from './streams.js';
export { RpcServer, Peer, type RpcServerOptions } from './rpc-server.js';
export { RpcClient, type RpcClientOptions } from './rpc-client.js';
export { DEFAULT_LIMITS, type RpcLimits, type ServerAuth, type ClientAuth, type PeerIdentity } from './rpc-common.js';
export { FrameKind, FRAME_HEADER_BYTES } from './wire.js';
