/**
 * WorkerHost: one worker process's parts wired together.
 *
 *   clients ──RPC (any transport)──> data server ──> tiered store (MEM shm/SAB → SSD → HDD)
 *                                         │                 ▲
 *                                         ├─ UFS pool (piscina: miss reads, persists)
 *                                         └─ leases (short-circuit pins per connection)
 *   master  <──register / heartbeat / commitBlock / reportPersisted── master link
 *           ──commands (free, delete, persist, load, pin, unpin, register)──> host
 *
 * `WorkerHost.start({ masterAddress, address, tiers })` opens the store (scanning its tier
 * directories), loads the durable pending-persist list, serves the data service, registers with
 * the master (when one is given), then resumes pending persists and heartbeats. `stop()` undoes
 * all of it, idempotently; before the MEM arena goes it moves blocks not yet persisted down to
 * a file tier (when there is one), so their persists resume after a restart.
 *
 * Pinning follows the master (as in Alluxio): the registration reply, `pin` / `unpin` commands
 * and commit replies set the blocks' pinned flag, kept durably with the pending persists; a
 * pinned block is never evicted. A master `free` drops blocks even if pinned (the master has
 * already refused, or unpinned for a forced free).
 */
import { hostname as osHostname } from 'node:os';
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';
import { DEFAULT_WORKER_RPC_PORT, WORKER_LEASE_MS, WORKER_LEASE_SWEEP_INTERVAL_MS } from '../core/constants.js';
import { RpcServer, type RpcServerOptions } from '../transports/rpc-server.js';
import type { RpcClientOptions } from '../transports/rpc-client.js';
import type { Listener } from '../transports/transport.js';
import { sequenceOfBlock, type WorkerCommand } from '../transports/protocol/master.js';
import { WorkerService, type TierAlias, type WorkerHostInfo } from '../transports/protocol/worker.js';
import { TieredBlockStore, type TierSpec } from './tiered-store.js';
import { LeaseTable } from './leases.js';
import { UfsPool } from './ufs-pool.js';
import { PersistQueue, type PersistJob } from './persist-queue.js';
import { UfsThroughWriters } from './ufs-through.js';
import { createDataServerHandlers } from './data-server.js';
import { MasterLink } from './master-link.js';
import type { PersistPart } from './ufs-task.js';
import type { BlockReader } from './tiered-store.js';

export interface WorkerHostOptions {
  /** The master's address; omitted: a standalone worker (tests, benchmarks). */
  masterAddress?: string;
  /** Where to serve the data service (default tcp://127.0.0.1:29999; port 0 picks one). */
  address?: string;
  /** More addresses for the same service (e.g. an inproc:// one next to tcp://). */
  extraAddresses?: string[];
  /** Tiers, top first: MEM (capacityBytes) then SSD and/or HDD (dirs with quotas). */
  tiers: TierSpec[];
  /** Directory of the durable worker state (pending persists); default: the first file-tier directory. */
  stateDir?: string;
  heartbeatIntervalMs?: number;
  /** Lease of short-circuit pins (default WORKER_LEASE_MS). */
  leaseMs?: number;
  /**
   * Same-host clients may attach to the MEM arena's block engine (read-write) and pin the
   * blocks they read themselves, with no round trip per block (default true). false: every
   * short-circuit read asks the worker for a pin and maps the arena read-only.
   */
  shortCircuitEngine?: boolean;
  /** RPC server options (auth, limits, tls, transport). */
  rpc?: RpcServerOptions;
  /** RPC client options for the master link. */
  masterRpc?: RpcClientOptions;
  ufsPoolThreads?: number;
  hostname?: string;
  /** Persist retry back-off base (tests shorten it). */
  persistRetryBaseMs?: number;
  onError?: (err: unknown) => void;
  /** Events an operator should see (data lost, persists dropped); the CLI prints them to stderr. */
  log?: (line: string) => void;
}

