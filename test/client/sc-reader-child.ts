// A same-host client in its own process, for tests that kill it while it holds short-circuit
// pins: `node sc-reader-child.js <masterAddress> <path>`. Reads the first MiB of the file
// twice (the second read's blocks are pinned in the worker's engine, no call to the worker),
// prints one JSON line { pid, engine } while the stream still holds its block, then waits
// until killed.
import { connect } from '../../client/connect.js';

const [masterAddress, path] = process.argv.slice(2);
const fs = await connect(masterAddress!);
await fs.readFile(path!); // the first open attaches the link to the worker's engine
const input = await fs.openFile(path!);
const b = Buffer.alloc(1024 * 1024);
await input.read(b);
const [w] = await fs.getWorkers();
const link = await fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname }) as { enginePath?: string };
process.stdout.write(JSON.stringify({ pid: process.pid, engine: link.enginePath ?? null }) + '\n');
setInterval(() => {}, 1 << 30);
