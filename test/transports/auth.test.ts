/**
 * Authentication in the first exchange: shared-secret token (HMAC challenge-response) and
 * mTLS. Every refused peer gets UNAUTHENTICATED before any call runs, and the server keeps
 * serving good clients afterwards.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode } from '../../core/errors.js';
import { MIB, PROTOCOL_VERSION } from '../../core/constants.js';
import { RpcClient, type RpcServer, tcpTransport, type Connection } from '../../transports/index.js';
import { type Frame, FrameKind, frame } from '../../transports/wire.js';
import { authProof } from '../../transports/rpc-common.js';
import { type ServerState, TestService, codeOf, makeCerts, makeServer, waitFor } from './fixtures.js';

const SECRET = 'correct horse battery staple';

/** A client speaking frames by hand over the Transport interface, to replay what it saw. */
async function rawClient(address: string): Promise<{ conn: Connection; frames: Frame[]; next(): Promise<Frame> }> {
  const conn = await tcpTransport.connect(address);
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  conn.onFrame = (f) => { frames.push(f); wake?.(); };
  conn.drainInbox();
  let read = 0;
  const next = async (): Promise<Frame> => {
    while (frames.length <= read) {
      if (!conn.isOpen) throw new Error('closed before the next frame');
      await new Promise<void>((r) => { wake = r; setTimeout(r, 50); });
    }
    return frames[read++]!;
  };
  return { conn, frames, next };
}

const helloFrame = (nonce: Buffer): Frame => frame(FrameKind.HELLO, 0, { magic: 'tessera', version: PROTOCOL_VERSION, windowBytes: MIB, maxFrameBytes: MIB, nonce });

const tokenSuite = suite('token auth');
let server: RpcServer;
let state: ServerState;
let address: string;

tokenSuite.before(async () => {
  ({ server, state } = makeServer({ auth: { mode: 'token', secret: SECRET } }));
  address = (await server.listen('tcp://127.0.0.1:0')).address;
});
tokenSuite.after(() => server.close());

const serverAlive = async (): Promise<void> => {
  const c = await RpcClient.connect(address, { auth: { token: SECRET } });
  assert.equal(await c.service(TestService).echo({ text: 'alive' }), { text: 'alive' });
  await c.close();
};

tokenSuite('a client with the right token connects and calls, and is known as token-authenticated', async () => {
  const c = await RpcClient.connect(address, { auth: { token: SECRET } });
  assert.equal(await c.service(TestService).echo({ text: 'hi' }), { text: 'hi' });
  await waitFor(() => state.peers.length > 0, 'the peer');
  assert.is(state.peers.at(-1)!.identity.method, 'token');
  await c.close();
});

tokenSuite('a client without a token is refused with UNAUTHENTICATED', async () => {
  assert.is(await codeOf(RpcClient.connect(address)), ErrorCode.UNAUTHENTICATED);
  await serverAlive();
});

tokenSuite('a client with a wrong token is refused with UNAUTHENTICATED', async () => {
  assert.is(await codeOf(RpcClient.connect(address, { auth: { token: 'wrong' } })), ErrorCode.UNAUTHENTICATED);
  await serverAlive();
});

tokenSuite('a proof recorded on one connection is refused on another (replayed challenge)', async () => {
  const nonce = Buffer.alloc(32, 7);
  const first = await rawClient(address);
  first.conn.send(helloFrame(nonce));
  const ch1 = await first.next();
  assert.is(ch1.kind, FrameKind.CHALLENGE);
  const proof = authProof(SECRET, 'client', (ch1.body as { nonce: Buffer }).nonce, nonce);
  first.conn.send(frame(FrameKind.AUTH, 0, { proof }));
  assert.is((await first.next()).kind, FrameKind.READY);
  first.conn.destroy();

  const second = await rawClient(address);
  second.conn.send(helloFrame(nonce)); // the same client nonce, the recorded proof
  const ch2 = await second.next();
  assert.is(ch2.kind, FrameKind.CHALLENGE);
  assert.not.equal((ch2.body as { nonce: Buffer }).nonce, (ch1.body as { nonce: Buffer }).nonce);
  second.conn.send(frame(FrameKind.AUTH, 0, { proof }));
  const answer = await second.next();
  assert.is(answer.kind, FrameKind.ERROR);
  assert.is((answer.body as { code: string }).code, ErrorCode.UNAUTHENTICATED);
  await second.conn.closed;
  await serverAlive();
});

