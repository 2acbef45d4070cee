#!/usr/bin/env node
// The build: TypeScript to dist/, then the native module where a Rust toolchain exists.
// A missing or failing Rust build is not an error: every native feature has a TS fallback,
// and `tessera doctor` reports which path is in use.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  return r.status ?? 1;
}

if (!existsSync(tsc)) {
  console.error('build: typescript is not installed; run npm install first');
  process.exit(1);
}
const tscStatus = run(process.execPath, [tsc, '-p', 'tsconfig.json']);
if (tscStatus !== 0) {
  console.error('build: TypeScript reported errors');
  process.exit(tscStatus);
}

if (process.argv.includes('--ts-only') || process.env.TESSERA_SKIP_NATIVE === '1') process.exit(0);
const nativeBuild = join(root, 'native', 'build.mjs');
if (existsSync(nativeBuild)) {
  const status = run(process.execPath, [nativeBuild]);
  if (status !== 0) console.warn('build: native module not built; the pure-TS fallback will be used');
}
