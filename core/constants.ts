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

// Client and command line (issue 8).
/** How many times a read of one block moves on to another source before it gives up. */
export const CLIENT_MAX_READ_ATTEMPTS = 4;
/** How many times a metadata call is retried across a master reconnect (also bounded by CLIENT_RECONNECT_TIMEOUT_MS). */
export const CLIENT_MAX_CALL_ATTEMPTS = 40;
/** First back-off between retries; it doubles up to CLIENT_RETRY_MAX_DELAY_MS. */
export const CLIENT_RETRY_BASE_DELAY_MS = 50;
export const CLIENT_RETRY_MAX_DELAY_MS = 1000;
/** How long a client keeps trying to reach a master that went away before calls fail. */
export const CLIENT_RECONNECT_TIMEOUT_MS = 30_000;
/** Bytes a write stream hands to a worker per chunk. */
export const CLIENT_WRITE_CHUNK_BYTES = 1 * MIB;
/**
 * How long a file reader keeps one block stream (or short-circuit pin) open for sequential
 * reads before it reopens it; well under the worker's lease, so a pin never outlives it.
 */
export const CLIENT_CURSOR_MAX_AGE_MS = 1000;
/**
 * A sequential reader served from a mapped short-circuit view runs in microtasks only; it lets
 * the event loop run once per this many bytes (about a millisecond of copying at 16 GB/s), so
 * the next block's open is answered before this block runs out and other I/O is not starved.
 * Measured (1 GiB in 64 MiB blocks, worker in another process, 30 back-to-back rounds each
 * against memcpy): in the two runs that compared them side by side, 8 MiB gave 0.80-0.86x
 * memcpy and 16 MiB 0.95-0.96x; later runs of 16 MiB alone gave 0.75-0.93x (this VM's
 * swings), so the gain is likely but smaller than those two runs say.
 */
export const CLIENT_VIEW_YIELD_BYTES = 16 * MIB;
/**
 * A client that could not attach to a worker's block engine (every owner slot taken, no
 * read-write access to the arena file) opens blocks one call at a time, and tries to attach
 * again after this long (slots free up as other clients close).
 */
export const CLIENT_ENGINE_RETRY_MS = 10_000;
/** How long a client reuses the master's worker list to place new blocks. */
export const CLIENT_WORKER_LIST_TTL_MS = 1000;
/** Deadline of one metadata call to the master, or one unary call to a worker (a hung server fails the call). */
export const CLIENT_CALL_DEADLINE_MS = 30_000;
/** Deadline of one block read stream; a read past it resumes where it stopped on a new stream. */
export const CLIENT_BLOCK_STREAM_DEADLINE_MS = 120_000;
/** How long a client's reads avoid a worker that failed one (tried again only as a last resort). */
export const CLIENT_SUSPECT_MS = 10_000;
/** Unary calls a client keeps in flight on one connection (below DEFAULT_MAX_IN_FLIGHT_CALLS); more wait their turn. */
export const CLIENT_MAX_CALLS_PER_CONNECTION = 512;
/** Block streams a client keeps open on one worker connection at once (below DEFAULT_MAX_OPEN_STREAMS). */
export const CLIENT_MAX_STREAMS_PER_WORKER = 128;
/** Largest file `readFile` returns as one Buffer. */
export const CLIENT_MAX_READ_FILE_BYTES = 2 * GIB - 1;
/** Default master address for `tessera fs` and `connect()`. */
export const DEFAULT_MASTER_ADDRESS = `tcp://127.0.0.1:${DEFAULT_MASTER_RPC_PORT}`;
/** Default data directory of `tessera local`, relative to the working directory. */
export const DEFAULT_DATA_DIR = './tessera-data';
/** Default MEM tier of a worker started by the command line. */
export const DEFAULT_WORKER_MEM_BYTES = 1 * GIB;
/** Bytes `tessera fs head` and `tail` print unless told otherwise. */
export const CLI_HEAD_TAIL_DEFAULT_BYTES = 1 * KIB;
/** `tessera report` counts files and bytes by walking the namespace only up to this many inodes. */
export const CLI_REPORT_WALK_MAX_INODES = 10_000;
/** Largest recursion depth `tessera fs ls -R` and `du` follow. */
export const CLI_MAX_TREE_DEPTH = 256;

