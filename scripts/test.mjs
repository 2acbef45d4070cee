#!/usr/bin/env node
// Runs every test file (dist/test/**/*.test.js) in its own process, two at a time, and ends
// with one line `N passed, N failed`. Arguments filter test files by substring:
//   npm test -- journal transports
// The TypeScript build runs first so the tests always see the current sources.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const FILE_TIMEOUT_MS = Number(process.env.TESSERA_TEST_TIMEOUT_MS ?? 600_000);

const build = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
  cwd: root, stdio: 'inherit',
});
if (build.status !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const files = findTests(join(root, 'dist', 'test'))
  .filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));

let passed = 0;
let failed = 0;
const failedFiles = [];

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--expose-gc', file], { cwd: root, env: { ...process.env, FORCE_COLOR: '0' } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { out += `\n[test runner] killed after ${FILE_TIMEOUT_MS} ms\n`; child.kill('SIGKILL'); }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
      let bad = total - ok;
      if ((code !== 0 || signal) && bad === 0) bad = 1; // a crash or a failure outside a test counts
      if (total === 0 && bad === 0) bad = 1; // a file that ran no test is a defect
      passed += ok;
      failed += bad;
      const name = relative(root, file);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (bad > 0) {
        failedFiles.push(name);
        process.stdout.write(`\n--- FAIL ${name} (${secs} s, exit ${code ?? signal})\n${out}\n`);
      } else {
        process.stdout.write(`ok   ${name}: ${ok} passed (${secs} s)\n`);
      }
      resolve();
    });
  });
}

const concurrency = Math.max(1, Math.min(2, cpus().length));
const queue = [...files];
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (queue.length > 0) await runFile(queue.shift());
}));

if (failedFiles.length > 0) console.log(`\nfailed files:\n  ${failedFiles.join('\n  ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
