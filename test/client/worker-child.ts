// A worker in its own process, for tests that kill it: `node worker-child.js <masterAddress> <stateDir> <hostname>`.
// Prints one JSON line { address } once serving, then runs until killed.
import { WorkerHost } from '../../worker/index.js';

const [masterAddress, stateDir, hostname] = process.argv.slice(2);
const w = await WorkerHost.start({
  masterAddress: masterAddress!, address: 'tcp://127.0.0.1:0', heartbeatIntervalMs: 100, stateDir: stateDir!, hostname: hostname!,
  tiers: [{ alias: 'MEM', capacityBytes: 64 * 1024 * 1024, backing: 'sab', lock: false }],
});
process.stdout.write(JSON.stringify({ address: w.address }) + '\n');
process.on('SIGTERM', () => { void w.stop().then(() => process.exit(0)); });
