/**
 * Mounts with a real local directory: metadata loaded on first access, listings loaded once,
 * escapes refused, mount rules (nesting, rename across mounts, delete of a mount point),
 * writes through to the UFS (mkdir, delete, rename), read-only mounts, persist and free.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, mkdir, writeFile, symlink, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { FileSystemMaster } from '../../master/file-system-master.js';
import { MemoryUfs } from '../../ufs/index.js';
import type { FileInfo } from '../../transports/protocol/master.js';
import { isTesseraError } from '../../core/errors.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isTesseraError(e) ? e.code : String(e);
  }
}

async function setup(): Promise<{ m: FileSystemMaster; ufsDir: string; outside: string; dirs: string[]; journalDir: string }> {
  const journalDir = await mkdtemp(join(tmpdir(), 'tessera-mount-j-'));
  const ufsDir = await mkdtemp(join(tmpdir(), 'tessera-mount-u-'));
  const outside = await mkdtemp(join(tmpdir(), 'tessera-mount-o-'));
  await mkdir(join(ufsDir, 'logs/2024'), { recursive: true });
  await writeFile(join(ufsDir, 'logs/2024/jan.log'), Buffer.alloc(3000));
  await writeFile(join(ufsDir, 'logs/feb.log'), Buffer.alloc(10));
  await writeFile(join(outside, 'secret'), 'x');
  await symlink(outside, join(ufsDir, 'escape'));
  const m = await FileSystemMaster.open({ journalDir, format: true });
  return { m, ufsDir, outside, journalDir, dirs: [journalDir, ufsDir, outside] };
}

test('metadata of UFS files loads on first getStatus, and a listing loads once', async () => {
  const { m, ufsDir, dirs, journalDir } = await setup();
  try {
    await m.mount({ path: '/mnt', ufsUri: pathToFileURL(ufsDir).href });
    const f = await m.getStatus({ path: '/mnt/logs/2024/jan.log' });
    assert.equal([f.lengthBytes, f.completed, f.persistenceState, f.ufsPath], [3000, true, 'PERSISTED', 'logs/2024/jan.log']);
    assert.is((await m.getStatus({ path: '/mnt' })).mountPoint, true);
    const list = await m.listStatus({ path: '/mnt/logs' });
    assert.equal(list.entries.map((e) => [e.name, e.isDirectory]), [['2024', true], ['feb.log', false]]);
    const seq = m.journal!.lastSequence('namespace');
    await m.listStatus({ path: '/mnt/logs' });
    assert.is(m.journal!.lastSequence('namespace'), seq, 'a loaded listing is not loaded again');
    assert.is(await code(m.getStatus({ path: '/mnt/logs/none' })), 'TESSERA_ERR_FILE_NOT_FOUND');
    assert.is(await m.exists({ path: '/mnt/logs/feb.log' }), true);
    // Loaded metadata is journaled: it survives a restart without the UFS being asked.
    await m.close();
    const again = await FileSystemMaster.open({ journalDir });
    assert.is((await again.getStatus({ path: '/mnt/logs/2024/jan.log' })).lengthBytes, 3000);
    await again.close();
  } finally {
    await m.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

test('a symlink out of the mount root is refused and never listed', async () => {
  const { m, ufsDir, dirs } = await setup();
  try {
    await m.mount({ path: '/mnt', ufsUri: ufsDir });
    assert.is(await code(m.getStatus({ path: '/mnt/escape/secret' })), 'TESSERA_ERR_UFS_PATH_ESCAPE');
    assert.equal((await m.listStatus({ path: '/mnt' })).entries.map((e) => e.name), ['logs']);
    assert.is(await code(m.getStatus({ path: '/mnt/../etc' })), 'TESSERA_ERR_INVALID_PATH');
  } finally {
    await m.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

test('mount rules: no nesting, no existing mount point, no rename across or of mounts, no delete of a mount point', async () => {
  const { m, ufsDir, outside, dirs } = await setup();
  try {
    await m.mount({ path: '/mnt', ufsUri: ufsDir });
    assert.is(await code(m.mount({ path: '/mnt/inner', ufsUri: outside })), 'TESSERA_ERR_MOUNT_CONFLICT');
    assert.is(await code(m.mount({ path: '/', ufsUri: outside })), 'TESSERA_ERR_MOUNT_CONFLICT');
    await m.mkdir({ path: '/local' });
    assert.is(await code(m.mount({ path: '/local', ufsUri: outside })), 'TESSERA_ERR_FILE_ALREADY_EXISTS');
    assert.is(await code(m.mount({ path: '/other', ufsUri: join(outside, 'missing') })), 'TESSERA_ERR_FILE_NOT_FOUND');
    await m.createFile({ path: '/local/f' });
    assert.is(await code(m.rename({ src: '/local/f', dst: '/mnt/f' })), 'TESSERA_ERR_INVALID_RENAME');
    assert.is(await code(m.rename({ src: '/mnt', dst: '/mnt2' })), 'TESSERA_ERR_INVALID_RENAME');
    assert.is(await code(m.delete({ path: '/mnt', recursive: true })), 'TESSERA_ERR_MOUNT_CONFLICT');
    assert.is(await code(m.unmount({ path: '/local' })), 'TESSERA_ERR_NOT_MOUNTED');
    await m.unmount({ path: '/mnt' });
    assert.is(await m.exists({ path: '/mnt' }), false);
    assert.equal(m.getMountTable(), []);
    assert.ok((await stat(join(ufsDir, 'logs/feb.log'))).isFile(), 'unmount leaves the UFS alone');
  } finally {
    await m.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

test('mkdir, rename and delete under a mount reach the UFS; a read-only mount refuses them', async () => {
  const { m, ufsDir, outside, dirs } = await setup();
  try {
    await m.mount({ path: '/mnt', ufsUri: ufsDir });
    await m.mkdir({ path: '/mnt/new/deep', recursive: true });
    assert.ok((await stat(join(ufsDir, 'new/deep'))).isDirectory());
    await m.rename({ src: '/mnt/logs/feb.log', dst: '/mnt/new/feb.log' });
    assert.equal(await readdir(join(ufsDir, 'new')), ['deep', 'feb.log']);
    assert.is(await code(m.delete({ path: '/mnt/logs' })), 'TESSERA_ERR_DIRECTORY_NOT_EMPTY');
    await m.delete({ path: '/mnt/logs', recursive: true });
    assert.equal((await readdir(ufsDir)).sort(), ['escape', 'new']);
    await m.mount({ path: '/ro', ufsUri: outside, readOnly: true });
    assert.is(await code(m.createFile({ path: '/ro/x' })), 'TESSERA_ERR_UFS_READ_ONLY');
    assert.is(await code(m.delete({ path: '/ro/secret' })), 'TESSERA_ERR_UFS_READ_ONLY');
    assert.is((await m.getStatus({ path: '/ro/secret' })).lengthBytes, 1);
  } finally {
    await m.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

test('persist hands the file to a worker holding its blocks; reportPersisted marks it PERSISTED; then free works', async () => {
  const { m, ufsDir, dirs } = await setup();
  try {
    await m.mount({ path: '/mnt', ufsUri: ufsDir });
    const w = (await m.registerWorker({ address: 'tcp://w:1', hostname: 'w', capacityBytes: 1 << 20, usedBytes: 0, blocks: [] })).workerId;
    const f = await m.createFile({ path: '/mnt/out.bin', blockSizeBytes: 100 });
    const { blockId } = await m.getNewBlockId({ path: '/mnt/out.bin' });
    m.commitBlock({ workerId: w, blockId, lengthBytes: 50 });
    await m.completeFile({ path: '/mnt/out.bin', lengthBytes: 50 });
    assert.is(await code(m.free({ path: '/mnt/out.bin' })), 'TESSERA_ERR_FILE_NOT_PERSISTED');
    assert.is((await m.persist({ path: '/mnt/out.bin' })).persistenceState, 'TO_BE_PERSISTED');
    const cmds = m.workerHeartbeat({ workerId: w, capacityBytes: 1 << 20, usedBytes: 50, addedBlocks: [], removedBlocks: [] }).commands;
    assert.equal(cmds.map((c) => c.type), ['persist']);
    const c = cmds[0]!;
    assert.ok(c.type === 'persist' && c.ufsPath === 'out.bin' && c.blockIds[0] === blockId && c.fileId === f.fileId);
    await m.reportPersisted({ workerId: w, fileId: f.fileId });
    assert.is((await m.getStatus({ path: '/mnt/out.bin' })).persistenceState, 'PERSISTED');
    assert.equal(await m.free({ path: '/mnt/out.bin' }), { blockCount: 1 });
    const next = m.workerHeartbeat({ workerId: w, capacityBytes: 1 << 20, usedBytes: 50, addedBlocks: [], removedBlocks: [] }).commands;
    assert.equal(next, [{ type: 'free', blockIds: [blockId] }]);
    await m.setAttribute({ path: '/mnt/out.bin', pinned: true });
    assert.is(await code(m.free({ path: '/mnt/out.bin' })), 'TESSERA_ERR_FILE_PINNED');
    assert.is(await code(m.persist({ path: '/nowhere' })), 'TESSERA_ERR_FILE_NOT_FOUND');
    await m.createFile({ path: '/plain' });
    await m.completeFile({ path: '/plain', lengthBytes: 0 });
    assert.is(await code(m.persist({ path: '/plain' })), 'TESSERA_ERR_NOT_MOUNTED');
  } finally {
    await m.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

test('load asks a live worker to cache the blocks of a UFS file', async () => {
  const { m, ufsDir, dirs } = await setup();
  try {
    await m.mount({ path: '/mnt', ufsUri: ufsDir });
    assert.is(await code(m.load({ path: '/mnt/logs/2024/jan.log' })), 'TESSERA_ERR_NO_WORKER');
    const w = (await m.registerWorker({ address: 'tcp://w:1', hostname: 'w', capacityBytes: 1 << 20, usedBytes: 0, blocks: [] })).workerId;
    assert.equal(await m.load({ path: '/mnt/logs/2024/jan.log' }), { blockCount: 1 });
    const cmds = m.workerHeartbeat({ workerId: w, capacityBytes: 1 << 20, usedBytes: 0, addedBlocks: [], removedBlocks: [] }).commands;
    assert.ok(cmds.length === 1 && cmds[0]!.type === 'load' && cmds[0]!.ufsPath === 'logs/2024/jan.log' && cmds[0]!.lengthBytes === 3000);
  } finally {
    await m.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

async function dump(m: FileSystemMaster): Promise<string[]> {
  const out: string[] = [];
  const line = (i: FileInfo) => `${i.path} ${i.isDirectory} ${i.lengthBytes} ${i.persistenceState} ${i.mountPoint} ${i.blockIds.length}`;
  const walk = async (path: string): Promise<void> => {
    // Walk what the namespace holds, without loading more from the UFS.
    const t = m.ns.tree;
    const s = t.get(path === '/' ? [] : path.slice(1).split('/'));
    for (const name of t.sortedChildren(s)) {
      const child = path === '/' ? `/${name}` : `${path}/${name}`;
      const info = t.info(t.children[s]!.get(name)!, child);
      out.push(line(info));
      if (info.isDirectory) await walk(child);
    }
  };
  await walk('/');
  out.push(JSON.stringify(m.getMountTable()));
  return out;
}

test('metadata loads, mounts and unmounts mixed with namespace changes replay to the same namespace', async () => {
  const name = fc.constantFrom('a', 'b', 'c');
  const rel = fc.array(name, { minLength: 1, maxLength: 3 }).map((c) => c.join('/'));
  const op = fc.oneof(
    fc.tuple(fc.constant('stat' as const), rel),
    fc.tuple(fc.constant('list' as const), rel),
    fc.tuple(fc.constant('create' as const), rel),
    fc.tuple(fc.constant('mkdir' as const), rel),
    fc.tuple(fc.constant('delete' as const), rel),
    fc.tuple(fc.constant('rename' as const), rel, rel),
    fc.tuple(fc.constant('remount' as const)),
  );
  let run = 0;
  await fc.assert(fc.asyncProperty(fc.array(rel, { maxLength: 8 }), fc.array(op, { maxLength: 25 }), async (ufsFiles, ops) => {
    const ufsName = `mount-replay-${process.pid}-${run++}`;
    const ufs = MemoryUfs.named(ufsName);
    for (const f of ufsFiles) {
      try { const w = await ufs.create(f); await w.write(new Uint8Array(f.length)); await w.close(); } catch { /* a file is in the way */ }
    }
    const dir = await mkdtemp(join(tmpdir(), 'tessera-mount-replay-'));
    let m = await FileSystemMaster.open({ journalDir: dir, format: true, clock: () => 7 });
    try {
      await m.mount({ path: '/mnt', ufsUri: ufs.uri });
      for (const o of ops) {
        const p = o[0] === 'remount' ? '/mnt' : `/mnt/${o[1]}`;
        await (async () => {
          switch (o[0]) {
            case 'stat': return m.getStatus({ path: p });
            case 'list': return m.listStatus({ path: p });
            case 'create': return m.createFile({ path: p, recursive: true });
            case 'mkdir': return m.mkdir({ path: p, recursive: true });
            case 'delete': return m.delete({ path: p, recursive: true });
            case 'rename': return m.rename({ src: p, dst: `/mnt/${o[2]}` });
            default: await m.unmount({ path: '/mnt' }); return m.mount({ path: '/mnt', ufsUri: ufs.uri });
          }
        })().catch(() => undefined);
      }
      const before = await dump(m);
      await m.close();
      m = await FileSystemMaster.open({ journalDir: dir, clock: () => 7 });
      assert.equal(await dump(m), before);
    } finally {
      await m.close();
      MemoryUfs.drop(ufsName);
      await rm(dir, { recursive: true, force: true });
    }
  }), { numRuns: 40 });
});

test.run();
