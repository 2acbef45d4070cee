/**
 * inproc:// transport: two connection objects in one process hand frames to each other with
 * no socket and no framing. Stream bytes are handed over as they are (the sender must not
 * modify a chunk after write(), as with a socket). Metadata bodies are, by default, cloned
 * through the same msgpack codec the wire uses, so code that works inproc works over TCP
 * (and a server cannot leak a live object into a client): plain data is deep-copied directly,
 * anything else (or anything near the frame limit) takes the real msgpack round trip.
 * `isolation: 'none'` hands bodies over by reference, for simulations and benchmarks that want
 * every microsecond.
 *
 * An `InprocNetwork` can misbehave on purpose, driven by a seeded PRNG so a failing run
 * replays from its seed: delay frames (order kept per direction, as TCP does), drop them,
 * duplicate them, and partition named endpoints from each other. Delivery is always
 * asynchronous (setImmediate), never re-entrant.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import { Connection } from './connection.js';
import { parseAddress } from './address.js';
import { type Frame, frameKindName, framePayload, unpackBody } from './wire.js';
import { checkMaxFrameBytes, type ConnectOptions, type Listener, type ListenOptions, type Transport } from './transport.js';
import { seededRandom } from '../core/random.js';

export interface InprocFaults {
  /** Seed of the PRNG deciding drops, duplicates and delays (default 1). */
  seed?: number;
  /** Delay of each frame in ms: a fixed value or a [min, max] range (default 0). */
  delayMs?: number | [number, number];
  /** Probability in [0, 1] that a frame is lost (default 0). */
  dropRate?: number;
  /** Probability in [0, 1] that a frame arrives twice (default 0). */
  duplicateRate?: number;
}

export interface InprocNetworkOptions {
  /** 'clone' (default): bodies go through msgpack; 'none': handed over by reference. */
  isolation?: 'clone' | 'none';
  faults?: InprocFaults;
}

export { seededRandom };

interface InprocEndpoint {
  name: string;
  maxFrameBytes: number;
  onConnection: (c: Connection) => void;
  connections: Set<InprocConnection>;
}

