/**
 * Journal benchmarks (issue 4), on a real directory under os.tmpdir() (the suite prints which
 * file system that is: tmpfs would make fsync free and the figures meaningless).
 *
 * - Acknowledged appends/s with 1, 16, 64 and 256 concurrent appenders, 100-byte payloads,
 *   against the baseline a user would write first: one write + one fdatasync per append
 *   (serialized, since appends to one file must be ordered); and against lmdb (the embedded
 *   store a Node user would pick) with durable commits: a put resolves after its commit's
 *   fsync (overlappingSync off), lmdb-js batching concurrent puts into one transaction.
 * - Replay speed for 1 M entries (entries/s), with a counting machine (the journal alone) and
 *   with the test KV machine (decode + Map.set per entry).
 * - Checkpoint time for the state of 1 M entries (1 M keys, ~110 MB).
 * Targets: >= 100 K acknowledged appends/s with 64 appenders; replay >= 1 M entries/s.
 */
import { open, mkdtemp, rm, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, type JournalEntry, type JournaledStateMachine } from '../core/journal/index.js';
import { ENTRY_HEADER_BYTES, encodeEntry } from '../core/journal/format.js';
import { report, formatRate, type Row } from './harness.js';
import { KvMachine, encodeKv } from '../test/journal/kv-machine.js';
import { open as openLmdb } from 'lmdb';

const QUICK = process.argv.includes('--quick');
const APPEND_MS = QUICK ? 500 : 2000;
const REPLAY_ENTRIES = QUICK ? 100_000 : 1_000_000;
const PAYLOAD_BYTES = 100;

class CountingMachine implements JournaledStateMachine {
  count = 0;
  bytes = 0;
  constructor(readonly name = 'bench') {}
  apply(entry: JournalEntry): void { this.count += 1; this.bytes += entry.payload.length; }
  reset(): void { this.count = 0; this.bytes = 0; }
  snapshot(): Uint8Array[] { return [new Uint8Array(new Float64Array([this.count, this.bytes]).buffer)]; }
  async loadCheckpoint(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const c of chunks) { const f = new Float64Array(c.slice().buffer); this.count = f[0]!; this.bytes = f[1]!; }
  }
}

async function fileSystemOf(path: string): Promise<string> {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')).filter((f) => f.length > 2);
  let best: string[] | undefined;
  for (const m of mounts) if (path.startsWith(m[1]!) && (!best || m[1]!.length > best[1]!.length)) best = m;
  return best ? `${best[2]} (${best[0]} on ${best[1]})` : 'unknown';
}

async function journalAppends(root: string, appenders: number): Promise<{ rate: number; entriesPerBatch: number; msPerBatch: number }> {
  const dir = join(root, `appends-${appenders}`);
  await Journal.format(dir);
  const journal = await Journal.open(dir, [new CountingMachine()]);
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(7);
  let acked = 0;
  let stop = false;
  const loop = async () => { while (!stop) { await journal.append('bench', 1, payload); acked += 1; } };
  const loops = Array.from({ length: appenders }, loop);
  await new Promise((r) => setTimeout(r, 200)); // warm up
  const start = performance.now();
  const ackedAtStart = acked;
  const before = journal.stats('bench');
  await new Promise((r) => setTimeout(r, APPEND_MS));
  const elapsedMs = performance.now() - start;
  const after = journal.stats('bench');
  const rate = (acked - ackedAtStart) / (elapsedMs / 1000);
  const batches = after.batches - before.batches;
  stop = true;
  await Promise.all(loops);
  await journal.close();
  return { rate, entriesPerBatch: (after.entriesWritten - before.entriesWritten) / batches, msPerBatch: elapsedMs / batches };
}

