/**
 * The corruption matrix: every way we damage a journal must end in one of two outcomes.
 * (1) Cut cleanly: the damage is at the tail of the current log, replay stops at the last good
 *     entry, the state equals the model at that sequence and the cut bytes are in a .broken file.
 * (2) Refused: open throws TESSERA_ERR_JOURNAL_CORRUPT naming the file and the byte offset.
 * Never (3): a start with some other state. The full byte-by-byte matrix runs on SimFs (the
 * same Fs interface, in memory, so thousands of opens stay fast); the torn-tail cases also run
 * on the real file system.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cp, mkdtemp, readFile, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../../core/crc32c.js';
import { ErrorCode, TesseraError, isTesseraError } from '../../core/errors.js';
import { Journal, SimFs, type CheckpointReader, type Fs } from '../../core/journal/index.js';
import { LOG_HEADER_BYTES, decodeEntryAt } from '../../core/journal/format.js';
import { KvMachine, applyKv, encodeKv, kvView, type KvCommand } from './kv-machine.js';

const ROLL_BYTES = 1500;
const CHECKPOINT_AT = 12;
const TOTAL = 130;

interface Base {
  fs: SimFs;
  states: Map<string, Uint8Array>[];
  files: { checkpoint: string; completed: string[]; current: string };
  /** Start offsets of the entries of the current log, where they end, and its first sequence. */
  currentEntries: number[];
  currentEnd: number;
  currentFirst: number;
}

function command(i: number): KvCommand {
  return { kind: 'put', key: `key${i % 17}`, value: new Uint8Array(Array.from({ length: (i * 7) % 40 }, (_, k) => (i + k) & 0xff)) };
}

async function buildBase(): Promise<Base> {
  const fs = new SimFs();
  await Journal.format('/j', { fs });
  const kv = new KvMachine('kv', 4);
  const journal = await Journal.open('/j', [kv], { fs, logRollBytes: ROLL_BYTES });
  const model = new Map<string, Uint8Array>();
  const states = [new Map(model)];
  for (let i = 1; i <= TOTAL; i++) {
    const cmd = command(i);
    const { type, payload } = encodeKv(cmd);
    await journal.append('kv', type, payload);
    applyKv(model, cmd);
    states.push(new Map(model));
    if (i === CHECKPOINT_AT) await journal.checkpoint('kv');
  }
  await journal.close();
  const completed = (await fs.readdir('/j/kv/completed')).map((n) => `/j/kv/completed/${n}`);
  const bytes = await fs.readFile('/j/kv/current.log');
  const currentEntries: number[] = [];
  let currentEnd = LOG_HEADER_BYTES;
  for (;;) {
    const e = decodeEntryAt(bytes, currentEnd, 1 << 20);
    if (!e.ok) break;
    currentEntries.push(currentEnd);
    currentEnd += e.frameBytes;
  }
  assert.ok(bytes.subarray(currentEnd).every((b) => b === 0), 'the current log ends in preallocated zeros');
  const currentFirst = TOTAL - currentEntries.length + 1;
  return { fs, states, files: { checkpoint: '/j/kv/checkpoint', completed, current: '/j/kv/current.log' }, currentEntries, currentEnd, currentFirst };
}

/** 'cut' is a clean start at `replayed`; `brokenFiles` says whether bytes were cut and saved. */
type Outcome = { kind: 'cut'; replayed: number; brokenFiles: number } | { kind: 'whole' } | { kind: 'refused'; message: string };

/** Opens a damaged copy and classifies the outcome, failing on anything but (1) or (2). */
async function attempt(base: Base, label: string, damage: (fs: SimFs) => Promise<void>): Promise<Outcome> {
  const fs = base.fs.clone();
  await damage(fs);
  const kv = new KvMachine();
  let journal: Journal;
  try {
    journal = await Journal.open('/j', [kv], { fs, logRollBytes: ROLL_BYTES });
  } catch (err) {
    if (!isTesseraError(err, ErrorCode.JOURNAL_CORRUPT)) throw new Error(`${label}: open threw something other than JOURNAL_CORRUPT: ${String(err)}`);
    if (!/Journal is corrupt: \/j\/kv\/\S+ at offset \d+: /.test(err.message)) throw new Error(`${label}: refusal does not name file and offset: ${err.message}`);
    return { kind: 'refused', message: err.message };
  }
  const replayed = journal.lastSequence('kv');
  const expected = base.states[replayed];
  if (expected === undefined) throw new Error(`${label}: replayed ${replayed}, more than was ever written`);
  assert.equal(kvView(kv.map), kvView(expected), `${label}: state after replay equals the model at ${replayed}`);
  await journal.close();
  if (replayed === TOTAL && journal.recoveries.length === 0) return { kind: 'whole' };
  if (journal.recoveries.length > 1) throw new Error(`${label}: ${journal.recoveries.length} cuts reported for one damaged log`);
  const broken = (await fs.readdir('/j/kv')).filter((n) => n.endsWith('.broken'));
  assert.is(broken.length, journal.recoveries.length, `${label}: each cut is saved in a .broken file`);
  return { kind: 'cut', replayed, brokenFiles: broken.length };
}

