#!/usr/bin/env node
// Builds the native module with @napi-rs/cli, as issue 3 asks:
//   napi build --release --package-json-path ../package.json --config-path napi.json
//              --output-dir . --target-dir target -- --offline
// run from native/. napi v3 wants a package.json (it reads the package name; the repo's own is
// used, so native/ holds none: one there would turn native/index.ts into CommonJS) and a
// config naming the binary (napi.json: binaryName "tessera", so the file is tessera.node, where
// native/index.ts looks for it). The crate has no dependencies and declares N-API by hand
// (src/ffi.rs), so napi finds no napi-derive and generates no JS/.d.ts binding (it prints a
// WARNING saying so); it runs `cargo metadata` and `cargo build`, offline here
// (CARGO_NET_OFFLINE, --offline: the crate registry is not reachable), and installs the
// cdylib with a copy and a rename, so a process that has the old module loaded keeps its copy.
//
// Without @napi-rs/cli (a production install, devDependencies omitted), or with
// TESSERA_NATIVE_BUILD=cargo, the same build is plain `cargo build --release --offline` and a
// copy + rename. Either way the new
// module is loaded once in a child process before this script reports success.
//
// Exits non-zero with one line when it cannot build (not Linux, no cargo, a failed build); the
// caller (scripts/build.mjs, run by `npm install` through the "prepare" script) then carries on
// with the pure-TS fallback.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const targetDir = join(here, 'target');
const out = join(here, 'tessera.node');
const BUILD_TIMEOUT_MS = 300_000;
/** The built module must load in a fresh process and export what native/index.ts checks first. */
const LOAD_CHECK = 'const m = require(process.argv[1]); if (typeof m.abiVersion !== "number" || typeof m.crc32c !== "function") process.exit(3);';

function fail(message) {
  console.error(`native: ${message}; the pure-TS fallback will be used`);
  process.exit(1);
}

if (process.platform !== 'linux') fail(`platform ${process.platform} is not supported (Linux only)`);
const cargo = process.env.CARGO ?? 'cargo';
const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) fail('cargo not found (install Rust from https://rustup.rs to build it)');

/** The @napi-rs/cli entry point, or undefined when it is not installed. */
function napiCli() {
  try {
    const pkgPath = createRequire(join(root, 'package.json')).resolve('@napi-rs/cli/package.json');
    const bin = createRequire(pkgPath)(pkgPath).bin?.napi;
    return bin ? join(dirname(pkgPath), bin) : undefined;
  } catch {
    return undefined;
  }
}

const env = { ...process.env, CARGO_TARGET_DIR: targetDir, CARGO_NET_OFFLINE: 'true' };
const cli = process.env.TESSERA_NATIVE_BUILD === 'cargo' ? undefined : napiCli();
let how;
if (cli) {
  how = 'napi build --release';
  const build = spawnSync(process.execPath, [
    cli, 'build', '--release', '--package-json-path', join(root, 'package.json'), '--config-path', join(here, 'napi.json'),
    '--output-dir', here, '--target-dir', targetDir, '--', '--offline', '--quiet',
  ], { cwd: here, encoding: 'utf8', env, timeout: BUILD_TIMEOUT_MS });
  if (build.error) fail(`napi build did not finish: ${build.error.message}`);
  if (build.status !== 0) {
    process.stderr.write(`${build.stdout}${build.stderr}`);
    fail(`napi build failed with status ${build.status}`);
  }
} else {
  how = 'cargo build --release (no @napi-rs/cli installed)';
  const build = spawnSync(cargo, ['build', '--release', '--offline', '--quiet', '--manifest-path', join(here, 'Cargo.toml')], {
    cwd: here, stdio: ['ignore', 'inherit', 'inherit'], env, timeout: BUILD_TIMEOUT_MS,
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
}

if (!existsSync(out)) fail(`${how} produced no ${out}`);
const load = spawnSync(process.execPath, ['-e', LOAD_CHECK, out], { encoding: 'utf8', timeout: 30_000 });
if (load.status !== 0) fail(`${out} was built (${how}) but does not load: ${(load.stderr || `status ${load.status}`).trim().split('\n')[0]}`);
