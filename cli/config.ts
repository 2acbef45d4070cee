/**
 * The command line's configuration: the defaults of core/constants.ts, then `tessera.json`
 * (the working directory's, or the file named by --config or TESSERA_CONFIG), then
 * `TESSERA_*` environment variables, then command-line flags. Each key has one spelling in
 * camelCase (the file) and one in UPPER_SNAKE (the environment: `masterAddress` is
 * `TESSERA_MASTER_ADDRESS`). Every value is checked; a bad one is a TESSERA_ERR_CONFIG that
 * names the key and where it came from. Pure apart from reading the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ErrorCode, TesseraError } from '../core/errors.js';
import {
  DEFAULT_BLOCK_SIZE_BYTES, DEFAULT_DATA_DIR, DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_JOURNAL_LOG_ROLL_BYTES,
  DEFAULT_MASTER_ADDRESS, DEFAULT_MASTER_RPC_PORT, DEFAULT_MASTER_WEB_PORT, DEFAULT_WORKER_MEM_BYTES,
  DEFAULT_WORKER_RPC_PORT, DEFAULT_WORKER_TIMEOUT_MS, DEFAULT_WORKER_WEB_PORT, KIB, WORKER_TIER_DIRS_MAX,
} from '../core/constants.js';
import { parseDurationMs, parseReadType, parseSizeBytes, parseWriteType, type ReadType, type WriteType } from '../client/options.js';
import { parseLocationPolicy } from '../client/location-policy.js';

/** One SSD or HDD directory of the worker, below its MEM tier. */
export interface WorkerTierDir {
  alias: 'SSD' | 'HDD';
  path: string;
  capacityBytes: number;
}

export interface TesseraConfig {
  /** Where `tessera fs`, `report` and workers find the master. */
  masterAddress: string;
  /** Host the servers bind to and advertise. */
  host: string;
  masterRpcPort: number;
  masterWebPort: number;
  workerRpcPort: number;
  workerWebPort: number;
  /** Root of everything `tessera local` keeps on disk. */
  dataDir: string;
  /** Journal directory; default `<dataDir>/journal`. */
  journalDir: string;
  /** Root of the local under file system mounted at `/`; default `<dataDir>/ufs`. */
  ufsRoot: string;
  /** Worker tier directories root; default `<dataDir>/worker`. */
  workerDir: string;
  workerMemBytes: number;
  /**
   * SSD/HDD directories below MEM, each `ALIAS:PATH:SIZE` (`SSD:/mnt/ssd:100GiB`): MEM victims
   * move down to them, and blocks not yet persisted survive a worker restart there. Empty: a
   * MEM-only worker. In tessera.json an array of such strings; in TESSERA_WORKER_TIERS a
   * comma-separated list; on the command line `--worker-tier`, repeated.
   */
  workerTiers: WorkerTierDir[];
  /**
   * Same-host clients may attach to the worker's MEM arena (read-write) and pin the blocks
   * they read themselves, with no call per block (WorkerHost shortCircuitEngine). false: one
   * call per block and a read-only mapping.
   */
  workerShortCircuitEngine: boolean;
  blockSizeBytes: number;
  journalLogRollBytes: number;
  heartbeatIntervalMs: number;
  workerTimeoutMs: number;
  readType: ReadType;
  writeType: WriteType;
  /** As accepted by parseLocationPolicy: 'LocalFirst', 'SpecificHost:10.0.0.5', ... */
  locationPolicy: string;
  /** Shared-secret token for transports that authenticate; empty for none. */
  authToken: string;
}

type Kind = 'string' | 'address' | 'port' | 'bytes' | 'ms' | 'readType' | 'writeType' | 'policy' | 'path' | 'tiers' | 'boolean';

const KEYS: Record<keyof TesseraConfig, Kind> = {
  masterAddress: 'address',
  host: 'string',
  masterRpcPort: 'port',
  masterWebPort: 'port',
  workerRpcPort: 'port',
  workerWebPort: 'port',
  dataDir: 'path',
  journalDir: 'path',
  ufsRoot: 'path',
  workerDir: 'path',
  workerMemBytes: 'bytes',
  workerTiers: 'tiers',
  workerShortCircuitEngine: 'boolean',
  blockSizeBytes: 'bytes',
  journalLogRollBytes: 'bytes',
  heartbeatIntervalMs: 'ms',
  workerTimeoutMs: 'ms',
  readType: 'readType',
  writeType: 'writeType',
  locationPolicy: 'policy',
  authToken: 'string',
};

