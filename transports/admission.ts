/**
 * AdmissionGate: the TCP connections of a tls://, ws:// or wss:// listener, from the TCP
 * accept until they close, with a deadline on the steps before a connection is handed over
 * to the RPC layer (TLS handshake, HTTP upgrade). Without it a peer that sends a partial
 * ClientHello or HTTP header and goes silent holds its socket (and the TLS engine's or HTTP
 * parser's buffers) until node's own, much longer, timeouts; and any number of such peers
 * would fit under maxConnections, which the RPC layer can only count after the hand-over.
 *
 *   TCP accept ─ admit(raw) ─> pending (deadline: handshakeTimeoutMs) ─ handOver(socket) ─> open
 *      │ open >= maxConnections: dropped at once   │ deadline passed: raw socket destroyed
 *      └────────────── raw 'close', in any state: open - 1 ──────────────────────────────┘
 *
 * What is handed over is the raw socket itself (ws://) or a TLS socket over it (tls://,
 * wss://); the two share their TCP 4-tuple, which is how the gate finds the raw socket (node
 * has no public link from a server TLS socket to its raw one). Nothing here sends an error
 * frame: the peer does not speak frames yet. The gate does not apply to tcp://, whose
 * connections are handed over at once.
 */
import type * as net from 'node:net';

interface Pending { socket: net.Socket; timer: NodeJS.Timeout; acceptedAtMs: number }

/** The TCP 4-tuple of a socket (a TLS socket reports its raw socket's), or undefined once gone. */
function tupleKey(s: net.Socket): string | undefined {
  const { localAddress, localPort, remoteAddress, remotePort } = s;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return undefined;
  return `${localAddress}|${localPort}|${remoteAddress}|${remotePort}`;
}

export class AdmissionGate {
  readonly maxConnections: number;
  readonly handshakeTimeoutMs: number;
  /** Raw sockets admitted and not closed yet: pending ones and handed-over ones. */
  #openCount = 0;
  readonly #pending = new Map<string, Pending>();

  constructor(maxConnections: number, handshakeTimeoutMs: number) {
    this.maxConnections = maxConnections;
    this.handshakeTimeoutMs = handshakeTimeoutMs;
  }

  /** TCP connections open now, handed over or not. */
  get openCount(): number {
    return this.#openCount;
  }

  /** TCP connections still in their TLS handshake or HTTP upgrade. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Takes every socket the server accepts (its 'connection' event), before anything is read. */
  admit(raw: net.Socket): void {
    const key = tupleKey(raw);
    if (key === undefined || this.#openCount >= this.maxConnections) {
      raw.destroy();
      return;
    }
    this.#openCount++;
    const timer = setTimeout(() => raw.destroy(), this.handshakeTimeoutMs);
    this.#pending.set(key, { socket: raw, timer, acceptedAtMs: performance.now() });
    raw.once('close', () => {
      this.#openCount--;
      const p = this.#pending.get(key);
      if (p !== undefined && p.socket === raw) {
        clearTimeout(p.timer);
        this.#pending.delete(key);
      }
    });
  }

  /** Destroys the sockets still pending (the listener is closing). */
  destroyPending(): void {
    for (const p of [...this.#pending.values()]) p.socket.destroy();
  }

  /**
   * `socket` (the raw socket or a TLS socket over it) finished its transport handshake: its
   * deadline stops here. Returns the accept time, or undefined when the gate does not know the
   * socket (it timed out or closed meanwhile); the socket is then destroyed.
   */
  handOver(socket: net.Socket): number | undefined {
    const key = tupleKey(socket);
    const p = key === undefined ? undefined : this.#pending.get(key);
    if (p === undefined) {
      socket.destroy();
      return undefined;
    }
    clearTimeout(p.timer);
    this.#pending.delete(key!);
    return p.acceptedAtMs;
  }
}
