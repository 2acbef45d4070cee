/**
 * MasterHost: a FileSystemMaster served over any transport (inproc://, tcp://, tls://, ws://)
 * with the one master service definition (transports/protocol/master.ts), a periodic tick
 * (lost workers, TTLs, waiting persists) and, if asked, a small HTTP endpoint with Prometheus
 * metrics (/metrics) and a JSON summary (/api/info). `stop()` is idempotent: it stops the
 * tick, the listeners and the web server, then closes the journal after queued writes.
 *
 * A failed journal (a write or fdatasync error) is fatal: the namespace in memory may hold
 * changes that were applied but will never be acknowledged, so from that moment the host
 * stops serving. Every call but `health` fails with TESSERA_ERR_JOURNAL_FAILED, `health`
 * answers `{ ok: false, code, message }`, the tick stops, and `failed` resolves so that the
 * process (cli/server-commands.ts) stops and exits non-zero; a restart replays the journal.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, Gauge, Counter } from 'prom-client';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { DEFAULT_MASTER_RPC_PORT, DEFAULT_TTL_CHECK_INTERVAL_MS } from '../core/constants.js';
import { RpcServer, type RpcServerOptions, type Listener, type Transport } from '../transports/index.js';
import { MasterService, MASTER_METHODS, type MasterHealth } from '../transports/protocol/master.js';
import { FileSystemMaster, type FileSystemMasterOptions } from './file-system-master.js';

export interface MasterHostOptions extends FileSystemMasterOptions {
  /** Where to serve the master service (default tcp://127.0.0.1:19998). */
  address?: string;
  /** More addresses to serve the same service on (e.g. an inproc:// one next to tcp://). */
  extraAddresses?: string[];
  /** The transport to serve on (default: the one for the address's scheme, transportFor). */
  transport?: Transport;
  /** RPC server options: auth, limits, tls. */
  rpc?: RpcServerOptions;
  /** Period of the lost-worker / TTL / persist tick; 0 disables it (tests call master.tick()). */
  tickIntervalMs?: number;
  /** Serve /metrics and /api/info on this port of `webHost` (0: any free port). Omitted: no web endpoint. */
  webPort?: number;
  webHost?: string;
}

export class MasterHost {
  readonly master: FileSystemMaster;
  readonly server: RpcServer;
  #listeners: Listener[] = [];
  #timer: NodeJS.Timeout | undefined;
  #web: Server | undefined;
  #webAddress: string | undefined;
  #stopping: Promise<void> | undefined;
  #ticking = false;
  readonly #calls = new Map<string, number>();
  /** Set when the journal fails: the host serves nothing but `health` from then on. */
  #failure: TesseraError | undefined;
  /** Resolves with the failure when the journal fails; never settles otherwise. */
  readonly failed: Promise<TesseraError>;
  #resolveFailed!: (failure: TesseraError) => void;

