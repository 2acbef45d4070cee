#!/usr/bin/env node
// bench/results/<suite>.json as Markdown: the issues' targets (scripts/bench-targets.mjs)
// checked against the last run of each suite, then every suite's table.
//   node scripts/bench-tables.mjs [suite ...]          print to stdout
//   node scripts/bench-tables.mjs --write               rewrite bench/RESULTS.md
// bench/RESULTS.md is only ever written from the JSON, so its figures are the measured ones.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluate } from './bench-targets.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'bench', 'results');
const write = process.argv.includes('--write');
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const suites = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5))
  .filter((s) => wanted.length === 0 || wanted.includes(s)).sort();
const results = Object.fromEntries(suites.map((s) => [s, JSON.parse(readFileSync(join(dir, `${s}.json`), 'utf8'))]));

const rate = (n) => n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} K` : n.toFixed(1);
const bw = (n) => n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB/s` : `${(n / 1e6).toFixed(1)} MB/s`;
const cell = (s) => String(s ?? '').replaceAll('|', '\\|');
const when = (r) => `${r.date.slice(0, 16).replace('T', ' ')} UTC`;

const out = [];
const say = (line = '') => out.push(line);

if (write) {
  say('# Benchmark results');
  say();
  say('Written by `node scripts/bench-tables.mjs --write` from `bench/results/*.json`, the JSON');
  say('that `npm run bench -- <suite>` writes; nothing here is typed in by hand. Every ratio is');
  say('against a peer measured in the same run of the same suite (lru-cache, lmdb, Redis, a raw');
  say('socket, memcpy). The machine is a shared 2-core VM: figures move by ±20 % between runs, and');
  say('a row measured while something else ran can be far lower; rerun a suite to check a figure.');
  say();
  say('## Targets of the issues');
  say();
  say('| issue | target | bound | measured | status | suite (run) |');
  say('|---|---|---|---|---|---|');
  for (const t of evaluate(results)) {
    const r = results[t.suite];
    say(`| ${t.issue} | ${cell(t.what)} | ${t.bound} | ${t.shown} | ${t.status} | \`npm run bench -- ${t.suite}\`${r ? ` (${when(r)})` : ''} |`);
  }
  say();
  const notesFile = join(root, 'bench', 'RESULTS.notes.md');
  try {
    say(readFileSync(notesFile, 'utf8').trimEnd());
    say();
  } catch { /* no notes */ }
  say('## Every row');
  say();
}

for (const suite of suites) {
  const r = results[suite];
  say(`### ${suite} (\`npm run bench -- ${suite}\`, ${when(r)}, ${r.node}, ${r.cpu})`);
  say();
  say('| row | ops/s | bandwidth | ratio | note |');
  say('|---|---|---|---|---|');
  for (const row of r.rows) {
    const ratio = row.ratio !== undefined ? `${row.ratio.toFixed(2)}× ${cell(row.baseline)}` : '';
    say(`| ${cell(row.name)} | ${rate(row.opsPerSec)} | ${row.bytesPerSec ? bw(row.bytesPerSec) : ''} | ${ratio} | ${cell(row.note)} |`);
  }
  if (r.extra) say(`\n<details><summary>extra</summary>\n\n\`\`\`json\n${JSON.stringify(r.extra, null, 2)}\n\`\`\`\n</details>`);
  say();
}

if (write) {
  writeFileSync(join(root, 'bench', 'RESULTS.md'), out.join('\n'));
  // README.md shows the same targets table between its markers.
  const readmePath = join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const begin = '<!-- bench-targets:begin -->';
  const end = '<!-- bench-targets:end -->';
  const b = readme.indexOf(begin);
  const e = readme.indexOf(end);
  if (b >= 0 && e > b) {
    const rows = ['| issue | target | bound | measured | status |', '|---|---|---|---|---|'];
    for (const t of evaluate(results)) rows.push(`| ${t.issue} | ${cell(t.what)} | ${t.bound} | ${t.shown} | ${t.status} |`);
    writeFileSync(readmePath, `${readme.slice(0, b + begin.length)}\n${rows.join('\n')}\n${readme.slice(e)}`);
  }
} else {
  console.log(out.join('\n'));
}
