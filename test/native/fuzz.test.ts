/**
 * Fuzzing the native seam: any value in any argument position of every wrapper (and of the
 * raw binding behind it) returns normally or throws TypeError, RangeError or a TesseraError;
 * it never crashes the process. A crash would kill this file's process, which the runner
 * reports as a failure.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TesseraError } from '../../core/errors.js';
import * as native from '../../native/index.js';
import { isFallbackChild, runUnderFallback } from './both-paths.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-'));
const loaded = native.nativeStatus().loaded;
const RUNS = 400;

function expectedError(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError || e instanceof TesseraError;
}

function survives(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!expectedError(e)) throw new Error(`unexpected error kind: ${String(e)}`);
  }
}

const live: ArrayBuffer[] = [];
function aMapping(): ArrayBuffer | undefined {
  if (!loaded) return undefined;
  const b = native.mapShared(join(dir, `m${live.length % 4}`), 3 * 4096, { create: true });
  live.push(b);
  return b;
}

/** Anything, plus the values that matter at this seam. */
function value(): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.anything(),
    fc.constantFrom(NaN, Infinity, -Infinity, -0, 2 ** 31, 2 ** 32, 2 ** 53, -1, 0.5, 1e300),
    fc.integer({ min: -10, max: 20000 }),
    fc.constantFrom(new Uint8Array(3), new Int32Array(3), new Float64Array(2), new ArrayBuffer(8), new SharedArrayBuffer(8),
      new Int32Array(new SharedArrayBuffer(16)), Buffer.alloc(5), new DataView(new ArrayBuffer(4))),
    fc.constantFrom('willneed', 'dontneed', 'hugepage', '', '\0', 'x'.repeat(5000)),
    fc.constant(undefined).map(() => aMapping()),
  );
}
/** Timeouts that cannot block forever even when the call is valid. */
const timeout = fc.oneof(fc.anything().filter((v) => typeof v !== 'number'), fc.double({ min: -5, max: 5, noNaN: true }));
/** Paths confined to the temp dir (a valid call with create would make a file). */
const path = fc.oneof(fc.anything().filter((v) => typeof v !== 'string'), fc.string({ maxLength: 8 }).map((s) => join(dir, `p-${s.replace(/[/\0]/g, '_')}`)),
  fc.constantFrom('', '\0', join(dir, 'x\0y'), dir));
const size = fc.oneof(fc.anything().filter((v) => typeof v !== 'number'), fc.integer({ min: -4, max: 65536 }), fc.constantFrom(NaN, Infinity, 0.5, 2 ** 33));

test('every wrapper survives any arguments with only TypeError, RangeError or TesseraError', () => {
  fc.assert(fc.property(path, size, value(), (p, s, o) => { survives(() => native.mapShared(p as string, s as number, o as object)); }), { numRuns: RUNS });
  fc.assert(fc.property(value(), (b) => { survives(() => native.unmap(b as ArrayBuffer)); }), { numRuns: RUNS });
  fc.assert(fc.property(value(), value(), value(), (b, a, o) => { survives(() => native.madvise(b as ArrayBuffer, a as 'willneed', o as object)); }), { numRuns: RUNS });
  fc.assert(fc.property(value(), value(), (b, o) => { survives(() => native.msync(b as ArrayBuffer, o as object)); }), { numRuns: RUNS });
  fc.assert(fc.property(value(), value(), value(), timeout, (a, i, e, t) => { survives(() => native.futexWait(a as Int32Array, i as number, e as number, t as number)); }), { numRuns: RUNS });
  fc.assert(fc.property(value(), value(), value(), (a, i, n) => { survives(() => native.futexWake(a as Int32Array, i as number, n as number)); }), { numRuns: RUNS });
  fc.assert(fc.property(value(), value(), (b, s) => { survives(() => native.crc32cNative(b as Uint8Array, s as number)); }), { numRuns: RUNS });
  fc.assert(fc.property(value(), (b) => { survives(() => native.pageOffsetOf(b as Uint8Array)); }), { numRuns: RUNS });
});

if (loaded) {
  const raw = createRequire(import.meta.url)(native.nativeStatus().path!) as Record<string, (...args: unknown[]) => unknown>;

  test('the raw binding itself survives any arguments, also without the wrappers\' checks', () => {
    const args = fc.array(value(), { maxLength: 6 });
    for (const name of ['unmap', 'madvise', 'msync', 'futexWake', 'crc32c', 'pageSize', 'memlockLimit', 'features', 'liveMappings', 'pageOffsetOf']) {
      fc.assert(fc.property(args, (a) => { survives(() => raw[name]!(...a)); }), { numRuns: RUNS });
    }
    fc.assert(fc.property(path, size, value(), value(), value(), (p, s, c, l, r) => { survives(() => raw.mapShared!(p, s, c, l, r)); }), { numRuns: RUNS });
    fc.assert(fc.property(value(), value(), value(), timeout, (a, i, e, t) => { survives(() => raw.futexWait!(a, i, e, t)); }), { numRuns: RUNS });
  });

  test('a mapping unmapped through the raw binding cannot be used through it again', () => {
    const b = native.mapShared(join(dir, 'raw'), 4096, { create: true });
    raw.unmap!(b);
    assert.is(b.byteLength, 0);
    assert.throws(() => raw.unmap!(b), TypeError);
    assert.throws(() => raw.madvise!(b, 0, 0, 0), TypeError);
    assert.throws(() => raw.futexWait!(new Int32Array(b), 0, 0, 0), RangeError);
  });
}

if (!isFallbackChild) {
  test('the wrappers survive the same fuzzing with the native module disabled (TESSERA_NATIVE=0)', () => {
    const r = runUnderFallback(import.meta.url);
    assert.is(r.status, 0, r.output);
  });
}

test.after(() => {
  for (const b of live) native.unmap(b);
  rmSync(dir, { recursive: true, force: true });
});
test.run();
