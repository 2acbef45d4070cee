// Every write type × read type, files from 0 bytes to several blocks (1 MiB blocks), byte-exact,
// over the inproc transport (embedded()), over TCP and over TLS; positional and sequential
// reads; streams.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { embedded } from '../../index.js';
import { READ_TYPES, WRITE_TYPES, writeTypeCaches } from '../../client/options.js';
import type { FileSystem } from '../../client/file-system.js';
import { MIB, pattern, tcpCluster, type TcpCluster } from './cluster-fixture.js';
import { makeCerts, type TestCerts } from '../transports/fixtures.js';
import { connect } from '../../client/connect.js';
import { isTesseraError } from '../../core/errors.js';

const SIZES = [0, 1, 4096, MIB - 1, MIB, MIB + 1, 3 * MIB + 12345];

async function roundTrips(fs: FileSystem, tag: string): Promise<void> {
  let seed = 1;
  for (const writeType of WRITE_TYPES) {
    for (const size of SIZES) {
      const data = pattern(size, seed++);
      const path = `/ufs/${tag}/${writeType}/f-${size}`;
      const st = await fs.writeFile(path, data, { writeType, blockSize: MIB });
      assert.is(st.lengthBytes, size);
      assert.ok(st.completed);
      if (writeType === 'CACHE_THROUGH' || writeType === 'THROUGH') assert.is(st.persistenceState, 'PERSISTED', `${writeType} ${size}`);
      for (const readType of READ_TYPES) {
        const got = await fs.readFile(path, { readType });
        assert.ok(got.equals(data), `${tag} ${writeType} ${readType} ${size}: bytes differ`);
      }
      if (!writeTypeCaches(writeType) && size > 0) {
        // THROUGH cached nothing at write; the CACHE_PROMOTE reads above cached it from the UFS.
        const { blocks } = await fs.getBlockLocations(path);
        assert.ok(blocks.every((b) => b.locations.length > 0), `${writeType} ${size}: blocks cached after a caching read`);
      }
    }
  }
}

async function positionalAndSequential(fs: FileSystem, tag: string): Promise<void> {
  const data = pattern(2 * MIB + 777, 99);
  await fs.writeFile(`/${tag}/p`, data, { blockSize: MIB });
  const input = await fs.openFile(`/${tag}/p`);
  // Positional reads across a block boundary do not move the position.
  const buf = Buffer.alloc(10_000);
  assert.is(await input.read(buf, MIB - 5000), 10_000);
  assert.ok(buf.equals(data.subarray(MIB - 5000, MIB + 5000)));
  assert.is(input.position, 0);
  // Sequential reads in odd sizes reassemble the file.
  const parts: Buffer[] = [];
  for (;;) {
    const b = Buffer.alloc(300_001);
    const n = await input.read(b);
    if (n === 0) break;
    parts.push(b.subarray(0, n));
  }
  assert.ok(Buffer.concat(parts).equals(data));
  input.seek(data.length - 10);
  const tail = Buffer.alloc(100);
  assert.is(await input.read(tail), 10);
  assert.ok(tail.subarray(0, 10).equals(data.subarray(data.length - 10)));
  await input.close();
}

async function streams(fs: FileSystem, tag: string): Promise<void> {
  const data = pattern(3 * MIB + 5, 7);
  const chunks = [];
  for (let i = 0; i < data.length; i += 65_536) chunks.push(data.subarray(i, i + 65_536));
  await pipeline(Readable.from(chunks), fs.createWriteStream(`/${tag}/s`, { blockSize: MIB }));
  const got: Buffer[] = [];
  await pipeline(fs.createReadStream(`/${tag}/s`), new Writable({ write(c, _e, cb) { got.push(Buffer.from(c)); cb(); } }));
  assert.ok(Buffer.concat(got).equals(data));
  const part: Buffer[] = [];
  for await (const c of fs.createReadStream(`/${tag}/s`, { start: MIB - 3, end: 2 * MIB + 3 })) part.push(Buffer.from(c as Uint8Array));
  assert.ok(Buffer.concat(part).equals(data.subarray(MIB - 3, 2 * MIB + 3)));
}

const inproc = suite<{ fs?: FileSystem & { cluster: unknown }; dir?: string }>('inproc (embedded)');
inproc.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'tessera-rt-'));
  ctx.fs = await embedded({ workers: 2, ufsUri: ctx.dir, heartbeatIntervalMs: 100 });
});
inproc.after(async (ctx) => {
  await ctx.fs?.close();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});
