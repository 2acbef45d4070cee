/**
 * The worker's link to the master: register with a full block report, heartbeat every
 * interval with capacity, used bytes and the blocks added and removed since the last beat,
 * carry out the commands in the reply, and register again (full report) whenever the master
 * says it does not know us (it restarted, or declared us lost) or the connection was lost.
 *
 *   idle ──connect+register──> registered ──heartbeat (every interval)──┐
 *     ▲                             │  ▲                                 │
 *     └──── error / 'register' ─────┘  └─────────── commands ───────────┘
 *
 * Failures never stop the loop: a failed call is retried with back-off; changes taken for a
 * heartbeat that failed are given back to the store, so none is lost.
 *
 * The worker learns which of its blocks are pinned from the master, as Alluxio's workers do:
 * the registration reply lists the reported blocks of pinned files (`onRegistered`), later
 * changes arrive as `pin` / `unpin` commands, and a commit's reply says whether the block's
 * file is pinned. Registration results run on the command chain, in order with commands.
 */
import { hostname } from 'node:os';
import { ErrorCode, isTesseraError } from '../core/errors.js';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS, WORKER_HEARTBEAT_BLOCKS_MAX, WORKER_MASTER_CONNECT_TIMEOUT_MS, WORKER_REGISTER_RETRY_BASE_MS, WORKER_REGISTER_RETRY_MAX_MS,
} from '../core/constants.js';
import { RpcClient, type RpcClientOptions } from '../transports/rpc-client.js';
import type { ServiceClient } from '../transports/service.js';
import { MasterService, type WorkerCommand } from '../transports/protocol/master.js';
import type { TierAlias } from '../transports/protocol/worker.js';
import type { TieredBlockStore } from './tiered-store.js';

export interface MasterLinkOptions {
  masterAddress: string;
  /** The worker's data address as clients reach it. */
  workerAddress: string;
  store: TieredBlockStore;
  onCommand: (cmd: WorkerCommand) => Promise<void>;
  /** After each registration: the blocks reported and which of them the master says are pinned (undefined: an older master). */
  onRegistered?: (reportedBlockIds: number[], pinnedBlockIds: number[] | undefined) => Promise<void>;
  heartbeatIntervalMs?: number;
  rpc?: RpcClientOptions;
  hostname?: string;
  onError?: (err: unknown) => void;
}

type MasterClient = ServiceClient<typeof MasterService.members>;

export class MasterLink {
  readonly #o: MasterLinkOptions;
  #client: RpcClient | undefined;
  #master: MasterClient | undefined;
  #workerId: number | undefined;
  #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failures = 0;
  #loop: Promise<void> | undefined;
  #commands: Promise<void> = Promise.resolve();
  /** Counters for tests and metrics. */
  registrations = 0;
  heartbeats = 0;