  private constructor(master: FileSystemMaster, server: RpcServer) {
    this.master = master;
    this.server = server;
    this.failed = new Promise((resolve) => { this.#resolveFailed = resolve; });
  }

  /** The first address the service listens on, with its real port. */
  get address(): string { return this.#listeners[0]!.address; }
  get addresses(): string[] { return this.#listeners.map((l) => l.address); }
  /** http://host:port of the web endpoint, if any. */
  get webAddress(): string | undefined { return this.#webAddress; }

  static async start(o: MasterHostOptions): Promise<MasterHost> {
    if (o === null || typeof o !== 'object') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid MasterHost options: an object');
    if (o.journalDir !== undefined && typeof o.journalDir !== 'string') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid option journalDir: a string');
    const tickMs = o.tickIntervalMs ?? DEFAULT_TTL_CHECK_INTERVAL_MS;
    if (!Number.isInteger(tickMs) || tickMs < 0) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option tickIntervalMs: ${String(o.tickIntervalMs)}`);
    const master = await FileSystemMaster.open(o);
    const server = new RpcServer({ ...(o.rpc ?? {}), ...(o.transport ? { transport: o.transport } : {}) });
    const host = new MasterHost(master, server);
    master.journal?.onFailure((failure) => host.#onJournalFailure(failure));
    try {
      host.#register();
      for (const a of [o.address ?? `tcp://127.0.0.1:${DEFAULT_MASTER_RPC_PORT}`, ...(o.extraAddresses ?? [])]) {
        host.#listeners.push(await server.listen(a));
      }
      if (o.webPort !== undefined) await host.#startWeb(o.webPort, o.webHost ?? '127.0.0.1');
    } catch (e) {
      await host.stop();
      throw e;
    }
    if (tickMs > 0) {
      host.#timer = setInterval(() => void host.#tick(), tickMs);
      host.#timer.unref();
    }
    return host;
  }

  /** `{ ok: true }` while serving; after a journal failure, its code and message. */
  health(): MasterHealth {
    const f = this.#failure;
    return f === undefined ? { ok: true } : { ok: false, code: f.code, message: f.message };
  }

  #onJournalFailure(failure: TesseraError): void {
    if (this.#failure !== undefined) return;
    this.#failure = new TesseraError(ErrorCode.JOURNAL_FAILED, `The master has stopped serving: ${failure.message}`, { cause: failure });
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#resolveFailed(this.#failure);
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#stopping || this.#failure) return;
    this.#ticking = true;
    try {
      await this.master.tick();
    } catch {
      // A journal failure stops the host (#onJournalFailure); anything else, the tick retries.
    } finally {
      this.#ticking = false;
    }
  }

  #count(name: string): void {
    this.#calls.set(name, (this.#calls.get(name) ?? 0) + 1);
  }

  #register(): void {
    const m = this.master;
    // Every call but health counts, then refuses once the journal has failed.
    const c = (name: string) => {
      this.#count(name);
      if (this.#failure !== undefined) throw this.#failure;
    };
    this.server.register(MasterService, {
      health: () => { this.#count('health'); return this.health(); },
      getInfo: () => { c('getInfo'); return m.getInfo(); },
      createFile: (req) => { c('createFile'); return m.createFile(req); },
      completeFile: (req) => { c('completeFile'); return m.completeFile(req); },
      mkdir: (req) => { c('mkdir'); return m.mkdir(req); },
      getStatus: (req) => { c('getStatus'); return m.getStatus(req); },
      listStatus: (req) => { c('listStatus'); return m.listStatus(req); },
      exists: (req) => { c('exists'); return m.exists(req); },
      rename: (req) => { c('rename'); return m.rename(req); },
      delete: (req) => { c('delete'); return m.delete(req); },
      setAttribute: (req) => { c('setAttribute'); return m.setAttribute(req); },
      free: (req) => { c('free'); return m.free(req); },
      load: (req) => { c('load'); return m.load(req); },
      persist: (req) => { c('persist'); return m.persist(req); },
      getNewBlockId: (req) => { c('getNewBlockId'); return m.getNewBlockId(req); },
      getBlockLocations: (req) => { c('getBlockLocations'); return m.getBlockLocations(req); },
      mount: (req) => { c('mount'); return m.mount(req); },
      unmount: (req) => { c('unmount'); return m.unmount(req); },
      getMountTable: () => { c('getMountTable'); return m.getMountTable(); },
      getWorkers: () => { c('getWorkers'); return m.getWorkers(); },
      registerWorker: (req) => { c('registerWorker'); return m.registerWorker(req); },
      workerHeartbeat: (req) => { c('workerHeartbeat'); return m.workerHeartbeat(req); },
      commitBlock: (req) => { c('commitBlock'); return m.commitBlock(req); },
      reportPersisted: (req) => { c('reportPersisted'); return m.reportPersisted(req); },
    });
  }

  /** A Prometheus registry with the master's gauges and per-method call counters. */
  metricsRegistry(): Registry {
    const reg = new Registry();
    const m = this.master;
    const calls = this.#calls;
    const gauge = (name: string, help: string, value: () => number) =>
      new Gauge({ name, help, registers: [reg], collect() { this.set(value()); } });
    gauge('tessera_master_inodes', 'Inodes in the namespace', () => m.ns.tree.inodeCount);
    gauge('tessera_master_blocks', 'Blocks the block master knows', () => m.blocks.blockCount);
    gauge('tessera_master_workers_live', 'Live workers', () => m.blocks.summary().live);
    gauge('tessera_master_workers_lost', 'Lost workers', () => m.blocks.summary().lost);
    gauge('tessera_master_capacity_bytes', 'Capacity of live workers', () => m.blocks.summary().capacityBytes);
    gauge('tessera_master_used_bytes', 'Bytes used on live workers', () => m.blocks.summary().usedBytes);
    gauge('tessera_master_mounts', 'Mount points', () => m.ns.mounts.size);
    gauge('tessera_master_uptime_seconds', 'Seconds since start', () => (m.clock() - m.startTimeMs) / 1000);
    gauge('tessera_master_journal_failed', '1 once the journal has failed (the master no longer serves)', () => (this.#failure ? 1 : 0));
    new Counter({
      name: 'tessera_master_calls_total', help: 'Master RPC calls by method', labelNames: ['method'], registers: [reg],
      collect() {
        this.reset();
        for (const name of MASTER_METHODS) { const n = calls.get(name); if (n) this.inc({ method: name }, n); }
      },
    });
    return reg;
  }

  async #startWeb(port: number, host: string): Promise<void> {
    const reg = this.metricsRegistry();
    const web = createServer((req, res) => {
      const send = (code: number, type: string, body: string) => { res.writeHead(code, { 'content-type': type }); res.end(body); };
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') return send(405, 'text/plain', 'method not allowed\n');
      if (url === '/metrics') {
        reg.metrics().then((text) => send(200, reg.contentType, text), (e: Error) => send(500, 'text/plain', e.message));
      } else if (url === '/api/info') {
        const body = this.#failure ? { health: this.health() }
          : { health: this.health(), info: this.master.getInfo(), workers: this.master.getWorkers(), mounts: this.master.getMountTable() };
        send(this.#failure ? 503 : 200, 'application/json', JSON.stringify(body, null, 2));
      } else if (url === '/' && this.#failure) {
        send(503, 'text/plain', `${this.#failure.code}: ${this.#failure.message}\n`);
      } else if (url === '/') {
        const i = this.master.getInfo();
        send(200, 'text/html; charset=utf-8', `<!doctype html><title>Tessera master</title><h1>Tessera master ${i.version}</h1>` +
          `<p>uptime ${Math.round(i.uptimeMs / 1000)} s, ${i.inodeCount} inodes, ${i.workers.live} live / ${i.workers.lost} lost workers, ` +
          `${i.workers.usedBytes} / ${i.workers.capacityBytes} bytes used</p><p><a href="/api/info">/api/info</a> <a href="/metrics">/metrics</a></p>`);
      } else {
        send(404, 'text/plain', 'not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      web.once('error', reject);
      web.listen(port, host, () => { web.off('error', reject); resolve(); });
    });
    this.#web = web;
    const a = web.address() as AddressInfo;
    this.#webAddress = `http://${a.address}:${a.port}`;
  }

  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      if (this.#timer) clearInterval(this.#timer);
      if (this.#web) {
        const web = this.#web;
        web.closeAllConnections?.();
        await new Promise<void>((resolve) => web.close(() => resolve()));
      }
      await this.server.close();
      await this.master.close();
    })();
    return this.#stopping;
  }
}
