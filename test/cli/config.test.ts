import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, envName, defaultConfig } from '../../cli/config.js';
import { DEFAULT_MASTER_RPC_PORT, MIB } from '../../core/constants.js';
import { configError } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-config-'));

test('envName turns camelCase keys into TESSERA_ variables', () => {
  assert.is(envName('masterAddress'), 'TESSERA_MASTER_ADDRESS');
  assert.is(envName('blockSizeBytes'), 'TESSERA_BLOCK_SIZE_BYTES');
});

test('with no file and no variables the defaults of core/constants.ts apply', () => {
  const { config, sources } = loadConfig({ cwd: dir, env: {} });
  assert.is(config.masterRpcPort, DEFAULT_MASTER_RPC_PORT);
  assert.is(config.masterAddress, defaultConfig().masterAddress);
  assert.is(config.dataDir, join(dir, 'tessera-data'));
  assert.is(config.journalDir, join(dir, 'tessera-data', 'journal'));
  assert.is(sources.masterRpcPort, 'default');
});

test('tessera.json overrides defaults and TESSERA_* variables override the file', () => {
  writeFileSync(join(dir, 'tessera.json'), JSON.stringify({ blockSizeBytes: '8MiB', masterRpcPort: 1234, writeType: 'cache_through' }));
  const { config, sources } = loadConfig({ cwd: dir, env: { TESSERA_MASTER_RPC_PORT: '4321' } });
  assert.is(config.blockSizeBytes, 8 * MIB);
  assert.is(config.writeType, 'CACHE_THROUGH');
  assert.is(config.masterRpcPort, 4321);
  assert.is(sources.masterRpcPort, 'TESSERA_MASTER_RPC_PORT');
  assert.is(sources.blockSizeBytes, join(dir, 'tessera.json'));
  rmSync(join(dir, 'tessera.json'));
});

test('flags override the environment', () => {
  const { config } = loadConfig({ cwd: dir, env: { TESSERA_MASTER_ADDRESS: 'tcp://10.0.0.1:1' }, flags: { masterAddress: 'tcp://10.0.0.2:2' } });
  assert.is(config.masterAddress, 'tcp://10.0.0.2:2');
});

test('a bad value is a TESSERA_ERR_CONFIG naming the key and its source', () => {
  configError(() => loadConfig({ cwd: dir, env: { TESSERA_MASTER_RPC_PORT: 'x' } }), ['masterRpcPort', 'TESSERA_MASTER_RPC_PORT', 'port']);
  configError(() => loadConfig({ cwd: dir, env: { TESSERA_BLOCK_SIZE_BYTES: '1b' } }), ['blockSizeBytes', 'at least']);
  configError(() => loadConfig({ cwd: dir, env: { TESSERA_MASTER_ADDRESS: 'localhost:19998' } }), ['masterAddress', 'tcp://']);
  configError(() => loadConfig({ cwd: dir, env: { TESSERA_READ_TYPE: 'FAST' } }), ['readType', 'CACHE_PROMOTE']);
});

test('workerShortCircuitEngine is on by default, and true/false in tessera.json or the environment turn it', () => {
  assert.is(loadConfig({ cwd: dir, env: {} }).config.workerShortCircuitEngine, true);
  const f = join(dir, 'sc.json');
  writeFileSync(f, JSON.stringify({ workerShortCircuitEngine: false }));
  assert.is(loadConfig({ cwd: dir, file: f, env: {} }).config.workerShortCircuitEngine, false);
  const fromEnv = loadConfig({ cwd: dir, file: f, env: { TESSERA_WORKER_SHORT_CIRCUIT_ENGINE: 'true' } });
  assert.is(fromEnv.config.workerShortCircuitEngine, true);
  assert.is(fromEnv.sources.workerShortCircuitEngine, 'TESSERA_WORKER_SHORT_CIRCUIT_ENGINE');
  assert.is(loadConfig({ cwd: dir, env: { TESSERA_WORKER_SHORT_CIRCUIT_ENGINE: '0' } }).config.workerShortCircuitEngine, false);
  configError(() => loadConfig({ cwd: dir, env: { TESSERA_WORKER_SHORT_CIRCUIT_ENGINE: 'yes' } }), ['workerShortCircuitEngine', 'TESSERA_WORKER_SHORT_CIRCUIT_ENGINE', 'true or false']);
  writeFileSync(f, JSON.stringify({ workerShortCircuitEngine: 'no' }));
  configError(() => loadConfig({ cwd: dir, file: f, env: {} }), ['workerShortCircuitEngine', f, 'true or false']);
});

test('an unknown key or broken JSON in tessera.json is refused with the file named', () => {
  const f = join(dir, 'bad.json');
  writeFileSync(f, JSON.stringify({ masterPort: 1 }));
  configError(() => loadConfig({ cwd: dir, file: f, env: {} }), ['masterPort', 'unknown key', f]);
  writeFileSync(f, '{ not json');
  configError(() => loadConfig({ cwd: dir, file: f, env: {} }), ['not valid JSON', f]);
  configError(() => loadConfig({ cwd: dir, file: join(dir, 'missing.json'), env: {} }), ['does not exist']);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
