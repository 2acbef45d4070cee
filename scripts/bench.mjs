#!/usr/bin/env node
// Runs benchmark suites: `npm run bench -- cache` runs dist/bench/**/cache*.bench.js, etc.
// With no argument, every suite. Suites print a table and write JSON to bench/results/.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const b = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (b.status !== 0) process.exit(1);

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.bench.js')) out.push(p);
  }
  return out.sort();
}
const suites = find(join(root, 'dist', 'bench')).filter((f) => filters.length === 0 || filters.some((s) => relative(join(root, 'dist', 'bench'), f).includes(s)));
if (suites.length === 0) { console.error(`bench: no suite matches ${filters.join(' ')}`); process.exit(1); }
let status = 0;
for (const s of suites) {
  console.log(`\n## ${relative(root, s)}`);
  const r = spawnSync(process.execPath, ['--expose-gc', s, ...process.argv.slice(2).filter((a) => a.startsWith('-'))], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) status = 1;
}
process.exit(status);
