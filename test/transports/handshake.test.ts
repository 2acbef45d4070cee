/**
 * What a peer that has not finished its handshake can make a server hold, over real sockets:
 * frames over TRANSPORT_HANDSHAKE_FRAME_BYTES are refused on their header (no payload buffer
 * is reserved), WebSocket messages likewise; a TLS handshake or HTTP upgrade that does not
 * finish is cut at handshakeTimeoutMs from the TCP accept, however slowly the peer trickles;
 * and connections still in it count against maxConnections. A good client keeps being
 * served throughout. Timing bounds are generous: the machine may be loaded.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode } from '../../core/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, KIB, MIB, TRANSPORT_HANDSHAKE_FRAME_BYTES } from '../../core/constants.js';
import { RpcClient, type RpcClientOptions, type RpcServer } from '../../transports/index.js';
import { FrameKind } from '../../transports/wire.js';
import { TestService, codeOf, makeCerts, makeServer, pattern, sleep, waitFor } from './fixtures.js';
import { type RawPeer, errorThenClose, header, hello, rawTcp, rawWs } from './raw-peer.js';

const SECRET = 'handshake test secret';
const certs = makeCerts();

/** A peer that speaks frames over a raw socket: what the server sent, and when it closed. */
/** Samples process memory every few ms until stopped; reports the peaks. */
function memorySampler(): { stop(): { arrayBuffersBytes: number; rssBytes: number } } {
  let arrayBuffersBytes = 0;
  let rssBytes = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    arrayBuffersBytes = Math.max(arrayBuffersBytes, m.arrayBuffers);
    rssBytes = Math.max(rssBytes, m.rss);
  };
  sample();
  const timer = setInterval(sample, 5);
  return { stop: () => { clearInterval(timer); sample(); return { arrayBuffersBytes, rssBytes }; } };
}

// ------------------------------------------------------------------ frames before the handshake

const PEERS = 200;

for (const kind of ['tcp', 'ws'] as const) {
  const t = suite(`a ${kind} server before the handshake`);
  let server: RpcServer;
  let address: string;
  let good: RpcClient;
  const raw = (): Promise<RawPeer> => (kind === 'tcp' ? rawTcp(address) : rawWs(address));

  t.before(async () => {
    // Default frame limit (16 MiB), and a handshake timeout long enough that only the frame
    // limit can explain a quick close.
    ({ server } = makeServer({ auth: { mode: 'token', secret: SECRET }, limits: { handshakeTimeoutMs: 60_000 } }));
    address = (await server.listen(kind === 'tcp' ? 'tcp://127.0.0.1:0' : 'ws://127.0.0.1:0/rpc')).address;
    good = await RpcClient.connect(address, { auth: { token: SECRET } });
  });
  t.after(async () => {
    await good.close();
    await server.close();
  });

  t(`a frame over TRANSPORT_HANDSHAKE_FRAME_BYTES before auth gets FRAME_TOO_LARGE and a close; after auth the normal limit applies`, async () => {
    const p = await raw();
    p.send(hello()); // token server: CHALLENGE, then waits for AUTH
    p.send(header(TRANSPORT_HANDSHAKE_FRAME_BYTES + 1, FrameKind.AUTH));
    assert.is(await errorThenClose(p, 10_000), ErrorCode.FRAME_TOO_LARGE);
    assert.ok(p.frames.some((f) => f.kind === FrameKind.CHALLENGE), 'the HELLO was answered first');
    // An authenticated client sends metadata frames far over the handshake limit.
    const text = 'z'.repeat(100 * KIB);
    assert.equal(await good.service(TestService).echo({ text }), { text });
  });

  t(`${PEERS} unauthenticated peers announcing frames just under maxFrameBytes are refused quickly, memory stays bounded, others keep working`, async () => {
    const s = good.service(TestService);
    const before = process.memoryUsage();
    const sampler = memorySampler();
    const started = performance.now();
    const peers = await Promise.all(Array.from({ length: PEERS }, async (_, i) => {
      const p = await raw();
      // Half announce the frame as their first bytes, half after a HELLO (in the token exchange).
      if (i % 2 === 1) p.send(hello());
      p.send(header(DEFAULT_MAX_FRAME_BYTES - 1, FrameKind.REQUEST, 1));
      return p;
    }));
    const during = s.echo({ text: 'during' });
    const codes = await Promise.all(peers.map((p) => errorThenClose(p, 30_000)));
    const elapsedMs = performance.now() - started;
    const peak = sampler.stop();
    assert.equal(await during, { text: 'during' });
    assert.ok(codes.every((c) => c === ErrorCode.FRAME_TOO_LARGE), `codes: ${[...new Set(codes)].join(', ')}`);
    assert.ok(elapsedMs < 30_000, `refused in ${Math.round(elapsedMs)} ms, well before handshakeTimeoutMs 60000`);
    const grownArrayBuffers = peak.arrayBuffersBytes - before.arrayBuffers;
    const grownRss = peak.rssBytes - before.rss;
    // Without the limit: PEERS x 16 MiB reserved (3.2 GiB of array buffers).
    assert.ok(grownArrayBuffers < 32 * MIB, `arrayBuffers grew by ${grownArrayBuffers} bytes`);
    assert.ok(grownRss < 256 * MIB, `rss grew by ${grownRss} bytes`);
    // The good client still calls and streams with frames of the normal size.
    const up = s.upload({ seed: 3 });
    await up.write(pattern(3, 0, 2 * MIB));
    assert.equal(await up.end(), { bytes: 2 * MIB, ok: true });
  });

  t.run();
}

