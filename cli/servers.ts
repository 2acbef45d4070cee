/**
 * Starting servers from a configuration: a master, a worker, or both in one process (`tessera
 * local`). Everything on disk lives under the data directory unless configured otherwise:
 *
 *   <dataDir>/journal   the master's journal (formatted on first start)
 *   <dataDir>/ufs       a local under file system, mounted at /ufs on first start (the master
 *                       keeps / itself: a mount at the root is refused)
 *   <dataDir>/worker    the worker's durable state (pending persists)
 *
 * The worker's MEM tier is a /dev/shm arena when the native module loads (clients on this
 * host then read by short-circuit), mlocked only when RLIMIT_MEMLOCK allows the whole arena.
 */
import { mkdir } from 'node:fs/promises';
import { MasterHost } from '../master/index.js';
import { WorkerHost, type TierSpec } from '../worker/index.js';
import { memlockLimit, nativeAvailable } from '../native/index.js';
import type { TesseraConfig } from './config.js';

/** Where `tessera master` and `tessera local` mount the local UFS root. */
export const UFS_MOUNT_PATH = '/ufs';

export interface ServersInfo {
  masterAddress?: string;
  /** True when the master runs in this process. */
  masterHere?: boolean;
  masterWebAddress?: string;
  journalDir?: string;
  ufsRoot?: string;
  workers: { workerId?: number; address: string; webAddress?: string; memBytes: number; memBacking: string }[];
}

export interface RunningServers {
  info: ServersInfo;
  master?: MasterHost;
  workers: WorkerHost[];
  /** Stops workers first, then the master. Idempotent. */
  stop(): Promise<void>;
}

function hostPort(host: string, port: number): string {
  return `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function memTier(cfg: TesseraConfig): TierSpec {
  const limit = nativeAvailable() ? memlockLimit() : undefined;
  const lock = limit !== undefined && limit.soft >= cfg.workerMemBytes;
  return { alias: 'MEM', capacityBytes: cfg.workerMemBytes, lock };
}

export async function startMaster(cfg: TesseraConfig, opts: { mountUfsRoot: boolean }): Promise<MasterHost> {
  await mkdir(cfg.journalDir, { recursive: true });
  const host = await MasterHost.start({
    address: hostPort(cfg.host, cfg.masterRpcPort),
    journalDir: cfg.journalDir,
    format: true,
    workerTimeoutMs: cfg.workerTimeoutMs,
    heartbeatIntervalMs: cfg.heartbeatIntervalMs,
    logRollBytes: cfg.journalLogRollBytes,
    webPort: cfg.masterWebPort,
    webHost: cfg.host,
    ...(cfg.authToken ? { rpc: { auth: { mode: 'token' as const, secret: cfg.authToken } } } : {}),
  });
  try {
    if (opts.mountUfsRoot && !host.master.getMountTable().some((m) => m.path === UFS_MOUNT_PATH)) {
      await mkdir(cfg.ufsRoot, { recursive: true });
      await host.master.mount({ path: UFS_MOUNT_PATH, ufsUri: cfg.ufsRoot });
    }
  } catch (err) {
    await host.stop();
    throw err;
  }
  return host;
}

export async function startWorker(cfg: TesseraConfig, masterAddress: string): Promise<WorkerHost> {
  await mkdir(cfg.workerDir, { recursive: true });
  return WorkerHost.start({
    masterAddress,
    address: hostPort(cfg.host, cfg.workerRpcPort),
    tiers: [memTier(cfg)],
    stateDir: cfg.workerDir,
    heartbeatIntervalMs: cfg.heartbeatIntervalMs,
    ...(cfg.authToken ? { rpc: { auth: { mode: 'token' as const, secret: cfg.authToken } }, masterRpc: { auth: { token: cfg.authToken } } } : {}),
  });
}

function workerInfo(w: WorkerHost, cfg: TesseraConfig): ServersInfo['workers'][number] {
  const info = w.info();
  return { workerId: info.workerId, address: w.address, memBytes: cfg.workerMemBytes, memBacking: info.memBacking };
}

function stopper(workers: WorkerHost[], master: MasterHost | undefined): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      await Promise.allSettled(workers.map((w) => w.stop()));
      await master?.stop();
    })();
    return stopping;
  };
}

export async function startMasterProcess(cfg: TesseraConfig): Promise<RunningServers> {
  const master = await startMaster(cfg, { mountUfsRoot: true });
  return {
    master, workers: [], stop: stopper([], master),
    info: { masterAddress: master.address, masterHere: true, ...(master.webAddress ? { masterWebAddress: master.webAddress } : {}), journalDir: cfg.journalDir, ufsRoot: cfg.ufsRoot, workers: [] },
  };
}

export async function startWorkerProcess(cfg: TesseraConfig): Promise<RunningServers> {
  const w = await startWorker(cfg, cfg.masterAddress);
  return { workers: [w], stop: stopper([w], undefined), info: { masterAddress: cfg.masterAddress, workers: [workerInfo(w, cfg)] } };
}

/** A master and one worker in this process, over TCP on the configured ports. */
export async function startLocalCluster(cfg: TesseraConfig): Promise<RunningServers> {
  const master = await startMaster(cfg, { mountUfsRoot: true });
  let w: WorkerHost;
  try {
    w = await startWorker(cfg, master.address);
  } catch (err) {
    await master.stop();
    throw err;
  }
  return {
    master, workers: [w], stop: stopper([w], master),
    info: {
      masterAddress: master.address, masterHere: true, ...(master.webAddress ? { masterWebAddress: master.webAddress } : {}),
      journalDir: cfg.journalDir, ufsRoot: cfg.ufsRoot, workers: [workerInfo(w, cfg)],
    },
  };
}

/** For cfg ports of 0 and nativeAvailable checks in messages. */
export { nativeAvailable };
