/**
 * What `format: true` does with the journal directory (what `tessera master` and `tessera local`
 * pass): it formats only a missing or completely empty directory, keeps an existing journal,
 * and refuses anything else, so that a wrong path or an unmounted volume never turns into a
 * silently empty namespace.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FileSystemMaster } from '../../master/file-system-master.js';
import { SimFs } from '../../core/journal/index.js';
import { ErrorCode, isTesseraError } from '../../core/errors.js';

async function refusal(p: Promise<unknown>): Promise<Error & { code: string }> {
  try {
    await p;
  } catch (e) {
    if (isTesseraError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

test('format: true formats a missing directory and an empty one, and says it did', async () => {
  const fs = new SimFs();
  const a = await FileSystemMaster.open({ journalDir: '/missing', journalFs: fs, format: true });
  assert.is(a.formattedJournal, true);
  await a.close();
  await fs.mkdir('/empty');
  const b = await FileSystemMaster.open({ journalDir: '/empty', journalFs: fs, format: true });
  assert.is(b.formattedJournal, true);
  await b.close();
});

test('format: true keeps an existing journal and what it holds', async () => {
  const fs = new SimFs();
  const a = await FileSystemMaster.open({ journalDir: '/j', journalFs: fs, format: true });
  await a.mkdir({ path: '/kept' });
  await a.close();
  const b = await FileSystemMaster.open({ journalDir: '/j', journalFs: fs, format: true });
  assert.is(b.formattedJournal, false);
  assert.is(await b.exists({ path: '/kept' }), true);
  await b.close();
});

test('format: true refuses a non-empty directory without a journal, naming tessera format, and changes nothing in it', async () => {
  const fs = new SimFs();
  await fs.mkdir('/j');
  const f = await fs.open('/j/data.bin', 'create');
  await f.write(new Uint8Array([1, 2, 3]), 0);
  await f.close();
  const err = await refusal(FileSystemMaster.open({ journalDir: '/j', journalFs: fs, format: true }));
  assert.is(err.code, ErrorCode.JOURNAL_NOT_FORMATTED);
  assert.match(err.message, /\/j is not empty \(1 entries: data\.bin\)/);
  assert.match(err.message, '`tessera format --journal-dir /j --force`');
  assert.equal(await fs.readdir('/j'), ['data.bin']);
});

test('format: true refuses a path that is a file, and without format a missing journal is refused', async () => {
  const fs = new SimFs();
  const f = await fs.open('/file', 'create');
  await f.close();
  assert.is((await refusal(FileSystemMaster.open({ journalDir: '/file', journalFs: fs, format: true }))).code, ErrorCode.INVALID_ARGUMENT);
  assert.is((await refusal(FileSystemMaster.open({ journalDir: '/none', journalFs: fs }))).code, ErrorCode.JOURNAL_NOT_FORMATTED);
  await fs.mkdir('/empty');
  assert.is((await refusal(FileSystemMaster.open({ journalDir: '/empty', journalFs: fs }))).code, ErrorCode.JOURNAL_NOT_FORMATTED);
});

test.run();