export const CONFIG_KEYS = Object.keys(KEYS) as (keyof TesseraConfig)[];

/** `masterAddress` → `TESSERA_MASTER_ADDRESS`. */
export function envName(key: string): string {
  return 'TESSERA_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export function defaultConfig(): TesseraConfig {
  return {
    masterAddress: DEFAULT_MASTER_ADDRESS,
    host: '127.0.0.1',
    masterRpcPort: DEFAULT_MASTER_RPC_PORT,
    masterWebPort: DEFAULT_MASTER_WEB_PORT,
    workerRpcPort: DEFAULT_WORKER_RPC_PORT,
    workerWebPort: DEFAULT_WORKER_WEB_PORT,
    dataDir: DEFAULT_DATA_DIR,
    journalDir: '',
    ufsRoot: '',
    workerDir: '',
    workerMemBytes: DEFAULT_WORKER_MEM_BYTES,
    workerTiers: [],
    workerShortCircuitEngine: true,
    blockSizeBytes: DEFAULT_BLOCK_SIZE_BYTES,
    journalLogRollBytes: DEFAULT_JOURNAL_LOG_ROLL_BYTES,
    heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
    workerTimeoutMs: DEFAULT_WORKER_TIMEOUT_MS,
    readType: 'CACHE_PROMOTE',
    writeType: 'MUST_CACHE',
    locationPolicy: 'LocalFirst',
    authToken: '',
  };
}

/**
 * Worker tier directories from `ALIAS:PATH:SIZE` strings (an array, or one string with commas
 * between entries) or `{ alias, path, capacityBytes }` objects. The path is what lies between
 * the first and the last colon, so it may hold colons itself. Throws a plain Error (checkValue
 * names the key and the source).
 */
export function parseWorkerTiers(value: unknown): WorkerTierDir[] {
  const items: unknown[] = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',').filter((x) => x.trim() !== '') : [value];
  if (items.length > WORKER_TIER_DIRS_MAX) throw new Error(`at most ${WORKER_TIER_DIRS_MAX} directories (WORKER_TIER_DIRS_MAX), got ${items.length}`);
  const out: WorkerTierDir[] = [];
  for (const item of items) {
    let alias: unknown;
    let path: unknown;
    let size: unknown;
    if (typeof item === 'string') {
      const first = item.indexOf(':');
      const last = item.lastIndexOf(':');
      if (first === -1 || last === first) throw new Error(`expected ALIAS:PATH:SIZE such as SSD:/mnt/ssd:100GiB (got ${JSON.stringify(item)})`);
      [alias, path, size] = [item.slice(0, first).trim(), item.slice(first + 1, last), item.slice(last + 1)];
    } else if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      ({ alias, path, capacityBytes: size } = item as Record<string, unknown>);
    } else {
      throw new Error(`expected ALIAS:PATH:SIZE strings such as SSD:/mnt/ssd:100GiB (got ${JSON.stringify(item)})`);
    }
    const a = typeof alias === 'string' ? alias.toUpperCase() : alias;
    if (a !== 'SSD' && a !== 'HDD') {
      throw new Error(`tier ${JSON.stringify(alias)} is not SSD or HDD${a === 'MEM' ? ' (the MEM tier is sized by workerMemBytes)' : ''}`);
    }
    if (typeof path !== 'string' || path.trim() === '' || path.includes('\0')) throw new Error(`the ${a} directory must be a non-empty path (got ${JSON.stringify(path)})`);
    let capacityBytes: number;
    try {
      capacityBytes = parseSizeBytes(size, 'size', { min: 1 });
    } catch (err) {
      throw new Error(`the size of ${a} directory ${path}: ${(err as Error).message.replace(/^Invalid option size: /, '')}`);
    }
    if (out.some((d) => d.path === path)) throw new Error(`directory ${path} is listed twice`);
    out.push({ alias: a, path, capacityBytes });
  }
  return out;
}

function configError(key: string, source: string, detail: string): TesseraError {
  return new TesseraError(ErrorCode.CONFIG, `Invalid configuration ${key} (from ${source}): ${detail}`);
}

