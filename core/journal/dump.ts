/**
 * The operator's view of a journal: `formatJournal(dir)` returns readable lines (version,
 * per component its checkpoint, completed logs and current log, every entry with its
 * sequence, type, length and the first payload bytes in hex, torn tails and .broken files).
 * It only reads: a torn tail is reported, not cut. `node dist/core/journal/dump.js <dir>`
 * prints it; `tessera journal dump` calls the same function.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JOURNAL_MAX_ENTRY_BYTES } from '../constants.js';
import { isTesseraError } from '../errors.js';
import {
  CHECKPOINT_FILE, COMPLETED_DIR, CURRENT_LOG_FILE, LOG_HEADER_BYTES, VERSION_FILE,
  decodeEntryAt, decodeLogHeader,
} from './format.js';
import { type Fs, isNotFound, nodeFs } from './fs.js';
import { openCheckpoint } from './checkpoint-file.js';

export interface FormatJournalOptions {
  fs?: Fs;
  /** List each entry (default true); false prints one summary line per file. */
  entries?: boolean;
  /** Payload bytes shown in hex per entry (default 16). */
  payloadPreviewBytes?: number;
  /** Names for entry types, per component: { fs: { 1: 'MKDIR' } }. */
  typeNames?: Record<string, Record<number, string>>;
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export async function formatJournal(dir: string, opts: FormatJournalOptions = {}): Promise<string[]> {
  const fs = opts.fs ?? nodeFs;
  const lines: string[] = [`journal ${dir}`];
  let version: string;
  try {
    version = JSON.stringify(new TextDecoder().decode(await fs.readFile(join(dir, VERSION_FILE))));
  } catch (err) {
    if (!isNotFound(err)) throw err;
    version = '(missing: not formatted)';
  }
  lines.push(`version ${version}`);
  for (const name of await fs.readdir(dir)) {
    const path = join(dir, name);
    if ((await fs.stat(path))?.kind !== 'directory') continue;
    lines.push(`component ${name}`);
    await dumpComponent(fs, path, name, opts, lines);
  }
  return lines;
}

async function dumpComponent(fs: Fs, dir: string, component: string, opts: FormatJournalOptions, lines: string[]): Promise<void> {
  const checkpointPath = join(dir, CHECKPOINT_FILE);
  if ((await fs.stat(checkpointPath)) === undefined) {
    lines.push('  checkpoint: none');
  } else {
    let reader;
    try {
      reader = await openCheckpoint(fs, checkpointPath);
      await reader.finish();
      lines.push(`  checkpoint: covers sequences 1..${reader.sequence}, ${reader.chunkCount} chunks, ${reader.sizeBytes} bytes, checksums ok`);
    } catch (err) {
      lines.push(`  checkpoint: BAD: ${isTesseraError(err) ? err.message : String(err)}`);
    } finally {
      await reader?.close();
    }
  }
  const completedDir = join(dir, COMPLETED_DIR);
  const completed = (await fs.stat(completedDir)) === undefined ? [] : await fs.readdir(completedDir);
  for (const name of completed) await dumpLog(fs, join(completedDir, name), `completed/${name}`, component, opts, lines);
  if ((await fs.stat(join(dir, CURRENT_LOG_FILE))) === undefined) lines.push(`  ${CURRENT_LOG_FILE}: none`);
  else await dumpLog(fs, join(dir, CURRENT_LOG_FILE), CURRENT_LOG_FILE, component, opts, lines);
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith('.broken')) lines.push(`  ${name}: ${(await fs.stat(join(dir, name)))?.sizeBytes ?? 0} bytes cut from a torn tail`);
  }
}

async function dumpLog(fs: Fs, path: string, label: string, component: string, opts: FormatJournalOptions, lines: string[]): Promise<void> {
  const bytes = await fs.readFile(path);
  const header = decodeLogHeader(bytes);
  if (!header.ok) {
    lines.push(`  ${label}: BAD header: ${header.reason} (${bytes.length} bytes)`);
    return;
  }
  const entryLines: string[] = [];
  const preview = opts.payloadPreviewBytes ?? 16;
  const names = opts.typeNames?.[component] ?? {};
  let offset = LOG_HEADER_BYTES;
  let count = 0;
  let firstSeq: number | undefined;
  let lastSeq: number | undefined;
  let problem = '';
  while (offset < bytes.length) {
    const e = decodeEntryAt(bytes, offset, JOURNAL_MAX_ENTRY_BYTES);
    if (!e.ok) {
      const rest = bytes.subarray(offset);
      if (rest.every((b) => b === 0)) problem = `end of entries at offset ${offset}, then ${rest.length} preallocated zero bytes`;
      else problem = `bad entry at offset ${offset}: ${e.reason} (${bytes.length - offset} bytes to the end): a torn tail if this is current.log, corruption otherwise`;
      break;
    }
    if (lastSeq !== undefined && e.sequence !== lastSeq + 1) problem = `sequence disorder at offset ${offset}: ${e.sequence} after ${lastSeq}`;
    firstSeq ??= e.sequence;
    lastSeq = e.sequence;
    count += 1;
    if (opts.entries !== false) {
      const typeName = names[e.type] !== undefined ? ` ${names[e.type]}` : '';
      const more = e.payload.length > preview ? '...' : '';
      entryLines.push(`    seq ${e.sequence}  type ${e.type}${typeName}  ${e.payload.length} B  ${hex(e.payload.subarray(0, preview))}${more}`);
    }
    offset += e.frameBytes;
  }
  const range = count > 0 ? `sequences ${firstSeq}..${lastSeq}` : 'no entries';
  lines.push(`  ${label}: first sequence ${header.sequence}, ${count} entries (${range}), ${bytes.length} bytes`);
  lines.push(...entryLines);
  if (problem) lines.push(`    ${problem}`);
}

const invokedPath = process.argv[1] ? resolve(process.argv[1]) : '';
if (invokedPath === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node dist/core/journal/dump.js <journal-dir>');
    process.exit(2);
  }
  formatJournal(dir).then((lines) => { for (const l of lines) console.log(l); }, (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
