/**
 * The package's face: the public exports of Tessera.
 */
export { TesseraError, ErrorCode, isTesseraError } from './core/errors.js';
export type { ErrorCodeValue } from './core/errors.js';
export { crc32c } from './core/crc32c.js';
// The shared-memory block engine (issue 2).
export { BlockCache } from './core/block-cache.js';
export type {
  BlockCacheAttachOptions, BlockCacheHandle, BlockCacheHooks, BlockCacheOptions, BlockCacheStats, BlockId, BlockView,
  EvictionPolicyName,
} from './core/block-cache.js';
export type { Arena, ArenaHandle, ArenaKind } from './core/arena.js';
// Transports and RPC (issue 5).
export {
  RpcServer, RpcClient, Peer, defineService, method, serverStream, clientStream, event, transportFor,
  InprocNetwork, InprocTransport, parseAddress, DEFAULT_LIMITS,
} from './transports/index.js';
export type {
  Transport, Listener, Connection, RpcServerOptions, RpcClientOptions, RpcLimits, ServerAuth, ClientAuth, PeerIdentity,
  CallContext, CallOptions, DownloadCall, UploadCall, ByteSink, ByteSource, ServiceDef, TlsOptions,
} from './transports/index.js';
// native/ (issue 3): importing it installs the native CRC32C when the module loads.
export { nativeStatus, mapShared, unmap, madvise, msync, futexWait, futexWake } from './native/index.js';
export type { NativeStatus, MapSharedOptions, Advice, WaitResult } from './native/index.js';
export { doctorReport } from './native/doctor.js';
