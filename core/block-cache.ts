/**
 * BlockCache: the shared-memory block engine. One arena (a SharedArrayBuffer, or an mmap of a
 * /dev/shm file) holds everything: header, owner slots, block table, index, eviction policy
 * state, allocator metadata and the block bytes. Any thread that attaches with `handle`
 * sees and changes the same cache; nothing lives in one thread's heap but per-instance
 * caches of Uint8Array views.
 *
 * What it does not do: persistence, tiers, network. It never blocks for I/O.
 *
 * Arena layout (byte offsets; every region starts on a 64-byte line):
 *
 *   | offset            | size                         | region                                   |
 *   |-------------------|------------------------------|------------------------------------------|
 *   | 0                 | 512                          | header (table below)                     |
 *   | OFF_OWNERS        | ownerCount * ownerStride * 4 | owner slots (core/owners.ts)             |
 *   | OFF_OWNER_VIEWS   | ownerCount * entryCount * 2  | holds[owner][entry]: views + pins (Uint16)|
 *   | OFF_ENTRIES       | entryCount * 64              | block table entries (core/block-table.ts)|
 *   | OFF_BUCKETS       | bucketCount * 4              | index buckets (core/block-table.ts)      |
 *   | OFF_FREE_STACK    | entryCount * 4               | stack of free entry indexes              |
 *   | (policy regions: sized entryCount * ... for the policy that uses them, empty otherwise)    |
 *   | OFF_LAST_ACCESS   | entryCount * 8               | LRU: tick of last access (policies/lru)  |
 *   | OFF_HEAP_KEY      | entryCount * 8               | LRU: heap keys                           |
 *   | OFF_HEAP          | entryCount * 4               | LRU: heap of entries                     |
 *   | OFF_HEAP_POS      | entryCount * 4               | LRU: position of an entry in the heap    |
 *   | OFF_SCRATCH       | entryCount * 4               | LRU: entries set aside during a search   |
 *   | OFF_PREV, OFF_NEXT| entryCount * 4 each          | SIEVE: queue links (policies/sieve)      |
 *   | OFF_VISITED       | entryCount                   | SIEVE: visited bits; S3-FIFO: frequency  |
 *   | OFF_QUEUE         | entryCount                   | S3-FIFO: queue of an entry (PREV/NEXT    |
 *   |                   |                              | link its small and main FIFOs)           |
 *   | OFF_GHOST_RING    | entryCount * 4               | S3-FIFO: ghost hashes, FIFO ring         |
 *   | OFF_GHOST_FILTER  | pow2(entryCount * 4)         | S3-FIFO: ghost counting filter           |
 *   | OFF_POLICY_META   | 64                           | policy counters (count, head, tail, hand)|
 *   | OFF_ALLOC_META    | ALLOCATOR_META_WORDS * 4     | TLSF metadata (core/allocator.ts)        |
 *   | OFF_DATA          | dataGranules * 64            | extents: [64 B header][key][bytes]       |
 *
 * Header (Int32 word index; f64 = Float64Array index). Fields on separate 64-byte lines
 * by how often they are written, so the read-mostly line never bounces:
 *
 *   | word  | f64 | name            | meaning                                               |
 *   |-------|-----|-----------------|-------------------------------------------------------|
 *   | 0     |     | MAGIC           | 0x54535241 ('TSRA')                                   |
 *   | 1     |     | VERSION         | LAYOUT_VERSION                                        |
 *   | 2     |     | STATE           | 1 OPEN, 2 CLOSED                                      |
 *   | 3     |     | POLICY          | 0 LRU, 1 SIEVE, 2 S3-FIFO                             |
 *   | 4     |     | ENTRY_COUNT     | block table entries                                   |
 *   | 5     |     | BUCKET_COUNT    | index buckets (power of two)                          |
 *   | 6     |     | OWNER_COUNT     | owner slots                                           |
 *   | 7     |     | RECORD_SLOTS    | pin record slots per owner (power of two)             |
 *   | 8     |     | PINS_PER_OWNER  | most records per owner                                |
 *   | 9     |     | LEASE_MS        | owner lease                                           |
 *   | 10-11 | 5   | CAPACITY_BYTES  | the capacity asked for                                |
 *   | 12-13 | 6   | ARENA_BYTES     | whole arena size                                      |
 *   | 16    |     | LOCK            | engine lock: 0 free, else holder owner + 1 (bits 0-15) |
 *   |       |     |                 | and bit 16 set while others sleep on it               |
 *   | 33    |     | BLOCK_COUNT     | committed blocks                                      |
 *   | 34    |     | FREE_TOP        | entries on the free stack                             |
 *   | 35    |     | BUCKETS_USED    | non-empty buckets (tombstones included)               |
 *   | 36    |     | TOMBSTONES      | tombstone buckets                                     |
 *   | 37    |     | PENDING_HEAD    | pending-free list: first entry + 1 (0 = empty)        |
 *   | 46    |     | PENDING_COUNT   | entries on the pending-free list                      |
 *   | 38-39 | 19  | USED_BYTES      | bytes of allocated blocks (writing, committed, deleted but pinned) |
 *   | 40-41 | 20  | EVICTIONS       | blocks evicted                                        |
 *   | 42-43 | 21  | REAPED_HITS     | hits of owners that are gone                          |
 *   | 44-45 | 22  | REAPED_MISSES   | misses of owners that are gone                        |
 *   | 48-49 | 24  | EPOCH           | put clock (LRU ticks)                                 |
 *   | 64-82 |     | OFF_*           | the region offsets above, in table order              |
 *   | 84    |     | INDEX_SEQ       | odd while the index is rebuilt (on a line that puts    |
 *   |       |     |                 | do not write: every lookup reads it)                   |
 *   | 96-127|     | LIVE_OWNERS     | bit o set while owner slot o is attached              |
 *
 * Concurrency (all Atomics are sequentially consistent in JS; the orderings named are the
 * ones this design relies on):
 *   - One engine lock (futex-style mutex on LOCK: CAS 0 -> holder, spin, then arena.wait
 *     with a waiters bit)
 *     serialises every change of the allocator, index, policy state, free stack and
 *     counters: put (once for blocks up to BLOCK_CACHE_COPY_UNDER_LOCK_BYTES, copied under
 *     it; twice for larger ones: reserve, copy outside the lock, commit), delete, evict,
 *     free, reap. A put needing room evicts by the policy; when the room exists in total
 *     but no extent is large enough, it then evicts the neighbours of the largest free
 *     extent (bounded fragmentation: bench/cache.bench.ts measures it).
 *   - Readers take no lock and write no shared line. A hold (view, pin) is a count in the
 *     owner's own row of OWNER_VIEWS. acquire = probe the index, Atomics.add 1 to
 *     holds[owner][entry] (announce), Atomics.load STATE (check), compare the key; a state
 *     other than COMMITTED or another key: Atomics.sub the hold and retry or miss.
 *   - A writer frees an entry only after storing EVICTING (CAS from COMMITTED) or DELETED
 *     into STATE and then finding the sum of holds over live owners (LIVE_OWNERS bitmap)
 *     zero. Announce-then-check against store-then-sum (all seq-cst) means one side always
 *     sees the other: the reader backs off, or the writer does not free (eviction puts the
 *     state back to COMMITTED; a deleted entry is freed by the release that finds it
 *     DELETED and unheld, under the lock). So a view's bytes are never reused before release.
 *   - Pending-free list (lazy free of deleted blocks): a block deleted or replaced while held
 *     is marked DELETED and put on a list (linked through the entries' NEXT_PENDING word,
 *     under the lock). Releasing a view is one Atomics.sub of this owner's counter and
 *     nothing else: it does not look at STATE nor free. Instead every locked operation that
 *     needs the room or reports it (a put short of room, before it evicts, and a list longer
 *     than BLOCK_CACHE_PENDING_SWEEP_EVERY only every few such puts; stats,
 *     checkInvariants, extents, reaping) first sweeps the list and frees the entries whose
 *     hold sum is zero (the same store-then-sum side of the argument above: DELETED was
 *     stored before the sum, so a reader that announces after the sum backs off). So a
 *     deleted block's bytes are never reused before its last release, and freed before
 *     anything counts them, or a put fails for want of room (with a long list, a put may
 *     evict by the policy while released room still waits for the next sweep). An entry is
 *     on the list exactly while it is DELETED.
 *   - STATE is written only under the engine lock, always with Atomics.store or CAS (lock-free
 *     readers load it). The lock's CAS and exchange order each holder after the previous
 *     one, so a lock holder reads STATE with a plain load: no write can race with it.
 *     Hold counters, LIVE_OWNERS and buckets read by lock-free readers keep Atomics.
 *   - The writer stores every field and copies the bytes BEFORE the Atomics.store of
 *     COMMITTED, and publishes the bucket after it: a reader that loads COMMITTED sees the
 *     whole block (no half-written block).
 *   - Fault model of threads: see core/owners.ts. A thread killed while it holds the engine
 *     lock (inside put/delete/evict, or in an onEvict hook) leaves the lock held and the
 *     structures possibly half-changed: that is not repaired. A waiter notices once the
 *     holder is dead (its lease ran out, or its process is gone) and throws
 *     TESSERA_ERR_LOCK_ABANDONED instead of hanging; the cache must be recreated.
 *     worker.terminate() of a thread that is idle or only reading is safe.
 */
import { threadId as currentThreadId } from 'node:worker_threads';
import { SabArena } from './arena.js';
import { ShmArena } from './arena-shm.js';
import type { Arena, ArenaHandle, SabArenaHandle } from './arena.js';
import { assert } from './assert.js';
import { ALLOCATOR_META_WORDS, GRANULE_BYTES, TlsfAllocator } from './allocator.js';
import {
  BUCKET_EMPTY, BUCKET_TOMBSTONE, BlockState, E, EF, Entry, STATE_MASK, hashInt32Id, hashNumberId, hashStringId, nextPowerOfTwo,
} from './block-table.js';
import {
  BLOCK_CACHE_BYTES_PER_DEFAULT_BLOCK, BLOCK_CACHE_DEFAULT_MAX_OWNERS, BLOCK_CACHE_DEFAULT_OWNER_LEASE_MS,
  BLOCK_CACHE_DEFAULT_PINS_PER_OWNER, BLOCK_CACHE_HEARTBEAT_EVERY_CALLS, BLOCK_CACHE_LOCK_SPIN_COUNT,
  BLOCK_CACHE_LOCK_WAIT_SLICE_MS, BLOCK_CACHE_LOOKUP_RETRIES, BLOCK_CACHE_MAX_BLOCKS, BLOCK_CACHE_MAX_CAPACITY_BYTES,
  BLOCK_CACHE_MAX_KEY_CHARS, BLOCK_CACHE_MAX_OWNERS, BLOCK_CACHE_MAX_PINS_PER_OWNER, BLOCK_CACHE_MIN_BLOCKS,
  BLOCK_CACHE_MIN_OWNER_LEASE_MS, BLOCK_CACHE_COPY_UNDER_LOCK_BYTES, BLOCK_CACHE_POLICY_VICTIMS_BEFORE_HOLE_GROWING,
  BLOCK_CACHE_LOCK_STUCK_MS, BLOCK_CACHE_PENDING_SWEEP_EVERY,
} from './constants.js';
import { ErrorCode, TesseraError, isTesseraError } from './errors.js';
import { O_GEN, OwnerTable, R_PINS, readProcessStartToken } from './owners.js';
import { lruInsert, lruRemove, lruReset, lruVictim } from './policies/lru.js';
import type { LruState } from './policies/lru.js';
import { sieveInsert, sieveRemove, sieveReset, sieveVictim } from './policies/sieve.js';
import { s3fifoCount, s3fifoInSmall, s3fifoInsert, s3fifoRemember, s3fifoRemove, s3fifoReset, s3fifoVictim } from './policies/s3fifo.js';
import type { S3FifoState } from './policies/s3fifo.js';
import type { SieveState } from './policies/sieve.js';

