import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { crc32c, crc32cImplementationName, crc32cTs } from '../../core/crc32c.js';
import { crc32cNative, nativeStatus } from '../../native/index.js';
import { isTesseraError } from '../../core/errors.js';
import { isFallbackChild, runUnderFallback } from './both-paths.js';

const native = nativeStatus().loaded;

test('crc32c() gives the standard check value for "123456789" on the path in use', () => {
  assert.is(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
});

test('crc32c() uses the native implementation exactly when the module is loaded', () => {
  if (native) assert.match(crc32cImplementationName(), /^native/);
  else assert.is(crc32cImplementationName(), 'ts');
  if (process.env.TESSERA_NATIVE === '0') assert.is(native, false);
});

test('crc32c() equals crc32cTs on any bytes, offsets and seeds, and chains through seed', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(2000), fc.nat(7), fc.nat(0xffffffff), (raw, cut, off, seed) => {
    const bytes = raw.subarray(Math.min(off, raw.length));
    const k = Math.min(cut, bytes.length);
    assert.is(crc32c(bytes, seed), crc32cTs(bytes, seed));
    assert.is(crc32c(bytes.subarray(k), crc32c(bytes.subarray(0, k))), crc32cTs(bytes));
  }), { numRuns: 300 });
});

test('crc32c() equals crc32cTs on inputs long enough for every stride of the native code', () => {
  const big = new Uint8Array(3 * 8192 * 2 + 3 * 256 + 29);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 13;
  for (const len of [24575, 24576, 24577, 25344, big.length - 7]) {
    for (const off of [0, 1, 5]) assert.is(crc32c(big.subarray(off, off + len), 99), crc32cTs(big.subarray(off, off + len), 99), `len ${len} off ${off}`);
  }
});

function crc32cBitwise(bytes: Uint8Array, seed = 0): number {
  let crc = ~seed >>> 0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

test('crc32cTs (slice-by-16 over words) equals a bitwise reference at every alignment, also over a SharedArrayBuffer', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 700 }), fc.nat(15), fc.nat(0xffffffff), fc.boolean(), (raw, off, seed, shared) => {
    const store = new Uint8Array(shared ? new SharedArrayBuffer(raw.length + 16) : new ArrayBuffer(raw.length + 16));
    store.set(raw, off);
    const bytes = store.subarray(off, off + raw.length);
    assert.is(crc32cTs(bytes, seed), crc32cBitwise(raw, seed));
    assert.is(crc32c(bytes, seed), crc32cBitwise(raw, seed));
  }), { numRuns: 300 });
});

test('crc32cNative checks its arguments, and needs the module', () => {
  if (!native) {
    try { crc32cNative(new Uint8Array(1)); assert.unreachable(); } catch (e) { assert.ok(isTesseraError(e, 'TESSERA_ERR_NATIVE_UNAVAILABLE')); }
    return;
  }
  assert.throws(() => crc32cNative(new Int32Array(2) as unknown as Uint8Array), TypeError);
  assert.throws(() => crc32cNative(new Uint8Array(2), -1), RangeError);
  assert.throws(() => crc32cNative(new Uint8Array(2), 2 ** 32), RangeError);
  assert.throws(() => crc32cNative(new Uint8Array(2), '1' as unknown as number), TypeError);
  assert.is(crc32cNative(Buffer.from('123456789')), 0xe3069283);
});

if (!isFallbackChild) {
  test('the same tests pass with the native module disabled (TESSERA_NATIVE=0)', () => {
    const r = runUnderFallback(import.meta.url);
    assert.is(r.status, 0, r.output);
    assert.match(r.output, /Passed:\s+6/);
  });
}

test.run();
