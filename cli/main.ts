/**
 * The `tessera` command (bin/tessera.js loads this file from dist/). Commander parses; each
 * action loads the configuration (defaults < tessera.json < TESSERA_* < flags), runs, and
 * exits with a code scripts can trust (cli/output.ts): 0 ok, 1 operating error with its
 * TesseraError code printed, 2 usage error. `tessera fs test` exits 0 (true) or 1 (false).
 */
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, type TesseraConfig } from './config.js';
import { EXIT_OK, EXIT_USAGE, makeOut, reportError, type Out } from './output.js';
import * as fsc from './fs-commands.js';
import type { FileSystem } from '../client/file-system.js';

const VERSION = '0.1.0';

interface GlobalOpts { json?: boolean; master?: string; config?: string }

function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

function configFor(cmd: Command, flags: Partial<Record<keyof TesseraConfig, unknown>> = {}): TesseraConfig {
  const g = globals(cmd);
  return loadConfig({ ...(g.config !== undefined ? { file: g.config } : {}), flags: { masterAddress: g.master, ...flags } }).config;
}

/** Wraps an action: output, errors and exit code in one place. */
function run(fn: (out: Out, cmd: Command, ...args: unknown[]) => Promise<number | void>) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const json = globals(cmd).json === true;
    const out = makeOut(json);
    let code: number;
    try {
      code = (await fn(out, cmd, ...args.slice(0, -1))) ?? EXIT_OK;
    } catch (err) {
      code = reportError(err, json);
    }
    process.exitCode = code;
  };
}

/** Runs `fn` with a client connected to the configured master, closing it afterwards. */
async function withFs<T>(cmd: Command, fn: (fs: FileSystem, cfg: TesseraConfig) => Promise<T>): Promise<T> {
  const cfg = configFor(cmd);
  const { connect } = await import('../client/connect.js');
  const fs = await connect(cfg.masterAddress, {
    defaultReadType: cfg.readType, defaultWriteType: cfg.writeType, defaultBlockSize: cfg.blockSizeBytes,
    locationPolicy: cfg.locationPolicy, ...(cfg.authToken ? { authToken: cfg.authToken } : {}),
  });
  try {
    return await fn(fs, cfg);
  } finally {
    await fs.close();
  }
}

function serverFlags(o: Record<string, unknown>): Partial<Record<keyof TesseraConfig, unknown>> {
  const keys: (keyof TesseraConfig)[] = [
    'host', 'masterRpcPort', 'masterWebPort', 'workerRpcPort', 'workerWebPort', 'dataDir', 'journalDir', 'ufsRoot',
    'workerDir', 'workerMemBytes', 'blockSizeBytes', 'heartbeatIntervalMs', 'workerTimeoutMs',
  ];
  const flags: Partial<Record<keyof TesseraConfig, unknown>> = {};
  for (const k of keys) if (o[k] !== undefined) flags[k] = o[k];
  if (o.workerTier !== undefined) flags.workerTiers = o.workerTier; // --worker-tier, repeated
  return flags;
}

