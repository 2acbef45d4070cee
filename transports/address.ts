/**
 * Transport addresses. One string names an endpoint and the transport that reaches it:
 *
 *   inproc://name            an in-process endpoint (no socket)
 *   tcp://host:port          node:net, Nagle off
 *   tls://host:port          node:tls over TCP
 *   ws://host:port/path      WebSocket (binary messages), path defaults to '/'
 *   wss://host:port/path     WebSocket over TLS
 *
 * Port 0 asks the OS for a free port; the listener's `.address` says which one it got.
 * IPv6 hosts are written in brackets: `tcp://[::1]:19998`.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';

export type Scheme = 'inproc' | 'tcp' | 'tls' | 'ws' | 'wss';

export interface ParsedAddress {
  scheme: Scheme;
  /** Host name or IP literal without brackets ('' for inproc). */
  host: string;
  /** TCP port (0 for inproc). */
  port: number;
  /** WebSocket path ('/' by default), or the inproc endpoint name. */
  path: string;
}

const SCHEMES: readonly Scheme[] = ['inproc', 'tcp', 'tls', 'ws', 'wss'];

function bad(address: string, why: string): TesseraError {
  return new TesseraError(ErrorCode.BAD_ADDRESS, `Bad transport address ${JSON.stringify(address)}: ${why}`);
}

export function parseAddress(address: string): ParsedAddress {
  if (typeof address !== 'string') throw bad(String(address), 'not a string');
  const m = /^([a-z]+):\/\/(.*)$/.exec(address);
  if (!m) throw bad(address, 'expected scheme://...');
  const scheme = m[1] as Scheme;
  if (!SCHEMES.includes(scheme)) throw bad(address, `unknown scheme ${scheme} (expected one of ${SCHEMES.join(', ')})`);
  const rest = m[2]!;
  if (scheme === 'inproc') {
    if (rest.length === 0 || /[\s/]/.test(rest)) throw bad(address, 'an inproc name is non-empty, without spaces or slashes');
    return { scheme, host: '', port: 0, path: rest };
  }
  const hp = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]\s]+):(\d{1,5})(\/.*)?$/.exec(rest);
  if (!hp) throw bad(address, 'expected host:port');
  const port = Number(hp[2]);
  if (port > 65535) throw bad(address, `port ${port} is out of range`);
  const host = hp[1]!.startsWith('[') ? hp[1]!.slice(1, -1) : hp[1]!;
  const path = hp[3] ?? '/';
  if (path !== '/' && scheme !== 'ws' && scheme !== 'wss') throw bad(address, `a ${scheme} address has no path`);
  return { scheme, host, port, path };
}

export function formatAddress(a: ParsedAddress): string {
  if (a.scheme === 'inproc') return `inproc://${a.path}`;
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  const path = a.scheme === 'ws' || a.scheme === 'wss' ? a.path : '';
  return `${a.scheme}://${host}:${a.port}${path}`;
}

/** True for addresses no other host can reach: inproc, 127.0.0.0/8, ::1, localhost. */
export function isLoopbackAddress(a: ParsedAddress): boolean {
  if (a.scheme === 'inproc') return true;
  const h = a.host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}