tokenSuite('a call sent after HELLO but before AUTH is refused and never runs', async () => {
  const c = await rawClient(address);
  c.conn.send(helloFrame(Buffer.alloc(32, 1)));
  c.conn.send(frame(FrameKind.REQUEST, 1, ['test.pushMe', { n: 1 }]));
  await c.conn.closed;
  assert.ok(c.frames.some((f) => f.kind === FrameKind.ERROR && (f.body as { code: string }).code === ErrorCode.UNAUTHENTICATED));
  assert.not.ok(c.frames.some((f) => f.kind === FrameKind.PUSH || f.kind === FrameKind.RESPONSE), 'the call did not run');
  await serverAlive();
});

tokenSuite('a client refuses a server that cannot prove it knows the token', async () => {
  const fake = await tcpTransport.listen('tcp://127.0.0.1:0', (conn) => {
    conn.onFrame = (f) => {
      if (f.kind === FrameKind.HELLO) conn.send(frame(FrameKind.CHALLENGE, 0, { nonce: Buffer.alloc(32, 9) }));
      if (f.kind === FrameKind.AUTH) conn.send(frame(FrameKind.READY, 0, { windowBytes: MIB, maxFrameBytes: MIB, method: 'token', proof: Buffer.alloc(32) }));
    };
    conn.drainInbox();
  });
  assert.is(await codeOf(RpcClient.connect(fake.address, { auth: { token: SECRET } })), ErrorCode.UNAUTHENTICATED);
  await fake.close();
});

tokenSuite('a client with a token refuses a server that skips the challenge (auth none) with UNAUTHENTICATED', async () => {
  const { server: open } = makeServer({ auth: { mode: 'none' } });
  const { address: openAddress } = await open.listen('tcp://127.0.0.1:0');
  try {
    let failed: unknown;
    try {
      await RpcClient.connect(openAddress, { auth: { token: SECRET } });
    } catch (err) {
      failed = err;
    }
    assert.is((failed as { code?: string } | undefined)?.code, ErrorCode.UNAUTHENTICATED);
    assert.match((failed as Error).message, /did not ask for the token/);
    // The same server is fine for a client that has no token to protect.
    const c = await RpcClient.connect(openAddress);
    assert.equal(await c.service(TestService).echo({ text: 'open' }), { text: 'open' });
    await c.close();
  } finally {
    await open.close();
  }
});

tokenSuite('listening on a non-loopback address without configured auth is refused with CONFIG', async () => {
  const { server: s } = makeServer();
  assert.is(await codeOf(s.listen('tcp://0.0.0.0:0')), ErrorCode.CONFIG);
  await s.close();
});

tokenSuite.run();

const mtls = suite('mTLS auth');
const certs = makeCerts();
const servers: RpcServer[] = [];

for (const scheme of ['tls', 'wss'] as const) {
  let addr: string;
  let st: ServerState;
  mtls.before(async () => {
    const made = makeServer({ auth: { mode: 'mtls' }, tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true } });
    servers.push(made.server);
    st = made.state;
    addr = (await made.server.listen(scheme === 'tls' ? 'tls://127.0.0.1:0' : 'wss://127.0.0.1:0/rpc')).address;
  });
  const good = async (): Promise<void> => {
    const c = await RpcClient.connect(addr, { tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
    assert.equal(await c.service(TestService).echo({ text: 'tls' }), { text: 'tls' });
    await c.close();
  };

  mtls(`${scheme}: a client with a certificate from the CA connects, known by its subject`, async () => {
    await good();
    await waitFor(() => st.peers.length > 0, 'the peer');
    assert.equal({ ...st.peers.at(-1)!.identity, remoteAddress: '' }, { method: 'mtls', subject: 'client', remoteAddress: '' });
  });

  mtls(`${scheme}: a client without a certificate is refused with UNAUTHENTICATED`, async () => {
    assert.is(await codeOf(RpcClient.connect(addr, { tls: { ca: certs.ca } })), ErrorCode.UNAUTHENTICATED);
    await good();
  });

  mtls(`${scheme}: a client with a certificate from a foreign CA is refused with UNAUTHENTICATED`, async () => {
    assert.is(await codeOf(RpcClient.connect(addr, { tls: { ca: certs.ca, cert: certs.foreignCert, key: certs.foreignKey } })), ErrorCode.UNAUTHENTICATED);
    await good();
  });

  mtls(`${scheme}: a client that does not trust the server's CA fails to connect`, async () => {
    assert.is(await codeOf(RpcClient.connect(addr, { tls: { cert: certs.clientCert, key: certs.clientKey } })), ErrorCode.CONNECT_FAILED);
    await good();
  });
}

mtls('an mtls server without requestCert and a CA is refused with CONFIG', async () => {
  const { server: s } = makeServer({ auth: { mode: 'mtls' }, tls: { cert: certs.serverCert, key: certs.serverKey } });
  assert.is(await codeOf(s.listen('tls://127.0.0.1:0')), ErrorCode.CONFIG);
  await s.close();
});

mtls.after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  certs.cleanup();
});

mtls.run();
