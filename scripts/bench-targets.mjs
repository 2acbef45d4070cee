// The issues' benchmark targets, checked against bench/results/<suite>.json. Used by
// scripts/bench-tables.mjs to write the "Targets" section of bench/RESULTS.md: every figure
// in that section is read from the JSON of the last run, never typed in.
//
// A target names its suite, a human description, how to read its value from the results
// and the bound. A row that is missing from the JSON shows as "not measured", never as met.

const row = (r, name) => r?.rows.find((x) => x.name === name);
const ratio = (name) => (r) => row(r, name)?.ratio;
const ops = (name) => (r) => row(r, name)?.opsPerSec;
const bytes = (name) => (r) => row(r, name)?.bytesPerSec;

/** value formats */
const x = (v) => `${v.toFixed(2)}×`;
const rate = (v) => v >= 1e6 ? `${(v / 1e6).toFixed(2)} M/s` : `${(v / 1e3).toFixed(1)} K/s`;
const gbs = (v) => `${(v / 1e9).toFixed(2)} GB/s`;
const pct = (v) => `${(v * 100).toFixed(1)} %`;

export const TARGETS = [
  // issue 2: the block engine
  { issue: 2, suite: 'cache', what: 'acquire+release 4 KiB hit vs lru-cache get', bound: '≥ 1.0×', min: 1.0, fmt: x, value: ratio('BlockCache acquire+release 4 KiB') },
  { issue: 2, suite: 'cache', what: 'acquireHandle+releaseHandle 4 KiB (allocation-free acquire) vs lru-cache get', bound: '≥ 1.0×', min: 1.0, fmt: x, value: ratio('BlockCache acquireHandle+releaseHandle 4 KiB') },
  { issue: 2, suite: 'cache', what: 'acquire+release 4 KiB hit vs lmdb getBinaryFast', bound: '≥ 5×', min: 5, fmt: x, value: ratio('BlockCache acquire+release 4 KiB (vs lmdb)') },
  { issue: 2, suite: 'cache', what: 'acquire+release 4 KiB, 2 threads vs 1 thread', bound: '≥ 1.7×', min: 1.7, fmt: x, value: ratio('BlockCache acquire+release 4 KiB, 2 threads') },
  { issue: 2, suite: 'cache', what: 'put evicting 4 KiB vs lru-cache set evicting (stores a reference)', bound: '≥ 1.0×', min: 1.0, fmt: x, value: ratio('BlockCache put evicting 4 KiB (sieve)') },
  { issue: 2, suite: 'cache', what: 'put evicting 4 KiB vs lru-cache set evicting a copy (as put does)', bound: '≥ 1.0×', min: 1.0, fmt: x, value: ratio('BlockCache put evicting 4 KiB (sieve) (vs copying lru-cache)') },
  { issue: 2, suite: 'cache', what: 'usedBytes / capacity under 1 M evicting puts of 4 KiB..4 MiB (lowest sample)', bound: '≥ 85 %', min: 0.85, fmt: pct, value: (r) => r?.extra?.fragmentation?.sieve?.minUsedOverCapacity },
  // issue 3: native
  { issue: 3, suite: 'native', what: 'native crc32c, 1 MiB', bound: '≥ 8 GB/s', min: 8e9, fmt: gbs, value: bytes('crc32c native 1 MiB') },
  { issue: 3, suite: 'native', what: 'TS crc32c fallback, 1 MiB', bound: '≥ 0.5 GB/s', min: 0.5e9, fmt: gbs, value: bytes('crc32c TS 1 MiB') },
  { issue: 3, suite: 'native', what: 'mapShared arena reads vs SharedArrayBuffer reads (Int32 scan)', bound: '≥ 0.9×', min: 0.9, fmt: x, value: ratio('mapShared scan 1 MiB') },
  { issue: 3, suite: 'native', what: 'mapShared arena reads vs SharedArrayBuffer reads (Buffer.copy)', bound: '≥ 0.9×', min: 0.9, fmt: x, value: ratio('mapShared Buffer.copy 1 MiB') },
  // issue 4: journal
  { issue: 4, suite: 'journal', what: 'acknowledged appends/s, 64 appenders', bound: '≥ 100 K/s', min: 100e3, fmt: rate, value: ops('journal group commit, 64 appenders') },
  { issue: 4, suite: 'journal', what: 'replay of 1 M entries', bound: '≥ 1 M/s', min: 1e6, fmt: rate, value: ops('replay 1000000 entries, counting machine') },
  // issue 5: transports
  { issue: 5, suite: 'transports', what: 'TCP stream of 1 MiB chunks vs raw node:net', bound: '≥ 0.8×', min: 0.8, fmt: x, value: ratio('tcp stream 1 MiB chunks') },
  { issue: 5, suite: 'transports', what: 'TCP small calls, 64 in flight', bound: '≥ 150 K/s', min: 150e3, fmt: rate, value: ops('tcp calls, 64 in flight') },
  { issue: 5, suite: 'transports', what: 'WebSocket stream of 1 MiB chunks vs raw ws', bound: '≥ 0.8×', min: 0.8, fmt: x, value: ratio('ws stream 1 MiB chunks') },
  { issue: 5, suite: 'transports', what: 'in-process calls, 64 in flight (isolation clone, the default)', bound: '≥ 1 M/s', min: 1e6, fmt: rate, value: ops('inproc (isolation clone) calls, 64 in flight') },
  { issue: 5, suite: 'transports', what: 'in-process calls, 64 in flight (isolation none)', bound: '≥ 1 M/s', min: 1e6, fmt: rate, value: ops('inproc (isolation none) calls, 64 in flight') },
  // issue 6: master
  { issue: 6, suite: 'master', what: 'journaled createFile+completeFile pairs, in-process', bound: '≥ 30 K/s', min: 30e3, fmt: rate, value: ops('in-process: createFile+completeFile (journal, fsync)') },
  { issue: 6, suite: 'master', what: 'journaled createFile+completeFile pairs, over TCP', bound: '≥ 30 K/s', min: 30e3, fmt: rate, value: ops('tcp: createFile+completeFile (journal, fsync)') },
  { issue: 6, suite: 'master', what: 'getStatus in-process', bound: '≥ 300 K/s', min: 300e3, fmt: rate, value: ops('in-process: getStatus') },
  { issue: 6, suite: 'master', what: 'getStatus over TCP', bound: '≥ 100 K/s', min: 100e3, fmt: rate, value: ops('tcp: getStatus') },
  { issue: 6, suite: 'master', what: 'bytes per inode at 1 M files', bound: '≤ 300', max: 300, fmt: (v) => v.toFixed(0), value: ops('memory: bytes per inode at 1 M files') },
  { issue: 6, suite: 'master', what: 'restart with 1 M files (checkpoint + log), ms', bound: '≤ 5000 ms', max: 5000, fmt: (v) => `${v.toFixed(0)} ms`, value: (r) => r?.extra?.restart?.restartMs },
  // issue 7: worker
  { issue: 7, suite: 'worker', what: 'short-circuit read of a cached 1 GiB file vs memcpy', bound: '≥ 0.8×', min: 0.8, fmt: x, value: ratio('short-circuit read') },
  { issue: 7, suite: 'worker', what: 'TCP read (readBlock stream) vs raw socket', bound: '≥ 0.8×', min: 0.8, fmt: x, value: ratio('TCP read (readBlock stream)') },
  { issue: 7, suite: 'worker', what: '1 MiB values vs Redis GET (ioredis), short-circuit, 8 in flight', bound: '≥ 3×', min: 3, fmt: x, value: ratio('Tessera short-circuit 1 MiB values (8 in flight)') },
  { issue: 7, suite: 'worker', what: '1 MiB values vs Redis GET (ioredis), over TCP, 8 in flight', bound: '≥ 3×', min: 3, fmt: x, value: ratio('Tessera readBlock 1 MiB values (TCP, 8 in flight)') },
  // issue 8: client
  { issue: 8, suite: 'client', what: 'client read TCP vs worker-level TCP read (next block asked for ahead, as the client)', bound: '≥ 0.9×', min: 0.9, fmt: x, value: ratio('client read TCP') },
  { issue: 8, suite: 'client', what: 'client read short-circuit vs worker-level short-circuit read', bound: '≥ 0.9×', min: 0.9, fmt: x, value: ratio('client read short-circuit') },
  { issue: 8, suite: 'client', what: 'client read WebSocket vs worker-level read (next block ahead)', bound: '≥ 0.9×', min: 0.9, fmt: x, value: ratio('client read WebSocket') },
  { issue: 8, suite: 'client', what: 'client read TLS vs worker-level read (next block ahead)', bound: '≥ 0.9×', min: 0.9, fmt: x, value: ratio('client read TLS') },
  { issue: 8, suite: 'client', what: '4 KiB files created, written, closed and read back over TCP', bound: '≥ 5 K/s', min: 5e3, fmt: rate, value: ops('client 4 KiB create+write+close+read TCP') },
];

/** Evaluates every target against `results` (suite name -> parsed JSON). */
export function evaluate(results) {
  return TARGETS.map((t) => {
    const v = t.value(results[t.suite]);
    if (typeof v !== 'number' || !Number.isFinite(v)) return { ...t, shown: 'not measured', status: 'not measured' };
    const met = t.min !== undefined ? v >= t.min : v <= t.max;
    return { ...t, shown: t.fmt(v), status: met ? 'met' : 'NOT met' };
  });
}
