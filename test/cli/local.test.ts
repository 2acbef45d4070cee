// The `tessera` command as a user drives it: `tessera local` in one subprocess (ports chosen at
// run time), then `tessera fs ...` subprocesses against it, checking output and exit codes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'tessera.js');
const cwd = mkdtempSync(join(tmpdir(), 'tessera-cli-local-'));
let server: ChildProcess;
let master = '';
const webs: string[] = [];

function tessera(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, TESSERA_MASTER_ADDRESS: master, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function ok(args: string[]): Promise<string> {
  const r = await tessera(args);
  assert.is(r.code, 0, `tessera ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse(await ok(['--json', ...args])) as T;
}

/** Runs `tessera <args>` on a terminal (script(1) gives it one) and resolves with what the terminal showed. */
function onTerminal(args: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const cmd = [process.execPath, bin, ...args].map((a) => JSON.stringify(a)).join(' ');
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd, env: { ...process.env, TESSERA_MASTER_ADDRESS: master } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`script exited ${code}: ${out}`))));
  });
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

test.before(async () => {
  server = spawn(process.execPath, [bin, 'local', '--data-dir', join(cwd, 'data'), '--master-rpc-port', '0', '--worker-rpc-port', '0',
    '--master-web-port', '0', '--worker-web-port', '0', '--worker-mem-bytes', '512MiB'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let errText = '';
  server.stderr!.on('data', (d) => { errText += d; });
  const rl = createInterface({ input: server.stdout! });
  master = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tessera local did not start: ${errText}`)), 60_000);
    let addr = '';
    rl.on('line', (line) => {
      const m = /^master\s+rpc\s+(\S+)/.exec(line);
      if (m) addr = m[1]!;
      const web = /\sweb\s+(http:\S+)/.exec(line);
      if (web) webs.push(web[1]!);
      if (line.startsWith('ready')) { clearTimeout(timer); resolve(addr); }
    });
    server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tessera local exited ${code}: ${errText}`)); });
  });
  assert.match(master, /^tcp:\/\/127\.0\.0\.1:\d+$/);
});

test.after(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
  }
  rmSync(cwd, { recursive: true, force: true });
});

test('the master and the worker serve /api/info and /metrics on their web ports', async () => {
  assert.is(webs.length, 2, 'master and worker web addresses printed');
  for (const w of webs) {
    const info = await fetch(`${w}/api/info`);
    assert.is(info.status, 200);
    const metrics = await (await fetch(`${w}/metrics`)).text();
    assert.match(metrics, /tessera_(master|worker)_/);
  }
});

test('mkdir -p, touch, ls -R and stat --json describe the namespace', async () => {
  await ok(['fs', 'mkdir', '-p', '/d/e']);
  await ok(['fs', 'touch', '/d/e/empty']);
  const ls = await ok(['fs', 'ls', '-R', '/']);
  assert.match(ls, '/d/e/empty');
  assert.match(ls, '/ufs');
  const st = await json<{ lengthBytes: number; isDirectory: boolean; completed: boolean }>(['fs', 'stat', '/d/e/empty']);
  assert.equal([st.lengthBytes, st.isDirectory, st.completed], [0, false, true]);
  const entries = await json<{ path: string }[]>(['fs', 'ls', '/d']);
  assert.equal(entries.map((e) => e.path), ['/d/e']);
});

test('copyFromLocal of a 200 MiB file and copyToLocal give the same sha256', async () => {
  const src = join(cwd, 'big.bin');
  const fd = openSync(src, 'w');
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < 200; i++) { chunk[0] = i; writeSync(fd, chunk); }
  closeSync(fd);
  const want = await sha256File(src);
  const put = await tessera(['fs', 'copyFromLocal', src, '/big.bin']);
  assert.is(put.code, 0, put.stderr);
  assert.is(put.stderr, '', 'no progress output on a pipe');
  const dst = join(cwd, 'big.out');
  await ok(['fs', 'copyToLocal', '/big.bin', dst]);
  assert.is(await sha256File(dst), want);
  const sum = await json<{ checksum: string }>(['fs', 'checksum', '/big.bin']);
  assert.is(sum.checksum, want);
  const loc = await json<{ blocks: { locations: unknown[] }[] }>(['fs', 'location', '/big.bin']);
  assert.is(loc.blocks.length, 4, '200 MiB in 64 MiB blocks');
  assert.ok(loc.blocks.every((b) => b.locations.length === 1));
  rmSync(src); rmSync(dst);
});

test('copyFromLocal draws a progress bar on a terminal (script(1) provides one) and nothing on a pipe', async () => {
  const f = join(cwd, 'p.bin');
  writeFileSync(f, randomBytes(3 << 20));
  const onTty = await onTerminal(['fs', 'copyFromLocal', f, '/tty.bin']);
  assert.match(onTty, /copyFromLocal \/tty\.bin \[/);
  assert.match(onTty, /\d+% \| /);
  const piped = await tessera(['fs', 'copyFromLocal', f, '/pipe.bin']);
  assert.is(piped.code, 0);
  assert.is(piped.stderr, '');
  assert.not.match(piped.stdout, '%');
  await ok(['fs', 'rm', '/tty.bin', '/pipe.bin']);
});

test('copyToLocal draws a progress bar on a terminal and nothing on a pipe', async () => {
  const f = join(cwd, 'q.bin');
  const data = randomBytes(3 << 20);
  writeFileSync(f, data);
  await ok(['fs', 'copyFromLocal', f, '/q.bin']);
  const onTty = await onTerminal(['fs', 'copyToLocal', '/q.bin', join(cwd, 'q.tty')]);
  assert.match(onTty, /copyToLocal \/q\.bin \[/);
  assert.match(onTty, /\d+% \| [\d.]+[KMG]?i?B\/3MiB \| /, 'bytes done of the total, then the rate');
  assert.ok(readFileSync(join(cwd, 'q.tty')).equals(data));
  const piped = await tessera(['fs', 'copyToLocal', '/q.bin', join(cwd, 'q.pipe')]);
  assert.is(piped.code, 0, piped.stderr);
  assert.is(piped.stderr, '', 'no progress output on a pipe');
  assert.not.match(piped.stdout, '%');
  assert.ok(readFileSync(join(cwd, 'q.pipe')).equals(data));
  await ok(['fs', 'rm', '/q.bin']);
  rmSync(f); rmSync(join(cwd, 'q.tty')); rmSync(join(cwd, 'q.pipe'));
});

test('load draws a progress bar on a terminal and nothing on a pipe', async () => {
  const ufs3 = join(cwd, 'ufs3');
  mkdirSync(ufs3);
  writeFileSync(join(ufs3, 'a.bin'), randomBytes(2 << 20));
  writeFileSync(join(ufs3, 'b.bin'), randomBytes(2 << 20));
  await ok(['fs', 'mount', '/m3', ufs3]);
  const onTty = await onTerminal(['fs', 'load', '/m3/a.bin']);
  assert.match(onTty, /load \/m3\/a\.bin \[/);
  assert.match(onTty, /\d+% \| /);
  const piped = await tessera(['fs', 'load', '/m3/b.bin']);
  assert.is(piped.code, 0, piped.stderr);
  assert.is(piped.stderr, '', 'no progress output on a pipe');
  assert.match(piped.stdout, '/m3/b.bin loaded into Tessera space (1 file, 2MiB read from under storage)');
  for (const name of ['a.bin', 'b.bin']) {
    const loc = await json<{ blocks: { locations: unknown[] }[] }>(['fs', 'location', `/m3/${name}`]);
    assert.ok(loc.blocks.every((b) => b.locations.length === 1), `${name} cached after load`);
  }
  await ok(['fs', 'unmount', '/m3']);
});

test('ls -h, du -h and count -h print sizes in KiB/MiB, and raw byte counts without -h', async () => {
  const a = join(cwd, 'h-a.bin');
  const b = join(cwd, 'h-b.txt');
  writeFileSync(a, randomBytes(3.5 * (1 << 20)));
  writeFileSync(b, Buffer.alloc(1500, 'x'));
  await ok(['fs', 'mkdir', '/h']);
  await ok(['fs', 'copyFromLocal', a, '/h/a.bin']);
  await ok(['fs', 'copyFromLocal', b, '/h/b.txt']);
  const lineOf = (text: string, path: string): string => text.split('\n').find((l) => l.endsWith(path)) ?? '';
  const ls = await ok(['fs', 'ls', '/h']);
  assert.match(lineOf(ls, '/h/a.bin'), /\s3670016\s/);
  assert.match(lineOf(ls, '/h/b.txt'), /\s1500\s/);
  const lsH = await ok(['fs', 'ls', '-h', '/h']);
  assert.match(lineOf(lsH, '/h/a.bin'), /\s3\.5MiB\s/);
  assert.match(lineOf(lsH, '/h/b.txt'), /\s1\.5KiB\s/);
  assert.not.match(lsH, '3670016');
  const duH = await ok(['fs', 'du', '-h', '/h']);
  assert.match(lineOf(duH, '/h/a.bin'), /^3\.5MiB\s/);
  assert.match(lineOf(duH, '/h/b.txt'), /^1\.5KiB\s/);
  assert.match(await ok(['fs', 'du', '-s', '-h', '/h']), /^3\.5MiB\s+\/h\n$/);
  assert.match(await ok(['fs', 'du', '-s', '/h']), /^3671516\s+\/h\n$/);
  const countH = (await ok(['fs', 'count', '-h', '/h'])).split('\n');
  assert.match(countH[0]!, /^File Count\s+Folder Count\s+Folder Size$/);
  assert.match(countH[1]!, /^2\s+1\s+3\.5MiB$/);
  assert.match((await ok(['fs', 'count', '/h'])).split('\n')[1]!, /^2\s+1\s+3671516$/);
  await ok(['fs', 'rm', '-R', '/h']);
  rmSync(a); rmSync(b);
});

test('cat, head and tail print file bytes', async () => {
  const f = join(cwd, 'hello.txt');
  writeFileSync(f, 'hello, tessera\n');
  await ok(['fs', 'copyFromLocal', f, '/d/hello.txt']);
  assert.is(await ok(['fs', 'cat', '/d/hello.txt']), 'hello, tessera\n');
  assert.is(await ok(['fs', 'head', '-c', '5', '/d/hello.txt']), 'hello');
  assert.is(await ok(['fs', 'tail', '-c', '8', '/d/hello.txt']), 'tessera\n');
});

test('du, count and report sum what is stored', async () => {
  const du = await json<{ lengthBytes: number }>(['fs', 'du', '-s', '/d']);
  assert.is(du.lengthBytes, 15);
  const count = await json<{ fileCount: number; folderCount: number }>(['fs', 'count', '/d']);
  assert.equal([count.fileCount, count.folderCount], [2, 2]);
  const rep = await json<{ liveWorkers: number; fileCount: number; capacityBytes: number }>(['report']);
  assert.is(rep.liveWorkers, 1);
  assert.ok(rep.fileCount >= 3);
  assert.is(rep.capacityBytes, 512 * 1024 * 1024);
});

test('mv, test and rm behave like their Unix namesakes, with exit codes', async () => {
  await ok(['fs', 'mv', '/d/hello.txt', '/d/e']);
  assert.is((await tessera(['fs', 'test', '-f', '/d/e/hello.txt'])).code, 0);
  assert.is((await tessera(['fs', 'test', '-e', '/d/hello.txt'])).code, 1);
  assert.is((await tessera(['fs', 'test', '-d', '/d/e'])).code, 0);
  assert.is((await tessera(['fs', 'test', '-z', '/d/e/empty'])).code, 0);
  const rmDir = await tessera(['fs', 'rm', '/d']);
  assert.is(rmDir.code, 1);
  assert.match(rmDir.stderr, 'TESSERA_ERR_IS_A_DIRECTORY');
  await ok(['fs', 'rm', '-R', '/d']);
  const gone = await tessera(['fs', 'cat', '/d/e/hello.txt']);
  assert.is(gone.code, 1);
  assert.match(gone.stderr, 'TESSERA_ERR_FILE_NOT_FOUND');
});

test('pin, unpin, setTtl and unsetTtl change the attributes stat shows', async () => {
  await ok(['fs', 'pin', '/big.bin']);
  assert.is((await json<{ pinned: boolean }>(['fs', 'stat', '/big.bin'])).pinned, true);
  await ok(['fs', 'unpin', '/big.bin']);
  assert.is((await json<{ pinned: boolean }>(['fs', 'stat', '/big.bin'])).pinned, false);
  // On a directory, pin reaches every file under it; --json says what it did.
  const f = join(cwd, 'pin.txt');
  writeFileSync(f, 'pinned\n');
  await ok(['fs', 'copyFromLocal', f, '/pins/a/one.txt']);
  await ok(['fs', 'copyFromLocal', f, '/pins/two.txt']);
  assert.equal(await json<{ path: string; pinned: boolean }>(['fs', 'pin', '/pins']), { path: '/pins', pinned: true });
  for (const p of ['/pins/a/one.txt', '/pins/two.txt']) assert.is((await json<{ pinned: boolean }>(['fs', 'stat', p])).pinned, true, `${p} pinned`);
  assert.match(await ok(['fs', 'unpin', '/pins']), 'File /pins was successfully unpinned.');
  for (const p of ['/pins/a/one.txt', '/pins/two.txt']) assert.is((await json<{ pinned: boolean }>(['fs', 'stat', p])).pinned, false, `${p} unpinned`);
  const missing = await tessera(['fs', 'pin', '/pins/none']);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, 'TESSERA_ERR_FILE_NOT_FOUND');
  await ok(['fs', 'rm', '-R', '/pins']);
  rmSync(f);
  await ok(['fs', 'setTtl', '/big.bin', '1h', '--action', 'free']);
  const s = await json<{ ttlMs: number; ttlAction: string }>(['fs', 'stat', '/big.bin']);
  assert.equal([s.ttlMs, s.ttlAction], [3_600_000, 'FREE']);
  await ok(['fs', 'unsetTtl', '/big.bin']);
  assert.is((await json<{ ttlMs: number }>(['fs', 'stat', '/big.bin'])).ttlMs, -1);
});

test('mount, persist, free, load and unmount move data between memory and a UFS', async () => {
  const ufs2 = join(cwd, 'ufs2');
  mkdirSync(ufs2);
  writeFileSync(join(ufs2, 'preexisting.txt'), 'from the under store\n');
  await ok(['fs', 'mount', '/m2', ufs2]);
  const mounts = await json<{ path: string }[]>(['fs', 'mount']);
  assert.ok(mounts.some((m) => m.path === '/m2'));
  // A file already in the UFS is readable through Tessera.
  assert.is(await ok(['fs', 'cat', '/m2/preexisting.txt']), 'from the under store\n');
  // A MUST_CACHE file persisted on request lands in the UFS.
  const f = join(cwd, 'p.txt');
  writeFileSync(f, 'persist me\n');
  await ok(['fs', 'copyFromLocal', f, '/m2/p.txt']);
  await ok(['fs', 'persist', '/m2/p.txt']);
  assert.is(readFileSync(join(ufs2, 'p.txt'), 'utf8'), 'persist me\n');
  // free drops the cached blocks; load brings them back.
  await ok(['fs', 'free', '/m2/p.txt']);
  const freed = async () => (await json<{ blocks: { locations: unknown[] }[] }>(['fs', 'location', '/m2/p.txt'])).blocks.every((b) => b.locations.length === 0);
  for (let i = 0; i < 100 && !(await freed()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(await freed(), 'blocks dropped after free');
  await ok(['fs', 'load', '/m2/p.txt']);
  const loaded = await json<{ blocks: { locations: unknown[] }[] }>(['fs', 'location', '/m2/p.txt']);
  assert.ok(loaded.blocks.every((b) => b.locations.length === 1), 'blocks cached after load');
  assert.is(await ok(['fs', 'cat', '/m2/p.txt']), 'persist me\n');
  await ok(['fs', 'unmount', '/m2']);
  assert.is((await tessera(['fs', 'test', '-e', '/m2'])).code, 1);
  assert.ok(existsSync(join(ufs2, 'p.txt')), 'unmount leaves the UFS alone');
});

test('SIGTERM stops tessera local cleanly with exit code 0', async () => {
  const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  server.kill('SIGTERM');
  assert.is(await exited, 0);
});

test.run();