function checkRate(name: string, v: number | undefined): number {
  const r = v ?? 0;
  if (typeof r !== 'number' || !(r >= 0 && r <= 1)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option faults.${name}: expected a probability in [0, 1], got ${String(v)}`);
  return r;
}

export class InprocNetwork {
  readonly isolation: 'clone' | 'none';
  readonly #endpoints = new Map<string, InprocEndpoint>();
  readonly #partitions = new Set<string>();
  #random: () => number = seededRandom(1);
  #dropRate = 0;
  #duplicateRate = 0;
  #delayMinMs = 0;
  #delayMaxMs = 0;
  #clientCount = 0;

  constructor(options: InprocNetworkOptions = {}) {
    const iso = options.isolation ?? 'clone';
    if (iso !== 'clone' && iso !== 'none') throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option isolation: expected 'clone' or 'none', got ${String(iso)}`);
    this.isolation = iso;
    this.setFaults(options.faults ?? {});
  }

  /** Replaces the fault model; the PRNG restarts from the given seed. */
  setFaults(f: InprocFaults): void {
    this.#dropRate = checkRate('dropRate', f.dropRate);
    this.#duplicateRate = checkRate('duplicateRate', f.duplicateRate);
    const d = f.delayMs ?? 0;
    const [lo, hi] = typeof d === 'number' ? [d, d] : d;
    if (!(lo >= 0 && hi >= lo)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option faults.delayMs: expected ms >= 0 or [min, max], got ${String(d)}`);
    this.#delayMinMs = lo;
    this.#delayMaxMs = hi;
    this.#random = seededRandom(f.seed ?? 1);
  }

  /** From now on, frames between endpoints `a` and `b` are lost, and connects between them fail. */
  partition(a: string, b: string): void {
    this.#partitions.add(pairKey(a, b));
  }

  /** Ends the partition between `a` and `b`, or every partition when called without names. */
  heal(a?: string, b?: string): void {
    if (a === undefined || b === undefined) this.#partitions.clear();
    else this.#partitions.delete(pairKey(a, b));
  }

  isPartitioned(a: string, b: string): boolean {
    return this.#partitions.size > 0 && this.#partitions.has(pairKey(a, b));
  }

  /** @internal */
  nextClientName(): string {
    return `client-${++this.#clientCount}`;
  }

  /** @internal */
  endpoint(name: string): InprocEndpoint | undefined {
    return this.#endpoints.get(name);
  }

  /** @internal */
  addEndpoint(e: InprocEndpoint): void {
    if (this.#endpoints.has(e.name)) throw new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot listen on inproc://${e.name}: the name is taken`);
    this.#endpoints.set(e.name, e);
  }

  /** @internal */
  removeEndpoint(e: InprocEndpoint): void {
    if (this.#endpoints.get(e.name) === e) this.#endpoints.delete(e.name);
  }

  /** @internal Decides the fate of one frame: how many copies arrive, and after what delay. */
  fate(): { copies: number; delayMs: number } {
    if (this.#dropRate === 0 && this.#duplicateRate === 0 && this.#delayMaxMs === 0) return NO_FAULT;
    const copies = this.#random() < this.#dropRate ? 0 : this.#random() < this.#duplicateRate ? 2 : 1;
    const delayMs = this.#delayMinMs + (this.#delayMaxMs - this.#delayMinMs) * this.#random();
    return { copies, delayMs };
  }
}

const NO_FAULT = { copies: 1, delayMs: 0 };

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

/** The process-wide default network used by `transportFor('inproc://...')`. */
export const defaultInprocNetwork = new InprocNetwork();

/** Thrown inside plainClone for anything that is not plain data: msgpack decides then. */
const NOT_PLAIN = Symbol('not plain');

/**
 * Deep copy of plain data (null, booleans, numbers, strings, arrays, plain objects, bytes as
 * Buffer copies) with an upper bound of its msgpack size added to `size[0]`; throws NOT_PLAIN
 * for anything else (Date, Map, class instances, bigint, ...).
 */
function plainClone(v: unknown, size: number[], depth: number): unknown {
  if (depth > 64) throw NOT_PLAIN;
  switch (typeof v) {
    case 'number': case 'boolean': case 'undefined': size[0]! += 9; return v;
    case 'string': size[0]! += 5 + 3 * v.length; return v;
    case 'object': {
      if (v === null) { size[0]! += 1; return v; }
      if (Array.isArray(v)) {
        size[0]! += 5;
        const out = new Array<unknown>(v.length);
        for (let i = 0; i < v.length; i++) out[i] = plainClone(v[i], size, depth + 1);
        return out;
      }
      if (v instanceof Uint8Array) { size[0]! += 5 + v.byteLength; return Buffer.from(v); }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN;
      size[0]! += 5;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) {
        if (k === '__proto__') throw NOT_PLAIN;
        size[0]! += 5 + 3 * k.length;
        out[k] = plainClone((v as Record<string, unknown>)[k], size, depth + 1);
      }
      return out;
    }
    default: throw NOT_PLAIN;
  }
}

/**
 * The body as the peer would decode it from the wire. Plain data is deep-copied directly (a
 * few times faster than a msgpack round trip); anything else, and anything whose size bound
 * comes near the peer's frame limit, takes the exact msgpack round trip.
 */
function cloneBody(f: Frame, maxFrameBytes: number): unknown {
  const size = [0];
  try {
    const copy = plainClone(f.body, size, 0);
    if (size[0]! <= maxFrameBytes) return copy;
  } catch (err) {
    if (err !== NOT_PLAIN) throw err;
  }
  const packed = framePayload(f)!;
  if (packed.byteLength > maxFrameBytes) {
    throw new TesseraError(ErrorCode.FRAME_TOO_LARGE, `Cannot send ${frameKindName(f.kind)} frame: payload of ${packed.byteLength} bytes exceeds maxFrameBytes ${maxFrameBytes}`);
  }
  return unpackBody(packed);
}

const CLOSE_MARK = Symbol('close');
/** Travels behind a batch of frames; its delivery means the peer received them all. */
class WrittenMark {
  constructor(readonly written: () => void) {}
}
type Delivery = Frame | typeof CLOSE_MARK | WrittenMark;

export class InprocConnection extends Connection {
  readonly network: InprocNetwork;
  readonly localName: string;
  readonly maxFrameBytes: number;
  peer!: InprocConnection;
  #incoming: Delivery[] = [];
  #scheduled = false;
  #lastDeliveryAt = 0;
  #endResolve: (() => void) | undefined;
  /** Set while reading is paused: deliveries wait here, in order. */
  #held: Delivery[] | undefined;

  constructor(network: InprocNetwork, localName: string, peerName: string, maxFrameBytes: number) {
    super(`inproc://${localName}`, `inproc://${peerName}`);
    this.network = network;
    this.localName = localName;
    this.maxFrameBytes = maxFrameBytes;
  }

  protected override _sendFrames(frames: Frame[], written: () => void): void {
    const peer = this.peer;
    const net = this.network;
    // Frames lost to a partition or a drop are no longer held by anyone: written, as a
    // socket's bytes would be once the kernel has them.
    if (net.isPartitioned(this.localName, peer.localName)) { written(); return; }
    const clone = net.isolation === 'clone';
    for (let f of frames) {
      try {
        if (f.bytes !== undefined && f.bytes.byteLength > peer.maxFrameBytes) {
          throw new TesseraError(ErrorCode.FRAME_TOO_LARGE, `Cannot send ${frameKindName(f.kind)} frame: payload of ${f.bytes.byteLength} bytes exceeds maxFrameBytes ${peer.maxFrameBytes}`);
        }
        if (clone && f.body !== undefined) f = { kind: f.kind, flags: f.flags, id: f.id, body: cloneBody(f, peer.maxFrameBytes), bytes: undefined };
      } catch (err) {
        if (!(err instanceof TesseraError)) throw err;
        this._rejectFrame(f, err);
        continue;
      }
      const { copies, delayMs } = net.fate();
      for (let i = 0; i < copies; i++) peer.#enqueue(f, delayMs);
    }
    // The mark ignores faults and keeps its place behind the frames (deliveries stay in order).
    peer.#enqueue(new WrittenMark(written), 0);
  }

  protected override _setReading(on: boolean): void {
    if (!on) {
      this.#held ??= [];
      return;
    }
    const held = this.#held;
    this.#held = undefined;
    if (held === undefined || held.length === 0) return;
    // Delivered asynchronously, before anything that arrives later.
    this.#incoming = held.concat(this.#incoming);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#drain);
    }
  }

  #enqueue(d: Delivery, delayMs: number): void {
    if (delayMs > 0 || (this.#lastDeliveryAt !== 0 && this.#lastDeliveryAt > performance.now())) {
      // Keep per-direction order even with random delays, as a TCP stream would.
      const at = Math.max(this.#lastDeliveryAt, performance.now() + delayMs);
      this.#lastDeliveryAt = at;
      setTimeout(() => this.#deliver(d), at - performance.now());
      return;
    }
    this.#incoming.push(d);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#drain);
    }
  }

  #deliver(d: Delivery): void {
    if (this.#held !== undefined) {
      this.#held.push(d);
      return;
    }
    if (d instanceof WrittenMark) {
      d.written();
    } else if (d === CLOSE_MARK) {
      this._peerGone();
      this.peer.#endResolve?.();
    } else {
      this._receive(d);
    }
  }

  #drain = (): void => {
    this.#scheduled = false;
    const items = this.#incoming;
    this.#incoming = [];
    for (const d of items) this.#deliver(d);
  };

  protected override _end(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#endResolve = resolve;
      // The close mark travels behind the frames already sent, but ignores faults.
      this.peer.#enqueue(CLOSE_MARK, 0);
    });
  }

  protected override _destroy(): void {
    const peer = this.peer;
    this.#endResolve?.();
    setImmediate(() => peer._peerGone());
  }
}

