import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { crc32c, crc32cImplementationName, crc32cTs } from '../../core/crc32c.js';
import { nativeStatus } from '../../native/index.js';

function crc32cBitwise(bytes: Uint8Array, seed = 0): number {
  let crc = ~seed >>> 0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

test('crc32cTs gives the standard check value for "123456789"', () => {
  assert.is(crc32cTs(new TextEncoder().encode('123456789')), 0xe3069283);
});

test('crc32cTs of the empty input is 0', () => {
  assert.is(crc32cTs(new Uint8Array(0)), 0);
});

test('crc32cTs agrees with a bitwise reference on any bytes, and chains through seed', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (bytes, cut) => {
    const k = Math.min(cut, bytes.length);
    assert.is(crc32cTs(bytes), crc32cBitwise(bytes));
    assert.is(crc32cTs(bytes.subarray(k), crc32cTs(bytes.subarray(0, k))), crc32cTs(bytes));
  }));
});

test('crc32c() picks the native path by itself whenever the native module loaded', () => {
  const loaded = nativeStatus().loaded;
  assert.is(crc32cImplementationName().startsWith('native'), loaded, nativeStatus().reason);
  const bytes = new TextEncoder().encode('123456789');
  assert.is(crc32c(bytes), 0xe3069283);
});

test.run();
