/**
 * The on-disk format (core/journal/format.ts): entries and headers round-trip, every single
 * bit flip is detected, zeros never read as an entry, names parse back.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  ENTRY_HEADER_BYTES, LOG_HEADER_BYTES, completedLogName, decodeCheckpointHeader, decodeEntryAt, decodeLogHeader,
  encodeCheckpointHeader, encodeEntry, encodeLogHeader, parseCompletedLogName,
} from '../../core/journal/format.js';

const MAX = 1 << 20;
const sequenceArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });

test('an entry decodes to the sequence, type and payload it was encoded with', () => {
  fc.assert(fc.property(sequenceArb, fc.nat({ max: 0xffff_ffff }), fc.uint8Array({ maxLength: 300 }), (sequence, type, payload) => {
    const frame = encodeEntry(sequence, type, payload);
    assert.is(frame.length, ENTRY_HEADER_BYTES + payload.length);
    const e = decodeEntryAt(frame, 0, MAX);
    assert.ok(e.ok);
    if (e.ok) {
      assert.is(e.sequence, sequence);
      assert.is(e.type, type);
      assert.equal(e.payload, payload);
      assert.is(e.frameBytes, frame.length);
    }
  }));
});

test('any single bit flip in an entry is detected', () => {
  fc.assert(fc.property(sequenceArb, fc.uint8Array({ maxLength: 200 }), fc.nat(), (sequence, payload, bit) => {
    const frame = encodeEntry(sequence, 7, payload);
    const at = bit % (frame.length * 8);
    frame[at >> 3]! ^= 1 << (at & 7);
    assert.not.ok(decodeEntryAt(frame, 0, MAX).ok);
  }));
});

test('zeros never decode as an entry, so they mark the end of a preallocated log', () => {
  for (const n of [ENTRY_HEADER_BYTES, 100, 4096]) assert.not.ok(decodeEntryAt(new Uint8Array(n), 0, MAX).ok);
});

test('a cut entry reports how much of it is there', () => {
  const frame = encodeEntry(1, 1, new Uint8Array(50));
  const e = decodeEntryAt(frame.subarray(0, 30), 0, MAX);
  assert.equal(e, { ok: false, reason: 'incomplete entry (30 of 70 bytes)' });
  const big = decodeEntryAt(encodeEntry(1, 1, new Uint8Array(100)), 0, 99);
  assert.not.ok(big.ok);
});

test('log and checkpoint headers round-trip and do not read as each other', () => {
  fc.assert(fc.property(sequenceArb, (sequence) => {
    const log = encodeLogHeader(sequence);
    const cp = encodeCheckpointHeader(sequence);
    assert.is(log.length, LOG_HEADER_BYTES);
    assert.equal(decodeLogHeader(log), { ok: true, sequence });
    assert.equal(decodeCheckpointHeader(cp), { ok: true, sequence });
    assert.not.ok(decodeLogHeader(cp).ok);
    assert.not.ok(decodeCheckpointHeader(log).ok);
  }));
});

test('completed log names sort by sequence and parse back; other names do not parse', () => {
  fc.assert(fc.property(sequenceArb, fc.nat(1000), (first, extra) => {
    const last = Math.min(Number.MAX_SAFE_INTEGER, first + extra);
    assert.equal(parseCompletedLogName(completedLogName(first, last)), { firstSequence: first, lastSequence: last });
  }));
  assert.ok(completedLogName(9, 10) < completedLogName(10, 11));
  for (const bad of ['1-2.log', '0000000000000002-0000000000000001.log', '0000000000000001-0000000000000002.log.tmp', 'x']) {
    assert.is(parseCompletedLogName(bad), undefined, bad);
  }
});

test.run();