// Master (issue 6).
/** Longest namespace path accepted, in UTF-16 code units (as Linux's PATH_MAX). */
export const MAX_PATH_LENGTH = 4096;
/** Longest single path component (as Linux's NAME_MAX). */
export const MAX_NAME_LENGTH = 255;
/** Deepest namespace path, in components. */
export const MAX_PATH_DEPTH = 256;
/** Block ids are `containerId * 2^BLOCK_SEQUENCE_BITS + sequence` (Alluxio's scheme). */
export const BLOCK_SEQUENCE_BITS = 24;
/** Largest block sequence within one file: 2^24 - 1 blocks of 64 MiB is 1 PiB per file. */
export const MAX_BLOCK_SEQUENCE = 2 ** 24 - 1;
/** Largest inode (container) id, so that every block id stays below 2^53 (MAX_SAFE_INTEGER). */
export const MAX_INODE_ID = 2 ** 29 - 1;
/** Inode slots the master allocates at start-up; the tables double beyond it. */
export const DEFAULT_INITIAL_INODE_CAPACITY = 1024;
/** Most entries one listStatus page returns. */
export const MAX_LIST_PAGE_ENTRIES = 10_000;
/** Most mount points in one namespace. */
export const MAX_MOUNTS = 1024;
/** Most entries a UFS directory listing loads into the namespace at once. */
export const MAX_UFS_LIST_ENTRIES = 1_000_000;
/** Most commands (persist, load) queued for one worker between two heartbeats. */
export const MAX_WORKER_PENDING_COMMANDS = 100_000;
/**
 * Most block ids in one delete or free command of a heartbeat reply; more wait for the next
 * heartbeat. (Pending deletes and frees are never dropped: they are sets of the worker's own
 * blocks, bounded by the blocks the master knows.)
 */
export const MAX_WORKER_COMMAND_BLOCK_IDS = 100_000;
/** Most blocks one worker may report in one register or heartbeat call. */
export const MAX_BLOCK_REPORT_ENTRIES = 10_000_000;
/** Most workers a master tracks. */
export const MAX_WORKERS = 10_000;
/** How often the master checks TTLs and lost workers. */
export const DEFAULT_TTL_CHECK_INTERVAL_MS = 1000;
export const DEFAULT_LOST_WORKER_CHECK_INTERVAL_MS = 1000;
/** Default replication bounds (-1: unbounded, as Alluxio). */
export const DEFAULT_REPLICATION_MIN = 0;
export const DEFAULT_REPLICATION_MAX = -1;

// Transports and RPC (issue 5). Each is the default of an option of the same meaning in
// transports/ (`RpcLimits`); a peer that breaks one gets a TesseraError with a stable code.
/** Wire protocol version sent in the first frame of every connection (HELLO). */
export const PROTOCOL_VERSION = 1;
/** Largest frame payload accepted; checked on the header, before any payload is buffered. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * MIB;
/** Largest payload of one stream data frame; bigger writes are split (zero-copy subarrays). */
export const DEFAULT_STREAM_CHUNK_BYTES = 1 * MIB;
/** Bytes a stream receiver lets the sender have in flight (credit window). */
export const DEFAULT_STREAM_WINDOW_BYTES = 8 * MIB;
/** Calls (of any kind) a connection may have in flight at once. */
export const DEFAULT_MAX_IN_FLIGHT_CALLS = 1024;
/** Byte streams (upload or download calls) a connection may have open at once. */
export const DEFAULT_MAX_OPEN_STREAMS = 256;
/** Connections one RPC listener accepts at once; more get an error frame and are closed. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** A connection that has not finished its HELLO/auth exchange by then is closed. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** A server connection with no call in flight and no frame received for this long is closed. */
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
/** How long connect() waits for the socket and the handshake together. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/**
 * A server holds back new calls of a client while this many bytes wait in that connection's
 * socket (the client is not reading its answers), so a client that floods requests without
 * reading cannot make the server buffer its answers without bound.
 */
