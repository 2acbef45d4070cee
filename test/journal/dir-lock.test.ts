import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../../core/journal/index.js';
import { ErrorCode, isTesseraError } from '../../core/errors.js';
import { KvMachine, encodeKv } from './kv-machine.js';

const temps: string[] = [];
async function freshJournal(): Promise<string> {
  const temp = mkdtempSync(join(tmpdir(), 'tessera-lock-'));
  temps.push(temp);
  const dir = join(temp, 'journal');
  await Journal.format(dir);
  return dir;
}
test.after(() => { for (const t of temps) rmSync(t, { recursive: true, force: true }); });

async function rejectsWith(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(isTesseraError(err), `expected a TesseraError, got ${String(err)}`);
    assert.is((err as { code: string }).code, code, (err as Error).message);
    return err as Error;
  }
  throw new Error(`expected a rejection with ${code}`);
}

test('a journal open in this process refuses a second open, and opens again after close', async () => {
  const dir = await freshJournal();
  const first = await Journal.open(dir, [new KvMachine('kv')]);
  const { type, payload } = encodeKv({ kind: 'put', key: 'a', value: new Uint8Array([1]) });
  await first.append('kv', type, payload);
  const err = await rejectsWith(Journal.open(dir, [new KvMachine('kv')]), ErrorCode.JOURNAL_LOCKED);
  assert.match(err.message, `in use by process ${process.pid}`);
  await first.close();
  assert.not.ok(existsSync(join(dir, 'LOCK')), 'close removes the lock file');
  const machine = new KvMachine('kv');
  const second = await Journal.open(dir, [machine]);
  assert.equal([...machine.map.keys()], ['a'], 'the entry acknowledged before the refused open replays');
  await second.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a lock left by a process that is gone is taken over', async () => {
  const dir = await freshJournal();
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  assert.ok(deadPid > 0);
  writeFileSync(join(dir, 'LOCK'), `${deadPid} 12345\n`);
  const journal = await Journal.open(dir, [new KvMachine('kv')]);
  await journal.close();
  writeFileSync(join(dir, 'LOCK'), ''); // torn: its writer died mid-write
  const again = await Journal.open(dir, [new KvMachine('kv')]);
  await again.close();
  rmSync(dir, { recursive: true, force: true });
});

test('another live process holding the journal refuses open and format --force, until it is killed', async () => {
  const dir = await freshJournal();
  const journalModule = new URL('../../core/journal/index.js', import.meta.url).href;
  const kvModule = new URL('./kv-machine.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { Journal } = await import(${JSON.stringify(journalModule)});
    const { KvMachine } = await import(${JSON.stringify(kvModule)});
    await Journal.open(${JSON.stringify(dir)}, [new KvMachine('kv')]);
    process.stdout.write('open\\n');
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('open')) resolve(); });
      child.once('exit', (code) => reject(new Error(`child exited ${code} before opening`)));
    });
    const err = await rejectsWith(Journal.open(dir, [new KvMachine('kv')]), ErrorCode.JOURNAL_LOCKED);
    assert.match(err.message, `process ${child.pid}`);
    await rejectsWith(Journal.format(dir, { force: true }), ErrorCode.JOURNAL_LOCKED);
    assert.ok(existsSync(join(dir, 'VERSION')), 'format refused before erasing anything');
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  const journal = await Journal.open(dir, [new KvMachine('kv')]);
  await journal.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
