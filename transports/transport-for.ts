/**
 * `transportFor(address)`: the transport that serves an address's scheme. The one place that
 * knows every transport, so that code above this folder only ever names addresses.
 */
import { assertNever } from '../core/assert.js';
import { parseAddress } from './address.js';
import type { Transport } from './transport.js';
import { inprocTransport } from './inproc.js';
import { tcpTransport, tlsTransport } from './tcp.js';
import { wsTransport, wssTransport } from './ws.js';

export function transportFor(address: string): Transport {
  const { scheme } = parseAddress(address);
  switch (scheme) {
    case 'inproc': return inprocTransport;
    case 'tcp': return tcpTransport;
    case 'tls': return tlsTransport;
    case 'ws': return wsTransport;
    case 'wss': return wssTransport;
    default: return assertNever(scheme, 'transport scheme');
  }
}
