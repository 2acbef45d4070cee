/**
 * The UFS contract, run against `local` (a temp directory) and `memory`, then the local
 * implementation's refusals: `..`, absolute paths, NUL, and symlinks that lead out of the root.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, symlink, mkdir, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalUfs, MemoryUfs, openUfs, type UnderFileSystem } from '../../ufs/index.js';
import { isTesseraError } from '../../core/errors.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isTesseraError(e) ? e.code : String(e);
  }
}
async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}
async function put(u: UnderFileSystem, path: string, data: Uint8Array): Promise<void> {
  const w = await u.create(path);
  await w.write(data.subarray(0, 3));
  await w.write(data.subarray(3));
  await w.close();
}

const impls: [string, () => Promise<{ ufs: UnderFileSystem; cleanup: () => Promise<void> }>][] = [
  ['local', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-ufs-'));
    return { ufs: await openUfs(pathToFileURL(dir).href), cleanup: () => rm(dir, { recursive: true, force: true }) };
  }],
  ['memory', async () => ({ ufs: new MemoryUfs(), cleanup: async () => {} })],
];

for (const [name, make] of impls) {
  test(`${name}: a created file is visible only after close, with its bytes, length and ranged reads`, async () => {
    const { ufs, cleanup } = await make();
    try {
      const data = Buffer.from('hello, under storage');
      const w = await ufs.create('a/b/f.txt');
      await w.write(data);
      assert.is(await ufs.exists('a/b/f.txt'), false);
      await w.close();
      assert.is(await ufs.exists('a/b/f.txt'), true);
      const st = await ufs.stat('a/b/f.txt');
      assert.equal([st!.name, st!.isDirectory, st!.lengthBytes], ['f.txt', false, data.length]);
      assert.equal(await readAll(ufs.openRead('a/b/f.txt')), data);
      assert.equal((await readAll(ufs.openRead('a/b/f.txt', 7, 5))).toString(), 'under');
      assert.equal((await ufs.list('a')).map((e) => [e.name, e.isDirectory]), [['b', true]]);
      assert.is(await code(put(ufs, 'a/b/f.txt', data)), 'TESSERA_ERR_FILE_ALREADY_EXISTS');
      const w2 = await ufs.create('a/b/g');
      await w2.write(data);
      await w2.abort();
      assert.is(await ufs.exists('a/b/g'), false);
      assert.equal((await ufs.list('a/b')).map((e) => e.name), ['f.txt']);
    } finally {
      await cleanup();
    }
  });

  test(`${name}: rename, mkdir and delete (recursive required for a non-empty directory)`, async () => {
    const { ufs, cleanup } = await make();
    try {
      await ufs.mkdir('d/e', { recursive: true });
      await put(ufs, 'd/e/x', Buffer.from('12345'));
      await ufs.rename('d/e/x', 'd/y');
      assert.equal((await ufs.list('d')).map((e) => e.name), ['e', 'y']);
      assert.is(await ufs.stat('d/e/x'), undefined);
      assert.is(await code(ufs.delete('d')), 'TESSERA_ERR_DIRECTORY_NOT_EMPTY');
      await ufs.delete('d', { recursive: true });
      assert.is(await ufs.exists('d'), false);
      assert.is(await code(ufs.list('nope')), 'TESSERA_ERR_FILE_NOT_FOUND');
    } finally {
      await cleanup();
    }
  });

  test(`${name}: paths that leave the root are refused with UFS_PATH_ESCAPE`, async () => {
    const { ufs, cleanup } = await make();
    try {
      for (const p of ['..', '../x', 'a/../../x', '/etc/passwd', 'a\0b', 'a\\..\\b']) {
        assert.is(await code(ufs.stat(p)), 'TESSERA_ERR_UFS_PATH_ESCAPE', p);
        assert.is(await code(ufs.create(p)), 'TESSERA_ERR_UFS_PATH_ESCAPE', p);
        assert.is(await code(ufs.delete(p, { recursive: true })), 'TESSERA_ERR_UFS_PATH_ESCAPE', p);
      }
    } finally {
      await cleanup();
    }
  });
}

test('local: a symlink inside the root that points out of it is refused, and left out of listings', async () => {
  const root = await mkdtemp(join(tmpdir(), 'tessera-ufs-root-'));
  const outside = await mkdtemp(join(tmpdir(), 'tessera-ufs-outside-'));
  try {
    await writeFile(join(outside, 'secret'), 'x');
    await symlink(outside, join(root, 'out'));
    await symlink(join(outside, 'secret'), join(root, 'secret-link'));
    await mkdir(join(root, 'in'));
    await symlink(join(root, 'in'), join(root, 'in-link')); // stays inside: fine
    const ufs = await LocalUfs.open('file://' + root, root);
    assert.is(await code(ufs.stat('out/secret')), 'TESSERA_ERR_UFS_PATH_ESCAPE');
    assert.is(await code(ufs.stat('secret-link')), 'TESSERA_ERR_UFS_PATH_ESCAPE');
    assert.is(await code(readAll(ufs.openRead('secret-link'))), 'TESSERA_ERR_UFS_PATH_ESCAPE');
    assert.is(await code(ufs.create('out/new')), 'TESSERA_ERR_UFS_PATH_ESCAPE');
    assert.is(await code(ufs.delete('out/secret')), 'TESSERA_ERR_UFS_PATH_ESCAPE');
    assert.equal((await ufs.list('')).map((e) => e.name), ['in', 'in-link']);
    assert.is((await ufs.stat('in-link'))!.isDirectory, true);
    assert.equal(await readdir(outside), ['secret']);
  } finally {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  }
});

test('openUfs takes file:// URIs and absolute paths, and refuses other schemes and missing directories', async () => {
  assert.is(await code(openUfs('s3://bucket/x')), 'TESSERA_ERR_INVALID_ARGUMENT');
  assert.is(await code(openUfs('relative/dir')), 'TESSERA_ERR_INVALID_ARGUMENT');
  assert.is(await code(openUfs('/definitely/not/here/tessera')), 'TESSERA_ERR_FILE_NOT_FOUND');
  const dir = await mkdtemp(join(tmpdir(), 'tessera-ufs-open-'));
  try {
    assert.ok((await openUfs(dir)) instanceof LocalUfs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
