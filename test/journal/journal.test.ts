/**
 * The journal's behaviours one by one: format and version checks, append (apply first,
 * acknowledge after fdatasync, group commit), failure handling, rolls, checkpoints, close.
 * Most run on the real file system in a temp dir; the ones that count fsyncs or inject
 * faults use SimFs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile, readdir, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, isTesseraError } from '../../core/errors.js';
import { Journal, SimFs, formatJournal, type FsOpenMode, type JournaledStateMachine } from '../../core/journal/index.js';
import { KvMachine, KV_PUT, encodeKv, kvView } from './kv-machine.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tessera-journal-'));
  dirs.push(d);
  return join(d, 'journal');
}
const put = (key: string, ...bytes: number[]) => encodeKv({ kind: 'put', key, value: new Uint8Array(bytes) });

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(isTesseraError(err), `expected a TesseraError, got ${String(err)}`);
    assert.is((err as { code: string }).code, code, (err as Error).message);
    return err as Error;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

test('open refuses a directory that was never formatted, and one without a VERSION file', async () => {
  const dir = await tempDir();
  await rejectsWith(Journal.open(dir, [new KvMachine()]), ErrorCode.JOURNAL_NOT_FORMATTED);
  await mkdir(dir);
  const err = await rejectsWith(Journal.open(dir, [new KvMachine()]), ErrorCode.JOURNAL_NOT_FORMATTED);
  assert.match(err.message, /tessera format/);
});

test('open refuses a journal whose version it does not know', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  await writeFile(join(dir, 'VERSION'), 'tessera-journal 2\n');
  const err = await rejectsWith(Journal.open(dir, [new KvMachine()]), ErrorCode.JOURNAL_VERSION);
  assert.match(err.message, /tessera-journal 2/);
  await writeFile(join(dir, 'VERSION'), 'something else');
  await rejectsWith(Journal.open(dir, [new KvMachine()]), ErrorCode.JOURNAL_VERSION);
});

test('format refuses a non-empty directory unless forced, and force erases it', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const j = await Journal.open(dir, [new KvMachine()]);
  await j.append('kv', put('a', 1).type, put('a', 1).payload);
  await j.close();
  await rejectsWith(Journal.format(dir), ErrorCode.INVALID_ARGUMENT);
  await Journal.format(dir, { force: true });
  const kv = new KvMachine();
  const j2 = await Journal.open(dir, [kv]);
  assert.is(j2.lastSequence('kv'), 0);
  assert.is(kv.map.size, 0);
  await j2.close();
});

test('open refuses a component directory that no state machine claims', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  await (await Journal.open(dir, [new KvMachine('kv'), new KvMachine('other')])).close();
  const err = await rejectsWith(Journal.open(dir, [new KvMachine('kv')]), ErrorCode.INVALID_ARGUMENT);
  assert.match(err.message, /other/);
});

test('append applies synchronously, resolves with consecutive sequence numbers, and replays after close', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const kv = new KvMachine();
  const j = await Journal.open(dir, [kv]);
  const { type, payload } = put('a', 7);
  const p = j.append('kv', type, payload);
  assert.equal(kvView(kv.map), [['a', '07']], 'applied before the promise settles');
  const seqs = await Promise.all([p, j.append('kv', put('b', 8).type, put('b', 8).payload)]);
  assert.equal(seqs, [1, 2]);
  await j.close();
  const kv2 = new KvMachine();
  const j2 = await Journal.open(dir, [kv2]);
  assert.equal(kvView(kv2.map), [['a', '07'], ['b', '08']]);
  assert.is(j2.lastSequence('kv'), 2);
  await j2.close();
});

test('append rethrows the machine error synchronously and writes nothing', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const kv = new KvMachine();
  const j = await Journal.open(dir, [kv]);
  const del = encodeKv({ kind: 'delete', key: 'missing' });
  assert.throws(() => j.append('kv', del.type, del.payload), /no key missing/);
  assert.is(j.lastSequence('kv'), 0);
  assert.is(await j.append('kv', put('a').type, put('a').payload), 1, 'the next entry takes sequence 1');
  await j.close();
  const j2 = await Journal.open(dir, [new KvMachine()]);
  assert.is(j2.lastSequence('kv'), 1);
  await j2.close();
});

test('append validates its arguments and names what is wrong', async () => {
  const fs = new SimFs();
  await Journal.format('/j', { fs });
  const j = await Journal.open('/j', [new KvMachine()], { fs });
  assert.throws(() => j.append('nope', 1, new Uint8Array()), (e: Error) => isTesseraError(e, ErrorCode.INVALID_ARGUMENT) && /nope/.test(e.message));
  assert.throws(() => j.append('kv', -1, new Uint8Array()), (e: Error) => isTesseraError(e, ErrorCode.INVALID_ARGUMENT) && /type/.test(e.message));
  assert.throws(() => j.append('kv', KV_PUT, new Uint8Array(1024 * 1024 + 1)), (e: Error) => isTesseraError(e, ErrorCode.LIMIT_EXCEEDED));
  await j.close();
});

test('concurrent appends share writes and fdatasyncs (group commit), and none resolves before its fdatasync', async () => {
  const fs = new SimFs();
  await Journal.format('/j', { fs });
  const j = await Journal.open('/j', [new KvMachine()], { fs });
  const before = fs.calls.datasync;
  let durableWhenResolved = true;
  const all = [];
  for (let i = 0; i < 200; i++) {
    const { type, payload } = put(`k${i}`, i & 0xff);
    all.push(j.append('kv', type, payload).then((seq) => {
      if (j.durableSequence('kv') < seq) durableWhenResolved = false;
      return seq;
    }));
  }
  const seqs = await Promise.all(all);
  assert.equal(seqs, Array.from({ length: 200 }, (_, i) => i + 1));
  assert.ok(durableWhenResolved, 'every append resolved after its batch was fdatasynced');
  const syncs = fs.calls.datasync - before;
  assert.ok(syncs >= 1 && syncs <= 2, `200 concurrent appends took ${syncs} fdatasyncs`);
  await j.close();
});

test('a failed fdatasync fails the journal: pending appends reject, later ones throw JOURNAL_FAILED', async () => {
  const fs = new SimFs();
  await Journal.format('/j', { fs });
  const kv = new KvMachine();
  const j = await Journal.open('/j', [kv], { fs });
  await j.append('kv', put('a').type, put('a').payload);
  fs.failNext('datasync');
  const pending = [j.append('kv', put('b').type, put('b').payload), j.append('kv', put('c').type, put('c').payload)];
  for (const p of pending) await rejectsWith(p, ErrorCode.JOURNAL_FAILED);
  assert.ok(j.failure);
  assert.match(j.failure!.message, /EIO/);
  assert.throws(() => j.append('kv', put('d').type, put('d').payload), (e: Error) => isTesseraError(e, ErrorCode.JOURNAL_FAILED));
  await rejectsWith(j.checkpoint(), ErrorCode.JOURNAL_FAILED);
  await j.close();
  await j.close(); // idempotent
});

test('onFailure tells the owner once, before any unacknowledged append rejects; a late listener is told too', async () => {
  const fs = new SimFs();
  await Journal.format('/j', { fs });
  const j = await Journal.open('/j', [new KvMachine()], { fs });
  const events: string[] = [];
  j.onFailure((e) => events.push(`listener ${e.code}`));
  fs.failNext('datasync');
  const pending = j.append('kv', put('a').type, put('a').payload).catch((e: { code: string }) => events.push(`append ${e.code}`));
  await pending;
  assert.equal(events, ['listener TESSERA_ERR_JOURNAL_FAILED', 'append TESSERA_ERR_JOURNAL_FAILED']);
  const late = await new Promise<Error>((resolve) => j.onFailure(resolve));
  assert.is(late, j.failure);
  assert.is(events.length, 2, 'told once');
  await j.close();
});

test('a failed write fails the journal too', async () => {
  const fs = new SimFs();
  await Journal.format('/j', { fs });
  const j = await Journal.open('/j', [new KvMachine()], { fs });
  fs.failNext('write');
  await rejectsWith(j.append('kv', put('a').type, put('a').payload), ErrorCode.JOURNAL_FAILED);
  await j.close();
});

test('the current log rolls into completed/ at logRollBytes and replay reads the logs in order', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const kv = new KvMachine();
  const j = await Journal.open(dir, [kv], { logRollBytes: 256 });
  for (let i = 0; i < 60; i++) await j.append('kv', put(`k${i % 7}`, i).type, put(`k${i % 7}`, i).payload);
  await j.close();
  const completed = await readdir(join(dir, 'kv', 'completed'));
  assert.ok(completed.length >= 5, `${completed.length} completed logs`);
  assert.match(completed[0]!, /^0000000000000001-\d{16}\.log$/);
  const kv2 = new KvMachine();
  const j2 = await Journal.open(dir, [kv2], { logRollBytes: 256 });
  assert.equal(kvView(kv2.map), kvView(kv.map));
  assert.is(j2.lastSequence('kv'), 60);
  await j2.close();
});

test('a checkpoint taken while appends continue covers exactly its snapshot and removes the logs it covers', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const kv = new KvMachine('kv', 3);
  const j = await Journal.open(dir, [kv], { logRollBytes: 300 });
  for (let i = 0; i < 40; i++) await j.append('kv', put(`k${i}`, i).type, put(`k${i}`, i).payload);
  const more = [];
  const cp = j.checkpoint('kv');
  for (let i = 40; i < 80; i++) more.push(j.append('kv', put(`k${i}`, i).type, put(`k${i}`, i).payload));
  await Promise.all([cp, ...more]);
  assert.is(j.checkpointSequence('kv'), 40);
  const completed = await readdir(join(dir, 'kv', 'completed'));
  for (const name of completed) assert.ok(Number(name.slice(17, 33)) > 40, `${name} is not covered by the checkpoint`);
  await j.close();
  const kv2 = new KvMachine();
  const j2 = await Journal.open(dir, [kv2], { logRollBytes: 300 });
  assert.is(j2.checkpointSequence('kv'), 40);
  assert.is(kv2.map.size, 80);
  assert.equal(kvView(kv2.map), kvView(kv.map));
  await j2.close();
});

test('a failed checkpoint is not fatal: appends go on and the logs it would have covered stay', async () => {
  class CheckpointFaultFs extends SimFs {
    failCheckpoint = true;
    override async open(path: string, mode: FsOpenMode) {
      if (this.failCheckpoint && path.endsWith('checkpoint.tmp')) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
      return super.open(path, mode);
    }
  }
  const fs = new CheckpointFaultFs();
  await Journal.format('/j', { fs });
  const kv = new KvMachine();
  const j = await Journal.open('/j', [kv], { fs });
  for (let i = 0; i < 5; i++) await j.append('kv', put(`k${i}`).type, put(`k${i}`).payload);
  await j.checkpoint('kv').then(() => assert.unreachable('the checkpoint should fail'), (err: Error) => assert.match(err.message, /EIO/));
  assert.is(j.failure, undefined);
  assert.is(await j.append('kv', put('after').type, put('after').payload), 6);
  fs.failCheckpoint = false;
  await j.close();
  const kv2 = new KvMachine();
  const j2 = await Journal.open('/j', [kv2], { fs });
  assert.is(j2.checkpointSequence('kv'), 0);
  assert.equal(kvView(kv2.map), kvView(kv.map));
  await j2.checkpoint('kv');
  assert.is(j2.checkpointSequence('kv'), 6);
  assert.equal(await fs.readdir('/j/kv/completed'), [], 'the covered logs are removed once a checkpoint succeeds');
  await j2.close();
});

test('a snapshot chunk above 4 MiB is written as several frames and loads back as the same bytes', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const big = Uint8Array.from({ length: 10 * 1024 * 1024 + 3 }, (_, i) => (i * 131) & 0xff);
  const loaded: Uint8Array[] = [];
  const machine = (): JournaledStateMachine => ({
    name: 'blob',
    apply() { /* the state is the snapshot */ },
    reset() { loaded.length = 0; },
    snapshot: () => [big, new Uint8Array(0), Uint8Array.of(1, 2)],
    async loadCheckpoint(chunks) { for await (const c of chunks) loaded.push(c); },
  });
  const j = await Journal.open(dir, [machine()]);
  await j.append('blob', 1, new Uint8Array(1));
  await j.checkpoint();
  await j.close();
  const j2 = await Journal.open(dir, [machine()]);
  assert.equal(loaded.map((c) => c.length), [4 * 1024 * 1024, 4 * 1024 * 1024, 2 * 1024 * 1024 + 3, 2]);
  assert.ok(Buffer.concat(loaded.slice(0, 3)).equals(big));
  await j2.close();
});