/** The baseline: each append is one write and one fdatasync, one after another. */
async function fsyncPerAppend(root: string, appenders: number): Promise<{ rate: number; fsyncMs: number }> {
  const handle = await open(join(root, `baseline-${appenders}.log`), 'w');
  let position = 0;
  let tail: Promise<unknown> = Promise.resolve();
  let sequence = 0;
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(7);
  const append = (): Promise<void> => {
    const run = tail.then(async () => {
      const frame = encodeEntry(++sequence, 1, payload);
      await handle.write(frame, 0, frame.length, position);
      position += frame.length;
      await handle.datasync();
    });
    tail = run;
    return run;
  };
  let acked = 0;
  let stop = false;
  const loop = async () => { while (!stop) { await append(); acked += 1; } };
  const loops = Array.from({ length: appenders }, loop);
  await new Promise((r) => setTimeout(r, 200));
  const start = performance.now();
  const ackedAtStart = acked;
  await new Promise((r) => setTimeout(r, APPEND_MS));
  const elapsedMs = performance.now() - start;
  const rate = (acked - ackedAtStart) / (elapsedMs / 1000);
  stop = true;
  await Promise.all(loops);
  await handle.close();
  return { rate, fsyncMs: 1000 / rate };
}

/** The peer: lmdb-js puts of 100-byte values, each acknowledged after a synced commit. */
async function lmdbPuts(root: string, appenders: number): Promise<number> {
  const db = openLmdb<Buffer, number>({ path: join(root, `lmdb-${appenders}`), encoding: 'binary', overlappingSync: false });
  const value = Buffer.alloc(PAYLOAD_BYTES, 7);
  let key = 0;
  let acked = 0;
  let stop = false;
  const loop = async () => { while (!stop) { await db.put(key++, value); acked += 1; } };
  const loops = Array.from({ length: appenders }, loop);
  await new Promise((r) => setTimeout(r, 200));
  const start = performance.now();
  const ackedAtStart = acked;
  await new Promise((r) => setTimeout(r, APPEND_MS));
  const rate = (acked - ackedAtStart) / ((performance.now() - start) / 1000);
  stop = true;
  await Promise.all(loops);
  await db.close();
  return rate;
}

async function fillJournal(dir: string, machine: JournaledStateMachine, entries: number, payloadFor: (i: number) => { type: number; payload: Uint8Array }): Promise<number> {
  await Journal.format(dir);
  const journal = await Journal.open(dir, [machine]);
  const start = performance.now();
  const ROUND = 50_000;
  for (let done = 0; done < entries; done += ROUND) {
    const round: Promise<number>[] = [];
    for (let i = done; i < Math.min(entries, done + ROUND); i++) {
      const { type, payload } = payloadFor(i);
      round.push(journal.append(machine.name, type, payload));
    }
    await Promise.all(round);
  }
  const rate = entries / ((performance.now() - start) / 1000);
  await journal.close();
  return rate;
}

