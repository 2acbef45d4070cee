/**
 * A raw peer for the hostile and handshake tests: a plain TCP socket or WebSocket that sends
 * whatever bytes a test makes (no RPC client in between) and parses what the server answers.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { MIB, PROTOCOL_VERSION } from '../../core/constants.js';
import { FRAME_HEADER_BYTES, type Frame, FrameKind, FrameParser, encodeFrames, frame } from '../../transports/wire.js';

export interface RawPeer {
  send(bytes: Uint8Array): void;
  /** Frames the server sent, in order. */
  frames: Frame[];
  closed: Promise<void>;
  /** For a WebSocket peer: the close code, once closed. */
  wsCloseCode?: number;
  destroy(): void;
}

/** Largest frame a raw peer accepts from the server (the servers under test send small ones). */
const RAW_PEER_MAX_FRAME_BYTES = 16 * MIB;

export function rawTcp(address: string): Promise<RawPeer> {
  const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(address)!;
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: m[1]!, port: Number(m[2]) });
    const parser = new FrameParser(RAW_PEER_MAX_FRAME_BYTES);
    const peer: RawPeer = {
      send: (b) => { s.write(b); },
      frames: [],
      closed: new Promise((r) => s.once('close', () => r())),
      destroy: () => s.destroy(),
    };
    s.on('data', (d: Buffer) => { try { parser.push(d, (f) => peer.frames.push(f)); } catch { /* the server does not send junk */ } });
    s.on('error', () => undefined);
    s.once('connect', () => resolve(peer));
    s.once('error', reject);
  });
}

export function rawWs(address: string): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(address, { perMessageDeflate: false });
    const parser = new FrameParser(RAW_PEER_MAX_FRAME_BYTES);
    const peer: RawPeer = {
      send: (b) => { ws.send(b, { binary: true }); },
      frames: [],
      closed: new Promise((r) => ws.once('close', (code: number) => { peer.wsCloseCode = code; r(); })),
      destroy: () => ws.terminate(),
    };
    ws.on('message', (d: Buffer) => { try { parser.push(d, (f) => peer.frames.push(f)); } catch { /* the server does not send junk */ } });
    ws.on('error', () => undefined);
    ws.once('open', () => resolve(peer));
    ws.once('error', reject);
  });
}

/** A frame header announcing `len` payload bytes of `kind` for call/stream `id`. */
export function header(len: number, kind: number, id = 0): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt32LE(len, 0);
  h[4] = kind;
  h.writeUInt32LE(id, 8);
  return h;
}

/** A client's first frame (HELLO) with a fresh nonce. */
export function hello(version = PROTOCOL_VERSION): Buffer {
  return encodeFrames([frame(FrameKind.HELLO, 0, { magic: 'tessera', version, windowBytes: MIB, maxFrameBytes: MIB, nonce: randomBytes(32) })], MIB);
}

/** Resolves with the code of the server's ERROR frame once the peer is closed; fails after `boundMs`. */
export async function errorThenClose(peer: RawPeer, boundMs = 15_000): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const closedInTime = await Promise.race([
    peer.closed.then(() => true),
    new Promise<boolean>((r) => { timer = setTimeout(() => r(false), boundMs); }),
  ]);
  clearTimeout(timer);
  if (!closedInTime) peer.destroy();
  assert.ok(closedInTime, `the server closed the connection within ${boundMs} ms`);
  return (peer.frames.find((f) => f.kind === FrameKind.ERROR)?.body as { code?: string } | undefined)?.code;
}
