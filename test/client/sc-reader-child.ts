// A same-host client in its own process, for tests that kill it while it holds short-circuit
// pins: `node sc-reader-child.js <masterAddress> <path>`. Reads the file once (the first open
// attaches the link to the worker's engine), then takes the first chunk of the first block
// from the link and holds it (pinned in the engine, with no idle release: the iteration is
// not resumed), prints one JSON line { pid, engine }, and waits until killed.
import { connect } from '../../client/connect.js';

const [masterAddress, path] = process.argv.slice(2);
const fs = await connect(masterAddress!);
await fs.readFile(path!);
const { blocks } = await fs.getBlockLocations(path!);
const [w] = await fs.getWorkers();
const link = await fs._link({ workerId: w!.workerId, address: w!.address, hostname: w!.hostname }) as Awaited<ReturnType<typeof fs._link>> & { enginePath?: string };
const it = link.readBlock({ blockId: blocks[0]!.blockId, offsetBytes: 0, lengthBytes: blocks[0]!.lengthBytes, readType: 'CACHE' })[Symbol.asyncIterator]();
const held = await it.next();
process.stdout.write(JSON.stringify({ pid: process.pid, engine: link.enginePath ?? null, heldBytes: held.value?.byteLength ?? 0 }) + '\n');
setInterval(() => {}, 1 << 30);
