// Builds real clusters for the client tests: a master and workers over TCP on port 0 (or
// over inproc via embedded()), with a temporary local UFS mounted at /ufs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MasterHost } from '../../master/index.js';
import { WorkerHost } from '../../worker/index.js';
import { connect, type ConnectOptions } from '../../client/connect.js';
import type { FileSystem } from '../../client/file-system.js';

export const MIB = 1024 * 1024;

export interface TcpCluster {
  master: MasterHost;
  workers: WorkerHost[];
  dir: string;
  ufsDir: string;
  journalDir: string;
  fs: FileSystem;
  addWorker(opts?: { hostname?: string; memBacking?: 'sab' | 'shm' }): Promise<WorkerHost>;
  restartMaster(): Promise<void>;
  close(): Promise<void>;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function tcpCluster(opts: { workers?: number; workerHosts?: string[]; memBacking?: 'sab' | 'shm'; memBytes?: number; client?: ConnectOptions } = {}): Promise<TcpCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-client-'));
  const ufsDir = join(dir, 'ufs');
  const journalDir = join(dir, 'journal');
  let master = await MasterHost.start({ address: 'tcp://127.0.0.1:0', journalDir, format: true, heartbeatIntervalMs: 100, workerTimeoutMs: 2000, tickIntervalMs: 100 });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(ufsDir, { recursive: true });
  await master.master.mount({ path: '/ufs', ufsUri: ufsDir });
  const masterAddress = master.address;
  const workers: WorkerHost[] = [];
  const c: TcpCluster = {
    get master() { return master; },
    workers, dir, ufsDir, journalDir,
    fs: undefined as unknown as FileSystem,
    async addWorker(o = {}) {
      const w = await WorkerHost.start({
        masterAddress, address: 'tcp://127.0.0.1:0', heartbeatIntervalMs: 100,
        tiers: [{ alias: 'MEM', capacityBytes: opts.memBytes ?? 64 * MIB, backing: o.memBacking ?? opts.memBacking ?? 'sab', lock: false }],
        ...(o.hostname ? { hostname: o.hostname } : {}),
        stateDir: mkdtempSync(join(dir, 'w-')),
      });
      workers.push(w);
      const n = workers.length;
      await waitFor(() => master.master.getWorkers().filter((x) => x.state === 'LIVE').length >= n, 'worker registration');
      return w;
    },
    async restartMaster() {
      const port = Number(/:(\d+)$/.exec(masterAddress)![1]);
      await master.stop();
      master = await MasterHost.start({ address: `tcp://127.0.0.1:${port}`, journalDir, heartbeatIntervalMs: 100, workerTimeoutMs: 2000, tickIntervalMs: 100 });
    },
    async close() {
      await c.fs?.close().catch(() => {});
      await Promise.allSettled(workers.map((w) => w.stop()));
      await master.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < (opts.workers ?? 1); i++) await c.addWorker(opts.workerHosts?.[i] ? { hostname: opts.workerHosts[i]! } : {});
    c.fs = await connect(masterAddress, opts.client ?? {});
  } catch (err) {
    await c.close();
    throw err;
  }
  return c;
}

/** Deterministic bytes for a file: different per seed, cheap to regenerate. */
export function pattern(lengthBytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(lengthBytes);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < lengthBytes; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
