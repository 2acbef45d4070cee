// The `tessera` command driven as a subprocess, without a cluster: help, usage errors, bad
// configuration and an unreachable master each give the documented exit code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'tessera.js');
const cwd = mkdtempSync(join(tmpdir(), 'tessera-cli-usage-'));

function tessera(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, TESSERA_NO_PROGRESS: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('--help lists every command and exits 0', async () => {
  const r = await tessera(['--help']);
  assert.is(r.code, 0);
  for (const c of ['format', 'master', 'worker', 'local', 'report', 'doctor', 'fs']) assert.match(r.stdout, c);
});

test('fs --help lists the everyday commands', async () => {
  const r = await tessera(['fs', '--help']);
  assert.is(r.code, 0);
  for (const c of ['ls', 'mkdir', 'cat', 'head', 'tail', 'touch', 'rm', 'mv', 'stat', 'du', 'count', 'copyFromLocal',
    'copyToLocal', 'mount', 'unmount', 'pin', 'unpin', 'setTtl', 'unsetTtl', 'free', 'load', 'persist', 'location', 'checksum', 'test']) {
    assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  }
});

test('an unknown command or option is a usage error with exit code 2', async () => {
  assert.is((await tessera(['frobnicate'])).code, 2);
  assert.is((await tessera(['fs', 'ls', '--bogus'])).code, 2);
  assert.is((await tessera(['fs', 'mv', '/only-one'])).code, 2);
});

test('a bad TESSERA_* value exits 2 naming the variable', async () => {
  const r = await tessera(['fs', 'ls', '/'], { TESSERA_MASTER_ADDRESS: 'nonsense' });
  assert.is(r.code, 2);
  assert.match(r.stderr, 'TESSERA_ERR_CONFIG');
  assert.match(r.stderr, 'TESSERA_MASTER_ADDRESS');
});

test('an unreachable master exits 1 with a stable error code, as JSON with --json', async () => {
  const r = await tessera(['fs', 'ls', '/', '--master', 'tcp://127.0.0.1:1']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /TESSERA_ERR_[A-Z_]+/);
  const j = await tessera(['--json', 'fs', 'ls', '/', '--master', 'tcp://127.0.0.1:1']);
  assert.is(j.code, 1);
  const body = JSON.parse(j.stderr.trim().split('\n').pop()!) as { error: { code: string } };
  assert.match(body.error.code, /^TESSERA_ERR_/);
});

test('fs test exits 2, not 1 (false), when the master cannot be reached', async () => {
  const r = await tessera(['fs', 'test', '-e', '/x', '--master', 'tcp://127.0.0.1:1']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /TESSERA_ERR_[A-Z_]+/);
});

test('doctor prints which native path is in use and exits 0', async () => {
  const r = await tessera(['doctor']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, 'native module');
});

test('format creates a journal, and refuses an existing one without --force', async () => {
  const j = join(cwd, 'j');
  const a = await tessera(['format', '--journal-dir', j]);
  assert.is(a.code, 0, a.stderr);
  const b = await tessera(['format', '--journal-dir', j]);
  assert.is(b.code, 1);
  assert.match(b.stderr, 'TESSERA_ERR_');
  const c = await tessera(['format', '--journal-dir', j, '--force']);
  assert.is(c.code, 0, c.stderr);
  const d = await tessera(['journal', 'dump', j]);
  assert.is(d.code, 0, d.stderr);
  assert.match(d.stdout, 'journal');
});

test.after(() => rmSync(cwd, { recursive: true, force: true }));
test.run();