/** Opens a WebSocket by hand on a raw socket (ws:// only), to send what no ws client would. */
async function rawUpgrade(address: string): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const m = /^ws:\/\/([^:]+):(\d+)(\/.*)$/.exec(address)!;
  const socket = net.connect({ host: m[1]!, port: Number(m[2]) });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise((r) => socket.once('connect', r));
  socket.write(`GET ${m[3]} HTTP/1.1\r\nHost: ${m[1]}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
    + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const received = (): Buffer => Buffer.concat(chunks);
  await waitFor(() => received().includes('\r\n\r\n'), 'the upgrade answer');
  assert.ok(received().toString('latin1').startsWith('HTTP/1.1 101'), received().toString('latin1').split('\r\n')[0]);
  return { socket, received, closed };
}

const wsMessages = suite('a ws server before the handshake, at the WebSocket message level');
let wsServer: RpcServer;
let wsAddress: string;
wsMessages.before(async () => {
  ({ server: wsServer } = makeServer({ auth: { mode: 'token', secret: SECRET }, limits: { handshakeTimeoutMs: 60_000 } }));
  wsAddress = (await wsServer.listen('ws://127.0.0.1:0/rpc')).address;
});
wsMessages.after(() => wsServer.close());

wsMessages('a WebSocket message announcing 1 MiB before auth is refused on its header (close 1009), not buffered', async () => {
  const { socket, received, closed } = await rawUpgrade(wsAddress);
  const upgradeBytes = received().length;
  // FIN + binary, masked, 64-bit length 1 MiB; then a few payload bytes and silence.
  const head = Buffer.alloc(14);
  head[0] = 0x82;
  head[1] = 0x80 | 127;
  head.writeUInt32BE(0, 2);
  head.writeUInt32BE(MIB, 6);
  randomBytes(4).copy(head, 10);
  socket.write(Buffer.concat([head, randomBytes(100)]));
  let timer: NodeJS.Timeout | undefined;
  const closedInTime = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => { timer = setTimeout(() => r(false), 10_000); })]);
  clearTimeout(timer);
  socket.destroy();
  assert.ok(closedInTime, 'closed well before handshakeTimeoutMs');
  const after = received().subarray(upgradeBytes);
  // The server's close frame: opcode 8, then the status code 1009 (message too big).
  assert.is(after[0], 0x88);
  assert.is(after.readUInt16BE(2), 1009);
  const c = await RpcClient.connect(wsAddress, { auth: { token: SECRET } });
  assert.equal(await c.service(TestService).echo({ text: 'fine' }), { text: 'fine' });
  await c.close();
});

wsMessages.run();

// ------------------------------------------------------------------ TLS handshake and HTTP upgrade

const HANDSHAKE_TIMEOUT_MS = 1000;
/** Slack over handshakeTimeoutMs for a loaded machine. */
const SLACK_MS = 4000;

/** The first bytes of a ClientHello: a record header announcing 200 bytes, and a few of them. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03]);
const PARTIAL_HTTP_HEADER = Buffer.from('GET /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');

type Stall = 'partial ClientHello' | 'partial HTTP header' | 'partial HTTP header after TLS';

/**
 * Connects to `port`, sends the start of `stall`, then either nothing more (silent) or one
 * more byte every 100 ms that never completes it (trickle). Resolves with the ms from connect
 * to the server's close.
 */
async function stalledPeer(port: number, stall: Stall, trickle: boolean, boundMs: number): Promise<number> {
  const overTls = stall === 'partial HTTP header after TLS';
  const socket: net.Socket = overTls
    ? tls.connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'localhost' })
    : net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise((r) => socket.once(overTls ? 'secureConnect' : 'connect', r));
  const started = performance.now();
  socket.write(stall === 'partial ClientHello' ? PARTIAL_CLIENT_HELLO : PARTIAL_HTTP_HEADER);
  const trickler = trickle ? setInterval(() => socket.write(stall === 'partial ClientHello' ? Buffer.from([0]) : Buffer.from('a')), 100) : undefined;
  let timer: NodeJS.Timeout | undefined;
  const closedInTime = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => { timer = setTimeout(() => r(false), boundMs); })]);
  clearTimeout(timer);
  clearInterval(trickler);
  const elapsedMs = performance.now() - started;
  socket.destroy();
  assert.ok(closedInTime, `the server dropped the peer within ${boundMs} ms`);
  return elapsedMs;
}

const schemes = [
  { scheme: 'tls', address: 'tls://127.0.0.1:0', stalls: ['partial ClientHello'] },
  { scheme: 'ws', address: 'ws://127.0.0.1:0/rpc', stalls: ['partial HTTP header'] },
  { scheme: 'wss', address: 'wss://127.0.0.1:0/rpc', stalls: ['partial ClientHello', 'partial HTTP header after TLS'] },
] as const;

const tlsOptions = { cert: certs.serverCert, key: certs.serverKey };
const clientOptions = (scheme: string): RpcClientOptions => (scheme === 'ws' ? {} : { tls: { ca: certs.ca } });
const portOf = (address: string): number => Number(/:(\d+)(\/|$)/.exec(address)![1]);

for (const { scheme, address: listenAddress, stalls } of schemes) {
  const t = suite(`a ${scheme} listener's handshake limits`);
  let server: RpcServer;
  let address: string;
  const served = async (): Promise<void> => {
    const c = await RpcClient.connect(address, clientOptions(scheme));
    assert.equal(await c.service(TestService).echo({ text: scheme }), { text: scheme });
    await c.close();
  };

  t.before(async () => {
    ({ server } = makeServer({ limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS }, ...(scheme === 'ws' ? {} : { tls: tlsOptions }) }));
    address = (await server.listen(listenAddress)).address;
  });
  t.after(() => server.close());

  for (const stall of stalls) {
    for (const trickle of [false, true]) {
      t(`a peer that sends a ${stall} and then ${trickle ? 'trickles a byte every 100 ms' : 'goes silent'} is dropped within handshakeTimeoutMs; others are served`, async () => {
        const before = await RpcClient.connect(address, clientOptions(scheme));
        const elapsedMs = await stalledPeer(portOf(address), stall, trickle, HANDSHAKE_TIMEOUT_MS + SLACK_MS);
        assert.ok(elapsedMs >= HANDSHAKE_TIMEOUT_MS - 100, `dropped after ${Math.round(elapsedMs)} ms: by the deadline, not for another reason`);
        assert.equal(await before.service(TestService).echo({ text: 'still' }), { text: 'still' });
        await before.close();
        await served();
      });
    }
  }

  t.run();
}

