/**
 * A live TCP and WebSocket server against peers that misbehave at the byte level: oversized
 * lengths, garbage, unknown message kinds, a wrong protocol version, calls before the
 * handshake, a partial header then silence. Each gets an ERROR frame naming the problem and
 * loses its connection within the timeout; a well-behaved client on the same server keeps
 * working throughout, and memory does not grow with what the peers claim.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { ErrorCode } from '../../core/errors.js';
import { KIB, MIB, PROTOCOL_VERSION } from '../../core/constants.js';
import { RpcClient, type RpcServer } from '../../transports/index.js';
import { FRAME_HEADER_BYTES, type Frame, FrameKind, FrameParser, encodeFrames, frame } from '../../transports/wire.js';
import { TestService, makeServer } from './fixtures.js';
import { type RawPeer, errorThenClose, header, hello, rawTcp, rawWs } from './raw-peer.js';

const MAX_FRAME_BYTES = 64 * KIB;
const HANDSHAKE_TIMEOUT_MS = 1000;
const IDLE_TIMEOUT_MS = 1000;
const WINDOW_BYTES = 256 * KIB;

/** A peer speaking raw bytes: collects the frames the server sends and notes the close. */
for (const kind of ['tcp', 'ws'] as const) {
  const t = suite(`a live ${kind} server against hostile peers`);
  let server: RpcServer;
  let address: string;
  let good: RpcClient;
  const raw = (): Promise<RawPeer> => (kind === 'tcp' ? rawTcp(address) : rawWs(address));
  const stillServes = async (): Promise<void> => {
    assert.equal(await good.service(TestService).echo({ text: 'ok' }), { text: 'ok' });
  };

  t.before(async () => {
    ({ server } = makeServer({
      limits: { maxFrameBytes: MAX_FRAME_BYTES, streamChunkBytes: 32 * KIB, streamWindowBytes: WINDOW_BYTES, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS },
    }));
    address = (await server.listen(kind === 'tcp' ? 'tcp://127.0.0.1:0' : 'ws://127.0.0.1:0/rpc')).address;
    // The good client reconnects by itself if the short idle timeout closed it between tests.
    good = await RpcClient.connect(address);
  });
  t.after(async () => {
    await good.close();
    await server.close();
  });

  t('a frame header announcing more than maxFrameBytes gets FRAME_TOO_LARGE and a close', async () => {
    const p = await raw();
    p.send(hello());
    p.send(header(0xffff_fff0, FrameKind.REQUEST, 1));
    assert.is(await errorThenClose(p), ErrorCode.FRAME_TOO_LARGE);
    await stillServes();
  });

  t('claims of huge frames do not make the server allocate them', async () => {
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 20; i++) {
      const p = await raw();
      p.send(hello());
      p.send(header(0xffff_ffff, FrameKind.DATA, 1));
      await errorThenClose(p);
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 32 * MIB, `arrayBuffers grew by ${grown} bytes`);
    await stillServes();
  });

  t('garbage bytes get a protocol error and a close', async () => {
    const p = await raw();
    p.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const code = await errorThenClose(p);
    assert.ok(code === ErrorCode.FRAME_TOO_LARGE || code === ErrorCode.UNKNOWN_MESSAGE || code === ErrorCode.PROTOCOL, String(code));
    await stillServes();
  });

  t('an unknown message kind gets UNKNOWN_MESSAGE and a close', async () => {
    const p = await raw();
    p.send(hello());
    p.send(header(0, 0x7f, 0));
    assert.is(await errorThenClose(p), ErrorCode.UNKNOWN_MESSAGE);
    await stillServes();
  });

  t('a HELLO with another protocol version gets PROTOCOL_VERSION and a close', async () => {
    const p = await raw();
    p.send(hello(PROTOCOL_VERSION + 41));
    assert.is(await errorThenClose(p), ErrorCode.PROTOCOL_VERSION);
    await stillServes();
  });

  t('a call before the handshake gets UNAUTHENTICATED and a close, and never runs', async () => {
    const p = await raw();
    p.send(encodeFrames([frame(FrameKind.REQUEST, 1, ['test.pushMe', { n: 1 }])], MAX_FRAME_BYTES));
    assert.is(await errorThenClose(p), ErrorCode.UNAUTHENTICATED);
    assert.not.ok(p.frames.some((f) => f.kind === FrameKind.PUSH || f.kind === FrameKind.RESPONSE));
    await stillServes();
  });

  t('a partial header then silence gets HANDSHAKE_TIMEOUT and a close', async () => {
    const p = await raw();
    p.send(Buffer.from([1, 0, 0]));
    assert.is(await errorThenClose(p), ErrorCode.HANDSHAKE_TIMEOUT);
    await stillServes();
  });

  t('after the handshake, a partial header then silence gets IDLE_TIMEOUT and a close', async () => {
    const p = await raw();
    p.send(hello());
    p.send(header(100, FrameKind.REQUEST, 1).subarray(0, 5));
    assert.is(await errorThenClose(p), ErrorCode.IDLE_TIMEOUT);
    assert.ok(p.frames.some((f) => f.kind === FrameKind.READY), 'the handshake had finished');
    await stillServes();
  });

  t('DATA for a call that takes no bytes gets a protocol error and a close', async () => {
    const p = await raw();
    p.send(hello());
    const data = { kind: FrameKind.DATA, flags: 0, id: 4, body: undefined, bytes: new Uint8Array(10) } as const;
    p.send(encodeFrames([frame(FrameKind.REQUEST, 4, ['test.sleep', { ms: 5000, tag: `hostile-${kind}` }]), data], MAX_FRAME_BYTES));
    assert.is(await errorThenClose(p), ErrorCode.PROTOCOL);
    await stillServes();
  });

  t('an upload that sends more than its credit window gets a protocol error and a close', async () => {
    const p = await raw();
    p.send(hello());
    p.send(encodeFrames([frame(FrameKind.REQUEST, 5, ['test.stall', { tag: `overrun-${kind}` }])], MAX_FRAME_BYTES));
    const chunk = { kind: FrameKind.DATA, flags: 0, id: 5, body: undefined, bytes: new Uint8Array(32 * KIB) } as const;
    for (let sent = 0; sent <= WINDOW_BYTES; sent += 32 * KIB) p.send(encodeFrames([chunk], MAX_FRAME_BYTES));
    assert.is(await errorThenClose(p), ErrorCode.PROTOCOL);
    await stillServes();
  });

  if (kind === 'ws') {
    t('a WebSocket message over the frame limit is refused before it is buffered (close code 1009)', async () => {
      const p = await raw();
      p.send(hello());
      p.send(new Uint8Array(MAX_FRAME_BYTES + FRAME_HEADER_BYTES + 1));
      await errorThenClose(p);
      assert.is(p.wsCloseCode, 1009);
      await stillServes();
    });

    t('a text WebSocket message gets a protocol error and a close', async () => {
      const ws = new WebSocket(address, { perMessageDeflate: false });
      await new Promise((r) => ws.once('open', r));
      const frames: Frame[] = [];
      const parser = new FrameParser(MIB);
      ws.on('message', (d: Buffer) => parser.push(d, (f) => frames.push(f)));
      ws.send('hello');
      await new Promise((r) => ws.once('close', r));
      assert.is((frames.find((f) => f.kind === FrameKind.ERROR)?.body as { code: string }).code, ErrorCode.PROTOCOL);
      await stillServes();
    });
  }

  t.run();
}
