/**
 * `tessera master` as a supervisor sees it: the journal is formatted on first start only
 * (missing or empty directory, and it says so), a non-empty directory without a journal is
 * refused naming `tessera format`, and a journal that fails makes the process stop serving
 * and exit 1 (TESSERA_JOURNAL_FAILPOINT=fsync-eio makes an fdatasync fail with EIO).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { RpcClient } from '../../transports/index.js';
import { MasterService } from '../../transports/protocol/master.js';
import { isTesseraError } from '../../core/errors.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'tessera.js');
const cwd = mkdtempSync(join(tmpdir(), 'tessera-cli-master-'));

interface Master { child: ChildProcess; lines: string[]; stderr: () => string; exited: Promise<number | null> }

function master(dataDir: string, env: Record<string, string> = {}): Master {
  const child = spawn(process.execPath, [bin, 'master', '--data-dir', dataDir, '--master-rpc-port', '0', '--master-web-port', '0'],
    { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  const exited = new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`tessera master still runs after 30 s: ${err}`)); }, 30_000);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
  exited.catch(() => undefined); // awaited by the test that expects an exit
  return { child, lines, stderr: () => err, exited };
}

/** Waits for the `ready` line; returns the RPC address. */
async function ready(m: Master): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (!m.lines.some((l) => l.startsWith('ready'))) {
    if (m.child.exitCode !== null) throw new Error(`tessera master exited ${m.child.exitCode}: ${m.stderr()}`);
    if (Date.now() > deadline) throw new Error(`tessera master did not start: ${m.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const addr = m.lines.map((l) => /^master\s+rpc\s+(\S+)/.exec(l)?.[1]).find((a) => a !== undefined);
  assert.ok(addr, m.lines.join('\n'));
  return addr!;
}

test.after(() => rmSync(cwd, { recursive: true, force: true }));

test('the first start formats a missing journal and says so; a later start keeps it and a failed fdatasync exits 1', async () => {
  const data = join(cwd, 'data');
  const first = master(data);
  await ready(first);
  assert.ok(first.lines.some((l) => l.startsWith('journal') && l.includes('formatted on first start')), first.lines.join('\n'));
  first.child.kill('SIGTERM');
  assert.is(await first.exited, 0, first.stderr());

  const second = master(data, { TESSERA_JOURNAL_FAILPOINT: 'fsync-eio:1' });
  const client = await RpcClient.connect(await ready(second));
  try {
    assert.ok(!second.lines.some((l) => l.includes('formatted')), 'an existing journal is not formatted again');
    const svc = client.service(MasterService);
    await svc.mkdir({ path: '/x' }).then(() => assert.unreachable('the fdatasync fails'),
      (e: unknown) => assert.ok(isTesseraError(e, 'TESSERA_ERR_JOURNAL_FAILED'), String(e)));
    assert.is(await second.exited, 1, 'the master exits 1 so that a supervisor restarts it');
    assert.match(second.stderr(), 'TESSERA_ERR_JOURNAL_FAILED');
    assert.match(second.stderr(), /EIO/);
    assert.match(second.stderr(), /restart it to replay the journal/);
  } finally {
    await client.close();
  }

  const third = master(data); // the restart replays and serves again
  await ready(third);
  third.child.kill('SIGTERM');
  assert.is(await third.exited, 0, third.stderr());
});

test('a non-empty journal directory that holds no journal is refused with JOURNAL_NOT_FORMATTED, naming tessera format', async () => {
  const data = join(cwd, 'junk');
  mkdirSync(join(data, 'journal'), { recursive: true });
  writeFileSync(join(data, 'journal', 'notes.txt'), 'not a journal');
  const m = master(data);
  assert.is(await m.exited, 1, m.stderr());
  assert.match(m.stderr(), 'TESSERA_ERR_JOURNAL_NOT_FORMATTED');
  assert.match(m.stderr(), /tessera format --journal-dir \S+ --force/);
  assert.match(m.stderr(), /notes\.txt/);
});

test.run();