/** Commander collector of a repeatable option. */
function repeated(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
const WORKER_TIER_HELP = 'an SSD or HDD directory below MEM, ALIAS:PATH:SIZE (e.g. SSD:/mnt/ssd:100GiB); repeat for more';

export function buildProgram(): Command {
  const program = new Command('tessera')
    .description('Tessera: a memory-centric distributed block store for Node.js')
    .version(VERSION, '-V, --version')
    .option('--json', 'machine-readable output (JSON on stdout, errors as JSON on stderr)')
    .option('--master <address>', 'master address (default: TESSERA_MASTER_ADDRESS, tessera.json, tcp://127.0.0.1:19998)')
    .option('--config <file>', 'configuration file (default: ./tessera.json, or TESSERA_CONFIG)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addHelpText('after', `
Configuration: defaults, then tessera.json, then TESSERA_* environment variables
(e.g. TESSERA_MASTER_ADDRESS, TESSERA_BLOCK_SIZE_BYTES=64MiB), then flags.
Exit codes: 0 success, 1 operating error (its TESSERA_ERR_* code is printed), 2 usage error.`);

  const dataOpts = (c: Command) => c
    .option('--host <host>', 'host to bind and advertise (default 127.0.0.1)')
    .option('--data-dir <dir>', 'data directory (default ./tessera-data)', undefined)
    .option('--journal-dir <dir>', 'journal directory (default <data-dir>/journal)');

  dataOpts(program.command('format'))
    .description('create an empty journal (refuses a directory that already holds one unless --force)')
    .option('--force', 'erase an existing journal first')
    .action(run(async (out, cmd, o) => {
      const cfg = configFor(cmd, serverFlags(o as Record<string, unknown>));
      const s = await import('./server-commands.js');
      await s.format(cfg, { force: (o as { force?: boolean }).force === true }, out);
    }));

  dataOpts(program.command('master'))
    .description('run a master')
    .option('--master-rpc-port <port>', 'RPC port (default 19998)')
    .option('--master-web-port <port>', 'web/REST/metrics port (default 19999)')
    .option('--ufs-root <dir>', 'local UFS directory mounted at /ufs (default <data-dir>/ufs)')
    .option('--worker-timeout-ms <ms>', 'a worker silent this long is lost (default 10s)')
    .action(run(async (out, cmd, o) => {
      const cfg = configFor(cmd, serverFlags(o as Record<string, unknown>));
      const s = await import('./server-commands.js');
      return s.runMaster(cfg, out);
    }));

  dataOpts(program.command('worker'))
    .description('run a worker that registers with --master')
    .option('--worker-rpc-port <port>', 'data port (default 29999)')
    .option('--worker-web-port <port>', 'web port (default 30000)')
    .option('--worker-dir <dir>', 'tier directories root (default <data-dir>/worker)')
    .option('--worker-mem-bytes <size>', 'MEM tier capacity (default 1GiB)')
    .option('--worker-tier <ALIAS:PATH:SIZE>', WORKER_TIER_HELP, repeated)
    .action(run(async (out, cmd, o) => {
      const cfg = configFor(cmd, serverFlags(o as Record<string, unknown>));
      const s = await import('./server-commands.js');
      return s.runWorker(cfg, out);
    }));

  dataOpts(program.command('local'))
    .description('run a master and one worker in one process: the quick start')
    .option('--master-rpc-port <port>', 'master RPC port (default 19998; 0 picks a free one)')
    .option('--master-web-port <port>', 'master web port (default 19999)')
    .option('--worker-rpc-port <port>', 'worker data port (default 29999; 0 picks a free one)')
    .option('--worker-web-port <port>', 'worker web port (default 30000)')
    .option('--ufs-root <dir>', 'local UFS directory mounted at /ufs (default <data-dir>/ufs)')
    .option('--worker-mem-bytes <size>', 'MEM tier capacity (default 1GiB)')
    .option('--worker-tier <ALIAS:PATH:SIZE>', WORKER_TIER_HELP, repeated)
    .option('--block-size-bytes <size>', 'default block size of new files (default 64MiB)')
    .action(run(async (out, cmd, o) => {
      const cfg = configFor(cmd, serverFlags(o as Record<string, unknown>));
      const s = await import('./server-commands.js');
      return s.runLocal(cfg, out);
    }));

  program.command('report')
    .description('cluster summary: capacity, workers, files')
    .action(run(async (out, cmd) => withFs(cmd, async (fs, cfg) => {
      const s = await import('./server-commands.js');
      await s.report(fs, cfg, out);
    })));

  program.command('doctor')
    .description('which native and fallback paths this machine uses, and why')
    .action(run(async (out) => {
      const s = await import('./server-commands.js');
      await s.doctor(out);
    }));

  const journal = program.command('journal').description('journal tools');
  journal.command('dump')
    .description('print a journal in readable form (entries, sequence numbers, types)')
    .argument('[dir]', 'journal directory (default <data-dir>/journal)')
    .action(run(async (out, cmd, dir) => {
      const cfg = configFor(cmd);
      const s = await import('./server-commands.js');
      await s.journalDump((dir as string | undefined) ?? cfg.journalDir, out);
    }));

  addFsCommands(program.command('fs').description('file system commands against the master (--master)'));

  // Every command and subcommand: usage errors are thrown, not printed-and-exited.
  const walk = (c: Command) => { c.exitOverride(); c.showHelpAfterError('(run with --help for usage)'); c.commands.forEach(walk); };
  walk(program);
  return program;
}

function addFsCommands(fs: Command): void {
  const fsAction = (fn: (f: FileSystem, out: Out, cmd: Command, ...args: unknown[]) => Promise<number | void>) =>
    run(async (out, cmd, ...args) => withFs(cmd, (f) => fn(f, out, cmd, ...args)));
  const o = (cmd: Command) => cmd.opts() as Record<string, unknown>;

  fs.command('ls').description('list a directory (or a file)')
    .helpOption('--help', 'display help for command')
    .argument('[path]', 'path', '/')
    .option('-R, --recursive', 'list the whole tree')
    .option('-h, --human', 'sizes in KiB/MiB/GiB')
    .action(fsAction((f, out, cmd, p) => fsc.ls(f, p as string, o(cmd), out)));
  fs.command('mkdir').description('create directories')
    .argument('<paths...>')
    .option('-p, --parents', 'create missing parents; no error if it exists')
    .action(fsAction((f, out, cmd, ps) => fsc.mkdir(f, ps as string[], o(cmd), out)));
  fs.command('cat').description('print a file').argument('<path>')
    .option('--read-type <type>', 'CACHE_PROMOTE, CACHE or NO_CACHE')
    .action(fsAction((f, out, cmd, p) => fsc.cat(f, p as string, o(cmd), out)));
  fs.command('head').description('print the first bytes of a file').argument('<path>')
    .option('-c, --bytes <size>', 'how many bytes (default 1KiB)')
    .action(fsAction((f, out, cmd, p) => fsc.head(f, p as string, o(cmd), out)));
  fs.command('tail').description('print the last bytes of a file').argument('<path>')
    .option('-c, --bytes <size>', 'how many bytes (default 1KiB)')
    .action(fsAction((f, out, cmd, p) => fsc.tail(f, p as string, o(cmd), out)));
  fs.command('touch').description('create an empty file').argument('<path>')
    .action(fsAction((f, out, cmd, p) => fsc.touch(f, p as string, o(cmd), out)));
  fs.command('rm').description('remove files (and directories with -R)').argument('<paths...>')
    .option('-R, --recursive', 'remove directories and their contents')
    .action(fsAction((f, out, cmd, ps) => fsc.rm(f, ps as string[], o(cmd), out)));
  fs.command('mv').description('rename or move').argument('<src>').argument('<dst>')
    .action(fsAction((f, out, cmd, s, d) => fsc.mv(f, s as string, d as string, o(cmd), out)));
  fs.command('stat').description('status of a file or directory').argument('<path>')
    .action(fsAction((f, out, cmd, p) => fsc.stat(f, p as string, o(cmd), out)));
  fs.command('du').description('sizes of the files under a path')
    .helpOption('--help', 'display help for command')
    .argument('<path>')
    .option('-s, --summarize', 'one total')
    .option('-h, --human', 'sizes in KiB/MiB/GiB')
    .action(fsAction((f, out, cmd, p) => fsc.du(f, p as string, o(cmd), out)));
  fs.command('count').description('files, folders and bytes under a path')
    .helpOption('--help', 'display help for command')
    .argument('<path>')
    .option('-h, --human', 'sizes in KiB/MiB/GiB')
    .action(fsAction((f, out, cmd, p) => fsc.count(f, p as string, o(cmd), out)));
  fs.command('copyFromLocal').alias('put').description('copy a local file into Tessera (progress bar on a terminal)')
    .argument('<local>').argument('<remote>')
    .addOption(new Option('--write-type <type>', 'write type').choices(['MUST_CACHE', 'CACHE_THROUGH', 'THROUGH', 'ASYNC_THROUGH']))
    .option('--block-size <size>', 'block size, e.g. 64MiB')
    .option('-f, --overwrite', 'replace an existing file')
    .action(fsAction((f, out, cmd, l, r) => fsc.copyFromLocal(f, l as string, r as string, o(cmd), out)));
  fs.command('copyToLocal').alias('get').description('copy a file out of Tessera (progress bar on a terminal)')
    .argument('<remote>').argument('<local>')
    .addOption(new Option('--read-type <type>', 'read type').choices(['CACHE_PROMOTE', 'CACHE', 'NO_CACHE']))
    .action(fsAction((f, out, cmd, r, l) => fsc.copyToLocal(f, r as string, l as string, o(cmd), out)));
  fs.command('mount').description('mount a UFS URI (a local directory: /abs/dir or file:///abs/dir) at a path; no arguments: list mounts')
    .argument('[path]').argument('[ufsUri]')
    .option('--readonly', 'mount read-only')
    .action(fsAction(async (f, out, cmd, p, u) => {
      if (p === undefined) return fsc.mountTable(f, o(cmd), out);
      if (u === undefined) { const { UsageError } = await import('./output.js'); throw new UsageError('mount needs <path> and <ufsUri>'); }
      return fsc.mount(f, p as string, u as string, o(cmd), out);
    }));
  fs.command('unmount').description('unmount a path').argument('<path>')
    .action(fsAction((f, out, cmd, p) => fsc.unmount(f, p as string, o(cmd), out)));
  fs.command('pin').description('keep a file (or tree) in memory').argument('<path>')
    .action(fsAction((f, out, _cmd, p) => fsc.pin(f, p as string, true, out)));
  fs.command('unpin').description('let a file be evicted again').argument('<path>')
    .action(fsAction((f, out, _cmd, p) => fsc.pin(f, p as string, false, out)));
  fs.command('setTtl').description('delete (or free) a file once this long after its creation').argument('<path>').argument('<ttl>', 'e.g. 3600000, 10m, 1h')
    .addOption(new Option('--action <action>', 'what happens at expiry').choices(['delete', 'free', 'DELETE', 'FREE']).default('DELETE'))
    .action(fsAction((f, out, cmd, p, t) => fsc.setTtl(f, p as string, t as string, o(cmd), out)));
  fs.command('unsetTtl').description('remove the TTL of a file').argument('<path>')
    .action(fsAction((f, out, cmd, p) => fsc.unsetTtl(f, p as string, o(cmd), out)));
  fs.command('free').description('drop the cached blocks of persisted files').argument('<path>')
    .option('-f, --force', 'free pinned files too')
    .action(fsAction((f, out, cmd, p) => fsc.free(f, p as string, o(cmd), out)));
  fs.command('load').description('read a file or tree from its UFS into memory (progress bar on a terminal)').argument('<path>')
    .action(fsAction((f, out, cmd, p) => fsc.load(f, p as string, o(cmd), out)));
  fs.command('persist').description('write files to their UFS and wait until persisted').argument('<paths...>')
    .option('--timeout <duration>', 'give up after (default 2m)')
    .action(fsAction((f, out, cmd, ps) => fsc.persist(f, ps as string[], o(cmd), out)));
  fs.command('location').description('where the blocks of a file are').argument('<path>')
    .action(fsAction((f, out, cmd, p) => fsc.location(f, p as string, o(cmd), out)));
  fs.command('checksum').description('checksum of a file (sha256 by default)').argument('<path>')
    .option('--algorithm <name>', 'sha256 or md5', 'sha256')
    .action(fsAction((f, out, cmd, p) => fsc.checksum(f, p as string, o(cmd), out)));
  fs.command('chmod').description('change the mode of a file or directory').argument('<mode>').argument('<path>')
    .option('-R, --recursive', 'the whole tree')
    .action(fsAction((f, out, cmd, m, p) => fsc.chmod(f, m as string, p as string, o(cmd), out)));
  fs.command('test').description('test a path like test(1): exit 0 if true, 1 if false, 2 on an error')
    .argument('<path>')
    .option('-d', 'is a directory').option('-e', 'exists').option('-f', 'is a file')
    .option('-s', 'is a non-empty file or directory').option('-z', 'is a zero-length file')
    .action(run(async (out, cmd, p) => {
      // test(1): 0 true, 1 false, and 2 when the question could not be answered (so an
      // unreachable master never reads as "false").
      try {
        return await withFs(cmd, async (f) => ((await fsc.testPath(f, p as string, o(cmd))) ? 0 : 1));
      } catch (err) {
        reportError(err, out.json);
        return EXIT_USAGE;
      }
    }));
}

export async function main(argv: string[]): Promise<number> {
  // `tessera fs cat big | head`: stop quietly when the reader closes the pipe.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(EXIT_OK); });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
      // Commander already printed the message.
      return EXIT_USAGE;
    }
    return reportError(err, argv.includes('--json'));
  }
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
}

const isMain = process.argv[1] !== undefined && /(?:^|[\\/])(?:tessera(?:\.js)?|main\.js)$/.test(process.argv[1]);
if (isMain) {
  main(process.argv).then((code) => { process.exitCode = code; });
}