/** Checks and converts one value; throws TESSERA_ERR_CONFIG naming the key and its source. */
export function checkValue(key: keyof TesseraConfig, value: unknown, source: string): unknown {
  const kind = KEYS[key];
  try {
    switch (kind) {
      case 'string':
      case 'path':
        if (typeof value !== 'string') throw new Error(`expected a string (got ${JSON.stringify(value)})`);
        if (kind === 'path' && value.includes('\0')) throw new Error('path contains NUL');
        return value;
      case 'address':
        if (typeof value !== 'string' || !/^(inproc|tcp|tls|ws|wss):\/\/.+/.test(value)) {
          throw new Error(`expected an address such as tcp://127.0.0.1:19998 (got ${JSON.stringify(value)})`);
        }
        return value;
      case 'port': {
        const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
          throw new Error(`expected a port number 0-65535 (got ${JSON.stringify(value)})`);
        }
        return n;
      }
      case 'bytes': {
        const n = parseSizeBytes(value, key, { min: key === 'blockSizeBytes' ? 4 * KIB : 0 });
        return n;
      }
      case 'ms':
        return parseDurationMs(typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value, key);
      case 'readType':
        return parseReadType(value, key);
      case 'writeType':
        return parseWriteType(value, key);
      case 'policy':
        parseLocationPolicy(value, key);
        return value;
      case 'tiers':
        return parseWorkerTiers(value);
      case 'boolean':
        // true/false in tessera.json; the words (or 1/0) in the environment.
        if (value === true || value === 'true' || value === '1') return true;
        if (value === false || value === 'false' || value === '0') return false;
        throw new Error(`expected true or false (got ${JSON.stringify(value)})`);
      default: {
        const never: never = kind;
        throw new Error(`unknown kind ${String(never)}`);
      }
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message.replace(/^Invalid option [^:]+: /, '') : String(err);
    throw configError(key, source, msg);
  }
}

export interface LoadOptions {
  /** Working directory (tessera.json and relative paths resolve against it). */
  cwd?: string;
  /** Explicit configuration file (--config); an error if missing. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flags given on the command line, already in camelCase; undefined values are ignored. */
  flags?: Partial<Record<keyof TesseraConfig, unknown>>;
}

export interface LoadedConfig {
  config: TesseraConfig;
  /** Where each value came from: 'default', a file path, an environment variable or 'flag'. */
  sources: Record<keyof TesseraConfig, string>;
}

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const config = defaultConfig() as unknown as Record<string, unknown>;
  const sources = Object.fromEntries(CONFIG_KEYS.map((k) => [k, 'default'])) as Record<keyof TesseraConfig, string>;

  const fileName = opts.file ?? env.TESSERA_CONFIG;
  const path = resolve(cwd, fileName ?? 'tessera.json');
  if (fileName !== undefined && !existsSync(path)) {
    throw new TesseraError(ErrorCode.CONFIG, `Cannot read configuration: ${path} does not exist`);
  }
  if (existsSync(path)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new TesseraError(ErrorCode.CONFIG, `Cannot read configuration: ${path} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TesseraError(ErrorCode.CONFIG, `Cannot read configuration: ${path} must hold a JSON object`);
    }
    for (const [k, v] of Object.entries(parsed)) {
      if (!(k in KEYS)) {
        throw new TesseraError(ErrorCode.CONFIG, `Invalid configuration ${k} (from ${path}): unknown key; known keys are ${CONFIG_KEYS.join(', ')}`);
      }
      config[k] = checkValue(k as keyof TesseraConfig, v, path);
      sources[k as keyof TesseraConfig] = path;
    }
  }
  for (const k of CONFIG_KEYS) {
    const v = env[envName(k)];
    if (v !== undefined && v !== '') {
      config[k] = checkValue(k, v, envName(k));
      sources[k] = envName(k);
    }
  }
  for (const [k, v] of Object.entries(opts.flags ?? {})) {
    if (v === undefined) continue;
    if (!(k in KEYS)) throw new TesseraError(ErrorCode.ASSERTION, `Assertion failed: unknown flag key ${k}`);
    config[k] = checkValue(k as keyof TesseraConfig, v, 'flag');
    sources[k as keyof TesseraConfig] = 'flag';
  }
  const c = config as unknown as TesseraConfig;
  c.dataDir = resolve(cwd, c.dataDir);
  c.journalDir = resolve(cwd, c.journalDir || resolve(c.dataDir, 'journal'));
  c.ufsRoot = resolve(cwd, c.ufsRoot || resolve(c.dataDir, 'ufs'));
  c.workerDir = resolve(cwd, c.workerDir || resolve(c.dataDir, 'worker'));
  c.workerTiers = c.workerTiers.map((d) => ({ ...d, path: resolve(cwd, d.path) }));
  return { config: c, sources };
}