for (const { scheme, address: listenAddress, stalls } of schemes) {
  const t = suite(`a ${scheme} listener's maxConnections`);
  t(`connections still in their ${stalls[0]} count against maxConnections; one over it is dropped, and a freed slot serves again`, async () => {
    const { server } = makeServer({ limits: { maxConnections: 3, handshakeTimeoutMs: 60_000 }, ...(scheme === 'ws' ? {} : { tls: tlsOptions }) });
    const address = (await server.listen(listenAddress)).address;
    const good = await RpcClient.connect(address, clientOptions(scheme));
    const stalled = await Promise.all([0, 1].map(async () => {
      const s = net.connect({ host: '127.0.0.1', port: portOf(address) });
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      s.write(stalls[0] === 'partial ClientHello' ? PARTIAL_CLIENT_HELLO : PARTIAL_HTTP_HEADER);
      return s;
    }));
    await sleep(500); // the server has accepted them (same process, one turn of its loop)
    assert.is(await codeOf(RpcClient.connect(address, { ...clientOptions(scheme), reconnect: false })), ErrorCode.CONNECT_FAILED);
    assert.equal(await good.service(TestService).echo({ text: 'in' }), { text: 'in' });
    stalled[0]!.destroy();
    await waitFor(async () => {
      try {
        const c = await RpcClient.connect(address, clientOptions(scheme));
        await c.close();
        return true;
      } catch {
        return false;
      }
    }, 'a freed slot');
    stalled[1]!.destroy();
    await good.close();
    await server.close();
  });
  t.run();
}

const last = suite('handshake cleanup');
last('removes the test certificates', () => {
  certs.cleanup();
  assert.ok(true);
});
last.run();
