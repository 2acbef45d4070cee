/**
 * Shared by the transport tests: a test service with every kind of member, a server that
 * records what its handlers saw, throwaway certificates made with the openssl CLI, and
 * small polling helpers (no timing assertions: we wait for a state, with a generous bound).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, TesseraError } from '../../core/errors.js';
import {
  type ByteSink, type ByteSource, type CallContext, type Peer, RpcServer, type RpcServerOptions,
  clientStream, defineService, event, method, serverStream,
} from '../../transports/index.js';

export const TestService = defineService('test', {
  echo: method<{ text: string; n?: number }, { text: string; n?: number }>(),
  fail: method<{ code: string; message: string }, null>(),
  crash: method<Record<string, never>, null>(),
  /** Waits `ms` or until its signal aborts; records the abort reason's code. */
  sleep: method<{ ms: number; tag: string }, { slept: true }>(),
  /** What the server recorded about an earlier call tagged `tag`. */
  seen: method<{ tag: string }, { abortCode: string | null; finished: boolean }>(),
  download: serverStream<{ totalBytes: number; chunkBytes: number; seed: number }, { bytes: number }>(),
  /** Writes 1 MiB chunks until its writes fail; records the bytes written under `tag`. */
  endless: serverStream<{ tag: string; chunkBytes: number }, null>(),
  upload: clientStream<{ seed: number }, { bytes: number; ok: boolean }>(),
  /** Reads nothing; waits until cancelled. */
  stall: clientStream<{ tag: string }, null>(),
  pushMe: method<{ n: number }, null>(),
  /** A small request with a response of `bytes` characters. */
  big: method<{ bytes: number }, { text: string }>(),
  /** Closes the caller's connection from the server side after writing `bytes`. */
  closeMidStream: serverStream<{ bytes: number }, null>(),
  tick: event<{ n: number }>(),
});

/** A service that no server registers. */
export const UnknownService = defineService('nobody', { hello: method<null, null>() });

/** Deterministic bytes: byte i of a stream with `seed` is (seed + i * 31) & 255. */
export function pattern(seed: number, offset: number, length: number): Uint8Array {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (seed + (offset + i) * 31) & 255;
  return b;
}

export function checkPattern(seed: number, offset: number, chunk: Uint8Array): boolean {
  for (let i = 0; i < chunk.length; i++) if (chunk[i] !== ((seed + (offset + i) * 31) & 255)) return false;
  return true;
}

export interface ServerState {
  aborts: Map<string, string | null>;
  finished: Set<string>;
  bytesWritten: Map<string, number>;
  peers: Peer[];
  closedPeers: number;
  uploadErrors: string[];
  /** How many times `big` ran. */
  bigCalls: number;
}

export function makeServer(options: RpcServerOptions = {}): { server: RpcServer; state: ServerState } {
  const server = new RpcServer(options);
  const state: ServerState = { aborts: new Map(), finished: new Set(), bytesWritten: new Map(), peers: [], closedPeers: 0, uploadErrors: [], bigCalls: 0 };
  server.on('connection', (p: Peer) => {
    state.peers.push(p);
    p.on('close', () => { state.closedPeers++; });
  });
  const waitAbort = (ctx: CallContext, tag: string, ms: number): Promise<void> => new Promise((resolve) => {
    const t = setTimeout(() => { state.finished.add(tag); resolve(); }, ms);
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(t);
      const r = ctx.signal.reason as unknown;
      state.aborts.set(tag, r instanceof TesseraError ? r.code : String(r));
      resolve();
    }, { once: true });
  });
  server.register(TestService, {
    echo: (req) => req,
    fail: (req) => { throw new TesseraError(req.code as typeof ErrorCode.FILE_NOT_FOUND, req.message); },
    crash: () => { throw new Error('kaboom'); },
    sleep: async (req, ctx) => { await waitAbort(ctx, req.tag, req.ms); return { slept: true }; },
    seen: (req) => ({ abortCode: state.aborts.get(req.tag) ?? null, finished: state.finished.has(req.tag) }),
    download: async (req, _ctx, out: ByteSink) => {
      let off = 0;
      while (off < req.totalBytes) {
        const n = Math.min(req.chunkBytes, req.totalBytes - off);
        await out.write(pattern(req.seed, off, n));
        off += n;
      }
      return { bytes: off };
    },
    endless: async (req, ctx, out: ByteSink) => {
      const chunk = new Uint8Array(req.chunkBytes);
      state.bytesWritten.set(req.tag, 0);
      try {
        for (;;) {
          await out.write(chunk);
          state.bytesWritten.set(req.tag, out.bytesWritten);
        }
      } catch (err) {
        state.aborts.set(req.tag, err instanceof TesseraError ? err.code : String(err));
        throw err;
      }
    },
    upload: async (req, _ctx, input: ByteSource) => {
      let off = 0;
      let ok = true;
      try {
        for await (const c of input) {
          if (!checkPattern(req.seed, off, c)) ok = false;
          off += c.length;
        }
      } catch (err) {
        state.uploadErrors.push(err instanceof TesseraError ? err.code : String(err));
        throw err;
      }
      return { bytes: off, ok };
    },
    stall: async (req, ctx) => { await waitAbort(ctx, req.tag, 600_000); return null; },
    big: (req) => { state.bigCalls++; return { text: 'x'.repeat(req.bytes) }; },
    pushMe: (req, ctx) => { ctx.peer.push(TestService, 'tick', { n: req.n }); return null; },
    closeMidStream: async (req, ctx, out: ByteSink) => {
      await out.write(new Uint8Array(req.bytes));
      setTimeout(() => { ctx.peer.connection.destroy(); }, 20);
      await waitAbort(ctx, 'closeMidStream', 60_000);
      return null;
    },
  });
  return { server, state };
}

/** Polls `cond` every 10 ms until true; fails after `timeoutMs` (generous: loaded machines). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves with the TesseraError code a promise rejects with (fails if it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TesseraError) return err.code;
    return `not a TesseraError: ${String(err)}`;
  }
  return 'resolved';
}

export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA. */
  foreignCert: string;
  foreignKey: string;
  cleanup(): void;
}

/** Makes a CA, a server certificate for 127.0.0.1/localhost, a client one, and a foreign one. */
export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-certs-'));
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }); };
  const key = (name: string): void => ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`);
  key('ca');
  key('foreign-ca');
  const leaf = (name: string, ca: string, ext: string): void => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('foreign', 'foreign-ca', 'extendedKeyUsage=clientAuth\n');
  const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return {
    dir, ca: r('ca.crt'), serverCert: r('server.crt'), serverKey: r('server.key'), clientCert: r('client.crt'), clientKey: r('client.key'),
    foreignCert: r('foreign.crt'), foreignKey: r('foreign.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
