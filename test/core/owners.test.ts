import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { OwnerTable, R_PINS, readProcessStartToken } from '../../core/owners.js';

test('readProcessStartToken reads field 22 of /proc/<pid>/stat and is stable for a live process', () => {
  const self = readProcessStartToken('self');
  assert.type(self, 'number');
  assert.ok(Number.isInteger(self) && self! > 0);
  assert.is(readProcessStartToken(process.pid), self);
});

test('readProcessStartToken is undefined for a process that has exited', () => {
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  const pid = Number(child.stdout.trim());
  assert.ok(pid > 0);
  assert.is(readProcessStartToken(pid), undefined);
});

function table(limit: number): OwnerTable {
  const slots = 4;
  const recordSlots = 16;
  const words = new Int32Array(new SharedArrayBuffer(OwnerTable.strideWords(recordSlots) * slots * 4 + 64));
  return new OwnerTable(words, new Float64Array(words.buffer), 0, slots, recordSlots, limit);
}

test('claim gives distinct slots until none is left; free makes a slot claimable again', () => {
  const t = table(8);
  const got = [0, 1, 2, 3].map(() => t.claim(process.pid, 0, 1, Date.now()));
  assert.equal(got, [0, 1, 2, 3]);
  assert.is(t.claim(process.pid, 0, 1, Date.now()), -1);
  const gen = t.gen(2);
  t.free(2);
  assert.not.ok(t.isLive(2));
  assert.is(t.claim(process.pid, 7, 1, Date.now()), 2);
  assert.ok(t.gen(2) > gen, 'a reclaimed slot has a new generation');
  assert.is(t.threadId(2), 7);
});

test('pin records behave like a Map of counts with a limit on distinct entries (fast-check)', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 300 }), (ops) => {
    const t = table(7);
    const o = t.claim(process.pid, 0, 1, 0);
    const model = new Map<number, number>();
    for (const [add, entry] of ops) {
      if (add) {
        const ok = t.add(o, entry, R_PINS);
        assert.is(ok, model.has(entry) || model.size < 7);
        if (ok) model.set(entry, (model.get(entry) ?? 0) + 1);
      } else {
        const ok = t.sub(o, entry, R_PINS);
        assert.is(ok, model.has(entry));
        if (ok) {
          const n = model.get(entry)! - 1;
          if (n === 0) model.delete(entry);
          else model.set(entry, n);
        }
      }
      for (let e = 0; e <= 40; e++) assert.is(t.countOf(o, e, R_PINS), model.get(e) ?? 0);
    }
    const seen = new Map<number, number>();
    t.forEachRecord(o, (e, _views, pins) => seen.set(e, pins));
    assert.equal(seen, model);
  }), { numRuns: 200 });
});

test.run();
