/**
 * The simulated file system keeps exactly what a power cut would keep, per its documented
 * model; the power-loss tests are only as good as this.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SimFs } from '../../core/journal/index.js';

const bytes = (...b: number[]) => new Uint8Array(b);

async function fileWith(fs: SimFs, path: string, content: Uint8Array, sync: boolean) {
  const f = await fs.open(path, 'truncate');
  await f.write(content, 0);
  if (sync) await f.datasync();
  return f;
}

test('a crash drops unsynced writes and keeps fdatasynced ones', async () => {
  const fs = new SimFs();
  const f = await fileWith(fs, '/a', bytes(1, 2, 3), true);
  await fs.syncDir('/');
  await f.write(bytes(4, 5), 3);
  assert.is(fs.unsyncedBytes(), 2);
  const after = fs.crash();
  assert.equal(await after.readFile('/a'), bytes(1, 2, 3));
});

test('a crash can tear an unsynced write at any byte, or zero-fill the rest of it', async () => {
  for (let keep = 0; keep <= 4; keep++) {
    for (const zero of [0, 1]) {
      const fs = new SimFs();
      const f = await fileWith(fs, '/a', bytes(9), true);
      await fs.syncDir('/');
      await f.write(bytes(1, 2, 3, 4), 1);
      const after = fs.crash({ choose: (limit, what) => (what.startsWith('zero') ? zero : what.startsWith('sector') ? 0 : Math.min(keep, limit)) });
      const expected = keep === 4 ? [9, 1, 2, 3, 4] : zero ? [9, ...[1, 2, 3, 4].map((b, i) => (i < keep ? b : 0))] : [9, 1, 2, 3, 4].slice(0, 1 + keep);
      assert.equal([...(await after.readFile('/a'))], expected, `keep ${keep}, zero ${zero}`);
    }
  }
});

test('a crash can keep any subset of the sectors of unsynced writes', async () => {
  const fs = new SimFs();
  const f = await fileWith(fs, '/a', new Uint8Array(0), true);
  await fs.syncDir('/');
  await f.write(new Uint8Array(1536).fill(7), 0);
  const after = fs.crash({ choose: (limit, what) => (what.startsWith('sectors') ? 1 : what.endsWith(':512') ? 1 : 0) });
  const content = await after.readFile('/a');
  assert.is(content.length, 1024, 'only the middle sector landed; the file size reaches its end');
  assert.ok(content.subarray(0, 512).every((b) => b === 0) && content.subarray(512).every((b) => b === 7));
});

test('a created file whose directory was not fsynced is gone after a crash, even if its data was synced', async () => {
  const fs = new SimFs();
  await fileWith(fs, '/a', bytes(1), true);
  const after = fs.crash();
  assert.is(await after.stat('/a'), undefined);
});

test('a rename is durable only after syncDir, and a crash keeps a prefix of the name operations', async () => {
  const setUp = async () => {
    const fs = new SimFs();
    await fs.mkdir('/d');
    await fileWith(fs, '/d/x', bytes(1), true);
    await fs.syncDir('/d');
    await fs.syncDir('/');
    await fs.rename('/d/x', '/d/y');
    await fs.unlink('/d/y');
    assert.is(fs.unsyncedMetadataOps(), 2);
    return fs;
  };
  const none = (await setUp()).crash();
  assert.ok(await none.stat('/d/x'));
  const one = (await setUp()).crash({ choose: (limit, what) => (what === 'metadata' ? 1 : 0) });
  assert.is(await one.stat('/d/x'), undefined);
  assert.ok(await one.stat('/d/y'));
  const synced = await setUp();
  await synced.syncDir('/d');
  assert.equal(await synced.crash().readdir('/d'), []);
});

test('after a crash the old instance never settles again', async () => {
  const fs = new SimFs();
  const f = await fileWith(fs, '/a', bytes(1), false);
  fs.crash();
  let settled = false;
  void f.datasync().then(() => { settled = true; }, () => { settled = true; });
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.is(settled, false);
});

test('failNext makes the next call of that kind fail with EIO, once', async () => {
  const fs = new SimFs();
  const f = await fileWith(fs, '/a', bytes(1), false);
  fs.failNext('datasync');
  try {
    await f.datasync();
    assert.unreachable('datasync should fail');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'EIO');
  }
  await f.datasync();
});

test('open modes behave as their node:fs flags', async () => {
  const fs = new SimFs();
  await fileWith(fs, '/a', bytes(1, 2), false);
  await fs.open('/a', 'create').then(() => assert.unreachable('create of an existing file'), (e: { code: string }) => assert.is(e.code, 'EEXIST'));
  await fs.open('/b', 'read').then(() => assert.unreachable('read of a missing file'), (e: { code: string }) => assert.is(e.code, 'ENOENT'));
  const t = await fs.open('/a', 'truncate');
  assert.is(await t.sizeBytes(), 0);
});

test.run();
