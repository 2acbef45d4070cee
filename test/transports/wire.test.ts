/**
 * The frame codec and the stream parser: round trips of every message kind, split anywhere;
 * random bytes give frames or a typed protocol error, never anything else; limits are
 * checked on the header, before any payload is buffered. Also address parsing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ErrorCode, TesseraError } from '../../core/errors.js';
import { MIB } from '../../core/constants.js';
import { FRAME_HEADER_BYTES, FLAG_END, type Frame, FrameKind, FrameParser, callOrder, encodeFrames } from '../../transports/wire.js';
import { formatAddress, isLoopbackAddress, parseAddress } from '../../transports/address.js';

const MAX = 1 * MIB;
const PROTOCOL_CODES: string[] = [ErrorCode.FRAME_TOO_LARGE, ErrorCode.UNKNOWN_MESSAGE, ErrorCode.PROTOCOL];

// Bodies are what msgpack round-trips exactly: no undefined inside, bytes as Buffer.
const bytesArb = fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u));
const valueArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true }), fc.string({ maxLength: 20 }), bytesArb,
    fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 4 })),
})).value;
const idArb = fc.nat({ max: 0xffff_ffff });
const nonceArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((u) => Buffer.from(u));

const mk = (kind: Frame['kind'], id: number, body: unknown): Frame => ({ kind, flags: 0, id, body, bytes: undefined });

/** One arbitrary per message kind, with the body that kind carries. */
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ version: fc.nat(9), windowBytes: fc.nat(), maxFrameBytes: fc.nat(), nonce: nonceArb }).map((b) => mk(FrameKind.HELLO, 0, { magic: 'tessera', ...b })),
  nonceArb.map((nonce) => mk(FrameKind.CHALLENGE, 0, { nonce })),
  nonceArb.map((proof) => mk(FrameKind.AUTH, 0, { proof })),
  fc.record({ windowBytes: fc.nat(), maxFrameBytes: fc.nat(), method: fc.constantFrom('none', 'token', 'mtls') }).map((b) => mk(FrameKind.READY, 0, b)),
  fc.record({ code: fc.constantFrom(...Object.values(ErrorCode)), message: fc.string() }).map((b) => mk(FrameKind.ERROR, 0, b)),
  fc.tuple(idArb, fc.string({ maxLength: 30 }), valueArb, fc.option(fc.nat(), { nil: undefined }))
    .map(([id, key, req, d]) => mk(FrameKind.REQUEST, id, d === undefined ? [key, req] : [key, req, d])),
  fc.tuple(idArb, valueArb).map(([id, v]) => mk(FrameKind.RESPONSE, id, v)),
  fc.tuple(idArb, fc.record({ code: fc.string(), message: fc.string() })).map(([id, b]) => mk(FrameKind.FAILURE, id, b)),
  idArb.map((id) => mk(FrameKind.CANCEL, id, undefined)),
  fc.tuple(idArb, fc.uint8Array({ maxLength: 40_000 }), fc.boolean())
    .map(([id, u, end]): Frame => ({ kind: FrameKind.DATA, flags: end ? FLAG_END : 0, id, body: undefined, bytes: Buffer.from(u) })),
  fc.tuple(idArb, fc.integer({ min: 1, max: 2 ** 31 })).map(([id, n]) => mk(FrameKind.CREDIT, id, n)),
  fc.tuple(fc.string({ maxLength: 30 }), valueArb).map(([k, v]) => mk(FrameKind.PUSH, 0, [k, v])),
);

