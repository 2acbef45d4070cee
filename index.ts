/**
 * The package's face: the public exports of Tessera.
 */
export { TesseraError, ErrorCode, isTesseraError } from './core/errors.js';
export type { ErrorCodeValue } from './core/errors.js';
export { crc32c } from './core/crc32c.js';
// The shared-memory block engine (issue 2).
export { BlockCache } from './core/block-cache.js';
export type {
  BlockCacheAttachOptions, BlockCacheHandle, BlockCacheHooks, BlockCacheOptions, BlockCacheShmAddress, BlockCacheStats, BlockCacheUsage, BlockId, BlockView,
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
// The journal (issue 4).
export { Journal, formatJournal, SimFs, JOURNAL_FORMAT_VERSION } from './core/journal/index.js';
export type {
  JournalEntry, JournaledStateMachine, CheckpointWriter, CheckpointReader, JournalOpenOptions, JournalFormatOptions,
  JournalStats, TailRecovery, FormatJournalOptions, Fs as JournalFs, FsFile as JournalFsFile,
} from './core/journal/index.js';
// The master host (issue 6) and under file systems.
export { MasterHost, FileSystemMaster, BlockMaster, MasterService } from './master/index.js';
export type { MasterHostOptions, FileSystemMasterOptions } from './master/index.js';
export { openUfs, LocalUfs, MemoryUfs } from './ufs/index.js';
export type { UnderFileSystem, UfsStatus, UfsWriter } from './ufs/index.js';
// The worker host (issue 7).
export { WorkerHost, TieredBlockStore, WorkerService } from './worker/index.js';
export type { WorkerHostOptions, TierSpec, WorkerHostInfo } from './worker/index.js';
// The client (issue 8): connect() to a cluster, or embedded() to run one in this process.
export {
  connect, FileSystem, FileInStream, FileOutStream, READ_TYPES, WRITE_TYPES, TTL_ACTIONS, DEFAULT_READ_TYPE, DEFAULT_WRITE_TYPE,
  LOCATION_POLICIES, DEFAULT_LOCATION_POLICY, orderWorkersForWrite, orderSourcesForRead, parseLocationPolicy,
} from './client/index.js';
export type {
  ConnectOptions, FileSystemOptions, LoadOptions, ReadType, WriteType, TtlAction, LocationPolicyName, LocationPolicySpec,
  WorkerCandidate, PlacementContext, BlockSource, FileStatus, BlockLocationInfo, MountInfo, CreateFileOptions, OpenFileOptions,
  SetAttributeOptions,
} from './client/index.js';
import { connect as connectClient, type ConnectOptions as ClientConnectOptions } from './client/connect.js';
import type { FileSystem as ClientFileSystem } from './client/file-system.js';
import { MasterHost as EmbeddedMasterHost } from './master/index.js';
import { WorkerHost as EmbeddedWorkerHost } from './worker/index.js';
import { TesseraError as EmbeddedError, ErrorCode as EmbeddedCode } from './core/errors.js';

export interface EmbeddedOptions extends Omit<ClientConnectOptions, 'onClose' | 'transport' | 'tls'> {
  /** Workers to start (default 1). */
  workers?: number;
  /** MEM tier of each worker (default 256 MiB). */
  workerMemBytes?: number;
  /** 'sab' (default: a SharedArrayBuffer, nothing on disk) or 'shm' (a /dev/shm arena; short-circuit reads). */
  memBacking?: 'sab' | 'shm';
  /** Host name each worker registers under (default: this host's), for placement tests. */
  workerHosts?: string[];
  /** Journal directory; omitted: the namespace lives in memory only. */
  journalDir?: string;
  /** A local directory (or memory://name) mounted at `mountPath` (default /ufs). */
  ufsUri?: string;
  mountPath?: string;
  heartbeatIntervalMs?: number;
}

/** What embedded() runs; `fs.close()` stops all of it. */
export interface EmbeddedCluster {
  master: EmbeddedMasterHost;
  workers: EmbeddedWorkerHost[];
}

/**
 * A master and `workers` workers in this process over the inproc transport, and a FileSystem
 * connected to them: the same API as connect(), nothing to deploy.
 */
export async function embedded(opts: EmbeddedOptions = {}): Promise<ClientFileSystem & { readonly cluster: EmbeddedCluster }> {
  const count = opts.workers ?? 1;
  if (!Number.isInteger(count) || count < 0 || count > 64) throw new EmbeddedError(EmbeddedCode.INVALID_ARGUMENT, `Invalid option workers: an integer 0..64 (got ${String(opts.workers)})`);
  const name = `tessera-embedded-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const hb = opts.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {};
  const master = await EmbeddedMasterHost.start({ address: `inproc://${name}-master`, ...hb, ...(opts.journalDir ? { journalDir: opts.journalDir, format: true } : {}) });
  const workers: EmbeddedWorkerHost[] = [];
  const stop = async () => { await Promise.allSettled(workers.map((w) => w.stop())); await master.stop(); };
  try {
    if (opts.ufsUri) await master.master.mount({ path: opts.mountPath ?? '/ufs', ufsUri: opts.ufsUri });
    for (let i = 0; i < count; i++) {
      workers.push(await EmbeddedWorkerHost.start({
        masterAddress: master.address, address: `inproc://${name}-worker-${i}`, ...hb,
        tiers: [{ alias: 'MEM', capacityBytes: opts.workerMemBytes ?? 256 * 2 ** 20, backing: opts.memBacking ?? 'sab', lock: false }],
        ...(opts.workerHosts?.[i] ? { hostname: opts.workerHosts[i] } : {}),
      }));
    }
    for (let waitedMs = 0; master.master.getWorkers().filter((w) => w.state === 'LIVE').length < count; waitedMs += 10) {
      if (waitedMs > 10_000) throw new EmbeddedError(EmbeddedCode.NO_WORKER, `embedded: ${count} workers did not register within 10 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const { workers: _w, workerMemBytes: _m, memBacking: _b, workerHosts: _h, journalDir: _j, ufsUri: _u, mountPath: _p, heartbeatIntervalMs: _hb, ...client } = opts;
    const fs = await connectClient(master.address, { ...client, onClose: stop });
    return Object.assign(fs, { cluster: { master, workers } });
  } catch (err) {
    await stop();
    throw err;
  }
}
