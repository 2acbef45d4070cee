/**
 * The worker's SSD/HDD tiers in the shipped commands: the `workerTiers` key (tessera.json,
 * TESSERA_WORKER_TIERS, --worker-tier), its checks, and what it buys: an ASYNC_THROUGH persist
 * pending when `tessera local` stops resumes after a restart with an SSD tier, while a MEM-only
 * worker's file is marked LOST after the restart.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../cli/config.js';
import { startLocalCluster, UFS_MOUNT_PATH, type RunningServers } from '../../cli/servers.js';
import { connect } from '../../client/connect.js';
import { GIB, MIB, WORKER_TIER_DIRS_MAX } from '../../core/constants.js';
import { configError } from './fixtures.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'tessera.js');
const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-tiers-'));

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('workerTiers comes from tessera.json, TESSERA_WORKER_TIERS or repeated flags, paths resolved against the working directory', () => {
  assert.equal(loadConfig({ cwd: dir, env: {} }).config.workerTiers, [], 'MEM-only by default');
  const f = join(dir, 'tiers.json');
  writeFileSync(f, JSON.stringify({ workerTiers: ['ssd:./fast:10GiB', { alias: 'HDD', path: '/big:disk', capacityBytes: '2TiB' }] }));
  const fromFile = loadConfig({ cwd: dir, file: f, env: {} });
  assert.equal(fromFile.config.workerTiers, [
    { alias: 'SSD', path: join(dir, 'fast'), capacityBytes: 10 * GIB },
    { alias: 'HDD', path: '/big:disk', capacityBytes: 2048 * GIB },
  ]);
  assert.is(fromFile.sources.workerTiers, f);
  const fromEnv = loadConfig({ cwd: dir, file: f, env: { TESSERA_WORKER_TIERS: 'SSD:/a:1GiB,HDD:/b:3GiB' } });
  assert.equal(fromEnv.config.workerTiers.map((d) => [d.alias, d.path, d.capacityBytes]), [['SSD', '/a', GIB], ['HDD', '/b', 3 * GIB]]);
  assert.is(fromEnv.sources.workerTiers, 'TESSERA_WORKER_TIERS');
  const fromFlags = loadConfig({ cwd: dir, env: { TESSERA_WORKER_TIERS: 'SSD:/a:1GiB' }, flags: { workerTiers: ['SSD:/x:64MiB', 'SSD:/y:64MiB'] } });
  assert.equal(fromFlags.config.workerTiers.map((d) => d.path), ['/x', '/y']);
  assert.is(fromFlags.config.workerTiers[0]!.capacityBytes, 64 * MIB);
});

test('a bad workerTiers entry is a TESSERA_ERR_CONFIG naming the key, its source and the problem', () => {
  const env = (v: string) => () => loadConfig({ cwd: dir, env: { TESSERA_WORKER_TIERS: v } });
  configError(env('MEM:/x:1GiB'), ['workerTiers', 'TESSERA_WORKER_TIERS', 'not SSD or HDD', 'workerMemBytes']);
  configError(env('SSD:/x'), ['workerTiers', 'ALIAS:PATH:SIZE']);
  configError(env('SSD:/x:lots'), ['workerTiers', 'size of SSD directory /x', 'expected a size']);
  configError(env('SSD:/x:0'), ['workerTiers', 'at least']);
  configError(env('SSD::1GiB'), ['workerTiers', 'non-empty path']);
  configError(env('SSD:/x:1GiB,HDD:/x:1GiB'), ['workerTiers', '/x is listed twice']);
  const many = Array.from({ length: WORKER_TIER_DIRS_MAX + 1 }, (_, i) => `HDD:/d${i}:1GiB`).join(',');
  configError(env(many), ['workerTiers', 'WORKER_TIER_DIRS_MAX']);
  configError(() => loadConfig({ cwd: dir, env: {}, flags: { workerTiers: [42] } }), ['workerTiers', 'flag']);
});

test('tessera worker with a bad --worker-tier exits 2 and names the key', async () => {
  const r = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'worker', '--data-dir', join(dir, 'never'), '--worker-tier', 'SSD:/x:1GiB', '--worker-tier', 'TAPE:/y:1GiB'], { cwd: dir });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /TESSERA_ERR_CONFIG: Invalid configuration workerTiers \(from flag\): tier "TAPE" is not SSD or HDD/);
});

/** Runs `tessera local` in this process with these tiers, capturing the worker's log lines. */
async function local(dataDir: string, workerTiers: string[], logs: string[]): Promise<RunningServers> {
  const { config } = loadConfig({
    cwd: dir, env: {},
    flags: {
      dataDir, masterRpcPort: 0, masterWebPort: 0, workerRpcPort: 0, workerWebPort: 0, workerMemBytes: '16MiB', heartbeatIntervalMs: 50,
      ...(workerTiers.length > 0 ? { workerTiers } : {}),
    },
  });
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = String(chunk);
    if (text.startsWith('tessera: worker: ')) { logs.push(text.trim()); return true; }
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
  const servers = await startLocalCluster(config);
  const stop = servers.stop;
  servers.stop = async () => {
    try {
      await stop();
    } finally {
      process.stderr.write = write;
    }
  };
  return servers;
}

