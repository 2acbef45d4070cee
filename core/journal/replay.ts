/**
 * Opening a journal: the version check and the replay of each component, in the order
 * checkpoint → completed logs → current log, with every check that keeps a wrong state from
 * starting: sequence gaps and disorder, names that do not match contents, bad checksums. The
 * one repair is the torn tail of a current log (the only place a crash leaves one): it is cut
 * at the last good entry and the cut bytes saved in a .broken file. See format.ts for the
 * layout.
 */
import { join } from 'node:path';
import { assert } from '../assert.js';
import { JOURNAL_MAX_ENTRY_BYTES, JOURNAL_MAX_TORN_TAIL_BYTES } from '../constants.js';
import { ErrorCode, TesseraError } from '../errors.js';
import { openCheckpoint } from './checkpoint-file.js';
import type { ComponentLog } from './component-log.js';
import {
  CHECKPOINT_FILE, CHECKPOINT_TEMP_FILE, ENTRY_HEADER_BYTES, EntryScanner, LOG_HEADER_BYTES, VERSION_FILE, VERSION_PREFIX,
  VERSION_TEXT, corrupt, decodeLogHeader, isCorruptAt, encodeLogHeader, parseCompletedLogName,
} from './format.js';
import { type Fs, isNotFound } from './fs.js';
import type { TailRecovery } from './types.js';

export async function checkVersion(fs: Fs, dir: string): Promise<void> {
  const s = await fs.stat(dir);
  if (s === undefined || s.kind !== 'directory') {
    throw new TesseraError(ErrorCode.JOURNAL_NOT_FORMATTED, `Cannot open journal: ${dir} does not exist; run \`tessera format\` first`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(join(dir, VERSION_FILE));
  } catch (err) {
    if (isNotFound(err)) throw new TesseraError(ErrorCode.JOURNAL_NOT_FORMATTED, `Cannot open journal: ${dir} has no ${VERSION_FILE} file; run \`tessera format\` first`);
    throw err;
  }
  const text = new TextDecoder().decode(bytes);
  if (text === VERSION_TEXT) return;
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text);
  if (text.startsWith(VERSION_PREFIX)) {
    throw new TesseraError(ErrorCode.JOURNAL_VERSION, `Cannot open journal: ${join(dir, VERSION_FILE)} says ${shown}, a format this build does not know (it knows ${JSON.stringify(VERSION_TEXT)})`);
  }
  throw new TesseraError(ErrorCode.JOURNAL_VERSION, `Cannot open journal: ${join(dir, VERSION_FILE)} holds ${shown}, not a Tessera journal version`);
}

async function ensureDir(fs: Fs, path: string, parent: string): Promise<void> {
  if ((await fs.stat(path)) !== undefined) return;
  await fs.mkdir(path);
  await fs.syncDir(parent);
}

