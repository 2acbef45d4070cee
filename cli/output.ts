/**
 * How the command talks back: plain text or `--json` on stdout, errors on stderr with their
 * stable code, progress bars on a terminal only (a pipe or a file gets no progress output at
 * all, so scripts see exactly the data they asked for), and the exit codes scripts rely on:
 *   0  success
 *   1  operating error (the TesseraError code is printed: `tessera: TESSERA_ERR_FILE_NOT_FOUND: ...`)
 *   2  usage error (unknown command or option, missing argument, bad configuration value)
 * `tessera fs test` follows test(1) instead: 0 true, 1 false, 2 when it could not tell.
 */
import cliProgress from 'cli-progress';
import { ErrorCode, TesseraError, isTesseraError } from '../core/errors.js';
import { formatBytes } from '../client/options.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** A mistake in how the command was called; exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface Out {
  json: boolean;
  /** Text line to stdout (text mode). */
  line(s: string): void;
  /** A value to stdout: JSON in --json mode, else `text()` of it. */
  value<T>(v: T, text: (v: T) => string | string[]): void;
  /** Raw bytes to stdout, honouring backpressure. */
  bytes(b: Uint8Array): Promise<void>;
  progress(label: string, totalBytes: number): Progress;
}

export interface Progress {
  update(doneBytes: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { update() {}, stop() {} };

export function makeOut(json: boolean, stdout: NodeJS.WriteStream = process.stdout, stderr: NodeJS.WriteStream = process.stderr): Out {
  return {
    json,
    line(s) { stdout.write(s + '\n'); },
    value(v, text) {
      if (json) stdout.write(JSON.stringify(v, jsonReplacer, 2) + '\n');
      else {
        const t = text(v);
        const lines = Array.isArray(t) ? t : [t];
        if (lines.length > 0) stdout.write(lines.join('\n') + '\n');
      }
    },
    bytes(b) {
      return new Promise<void>((resolve, reject) => {
        if (b.length === 0) { resolve(); return; }
        const ok = stdout.write(b, (err) => { if (err) reject(err); });
        if (ok) resolve(); else stdout.once('drain', resolve);
      });
    },
    progress(label, totalBytes) {
      // Progress goes to stderr, and only when stderr is a terminal and stdout is not JSON.
      if (json || !stderr.isTTY || process.env.TESSERA_NO_PROGRESS) return NO_PROGRESS;
      const started = Date.now();
      const bar = new cliProgress.SingleBar({
        format: `${label} [{bar}] {percentage}% | {doneText}/{totalText} | {rate}`,
        stream: stderr,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 20,
      }, cliProgress.Presets.shades_classic);
      const payload = (done: number) => {
        const secs = Math.max(0.001, (Date.now() - started) / 1000);
        return { doneText: formatBytes(done), totalText: formatBytes(totalBytes), rate: `${formatBytes(Math.round(done / secs))}/s` };
      };
      bar.start(Math.max(1, totalBytes), 0, payload(0));
      return {
        update(done) { bar.update(Math.min(done, Math.max(1, totalBytes)), payload(done)); },
        stop() { bar.stop(); },
      };
    },
  };
}

function jsonReplacer(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** Prints an error the way scripts can parse and returns the exit code for it. */
export function reportError(err: unknown, json: boolean, stderr: NodeJS.WritableStream = process.stderr): number {
  // The reader of our stdout went away (`tessera fs cat big | head`): not an error of ours.
  if ((err as { code?: unknown } | null)?.code === 'EPIPE') return EXIT_OK;
  if (err instanceof UsageError) {
    stderr.write(`tessera: ${err.message}\n(run with --help for usage)\n`);
    return EXIT_USAGE;
  }
  const code = isTesseraError(err) ? err.code : typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'TESSERA_ERR_UNEXPECTED';
  const message = err instanceof Error ? err.message : String(err);
  if (json) stderr.write(JSON.stringify({ error: { code, message } }) + '\n');
  else stderr.write(`tessera: ${code}: ${message}\n`);
  if (process.env.TESSERA_DEBUG && err instanceof Error && err.stack) stderr.write(err.stack + '\n');
  return isTesseraError(err, ErrorCode.CONFIG) ? EXIT_USAGE : EXIT_ERROR;
}

export function isUsage(err: unknown): boolean {
  return err instanceof UsageError || (err instanceof TesseraError && err.code === ErrorCode.CONFIG);
}
