/**
 * Limits and the connection lifecycle: connections per listener, open streams, option checks
 * that name the option, and close/destroy being idempotent with the first reason winning.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, TesseraError } from '../../core/errors.js';
import * as net from 'node:net';
import { KIB, MIB, PROTOCOL_VERSION } from '../../core/constants.js';
import { type Connection, RpcClient, RpcServer, transportFor } from '../../transports/index.js';
import { type Frame, FrameKind, FrameParser, encodeFrames, frame } from '../../transports/wire.js';
import { TestService, checkPattern, codeOf, makeServer, pattern, sleep, waitFor } from './fixtures.js';

test('a listener refuses connections beyond maxConnections with LIMIT_EXCEEDED; the others keep working', async () => {
  const { server } = makeServer({ limits: { maxConnections: 2 } });
  const { address } = await server.listen('tcp://127.0.0.1:0');
  const a = await RpcClient.connect(address);
  const b = await RpcClient.connect(address);
  assert.is(await codeOf(RpcClient.connect(address)), ErrorCode.LIMIT_EXCEEDED);
  assert.equal(await a.service(TestService).echo({ text: 'a' }), { text: 'a' });
  await b.close();
  await waitFor(async () => (await codeOf(RpcClient.connect(address).then((c) => c.close()))) === 'resolved', 'a free slot');
  await a.close();
  await server.close();
});

test('an idle connection closes within idleTimeoutMs of its last call, plus a bounded slack', async () => {
  const idleMs = 2000;
  const { server } = makeServer({ limits: { idleTimeoutMs: idleMs } });
  const { address } = await server.listen('tcp://127.0.0.1:0');
  const c = await RpcClient.connect(address, { reconnect: false });
  // Call just after where a check every idleTimeoutMs would fall: such a check would then
  // close only two periods later (up to 2x idleTimeoutMs).
  await sleep(idleMs * 1.1);
  const closed = new Promise<number>((r) => c.once('disconnect', () => r(performance.now())));
  await c.service(TestService).echo({ text: 'last' });
  const lastCallMs = performance.now();
  const idleForMs = (await closed) - lastCallMs;
  assert.ok(idleForMs >= idleMs - 50, `closed after ${Math.round(idleForMs)} ms of idleness, not before idleTimeoutMs ${idleMs}`);
  // The bound: idleTimeoutMs * (1 + 2 / TRANSPORT_IDLE_CHECKS_PER_TIMEOUT), plus timer lateness.
  assert.ok(idleForMs < idleMs * 1.5, `closed after ${Math.round(idleForMs)} ms of idleness (idleTimeoutMs ${idleMs})`);
  assert.is(c.connection!.closeReason!.code, ErrorCode.IDLE_TIMEOUT);
  await c.close();
  await server.close();
});

test('streams beyond maxOpenStreams fail with LIMIT_EXCEEDED while unary calls still run', async () => {
  const { server } = makeServer({ limits: { maxOpenStreams: 1 } });
  const { address } = await server.listen('tcp://127.0.0.1:0');
  const c = await RpcClient.connect(address);
  const s = c.service(TestService);
  const first = s.stall({ tag: 'streams-1' });
  await sleep(30);
  const second = s.stall({ tag: 'streams-2' });
  assert.is(await codeOf(second.result), ErrorCode.LIMIT_EXCEEDED);
  assert.equal(await s.echo({ text: 'unary' }), { text: 'unary' });
  first.cancel();
  await c.close();
  await server.close();
});

test('the client refuses more calls than its own maxInFlightCalls with LIMIT_EXCEEDED', async () => {
  const { server } = makeServer();
  const { address } = await server.listen('inproc://client-limit');
  const c = await RpcClient.connect(address, { limits: { maxInFlightCalls: 1 } });
  const s = c.service(TestService);
  const a = s.sleep({ ms: 100, tag: 'cl-1' });
  assert.is(await codeOf(s.echo({ text: 'x' })), ErrorCode.LIMIT_EXCEEDED);
  await a;
  await c.close();
  await server.close();
});

test('bad options are refused with INVALID_ARGUMENT naming the option', () => {
  const cases: [() => unknown, string][] = [
    [() => new RpcServer({ limits: { maxFrameBytes: 10 } }), 'limits.maxFrameBytes'],
    [() => new RpcServer({ limits: { streamChunkBytes: 2 ** 30 } }), 'limits.streamChunkBytes'],
    [() => new RpcServer({ limits: { idleTimeoutMs: -1 } }), 'limits.idleTimeoutMs'],
    [() => new RpcServer({ auth: { mode: 'token', secret: '' } }), 'auth.secret'],
  ];
  for (const [fn, name] of cases) {
    try {
      fn();
      assert.unreachable(name);
    } catch (err) {
      assert.is((err as TesseraError).code, ErrorCode.INVALID_ARGUMENT);
      assert.ok((err as Error).message.includes(name), (err as Error).message);
    }
  }
});

test('a call with an invalid deadline or sendNow is refused with INVALID_ARGUMENT', async () => {
  const { server } = makeServer();
  const { address } = await server.listen('inproc://bad-deadline');
  const c = await RpcClient.connect(address);
  assert.throws(() => c.service(TestService).echo({ text: 'x' }, { deadlineMs: -5 }), (e: unknown) => (e as TesseraError).code === ErrorCode.INVALID_ARGUMENT);
  assert.throws(() => c.service(TestService).echo({ text: 'x' }, { sendNow: 'yes' as never }), (e: unknown) => (e as TesseraError).code === ErrorCode.INVALID_ARGUMENT);
  assert.equal(await c.service(TestService).echo({ text: 'still usable' }, { sendNow: true }), { text: 'still usable' });
  await c.close();
  await server.close();
});

for (const address of ['inproc://big', 'tcp://127.0.0.1:0', 'ws://127.0.0.1:0/big']) {
  const scheme = address.split(':')[0];
  test(`${scheme}: a message over the peer's frame limit fails only its call with FRAME_TOO_LARGE; stream chunks are cut to the limit`, async () => {
    const { server } = makeServer({ limits: { maxFrameBytes: 64 * KIB, streamChunkBytes: 64 * KIB } });
    const l = await server.listen(address);
    const c = await RpcClient.connect(l.address, { limits: { maxFrameBytes: 32 * KIB } });
    const s = c.service(TestService);
    // Request over the server's limit: refused before it leaves the client.
    assert.is(await codeOf(s.echo({ text: 'y'.repeat(70 * KIB) })), ErrorCode.FRAME_TOO_LARGE);
    // Response over the client's limit: the server turns it into a failure of that call.
    assert.is(await codeOf(s.big({ bytes: 40 * KIB })), ErrorCode.FRAME_TOO_LARGE);
    assert.equal(await s.big({ bytes: 20 * KIB }), { text: 'x'.repeat(20 * KIB) });
    // Uploads in 1 MiB writes and downloads of 64 KiB server chunks fit the limits of each side.
    const up = s.upload({ seed: 1 });
    await up.write(pattern(1, 0, 300 * KIB));
    assert.equal(await up.end(), { bytes: 300 * KIB, ok: true });
    const dl = s.download({ totalBytes: 200 * KIB, chunkBytes: 64 * KIB, seed: 2 });
    let off = 0;
    for await (const chunk of dl) {
      assert.ok(chunk.byteLength <= 32 * KIB, `chunk of ${chunk.byteLength} bytes`);
      assert.ok(checkPattern(2, off, chunk));
      off += chunk.byteLength;
    }
    assert.is(off, 200 * KIB);
    assert.equal(await s.echo({ text: 'fine' }), { text: 'fine' });
    assert.ok(c.connected, 'the connection survived');
    await c.close();
    await server.close();
  });
}

/** A raw TCP client past the handshake that can stop reading (pause) without the server knowing. */
async function rawTcpClient(address: string): Promise<{ socket: net.Socket; frames: Frame[] }> {
  const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(address)!;
  const socket = net.connect({ host: m[1]!, port: Number(m[2]) });
  await new Promise((r) => socket.once('connect', r));
  const frames: Frame[] = [];
  const parser = new FrameParser(64 * MIB);
  socket.on('data', (d: Buffer) => parser.push(d, (f) => frames.push(f)));
  socket.on('error', () => undefined);
  socket.write(encodeFrames([frame(FrameKind.HELLO, 0, { magic: 'tessera', version: PROTOCOL_VERSION, windowBytes: MIB, maxFrameBytes: 64 * MIB, nonce: Buffer.alloc(32) })], MIB));
  await waitFor(() => frames.some((f) => f.kind === FrameKind.READY), 'READY');
  return { socket, frames };
}

