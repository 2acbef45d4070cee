// CallOptions.sendNow: the request reaches the socket while the caller still runs, not at the
// end of its tick. The client runs in a worker_thread that blocks right after calling (as a
// reader copying out of a mapped block does); the server, on the main thread, notes when each
// request arrived. A request made without sendNow is the control: it cannot leave before the
// caller's tick ends, so the test can tell the two apart.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RpcClient, RpcServer, defineService, method, type RpcClientOptions } from '../../transports/index.js';
import { makeCerts } from './fixtures.js';

const NoteService = defineService('note', { arrive: method<{ tag: string }, null>() });
/** How long the client blocks after each call. The server has all that time to take the request in. */
const BLOCK_MS = 500;

interface ClientJob { address: string; options: RpcClientOptions }
interface ClientReport { tag: string; calledMs: number; unblockedMs: number }

const now = (): number => performance.timeOrigin + performance.now();

async function clientMain({ address, options }: ClientJob): Promise<void> {
  const client = await RpcClient.connect(address, options);
  const s = client.service(NoteService);
  await s.arrive({ tag: 'warm-up' });
  for (const tag of ['at-tick-end', 'send-now']) {
    const calledMs = now();
    const result = s.arrive({ tag }, tag === 'send-now' ? { sendNow: true } : undefined);
    while (now() - calledMs < BLOCK_MS) { /* busy: no event loop turn, no nextTick */ }
    const report: ClientReport = { tag, calledMs, unblockedMs: now() };
    await result;
    parentPort!.postMessage(report);
  }
  await client.close();
}

if (!isMainThread) {
  await clientMain(workerData as ClientJob);
} else {
  const certs = makeCerts();
  const envs = [
    { name: 'tcp', address: 'tcp://127.0.0.1:0', tls: false },
    { name: 'tls', address: 'tls://127.0.0.1:0', tls: true },
    { name: 'ws', address: 'ws://127.0.0.1:0/tessera', tls: false },
    { name: 'wss', address: 'wss://127.0.0.1:0/tessera', tls: true },
  ];
  for (const env of envs) {
    const t = suite(`sendNow over ${env.name}`);
    t('a sendNow request reaches the server while its caller is still blocked; one without it only after', async () => {
      const arrived = new Map<string, number>();
      const server = new RpcServer(env.tls ? { tls: { cert: certs.serverCert, key: certs.serverKey } } : {});
      server.register(NoteService, { arrive: (req) => { arrived.set(req.tag, now()); return null; } });
      const { address } = await server.listen(env.address);
      const job: ClientJob = { address, options: env.tls ? { tls: { ca: certs.ca } } : {} };
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: job });
      const reports = new Map<string, ClientReport>();
      try {
        await new Promise<void>((resolve, reject) => {
          worker.on('message', (r: ClientReport) => { reports.set(r.tag, r); });
          worker.once('error', reject);
          worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client thread exited with ${code}`))));
        });
      } finally {
        await server.close();
      }
      const later = reports.get('at-tick-end')!;
      const soon = reports.get('send-now')!;
      assert.ok(arrived.get('at-tick-end')! >= later.unblockedMs, 'control: a request without sendNow leaves when the caller\'s tick ends');
      const at = arrived.get('send-now')!;
      assert.ok(at >= soon.calledMs && at < soon.unblockedMs,
        `the sendNow request arrived ${(at - soon.calledMs).toFixed(1)} ms after the call, before the caller unblocked at ${BLOCK_MS} ms`);
    });
    t.run();
  }
  process.on('exit', () => certs.cleanup());
}
