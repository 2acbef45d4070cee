/**
 * Starting servers from a configuration: a master, a worker, or both in one process (`tessera
 * local`). Everything on disk lives under the data directory unless configured otherwise:
 *
 *   <dataDir>/journal   the master's journal, formatted on first start: only when the directory
 *                       is missing or empty (a non-empty directory without a journal is refused)
 *   <dataDir>/ufs       a local under file system, mounted at /ufs on first start (the master
 *                       keeps / itself: a mount at the root is refused)
 *   <dataDir>/worker    the worker's durable state (pending persists, pinned blocks)
 *
 * Below MEM a worker has the SSD/HDD directories of `workerTiers` (`--worker-tier
 * SSD:/mnt/ssd:100GiB`, repeatable), none by default. Only with one do blocks not yet
 * persisted (ASYNC_THROUGH) survive a worker restart: they are moved there when it stops.
 *
 * The worker's MEM tier is a /dev/shm arena when the native module loads (clients on this
 * host then read by short-circuit), mlocked only when RLIMIT_MEMLOCK allows the whole arena.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry } from 'prom-client';
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
  /** True when this start formatted a new, empty journal. */
  journalFormatted?: boolean;
  ufsRoot?: string;
  workers: { workerId?: number; address: string; webAddress?: string; memBytes: number; memBacking: string }[];
}

export interface RunningServers {
  info: ServersInfo;
  master?: MasterHost;
  workers: WorkerHost[];
  /** Stops workers first, then the master. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when the master in this process stops serving because its journal failed. */
  failed?: Promise<Error>;
}

function hostPort(host: string, port: number): string {
  return `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The configured SSD/HDD directories as tiers, SSD above HDD. */
function fileTiers(cfg: TesseraConfig): TierSpec[] {
  const out: TierSpec[] = [];
  for (const alias of ['SSD', 'HDD'] as const) {
    const dirs = cfg.workerTiers.filter((d) => d.alias === alias).map((d) => ({ path: d.path, capacityBytes: d.capacityBytes }));
    if (dirs.length > 0) out.push({ alias, dirs });
  }
  return out;
}

function memTier(cfg: TesseraConfig): TierSpec {
  const limit = nativeAvailable() ? memlockLimit() : undefined;
  const lock = limit !== undefined && limit.soft >= cfg.workerMemBytes;
  return { alias: 'MEM', capacityBytes: cfg.workerMemBytes, lock };
}

export async function startMaster(cfg: TesseraConfig, opts: { mountUfsRoot: boolean }): Promise<MasterHost> {
  // Not the journal directory itself: the master formats it only if missing or empty.
  await mkdir(dirname(cfg.journalDir), { recursive: true });
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
    tiers: [memTier(cfg), ...fileTiers(cfg)],
    stateDir: cfg.workerDir,
    log: (line) => { process.stderr.write(`tessera: worker: ${line}\n`); },
    heartbeatIntervalMs: cfg.heartbeatIntervalMs,
    shortCircuitEngine: cfg.workerShortCircuitEngine,
    ...(cfg.authToken ? { rpc: { auth: { mode: 'token' as const, secret: cfg.authToken } }, masterRpc: { auth: { token: cfg.authToken } } } : {}),
  });
}

/**
 * The worker's web endpoint (the worker host has none of its own): /api/info (WorkerHostInfo
 * as JSON) and /metrics (Prometheus: capacity, used bytes, blocks, pending persists).
 */
async function startWorkerWeb(w: WorkerHost, host: string, port: number): Promise<{ server: Server; address: string }> {
  const reg = new Registry();
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({ name, help, registers: [reg], collect() { this.set(value()); } });
  gauge('tessera_worker_capacity_bytes', 'Capacity of every tier', () => w.info().capacityBytes);
  gauge('tessera_worker_used_bytes', 'Bytes used in every tier', () => w.info().usedBytes);
  gauge('tessera_worker_blocks', 'Blocks held', () => w.info().blockCount);
  gauge('tessera_worker_pending_persists', 'Files waiting to be persisted', () => w.info().pendingPersists);
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string) => { res.writeHead(code, { 'content-type': type }); res.end(body); };
    if (url === '/metrics') reg.metrics().then((t) => send(200, reg.contentType, t), (e: Error) => send(500, 'text/plain', e.message));
    else if (url === '/api/info' || url === '/') send(200, 'application/json', JSON.stringify(w.info(), null, 2));
    else send(404, 'text/plain', 'not found: try /api/info or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, () => resolve()); });
  const a = server.address() as AddressInfo;
  return { server, address: `http://${host}:${a.port}` };
}

function workerInfo(w: WorkerHost, cfg: TesseraConfig, webAddress?: string): ServersInfo['workers'][number] {
  const info = w.info();
  return { workerId: info.workerId, address: w.address, memBytes: cfg.workerMemBytes, memBacking: info.memBacking, ...(webAddress ? { webAddress } : {}) };
}

function stopper(workers: WorkerHost[], master: MasterHost | undefined, webs: Server[] = []): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      await Promise.allSettled(webs.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); })));
      await Promise.allSettled(workers.map((w) => w.stop()));
      await master?.stop();
    })();
    return stopping;
  };
}

export async function startMasterProcess(cfg: TesseraConfig): Promise<RunningServers> {
  const master = await startMaster(cfg, { mountUfsRoot: true });
  return {
    master, workers: [], stop: stopper([], master), failed: master.failed,
    info: {
      masterAddress: master.address, masterHere: true, ...(master.webAddress ? { masterWebAddress: master.webAddress } : {}),
      journalDir: cfg.journalDir, journalFormatted: master.master.formattedJournal, ufsRoot: cfg.ufsRoot, workers: [],
    },
  };
}

export async function startWorkerProcess(cfg: TesseraConfig): Promise<RunningServers> {
  const w = await startWorker(cfg, cfg.masterAddress);
  let web: { server: Server; address: string };
  try {
    web = await startWorkerWeb(w, cfg.host, cfg.workerWebPort);
  } catch (err) {
    await w.stop();
    throw err;
  }
  return { workers: [w], stop: stopper([w], undefined, [web.server]), info: { masterAddress: cfg.masterAddress, workers: [workerInfo(w, cfg, web.address)] } };
}

/** A master and one worker in this process, over TCP on the configured ports. */
export async function startLocalCluster(cfg: TesseraConfig): Promise<RunningServers> {
  const master = await startMaster(cfg, { mountUfsRoot: true });
  let w: WorkerHost | undefined;
  let web: { server: Server; address: string };
  try {
    w = await startWorker(cfg, master.address);
    web = await startWorkerWeb(w, cfg.host, cfg.workerWebPort);
  } catch (err) {
    await w?.stop();
    await master.stop();
    throw err;
  }
  return {
    master, workers: [w], stop: stopper([w], master, [web.server]), failed: master.failed,
    info: {
      masterAddress: master.address, masterHere: true, ...(master.webAddress ? { masterWebAddress: master.webAddress } : {}),
      journalDir: cfg.journalDir, journalFormatted: master.master.formattedJournal, ufsRoot: cfg.ufsRoot, workers: [workerInfo(w, cfg, web.address)],
    },
  };
}

/** For cfg ports of 0 and nativeAvailable checks in messages. */
export { nativeAvailable };