const bigRequests = (from: number, count: number): Buffer =>
  encodeFrames(Array.from({ length: count }, (_, i) => frame(FrameKind.REQUEST, from + i, ['test.big', { bytes: MIB }])), MIB);

/** Waits until `read()` stops changing for a while, and returns its last value. */
async function settled(read: () => number): Promise<number> {
  let last = -1;
  await waitFor(async () => {
    const v = read();
    if (v === last) return true;
    last = v;
    await sleep(400);
    return false;
  }, 'the value to settle');
  return last;
}

test('a client that stops reading has its new calls held back; when it reads again every answer arrives', async () => {
  const { server, state } = makeServer({ limits: { maxUnsentBytes: 2 * MIB } });
  const { address } = await server.listen('tcp://127.0.0.1:0');
  const { socket, frames } = await rawTcpClient(address);
  socket.pause();
  const calls = 60; // 60 MiB of answers: more than socket buffers and maxUnsentBytes together
  socket.write(bigRequests(1, calls));
  const ran = await settled(() => state.bigCalls);
  assert.ok(ran < calls, `only some calls ran while the client did not read (${ran} of ${calls})`);
  socket.resume();
  await waitFor(() => frames.filter((f) => f.kind === FrameKind.RESPONSE).length === calls, 'every answer');
  assert.is(state.bigCalls, calls);
  socket.destroy();
  await server.close();
});