export const DEFAULT_MAX_UNSENT_BYTES = 64 * MIB;
/** Small frames of one tick are packed into batches of this size before one socket write. */
export const WRITE_BATCH_BYTES = 64 * KIB;
/** Bytes of the random nonces of the token challenge-response. */
export const AUTH_NONCE_BYTES = 32;
/**
 * Largest frame payload a server accepts from a peer that has not finished its handshake
 * (HELLO is ~100 bytes, AUTH ~50): checked on the header like maxFrameBytes, so an
 * unauthenticated peer can make the server buffer at most this much, not a whole frame.
 */
export const TRANSPORT_HANDSHAKE_FRAME_BYTES = 4 * KIB;
/**
 * The server checks for idleness this many times per idleTimeoutMs and closes after that
 * many quiet checks in a row: an idle connection closes between idleTimeoutMs and
 * idleTimeoutMs * (1 + 2 / this) after its last activity, without reading the clock per frame.
 */
export const TRANSPORT_IDLE_CHECKS_PER_TIMEOUT = 8;

// Worker host (issue 7).
/** Operations waiting for one block's lock before further ones are refused. */
export const WORKER_LOCK_WAITERS_MAX = 1024;
/** A short-circuit pin lasts this long unless the client renews its lease. */
export const WORKER_LEASE_MS = 30_000;
/** How often expired leases are swept. */
export const WORKER_LEASE_SWEEP_INTERVAL_MS = 1000;
/** Short-circuit pins one client (connection) may hold at once. */
export const WORKER_PINS_PER_OWNER_MAX = 4096;
/** Bytes per data frame of a block read stream. */
export const WORKER_STREAM_CHUNK_BYTES = 1 * MIB;
/** Blocks moved out of a tier for one allocation before it gives up. */
export const WORKER_EVICTION_ROUNDS_MAX = 4096;
/** SSD/HDD directories one worker may be configured with (workerTiers, --worker-tier). */
export const WORKER_TIER_DIRS_MAX = 64;
/** Async persistence retries: first back-off, ceiling, and attempts before a job is dropped. */
export const WORKER_PERSIST_RETRY_BASE_MS = 200;
export const WORKER_PERSIST_RETRY_MAX_MS = 30_000;
export const WORKER_PERSIST_ATTEMPTS_MAX = 50;
/** Pending persist jobs kept in the durable list. */
export const WORKER_PERSIST_PENDING_MAX = 100_000;
/** Threads of the piscina pool doing UFS reads and writes. */
export const WORKER_UFS_POOL_THREADS_MAX = 2;
/** Master link: back-off between registration attempts (doubles up to the max). */
export const WORKER_REGISTER_RETRY_BASE_MS = 100;
export const WORKER_REGISTER_RETRY_MAX_MS = 5000;
/** Added/removed block ids carried by one heartbeat; the rest go in the next one. */
export const WORKER_HEARTBEAT_BLOCKS_MAX = 100_000;
/** Staging buffers of finished block writes kept for reuse (no page faults on the write path). */
export const WORKER_STAGING_BUFFERS_MAX = 4;
/** Master link: connect timeout, so a worker whose master is down starts serving without a long wait. */
export const WORKER_MASTER_CONNECT_TIMEOUT_MS = 3000;

// Journal (core/journal/). DEFAULT_JOURNAL_LOG_ROLL_BYTES is above.
/** Largest payload of one journal entry. */
export const JOURNAL_MAX_ENTRY_BYTES = 1 * MIB;
/** A group-commit write holds at most this many bytes (or one entry, if larger). */
export const JOURNAL_MAX_BATCH_BYTES = 1 * MIB;
/** Entries accepted but not yet durable, per component; append throws LIMIT_EXCEEDED beyond. */
export const JOURNAL_MAX_PENDING_ENTRIES = 1 << 20;
/**
 * A bad entry this close to the end of the current log is a torn tail (a crash can leave at
 * most one unsynced batch); further from the end it is corruption, and open refuses.
 */