export async function replayComponent(fs: Fs, log: ComponentLog, recoveries: TailRecovery[]): Promise<void> {
  await ensureDir(fs, log.dir, log.journalDir);
  await ensureDir(fs, log.completedDir, log.dir);
  log.machine.reset();
  const temp = join(log.dir, CHECKPOINT_TEMP_FILE);
  if ((await fs.stat(temp)) !== undefined) await fs.unlink(temp);

  let checkpointSequence = 0;
  const checkpointPath = join(log.dir, CHECKPOINT_FILE);
  if ((await fs.stat(checkpointPath)) !== undefined) {
    const reader = await openCheckpoint(fs, checkpointPath);
    try {
      await log.machine.loadCheckpoint(reader.chunks());
      await reader.finish();
    } catch (err) {
      // The reader's own errors name the file and offset; anything else, the machine's
      // JOURNAL_CORRUPT included, is wrapped so that the operator learns which file it was.
      if (isCorruptAt(err, checkpointPath)) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw corrupt(checkpointPath, reader.offsetBytes, `the state machine '${log.name}' could not load it: ${detail}`, err);
    } finally {
      await reader.close();
    }
    checkpointSequence = reader.sequence;
  }
  log.checkpointSequence = checkpointSequence;

  let last = checkpointSequence; // last sequence applied so far
  let replayedLog = false;
  const completed = [];
  for (const name of await fs.readdir(log.completedDir)) {
    const parsed = parseCompletedLogName(name);
    if (parsed === undefined) throw corrupt(join(log.completedDir, name), 0, 'unexpected file in completed/ (expected <first>-<last>.log)');
    completed.push({ name, ...parsed });
  }
  completed.sort((a, b) => a.firstSequence - b.firstSequence);
  for (const c of completed) {
    const path = join(log.completedDir, c.name);
    if (c.lastSequence <= checkpointSequence) continue; // covered by the checkpoint; removed below
    if (c.firstSequence > last + 1) throw corrupt(path, 0, `sequence gap: the journal holds entries up to ${last}, this log starts at ${c.firstSequence}`);
    if (replayedLog && c.firstSequence <= last) throw corrupt(path, 0, `sequence disorder: this log starts at ${c.firstSequence}, but the previous log already reached ${last}`);
    const bytes = await fs.readFile(path);
    const header = decodeLogHeader(bytes);
    if (!header.ok) throw corrupt(path, 0, header.reason);
    if (header.sequence !== c.firstSequence) throw corrupt(path, 8, `log header says first sequence ${header.sequence}, its name says ${c.firstSequence}`);
    let expected = c.firstSequence;
    let offset = LOG_HEADER_BYTES;
    const scanner = new EntryScanner(bytes, JOURNAL_MAX_ENTRY_BYTES);
    while (offset < bytes.length) {
      if (!scanner.decodeAt(offset)) throw corrupt(path, offset, scanner.reason);
      if (scanner.sequence !== expected) throw corrupt(path, offset, `sequence disorder: expected ${expected}, found ${scanner.sequence}`);
      if (expected > checkpointSequence) applyReplayed(log, path, offset, scanner);
      expected += 1;
      offset += scanner.frameBytes;
    }
    if (expected - 1 !== c.lastSequence) throw corrupt(path, offset, `log holds entries up to ${expected - 1}, its name says ${c.lastSequence}`);
    last = c.lastSequence;
    replayedLog = true;
  }
  await replayCurrentLog(fs, log, last, replayedLog, recoveries);
  await removeCoveredLogs(fs, log);
}

function applyReplayed(log: ComponentLog, path: string, offset: number, scanner: EntryScanner): void {
  const { sequence, type } = scanner;
  const start = offset + ENTRY_HEADER_BYTES;
  try {
    log.machine.apply({ sequence, type, payload: scanner.bytes.subarray(start, start + scanner.payloadLength) });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw corrupt(path, offset, `the state machine '${log.name}' rejected entry ${sequence} (type ${type}): ${detail}`, err);
  }
  log.appliedSequence = sequence;
}

