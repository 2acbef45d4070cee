#!/usr/bin/env node
// Prints bench/results/<suite>.json as Markdown tables, for bench/RESULTS.md:
//   node scripts/bench-tables.mjs [suite ...]
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'results');
const wanted = process.argv.slice(2);
const suites = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5))
  .filter((s) => wanted.length === 0 || wanted.includes(s)).sort();

const rate = (n) => n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} K` : n.toFixed(1);
const bw = (n) => n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB/s` : `${(n / 1e6).toFixed(1)} MB/s`;
const cell = (s) => String(s ?? '').replaceAll('|', '\\|');

for (const suite of suites) {
  const r = JSON.parse(readFileSync(join(dir, `${suite}.json`), 'utf8'));
  console.log(`### ${suite} (\`npm run bench -- ${suite}\`, ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.node})\n`);
  console.log('| row | ops/s | bandwidth | ratio | note |');
  console.log('|---|---|---|---|---|');
  for (const row of r.rows) {
    const ratio = row.ratio !== undefined ? `${row.ratio.toFixed(2)}× ${cell(row.baseline)}` : '';
    console.log(`| ${cell(row.name)} | ${rate(row.opsPerSec)} | ${row.bytesPerSec ? bw(row.bytesPerSec) : ''} | ${ratio} | ${cell(row.note)} |`);
  }
  if (r.extra) console.log(`\n<details><summary>extra</summary>\n\n\`\`\`json\n${JSON.stringify(r.extra, null, 2)}\n\`\`\`\n</details>`);
  console.log('');
}