class InprocListener implements Listener {
  readonly address: string;
  readonly #network: InprocNetwork;
  readonly #endpoint: InprocEndpoint;
  #closed = false;

  constructor(network: InprocNetwork, endpoint: InprocEndpoint) {
    this.#network = network;
    this.#endpoint = endpoint;
    this.address = `inproc://${endpoint.name}`;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#network.removeEndpoint(this.#endpoint);
    for (const c of this.#endpoint.connections) c.destroy(new TesseraError(ErrorCode.CONNECTION_CLOSED, 'Connection closed: listener closed'));
  }
}

export class InprocTransport implements Transport {
  readonly scheme = 'inproc' as const;
  readonly network: InprocNetwork;

  constructor(network: InprocNetwork = defaultInprocNetwork) {
    this.network = network;
  }

  async listen(address: string, onConnection: (c: Connection) => void, options: ListenOptions = {}): Promise<Listener> {
    const a = parseAddress(address);
    if (a.scheme !== 'inproc') throw new TesseraError(ErrorCode.BAD_ADDRESS, `Bad transport address ${address}: not an inproc address`);
    const endpoint: InprocEndpoint = { name: a.path, maxFrameBytes: checkMaxFrameBytes(options.maxFrameBytes), onConnection, connections: new Set() };
    this.network.addEndpoint(endpoint);
    return new InprocListener(this.network, endpoint);
  }

  async connect(address: string, options: ConnectOptions = {}): Promise<Connection> {
    const a = parseAddress(address);
    if (a.scheme !== 'inproc') throw new TesseraError(ErrorCode.BAD_ADDRESS, `Bad transport address ${address}: not an inproc address`);
    const maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes);
    const net = this.network;
    const localName = options.localName ?? net.nextClientName();
    await new Promise<void>((resolve) => setImmediate(resolve));
    const e = net.endpoint(a.path);
    if (e === undefined) throw new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot connect to ${address}: nothing listens there`);
    if (net.isPartitioned(localName, e.name)) throw new TesseraError(ErrorCode.CONNECT_FAILED, `Cannot connect to ${address}: partitioned from ${localName}`);
    const client = new InprocConnection(net, localName, e.name, maxFrameBytes);
    const server = new InprocConnection(net, e.name, localName, e.maxFrameBytes);
    client.peer = server;
    server.peer = client;
    e.connections.add(server);
    server.once('close', () => e.connections.delete(server));
    e.onConnection(server);
    return client;
  }
}

export const inprocTransport: Transport = new InprocTransport();