/** A block id: a safe integer or a string of at most BLOCK_CACHE_MAX_KEY_CHARS code units. */
export type BlockId = number | string;

export type EvictionPolicyName = 'lru' | 'sieve' | 's3fifo';

export interface BlockCacheHooks {
  /**
   * Veto: return false to keep `id` from being evicted (e.g. not persisted yet). Called
   * under the engine lock for each candidate: keep it fast, never call into the cache.
   */
  canEvict?: (id: BlockId) => boolean;
  /**
   * Called under the engine lock for each victim, before its bytes are freed, with a view
   * that is valid only during the call (copy it to demote it). Never call into the cache;
   * a hook that blocks longer than ownerLeaseMs looks like a dead lock holder to others.
   */
  onEvict?: (id: BlockId, bytes: Uint8Array) => void;
}

export interface BlockCacheOptions extends BlockCacheHooks {
  /** Bytes of block payload the cache may hold; usedBytes never exceeds it. */
  capacityBytes: number;
  /** Eviction policy (default 'sieve'): 'lru', 'sieve' (SIEVE) or 's3fifo' (S3-FIFO). */
  policy?: EvictionPolicyName;
  /** 'sab' (default): SharedArrayBuffer; 'shm': mmap of a /dev/shm file (native module). */
  backing?: 'sab' | 'shm';
  /** For backing 'shm': the shared file's absolute path (e.g. /dev/shm/tessera-cache); replaced if it exists, removed when the creator closes. */
  path?: string;
  /** For backing 'shm': mlock the arena (TESSERA_ERR_MEMLOCK_LIMIT when RLIMIT_MEMLOCK is too low). */
  lock?: boolean;
  /** Most blocks held at once (table size); default capacityBytes / 4 KiB, clamped. */
  maxBlocks?: number;
  /** Most attached instances (threads) at once (default 32; each costs 2 bytes per block-table entry). */
  maxOwners?: number;
  /** Most distinct blocks one owner (thread) may hold pinned with pin() at once. */
  pinsPerOwner?: number;
  /** An owner whose heartbeat is older than this (default 30 s) is presumed dead and its pins released. */
  ownerLeaseMs?: number;
}

/** Options of an attachment (another thread): its own hooks. */
export type BlockCacheAttachOptions = BlockCacheHooks;

/** Structured-cloneable: post it to a worker_thread and call BlockCache.attach(handle) there. */
export type BlockCacheHandle = ArenaHandle;

/**
 * What another process on the host needs to attach to a 'shm' cache: the path it was created
 * with (`kind: 'shm'` may be left out; `byteLength` defaults to the file's size).
 */
export interface BlockCacheShmAddress {
  readonly kind?: 'shm';
  readonly path: string;
  readonly byteLength?: number;
}

/**
 * A zero-copy pinned view of a block: `bytes` stays valid and unchanged until release(),
 * even if the block is deleted, replaced or chosen for eviction meanwhile. Read only:
 * writing into `bytes` changes the block for every reader.
 */
export interface BlockView {
  readonly id: BlockId;
  readonly bytes: Uint8Array;
  readonly released: boolean;
  release(): void;
}

/** What usage() reports: the part of stats() that costs O(1). */
export interface BlockCacheUsage {
  capacityBytes: number;
  usedBytes: number;
  blockCount: number;
}

export interface BlockCacheStats extends BlockCacheUsage {
  hits: number;
  misses: number;
  evictions: number;
  /** 1 - largestFreeBytes / freeBytes of the allocator (0 when free space is one extent). */
  fragmentation: number;
  /** Free bytes of the data region (extent headers of free extents included). */
  freeBytes: number;
  largestFreeBytes: number;
  /** Blocks with at least one pin or view. */
  pinnedBlocks: number;
  /** Live owners (attached instances). */
  owners: number;
}

const MAGIC = 0x54535241;
const LAYOUT_VERSION = 2;
const HEADER_BYTES = 512;
const CACHE_OPEN = 1;
const CACHE_CLOSED = 2;
const POLICY_LRU = 0;
const POLICY_SIEVE = 1;
const POLICY_S3FIFO = 2;
/** #tryPinLockFree: the index changed under the probe, look again. */
const LOOKUP_RETRY = -2;
const POLICY_NAMES: readonly EvictionPolicyName[] = ['lru', 'sieve', 's3fifo'];
/** Views of one block one owner may hold at once (a Uint16 counter). */
const MAX_VIEWS_PER_BLOCK = 0xffff;

const H_MAGIC = 0;
const H_VERSION = 1;
const H_STATE = 2;
const H_POLICY = 3;
const H_ENTRY_COUNT = 4;
const H_BUCKET_COUNT = 5;
const H_OWNER_COUNT = 6;
const H_RECORD_SLOTS = 7;
const H_PINS_PER_OWNER = 8;
const H_LEASE_MS = 9;
const HF_CAPACITY_BYTES = 5;
const HF_ARENA_BYTES = 6;
const H_LOCK = 16;
/** LOCK word: holder's owner slot + 1 in the low bits, LOCK_WAITERS when someone sleeps on it. */
const LOCK_HOLDER_MASK = 0xffff;
const LOCK_WAITERS = 0x10000;
const H_INDEX_SEQ = 84;
const H_BLOCK_COUNT = 33;
const H_FREE_TOP = 34;
const H_BUCKETS_USED = 35;
const H_TOMBSTONES = 36;
const H_PENDING_HEAD = 37;
const H_PENDING_COUNT = 46;
const HF_USED_BYTES = 19;
const HF_EVICTIONS = 20;
const HF_REAPED_HITS = 21;
const HF_REAPED_MISSES = 22;
const HF_EPOCH = 24;
const H_OFFSETS = 64;
/** Bitmap of live owner slots (bit o of word o >>> 5), 32 words for BLOCK_CACHE_MAX_OWNERS. */
const H_LIVE_OWNERS = 96;
const REGIONS = ['OWNERS', 'OWNER_VIEWS', 'ENTRIES', 'BUCKETS', 'FREE_STACK', 'LAST_ACCESS', 'HEAP_KEY', 'HEAP', 'HEAP_POS', 'SCRATCH', 'PREV', 'NEXT', 'VISITED', 'QUEUE', 'GHOST_RING', 'GHOST_FILTER', 'POLICY_META', 'ALLOC_META', 'DATA'] as const;
type Region = (typeof REGIONS)[number];
type Layout = Record<Region, number> & { arenaBytes: number; dataGranules: number };