async function rewrite(fs: Fs, path: string, edit: (bytes: Uint8Array) => Uint8Array): Promise<void> {
  const next = edit((await fs.readFile(path)).slice());
  const file = await fs.open(path, 'truncate');
  await file.write(next, 0);
  await file.datasync();
  await file.close();
}

const flipBit = (at: number) => (b: Uint8Array) => { b[at]! ^= 1 << (at % 8); return b; };
const cutAt = (at: number) => (b: Uint8Array) => b.slice(0, at);

let base: Base;
test.before(async () => { base = await buildBase(); });

test('the base journal has a checkpoint, several completed logs and a current log, and replays whole', async () => {
  assert.ok(base.files.completed.length >= 3, `${base.files.completed.length} completed logs`);
  assert.ok(base.currentEntries.length >= 3);
  assert.ok((await base.fs.readFile(base.files.current)).length > base.currentEnd, 'the current log has preallocated space');
  assert.equal(await attempt(base, 'intact', async () => undefined), { kind: 'whole' });
});

test('truncating the current log at every byte of its last records cuts it cleanly at the last whole entry', async () => {
  const from = base.currentEntries[base.currentEntries.length - 3]!;
  for (let at = from; at <= base.currentEnd; at++) {
    const outcome = await attempt(base, `truncate current at ${at}`, (fs) => rewrite(fs, base.files.current, cutAt(at)));
    const onBoundary = base.currentEntries.includes(at) || at === base.currentEnd;
    const whole = base.currentEntries.filter((o) => o < at).length - (onBoundary ? 0 : 1);
    // On an entry boundary nothing is torn: the log simply ends earlier, as after a crash.
    if (at === base.currentEnd) assert.equal(outcome, { kind: 'whole' });
    else assert.equal(outcome, { kind: 'cut', replayed: base.currentFirst - 1 + whole, brokenFiles: onBoundary ? 0 : 1 }, `truncate at ${at}`);
  }
});

test('truncating the current log inside its header starts an empty current log after the completed ones', async () => {
  for (let at = 1; at < LOG_HEADER_BYTES; at++) {
    const outcome = await attempt(base, `truncate current header at ${at}`, (fs) => rewrite(fs, base.files.current, cutAt(at)));
    assert.equal(outcome, { kind: 'cut', replayed: base.currentFirst - 1, brokenFiles: 1 });
  }
});

test('a bit flipped in any byte of the current log is cut at that entry or refused', async () => {
  const bytes = await base.fs.readFile(base.files.current);
  let cuts = 0;
  let refusals = 0;
  for (let at = 0; at < bytes.length; at++) {
    const outcome = await attempt(base, `flip current byte ${at}`, (fs) => rewrite(fs, base.files.current, flipBit(at)));
    if (outcome.kind === 'refused') {
      refusals += 1;
      continue;
    }
    assert.is(outcome.kind, 'cut', `flip at ${at}`);
    // A flip in the preallocated zeros after the last entry is cut too, losing nothing.
    const entryIndex = at >= base.currentEnd ? base.currentEntries.length : base.currentEntries.filter((o) => o <= at).length - 1;
    assert.ok(outcome.kind === 'cut' && outcome.replayed === base.currentFirst - 1 + entryIndex, `flip at ${at} cut before the flipped entry`);
    cuts += 1;
  }
  assert.is(refusals, LOG_HEADER_BYTES, 'a damaged header with entries after it is refused, never cut');
  assert.is(cuts, bytes.length - LOG_HEADER_BYTES);
});

test('a bit flipped in any byte of any completed log is refused', async () => {
  for (const path of base.files.completed) {
    const size = (await base.fs.readFile(path)).length;
    for (let at = 0; at < size; at++) {
      const outcome = await attempt(base, `flip ${path} byte ${at}`, (fs) => rewrite(fs, path, flipBit(at)));
      assert.is(outcome.kind, 'refused', `flip ${path} at ${at}`);
    }
  }
});

test('truncating a completed log at any byte is refused', async () => {
  const path = base.files.completed[base.files.completed.length - 1]!;
  const size = (await base.fs.readFile(path)).length;
  for (let at = 0; at < size; at++) {
    const outcome = await attempt(base, `truncate ${path} at ${at}`, (fs) => rewrite(fs, path, cutAt(at)));
    assert.ok(outcome.kind === 'refused', `truncate ${path} at ${at}`);
  }
});

