/**
 * Named limits and defaults. Every bound the code checks lives here or in configuration.
 * Units are at the end of names.
 */

export const KIB = 1024;
export const MIB = 1024 * KIB;
export const GIB = 1024 * MIB;

// Ports and intervals (DESIGN.md, "Defaults").
export const DEFAULT_MASTER_RPC_PORT = 19998;
export const DEFAULT_MASTER_WEB_PORT = 19999;
export const DEFAULT_WORKER_RPC_PORT = 29999;
export const DEFAULT_WORKER_WEB_PORT = 30000;
export const DEFAULT_BLOCK_SIZE_BYTES = 64 * MIB;
export const DEFAULT_JOURNAL_LOG_ROLL_BYTES = 10 * MIB;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;
export const DEFAULT_WORKER_TIMEOUT_MS = 10_000;