export const JOURNAL_MAX_TORN_TAIL_BYTES = Math.max(JOURNAL_MAX_BATCH_BYTES, JOURNAL_MAX_ENTRY_BYTES + 20);
/** Checkpoint chunks larger than this are split into several frames. */
export const JOURNAL_CHECKPOINT_CHUNK_BYTES = 4 * MIB;
/** Checkpoint bytes are gathered into writes of about this size. */
export const JOURNAL_CHECKPOINT_WRITE_BYTES = 1 * MIB;

// Block engine (core/block-cache.ts and friends).
export const BLOCK_CACHE_MAX_CAPACITY_BYTES = 3 * GIB;
/** Default table size: one entry per this many bytes of capacity, clamped to [MIN, MAX]_BLOCKS. */
export const BLOCK_CACHE_BYTES_PER_DEFAULT_BLOCK = 4 * KIB;
export const BLOCK_CACHE_MIN_BLOCKS = 64;
export const BLOCK_CACHE_MAX_BLOCKS = 1 << 22;
/** Longest string id, in UTF-16 code units. */
export const BLOCK_CACHE_MAX_KEY_CHARS = 1024;
export const BLOCK_CACHE_DEFAULT_MAX_OWNERS = 32;
export const BLOCK_CACHE_MAX_OWNERS = 1024;
export const BLOCK_CACHE_DEFAULT_PINS_PER_OWNER = 1024;
export const BLOCK_CACHE_MAX_PINS_PER_OWNER = 1 << 16;
export const BLOCK_CACHE_DEFAULT_OWNER_LEASE_MS = 30_000;
export const BLOCK_CACHE_MIN_OWNER_LEASE_MS = 50;
/**
 * Spins on a busy engine lock before sleeping on it: about 9 µs here, several times a put's
 * hold of the lock (~0.7 µs for 4 KiB), so that two threads putting at once hand the lock over
 * without a futex sleep and wake (each costs more than the put). Measured, 2 threads doing
 * evicting 4 KiB puts (3 interleaved runs each, scripts/ab-block-cache-threads.mjs put 2 3):
 * 100 spins 0.46-0.52 M puts/s, 4,000 spins 0.68-0.89, 20,000 spins 1.03-1.22, 100,000 1.15-1.25.
 */
export const BLOCK_CACHE_LOCK_SPIN_COUNT = 20_000;
/** A waiter on the engine lock re-checks at least this often. */
export const BLOCK_CACHE_LOCK_WAIT_SLICE_MS = 100;
/** A waiter checks that the engine lock's holder is alive after waiting this long. */
export const BLOCK_CACHE_LOCK_STUCK_MS = 1000;
/** Lock-free lookup attempts before a lookup falls back to the lock. */
export const BLOCK_CACHE_LOOKUP_RETRIES = 16;
/**
 * A put that finds room in total but no extent large enough evicts this many blocks in
 * policy order, then evicts the neighbours of the largest free extent to grow it.
 */
export const BLOCK_CACHE_POLICY_VICTIMS_BEFORE_HOLE_GROWING = 2;
/** put() copies blocks up to this size while it holds the engine lock (one lock round trip). */
export const BLOCK_CACHE_COPY_UNDER_LOCK_BYTES = 64 * KIB;
/** acquire()/get()/put() refresh the owner heartbeat once per this many calls. */
export const BLOCK_CACHE_HEARTBEAT_EVERY_CALLS = 1024;
/**
 * A put short of room sweeps the pending-free list (blocks deleted while viewed) before it
 * evicts when the list holds at most this many entries; a longer list is swept once per
 * (length / this) such puts, and always before a put would fail: O(this) amortised per put.
 */
export const BLOCK_CACHE_PENDING_SWEEP_EVERY = 16;
/**
 * The current log grows in steps of zeros this size (capped by the roll size), so that a
 * group commit overwrites allocated blocks and its fdatasync has no size change to commit.
 */
export const JOURNAL_PREALLOCATE_BYTES = 1 * MIB;
/** The master checkpoints its namespace after this many journal entries (bounds replay at restart). */
export const DEFAULT_CHECKPOINT_PERIOD_ENTRIES = 500_000;