test('every part of the checkpoint is covered: a flip or a cut at any byte is refused', async () => {
  const size = (await base.fs.readFile(base.files.checkpoint)).length;
  for (let at = 0; at < size; at++) {
    for (const [what, edit] of [['flip', flipBit(at)], ['truncate', cutAt(at)]] as const) {
      const outcome = await attempt(base, `${what} checkpoint at ${at}`, (fs) => rewrite(fs, base.files.checkpoint, edit));
      assert.ok(outcome.kind === 'refused', `${what} checkpoint at ${at}`);
      assert.match(outcome.kind === 'refused' ? outcome.message : '', /\/j\/kv\/checkpoint at offset/);
    }
  }
});

test('zeroing any 512-byte sector of any file is refused, or cut if it is the tail of the current log', async () => {
  const files = [base.files.checkpoint, ...base.files.completed, base.files.current];
  for (const path of files) {
    const size = (await base.fs.readFile(path)).length;
    for (let sector = 0; sector * 512 < size; sector++) {
      const outcome = await attempt(base, `zero ${path} sector ${sector}`, (fs) => rewrite(fs, path, (b) => { b.fill(0, sector * 512, (sector + 1) * 512); return b; }));
      if (path === base.files.current && sector > 0) assert.ok(outcome.kind === 'cut' || (outcome.kind === 'whole' && sector * 512 >= base.currentEnd), `zero current sector ${sector}`);
      else assert.is(outcome.kind, 'refused', `zero ${path} sector ${sector}`);
    }
  }
});

test('garbage appended to the current log is cut; appended to a completed log or the checkpoint it is refused', async () => {
  for (const garbage of [new Uint8Array(1), new Uint8Array(100), Uint8Array.of(1), Uint8Array.from({ length: 77 }, (_, i) => (i * 37 + 11) & 0xff)]) {
    const append = (b: Uint8Array) => { const out = new Uint8Array(b.length + garbage.length); out.set(b); out.set(garbage, b.length); return out; };
    // Zeros after the last entry read as preallocated space: nothing to cut.
    const zeros = garbage.every((b) => b === 0);
    assert.equal(await attempt(base, 'garbage on current', (fs) => rewrite(fs, base.files.current, append)), zeros ? { kind: 'whole' } : { kind: 'cut', replayed: TOTAL, brokenFiles: 1 });
    assert.is((await attempt(base, 'garbage on completed', (fs) => rewrite(fs, base.files.completed[0]!, append))).kind, 'refused');
    assert.is((await attempt(base, 'garbage on checkpoint', (fs) => rewrite(fs, base.files.checkpoint, append))).kind, 'refused');
  }
});

test('a dropped completed log or a dropped checkpoint is a sequence gap and refused', async () => {
  for (const path of base.files.completed) {
    const outcome = await attempt(base, `drop ${path}`, (fs) => fs.unlink(path));
    assert.is(outcome.kind, 'refused', `drop ${path}`);
    assert.match(outcome.kind === 'refused' ? outcome.message : '', /sequence gap/);
  }
  const outcome = await attempt(base, 'drop checkpoint', (fs) => fs.unlink(base.files.checkpoint));
  assert.match(outcome.kind === 'refused' ? outcome.message : 'not refused', /sequence gap/);
});

test('a duplicated log is refused: a stray copy, the current log copied into completed/, a log under a shifted name', async () => {
  const first = base.files.completed[0]!;
  const copy = async (fs: Fs, from: string, to: string, lengthBytes?: number) => {
    const f = await fs.open(to, 'create');
    await f.write((await fs.readFile(from)).subarray(0, lengthBytes), 0);
    await f.close();
  };
  let outcome = await attempt(base, 'stray copy', (fs) => copy(fs, first, `${first}.copy`));
  assert.match(outcome.kind === 'refused' ? outcome.message : 'not refused', /unexpected file/);
  const name = `${String(base.currentFirst).padStart(16, '0')}-${String(TOTAL).padStart(16, '0')}.log`;
  outcome = await attempt(base, 'current duplicated', (fs) => copy(fs, base.files.current, `/j/kv/completed/${name}`, base.currentEnd));
  assert.match(outcome.kind === 'refused' ? outcome.message : 'not refused', /sequence disorder/);
  const last = base.files.completed[base.files.completed.length - 1]!;
  outcome = await attempt(base, 'shifted name', async (fs) => {
    const bytes = await fs.readFile(last);
    await fs.unlink(last);
    const [a, b] = last.slice(-37, -4).split('-').map(Number) as [number, number];
    const f = await fs.open(`/j/kv/completed/${String(a + 1).padStart(16, '0')}-${String(b + 1).padStart(16, '0')}.log`, 'create');
    await f.write(bytes, 0);
    await f.close();
  });
  assert.is(outcome.kind, 'refused');
});

