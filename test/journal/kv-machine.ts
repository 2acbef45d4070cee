/**
 * A small journaled state machine for the journal's tests and benchmark: a string → bytes map
 * with put, delete and rename, a hand-written codec, and a checkpoint that copies the map
 * synchronously and encodes it lazily in chunks.
 *
 *   put    (type 1): | key length u16 | key utf-8 | value bytes |
 *   delete (type 2): | key utf-8 |
 *   rename (type 3): | from length u16 | from utf-8 | to utf-8 |
 *   checkpoint chunk: records | key length u16 | key | value length u32 | value |
 */
import type { JournalEntry, JournaledStateMachine, CheckpointReader } from '../../core/journal/index.js';

export const KV_PUT = 1;
export const KV_DELETE = 2;
export const KV_RENAME = 3;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type KvCommand =
  | { kind: 'put'; key: string; value: Uint8Array }
  | { kind: 'delete'; key: string }
  | { kind: 'rename'; from: string; to: string };

export function encodeKv(cmd: KvCommand): { type: number; payload: Uint8Array } {
  if (cmd.kind === 'delete') return { type: KV_DELETE, payload: encoder.encode(cmd.key) };
  const head = encoder.encode(cmd.kind === 'put' ? cmd.key : cmd.from);
  const tail = cmd.kind === 'put' ? cmd.value : encoder.encode(cmd.to);
  const payload = new Uint8Array(2 + head.length + tail.length);
  new DataView(payload.buffer).setUint16(0, head.length, true);
  payload.set(head, 2);
  payload.set(tail, 2 + head.length);
  return { type: cmd.kind === 'put' ? KV_PUT : KV_RENAME, payload };
}

/** Applies a command to a plain Map the way KvMachine does (the model). Throws the same way. */
export function applyKv(map: Map<string, Uint8Array>, cmd: KvCommand): void {
  if (cmd.kind === 'put') map.set(cmd.key, cmd.value);
  else if (cmd.kind === 'delete') {
    if (!map.delete(cmd.key)) throw new Error(`delete: no key ${cmd.key}`);
  } else {
    const v = map.get(cmd.from);
    if (v === undefined) throw new Error(`rename: no key ${cmd.from}`);
    if (map.has(cmd.to)) throw new Error(`rename: ${cmd.to} exists`);
    map.delete(cmd.from);
    map.set(cmd.to, v);
  }
}

export function decodeKv(entry: JournalEntry): KvCommand {
  const p = entry.payload;
  if (entry.type === KV_DELETE) return { kind: 'delete', key: decoder.decode(p) };
  const n = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint16(0, true);
  const head = decoder.decode(p.subarray(2, 2 + n));
  if (entry.type === KV_PUT) return { kind: 'put', key: head, value: p.subarray(2 + n) };
  if (entry.type === KV_RENAME) return { kind: 'rename', from: head, to: decoder.decode(p.subarray(2 + n)) };
  throw new Error(`unknown kv entry type ${entry.type}`);
}

export class KvMachine implements JournaledStateMachine {
  map = new Map<string, Uint8Array>();
  appliedCount = 0;
  constructor(readonly name = 'kv', private readonly chunkRecords = 1000) {}

  apply(entry: JournalEntry): void {
    applyKv(this.map, decodeKv(entry));
    this.appliedCount += 1;
  }

  reset(): void {
    this.map = new Map();
    this.appliedCount = 0;
  }

  snapshot(): Iterable<Uint8Array> {
    const records = [...this.map]; // the consistent copy; encoding happens lazily below
    const chunkRecords = this.chunkRecords;
    return (function* () {
      for (let i = 0; i < records.length; i += chunkRecords) {
        const part = records.slice(i, i + chunkRecords).map(([k, v]) => [encoder.encode(k), v] as const);
        let bytes = 0;
        for (const [k, v] of part) bytes += 6 + k.length + v.length;
        const chunk = new Uint8Array(bytes);
        const dv = new DataView(chunk.buffer);
        let o = 0;
        for (const [k, v] of part) {
          dv.setUint16(o, k.length, true);
          chunk.set(k, o + 2);
          dv.setUint32(o + 2 + k.length, v.length, true);
          chunk.set(v, o + 6 + k.length);
          o += 6 + k.length + v.length;
        }
        yield chunk;
      }
    })();
  }

  async loadCheckpoint(chunks: CheckpointReader): Promise<void> {
    for await (const chunk of chunks) {
      const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let o = 0;
      while (o < chunk.length) {
        const kn = dv.getUint16(o, true);
        const key = decoder.decode(chunk.subarray(o + 2, o + 2 + kn));
        const vn = dv.getUint32(o + 2 + kn, true);
        this.map.set(key, chunk.subarray(o + 6 + kn, o + 6 + kn + vn));
        o += 6 + kn + vn;
      }
    }
  }
}

/** The map as sorted [key, hex value] pairs, for deep equality in assertions. */
export function kvView(map: Map<string, Uint8Array>): [string, string][] {
  return [...map].map(([k, v]) => [k, Buffer.from(v).toString('hex')] as [string, string]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