/** Cuts `bytes` at the given points (sorted, deduplicated) into chunks. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) { out.push(bytes.subarray(prev, p)); prev = p; }
  out.push(bytes.subarray(prev));
  return out;
}

/** A deep copy with plain prototypes (fast-check makes null-prototype records) and Buffers for bytes. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Joins DATA pieces: consecutive DATA frames of one id, all but the last without END. */
function joinData(frames: Frame[]): Frame[] {
  const out: Frame[] = [];
  for (const f of frames) {
    const prev = out.at(-1);
    if (f.kind === FrameKind.DATA && prev && prev.kind === FrameKind.DATA && prev.id === f.id && prev.flags === 0) {
      out[out.length - 1] = { ...prev, flags: f.flags, bytes: Buffer.concat([prev.bytes!, f.bytes!]) };
    } else {
      out.push(f);
    }
  }
  return out;
}

function normalize(f: Frame): unknown {
  return { kind: f.kind, flags: f.flags, id: f.id, body: plain(f.body), bytes: f.bytes === undefined ? undefined : Buffer.from(f.bytes) };
}

test('decode(encode(frames)) gives the same frames for every message kind, however the bytes are split', () => {
  fc.assert(fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
    const bytes = encodeFrames(frames, MAX);
    const parser = new FrameParser(MAX);
    const got: Frame[] = [];
    for (const chunk of split(bytes, cuts)) parser.push(chunk, (f) => got.push(f));
    // Stream bytes may come out in more pieces than they went in (never assembled), same bytes.
    assert.equal(joinData(got).map(normalize), joinData(frames).map(normalize));
    assert.is(parser.midFrame, false);
  }), { numRuns: 300 });
});

test('every encoded frame starts with its payload length, kind, flags and id', () => {
  fc.assert(fc.property(frameArb, (f) => {
    const b = encodeFrames([f], MAX);
    assert.is(b.readUInt32LE(0), b.length - FRAME_HEADER_BYTES);
    assert.is(b[4], f.kind);
    assert.is(b[5], f.flags);
    assert.is(b.readUInt16LE(6), 0);
    assert.is(b.readUInt32LE(8), f.id);
  }));
});

test('random bytes split anywhere yield only whole frames or one typed protocol error', () => {
  fc.assert(fc.property(
    fc.array(frameArb, { maxLength: 3 }), fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 10 }),
    (valid, junk, cuts) => {
      const bytes = Buffer.concat([encodeFrames(valid, MAX), junk]);
      const parser = new FrameParser(64 * 1024);
      let frames = 0;
      let error: unknown;
      for (const chunk of split(bytes, cuts)) {
        try {
          parser.push(chunk, (f) => { frames++; assert.ok(f.kind in KINDS_BY_VALUE, 'a known kind'); });
        } catch (err) {
          error = err;
          break;
        }
      }
      assert.ok(frames >= valid.length || error !== undefined, 'valid frames before the junk come out');
      if (error !== undefined) {
        assert.instance(error, TesseraError);
        assert.ok(PROTOCOL_CODES.includes((error as TesseraError).code), (error as TesseraError).code);
        // A failed parser stays failed.
        assert.throws(() => parser.push(new Uint8Array(1), () => undefined), (e: unknown) => e === error);
      }
    }), { numRuns: 500 });
});
const KINDS_BY_VALUE: Record<number, true> = Object.fromEntries(Object.values(FrameKind).map((v) => [v, true]));

test('a header announcing more than maxFrameBytes fails at once, before its payload arrives', () => {
  const parser = new FrameParser(MAX);
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt32LE(MAX + 1, 0);
  h[4] = FrameKind.DATA;
  assert.throws(() => parser.push(h, () => undefined), (e: unknown) => (e as TesseraError).code === ErrorCode.FRAME_TOO_LARGE);
});