test('a checkpoint never holds an entry that is not yet durable', async () => {
  const fs = new SimFs();
  await Journal.format('/j', { fs });
  const kv = new KvMachine();
  const j = await Journal.open('/j', [kv], { fs });
  const appended = j.append('kv', put('a').type, put('a').payload);
  const cp = j.checkpoint('kv');
  let ackedFirst = false;
  void appended.then(() => { ackedFirst = true; });
  await cp;
  assert.ok(ackedFirst, 'the entry was acknowledged before the checkpoint finished');
  await j.close();
});

test('a component with several machines keeps separate sequences per component', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const a = new KvMachine('a');
  const b = new KvMachine('b');
  const j = await Journal.open(dir, [a, b]);
  assert.is(await j.append('a', put('x').type, put('x').payload), 1);
  assert.is(await j.append('b', put('y').type, put('y').payload), 1);
  assert.is(await j.append('a', put('z').type, put('z').payload), 2);
  await j.checkpoint();
  await j.close();
  const a2 = new KvMachine('a');
  const b2 = new KvMachine('b');
  const j2 = await Journal.open(dir, [a2, b2]);
  assert.equal([...a2.map.keys()].sort(), ['x', 'z']);
  assert.equal([...b2.map.keys()], ['y']);
  await j2.close();
});