export class WorkerHost {
  readonly store: TieredBlockStore;
  readonly leases: LeaseTable;
  readonly server: RpcServer;
  readonly pool: UfsPool;
  readonly through = new UfsThroughWriters();
  #persist!: PersistQueue;
  #link: MasterLink | undefined;
  #listeners: Listener[] = [];
  #sweepTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  readonly #options: WorkerHostOptions;
  readonly #hostname: string;

  private constructor(options: WorkerHostOptions, store: TieredBlockStore) {
    this.#options = options;
    this.store = store;
    this.leases = new LeaseTable({ leaseMs: options.leaseMs ?? WORKER_LEASE_MS });
    this.server = new RpcServer(options.rpc ?? {});
    this.pool = new UfsPool(options.ufsPoolThreads);
    this.#hostname = options.hostname ?? osHostname();
  }

  static async start(options: WorkerHostOptions): Promise<WorkerHost> {
    if (options === null || typeof options !== 'object') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid WorkerHost options: expected an object');
    if (options.masterAddress !== undefined && typeof options.masterAddress !== 'string') {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid option masterAddress: expected an address string');
    }
    if (options.shortCircuitEngine !== undefined && typeof options.shortCircuitEngine !== 'boolean') {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option shortCircuitEngine: expected a boolean (got ${String(options.shortCircuitEngine)})`);
    }
    const store = await TieredBlockStore.open(options.tiers);
    const host = new WorkerHost(options, store);
    try {
      await host.#start();
    } catch (err) {
      await host.stop().catch(() => undefined);
      throw err;
    }
    return host;
  }

  async #start(): Promise<void> {
    const o = this.#options;
    const stateDir = o.stateDir ?? o.tiers.find((t) => t.alias !== 'MEM')?.dirs?.[0]?.path;
    this.#persist = await PersistQueue.open({
      ...(stateDir ? { stateDir } : {}),
      ...(o.persistRetryBaseMs !== undefined ? { retryBaseMs: o.persistRetryBaseMs } : {}),
      paused: true, // until the master link has registered: reports must reach the master
      write: (job) => this.#persistJob(job),
      report: async (job, ok, lost) => { if (this.#link) await this.#link.reportPersisted(job.fileId, ok, lost); },
      missingBlocks: (job) => job.blockIds.filter((id) => !this.store.has(id)),
      onLost: (job, missing) => this.#log(
        `dropping the persist of file ${job.fileId} (${job.ufsPath}): ${missing.length} of its ${job.blockIds.length} blocks ` +
        `(${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}) are not on this worker, so it cannot be written to its UFS; ` +
        'the master is told (it marks the file LOST unless another worker holds every block)',
      ),
      onPersisted: (job) => { for (const id of job.blockIds) this.store.setFlags(id, { persisted: true }); },
      onError: (_job, err) => o.onError?.(err),
    });
    // Blocks the durable state knows as sticky stay sticky across a restart.
    for (const id of [...this.#persist.unpersisted]) if (!this.store.setFlags(id, { persisted: false })) void this.#persist.forgetBlock(id);
    for (const id of [...this.#persist.pinned]) if (!this.store.setFlags(id, { pinned: true })) void this.#persist.forgetBlock(id);
    this.store.onDropped = (id) => { void this.#persist.forgetBlock(id); };

    this.server.register(WorkerService, createDataServerHandlers({
      store: this.store, leases: this.leases, pool: this.pool, persist: this.#persist, through: this.through,
      commitToMaster: (blockId, lengthBytes, tier) => this.#commitToMaster(blockId, lengthBytes, tier),
      info: () => this.info(),
      shortCircuitEngine: o.shortCircuitEngine ?? true,
    }));
    const address = o.address ?? `tcp://127.0.0.1:${DEFAULT_WORKER_RPC_PORT}`;
    for (const a of [address, ...(o.extraAddresses ?? [])]) this.#listeners.push(await this.server.listen(a));
    this.#sweepTimer = setInterval(() => {
      this.leases.sweep(Date.now());
      // Clients that pin in the engine themselves hold no lease here: a dead one is found by
      // the engine (its process is gone from /proc), now rather than at the engine's own scan.
      try {
        this.store.mem?.reapDeadOwners();
      } catch (err) {
        this.#options.onError?.(err);
      }
    }, WORKER_LEASE_SWEEP_INTERVAL_MS);
    this.#sweepTimer.unref();
    if (o.masterAddress) {
      this.#link = new MasterLink({
        masterAddress: o.masterAddress, workerAddress: this.address, store: this.store, hostname: this.#hostname,
        onCommand: (cmd) => this.#command(cmd),
        onRegistered: (reported, pinned) => this.#applyPinnedSet(reported, pinned),
        ...(o.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: o.heartbeatIntervalMs } : {}),
        ...(o.masterRpc ? { rpc: o.masterRpc } : {}),
        ...(o.onError ? { onError: o.onError } : {}),
      });
      await this.#link.start();
    }
    this.#persist.resume();
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  /** The data address clients use (the first listener, with its real port). */
  get address(): string {
    return this.#listeners[0]!.address;
  }

  get addresses(): string[] {
    return this.#listeners.map((l) => l.address);
  }

  get masterLink(): MasterLink | undefined {
    return this.#link;
  }

  get persistQueue(): PersistQueue {
    return this.#persist;
  }

  /** 'shm' when MEM is an mlocked /dev/shm arena (short-circuit reads work), 'sab' otherwise. */
  get memBacking(): 'shm' | 'sab' | undefined {
    return this.store.memBacking;
  }

  info(): WorkerHostInfo {
    const tiers = this.store.tierStats();
    return {
      workerId: this.#link?.workerId ?? -1,
      address: this.address,
      hostname: this.#hostname,
      memBacking: this.store.memBacking ?? 'sab',
      tiers,
      capacityBytes: tiers.reduce((s, t) => s + t.capacityBytes, 0),
      usedBytes: tiers.reduce((s, t) => s + t.usedBytes, 0),
      blockCount: this.store.blockCount,
      pendingPersists: this.#persist.pendingCount,
    };
  }

  /** Tells the master; a block whose file the master does not know is dropped again; one of a pinned file is pinned. */
  async #commitToMaster(blockId: number, lengthBytes: number, tier: TierAlias): Promise<void> {
    try {
      const res = await this.#link?.commitBlock(blockId, lengthBytes, tier);
      if (res?.pinned) await this.#setPinned([blockId], true);
    } catch (err) {
      if (isTesseraError(err, ErrorCode.FILE_NOT_FOUND)) {
        if (await this.store.remove(blockId)) await this.#persist.forgetBlock(blockId);
      }
      throw err;
    }
  }

  /** Marks the blocks of `ids` held here pinned or not, in the store and durably. */
  async #setPinned(ids: readonly number[], pinned: boolean): Promise<void> {
    const here = ids.filter((id) => this.store.setFlags(id, { pinned }));
    await this.#persist.markBlocks(here, { pinned });
  }

  /** After a registration: the reported blocks are pinned exactly when the master says so. */
  async #applyPinnedSet(reported: readonly number[], pinned: readonly number[] | undefined): Promise<void> {
    if (pinned === undefined) return; // an older master: keep our own flags
    const set = new Set(pinned);
    await this.#setPinned(reported.filter((id) => set.has(id)), true);
    await this.#setPinned(reported.filter((id) => !set.has(id)), false);
  }

  /** Carries out one master command. */
  async #command(cmd: WorkerCommand): Promise<void> {
    switch (cmd.type) {
      case 'free':
        // The master has checked pinning (refused, or unpinned for a forced free): drop them.
        for (const id of cmd.blockIds) if (await this.store.free(id, { force: true })) await this.#persist.forgetBlock(id);
        return;
      case 'pin':
      case 'unpin':
        await this.#setPinned(cmd.blockIds, cmd.type === 'pin');
        return;
      case 'delete':
        for (const id of cmd.blockIds) if (await this.store.remove(id)) await this.#persist.forgetBlock(id);
        return;
      case 'persist':
        await this.#persist.enqueue({
          fileId: cmd.fileId, ufsUri: cmd.ufsUri, ufsPath: cmd.ufsPath, blockIds: cmd.blockIds, lengthBytes: cmd.lengthBytes, blockSizeBytes: cmd.blockSizeBytes,
        });
        return;
      case 'load':
        for (const id of cmd.blockIds) {
          if (this.store.has(id)) continue;
          // The command may name only some blocks of the file: the offset comes from the id.
          const offset = sequenceOfBlock(id) * cmd.blockSizeBytes;
          const len = Math.min(cmd.blockSizeBytes, cmd.lengthBytes - offset);
          if (!(len > 0)) continue;
          const bytes = await this.pool.read(cmd.ufsUri, cmd.ufsPath, offset, len);
          const meta = await this.store.putBlock(id, bytes, { persisted: true });
          await this.#commitToMaster(id, meta.lengthBytes, meta.tier);
        }
        return;
      case 'register':
        return; // handled by the master link
      default:
        return;
    }
  }

  /** Before the MEM arena goes: blocks not yet persisted move to a file tier, or are logged as lost. */
  async #spillUnpersisted(): Promise<void> {
    if (!this.#persist) return;
    const { moved, left } = await this.store.spillUnpersisted();
    if (moved.length > 0) {
      const to = [...new Set(moved.map((id) => this.store.info(id)?.tier))].join('/');
      this.#log(`moved ${moved.length} blocks not yet persisted from MEM to ${to} so their persists resume after a restart`);
    }
    if (left.length > 0) {
      this.#log(`${left.length} blocks not yet persisted (${left.slice(0, 4).join(', ')}${left.length > 4 ? ', ...' : ''}) are lost with the MEM arena: ` +
        (this.store.fileTiers.length === 0 ? 'this worker has no SSD/HDD tier (see workerTiers)' : 'no file tier had room'));
    }
  }

  /** Writes a file's blocks, in order, as one UFS file, from a pool thread. */
  async #persistJob(job: PersistJob): Promise<void> {
    const readers: BlockReader[] = [];
    try {
      const parts: PersistPart[] = [];
      for (const id of job.blockIds) {
        const r = await this.store.openReader(id);
        if (!r) throw new TesseraError(ErrorCode.BLOCK_NOT_FOUND, `Cannot persist file ${job.fileId}: block ${id} is not on this worker`);
        readers.push(r);
        parts.push(this.#partOf(r));
      }
      const total = parts.reduce((s, p) => s + (p.kind === 'bytes' ? p.bytes.byteLength : p.lengthBytes), 0);
      if (total !== job.lengthBytes) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot persist file ${job.fileId}: its blocks hold ${total} bytes, the file ${job.lengthBytes}`);
      }
      await this.pool.persist(job.ufsUri, job.ufsPath, parts);
    } finally {
      for (const r of readers) r.release();
    }
  }

  #partOf(r: BlockReader): PersistPart {
    if (r.filePath) return { kind: 'file', path: r.filePath, lengthBytes: r.lengthBytes };
    const bytes = r.memBytes!;
    const mem = this.store.mem!;
    if (r.inArena && mem.backing === 'shm' && mem.shmPath) {
      return { kind: 'shm', path: mem.shmPath, arenaBytes: mem.arenaBytes, offsetBytes: bytes.byteOffset, lengthBytes: bytes.byteLength };
    }
    return { kind: 'bytes', bytes }; // a SharedArrayBuffer view is shared with the thread, not copied
  }

  /** Stops serving, heartbeating and persisting; releases every pin. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#sweepTimer) clearInterval(this.#sweepTimer);
      // Every step runs even if an earlier one fails: the arena file must not outlive us.
      const steps: (() => Promise<unknown> | unknown)[] = [
        () => this.#link?.stop(),
        () => this.server.close(),
        () => this.leases.clear(),
        () => this.#link?.commandsDone(),
        () => this.through.abortAll(),
        () => this.#persist?.close(),
        () => this.#spillUnpersisted(),
        () => this.pool.close(),
        () => this.store.close(),
      ];
      let first: unknown;
      for (const step of steps) {
        try {
          await step();
        } catch (err) {
          first ??= err;
        }
      }
      if (first !== undefined) this.#options.onError?.(first);
    })();
    return this.#stopping;
  }
}

export type { TierSpec, TierAlias };
