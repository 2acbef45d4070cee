// Builds real clusters for the client tests: a master and workers over TCP on port 0 (or
// over inproc via embedded()), with a temporary local UFS mounted at /ufs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MasterHost } from '../../master/index.js';
import { WorkerHost } from '../../worker/index.js';
import { connect, type ConnectOptions } from '../../client/connect.js';
import type { FileSystem } from '../../client/file-system.js';
import { RpcWorkerLink } from '../../client/worker-client.js';
import type { ReadBlockRequest } from '../../client/worker-link.js';

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

/** Server certificate and key, and the CA that signed them, for a cluster over tls://. */
export interface ClusterTls { cert: string; key: string; ca: string }

/**
 * A master and workers over tcp:// (or tls:// when `tls` is given: servers present `cert`,
 * and the workers and the client trust `ca`), each on port 0.
 */
export async function tcpCluster(opts: {
  workers?: number; workerHosts?: string[]; memBacking?: 'sab' | 'shm'; memBytes?: number; client?: ConnectOptions; tls?: ClusterTls;
  shortCircuitEngine?: boolean;
} = {}): Promise<TcpCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-client-'));
  const ufsDir = join(dir, 'ufs');
  const journalDir = join(dir, 'journal');
  const scheme = opts.tls ? 'tls' : 'tcp';
  const serverRpc = opts.tls ? { rpc: { tls: { cert: opts.tls.cert, key: opts.tls.key } } } : {};
  const masterOpts = { heartbeatIntervalMs: 100, workerTimeoutMs: 2000, tickIntervalMs: 100, ...serverRpc };
  let master = await MasterHost.start({ address: `${scheme}://127.0.0.1:0`, journalDir, format: true, ...masterOpts });
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
        masterAddress, address: `${scheme}://127.0.0.1:0`, heartbeatIntervalMs: 100, ...serverRpc,
        ...(opts.tls ? { masterRpc: { tls: { ca: opts.tls.ca } } } : {}),
        tiers: [{ alias: 'MEM', capacityBytes: opts.memBytes ?? 64 * MIB, backing: o.memBacking ?? opts.memBacking ?? 'sab', lock: false }],
        ...(o.hostname ? { hostname: o.hostname } : {}),
        ...(opts.shortCircuitEngine !== undefined ? { shortCircuitEngine: opts.shortCircuitEngine } : {}),
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
      master = await MasterHost.start({ address: `${scheme}://127.0.0.1:${port}`, journalDir, ...masterOpts });
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
    c.fs = await connect(masterAddress, { ...(opts.tls ? { tls: { ca: opts.tls.ca } } : {}), ...(opts.client ?? {}) });
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

export interface BlockReadRecord {
  workerId: number; blockId: number; offsetBytes: number; lengthBytes: number;
  /** Set once the reader has finished with the read (ran to its end, failed, or gave it back). */
  closed: boolean;
}

/**
 * Records every block read a client asks of a worker link (RpcWorkerLink.readBlock), in order,
 * until restore(): which worker, which block, from which byte, and whether it is over.
 */
export function spyBlockReads(): { reads: BlockReadRecord[]; restore(): void } {
  const proto = RpcWorkerLink.prototype;
  const original = proto.readBlock;
  const reads: BlockReadRecord[] = [];
  proto.readBlock = function (this: RpcWorkerLink, req: ReadBlockRequest): AsyncIterable<Uint8Array> {
    const rec: BlockReadRecord = { workerId: this.workerId, blockId: req.blockId, offsetBytes: req.offsetBytes, lengthBytes: req.lengthBytes, closed: false };
    reads.push(rec);
    const inner = original.call(this, req);
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<Uint8Array> => {
        const it = inner[Symbol.asyncIterator]();
        return {
          next: async () => {
            try {
              const r = await it.next();
              if (r.done) rec.closed = true;
              return r;
            } catch (err) {
              rec.closed = true;
              throw err;
            }
          },
          return: async (v?: unknown) => {
            rec.closed = true;
            return it.return ? it.return(v) : { done: true, value: undefined };
          },
        };
      },
    };
  };
  return { reads, restore: () => { proto.readBlock = original; } };
}