test('close waits for queued appends, then append and checkpoint report JOURNAL_CLOSED', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const j = await Journal.open(dir, [new KvMachine()]);
  const p = j.append('kv', put('a').type, put('a').payload);
  await j.close();
  assert.is(await p, 1);
  assert.throws(() => j.append('kv', put('b').type, put('b').payload), (e: Error) => isTesseraError(e, ErrorCode.JOURNAL_CLOSED));
  await rejectsWith(j.checkpoint(), ErrorCode.JOURNAL_CLOSED);
});

test('formatJournal lists the checkpoint, logs and entries; dump.js prints the same', async () => {
  const dir = await tempDir();
  await Journal.format(dir);
  const j = await Journal.open(dir, [new KvMachine()], { logRollBytes: 128 });
  for (let i = 0; i < 5; i++) await j.append('kv', put(`k${i}`, 0xab).type, put(`k${i}`, 0xab).payload);
  await j.checkpoint('kv');
  await j.append('kv', put('last', 0xcd).type, put('last', 0xcd).payload);
  await j.close();
  const lines = await formatJournal(dir, { typeNames: { kv: { [KV_PUT]: 'PUT' } } });
  const text = lines.join('\n');
  assert.match(text, /version "tessera-journal 1\\n"/);
  assert.match(text, /component kv/);
  assert.match(text, /checkpoint: covers sequences 1\.\.5/);
  assert.match(text, /seq 6 {2}type 1 PUT {2}7 B {2}04006c617374cd/);
  const { spawnSync } = await import('node:child_process');
  const dumpJs = new URL('../../core/journal/dump.js', import.meta.url);
  const r = spawnSync(process.execPath, [dumpJs.pathname, dir], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.ok(r.stdout.includes('seq 6  type 1  7 B'), r.stdout);
});

test.after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test.run();