/** Writes /ufs/out/f ASYNC_THROUGH with its persist held pending (a directory where the UFS file goes). */
async function writePending(servers: RunningServers, ufsRoot: string, bytes: Buffer): Promise<void> {
  const fs = await connect(servers.info.masterAddress!);
  try {
    const out = await fs.createFile(`${UFS_MOUNT_PATH}/out/f`, { writeType: 'ASYNC_THROUGH', blockSize: '4MiB' });
    mkdirSync(join(ufsRoot, 'out', 'f'), { recursive: true });
    await out.write(bytes);
    await out.close();
  } finally {
    await fs.close();
  }
  const w = servers.workers[0]!;
  await until('the persist is pending on the worker', () => w.persistQueue.jobs().some((j) => j.attempts >= 1));
}

async function persistenceOf(servers: RunningServers): Promise<string> {
  const fs = await connect(servers.info.masterAddress!);
  try {
    return (await fs.getStatus(`${UFS_MOUNT_PATH}/out/f`)).persistenceState;
  } finally {
    await fs.close();
  }
}

test('tessera local with --worker-tier SSD: a pending ASYNC_THROUGH persist survives a restart of the process', async () => {
  const dataDir = join(dir, 'with-ssd');
  const ufsRoot = join(dataDir, 'ufs');
  const logs: string[] = [];
  const tiers = [`SSD:${join(dataDir, 'ssd')}:64MiB`];
  let servers = await local(dataDir, tiers, logs);
  try {
    assert.equal(servers.workers[0]!.store.tierStats().map((t) => t.alias), ['MEM', 'SSD']);
    const bytes = Buffer.alloc(3 * MIB + 5, 7);
    await writePending(servers, ufsRoot, bytes);
    await servers.stop();
    assert.ok(logs.some((l) => /moved 1 blocks not yet persisted from MEM to SSD/.test(l)), logs.join('\n'));
    rmdirSync(join(ufsRoot, 'out', 'f'));
    servers = await local(dataDir, tiers, logs);
    await until('the file is persisted after the restart', async () => (await persistenceOf(servers)) === 'PERSISTED');
    assert.ok(readFileSync(join(ufsRoot, 'out', 'f')).equals(bytes));
  } finally {
    await servers.stop();
  }
});

test('tessera local without a file tier: after a restart the pending file is LOST and its persist dropped, not retried', async () => {
  const dataDir = join(dir, 'mem-only');
  const ufsRoot = join(dataDir, 'ufs');
  const logs: string[] = [];
  let servers = await local(dataDir, [], logs);
  try {
    await writePending(servers, ufsRoot, Buffer.alloc(MIB, 9));
    await servers.stop();
    assert.ok(logs.some((l) => /are lost with the MEM arena: this worker has no SSD\/HDD tier \(see workerTiers\)/.test(l)), logs.join('\n'));
    rmdirSync(join(ufsRoot, 'out', 'f'));
    servers = await local(dataDir, [], logs);
    await until('the master marks the file LOST', async () => (await persistenceOf(servers)) === 'LOST');
    await until('no persist is pending', () => servers.workers[0]!.persistQueue.pendingCount === 0);
    assert.ok(logs.some((l) => l.includes('dropping the persist of file')), logs.join('\n'));
  } finally {
    await servers.stop();
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
