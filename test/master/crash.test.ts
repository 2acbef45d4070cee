/**
 * Durability of the whole master: a child process creates files through a real journal and
 * is SIGKILLed mid-stream; after replay every acknowledged create is there, with its
 * attributes, and the namespace is usable.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileSystemMaster } from '../../master/file-system-master.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-child.js');

test('after a SIGKILL, replay keeps every acknowledged createFile', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-master-crash-'));
  try {
    for (let round = 0; round < 3; round++) {
      const acked = new Set<number>();
      const p = spawn(process.execPath, [child, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      const target = 500 + round * 700;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('child too slow')), 60_000);
        p.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const l of lines) if (l !== 'ready') acked.add(Number(l));
          if (acked.size >= target) { clearTimeout(timer); p.kill('SIGKILL'); resolve(); }
        });
        p.once('exit', (code) => { clearTimeout(timer); if (acked.size < target) reject(new Error(`child exited with ${code}`)); });
      });
      await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(undefined) : p.once('exit', r)));
      const m = await FileSystemMaster.open({ journalDir: dir });
      try {
        const names = new Set<string>();
        let startAfter: string | undefined;
        for (;;) {
          const page = await m.listStatus({ path: '/crash', ...(startAfter ? { startAfter } : {}) });
          for (const e of page.entries) names.add(e.name);
          if (!page.truncated) break;
          startAfter = page.entries[page.entries.length - 1]!.name;
        }
        for (const i of acked) assert.ok(names.has(`f${i}`), `acknowledged /crash/f${i} survived`);
        const one = [...acked][0]!;
        assert.is((await m.getStatus({ path: `/crash/f${one}` })).ttlMs, one);
        // The namespace takes writes after replay; clear it for the next round's child.
        await m.delete({ path: '/crash', recursive: true });
      } finally {
        await m.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