  constructor(options: MasterLinkOptions) {
    this.#o = options;
    this.#intervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  }

  get workerId(): number | undefined {
    return this.#workerId;
  }

  get registered(): boolean {
    return this.#workerId !== undefined;
  }

  /** Starts the loop; resolves after the first registration attempt (successful or not). */
  async start(): Promise<void> {
    await this.#beat();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const delay = this.#failures === 0
      ? this.#intervalMs
      : Math.min(WORKER_REGISTER_RETRY_MAX_MS, WORKER_REGISTER_RETRY_BASE_MS * 2 ** Math.min(this.#failures - 1, 16));
    this.#timer = setTimeout(() => {
      this.#loop = this.#beat().finally(() => { this.#loop = undefined; this.#schedule(); });
    }, delay);
  }

  async #connect(): Promise<MasterClient> {
    if (this.#master && this.#client) return this.#master;
    // A short connect timeout: a worker whose master is down starts serving anyway and retries.
    this.#client = await RpcClient.connect(this.#o.masterAddress, { connectTimeoutMs: WORKER_MASTER_CONNECT_TIMEOUT_MS, ...(this.#o.rpc ?? {}), reconnect: true });
    this.#master = this.#client.service(MasterService);
    return this.#master;
  }

  async #register(master: MasterClient): Promise<void> {
    const store = this.#o.store;
    store.clearChanges(); // the full report covers them
    const blocks = store.report();
    const res = await master.registerWorker({
      address: this.#o.workerAddress,
      hostname: this.#o.hostname ?? hostname(),
      capacityBytes: store.capacityBytes,
      usedBytes: store.usedBytes,
      blocks,
      tiers: store.tierStats().map((t) => ({ alias: t.alias, capacityBytes: t.capacityBytes, usedBytes: t.usedBytes })),
    });
    this.#workerId = res.workerId;
    if (res.heartbeatIntervalMs > 0 && this.#o.heartbeatIntervalMs === undefined) this.#intervalMs = res.heartbeatIntervalMs;
    this.registrations++;
    const onRegistered = this.#o.onRegistered;
    if (onRegistered) {
      const reported = blocks.map(([id]) => id);
      const pinned = Array.isArray(res.pinnedBlockIds) ? res.pinnedBlockIds : undefined;
      this.#commands = this.#commands.then(() => onRegistered(reported, pinned)).catch((err) => this.#o.onError?.(err));
    }
  }

  /** One step: register if needed, else heartbeat and run the commands. */
  async #beat(): Promise<void> {
    if (this.#stopped) return;
    try {
      const master = await this.#connect();
      if (this.#workerId === undefined) {
        await this.#register(master);
        this.#failures = 0;
        return;
      }
      const store = this.#o.store;
      const changes = store.takeChanges(WORKER_HEARTBEAT_BLOCKS_MAX);
      let commands: WorkerCommand[];
      try {
        ({ commands } = await master.workerHeartbeat({
          workerId: this.#workerId, capacityBytes: store.capacityBytes, usedBytes: store.usedBytes,
          addedBlocks: changes.added, removedBlocks: changes.removed,
        }));
      } catch (err) {
        store.restoreChanges(changes);
        throw err;
      }
      this.heartbeats++;
      this.#failures = 0;
      for (const cmd of commands) {
        if (cmd.type === 'register') {
          this.#workerId = undefined;
          await this.#register(master);
          continue;
        }
        // Commands run in order but off the heartbeat loop: a delete that waits for a
        // reader's lease must not make us miss heartbeats and be declared lost.
        this.#commands = this.#commands.then(() => this.#o.onCommand(cmd)).catch((err) => this.#o.onError?.(err));
      }
    } catch (err) {
      this.#failures++;
      this.#o.onError?.(err);
      if (isTesseraError(err, ErrorCode.CONNECTION_CLOSED) || isTesseraError(err, ErrorCode.CONNECT_FAILED) || isTesseraError(err, ErrorCode.DEADLINE_EXCEEDED)) {
        // Register again on the next connection: the master may have restarted.
        this.#workerId = undefined;
      }
    }
  }

  /**
   * Tells the master a block is committed here; skipped (the next report has it) when not
   * registered. Returns whether the block's file is pinned (undefined when not told).
   */
  async commitBlock(blockId: number, lengthBytes: number, tier: TierAlias): Promise<{ pinned: boolean } | undefined> {
    if (this.#workerId === undefined || !this.#master) return undefined;
    try {
      const res = await this.#master.commitBlock({ workerId: this.#workerId, blockId, lengthBytes, tier });
      return res && typeof res.pinned === 'boolean' ? { pinned: res.pinned } : undefined;
    } catch (err) {
      if (isTesseraError(err, ErrorCode.CONNECTION_CLOSED) || isTesseraError(err, ErrorCode.CONNECT_FAILED) || isTesseraError(err, ErrorCode.WORKER_NOT_FOUND)) {
        return undefined; // the registration or next heartbeat carries it
      }
      throw err;
    }
  }

  /** `lost`: this worker no longer holds some of the file's blocks (with ok false). */
  async reportPersisted(fileId: number, ok: boolean, lost = false): Promise<void> {
    const master = await this.#connect();
    await master.reportPersisted({ ...(this.#workerId !== undefined ? { workerId: this.#workerId } : {}), fileId, ok, ...(lost ? { lost } : {}) });
  }

  /** Forces a heartbeat now and waits for the commands it brought (tests). */
  async beatNow(): Promise<void> {
    if (this.#loop) await this.#loop;
    await this.#beat();
    await this.#commands;
  }

  /** Resolves when the commands received so far have run (the host awaits it after it released client pins). */
  commandsDone(): Promise<void> {
    return this.#commands;
  }

  /** Stops heartbeats; commands already received keep running (see commandsDone). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#loop) await this.#loop.catch(() => undefined);
    await this.#client?.close().catch(() => undefined);
    this.#client = undefined;
    this.#master = undefined;
  }
}