interface Geometry {
  policy: number;
  capacityBytes: number;
  entryCount: number;
  bucketCount: number;
  ownerCount: number;
  recordSlots: number;
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

/** Regions only some policies use; the others get none of the arena. */
const POLICY_REGIONS: Partial<Record<Region, readonly number[]>> = {
  LAST_ACCESS: [POLICY_LRU], HEAP_KEY: [POLICY_LRU], HEAP: [POLICY_LRU], HEAP_POS: [POLICY_LRU], SCRATCH: [POLICY_LRU],
  PREV: [POLICY_SIEVE, POLICY_S3FIFO], NEXT: [POLICY_SIEVE, POLICY_S3FIFO], VISITED: [POLICY_SIEVE, POLICY_S3FIFO],
  QUEUE: [POLICY_S3FIFO], GHOST_RING: [POLICY_S3FIFO], GHOST_FILTER: [POLICY_S3FIFO],
};

/** Elements of region `r` for `policy`: `count`, or 0 when the policy does not use it. */
function policyCount(policy: number, r: Region, count: number): number {
  const users = POLICY_REGIONS[r];
  return users === undefined || users.includes(policy) ? count : 0;
}

function computeLayout(g: Geometry): Layout {
  const n = (r: Region, count: number): number => policyCount(g.policy, r, count);
  const sizes: Record<Region, number> = {
    OWNERS: g.ownerCount * OwnerTable.strideWords(g.recordSlots) * 4,
    OWNER_VIEWS: g.ownerCount * g.entryCount * 2,
    ENTRIES: g.entryCount * Entry.BYTES,
    BUCKETS: g.bucketCount * 4,
    FREE_STACK: g.entryCount * 4,
    LAST_ACCESS: n('LAST_ACCESS', g.entryCount) * 8,
    HEAP_KEY: n('HEAP_KEY', g.entryCount) * 8,
    HEAP: n('HEAP', g.entryCount) * 4,
    HEAP_POS: n('HEAP_POS', g.entryCount) * 4,
    SCRATCH: n('SCRATCH', g.entryCount) * 4,
    PREV: n('PREV', g.entryCount) * 4,
    NEXT: n('NEXT', g.entryCount) * 4,
    VISITED: n('VISITED', g.entryCount),
    QUEUE: n('QUEUE', g.entryCount),
    GHOST_RING: n('GHOST_RING', g.entryCount) * 4,
    GHOST_FILTER: n('GHOST_FILTER', nextPowerOfTwo(g.entryCount * 4)),
    POLICY_META: 64,
    ALLOC_META: ALLOCATOR_META_WORDS * 4,
    DATA: 0,
  };
  // Room for one block of capacityBytes with the longest key, plus the sentinel.
  const dataGranules = Math.ceil(g.capacityBytes / GRANULE_BYTES) + 1 + Math.ceil((BLOCK_CACHE_MAX_KEY_CHARS * 2) / GRANULE_BYTES) + 1;
  sizes.DATA = dataGranules * GRANULE_BYTES;
  const layout = { arenaBytes: 0, dataGranules } as Layout;
  let off = HEADER_BYTES;
  for (const r of REGIONS) {
    layout[r] = off;
    off += align64(sizes[r]);
  }
  layout.arenaBytes = off;
  return layout;
}

function optionInt(options: object, name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    void options;
    throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid BlockCache option ${name}: expected an integer in [${min}, ${max}] (got ${String(value)})`);
  }
  return value;
}

function describeId(id: unknown): string {
  if (typeof id === 'string') return JSON.stringify(id.length > 64 ? `${id.slice(0, 64)}...` : id);
  try {
    return String(id);
  } catch {
    return typeof id;
  }
}

class View implements BlockView {
  // `declare`d and set in the constructor only: one shape, no field initialisers (this
  // object is made on every acquire, so its construction is on the hot path).
  declare released: boolean;
  declare readonly id: BlockId;
  declare readonly bytes: Uint8Array;
  /** Internal: the instance and entry the view pins. */
  declare readonly cache: BlockCache;
  declare readonly entry: number;

  constructor(cache: BlockCache, entry: number, id: BlockId, bytes: Uint8Array) {
    this.released = false;
    this.id = id;
    this.bytes = bytes;
    this.cache = cache;
    this.entry = entry;
  }

  release(): void {
    if (this.released) alreadyReleased(this.id);
    this.released = true;
    this.cache[RELEASE_VIEW](this.entry);
  }
}

function alreadyReleased(id: BlockId): never {
  throw new TesseraError(ErrorCode.ALREADY_RELEASED, `Cannot release view: it was already released (id ${describeId(id)})`);
}

/** Module-private method key: how a View gives its pin back. */
const RELEASE_VIEW = Symbol('releaseView');

export class BlockCache {
  readonly #arena: Arena;
  readonly #w: Int32Array;
  readonly #f: Float64Array;
  readonly #u8: Uint8Array;
  readonly #u16: Uint16Array;
  readonly #alloc: TlsfAllocator;
  readonly #owners: OwnerTable;
  readonly #lru: LruState;
  readonly #sieve: SieveState;
  /** SIEVE visited bits, S3-FIFO frequencies (#sieve.visited; empty for LRU). */
  readonly #visited: Uint8Array;
  readonly #isLru: boolean;
  readonly #s3: S3FifoState;
  readonly #policy: number;
  readonly #entries: number;
  readonly #entryCount: number;
  readonly #buckets: number;
  readonly #bucketMask: number;
  readonly #freeStack: number;
  readonly #capacityBytes: number;
  readonly #leaseMs: number;
  readonly #creator: boolean;
  readonly #owner: number;
  readonly #ownerGen: number;
  readonly #canEvict: ((id: BlockId) => boolean) | undefined;
  readonly #onEvict: ((id: BlockId, bytes: Uint8Array) => void) | undefined;
  readonly #claimVictim: (e: number) => boolean;
  readonly #viewCache: Array<Uint8Array | undefined>;
  readonly #viewCacheKey: Float64Array;
  /** Every owner's view counts (Uint16 per owner per entry), and this owner's row. */
  readonly #holds: Uint16Array;
  /** Index of this owner's row in #holds (owner * entryCount). */
  readonly #row: number;
  /** Int32 words of the live-owner bitmap. */
  readonly #ownerWords: number;
  readonly #ownerWord: number;
  /** Word of this owner's GEN (a reaper bumps it: the lease expired). */
  readonly #ownerGenWord: number;
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;
  /** Sink of #pinIntEntry's early read of a block's first byte (kept so that it is not dropped). */
  #firstByte = 0;
  #expired = false;
  #holdsLock = false;
  #inHook = false;
  #hits = 0;
  #misses = 0;
  #callsSinceHeartbeat = 0;
  /** Puts short of room that skipped sweeping a long pending-free list (see #reserve). */
  #sweepsSkipped = 0;
  #lastScanMs = 0;

  private constructor(arena: Arena, creator: boolean, hooks: BlockCacheHooks) {
    this.#arena = arena;
    this.#creator = creator;
    const buffer = arena.buffer;
    this.#w = new Int32Array(buffer, 0, arena.byteLength >>> 2);
    this.#f = new Float64Array(buffer, 0, arena.byteLength >>> 3);
    this.#u8 = new Uint8Array(buffer, 0, arena.byteLength);
    this.#u16 = new Uint16Array(buffer, 0, arena.byteLength >>> 1);
    const w = this.#w;
    const off = (r: Region): number => w[H_OFFSETS + REGIONS.indexOf(r)]!;
    this.#entryCount = w[H_ENTRY_COUNT]!;
    const n = this.#entryCount;
    this.#entries = off('ENTRIES') >>> 2;
    this.#buckets = off('BUCKETS') >>> 2;
    this.#bucketMask = w[H_BUCKET_COUNT]! - 1;
    this.#freeStack = off('FREE_STACK') >>> 2;
    this.#capacityBytes = this.#f[HF_CAPACITY_BYTES]!;
    this.#leaseMs = w[H_LEASE_MS]!;
    this.#policy = w[H_POLICY]!;
    this.#isLru = this.#policy === POLICY_LRU;
    this.#alloc = new TlsfAllocator(w, off('ALLOC_META') >>> 2, off('DATA'));
    const recordSlots = w[H_RECORD_SLOTS]!;
    this.#owners = new OwnerTable(w, this.#f, off('OWNERS') >>> 2, w[H_OWNER_COUNT]!, recordSlots, w[H_PINS_PER_OWNER]!);
    const meta = new Int32Array(buffer, off('POLICY_META'), 16);
    // Views of the regions the policy uses (the others are empty).
    const p = this.#policy;
    const c = (r: Region): number => policyCount(p, r, n);
    this.#lru = {
      lastAccess: new Float64Array(buffer, off('LAST_ACCESS'), c('LAST_ACCESS')), heapKey: new Float64Array(buffer, off('HEAP_KEY'), c('HEAP_KEY')),
      heap: new Int32Array(buffer, off('HEAP'), c('HEAP')), heapPos: new Int32Array(buffer, off('HEAP_POS'), c('HEAP_POS')),
      scratch: new Int32Array(buffer, off('SCRATCH'), c('SCRATCH')), meta,
    };
    this.#sieve = {
      prev: new Int32Array(buffer, off('PREV'), c('PREV')), next: new Int32Array(buffer, off('NEXT'), c('NEXT')),
      visited: new Uint8Array(buffer, off('VISITED'), c('VISITED')), meta,
    };
    this.#visited = this.#sieve.visited;
    this.#s3 = {
      prev: this.#sieve.prev, next: this.#sieve.next, queue: new Uint8Array(buffer, off('QUEUE'), c('QUEUE')), freq: this.#sieve.visited,
      ghostRing: new Int32Array(buffer, off('GHOST_RING'), c('GHOST_RING')),
      ghostFilter: new Uint8Array(buffer, off('GHOST_FILTER'), policyCount(p, 'GHOST_FILTER', nextPowerOfTwo(n * 4))), meta,
    };
    this.#canEvict = hooks.canEvict;
    this.#onEvict = hooks.onEvict;
    this.#claimVictim = (e) => this.#tryClaimVictim(e);
    this.#viewCache = new Array<Uint8Array | undefined>(n);
    this.#viewCacheKey = new Float64Array(2 * n).fill(-1);
    const token = readProcessStartToken('self') ?? 0;
    const owner = this.#owners.claim(process.pid, currentThreadId, token, Date.now());
    if (owner < 0) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot attach BlockCache: every owner slot is taken (maxOwners ${this.#owners.count})`);
    }
    this.#owner = owner;
    this.#ownerGen = this.#owners.gen(owner);
    this.#ownerWord = this.#owners.slotWord(owner);
    this.#ownerGenWord = this.#ownerWord + O_GEN;
    this.#holds = new Uint16Array(buffer, off('OWNER_VIEWS'), w[H_OWNER_COUNT]! * n);
    this.#row = owner * n;
    this.#ownerWords = Math.ceil(w[H_OWNER_COUNT]! / 32);
    this.#holds.fill(0, this.#row, this.#row + n);
    Atomics.or(w, H_LIVE_OWNERS + (owner >>> 5), 1 << (owner & 31)); // before any hold (see #holders)
    const refreshMs = Math.max(10, Math.min(1000, Math.floor(this.#leaseMs / 4)));
    this.#timer = setInterval(() => this.#tick(), refreshMs);
    this.#timer.unref();
  }

  /** Creates a new cache in a new arena. */
  static create(options: BlockCacheOptions): BlockCache {
    if (options === null || typeof options !== 'object') {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid BlockCache options: expected an object');
    }
    const capacityBytes = optionInt(options, 'capacityBytes', options.capacityBytes, -1, 1, BLOCK_CACHE_MAX_CAPACITY_BYTES);
    if (capacityBytes < 0) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Invalid BlockCache option capacityBytes: required');
    const policy = options.policy ?? 'sieve';
    if (!POLICY_NAMES.includes(policy)) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid BlockCache option policy: expected 'lru', 'sieve' or 's3fifo' (got ${String(policy)})`);
    }
    const defaultBlocks = Math.min(BLOCK_CACHE_MAX_BLOCKS, Math.max(BLOCK_CACHE_MIN_BLOCKS, Math.ceil(capacityBytes / BLOCK_CACHE_BYTES_PER_DEFAULT_BLOCK)));
    const entryCount = optionInt(options, 'maxBlocks', options.maxBlocks, defaultBlocks, 1, BLOCK_CACHE_MAX_BLOCKS);
    const ownerCount = optionInt(options, 'maxOwners', options.maxOwners, BLOCK_CACHE_DEFAULT_MAX_OWNERS, 1, BLOCK_CACHE_MAX_OWNERS);
    const pinsPerOwner = optionInt(options, 'pinsPerOwner', options.pinsPerOwner, BLOCK_CACHE_DEFAULT_PINS_PER_OWNER, 1, BLOCK_CACHE_MAX_PINS_PER_OWNER);
    const leaseMs = optionInt(options, 'ownerLeaseMs', options.ownerLeaseMs, BLOCK_CACHE_DEFAULT_OWNER_LEASE_MS, BLOCK_CACHE_MIN_OWNER_LEASE_MS, 2 ** 31 - 1);
    const geometry: Geometry = {
      policy: POLICY_NAMES.indexOf(policy), capacityBytes, entryCount, bucketCount: nextPowerOfTwo(entryCount * 2), ownerCount,
      recordSlots: nextPowerOfTwo(pinsPerOwner * 2),
    };
    const layout = computeLayout(geometry);
    const backing = options.backing ?? 'sab';
    let arena: Arena;
    switch (backing) {
      case 'sab':
        arena = SabArena.create(layout.arenaBytes);
        break;
      case 'shm':
        // mmap of a fresh file at options.path (native module; NATIVE_UNAVAILABLE without it).
        arena = ShmArena.create({ path: options.path as string, byteLength: layout.arenaBytes, lock: options.lock === true });
        break;
      default:
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid BlockCache option backing: expected 'sab' or 'shm' (got ${String(backing)})`);
    }
    BlockCache.#format(arena, geometry, layout, POLICY_NAMES.indexOf(policy), pinsPerOwner, leaseMs);
    return new BlockCache(arena, true, options);
  }

  /**
   * Attaches to a cache created elsewhere: from its handle (another thread), or from
   * `{ path }` (another process on the host, for a 'shm' cache). A handle of a cache that
   * was closed is TESSERA_ERR_CLOSED (for 'shm': its file is gone).
   */
  static attach(handle: BlockCacheHandle | BlockCacheShmAddress, options: BlockCacheAttachOptions = {}): BlockCache {
    if (handle === null || typeof handle !== 'object') {
      throw new TesseraError(ErrorCode.BAD_HANDLE, 'Cannot attach BlockCache: the handle is not an object');
    }
    let arena: Arena;
    // `{ path }` alone names a /dev/shm cache: only 'shm' arenas have a path.
    const kind = handle.kind === undefined && typeof (handle as { path?: unknown }).path === 'string' ? 'shm' : handle.kind;
    switch (kind) {
      case 'sab':
        arena = SabArena.attach(handle as SabArenaHandle);
        break;
      case 'shm': {
        // Another thread or process maps the same file; the header check below validates it.
        const { path, byteLength } = handle as BlockCacheShmAddress;
        arena = ShmArena.attach(byteLength === undefined ? { kind: 'shm', path } : { kind: 'shm', path, byteLength });
        break;
      }
      default:
        throw new TesseraError(ErrorCode.BAD_HANDLE, `Cannot attach BlockCache: unknown arena kind ${String(kind)} (expected a handle, or { path } of a 'shm' cache)`);
    }
    const w = new Int32Array(arena.buffer, 0, Math.min(HEADER_BYTES, arena.byteLength) >>> 2);
    if (arena.byteLength < HEADER_BYTES || w[H_MAGIC] !== MAGIC || w[H_VERSION] !== LAYOUT_VERSION) {
      throw new TesseraError(ErrorCode.BAD_HANDLE, 'Cannot attach BlockCache: the arena does not hold a BlockCache of this version');
    }
    if (Atomics.load(w, H_STATE) !== CACHE_OPEN) {
      throw new TesseraError(ErrorCode.CLOSED, 'Cannot attach BlockCache: the cache was closed');
    }
    return new BlockCache(arena, false, options);
  }

  static #format(arena: Arena, g: Geometry, layout: Layout, policy: number, pinsPerOwner: number, leaseMs: number): void {
    assert(arena.byteLength >= layout.arenaBytes, 'arena holds the layout');
    const w = new Int32Array(arena.buffer, 0, layout.arenaBytes >>> 2);
    const f = new Float64Array(arena.buffer, 0, layout.arenaBytes >>> 3);
    w[H_VERSION] = LAYOUT_VERSION;
    w[H_POLICY] = policy;
    w[H_ENTRY_COUNT] = g.entryCount;
    w[H_BUCKET_COUNT] = g.bucketCount;
    w[H_OWNER_COUNT] = g.ownerCount;
    w[H_RECORD_SLOTS] = g.recordSlots;
    w[H_PINS_PER_OWNER] = pinsPerOwner;
    w[H_LEASE_MS] = leaseMs;
    f[HF_CAPACITY_BYTES] = g.capacityBytes;
    f[HF_ARENA_BYTES] = layout.arenaBytes;
    REGIONS.forEach((r, i) => { w[H_OFFSETS + i] = layout[r]; });
    const stack = layout.FREE_STACK >>> 2;
    // Pop order 0, 1, 2, ...: the stack holds n-1 ... 0.
    for (let i = 0; i < g.entryCount; i++) w[stack + i] = g.entryCount - 1 - i;
    w[H_FREE_TOP] = g.entryCount;
    const entries = layout.ENTRIES >>> 2;
    for (let e = 0; e < g.entryCount; e++) w[entries + e * Entry.WORDS + E.WRITER] = -1;
    new Int32Array(arena.buffer, layout.HEAP_POS, policyCount(policy, 'HEAP_POS', g.entryCount)).fill(-1);
    new Int32Array(arena.buffer, layout.PREV, policyCount(policy, 'PREV', g.entryCount)).fill(-1);
    new Int32Array(arena.buffer, layout.NEXT, policyCount(policy, 'NEXT', g.entryCount)).fill(-1);
    const meta = new Int32Array(arena.buffer, layout.POLICY_META, 16);
    if (policy === POLICY_LRU) lruReset({ meta } as LruState);
    else if (policy === POLICY_SIEVE) sieveReset({ meta } as SieveState);
    else s3fifoReset({ meta, ghostFilter: new Uint8Array(arena.buffer, layout.GHOST_FILTER, nextPowerOfTwo(g.entryCount * 4)) } as S3FifoState);
    new TlsfAllocator(w, layout.ALLOC_META >>> 2, layout.DATA).format(layout.dataGranules);
    w[H_STATE] = CACHE_OPEN;
    Atomics.store(w, H_MAGIC, MAGIC); // last: an attacher that sees MAGIC sees the whole header
  }

  /** Structured-cloneable handle; BlockCache.attach(handle) in another thread. */
  get handle(): BlockCacheHandle {
    return this.#arena.handle;
  }

  get capacityBytes(): number {
    return this.#capacityBytes;
  }

  get policy(): EvictionPolicyName {
    return POLICY_NAMES[this.#policy]!;
  }

  // ---------------------------------------------------------------- checks and ids

  #checkOpen(op: string): void {
    if (this.#closed) throw new TesseraError(ErrorCode.CLOSED, `Cannot ${op}: this BlockCache instance is closed`);
    if (this.#w[H_STATE] !== CACHE_OPEN) throw new TesseraError(ErrorCode.CLOSED, `Cannot ${op}: the BlockCache was closed`);
    if (this.#inHook) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot ${op}: an eviction hook must not call into the cache`);
    if (this.#expired || this.#w[this.#ownerWord + O_GEN] !== this.#ownerGen) {
      this.#expired = true;
      throw new TesseraError(ErrorCode.LEASE_EXPIRED, `Cannot ${op}: this thread's owner lease expired and its pins were released (ownerLeaseMs ${this.#leaseMs})`);
    }
  }

  /** Validates `id` and returns its hash. */
  #hashOf(id: BlockId, op: string): number {
    if (typeof id === 'number') {
      if (Number.isSafeInteger(id)) return hashNumberId(id);
    } else if (typeof id === 'string') {
      if (id.length <= BLOCK_CACHE_MAX_KEY_CHARS) return hashStringId(id);
      throw new TesseraError(ErrorCode.INVALID_ID, `Cannot ${op}: string id longer than ${BLOCK_CACHE_MAX_KEY_CHARS} code units (length ${id.length})`);
    }
    throw new TesseraError(ErrorCode.INVALID_ID, `Cannot ${op}: id must be a safe integer or a string (got ${describeId(id)})`);
  }

  #keyEquals(e: number, id: BlockId): boolean {
    const base = this.#entries + e * Entry.WORDS;
    const keyLen = this.#w[base + E.KEY_LEN]!;
    if (typeof id === 'number') return keyLen === -1 && this.#f[(base >> 1) + EF.NUM_KEY] === id;
    if (keyLen !== id.length) return false;
    const u16 = this.#u16;
    const k = this.#f[(base >> 1) + EF.KEY_OFFSET]! >>> 1;
    for (let i = 0; i < keyLen; i++) if (u16[k + i] !== id.charCodeAt(i)) return false;
    return true;
  }

  /** The id of entry `e` (which the caller keeps from changing: pinned or under the lock). */
  #idOf(e: number): BlockId {
    const base = this.#entries + e * Entry.WORDS;
    const keyLen = this.#w[base + E.KEY_LEN]!;
    if (keyLen < 0) return this.#f[(base >> 1) + EF.NUM_KEY]!;
    const k = this.#f[(base >> 1) + EF.KEY_OFFSET]! >>> 1;
    let s = '';
    for (let i = 0; i < keyLen; i += 256) s += String.fromCharCode(...this.#u16.subarray(k + i, k + Math.min(keyLen, i + 256)));
    return s;
  }

  #bytesOf(e: number): Uint8Array {
    const fb = (this.#entries + e * Entry.WORDS) >> 1;
    // Plain numbers, not view.byteOffset/length: typed-array getters cost more than the lookup.
    // [offset, length] side by side: one cache line for both.
    const k = 2 * e;
    if (this.#viewCacheKey[k] === this.#f[fb + EF.DATA_OFFSET] && this.#viewCacheKey[k + 1] === this.#f[fb + EF.LENGTH]) return this.#viewCache[e]!;
    return this.#newBytesView(e);
  }

  /** #bytesOf when this instance has no view of entry `e`'s current bytes yet: makes one. */
  #newBytesView(e: number): Uint8Array {
    const fb = (this.#entries + e * Entry.WORDS) >> 1;
    const offset = this.#f[fb + EF.DATA_OFFSET]!;
    const length = this.#f[fb + EF.LENGTH]!;
    const view = new Uint8Array(this.#arena.buffer, offset, length);
    this.#viewCache[e] = view;
    this.#viewCacheKey[2 * e] = offset;
    this.#viewCacheKey[2 * e + 1] = length;
    return view;
  }

  // ---------------------------------------------------------------- lock

  #lock(): void {
    assert(!this.#holdsLock, 'the engine lock is not taken twice by one instance');
    const w = this.#w;
    const me = this.#owner + 1;
    let c = Atomics.compareExchange(w, H_LOCK, 0, me);
    for (let spin = 0; c !== 0 && spin < BLOCK_CACHE_LOCK_SPIN_COUNT; spin++) {
      c = w[H_LOCK] === 0 ? Atomics.compareExchange(w, H_LOCK, 0, me) : 1;
    }
    if (c !== 0) this.#lockSlow(me);
    this.#holdsLock = true;
  }

  /**
   * Contended path: mark the lock word as having waiters and sleep on it (arena.wait), and
   * once it has been held for BLOCK_CACHE_LOCK_STUCK_MS check that its holder is alive.
   */
  #lockSlow(me: number): void {
    const w = this.#w;
    let sinceMs = Date.now();
    for (;;) {
      const c = Atomics.load(w, H_LOCK);
      if (c === 0) {
        // Others may be asleep: take it marked, so that our unlock wakes one.
        if (Atomics.compareExchange(w, H_LOCK, 0, me | LOCK_WAITERS) === 0) return;
        continue;
      }
      if ((c & LOCK_WAITERS) === 0 && Atomics.compareExchange(w, H_LOCK, c, c | LOCK_WAITERS) !== c) continue;
      this.#arena.wait(w, H_LOCK, c | LOCK_WAITERS, BLOCK_CACHE_LOCK_WAIT_SLICE_MS);
      const now = Date.now();
      if (now - sinceMs >= BLOCK_CACHE_LOCK_STUCK_MS) {
        sinceMs = now;
        const holder = (Atomics.load(w, H_LOCK) & LOCK_HOLDER_MASK) - 1;
        if (holder >= 0 && (!this.#owners.isLive(holder) || this.#isDead(holder, now))) {
          throw new TesseraError(ErrorCode.LOCK_ABANDONED, `Cannot lock the BlockCache: the engine lock is held by a thread that died inside the engine (owner ${holder}, pid ${this.#owners.pid(holder)}, threadId ${this.#owners.threadId(holder)}); the cache may be half-changed and must be recreated`);
        }
      }
    }
  }

  #unlock(): void {
    assert(this.#holdsLock, 'unlock by the holder');
    this.#holdsLock = false;
    const old = Atomics.exchange(this.#w, H_LOCK, 0);
    assert((old & LOCK_HOLDER_MASK) === this.#owner + 1, 'the engine lock is released by its holder');
    if ((old & LOCK_WAITERS) !== 0) this.#arena.wake(this.#w, H_LOCK, 1);
  }

  // ---------------------------------------------------------------- pins and lookups

  /**
   * Lock-free lookup: returns the entry of `id` with one pin taken (not yet recorded for
   * this owner), or -1 on a miss.
   */
  #pinById(id: BlockId, h: number): number {
    for (let attempt = 0; attempt < BLOCK_CACHE_LOOKUP_RETRIES; attempt++) {
      const e = this.#tryPinLockFree(id, h);
      if (e !== LOOKUP_RETRY) return e;
    }
    return this.#pinLocked(id, h); // contended: the index cannot change under the lock
  }

  /**
   * One lock-free probe: the entry of `id` with one hold of this owner taken, -1 for a
   * (validated) miss, or LOOKUP_RETRY.
   *
   * Holding is announce-then-check (Dekker style, all seq-cst): add 1 to this owner's
   * counter of the entry, then load the entry's STATE. A writer that frees an entry first
   * stores EVICTING or DELETED in STATE, then sums every live owner's counter. One of the
   * two sees the other: either this reader sees the new state and backs off, or the writer
   * sees the hold and does not free. The read path writes only this owner's counters.
   */
  #tryPinLockFree(id: BlockId, h: number): number {
    const w = this.#w;
    const holds = this.#holds;
    const row = this.#row;
    const entries = this.#entries;
    const buckets = this.#buckets;
    const mask = this.#bucketMask;
    // A plain read is enough here: INDEX_SEQ only validates a miss, with Atomics.load below.
    const seq = w[H_INDEX_SEQ]!;
    if ((seq & 1) !== 0) return LOOKUP_RETRY;
    for (let i = h & mask, n = 0; n <= mask; i = (i + 1) & mask, n++) {
      const b = w[buckets + i]!;
      if (b === BUCKET_EMPTY) break;
      if (b === BUCKET_TOMBSTONE) continue;
      const e = b - 1;
      const st = entries + e * Entry.WORDS;
      if (w[st + E.HASH] !== h) continue;
      if (holds[row + e] === MAX_VIEWS_PER_BLOCK) this.#tooManyViews(id);
      Atomics.add(holds, row + e, 1);
      if (Atomics.load(w, st + E.STATE) !== BlockState.COMMITTED) {
        this.#unpinEntry(e);
        return LOOKUP_RETRY; // being replaced, deleted, evicted or reused
      }
      if (this.#keyEquals(e, id)) return e;
      this.#unpinEntry(e);
    }
    return Atomics.load(w, H_INDEX_SEQ) === seq ? -1 : LOOKUP_RETRY;
  }

  #pinLocked(id: BlockId, h: number): number {
    this.#lock();
    try {
      const e = this.#findLocked(id, h);
      if (e >= 0) {
        if (this.#holds[this.#row + e] === MAX_VIEWS_PER_BLOCK) this.#tooManyViews(id);
        Atomics.add(this.#holds, this.#row + e, 1);
      }
      return e;
    } finally {
      this.#unlock();
    }
  }

  /**
   * Drops one hold of this owner on entry `e`: one seq-cst Atomics.sub, nothing else. A
   * DELETED entry whose last hold this was is freed by the next sweep of the pending-free
   * list (see the header), not here.
   */
  #unpinEntry(e: number): void {
    const at = this.#row + e;
    if (Atomics.sub(this.#holds, at, 1) === 0) this.#unpinUnheld(at);
  }

  /** #unpinEntry found no hold to drop (a bug): puts the counter back and fails. */
  #unpinUnheld(at: number): never {
    Atomics.add(this.#holds, at, 1);
    assert(false, 'a dropped hold was taken by this owner');
  }

  /** Under the lock: frees every entry of the pending-free list that no owner holds any more. */
  #sweepPending(): void {
    const w = this.#w;
    if (w[H_PENDING_COUNT] === 0) return;
    let link = H_PENDING_HEAD; // word that points at `cur`
    let cur = w[H_PENDING_HEAD]!;
    while (cur !== 0) {
      const e = cur - 1;
      const base = this.#entries + e * Entry.WORDS;
      const next = w[base + E.NEXT_PENDING]!;
      assert(w[base + E.STATE] === BlockState.DELETED, 'an entry on the pending-free list is DELETED');
      if (this.#holders(e) === 0) {
        w[link] = next;
        w[base + E.NEXT_PENDING] = 0;
        w[H_PENDING_COUNT]!--;
        this.#freeEntry(e);
      } else {
        link = base + E.NEXT_PENDING;
      }
      cur = next;
    }
  }

  /** Sum of every live owner's holds on entry `e` (seq-cst loads, see #tryPinLockFree). */
  #holders(e: number): number {
    const w = this.#w;
    const n = this.#entryCount;
    let sum = 0;
    for (let word = 0; word < this.#ownerWords; word++) {
      let bits = Atomics.load(w, H_LIVE_OWNERS + word);
      while (bits !== 0) {
        const low = bits & -bits;
        bits ^= low;
        const o = word * 32 + (31 - Math.clz32(low));
        sum += Atomics.load(this.#holds, o * n + e);
      }
    }
    return sum;
  }

  /** Pins `id` for this owner as an explicit pin (pin/unpin, bounded by pinsPerOwner). */
  #pinExplicit(id: BlockId, op: string): number {
    this.#checkOpen(op);
    const h = this.#hashOf(id, op);
    const e = this.#pinById(id, h);
    if (e < 0) return -1;
    // The hold is what keeps the block; the record only lets unpin(id) find it.
    if (!this.#owners.add(this.#owner, e, R_PINS)) {
      this.#unpinEntry(e);
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot ${op}: this thread has pinned the most blocks allowed (pinsPerOwner ${this.#w[H_PINS_PER_OWNER]})`);
    }
    this.#touch(e);
    return e;
  }

  /** Records a hit on entry `e` for the policy (plain stores, racy by design). */
  #touch(e: number): void {
    // SIEVE: visited bit, inline (the common policy); the others out of line.
    if (this.#policy === POLICY_SIEVE) {
      if (this.#visited[e] === 0) this.#visited[e] = 1;
    } else {
      this.#touchOther(e);
    }
  }

  #touchOther(e: number): void {
    if (this.#isLru) {
      const tick = this.#f[HF_EPOCH]!;
      if (this.#lru.lastAccess[e] !== tick) this.#lru.lastAccess[e] = tick;
    } else {
      // S3-FIFO: frequency, saturating at 3 (the SIEVE visited bytes).
      const seen = this.#visited[e]!;
      if (seen < 3) this.#visited[e] = seen + 1;
    }
  }

  /**
   * The hot path of acquire, acquireHandle, withView, get and getInto: pins `id` as a view
   * of this owner and returns its entry, or -1 on a miss. Small on purpose, so that the
   * compiler inlines it into its callers: it takes only the common cases (an int32 id, found
   * or missed) and hands everything else (other ids, a changing entry or index, errors) to
   * #pinViewSlow, which starts over. The probe only reads, as in #tryPinLockFree;
   * #pinIntEntry takes the hold. INDEX_SEQ validates a miss only, as there: a rebuild can
   * only hide an entry from the probe, and a hit stands on its own (held, then found
   * COMMITTED with this key).
   */
  #pinView(id: BlockId, op: string): number {
    const w = this.#w;
    if (typeof id === 'number' && (id | 0) === id && !this.#closed && !this.#inHook && w[H_STATE] === CACHE_OPEN && w[this.#ownerGenWord] === this.#ownerGen) {
      const seq = w[H_INDEX_SEQ]!; // validates a miss, as in #tryPinLockFree
      const h = hashInt32Id(id);
      const mask = this.#bucketMask;
      for (let i = h & mask, n = 0; n <= mask; i = (i + 1) & mask, n++) {
        const b = w[this.#buckets + i]!;
        if (b === BUCKET_EMPTY) {
          if ((seq & 1) === 0 && Atomics.load(w, H_INDEX_SEQ) === seq) return this.#missed();
          break; // the index was rebuilt meanwhile: the slow path retries
        }
        if (b !== BUCKET_TOMBSTONE && w[this.#entries + (b - 1) * Entry.WORDS + E.HASH] === h) {
          if (this.#pinIntEntry(b - 1, id)) return b - 1;
          break;
        }
      }
    }
    return this.#pinViewSlow(id, op);
  }

  /**
   * Takes a hold of entry `e` if it holds int32 id `id` (and counts the hit): announce, then
   * check STATE and the key, the argument of #tryPinLockFree.
   */
  #pinIntEntry(e: number, id: number): boolean {
    const holds = this.#holds;
    const at = this.#row + e;
    const st = this.#entries + e * Entry.WORDS;
    if (holds[at] === MAX_VIEWS_PER_BLOCK) return false; // the slow path throws
    Atomics.add(holds, at, 1);
    if (Atomics.load(this.#w, st + E.STATE) === BlockState.COMMITTED && this.#w[st + E.KEY_LEN] === -1 && this.#f[(st >> 1) + EF.NUM_KEY] === id) {
      // A prefetch: read the block's first line now (held and committed: its bytes stay). Its
      // cache miss then overlaps with the view lookup that follows (#bytesOf, the view
      // object) instead of starting after it, when the caller reads the bytes; the Atomics
      // calls around a hold keep the CPU from overlapping it with anything else. (Read before
      // the Atomics.add it made acquire slower: the add waits for it.) +7-10% acquire+release.
      this.#firstByte = this.#u8[this.#f[(st >> 1) + EF.DATA_OFFSET]!]! | 0;
      this.#hit(e);
      return true;
    }
    Atomics.sub(holds, at, 1);
    return false;
  }

  /** Counts a hit of #pinView on entry `e` (and tells the policy). */
  #hit(e: number): void {
    this.#touch(e);
    this.#hits++;
    if (++this.#callsSinceHeartbeat >= BLOCK_CACHE_HEARTBEAT_EVERY_CALLS) this.#heartbeatNow();
  }

  /** Counts a miss of #pinView. */
  #missed(): number {
    this.#misses++;
    if (++this.#callsSinceHeartbeat >= BLOCK_CACHE_HEARTBEAT_EVERY_CALLS) this.#heartbeatNow();
    return -1;
  }

  /** #pinView for every case: checks, any id, probe with retries, the lock when contended. */
  #pinViewSlow(id: BlockId, op: string): number {
    this.#checkOpen(op);
    const h = this.#hashOf(id, op);
    const e = this.#pinById(id, h);
    if (e < 0) return this.#missed();
    this.#hit(e);
    return e;
  }

  #tooManyViews(id: BlockId): never {
    throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot pin block: this thread holds ${MAX_VIEWS_PER_BLOCK} views and pins of it (id ${describeId(id)})`);
  }

  #heartbeatNow(): void {
    this.#callsSinceHeartbeat = 0;
    this.#owners.heartbeat(this.#owner, Date.now());
  }

  /** Gives back an explicit pin taken by #pinExplicit. */
  #releasePin(e: number): void {
    const ok = this.#owners.sub(this.#owner, e, R_PINS);
    assert(ok, 'a released pin was recorded for this owner');
    this.#unpinEntry(e);
  }


  /** Internal: called by View.release(). */
  [RELEASE_VIEW](entry: number): void {
    if (this.#closed) this.#closedAtRelease();
    this.#unpinEntry(entry);
  }

  #closedAtRelease(): never {
    throw new TesseraError(ErrorCode.CLOSED, 'Cannot release view: this BlockCache instance is closed (its views were released by close())');
  }

  // ---------------------------------------------------------------- public reads

  /** A zero-copy pinned view of `id`, or undefined on a miss. Release it with view.release(). */
  acquire(id: BlockId): BlockView | undefined {
    const e = this.#pinView(id, 'acquire block');
    return e < 0 ? undefined : new View(this, e, id, this.#bytesOf(e));
  }

  /**
   * Calls fn with a zero-copy view of `id` (valid during the call only) and returns its
   * result, or undefined on a miss without calling fn. Allocates nothing per call.
   */
  withView<T>(id: BlockId, fn: (bytes: Uint8Array) => T): T | undefined {
    const e = this.#pinView(id, 'read block');
    if (e < 0) return undefined;
    try {
      return fn(this.#bytesOf(e));
    } finally {
      if (!this.#closed) this.#unpinEntry(e);
    }
  }

  /**
   * Allocation-free acquire: pins `id` for this thread and returns a handle (a small
   * non-negative integer) for handleBytes/releaseHandle, or -1 on a miss. Each successful
   * call needs one releaseHandle. The handle names the block's table entry: two holds of the
   * same block share it, so releasing one more time than acquired throws ALREADY_RELEASED.
   */
  acquireHandle(id: BlockId): number {
    return this.#pinView(id, 'acquire block');
  }

  /** The zero-copy view of a handle from acquireHandle (valid until its release). */
  handleBytes(handle: number): Uint8Array {
    this.#checkHandle(handle, 'read handle');
    return this.#bytesOf(handle);
  }

  releaseHandle(handle: number): void {
    this.#checkHandle(handle, 'release handle');
    this.#unpinEntry(handle);
  }

  #checkHandle(handle: number, op: string): void {
    if (this.#closed) throw new TesseraError(ErrorCode.CLOSED, `Cannot ${op}: this BlockCache instance is closed`);
    if (!Number.isInteger(handle) || handle < 0 || handle >= this.#entryCount) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot ${op}: not a handle of this cache (${String(handle)})`);
    }
    if (this.#holds[this.#row + handle] === 0) {
      throw new TesseraError(ErrorCode.ALREADY_RELEASED, `Cannot ${op}: this thread holds no view of it (handle ${handle})`);
    }
  }

  /** A copy of `id`'s bytes, or undefined. */
  get(id: BlockId): Uint8Array | undefined {
    const e = this.#pinView(id, 'get block');
    if (e < 0) return undefined;
    try {
      return this.#bytesOf(e).slice();
    } finally {
      this.#unpinEntry(e);
    }
  }

  /**
   * Copies `id`'s bytes into `target` (no allocation) and returns the block's length, or
   * -1 on a miss. TESSERA_ERR_INVALID_ARGUMENT when target is too small.
   */
  getInto(id: BlockId, target: Uint8Array): number {
    const e = this.#pinView(id, 'get block');
    if (e < 0) return -1;
    try {
      const bytes = this.#bytesOf(e);
      if (!(target instanceof Uint8Array) || target.length < bytes.length) {
        throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot get block: target must be a Uint8Array of at least ${bytes.length} bytes`);
      }
      target.set(bytes);
      return bytes.length;
    } finally {
      this.#unpinEntry(e);
    }
  }

  has(id: BlockId): boolean {
    this.#checkOpen('check block');
    const e = this.#pinById(id, this.#hashOf(id, 'check block'));
    if (e < 0) return false;
    this.#unpinEntry(e);
    return true;
  }

  /** Pins `id` for this thread (never evicted until unpin); false when absent. */
  pin(id: BlockId): boolean {
    return this.#pinExplicit(id, 'pin block') >= 0;
  }

  /** Drops one pin this thread took with pin(id), even if the block was deleted since. */
  unpin(id: BlockId): void {
    this.#checkOpen('unpin block');
    this.#hashOf(id, 'unpin block');
    let found = -1;
    this.#owners.forEachRecord(this.#owner, (e, _views, pins) => {
      if (found < 0 && pins > 0 && this.#keyEquals(e, id)) found = e;
    });
    if (found < 0) {
      throw new TesseraError(ErrorCode.ALREADY_RELEASED, `Cannot unpin block: this thread holds no pin on it (id ${describeId(id)})`);
    }
    this.#releasePin(found);
  }

  /** The ids stored now (committed blocks), in table order; a snapshot taken while iterating. */
  *keys(): IterableIterator<BlockId> {
    this.#checkOpen('list blocks');
    const w = this.#w;
    for (let e = 0; e < this.#entryCount; e++) {
      const st = this.#entries + e * Entry.WORDS + E.STATE;
      if (Atomics.load(w, st) !== BlockState.COMMITTED) continue;
      Atomics.add(this.#holds, this.#row + e, 1);
      if (Atomics.load(w, st) !== BlockState.COMMITTED) {
        this.#unpinEntry(e);
        continue;
      }
      let id: BlockId;
      try {
        id = this.#idOf(e);
      } finally {
        this.#unpinEntry(e);
      }
      yield id;
    }
  }

  // ---------------------------------------------------------------- writes

  /**
   * Copies `bytes` in under `id` (replacing an older block of that id), evicting by the
   * policy as needed. Returns false, changing nothing, when it cannot make room because
   * every candidate is pinned, acquired or vetoed.
   */
  put(id: BlockId, bytes: Uint8Array): boolean {
    if (!(bytes instanceof Uint8Array)) {
      this.#checkOpen('put block');
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, 'Cannot put block: bytes must be a Uint8Array');
    }
    return this.#write(id, bytes.length, bytes, undefined);
  }

  /**
   * Like put, but writes in place: reserves `length` bytes and calls `fill(bytes)` with a
   * view of the new block's (uninitialised) bytes to write, e.g. straight from a socket or
   * file read, with no intermediate copy. No reader sees the block before fill returns; if
   * fill throws, the block is dropped and the error rethrown.
   */
  putWith(id: BlockId, length: number, fill: (bytes: Uint8Array) => void): boolean {
    if (!Number.isSafeInteger(length) || length < 0 || typeof fill !== 'function') {
      this.#checkOpen('put block');
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot put block: length must be a non-negative safe integer and fill a function (length ${String(length)})`);
    }
    return this.#write(id, length, undefined, fill);
  }

  #write(id: BlockId, length: number, source: Uint8Array | undefined, fill: ((bytes: Uint8Array) => void) | undefined): boolean {
    this.#checkOpen('put block');
    const h = this.#hashOf(id, 'put block');
    if (length > this.#capacityBytes) {
      throw new TesseraError(ErrorCode.BLOCK_TOO_LARGE, `Cannot put block: it is larger than the cache (length ${length}, capacityBytes ${this.#capacityBytes})`);
    }
    const keyChars = typeof id === 'string' ? id.length : -1;
    const keyBytes = keyChars > 0 ? align64(keyChars * 2) : 0;
    const granules = 1 + Math.ceil((keyBytes + length) / GRANULE_BYTES);
    if (++this.#callsSinceHeartbeat >= BLOCK_CACHE_HEARTBEAT_EVERY_CALLS) {
      this.#callsSinceHeartbeat = 0;
      this.#owners.heartbeat(this.#owner, Date.now());
    }
    // Small blocks are copied under the lock (one lock round trip instead of two); large
    // ones outside it, so that other writers are not held up by a long copy.
    const copyLocked = source !== undefined && length <= BLOCK_CACHE_COPY_UNDER_LOCK_BYTES;
    let e: number;
    this.#lock();
    try {
      e = this.#reserve(granules, length);
      if (e < 0 && this.#reapDeadOwnersLocked() > 0) e = this.#reserve(granules, length);
      if (e < 0) return false;
      const base = this.#entries + e * Entry.WORDS;
      const fb = base >> 1;
      const g = this.#w[base + E.EXTENT]!;
      const keyOffset = this.#alloc.payloadByteOffset(g);
      this.#w[base + E.HASH] = h;
      this.#w[base + E.KEY_LEN] = keyChars;
      this.#w[base + E.WRITER] = this.#owner;
      this.#f[fb + EF.NUM_KEY] = typeof id === 'number' ? id : 0;
      this.#f[fb + EF.KEY_OFFSET] = keyOffset;
      this.#f[fb + EF.DATA_OFFSET] = keyOffset + keyBytes;
      this.#f[fb + EF.LENGTH] = length;
      if (typeof id === 'string') {
        const k = keyOffset >>> 1;
        for (let i = 0; i < keyChars; i++) this.#u16[k + i] = id.charCodeAt(i);
      }
      if (copyLocked) {
        this.#u8.set(source, keyOffset + keyBytes);
        this.#commit(e, id, h);
        return true;
      }
    } finally {
      this.#unlock();
    }
    // Copy outside the lock: other writers go on; the entry is WRITING, in no index or queue.
    const offset = this.#f[((this.#entries + e * Entry.WORDS) >> 1) + EF.DATA_OFFSET]!;
    if (source !== undefined) {
      this.#u8.set(source, offset);
    } else {
      try {
        fill!(new Uint8Array(this.#arena.buffer, offset, length));
      } catch (err) {
        this.#lock();
        try {
          this.#freeEntry(e);
        } finally {
          this.#unlock();
        }
        throw err;
      }
    }
    this.#lock();
    try {
      this.#commit(e, id, h);
    } finally {
      this.#unlock();
    }
    return true;
  }

  /** Under the lock: finds an entry and an extent for a block (evicting), state WRITING. */
  #reserve(granules: number, length: number): number {
    const w = this.#w;
    const f = this.#f;
    let policyVictims = 0;
    let sweep = 0; // 0: not yet, 1: skipped (long list), 2: done
    for (;;) {
      if (f[HF_USED_BYTES]! + length <= this.#capacityBytes && w[H_FREE_TOP]! > 0) {
        const top = w[H_FREE_TOP]! - 1;
        const e = w[this.#freeStack + top]!;
        const g = this.#alloc.alloc(granules, e);
        if (g >= 0) {
          w[H_FREE_TOP] = top;
          const base = this.#entries + e * Entry.WORDS;
          assert(w[base + E.STATE] === BlockState.FREE, 'an entry on the free stack is FREE');
          w[base + E.EXTENT] = g;
          Atomics.store(w, base + E.STATE, BlockState.WRITING);
          f[HF_USED_BYTES] = f[HF_USED_BYTES]! + length;
          return e;
        }
        // Room in total but no extent large enough: after a few victims in policy order,
        // grow the largest hole by evicting its neighbours (bounded fragmentation).
        if (policyVictims >= BLOCK_CACHE_POLICY_VICTIMS_BEFORE_HOLE_GROWING && this.#alloc.freeGranules >= granules && this.#evictNextToLargestHole()) continue;
      }
      // Deleted blocks whose last view was released since: give them back before evicting
      // (a long list only every few puts, so that its cost stays O(1) amortised per put).
      const pending = w[H_PENDING_COUNT]!;
      if (sweep === 0 && pending !== 0) {
        sweep = 1;
        if (pending <= BLOCK_CACHE_PENDING_SWEEP_EVERY || ++this.#sweepsSkipped * BLOCK_CACHE_PENDING_SWEEP_EVERY >= pending) {
          this.#sweepsSkipped = 0;
          sweep = 2;
          this.#sweepPending();
          continue;
        }
      }
      const victim = this.#claimPolicyVictim();
      if (victim < 0) {
        if (sweep !== 2 && pending !== 0) { // never fail while released room waits on the list
          sweep = 2;
          this.#sweepPending();
          continue;
        }
        return -1;
      }
      // A victim whose extent has exactly the granules wanted (blocks of one size, the common
      // case of a block store): its entry and extent pass to the new block as they are. That
      // skips the allocator's free and alloc, whose boundary tags sit in the neighbours'
      // headers, cache misses in a large arena (measured: free and alloc were a quarter of an
      // evicting 4 KiB put). The same entry would come back from the free stack anyway (LIFO).
      const vb = this.#entries + victim * Entry.WORDS;
      const victimLength = f[(vb >> 1) + EF.LENGTH]!;
      if (this.#alloc.sizeOf(w[vb + E.EXTENT]!) === granules && f[HF_USED_BYTES]! - victimLength + length <= this.#capacityBytes) {
        this.#unlinkClaimed(victim);
        f[HF_USED_BYTES] = f[HF_USED_BYTES]! - victimLength + length;
        Atomics.store(w, vb + E.STATE, BlockState.WRITING); // from EVICTING: readers still back off
        return victim;
      }
      this.#evictClaimed(victim);
      policyVictims++;
    }
  }

  /** Under the lock: evicts an evictable block next to the largest free extent; false if none. */
  #evictNextToLargestHole(): boolean {
    const hole = this.#alloc.largestFreeExtent();
    if (hole < 0) return false;
    for (const g of this.#alloc.neighboursOf(hole)) {
      if (g < 0) continue;
      const e = this.#alloc.tagOf(g);
      if (e < 0 || !this.#tryClaimVictim(e)) continue;
      this.#evictClaimed(e);
      return true;
    }
    return false;
  }

  /** Under the lock: publishes WRITING entry `e` as `id`, replacing an older block of that id. */
  #commit(e: number, id: BlockId, h: number): void {
    const w = this.#w;
    const base = this.#entries + e * Entry.WORDS;
    if (w[base + E.STATE] !== BlockState.WRITING || w[base + E.WRITER] !== this.#owner) {
      // Only a reaper takes a WRITING entry away: this thread's lease ran out mid-put.
      assert(this.#owners.gen(this.#owner) !== this.#ownerGen, 'commit of our WRITING entry');
      this.#expired = true;
      throw new TesseraError(ErrorCode.LEASE_EXPIRED, `Cannot put block: this thread's owner lease expired during the put (ownerLeaseMs ${this.#leaseMs})`);
    }
    w[base + E.WRITER] = -1;
    const tick = this.#f[HF_EPOCH]! + 1;
    this.#f[HF_EPOCH] = tick;
    // All fields and bytes are written; the seq-cst store publishes them with the state.
    Atomics.store(w, base + E.STATE, BlockState.COMMITTED);
    let firstTombstone = -1;
    let i = h & this.#bucketMask;
    for (let n = 0; n <= this.#bucketMask; i = (i + 1) & this.#bucketMask, n++) {
      const b = w[this.#buckets + i]!;
      if (b === BUCKET_EMPTY) break;
      if (b === BUCKET_TOMBSTONE) {
        if (firstTombstone < 0) firstTombstone = i;
        continue;
      }
      const old = b - 1;
      if (w[this.#entries + old * Entry.WORDS + E.HASH] === h && this.#keyEquals(old, id)) {
        Atomics.store(w, this.#buckets + i, e + 1); // readers see the old or the new block
        this.#policyRemove(old);
        this.#markDeleted(old);
        this.#policyInsert(e, tick);
        return;
      }
    }
    assert(w[this.#buckets + i] === BUCKET_EMPTY, 'index has an empty bucket');
    if (firstTombstone >= 0) {
      Atomics.store(w, this.#buckets + firstTombstone, e + 1);
      w[H_TOMBSTONES]!--;
    } else {
      Atomics.store(w, this.#buckets + i, e + 1);
      w[H_BUCKETS_USED]!++;
    }
    w[H_BLOCK_COUNT]!++;
    this.#policyInsert(e, tick);
    if (w[H_BUCKETS_USED]! * 4 > (this.#bucketMask + 1) * 3) this.#rebuildIndex();
  }

  /** Under the lock: the entry holding `id`, or -1. */
  #findLocked(id: BlockId, h: number): number {
    const w = this.#w;
    for (let i = h & this.#bucketMask, n = 0; n <= this.#bucketMask; i = (i + 1) & this.#bucketMask, n++) {
      const b = w[this.#buckets + i]!;
      if (b === BUCKET_EMPTY) return -1;
      if (b === BUCKET_TOMBSTONE) continue;
      if (w[this.#entries + (b - 1) * Entry.WORDS + E.HASH] === h && this.#keyEquals(b - 1, id)) return b - 1;
    }
    return -1;
  }

  /** Under the lock: turns entry `e`'s bucket into a tombstone. */
  #unindex(e: number): void {
    const w = this.#w;
    const h = w[this.#entries + e * Entry.WORDS + E.HASH]!;
    for (let i = h & this.#bucketMask, n = 0; n <= this.#bucketMask; i = (i + 1) & this.#bucketMask, n++) {
      const b = w[this.#buckets + i]!;
      assert(b !== BUCKET_EMPTY, 'an indexed entry is found in the index');
      if (b === e + 1) {
        Atomics.store(w, this.#buckets + i, BUCKET_TOMBSTONE);
        w[H_TOMBSTONES]!++;
        w[H_BLOCK_COUNT]!--;
        return;
      }
    }
    assert(false, 'an indexed entry is found in the index');
  }

  /** Under the lock: rewrites the index without tombstones (readers retry, see INDEX_SEQ). */
  #rebuildIndex(): void {
    const w = this.#w;
    Atomics.add(w, H_INDEX_SEQ, 1);
    w.fill(BUCKET_EMPTY, this.#buckets, this.#buckets + this.#bucketMask + 1);
    let count = 0;
    for (let e = 0; e < this.#entryCount; e++) {
      const base = this.#entries + e * Entry.WORDS;
      if ((Atomics.load(w, base + E.STATE) & STATE_MASK) !== BlockState.COMMITTED) continue;
      let i = w[base + E.HASH]! & this.#bucketMask;
      while (w[this.#buckets + i] !== BUCKET_EMPTY) i = (i + 1) & this.#bucketMask;
      w[this.#buckets + i] = e + 1;
      count++;
    }
    assert(count === w[H_BLOCK_COUNT], 'rebuilt index holds every committed block');
    w[H_BUCKETS_USED] = count;
    w[H_TOMBSTONES] = 0;
    Atomics.add(w, H_INDEX_SEQ, 1);
  }

  /**
   * Under the lock: marks `e` DELETED; frees it now if no owner holds it, else puts it on the
   * pending-free list (a sweep frees it after its last release).
   */
  #markDeleted(e: number): void {
    const w = this.#w;
    const base = this.#entries + e * Entry.WORDS;
    assert(w[base + E.STATE] === BlockState.COMMITTED, 'only a committed block is deleted');
    Atomics.store(w, base + E.STATE, BlockState.DELETED);
    if (this.#holders(e) === 0) {
      this.#freeEntry(e);
      return;
    }
    w[base + E.NEXT_PENDING] = w[H_PENDING_HEAD]!;
    w[H_PENDING_HEAD] = e + 1;
    w[H_PENDING_COUNT]!++;
  }

  /** Under the lock: gives entry `e`'s extent and the entry back. */
  #freeEntry(e: number): void {
    const w = this.#w;
    const base = this.#entries + e * Entry.WORDS;
    this.#alloc.free(w[base + E.EXTENT]!);
    this.#f[HF_USED_BYTES] = this.#f[HF_USED_BYTES]! - this.#f[(base >> 1) + EF.LENGTH]!;
    w[base + E.WRITER] = -1;
    Atomics.store(w, base + E.STATE, BlockState.FREE);
    const top = w[H_FREE_TOP]!;
    assert(top < this.#entryCount, 'free stack does not overflow');
    w[this.#freeStack + top] = e;
    w[H_FREE_TOP] = top + 1;
  }

  #policyInsert(e: number, tick: number): void {
    if (this.#isLru) lruInsert(this.#lru, e, tick);
    else if (this.#policy === POLICY_SIEVE) sieveInsert(this.#sieve, e);
    else s3fifoInsert(this.#s3, e, this.#w[this.#entries + e * Entry.WORDS + E.HASH]!);
  }

  #policyRemove(e: number): void {
    if (this.#isLru) lruRemove(this.#lru, e);
    else if (this.#policy === POLICY_SIEVE) sieveRemove(this.#sieve, e);
    else s3fifoRemove(this.#s3, e);
  }

  /** The policy's candidate test: unpinned, committed, not vetoed; claims it (EVICTING). */
  #tryClaimVictim(e: number): boolean {
    const w = this.#w;
    const st = this.#entries + e * Entry.WORDS + E.STATE;
    if (w[st] !== BlockState.COMMITTED) return false; // plain: under the lock (see the header)
    if (this.#canEvict !== undefined) {
      const id = this.#idOf(e);
      this.#inHook = true;
      try {
        if (!this.#canEvict(id)) return false;
      } finally {
        this.#inHook = false;
      }
    }
    if (Atomics.compareExchange(w, st, BlockState.COMMITTED, BlockState.EVICTING) !== BlockState.COMMITTED) return false;
    if (this.#holders(e) === 0) return true;
    Atomics.store(w, st, BlockState.COMMITTED); // held: a reader announced itself meanwhile
    return false;
  }

  /** Under the lock: the policy's next victim, claimed (EVICTING), or -1 when none can be. */
  #claimPolicyVictim(): number {
    return this.#isLru ? lruVictim(this.#lru, this.#claimVictim)
      : this.#policy === POLICY_SIEVE ? sieveVictim(this.#sieve, this.#claimVictim) : s3fifoVictim(this.#s3, this.#claimVictim);
  }

  /** Under the lock: evicts entry `e`, which #tryClaimVictim turned EVICTING. */
  #evictClaimed(e: number): void {
    this.#unlinkClaimed(e);
    this.#freeEntry(e);
  }

  /**
   * Under the lock: everything of evicting claimed entry `e` but freeing it: out of the policy
   * and the index, the onEvict hook, counted. Its extent and the entry stay allocated.
   */
  #unlinkClaimed(e: number): void {
    if (this.#policy === POLICY_S3FIFO && s3fifoInSmall(this.#s3, e)) s3fifoRemember(this.#s3, this.#w[this.#entries + e * Entry.WORDS + E.HASH]!);
    this.#policyRemove(e);
    this.#unindex(e);
    if (this.#onEvict !== undefined) {
      const id = this.#idOf(e);
      const fb = (this.#entries + e * Entry.WORDS) >> 1;
      const bytes = new Uint8Array(this.#arena.buffer, this.#f[fb + EF.DATA_OFFSET]!, this.#f[fb + EF.LENGTH]!);
      this.#inHook = true;
      try {
        this.#onEvict(id, bytes);
      } finally {
        this.#inHook = false;
      }
    }
    this.#f[HF_EVICTIONS] = this.#f[HF_EVICTIONS]! + 1;
  }

  /** Removes `id`; true if it was there. Views of it stay valid until released. */
  delete(id: BlockId): boolean {
    this.#checkOpen('delete block');
    const h = this.#hashOf(id, 'delete block');
    this.#lock();
    try {
      const e = this.#findLocked(id, h);
      if (e < 0) return false;
      this.#unindex(e);
      this.#policyRemove(e);
      this.#markDeleted(e);
      return true;
    } finally {
      this.#unlock();
    }
  }

  // ---------------------------------------------------------------- owners

  #tick(): void {
    if (this.#closed) return;
    const now = Date.now();
    this.#owners.heartbeat(this.#owner, now);
    this.#flushCounters();
    if (now - this.#lastScanMs >= this.#leaseMs / 2 && this.#w[H_STATE] === CACHE_OPEN && !this.#holdsLock) {
      this.#lastScanMs = now;
      try {
        this.reapDeadOwners();
      } catch {
        // Closed or expired meanwhile: the next call on this instance reports it.
      }
    }
  }

  #flushCounters(): void {
    if (this.#hits === 0 && this.#misses === 0) return;
    this.#owners.addCounters(this.#owner, this.#hits, this.#misses);
    this.#hits = 0;
    this.#misses = 0;
  }

  /** True when owner `o` (not this one) is gone: its process died or its lease ran out. */
  #isDead(o: number, nowMs: number): boolean {
    if (o === this.#owner || !this.#owners.isLive(o)) return false;
    const pid = this.#owners.pid(o);
    if (pid !== process.pid) {
      const token = readProcessStartToken(pid);
      const recorded = this.#owners.startToken(o);
      if (token === undefined && recorded !== 0) return true;
      if (token !== undefined && recorded !== 0 && token !== recorded) return true;
    }
    return nowMs - this.#owners.heartbeatMs(o) > this.#leaseMs;
  }

  /**
   * Releases the pins (and half-written blocks) of owners that are gone. Runs on its own
   * from a timer and when a put finds no room; call it to reap at once. Returns how many
   * owners were reaped.
   */
  reapDeadOwners(): number {
    this.#checkOpen('reap owners');
    this.#lock();
    try {
      return this.#reapDeadOwnersLocked();
    } finally {
      this.#unlock();
    }
  }

  /**
   * Releases at once the pins of the owners of `threadId` in this process (call it from the
   * Worker's 'exit' event). Returns how many owners were released.
   */
  releaseThread(threadId: number): number {
    this.#checkOpen('release thread');
    if (threadId === currentThreadId) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Cannot release thread: threadId ${threadId} is the calling thread`);
    }
    this.#lock();
    try {
      let n = 0;
      for (let o = 0; o < this.#owners.count; o++) {
        if (o !== this.#owner && this.#owners.isLive(o) && this.#owners.pid(o) === process.pid && this.#owners.threadId(o) === threadId) {
          this.#releaseOwnerLocked(o);
          n++;
        }
      }
      return n;
    } finally {
      this.#unlock();
    }
  }

  #reapDeadOwnersLocked(): number {
    const now = Date.now();
    let n = 0;
    for (let o = 0; o < this.#owners.count; o++) {
      if (this.#isDead(o, now)) {
        this.#releaseOwnerLocked(o);
        n++;
      }
    }
    return n;
  }

  /** Under the lock: gives back every pin and half-written block of owner `o`, frees the slot. */
  #releaseOwnerLocked(o: number): void {
    const w = this.#w;
    // The holds (views and pins) are the owner's counters; the pin records only index them.
    this.#owners.clearRecords(o);
    const row = o * this.#entryCount;
    for (let e = 0; e < this.#entryCount; e++) {
      if (this.#holds[row + e] !== 0) Atomics.store(this.#holds, row + e, 0);
    }
    this.#sweepPending(); // deleted blocks this owner was the last to hold
    for (let e = 0; e < this.#entryCount; e++) {
      const base = this.#entries + e * Entry.WORDS;
      if (w[base + E.WRITER] === o && Atomics.load(w, base + E.STATE) === BlockState.WRITING) this.#freeEntry(e);
    }
    this.#f[HF_REAPED_HITS] = this.#f[HF_REAPED_HITS]! + this.#owners.hits(o);
    this.#f[HF_REAPED_MISSES] = this.#f[HF_REAPED_MISSES]! + this.#owners.misses(o);
    Atomics.and(w, H_LIVE_OWNERS + (o >>> 5), ~(1 << (o & 31)));
    this.#owners.free(o);
  }

  // ---------------------------------------------------------------- stats and lifecycle

  stats(): BlockCacheStats {
    this.#checkOpen('read stats');
    this.#flushCounters();
    const w = this.#w;
    const f = this.#f;
    let hits = f[HF_REAPED_HITS]!;
    let misses = f[HF_REAPED_MISSES]!;
    let owners = 0;
    for (let o = 0; o < this.#owners.count; o++) {
      if (!this.#owners.isLive(o)) continue;
      owners++;
      hits += this.#owners.hits(o);
      misses += this.#owners.misses(o);
    }
    let pinnedBlocks = 0;
    for (let e = 0; e < this.#entryCount; e++) {
      if (this.#holders(e) !== 0) pinnedBlocks++;
    }
    this.#lock();
    let freeBytes: number;
    let largestFreeBytes: number;
    let usedBytes: number;
    let blockCount: number;
    try {
      this.#sweepPending();
      freeBytes = this.#alloc.freeGranules * GRANULE_BYTES;
      largestFreeBytes = this.#alloc.largestFreeGranules() * GRANULE_BYTES;
      usedBytes = f[HF_USED_BYTES]!;
      blockCount = w[H_BLOCK_COUNT]!;
    } finally {
      this.#unlock();
    }
    return {
      capacityBytes: this.#capacityBytes, usedBytes, blockCount, hits, misses, evictions: f[HF_EVICTIONS]!,
      fragmentation: freeBytes > 0 ? 1 - largestFreeBytes / freeBytes : 0, freeBytes, largestFreeBytes, pinnedBlocks, owners,
    };
  }

  /**
   * Capacity, used bytes and block count, as stats() reports them, in O(1): stats() also sums
   * every owner's counters and scans every entry for holds (about 5 ms for a 1.3 GiB cache of
   * the default geometry here), too slow for a heartbeat on a server's event loop.
   */
  usage(): BlockCacheUsage {
    this.#checkOpen('read usage');
    this.#lock();
    try {
      this.#sweepPending(); // as stats(): released room of deleted blocks is not counted
      return { capacityBytes: this.#capacityBytes, usedBytes: this.#f[HF_USED_BYTES]!, blockCount: this.#w[H_BLOCK_COUNT]! };
    } finally {
      this.#unlock();
    }
  }

  /**
   * Checks the engine's invariants (allocator chain, extents disjoint and owned by live
   * entries, used bytes, index). O(size); for tests. Throws TESSERA_ERR_ASSERTION on a bug.
   */
  checkInvariants(): void {
    this.#checkOpen('check invariants');
    this.#lock();
    try {
      const w = this.#w;
      this.#sweepPending();
      let pending = 0;
      for (let cur = w[H_PENDING_HEAD]!; cur !== 0; cur = w[this.#entries + (cur - 1) * Entry.WORDS + E.NEXT_PENDING]!) {
        assert(++pending <= this.#entryCount, 'the pending-free list has no cycle');
        assert(Atomics.load(w, this.#entries + (cur - 1) * Entry.WORDS + E.STATE) === BlockState.DELETED, 'a pending entry is DELETED');
        assert(this.#holders(cur - 1) > 0, 'a pending entry after a sweep is held');
      }
      assert(pending === w[H_PENDING_COUNT], `the pending-free count is the list's length (${pending} vs ${w[H_PENDING_COUNT]})`);
      const used = this.#alloc.check();
      const byExtent = new Map(used.map(([g, size]) => [g, size]));
      let usedBytes = 0;
      let committed = 0;
      let allocated = 0;
      let deleted = 0;
      for (let e = 0; e < this.#entryCount; e++) {
        const base = this.#entries + e * Entry.WORDS;
        const state = Atomics.load(w, base + E.STATE) & STATE_MASK;
        if (state === BlockState.FREE) continue;
        allocated++;
        if (state === BlockState.COMMITTED) committed++;
        if (state === BlockState.DELETED) deleted++;
        const g = w[base + E.EXTENT]!;
        const size = byExtent.get(g);
        assert(size !== undefined, `entry ${e} owns an allocated extent`);
        assert(this.#alloc.tagOf(g) === e, `extent of entry ${e} is tagged with it`);
        const fb = base >> 1;
        const length = this.#f[fb + EF.LENGTH]!;
        const end = this.#f[fb + EF.DATA_OFFSET]! + length;
        assert(end <= this.#alloc.payloadByteOffset(g) + (size - 1) * GRANULE_BYTES, `entry ${e}'s bytes lie inside its extent`);
        assert(this.#f[fb + EF.DATA_OFFSET]! % 64 === 0, `entry ${e}'s bytes are 64-byte aligned`);
        usedBytes += length;
      }
      assert(deleted === pending, `every DELETED entry is on the pending-free list (${deleted} vs ${pending})`);
      assert(allocated === used.length, `every allocated extent belongs to one entry (${allocated} vs ${used.length})`);
      assert(usedBytes === this.#f[HF_USED_BYTES], `usedBytes is the sum of allocated blocks (${usedBytes} vs ${this.#f[HF_USED_BYTES]})`);
      assert(usedBytes <= this.#capacityBytes, 'usedBytes <= capacityBytes');
      assert(committed === w[H_BLOCK_COUNT], 'blockCount counts committed blocks');
      assert(w[H_FREE_TOP]! + allocated === this.#entryCount, 'free stack holds every free entry');
      const queued = this.#isLru ? this.#lru.meta[0] : this.#policy === POLICY_SIEVE ? this.#sieve.meta[0] : s3fifoCount(this.#s3);
      assert(queued === committed, 'the policy tracks every committed block');
    } finally {
      this.#unlock();
    }
  }

  /** Extents of committed blocks as [byteOffset, length] pairs (for tests). */
  extents(): Array<[number, number]> {
    this.#checkOpen('list extents');
    this.#lock();
    try {
      this.#sweepPending();
    } finally {
      this.#unlock();
    }
    const out: Array<[number, number]> = [];
    for (let e = 0; e < this.#entryCount; e++) {
      const base = this.#entries + e * Entry.WORDS;
      if ((Atomics.load(this.#w, base + E.STATE) & STATE_MASK) === BlockState.FREE) continue;
      out.push([this.#f[(base >> 1) + EF.DATA_OFFSET]!, this.#f[(base >> 1) + EF.LENGTH]!]);
    }
    return out;
  }

  /**
   * Closes this instance: releases its pins and views and its owner slot. Closing the
   * instance that created the cache closes the cache for every thread (their calls throw
   * TESSERA_ERR_CLOSED, attach of its handle too). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    clearInterval(this.#timer);
    this.#closed = true;
    try {
      if (!this.#expired && this.#owners.gen(this.#owner) === this.#ownerGen) {
        this.#lock();
        try {
          this.#flushCounters();
          this.#releaseOwnerLocked(this.#owner);
        } finally {
          this.#unlock();
        }
      }
    } catch (err) {
      // An abandoned lock: nothing can be given back safely; the instance closes anyway.
      if (!isTesseraError(err, ErrorCode.LOCK_ABANDONED)) throw err;
    } finally {
      if (this.#creator) Atomics.store(this.#w, H_STATE, CACHE_CLOSED);
    }
    this.#viewCache.length = 0;
    this.#arena.close();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