inproc('every write type × read type round-trips files of 0 bytes to several blocks over inproc', async (ctx) => { await roundTrips(ctx.fs!, 'inproc'); });
inproc('positional and sequential reads return the right bytes over inproc', async (ctx) => { await positionalAndSequential(ctx.fs!, 'inproc'); });
inproc('createWriteStream and createReadStream round-trip a multi-block file over inproc', async (ctx) => { await streams(ctx.fs!, 'inproc'); });
inproc.run();

const tcp = suite<{ c?: TcpCluster }>('tcp');
tcp.before(async (ctx) => { ctx.c = await tcpCluster({ workers: 2 }); });
tcp.after(async (ctx) => { await ctx.c?.close(); });
tcp('every write type × read type round-trips files of 0 bytes to several blocks over TCP', async (ctx) => { await roundTrips(ctx.c!.fs, 'tcp'); });
tcp('positional and sequential reads return the right bytes over TCP', async (ctx) => { await positionalAndSequential(ctx.c!.fs, 'tcp'); });
tcp('createWriteStream and createReadStream round-trip a multi-block file over TCP', async (ctx) => { await streams(ctx.c!.fs, 'tcp'); });
tcp('1200 small files in flight at once (more calls and streams than a connection allows) all round-trip', async (ctx) => {
  const fs = ctx.c!.fs;
  await Promise.all(Array.from({ length: 1200 }, async (_, i) => {
    const data = pattern(4096 + i, 1000 + i);
    await fs.writeFile(`/many/f${i}`, data);
    assert.ok((await fs.readFile(`/many/f${i}`)).equals(data), `file ${i}`);
  }));
  assert.is((await fs.listStatus('/many')).length, 1200);
});
tcp('a NO_CACHE read of a THROUGH file caches nothing; a CACHE read caches every block', async (ctx) => {
  const fs = ctx.c!.fs;
  const data = pattern(2 * MIB + 1, 21);
  await fs.writeFile('/ufs/nocache/f', data, { writeType: 'THROUGH', blockSize: MIB });
  const cached = async () => (await fs.getBlockLocations('/ufs/nocache/f')).blocks.filter((b) => b.locations.length > 0).length;
  assert.is(await cached(), 0, 'THROUGH caches nothing');
  assert.ok((await fs.readFile('/ufs/nocache/f', { readType: 'NO_CACHE' })).equals(data));
  assert.is(await cached(), 0, 'NO_CACHE read caches nothing');
  assert.ok((await fs.readFile('/ufs/nocache/f', { readType: 'CACHE' })).equals(data));
  assert.is(await cached(), 3, 'CACHE read cached every block');
});
tcp('ASYNC_THROUGH files reach the UFS after close', async (ctx) => {
  const fs = ctx.c!.fs;
  const data = pattern(MIB + 3, 5);
  await fs.writeFile('/ufs/async/a', data, { writeType: 'ASYNC_THROUGH', blockSize: MIB });
  const st = await fs.persist('/ufs/async/a', { wait: true, timeoutMs: 30_000 }).catch(async () => fs.getStatus('/ufs/async/a'));
  assert.is(st.persistenceState, 'PERSISTED');
  const { readFileSync } = await import('node:fs');
  assert.ok(readFileSync(join(ctx.c!.ufsDir, 'async', 'a')).equals(data));
});
tcp.run();

const tls = suite<{ c?: TcpCluster; certs?: TestCerts }>('tls');
tls.before(async (ctx) => {
  ctx.certs = makeCerts();
  ctx.c = await tcpCluster({ workers: 1, tls: { cert: ctx.certs.serverCert, key: ctx.certs.serverKey, ca: ctx.certs.ca } });
});
tls.after(async (ctx) => { await ctx.c?.close(); ctx.certs?.cleanup(); });
tls('a client given the CA writes and reads over tls:// to the master and the worker, byte-exact', async (ctx) => {
  const fs = ctx.c!.fs;
  assert.match(ctx.c!.master.address, /^tls:\/\//);
  assert.ok((await fs.getWorkers()).every((w) => w.address.startsWith('tls://')), 'the worker serves tls://');
  const data = pattern(3 * MIB + 17, 61);
  await fs.writeFile('/tls/f', data, { blockSize: MIB });
  assert.ok((await fs.readFile('/tls/f')).equals(data));
  await positionalAndSequential(fs, 'tls');
  await streams(fs, 'tls');
});
tls('a client without the CA is refused with TESSERA_ERR_CONNECT_FAILED naming the certificate problem', async (ctx) => {
  try {
    const fs = await connect(ctx.c!.master.address, { connectTimeoutMs: 5000 });
    await fs.close();
    assert.unreachable('the handshake should fail');
  } catch (err) {
    assert.ok(isTesseraError(err, 'TESSERA_ERR_CONNECT_FAILED'), `got ${String(err)}`);
    assert.match((err as Error).message, /certificate/);
  }
});
tls.run();