test('a parser with a handshake limit refuses exactly the frames over it until liftLimit(), then those up to maxFrameBytes', () => {
  const LIMIT = 4096;
  const headerOf = (len: number): Buffer => {
    const h = Buffer.alloc(FRAME_HEADER_BYTES);
    h.writeUInt32LE(len, 0);
    h[4] = FrameKind.REQUEST;
    return h;
  };
  const lenArb = fc.oneof(fc.nat({ max: MAX + 10 }), fc.constantFrom(0, LIMIT, LIMIT + 1, MAX, MAX + 1, 0xffff_ffff));
  fc.assert(fc.property(lenArb, fc.boolean(), (len, lifted) => {
    const parser = new FrameParser(MAX, LIMIT);
    if (lifted) parser.liftLimit();
    const limit = lifted ? MAX : LIMIT;
    assert.is(parser.limitBytes, limit);
    let error: unknown;
    try {
      parser.push(headerOf(len), () => undefined); // the header alone: the payload never comes
    } catch (err) {
      error = err;
    }
    if (len > limit) assert.is((error as TesseraError | undefined)?.code, ErrorCode.FRAME_TOO_LARGE, `len ${len}, limit ${limit}`);
    else assert.is(error, undefined, `len ${len}, limit ${limit}`);
  }), { numRuns: 300 });
});

test('an unknown message kind fails with UNKNOWN_MESSAGE', () => {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h[4] = 99;
  assert.throws(() => new FrameParser(MAX).push(h, () => undefined), (e: unknown) => (e as TesseraError).code === ErrorCode.UNKNOWN_MESSAGE);
});

test('flags on a frame other than DATA, or non-zero reserved bytes, fail with PROTOCOL', () => {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h[4] = FrameKind.CANCEL;
  h[5] = FLAG_END;
  assert.throws(() => new FrameParser(MAX).push(h, () => undefined), (e: unknown) => (e as TesseraError).code === ErrorCode.PROTOCOL);
  const r = Buffer.alloc(FRAME_HEADER_BYTES);
  r[4] = FrameKind.CANCEL;
  r[7] = 1;
  assert.throws(() => new FrameParser(MAX).push(r, () => undefined), (e: unknown) => (e as TesseraError).code === ErrorCode.PROTOCOL);
});

test('a metadata payload that is not msgpack fails with PROTOCOL', () => {
  const b = Buffer.alloc(FRAME_HEADER_BYTES + 2);
  b.writeUInt32LE(2, 0);
  b[4] = FrameKind.RESPONSE;
  b[12] = 0x92; // an array of two values ...
  b[13] = 0x01; // ... with only one
  assert.throws(() => new FrameParser(MAX).push(b, () => undefined), (e: unknown) => (e as TesseraError).code === ErrorCode.PROTOCOL);
});

test('encoding a frame bigger than maxFrameBytes fails with FRAME_TOO_LARGE', () => {
  const f: Frame = { kind: FrameKind.DATA, flags: 0, id: 1, body: undefined, bytes: new Uint8Array(2048) };
  assert.throws(() => encodeFrames([f], 1024), (e: unknown) => (e as TesseraError).code === ErrorCode.FRAME_TOO_LARGE);
});

test('a big DATA payload in one chunk is handed over without a copy', () => {
  const payload = Buffer.alloc(100_000, 3);
  const bytes = encodeFrames([{ kind: FrameKind.DATA, flags: 0, id: 5, body: undefined, bytes: payload }], MAX);
  let got: Uint8Array | undefined;
  new FrameParser(MAX).push(bytes, (f) => { got = f.bytes; });
  assert.is(got!.buffer, bytes.buffer);
});

test('a DATA payload spread over chunks comes out in pieces that reference the chunks, END on the last', () => {
  const payload = Buffer.alloc(100_000, 3);
  const bytes = encodeFrames([{ kind: FrameKind.DATA, flags: FLAG_END, id: 5, body: undefined, bytes: payload }], MAX);
  const chunks = [bytes.subarray(0, 30_000), bytes.subarray(30_000, 70_000), bytes.subarray(70_000)].map((c) => Buffer.from(c));
  const got: Frame[] = [];
  const parser = new FrameParser(MAX);
  for (const c of chunks) parser.push(c, (f) => got.push(f));
  assert.is(got.length, 3);
  got.forEach((f, i) => {
    assert.is(f.bytes!.buffer, chunks[i]!.buffer);
    assert.is(f.flags, i === 2 ? FLAG_END : 0);
  });
  assert.is(got.reduce((n, f) => n + f.bytes!.length, 0), 100_000);
});

