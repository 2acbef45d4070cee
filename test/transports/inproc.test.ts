/**
 * The in-process transport's simulation knobs: delay (order kept), drop, duplicate and
 * partition, all driven by a seeded PRNG so a run replays from its seed; and isolation
 * (bodies cloned through msgpack by default, by reference when asked).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode } from '../../core/errors.js';
import { type Connection, InprocNetwork, InprocTransport, RpcClient, defineService, method, seededRandom } from '../../transports/index.js';
import fc from 'fast-check';
import { FrameKind, frame, packBody, unpackBody } from '../../transports/wire.js';
import { TestService, codeOf, makeServer, waitFor } from './fixtures.js';

/** Sends `count` frames over a fresh pair on `net` and returns the ids that arrived, in order. */
async function sendFrames(net: InprocNetwork, name: string, count: number): Promise<number[]> {
  const t = new InprocTransport(net);
  const got: number[] = [];
  let server: Connection | undefined;
  const l = await t.listen(`inproc://${name}`, (c) => {
    server = c;
    c.onFrame = (f) => got.push(f.id);
    c.drainInbox();
  });
  const c = await t.connect(`inproc://${name}`);
  for (let i = 1; i <= count; i++) c.send(frame(FrameKind.CANCEL, i));
  // An orderly close travels behind every frame sent before it (faults spare it).
  await c.close();
  await waitFor(() => server !== undefined && !server.isOpen, 'the server side to see the close');
  await l.close();
  return got;
}

test('the same seed drops and duplicates the same frames; order is kept', async () => {
  const faults = { seed: 42, dropRate: 0.2, duplicateRate: 0.2 };
  const a = await sendFrames(new InprocNetwork({ faults }), 'seed-a', 500);
  const b = await sendFrames(new InprocNetwork({ faults }), 'seed-b', 500);
  const c = await sendFrames(new InprocNetwork({ faults: { ...faults, seed: 7 } }), 'seed-c', 500);
  assert.equal(a, b);
  assert.not.equal(a, c);
  assert.ok(new Set(a).size < 500, 'some frames were dropped');
  assert.ok(a.length > new Set(a).size, 'some frames arrived twice');
  for (let i = 1; i < a.length; i++) assert.ok(a[i]! >= a[i - 1]!, 'frames arrive in order');
});

test('delayed frames arrive in the order they were sent, and calls still work', async () => {
  const net = new InprocNetwork({ faults: { seed: 3, delayMs: [0, 5] } });
  const got = await sendFrames(net, 'delay', 200);
  assert.equal(got, Array.from({ length: 200 }, (_, i) => i + 1));
  const { server } = makeServer({ transport: new InprocTransport(net) });
  await server.listen('inproc://delay-rpc');
  const c = await RpcClient.connect('inproc://delay-rpc', { transport: new InprocTransport(net) });
  const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => c.service(TestService).echo({ text: String(i) })));
  assert.equal(rs.map((r) => r.text), Array.from({ length: 50 }, (_, i) => String(i)));
  await c.close();
  await server.close();
});

test('a network that drops every frame makes calls miss their deadline, and healing it lets them through', async () => {
  const net = new InprocNetwork();
  const t = new InprocTransport(net);
  const { server } = makeServer({ transport: t });
  await server.listen('inproc://lossy');
  const c = await RpcClient.connect('inproc://lossy', { transport: t });
  const s = c.service(TestService);
  net.setFaults({ dropRate: 1 });
  assert.is(await codeOf(s.echo({ text: 'lost' }, { deadlineMs: 100 })), ErrorCode.DEADLINE_EXCEEDED);
  net.setFaults({});
  assert.equal(await s.echo({ text: 'found' }), { text: 'found' });
  await c.close();
  await server.close();
});

test('a partition blocks frames and new connections between two endpoints until healed', async () => {
  const net = new InprocNetwork();
  const t = new InprocTransport(net);
  const { server } = makeServer({ transport: t });
  await server.listen('inproc://part-server');
  const c = await RpcClient.connect('inproc://part-server', { transport: t, localName: 'part-client' });
  const other = await RpcClient.connect('inproc://part-server', { transport: t, localName: 'other-client' });
  net.partition('part-client', 'part-server');
  assert.is(await codeOf(c.service(TestService).echo({ text: 'x' }, { deadlineMs: 100 })), ErrorCode.DEADLINE_EXCEEDED);
  assert.equal(await other.service(TestService).echo({ text: 'y' }), { text: 'y' }, 'other endpoints are not affected');
  assert.is(await codeOf(RpcClient.connect('inproc://part-server', { transport: t, localName: 'part-client' })), ErrorCode.CONNECT_FAILED);
  net.heal();
  assert.equal(await c.service(TestService).echo({ text: 'z' }), { text: 'z' });
  await Promise.all([c.close(), other.close()]);
  await server.close();
});

test('connecting to an inproc name nobody listens on fails with CONNECT_FAILED; a taken name cannot be listened on', async () => {
  const t = new InprocTransport(new InprocNetwork());
  assert.is(await codeOf(t.connect('inproc://nobody')), ErrorCode.CONNECT_FAILED);
  const l = await t.listen('inproc://taken', () => undefined);
  assert.is(await codeOf(t.listen('inproc://taken', () => undefined)), ErrorCode.CONNECT_FAILED);
  await l.close();
});

const Shared = defineService('shared', { get: method<null, { items: number[] }>() });

for (const isolation of ['clone', 'none'] as const) {
  test(`isolation '${isolation}' ${isolation === 'clone' ? 'gives the client a copy of the response' : 'hands the response over by reference'}`, async () => {
    const t = new InprocTransport(new InprocNetwork({ isolation }));
    const { server } = makeServer({ transport: t });
    const live = { items: [1, 2, 3] };
    server.register(Shared, { get: () => live });
    await server.listen('inproc://iso');
    const c = await RpcClient.connect('inproc://iso', { transport: t });
    const got = await c.service(Shared).get(null);
    assert.equal(got, { items: [1, 2, 3] });
    live.items.push(4);
    assert.is(got.items.length, isolation === 'clone' ? 3 : 4);
    await c.close();
    await server.close();
  });
}

test('isolation \'clone\' delivers exactly what a msgpack round trip over the wire would', async () => {
  const t = new InprocTransport(new InprocNetwork({ isolation: 'clone' }));
  const Echo = defineService('anyEcho', { echo: method<unknown, unknown>() });
  const { server } = makeServer({ transport: t });
  server.register(Echo, { echo: (v) => v });
  await server.listen('inproc://clone-prop');
  const c = await RpcClient.connect('inproc://clone-prop', { transport: t });
  const echo = c.service(Echo).echo;
  const value = fc.oneof(fc.jsonValue(), fc.date({ noInvalidDate: true }), fc.uint8Array().map((u) => Buffer.from(u)),
    fc.array(fc.oneof(fc.date({ noInvalidDate: true }), fc.string(), fc.double())), fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.constant(null))));
  await fc.assert(fc.asyncProperty(value, async (v) => {
    assert.equal(await echo(v), unpackBody(packBody(v)));
  }), { numRuns: 200 });
  await c.close();
  await server.close();
});

test('seededRandom gives the same sequence for the same seed, in [0, 1)', () => {
  const a = seededRandom(9);
  const b = seededRandom(9);
  for (let i = 0; i < 1000; i++) {
    const x = a();
    assert.is(x, b());
    assert.ok(x >= 0 && x < 1);
  }
});

test.run();
