/**
 * `connect(address)`: a FileSystem talking to a master over any transport (inproc://, tcp://,
 * tls://, ws://). The master connection reconnects on the next call after a loss (RpcClient)
 * and calls are retried across it (master-link.ts); each worker gets its own connection, opened
 * on first use and reopened after a failure.
 */
import { hostname } from 'node:os';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { CLIENT_BLOCK_STREAM_DEADLINE_MS, CLIENT_CALL_DEADLINE_MS, CLIENT_MAX_CALLS_PER_CONNECTION } from '../core/constants.js';
import { Semaphore } from './semaphore.js';
import { RpcClient, type RpcClientOptions, type TlsOptions, type Transport } from '../transports/index.js';
import { MasterService } from '../transports/protocol/master.js';
import { WorkerService } from '../transports/protocol/worker.js';
import { FileSystem } from './file-system.js';
import { isLocal, parseLocationPolicy, type LocationPolicySpec, type LocationPolicyName } from './location-policy.js';
import type { MasterLink } from './master-link.js';
import { parseReadType, parseSizeBytes, parseWriteType, type ReadType, type WriteType } from './options.js';
import { RpcWorkerLink } from './worker-client.js';

export interface ConnectOptions {
  /** Shared-secret token when the servers require one. */
  authToken?: string;
  /**
   * Certificates for tls:// and wss:// masters and workers: `ca` to verify servers whose
   * certificate is not signed by a public CA (self-signed), `cert`/`key` for mutual TLS.
   * The same options go to the master and to every worker.
   */
  tls?: TlsOptions;
  defaultReadType?: ReadType;
  defaultWriteType?: WriteType;
  /** Block size of new files, bytes or '64MiB' (default: 64 MiB). */
  defaultBlockSize?: number | string;
  /** Where new blocks go (default LocalFirst). */
  locationPolicy?: LocationPolicyName | LocationPolicySpec | string;
  /** Host names under which workers on this host register (default: hostname, 127.0.0.1, localhost). */
  clientHosts?: string[];
  /** Read same-host blocks from the worker's shared memory (default true; needs the native module). */
  shortCircuit?: boolean;
  /** Deadline of each master call and unary worker call (default CLIENT_CALL_DEADLINE_MS, 30 s). */
  callDeadlineMs?: number;
  /** Deadline of each block read stream (default CLIENT_BLOCK_STREAM_DEADLINE_MS, 120 s); a read past it resumes on a new stream. */
  blockStreamDeadlineMs?: number;
  /** Time to connect and handshake (default the transport's). */
  connectTimeoutMs?: number;
  /** Use this transport for the master and workers (e.g. a simulated inproc network). */
  transport?: Transport;
  /** Owner and group of what this client creates (default: the OS user). */
  user?: string;
  group?: string;
  /** Called by close() after everything else (embedded() stops its cluster here). */
  onClose?: () => Promise<void>;
}

function positiveMs(v: number | undefined, option: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option ${option}: a positive number of ms (got ${String(v)})`);
  return v;
}

function rpcOptions(opts: ConnectOptions, reconnect: boolean): RpcClientOptions {
  return {
    reconnect,
    ...(opts.authToken ? { auth: { token: opts.authToken } } : {}),
    ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    ...(opts.transport ? { transport: opts.transport } : {}),
    ...(opts.tls ? { tls: opts.tls } : {}),
  };
}

export async function connect(address: string, opts: ConnectOptions = {}): Promise<FileSystem> {
  if (typeof address !== 'string' || !/^(inproc|tcp|tls|ws|wss):\/\//.test(address)) {
    throw new TesseraError(ErrorCode.BAD_ADDRESS, `Invalid master address ${JSON.stringify(address)}: expected e.g. tcp://127.0.0.1:19998 or inproc://master`);
  }
  const defaults = {
    ...(opts.defaultReadType !== undefined ? { defaultReadType: parseReadType(opts.defaultReadType, 'defaultReadType') } : {}),
    ...(opts.defaultWriteType !== undefined ? { defaultWriteType: parseWriteType(opts.defaultWriteType, 'defaultWriteType') } : {}),
    ...(opts.defaultBlockSize !== undefined ? { defaultBlockSizeBytes: parseSizeBytes(opts.defaultBlockSize, 'defaultBlockSize', { min: 1 }) } : {}),
    ...(opts.locationPolicy !== undefined ? { defaultLocationPolicy: parseLocationPolicy(opts.locationPolicy, 'locationPolicy') } : {}),
  };
  let rpc: RpcClient;
  try {
    rpc = await RpcClient.connect(address, rpcOptions(opts, true));
  } catch (err) {
    const code = err instanceof TesseraError ? err.code : ErrorCode.CONNECT_FAILED;
    const why = err instanceof Error ? err.message : String(err);
    throw new TesseraError(code, `Cannot connect to the master at ${address}: ${why}`, { cause: err });
  }
  const callOptions = { deadlineMs: positiveMs(opts.callDeadlineMs, 'callDeadlineMs') ?? CLIENT_CALL_DEADLINE_MS };
  const streamDeadlineMs = positiveMs(opts.blockStreamDeadlineMs, 'blockStreamDeadlineMs') ?? CLIENT_BLOCK_STREAM_DEADLINE_MS;
  const api = rpc.service(MasterService) as unknown as Record<string, (req: unknown, o: { deadlineMs: number }) => Promise<unknown>>;
  // Calls beyond the connection's limit wait here instead of failing with LIMIT_EXCEEDED.
  const inFlight = new Semaphore(CLIENT_MAX_CALLS_PER_CONNECTION);
  const master: MasterLink = {
    call: (method, req) => inFlight.run(() => api[method]!(req, callOptions)) as never,
    close: () => rpc.close(),
  };
  const clientHosts = opts.clientHosts ?? [hostname(), '127.0.0.1', 'localhost', '::1'];
  const shortCircuit = opts.shortCircuit ?? true;
  return new FileSystem({
    master,
    masterAddress: address,
    clientHosts,
    ...defaults,
    ...(opts.onClose ? { onClose: opts.onClose } : {}),
    ...(opts.user !== undefined ? { user: opts.user } : {}),
    ...(opts.group !== undefined ? { group: opts.group } : {}),
    connectWorker: async (w) => {
      const c = await RpcClient.connect(w.address, rpcOptions(opts, false));
      return new RpcWorkerLink(c.service(WorkerService), {
        workerId: w.workerId,
        address: w.address,
        host: w.hostname,
        shortCircuit: shortCircuit && isLocal({ host: w.hostname }, clientHosts),
        close: () => c.close(),
        isClosed: () => !c.connected,
        callDeadlineMs: callOptions.deadlineMs,
        streamDeadlineMs,
      });
    },
  });
}
