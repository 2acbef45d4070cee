import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  parseSizeBytes, parseDurationMs, parseReadType, parseWriteType, formatBytes, normalizePath,
  writeTypeCaches, writeTypePersistsSync, readTypeCaches, READ_TYPES, WRITE_TYPES,
} from '../../client/options.js';
import { isTesseraError } from '../../core/errors.js';
import { KIB, MIB, GIB } from '../../core/constants.js';

function throwsCode(fn: () => unknown, code: string, mention: string): void {
  try {
    fn();
    assert.unreachable('should throw');
  } catch (err) {
    assert.ok(isTesseraError(err), `not a TesseraError: ${String(err)}`);
    assert.is((err as { code: string }).code, code);
    assert.match((err as Error).message, mention);
  }
}

test('parseSizeBytes reads binary units in any case', () => {
  assert.is(parseSizeBytes('64MiB', 'x'), 64 * MIB);
  assert.is(parseSizeBytes('512k', 'x'), 512 * KIB);
  assert.is(parseSizeBytes('1.5GB', 'x'), 1.5 * GIB);
  assert.is(parseSizeBytes(4096, 'x'), 4096);
  assert.is(parseSizeBytes('0', 'x'), 0);
});

test('parseSizeBytes names the option in its error', () => {
  throwsCode(() => parseSizeBytes('lots', 'blockSize'), 'TESSERA_ERR_INVALID_ARGUMENT', 'blockSize');
  throwsCode(() => parseSizeBytes(-1, 'blockSize'), 'TESSERA_ERR_INVALID_ARGUMENT', 'blockSize');
  throwsCode(() => parseSizeBytes('1KiB', 'blockSize', { min: 4 * KIB }), 'TESSERA_ERR_INVALID_ARGUMENT', 'at least 4KiB');
});

test('parseDurationMs reads ms, s, m, h and d', () => {
  assert.is(parseDurationMs('500ms', 'x'), 500);
  assert.is(parseDurationMs('10s', 'x'), 10_000);
  assert.is(parseDurationMs('1h', 'x'), 3_600_000);
  assert.is(parseDurationMs(42, 'x'), 42);
  throwsCode(() => parseDurationMs('soon', 'ttl'), 'TESSERA_ERR_INVALID_ARGUMENT', 'ttl');
});

test('read and write types default, accept any case and reject unknown names', () => {
  assert.is(parseReadType(undefined), 'CACHE_PROMOTE');
  assert.is(parseWriteType(undefined), 'MUST_CACHE');
  assert.is(parseReadType('no_cache'), 'NO_CACHE');
  assert.is(parseWriteType('async_through'), 'ASYNC_THROUGH');
  throwsCode(() => parseReadType('FAST'), 'TESSERA_ERR_INVALID_ARGUMENT', 'readType');
  throwsCode(() => parseWriteType(3, 'writeType'), 'TESSERA_ERR_INVALID_ARGUMENT', 'writeType');
});

test('write types say whether they cache and persist synchronously', () => {
  assert.equal(WRITE_TYPES.map(writeTypeCaches), [true, true, false, true]);
  assert.equal(WRITE_TYPES.map(writeTypePersistsSync), [false, true, true, false]);
  assert.equal(READ_TYPES.map(readTypeCaches), [true, true, false]);
});

test('formatBytes prints exact bytes below 1 KiB and binary units above', () => {
  assert.is(formatBytes(512), '512B');
  assert.is(formatBytes(1536), '1.5KiB');
  assert.is(formatBytes(64 * MIB), '64MiB');
});

test('normalizePath collapses slashes and refuses relative paths, dot segments and NUL', () => {
  assert.is(normalizePath('//a///b/'), '/a/b');
  assert.is(normalizePath('/'), '/');
  throwsCode(() => normalizePath('a/b'), 'TESSERA_ERR_INVALID_PATH', 'absolute');
  throwsCode(() => normalizePath('/a/../b'), 'TESSERA_ERR_INVALID_PATH', '..');
  throwsCode(() => normalizePath('/a\0b'), 'TESSERA_ERR_INVALID_PATH', 'NUL');
});

test.run();
