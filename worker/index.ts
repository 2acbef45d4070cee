/**
 * The worker host's public surface: the host, its tiered block store and the pure parts
 * (allocation policies, locks, leases) for tests and tools. The wire messages it serves are
 * in transports/protocol/worker.ts.
 */
export { WorkerHost } from './worker-host.js';
export type { WorkerHostOptions } from './worker-host.js';
export { TieredBlockStore, BlockWriter } from './tiered-store.js';
export type { TierSpec, BlockMeta, BlockReader, CommitOptions } from './tiered-store.js';
export { FileTier, FileTempBlock } from './file-tier.js';
export type { FileTierOptions, TierDirOptions, FileBlockEntry } from './file-tier.js';
export { MemTier, removeStaleArenas } from './mem-tier.js';
export type { MemBacking, MemTierOptions } from './mem-tier.js';
export {
  maxFree, greedy, roundRobin, allocationPolicy, chooseVictimsLru, ALLOCATION_POLICY_NAMES,
} from './allocation-policy.js';
export type { AllocationPolicy, AllocationPolicyName, AllocationChoice, DirSpace, VictimCandidate } from './allocation-policy.js';
export { BlockLocks } from './block-locks.js';
export { LeaseTable } from './leases.js';
export { PersistQueue, persistBackoffMs, WORKER_STATE_FILE, WORKER_STATE_VERSION } from './persist-queue.js';
export type { PersistJob } from './persist-queue.js';
export { MasterLink } from './master-link.js';
export { isSameHost } from './data-server.js';
export {
  WorkerService, WORKER_METHODS, WORKER_PROTOCOL_VERSION, WORKER_SERVICE_NAME,
} from '../transports/protocol/worker.js';
export type * from '../transports/protocol/worker.js';