test('an entry with a valid checksum but the wrong sequence is refused as disorder, in any log', async () => {
  const resequence = (at: number, sequence: number) => (b: Uint8Array) => {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    dv.setUint32(at + 8, sequence, true);
    const n = dv.getUint32(at, true);
    dv.setUint32(at + 4, crc32c(b.subarray(at + 8, at + 20 + n), n), true);
    return b;
  };
  let outcome = await attempt(base, 'disorder in completed', (fs) => rewrite(fs, base.files.completed[0]!, resequence(LOG_HEADER_BYTES, 999)));
  assert.match(outcome.kind === 'refused' ? outcome.message : 'not refused', /sequence disorder: expected \d+, found 999/);
  const lastEntry = base.currentEntries[base.currentEntries.length - 1]!;
  outcome = await attempt(base, 'disorder in current', (fs) => rewrite(fs, base.files.current, resequence(lastEntry, TOTAL + 5)));
  assert.match(outcome.kind === 'refused' ? outcome.message : 'not refused', /sequence disorder/);
});

test('a log whose header names an unknown format version is refused with the version', async () => {
  const outcome = await attempt(base, 'version 2', (fs) => rewrite(fs, base.files.completed[0]!, (b) => {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    dv.setUint32(4, 2, true);
    dv.setUint32(20, crc32c(b.subarray(0, 20)), true);
    return b;
  }));
  assert.match(outcome.kind === 'refused' ? outcome.message : 'not refused', /format version 2 is unknown/);
});

test('a JOURNAL_CORRUPT thrown by the machine\'s own checkpoint loader is refused naming the checkpoint file and offset', async () => {
  class PickyKv extends KvMachine {
    override async loadCheckpoint(chunks: CheckpointReader): Promise<void> {
      for await (const _ of chunks) throw new TesseraError(ErrorCode.JOURNAL_CORRUPT, 'snapshot record 3 has an unknown kind');
    }
  }
  try {
    await Journal.open('/j', [new PickyKv()], { fs: base.fs.clone(), logRollBytes: ROLL_BYTES });
    assert.unreachable('the checkpoint is refused');
  } catch (err) {
    assert.ok(isTesseraError(err, ErrorCode.JOURNAL_CORRUPT), String(err));
    assert.match(err.message, /^Journal is corrupt: \/j\/kv\/checkpoint at offset \d+: the state machine 'kv' could not load it: snapshot record 3 has an unknown kind$/);
  }
});

test('on the real file system, a torn last record is cut and its bytes are kept in a .broken file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'tessera-journal-corrupt-'));
  try {
    const dir = join(root, 'j');
    await Journal.format(dir);
    const j = await Journal.open(dir, [new KvMachine()]);
    for (let i = 1; i <= 5; i++) await j.append('kv', encodeKv(command(i)).type, encodeKv(command(i)).payload);
    await j.close();
    const current = join(dir, 'kv', 'current.log');
    const full = await readFile(current);
    let end = LOG_HEADER_BYTES;
    for (let e = decodeEntryAt(full, end, 1 << 20); e.ok; e = decodeEntryAt(full, end, 1 << 20)) end += e.frameBytes;
    const lastStart = end - (20 + encodeKv(command(5)).payload.length);
    for (let at = lastStart + 1; at < end; at++) {
      const copyDir = join(root, `copy-${at}`);
      await cp(dir, copyDir, { recursive: true });
      await truncate(join(copyDir, 'kv', 'current.log'), at);
      const kv = new KvMachine();
      const j2 = await Journal.open(copyDir, [kv]);
      assert.is(j2.lastSequence('kv'), 4);
      assert.equal(kvView(kv.map), kvView(base.states[4]!));
      assert.is(j2.recoveries.length, 1);
      assert.is(j2.recoveries[0]!.offsetBytes, lastStart);
      await j2.close();
      const broken = (await readdir(join(copyDir, 'kv'))).filter((n) => n.endsWith('.broken'));
      assert.equal(broken, [`current-1-${lastStart}.broken`]);
      // The cut bytes, up to the last non-zero one (trailing zeros read as preallocated space).
      let cutEnd = at;
      while (cutEnd > lastStart && full[cutEnd - 1] === 0) cutEnd -= 1;
      assert.equal(new Uint8Array(await readFile(join(copyDir, 'kv', broken[0]!))), new Uint8Array(full.subarray(lastStart, cutEnd)));
      assert.is((await readFile(join(copyDir, 'kv', 'current.log'))).length, lastStart);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
