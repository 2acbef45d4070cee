/**
 * The master protocol's own pieces: block id arithmetic stays exact up to the largest ids, and
 * a FileInfo survives its compact wire form (msgpackr extension) as a plain object.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import {
  FileInfoRecord, FILE_INFO_EXTENSION_TYPE, FILE_INFO_FIELDS, MASTER_METHODS, MasterService, blockIdOf, fileIdOfBlock, sequenceOfBlock,
  type FileInfo,
} from '../../transports/protocol/master.js';
import { MAX_BLOCK_SEQUENCE, MAX_INODE_ID } from '../../core/constants.js';

// The RPC layer's codec settings (transports/wire.ts).
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false });

test('block ids split back into file id and sequence, up to the largest ids, below 2^53', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: MAX_INODE_ID }), fc.integer({ min: 0, max: MAX_BLOCK_SEQUENCE }), (f, s) => {
    const id = blockIdOf(f, s);
    assert.ok(Number.isSafeInteger(id));
    assert.is(fileIdOfBlock(id), f);
    assert.is(sequenceOfBlock(id), s);
  }));
  assert.ok(blockIdOf(MAX_INODE_ID, MAX_BLOCK_SEQUENCE) <= Number.MAX_SAFE_INTEGER);
});

test('a FileInfoRecord crosses the wire as a short array and comes back as an equal plain FileInfo', () => {
  const rec = new FileInfoRecord(7, 'f', '/d/f', false, 0o644, 'alice', 'staff', 1.7e12, 1.7e12 + 1, true, 5000, 'FREE', 'TO_BE_PERSISTED',
    64 * 2 ** 20, 123, true, [blockIdOf(7, 0)], 1, 3, false, 0);
  rec.ufsPath = 'd/f';
  const bytes = packr.pack({ entries: [rec, rec], truncated: false });
  const back = unpackr.unpack(bytes) as { entries: FileInfo[] };
  const plain = Object.fromEntries(FILE_INFO_FIELDS.map((k) => [k, rec[k]])) as unknown as FileInfo;
  assert.equal(back.entries[0], plain);
  assert.is(Object.getPrototypeOf(back.entries[0]), Object.prototype);
  assert.ok(packr.pack(rec).length < packr.pack(plain).length / 2, 'the compact form is less than half the size');
  const noUfs = new FileInfoRecord(1, '', '/', true, 0o755, '', '', 0, 0, false, -1, 'DELETE', 'NOT_PERSISTED', 0, 0, true, [], 0, -1, false, 2);
  assert.is('ufsPath' in (unpackr.unpack(packr.pack(noUfs)) as object), false);
});

test('a FileInfo of an unknown wire version is refused, not misread', () => {
  const bad = Buffer.concat([Buffer.from([0xd4, FILE_INFO_EXTENSION_TYPE, 0]), packr.pack([2, 1, 2, 3])]);
  assert.throws(() => unpackr.unpack(bad), /Bad FileInfo/);
});

test('the service definition has a method for every name in MASTER_METHODS', () => {
  assert.equal(Object.keys(MasterService.members).sort(), [...MASTER_METHODS].sort());
});

test.run();