test('a client that floods calls without reading is disconnected with LIMIT_EXCEEDED and the server stays bounded', async () => {
  const { server, state } = makeServer({ limits: { maxUnsentBytes: 2 * MIB, maxInFlightCalls: 16 } });
  const { address } = await server.listen('tcp://127.0.0.1:0');
  let reason: TesseraError | undefined;
  server.on('disconnect', (_p: unknown, r: TesseraError) => { reason = r; });
  const { socket } = await rawTcpClient(address);
  socket.pause();
  for (let i = 0; i < 10; i++) socket.write(bigRequests(1 + i * 100, 100));
  await waitFor(() => reason !== undefined, 'the server to drop the client');
  assert.is(reason!.code, ErrorCode.LIMIT_EXCEEDED);
  const ran = await settled(() => state.bigCalls);
  assert.ok(ran < 1000, `${ran} of 1000 calls ran`);
  socket.destroy();
  const good = await RpcClient.connect(address);
  assert.equal(await good.service(TestService).echo({ text: 'ok' }), { text: 'ok' });
  await good.close();
  await server.close();
});

for (const address of ['inproc://lifecycle', 'tcp://127.0.0.1:0', 'ws://127.0.0.1:0/l']) {
  const scheme = address.split(':')[0];
  test(`${scheme}: close and destroy are idempotent, the first reason wins, 'close' fires once on each side`, async () => {
    let serverSide: Connection | undefined;
    const l = await transportFor(address).listen(address, (c) => { serverSide = c; c.onFrame = () => undefined; c.drainInbox(); });
    const c = await transportFor(address).connect(l.address);
    await waitFor(() => serverSide !== undefined, 'the server side');
    let closes = 0;
    let serverCloses = 0;
    c.on('close', () => closes++);
    serverSide!.on('close', () => serverCloses++);
    const first = new TesseraError(ErrorCode.CANCELLED, 'first reason');
    const p1 = c.close(first);
    const p2 = c.close(new TesseraError(ErrorCode.REMOTE, 'second reason'));
    c.destroy(new TesseraError(ErrorCode.REMOTE, 'third reason'));
    await Promise.all([p1, p2]);
    assert.is(c.closeReason, first);
    assert.is(await c.closed, first);
    c.send(frame(FrameKind.CANCEL, 1)); // dropped, no throw
    await waitFor(() => serverCloses === 1, 'the server side to close');
    assert.is(serverSide!.closeReason!.code, ErrorCode.CONNECTION_CLOSED);
    await sleep(20);
    assert.is(closes, 1);
    assert.is(serverCloses, 1);
    assert.not.ok(c.isOpen);
    await l.close();
  });

  test(`${scheme}: frames sent before an orderly close arrive before the close`, async () => {
    const got: number[] = [];
    let serverSide: Connection | undefined;
    const l = await transportFor(address).listen(address, (c) => { serverSide = c; c.onFrame = (f) => got.push(f.id); c.drainInbox(); });
    const c = await transportFor(address).connect(l.address, { maxFrameBytes: 64 * KIB });
    for (let i = 1; i <= 100; i++) c.send(frame(FrameKind.CANCEL, i));
    await c.close();
    await waitFor(() => serverSide !== undefined && !serverSide.isOpen, 'the server side to close');
    assert.equal(got, Array.from({ length: 100 }, (_, i) => i + 1));
    await l.close();
  });
}

test.run();
