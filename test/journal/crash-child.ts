/**
 * The child process of test/journal/crash.test.ts: opens the journal in argv[2], prints
 * `open <lastSequence> <digest> <cuts>`, then appends forever from `concurrency` loops, printing
 * `ack <sequence>` for each acknowledged entry (stdout to a pipe is synchronous on Linux, so a
 * printed ack is never lost to the SIGKILL) and checkpointing now and then. The entry at
 * sequence s is always `crashCommand(s)`, so the parent knows the state for any sequence.
 */
import { createHash } from 'node:crypto';
import { Journal } from '../../core/journal/index.js';
import { KvMachine, encodeKv, kvView, type KvCommand } from './kv-machine.js';

export function crashCommand(sequence: number): KvCommand {
  if (sequence % 10 === 0) return { kind: 'delete', key: `k${(sequence - 1) % 50}` };
  const value = new Uint8Array(100);
  for (let i = 0; i < value.length; i++) value[i] = (sequence * 31 + i) & 0xff;
  return { kind: 'put', key: `k${sequence % 50}`, value };
}

export function digest(map: Map<string, Uint8Array>): string {
  return createHash('sha256').update(JSON.stringify(kvView(map))).digest('hex').slice(0, 16);
}

async function main(): Promise<void> {
  const dir = process.argv[2]!;
  const concurrency = Number(process.argv[3] ?? 16);
  const kv = new KvMachine();
  const journal = await Journal.open(dir, [kv], { logRollBytes: 8192 });
  process.stdout.write(`open ${journal.lastSequence('kv')} ${digest(kv.map)} ${journal.recoveries.length}\n`);
  let next = journal.lastSequence('kv') + 1;
  const loop = async (): Promise<void> => {
    for (;;) {
      const sequence = next++;
      const { type, payload } = encodeKv(crashCommand(sequence));
      const acked = await journal.append('kv', type, payload);
      if (acked !== sequence) throw new Error(`appended ${sequence}, acknowledged as ${acked}`);
      process.stdout.write(`ack ${acked}\n`);
      if (acked % 157 === 0) journal.checkpoint('kv').catch((err: unknown) => { console.error(err); process.exit(3); });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

if (process.argv[1]?.endsWith('crash-child.js')) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(2);
  });
}