async function timeOpen(dir: string, machine: JournaledStateMachine): Promise<{ journal: Journal; ms: number }> {
  const start = performance.now();
  const journal = await Journal.open(dir, [machine]);
  return { journal, ms: performance.now() - start };
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'tessera-journal-bench-'));
  const fsType = await fileSystemOf(root);
  console.log(`journal bench in ${root}: file system ${fsType}`);
  const rows: Row[] = [];
  const extra: Record<string, unknown> = { directory: root, fileSystem: fsType, payloadBytes: PAYLOAD_BYTES, entryBytes: PAYLOAD_BYTES + ENTRY_HEADER_BYTES };
  try {
    for (const appenders of [1, 16, 64, 256]) {
      const base = await fsyncPerAppend(root, appenders);
      const baseName = `fdatasync per append, ${appenders} appenders`;
      rows.push({ name: baseName, opsPerSec: base.rate, note: `${base.fsyncMs.toFixed(2)} ms per write+fdatasync` });
      const { rate, entriesPerBatch, msPerBatch } = await journalAppends(root, appenders);
      rows.push({ name: `journal group commit, ${appenders} appenders`, opsPerSec: rate, baseline: baseName, note: `${entriesPerBatch.toFixed(1)} entries per fdatasync, ${msPerBatch.toFixed(2)} ms per batch` });
      const lmdbRate = await lmdbPuts(root, appenders);
      rows.push({ name: `lmdb put, durable commits, ${appenders} appenders`, opsPerSec: lmdbRate, note: 'overlappingSync off: resolves after the commit is synced' });
      rows[rows.length - 2]!.note += `; ${(rate / lmdbRate).toFixed(2)}x lmdb`;
      console.log(`${appenders} appenders: journal ${formatRate(rate)}/s, baseline ${formatRate(base.rate)}/s, lmdb ${formatRate(lmdbRate)}/s`);
    }

    // Replay: the journal alone (counting machine).
    const countDir = join(root, 'replay-count');
    const payload = new Uint8Array(PAYLOAD_BYTES).fill(3);
    const fillRate = await fillJournal(countDir, new CountingMachine(), REPLAY_ENTRIES, () => ({ type: 1, payload }));
    rows.push({ name: `journal fill ${REPLAY_ENTRIES} entries, unbounded concurrency`, opsPerSec: fillRate, note: 'appends/s, 50 K in flight' });
    const counter = new CountingMachine();
    const replayCount = await timeOpen(countDir, counter);
    if (counter.count !== REPLAY_ENTRIES) throw new Error(`replayed ${counter.count} entries, expected ${REPLAY_ENTRIES}`);
    rows.push({ name: `replay ${REPLAY_ENTRIES} entries, counting machine`, opsPerSec: REPLAY_ENTRIES / (replayCount.ms / 1000), bytesPerSec: (REPLAY_ENTRIES * (PAYLOAD_BYTES + ENTRY_HEADER_BYTES)) / (replayCount.ms / 1000), note: `entries/s, ${replayCount.ms.toFixed(0)} ms` });
    await replayCount.journal.close();

    // Replay and checkpoint with the KV machine: 1 M distinct keys, ~100-byte payloads.
    const kvDir = join(root, 'replay-kv');
    const value = new Uint8Array(PAYLOAD_BYTES - 12).fill(5);
    await fillJournal(kvDir, new KvMachine('kv'), REPLAY_ENTRIES, (i) => encodeKv({ kind: 'put', key: `k${i}`, value }));
    const kv = new KvMachine('kv', 10_000);
    const replayKv = await timeOpen(kvDir, kv);
    if (kv.map.size !== REPLAY_ENTRIES) throw new Error(`KV replay holds ${kv.map.size} keys`);
    rows.push({ name: `replay ${REPLAY_ENTRIES} entries, KV machine`, opsPerSec: REPLAY_ENTRIES / (replayKv.ms / 1000), note: `entries/s, ${replayKv.ms.toFixed(0)} ms` });
    const cpStart = performance.now();
    await replayKv.journal.checkpoint('kv');
    const cpMs = performance.now() - cpStart;
    const cpBytes = (await stat(join(kvDir, 'kv', 'checkpoint'))).size;
    rows.push({ name: `checkpoint of ${REPLAY_ENTRIES} keys (KV machine)`, opsPerSec: REPLAY_ENTRIES / (cpMs / 1000), bytesPerSec: cpBytes / (cpMs / 1000), note: `${cpMs.toFixed(0)} ms for ${(cpBytes / 1e6).toFixed(1)} MB, entries/s` });
    await replayKv.journal.close();
    const kv2 = new KvMachine('kv');
    const fromCheckpoint = await timeOpen(kvDir, kv2);
    rows.push({ name: `start from the checkpoint of ${REPLAY_ENTRIES} keys`, opsPerSec: REPLAY_ENTRIES / (fromCheckpoint.ms / 1000), note: `keys/s, ${fromCheckpoint.ms.toFixed(0)} ms` });
    await fromCheckpoint.journal.close();
    Object.assign(extra, { checkpointMs: cpMs, checkpointBytes: cpBytes, replayCountingMs: replayCount.ms, replayKvMs: replayKv.ms, startFromCheckpointMs: fromCheckpoint.ms });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  const targets = {
    appends64Target: 100_000,
    appends64: rows.find((r) => r.name === 'journal group commit, 64 appenders')?.opsPerSec,
    replayTarget: 1_000_000,
    replay: rows.find((r) => r.name.startsWith('replay') && r.name.includes('counting'))?.opsPerSec,
  };
  report('journal', rows, { ...extra, ...targets });
}

await main();
