/**
 * The commands that run or inspect servers: format, master, worker, local, report, doctor,
 * journal dump. Long-running commands print their addresses, then wait for SIGINT/SIGTERM
 * and stop cleanly (the hosts close their listeners, the journal is closed, the process
 * exits 0). A second signal while stopping exits at once with code 1. A master whose journal
 * fails stops serving (master/host.ts); the command then prints the error, stops everything
 * and exits 1, so that a supervisor restarts it and the restart replays the journal.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Journal, formatJournal } from '../core/journal/index.js';
import { doctorReport } from '../native/doctor.js';
import { formatBytes } from '../client/options.js';
import { CLI_REPORT_WALK_MAX_INODES } from '../core/constants.js';
import type { FileSystem } from '../client/file-system.js';
import type { TesseraConfig } from './config.js';
import { EXIT_ERROR, reportError, type Out } from './output.js';
import { UFS_MOUNT_PATH, startLocalCluster, startMasterProcess, startWorkerProcess, type RunningServers } from './servers.js';

export async function format(cfg: TesseraConfig, opts: { force: boolean }, out: Out): Promise<void> {
  await mkdir(dirname(cfg.journalDir), { recursive: true });
  await Journal.format(cfg.journalDir, { force: opts.force });
  out.value({ journalDir: cfg.journalDir, formatted: true }, (v) => `Formatted journal ${v.journalDir}`);
}

export async function doctor(out: Out): Promise<void> {
  const text = doctorReport();
  out.value({ report: text.split('\n') }, () => text);
}

export async function journalDump(dir: string, out: Out): Promise<void> {
  const lines = await formatJournal(dir);
  out.value({ journalDir: dir, lines }, (v) => v.lines);
}

/**
 * Prints the addresses and `ready`, then waits for SIGINT or SIGTERM (exit 0), or a failed
 * master journal (exit 1), then stops the servers. The signal handlers go in before `ready`
 * is printed: a supervisor that signals as soon as it reads `ready` gets a clean stop.
 */
async function serveUntilSignal(servers: RunningServers, out: Out): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onFailure = (err: Error) => {
      if (stopping) return;
      stopping = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      reportError(err, out.json);
      process.stderr.write('tessera: the master stopped serving because its journal failed; stopping (restart it to replay the journal)\n');
      const done = () => resolve(EXIT_ERROR);
      servers.stop().then(done, done);
    };
    void servers.failed?.then(onFailure);
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`tessera: ${sig} again, exiting without a clean stop\n`);
        process.exit(1);
      }
      stopping = true;
      if (!out.json) process.stderr.write(`tessera: ${sig} received, stopping...\n`);
      servers.stop().then(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (!out.json) process.stderr.write('tessera: stopped\n');
        resolve(0);
      }, (err: unknown) => {
        process.stderr.write(`tessera: error while stopping: ${err instanceof Error ? err.message : String(err)}\n`);
        resolve(1);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    printAddresses(servers, out);
  });
}

function printAddresses(servers: RunningServers, out: Out): void {
  out.value(servers.info, (v) => [
    ...(v.masterAddress && v.masterHere ? [`master  rpc ${v.masterAddress}${v.masterWebAddress ? `  web ${v.masterWebAddress}` : ''}`] : []),
    ...(v.masterAddress && !v.masterHere ? [`master  ${v.masterAddress} (registering with it)`] : []),
    ...v.workers.map((w) => `worker  rpc ${w.address}${w.webAddress ? `  web ${w.webAddress}` : ''}  mem ${formatBytes(w.memBytes)}`),
    ...(v.journalDir ? [`journal ${v.journalDir}${v.journalFormatted ? ' (new: formatted on first start)' : ''}`] : []),
    ...(v.ufsRoot ? [`ufs     ${v.ufsRoot} mounted at ${UFS_MOUNT_PATH}`] : []),
    ...(v.masterAddress ? [`try:    npx tessera fs --master ${v.masterAddress} ls /`] : []),
    'ready (Ctrl-C to stop)',
  ]);
}

export async function runMaster(cfg: TesseraConfig, out: Out): Promise<number> {
  const s = await startMasterProcess(cfg);
  return serveUntilSignal(s, out);
}

export async function runWorker(cfg: TesseraConfig, out: Out): Promise<number> {
  const s = await startWorkerProcess(cfg);
  return serveUntilSignal(s, out);
}

export async function runLocal(cfg: TesseraConfig, out: Out): Promise<number> {
  const s = await startLocalCluster(cfg);
  return serveUntilSignal(s, out);
}

export async function report(fs: FileSystem, _cfg: TesseraConfig, out: Out): Promise<void> {
  const [info, workers] = await Promise.all([fs.getInfo(), fs.getWorkers()]);
  // Files and bytes come from a walk of the namespace, done only while it is small.
  const root = info.inodeCount <= CLI_REPORT_WALK_MAX_INODES ? await fs.listStatus('/', { recursive: true }) : undefined;
  const files = root?.filter((e) => !e.isDirectory);
  const v = {
    master: fs.masterAddress,
    version: info.version,
    uptimeMs: info.uptimeMs,
    capacityBytes: info.workers.capacityBytes,
    usedBytes: info.workers.usedBytes,
    liveWorkers: info.workers.live,
    lostWorkers: info.workers.lost,
    workers,
    ...(root && files ? {
      fileCount: files.length,
      directoryCount: root.length - files.length,
      fileBytes: files.reduce((n, f) => n + f.lengthBytes, 0),
    } : {}),
    inodeCount: info.inodeCount,
    blockCount: info.blockCount,
    mountCount: info.mountCount,
  };
  out.value(v, (r) => [
    `Tessera cluster summary (master ${r.master}, version ${r.version}, up ${Math.round(r.uptimeMs / 1000)} s)`,
    `  capacity: ${formatBytes(r.capacityBytes)}, used ${formatBytes(r.usedBytes)} (${r.capacityBytes ? ((100 * r.usedBytes) / r.capacityBytes).toFixed(1) : '0.0'}%)`,
    `  workers: ${r.liveWorkers} live, ${r.lostWorkers} lost`,
    ...r.workers.map((w) => `    worker ${w.workerId} ${w.hostname} ${w.address} ${w.state} ${formatBytes(w.usedBytes)}/${formatBytes(w.capacityBytes)} ${w.blockCount} blocks`),
    r.fileCount !== undefined
      ? `  files: ${r.fileCount} (${formatBytes(r.fileBytes ?? 0)}) in ${r.directoryCount} directories, ${r.blockCount} blocks, ${r.mountCount} mounts`
      : `  inodes: ${r.inodeCount} (files and directories), ${r.blockCount} blocks, ${r.mountCount} mounts`,
  ]);
}
