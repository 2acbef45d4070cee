/**
 * Failpoints for crash tests with real processes. When the environment variable
 * TESSERA_JOURNAL_FAILPOINT is `<name>` or `<name>:<n>`, the process kills itself with SIGKILL
 * (no cleanup, no flush: as close to a power cut as a process can get) the n-th time (default
 * 1st) it passes that point. Unset (the normal case), `failpoint()` is one comparison.
 *
 * Names: 'after-write' (batch written, not yet fsynced), 'after-fsync' (fsynced, not yet
 * acknowledged), 'after-roll-rename' (current log renamed into completed/, no new current
 * log yet), 'after-checkpoint-rename' (checkpoint renamed into place, directory not fsynced,
 * covered logs not removed).
 *
 * One failpoint throws instead of killing: 'fsync-eio' makes the n-th batch's fdatasync fail
 * with EIO (the journal's fatal failure path), for tests of what a process does with a failed
 * journal (tessera master must exit non-zero).
 */
export type FailpointName = 'after-write' | 'after-fsync' | 'after-roll-rename' | 'after-checkpoint-rename' | 'fsync-eio';

const spec = process.env.TESSERA_JOURNAL_FAILPOINT ?? '';
const [armedName, countText] = spec.split(':');
let remaining = spec === '' ? 0 : Math.max(1, Number(countText ?? '1') || 1);

export function failpoint(name: FailpointName): void {
  if (remaining === 0 || name !== armedName) return;
  remaining -= 1;
  if (remaining !== 0) return;
  if (name === 'fsync-eio') throw Object.assign(new Error('EIO: i/o error, fdatasync (TESSERA_JOURNAL_FAILPOINT=fsync-eio)'), { code: 'EIO' });
  process.kill(process.pid, 'SIGKILL');
}