test('callOrder groups each call\'s frames, keeps their order and the calls\' first-frame order, and moves nothing across id 0', () => {
  fc.assert(fc.property(fc.array(fc.nat({ max: 4 }), { maxLength: 40 }), (ids) => {
    const order = callOrder(ids);
    const at = order ?? ids.map((_, i) => i);
    assert.equal([...at].sort((a, b) => a - b), ids.map((_, i) => i), 'a permutation');
    // Segments between id-0 frames: id-0 frames keep their index, and each segment maps onto itself.
    const zeros = ids.flatMap((id, i) => (id === 0 ? [i] : []));
    for (const z of zeros) assert.is(at[z], z, 'an id-0 frame stays in place');
    let start = 0;
    for (const end of [...zeros, ids.length]) {
      const seg = at.slice(start, end);
      assert.ok(seg.every((i) => i >= start && i < end), 'nothing crosses an id-0 frame');
      const segIds = seg.map((i) => ids[i]!);
      // Grouped: once a call's run ends, that call does not come back.
      const done = new Set<number>();
      for (let k = 0; k < segIds.length; k++) {
        if (k > 0 && segIds[k] !== segIds[k - 1]) done.add(segIds[k - 1]!);
        assert.not.ok(done.has(segIds[k]!), 'each call\'s frames are together');
      }
      // Within a call, original order; calls in the order of their first frame.
      for (let k = 1; k < seg.length; k++) if (segIds[k] === segIds[k - 1]) assert.ok(seg[k]! > seg[k - 1]!);
      const firsts = [...new Set(segIds)].map((id) => ids.indexOf(id, start));
      assert.equal(firsts, [...firsts].sort((a, b) => a - b), 'calls keep their first-frame order');
      start = end + 1;
    }
    // undefined exactly when the frames were already grouped.
    if (order === undefined) assert.ok(true);
    else assert.not.equal(order, ids.map((_, i) => i));
  }), { numRuns: 500 });
  assert.is(callOrder([1, 1, 2, 2, 0, 1]), undefined);
  assert.equal(callOrder([1, 2, 3, 1, 2, 3]), [0, 3, 1, 4, 2, 5]);
  assert.equal(callOrder([1, 2, 0, 1, 2, 1]), [0, 1, 2, 3, 5, 4]);
});

test('parseAddress accepts every scheme and formatAddress gives it back', () => {
  for (const a of ['inproc://master', 'tcp://127.0.0.1:19998', 'tls://localhost:0', 'ws://127.0.0.1:8080/tessera', 'wss://[::1]:443/x', 'tcp://[::1]:1']) {
    assert.is(formatAddress(parseAddress(a)), a);
  }
  assert.is(parseAddress('ws://h:1').path, '/');
});

test('parseAddress refuses bad addresses with BAD_ADDRESS, naming the address', () => {
  for (const a of ['', 'tcp://', 'udp://h:1', 'tcp://h', 'tcp://h:99999', 'tcp://h:1/path', 'inproc://', 'inproc://a/b', 'http://h:1']) {
    try {
      parseAddress(a);
      assert.unreachable(a);
    } catch (err) {
      assert.is((err as TesseraError).code, ErrorCode.BAD_ADDRESS, a);
    }
  }
});

test('isLoopbackAddress is true for inproc, 127/8, ::1 and localhost only', () => {
  for (const a of ['inproc://x', 'tcp://127.0.0.1:1', 'tcp://127.1.2.3:1', 'tcp://[::1]:1', 'ws://localhost:1/']) assert.ok(isLoopbackAddress(parseAddress(a)), a);
  for (const a of ['tcp://0.0.0.0:1', 'tcp://10.0.0.1:1', 'tcp://[::]:1', 'tcp://example.com:1']) assert.not.ok(isLoopbackAddress(parseAddress(a)), a);
});

test.run();