async function replayCurrentLog(fs: Fs, log: ComponentLog, last: number, replayedLog: boolean, recoveries: TailRecovery[]): Promise<void> {
  const path = log.currentPath;
  log.appliedSequence = Math.max(log.appliedSequence, last);
  if ((await fs.stat(path)) === undefined) {
    await createCurrentLog(fs, log, last + 1);
    log.durableSequence = log.appliedSequence;
    return;
  }
  const bytes = await fs.readFile(path);
  const header = decodeLogHeader(bytes);
  if (!header.ok) {
    // The header is written and fdatasynced before any entry: a torn header has nothing after it.
    if (bytes.length > LOG_HEADER_BYTES) throw corrupt(path, 0, `${header.reason}, and the log is ${bytes.length} bytes long`);
    if (bytes.length > 0) await saveBroken(fs, log, bytes, 0, last + 1, header.reason, recoveries);
    await createCurrentLog(fs, log, last + 1);
    log.durableSequence = log.appliedSequence;
    return;
  }
  const first = header.sequence;
  if (first > last + 1) throw corrupt(path, 8, `sequence gap: the journal holds entries up to ${last}, the current log starts at ${first}`);
  if (replayedLog && first <= last) throw corrupt(path, 8, `sequence disorder: the current log starts at ${first}, but the completed logs already reached ${last}`);
  let expected = first;
  let offset = LOG_HEADER_BYTES;
  const scanner = new EntryScanner(bytes, JOURNAL_MAX_ENTRY_BYTES);
  while (offset < bytes.length) {
    if (!scanner.decodeAt(offset)) {
      // Only zeros from here: the end of the log and its preallocated space. Otherwise a crash
      // leaves at most one unsynced batch at the end: bad bytes that close to the end are a
      // torn tail; further from it, corruption of acknowledged entries.
      const dataEnd = endOfNonZero(bytes, offset);
      if (dataEnd === offset) break;
      if (dataEnd - offset > JOURNAL_MAX_TORN_TAIL_BYTES) throw corrupt(path, offset, `${scanner.reason}, and ${dataEnd - offset} bytes of data follow (more than one batch, JOURNAL_MAX_TORN_TAIL_BYTES ${JOURNAL_MAX_TORN_TAIL_BYTES})`);
      await saveBroken(fs, log, bytes.subarray(0, dataEnd), offset, first, scanner.reason, recoveries);
      break;
    }
    if (scanner.sequence !== expected) throw corrupt(path, offset, `sequence disorder: expected ${expected}, found ${scanner.sequence}`);
    if (expected > log.checkpointSequence) applyReplayed(log, path, offset, scanner);
    expected += 1;
    offset += scanner.frameBytes;
  }
  if (expected === first && first !== last + 1) {
    // No entries, and a first sequence that would not follow what was replayed: start afresh.
    await createCurrentLog(fs, log, last + 1);
    log.durableSequence = log.appliedSequence;
    return;
  }
  if (expected - 1 < last) throw corrupt(path, offset, `the current log ends at sequence ${expected - 1}, before the checkpoint and completed logs (${last})`);
  log.file = await fs.open(path, 'readwrite');
  log.fileFirstSequence = first;
  log.fileSizeBytes = offset;
  log.allocatedBytes = await log.file.sizeBytes();
  log.durableSequence = log.appliedSequence;
  assert(log.appliedSequence === Math.max(last, expected - 1), 'replay applied every entry up to the end of the current log');
}

/** Index after the last non-zero byte of bytes[from..]; `from` when there is none. */
function endOfNonZero(bytes: Uint8Array, from: number): number {
  let end = bytes.length;
  while (end > from && bytes[end - 1] === 0) end -= 1;
  return end;
}

/** Saves bytes[offset..] of the current log in a .broken file and cuts the log at offset. */
async function saveBroken(fs: Fs, log: ComponentLog, bytes: Uint8Array, offset: number, first: number, reason: string, recoveries: TailRecovery[]): Promise<void> {
  let brokenPath = join(log.dir, `current-${first}-${offset}.broken`);
  for (let n = 1; (await fs.stat(brokenPath)) !== undefined; n++) brokenPath = join(log.dir, `current-${first}-${offset}-${n}.broken`);
  const broken = await fs.open(brokenPath, 'create');
  try {
    await broken.write(bytes.subarray(offset), 0);
    await broken.datasync();
  } finally {
    await broken.close();
  }
  await fs.syncDir(log.dir);
  const current = await fs.open(log.currentPath, 'readwrite');
  try {
    await current.truncate(offset);
    await current.datasync();
  } finally {
    await current.close();
  }
  recoveries.push({ component: log.name, file: log.currentPath, offsetBytes: offset, cutBytes: bytes.length - offset, brokenFile: brokenPath, reason });
}

export async function createCurrentLog(fs: Fs, log: ComponentLog, firstSequence: number): Promise<void> {
  const file = await fs.open(log.currentPath, 'truncate');
  await file.write(encodeLogHeader(firstSequence), 0);
  await file.datasync();
  await fs.syncDir(log.dir);
  log.file = file;
  log.fileFirstSequence = firstSequence;
  log.fileSizeBytes = LOG_HEADER_BYTES;
  log.allocatedBytes = LOG_HEADER_BYTES;
}

export async function removeCoveredLogs(fs: Fs, log: ComponentLog): Promise<void> {
  let removed = 0;
  for (const name of await fs.readdir(log.completedDir)) {
    const parsed = parseCompletedLogName(name);
    if (parsed !== undefined && parsed.lastSequence <= log.checkpointSequence) {
      await fs.unlink(join(log.completedDir, name));
      removed += 1;
    }
  }
  if (removed > 0) await fs.syncDir(log.completedDir);
}
