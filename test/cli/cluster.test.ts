// The two-process cluster of the README: `tessera master` and `tessera worker` as separate
// processes over TCP (ports chosen at run time), used by `tessera fs` and `tessera report`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'tessera.js');
const cwd = mkdtempSync(join(tmpdir(), 'tessera-cli-cluster-'));
const servers: ChildProcess[] = [];

/** Starts a long-running `tessera` command and resolves with its output lines up to `ready`. */
function serve(args: string[], env: Record<string, string> = {}): Promise<{ proc: ChildProcess; lines: string[] }> {
  const proc = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(proc);
  let err = '';
  proc.stderr!.on('data', (d) => { err += d; });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tessera ${args[0]} did not start: ${err}`)), 60_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('ready')) { clearTimeout(timer); resolve({ proc, lines }); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tessera ${args[0]} exited ${code}: ${err}`)); });
  });
}

function tessera(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test.after(async () => {
  for (const p of servers) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(cwd, { recursive: true, force: true });
});

test('tessera master and tessera worker in two processes serve tessera fs, and stop on SIGTERM', async () => {
  const m = await serve(['master', '--data-dir', join(cwd, 'm'), '--master-rpc-port', '0', '--master-web-port', '0']);
  const master = /^master\s+rpc\s+(\S+)/.exec(m.lines.find((l) => l.startsWith('master'))!)![1]!;
  const w = await serve(['worker', '--data-dir', join(cwd, 'w'), '--worker-rpc-port', '0', '--worker-web-port', '0', '--worker-mem-bytes', '64MiB'],
    { TESSERA_MASTER_ADDRESS: master });
  assert.ok(w.lines.some((l) => l.includes(master)), 'the worker names the master it registers with');
  const env = { TESSERA_MASTER_ADDRESS: master };
  let report: { liveWorkers: number; capacityBytes: number } | undefined;
  for (let i = 0; i < 100; i++) {
    const r = await tessera(['--json', 'report'], env);
    assert.is(r.code, 0, r.stderr);
    report = JSON.parse(r.stdout) as { liveWorkers: number; capacityBytes: number };
    if (report.liveWorkers === 1) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal([report!.liveWorkers, report!.capacityBytes], [1, 64 * 1024 * 1024]);
  const f = join(cwd, 'hello.txt');
  writeFileSync(f, 'two processes\n');
  assert.is((await tessera(['fs', 'copyFromLocal', f, '/hello.txt'], env)).code, 0);
  const cat = await tessera(['fs', 'cat', '/hello.txt'], env);
  assert.is(cat.stdout, 'two processes\n');
  for (const s of [w.proc, m.proc]) {
    const exited = new Promise<number | null>((r) => s.once('exit', (code) => r(code)));
    s.kill('SIGTERM');
    assert.is(await exited, 0);
  }
});

test.run();
