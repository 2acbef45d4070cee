/**
 * The journal's public surface (core/journal/). See journal.ts for the fault model and
 * format.ts for the on-disk layout (format version 1, byte tables there).
 *
 * Contract as agreed with the master (issue 6), with these refinements of the sketch:
 * - `snapshot()` returns a `CheckpointWriter`, which is simply an Iterable or AsyncIterable of
 *   Uint8Array chunks captured consistently at the call; `loadCheckpoint()` receives the same
 *   chunks (boundaries kept up to 4 MiB a chunk) as an AsyncIterable, verified as they stream.
 * - Sequence numbers are per component (each component has its own log), starting at 1.
 * - `append()` throws synchronously for everything found before the entry is accepted (bad
 *   argument, unknown component, JOURNAL_CLOSED, JOURNAL_FAILED, the machine's apply error);
 *   its promise rejects only with JOURNAL_FAILED (write or fdatasync failed after acceptance).
 *   `await journal.append(...)` inside try/catch sees both the same way.
 * - `Journal.format(dir, { force })` refuses a non-empty directory unless `force` is set.
 * - Extras: `lastSequence()`, `durableSequence()`, `checkpointSequence()`, `stats()`, `failure`,
 *   `recoveries` (torn tails cut at open), `formatJournal()` (the dump tool) and `Fs`/`SimFs`.
 *
 * ```ts
 * await Journal.format('/var/lib/tessera/journal');
 * const journal = await Journal.open('/var/lib/tessera/journal', [fsMachine, mountsMachine]);
 * const seq = await journal.append('fs', FS_MKDIR, payload); // applied, then durable
 * await journal.checkpoint('fs');
 * await journal.close();
 * ```
 */
export type { JournalEntry, JournaledStateMachine, CheckpointWriter, CheckpointReader, TailRecovery } from './types.js';
export { Journal } from './journal.js';
export type { JournalOpenOptions, JournalFormatOptions, JournalStats } from './journal.js';
export type { Fs, FsFile, FsOpenMode, FsStat } from './fs.js';
export { nodeFs, isNotFound } from './fs.js';
export { SimFs } from './sim-fs.js';
export type { CrashOptions } from './sim-fs.js';
export { formatJournal } from './dump.js';
export type { FormatJournalOptions } from './dump.js';
export { JOURNAL_FORMAT_VERSION, VERSION_FILE as JOURNAL_VERSION_FILE } from './format.js';
