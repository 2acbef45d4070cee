#!/usr/bin/env node
// Builds the native module: `cargo build --release --offline` (the crate has no dependencies,
// so no registry access is needed), then copies the cdylib to native/tessera.node, where
// native/index.ts looks for it. Exits non-zero with one line when it cannot build; the caller
// (scripts/build.mjs) then falls back to the pure-TS paths. A rebuild with nothing changed
// takes well under a second (cargo is incremental).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const targetDir = join(here, 'target');
const out = join(here, 'tessera.node');
const BUILD_TIMEOUT_MS = 300_000;

function fail(message) {
  console.error(`native: ${message}; the pure-TS fallback will be used`);
  process.exit(1);
}

if (process.platform !== 'linux') fail(`platform ${process.platform} is not supported (Linux only)`);
const cargo = process.env.CARGO ?? 'cargo';
const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) fail('cargo not found (install Rust from https://rustup.rs to build it)');

const build = spawnSync(cargo, ['build', '--release', '--offline', '--quiet', '--manifest-path', join(here, 'Cargo.toml')], {
  cwd: here,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, CARGO_TARGET_DIR: targetDir },
  timeout: BUILD_TIMEOUT_MS,
});
if (build.error) fail(`cargo build did not finish: ${build.error.message}`);
if (build.status !== 0) fail(`cargo build failed with status ${build.status}`);

const lib = join(targetDir, 'release', 'libtessera_native.so');
if (!existsSync(lib)) fail(`cargo build produced no ${lib}`);
// Copy, then rename over the old file: a running process that has the old module loaded
// keeps its (unlinked) copy instead of seeing its code change under it.
const tmp = `${out}.${process.pid}.tmp`;
try {
  copyFileSync(lib, tmp);
  renameSync(tmp, out);
} catch (err) {
  rmSync(tmp, { force: true });
  fail(`cannot install ${out}: ${err.message}`);
}
