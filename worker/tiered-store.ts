/**
 * The worker's tiered block store: MEM (the block engine) above any number of file tiers
 * (SSD, HDD), one block in exactly one tier.
 *
 *   write:  writer.append()* → commit() → MEM put (engine evicts inline, victims demoted)
 *                                          └─ no room in MEM → first file tier with room → ...
 *   evict:  MEM victim ──copy──▶ demoting map ──▶ next tier (commit) ──▶ gone from the map
 *           file-tier victim (LRU, unlocked) ──▶ next tier, or dropped if it may be dropped
 *   read:   openReader() takes a read lock (and an engine pin for MEM); CACHE_PROMOTE first
 *           moves a lower-tier block up to MEM.
 *
 * A block is visible only after commit. A block of a pinned file, or of an ASYNC_THROUGH file
 * not yet persisted ("sticky"), is never dropped: it may move down a tier only when the next
 * tier has room, and the engine's `canEvict` veto keeps it in MEM otherwise; when nothing can
 * make room a write fails with NO_SPACE instead.
 *
 * Move, remove and evict of a block wait for (or, for eviction, skip) blocks with readers.
 * This store keeps its metadata in this process; the durable facts (which blocks are sticky)
 * are kept by the caller (persist-queue.ts) and handed back with `setSticky` after a restart.
 */
import { assert } from '../core/assert.js';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { WORKER_EVICTION_ROUNDS_MAX, WORKER_STAGING_BUFFERS_MAX } from '../core/constants.js';
import type { BlockReport, TierAlias } from '../transports/protocol/worker.js';
import { chooseVictimsLru } from './allocation-policy.js';
import { BlockLocks, type Unlock } from './block-locks.js';
import { FileTier, type FileTierOptions, type TierDirOptions } from './file-tier.js';
import { MemTier, type MemBacking } from './mem-tier.js';
import type { AllocationPolicyName } from './allocation-policy.js';

export interface TierSpec {
  alias: TierAlias;
  /** MEM: capacity of the arena. */
  capacityBytes?: number;
  /** SSD/HDD: directories with quotas. */
  dirs?: TierDirOptions[];
  policy?: AllocationPolicyName;
  /** MEM only: 'auto' (default), 'shm' or 'sab'. */
  backing?: 'auto' | MemBacking;
  /** MEM only: path of the shm arena file. */
  shmPath?: string;
  /** MEM only: mlock the arena (default true). */
  lock?: boolean;
  /** MEM only: the engine's eviction policy. */
  evictionPolicy?: 'lru' | 'sieve';
}

export interface BlockMeta {
  readonly id: number;
  lengthBytes: number;
  tier: TierAlias;
  pinned: boolean;
  /** False for a block of an ASYNC_THROUGH file not yet in its UFS. */
  persisted: boolean;
  lastAccessTick: number;
}

export interface CommitOptions {
  tier?: TierAlias;
  pinned?: boolean;
  persisted?: boolean;
}

/** A reader holds a block in place until release(). */
export interface BlockReader {
  readonly id: number;
  readonly lengthBytes: number;
  readonly source: TierAlias;
  /** MEM only: zero-copy bytes of the whole block, valid until release(). */
  readonly memBytes: Uint8Array | undefined;
  /** True when memBytes lie in the arena (not a copy on its way down a tier). */
  readonly inArena: boolean;
  /** SSD/HDD only: the block's file. */
  readonly filePath: string | undefined;
  /** Bytes [offset, offset+length): a view for MEM, a fresh buffer for file tiers. */
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  release(): void;
}

function sticky(m: BlockMeta): boolean {
  return m.pinned || !m.persisted;
}

export class TieredBlockStore {
  readonly mem: MemTier | undefined;
  readonly fileTiers: FileTier[];
  readonly locks = new BlockLocks();
  readonly #meta = new Map<number, BlockMeta>();
  /** MEM victims on their way down: their bytes, still readable. */
  readonly #demoting = new Map<number, Uint8Array>();
  #demotingBytes = 0;
  #demoteChain: Promise<void> = Promise.resolve();
  #tick = 0;
  #added = new Map<number, number>();
  #removed = new Set<number>();
  #closed = false;
  /** Staging buffers of finished writes, reused by the next writers. */
  readonly #staging: Buffer[] = [];
  /** Called for every block dropped from the worker (not moved). */
  onDropped: ((id: number) => void) | undefined;

  private constructor(mem: MemTier | undefined, fileTiers: FileTier[]) {
    this.mem = mem;
    this.fileTiers = fileTiers;
  }

  static async open(tiers: TierSpec[]): Promise<TieredBlockStore> {
    if (!Array.isArray(tiers) || tiers.length === 0) throw new TesseraError(ErrorCode.CONFIG, 'Invalid option tiers: at least one tier is required');
    const order: TierAlias[] = ['MEM', 'SSD', 'HDD'];
    let last = -1;
    for (const t of tiers) {
      const i = order.indexOf(t.alias);
      if (i <= last) throw new TesseraError(ErrorCode.CONFIG, `Invalid option tiers: aliases must be distinct and ordered MEM, SSD, HDD (got ${tiers.map((x) => x.alias).join(', ')})`);
      last = i;
    }
    const fileTiers: FileTier[] = [];
    for (const t of tiers) {
      if (t.alias === 'MEM') continue;
      const opts: FileTierOptions = { alias: t.alias, dirs: t.dirs ?? [], ...(t.policy ? { policy: t.policy } : {}) };
      fileTiers.push(await FileTier.open(opts));
    }
    // eslint-disable-next-line prefer-const
    let store: TieredBlockStore;
    const memSpec = tiers.find((t) => t.alias === 'MEM');
    const mem = memSpec
      ? MemTier.create({
        capacityBytes: memSpec.capacityBytes ?? 0,
        ...(memSpec.backing ? { backing: memSpec.backing } : {}),
        ...(memSpec.shmPath ? { shmPath: memSpec.shmPath } : {}),
        ...(memSpec.lock !== undefined ? { lock: memSpec.lock } : {}),
        ...(memSpec.evictionPolicy ? { policy: memSpec.evictionPolicy } : {}),
        canEvict: (id) => store.#canEvictMem(id),
        onEvict: (id, bytes) => store.#onMemEvict(id, bytes),
      })
      : undefined;
    store = new TieredBlockStore(mem, fileTiers);
    for (const ft of fileTiers) {
      for (const e of ft.entries()) {
        if (store.#meta.has(e.id)) {
          await ft.remove(e.id); // a copy left by a crash mid-move: keep the upper one
          continue;
        }
        store.#meta.set(e.id, { id: e.id, lengthBytes: e.lengthBytes, tier: ft.alias as TierAlias, pinned: false, persisted: true, lastAccessTick: 0 });
      }
    }
    return store;
  }

  // ---- queries -------------------------------------------------------------------------

  get memBacking(): MemBacking | undefined {
    return this.mem?.backing;
  }

  info(id: number): BlockMeta | undefined {
    return this.#meta.get(id);
  }

  has(id: number): boolean {
    return this.#meta.has(id);
  }

  get blockCount(): number {
    return this.#meta.size;
  }

  /** Full block report: every committed block. */
  report(): BlockReport[] {
    return [...this.#meta.values()].map((m) => [m.id, m.lengthBytes]);
  }

  /** Blocks added and removed since the last call (for the heartbeat). */
  takeChanges(limit = Infinity): { added: BlockReport[]; removed: number[] } {
    const added: BlockReport[] = [];
    for (const [id, len] of this.#added) {
      if (added.length >= limit) break;
      added.push([id, len]);
      this.#added.delete(id);
    }
    const removed: number[] = [];
    for (const id of this.#removed) {
      if (removed.length >= limit) break;
      removed.push(id);
      this.#removed.delete(id);
    }
    return { added, removed };
  }

  /** Gives back changes a failed heartbeat took. */
  restoreChanges(changes: { added: BlockReport[]; removed: number[] }): void {
    for (const [id, len] of changes.added) if (this.#meta.has(id) && !this.#added.has(id)) this.#added.set(id, len);
    for (const id of changes.removed) if (!this.#meta.has(id)) this.#removed.add(id);
  }

  /** Forget pending changes (a full report is being sent instead). */
  clearChanges(): void {
    this.#added.clear();
    this.#removed.clear();
  }

  tierStats(): { alias: TierAlias; capacityBytes: number; usedBytes: number; blockCount: number }[] {
    const out: { alias: TierAlias; capacityBytes: number; usedBytes: number; blockCount: number }[] = [];
    if (this.mem) {
      const s = this.mem.usage();
      out.push({ alias: 'MEM', capacityBytes: s.capacityBytes, usedBytes: s.usedBytes, blockCount: s.blockCount });
    }
    for (const t of this.fileTiers) out.push({ alias: t.alias as TierAlias, capacityBytes: t.capacityBytes, usedBytes: t.usedBytes, blockCount: t.blockCount });
    return out;
  }

  get capacityBytes(): number {
    return this.tierStats().reduce((s, t) => s + t.capacityBytes, 0);
  }

  get usedBytes(): number {
    return this.tierStats().reduce((s, t) => s + t.usedBytes, 0);
  }

  /** Marks a block sticky or not (pinned file; ASYNC_THROUGH not yet persisted). */
  setFlags(id: number, flags: { pinned?: boolean; persisted?: boolean }): boolean {
    const m = this.#meta.get(id);
    if (!m) return false;
    if (flags.pinned !== undefined) m.pinned = flags.pinned;
    if (flags.persisted !== undefined) m.persisted = flags.persisted;
    return true;
  }

  // ---- write -------------------------------------------------------------------------

  /** A writer for a new block; nothing is visible until commit(). */
  createWriter(id: number, reserveBytes: number, options: CommitOptions = {}): BlockWriter {
    this.#checkOpen();
    if (!(Number.isSafeInteger(id) && id >= 0)) throw new TesseraError(ErrorCode.INVALID_ID, `Invalid block id ${id}: must be a non-negative safe integer`);
    if (!(Number.isSafeInteger(reserveBytes) && reserveBytes >= 0)) throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid reserveBytes ${reserveBytes}: must be a non-negative integer`);
    if (this.#meta.has(id)) throw new TesseraError(ErrorCode.BLOCK_EXISTS, `Cannot write block ${id}: it already exists on this worker`);
    return new BlockWriter(this, id, reserveBytes, options);
  }

  /** A staging buffer of at least `bytes` (reused when one is free; at most 2x too big). */
  takeStaging(bytes: number): Buffer {
    const i = this.#staging.findIndex((b) => b.byteLength >= bytes && b.byteLength <= 2 * bytes);
    if (i !== -1) return this.#staging.splice(i, 1)[0]!;
    return Buffer.allocUnsafeSlow(bytes);
  }

  giveStaging(b: Buffer): void {
    if (b.byteLength === 0 || this.#closed) return;
    if (this.#staging.length >= WORKER_STAGING_BUFFERS_MAX) this.#staging.shift();
    this.#staging.push(b);
  }

  /** Stores a whole block (a writer's commit, a UFS read being cached). */
  async putBlock(id: number, bytes: Uint8Array, options: CommitOptions = {}): Promise<BlockMeta> {
    this.#checkOpen();
    if (this.#meta.has(id)) throw new TesseraError(ErrorCode.BLOCK_EXISTS, `Cannot write block ${id}: it already exists on this worker`);
    const unlock = await this.locks.exclusive(id);
    try {
      if (this.#meta.has(id)) throw new TesseraError(ErrorCode.BLOCK_EXISTS, `Cannot write block ${id}: it already exists on this worker`);
      const meta: BlockMeta = {
        id, lengthBytes: bytes.byteLength, tier: 'MEM', pinned: options.pinned ?? false, persisted: options.persisted ?? true, lastAccessTick: ++this.#tick,
      };
      const tier = await this.#place(id, bytes, options.tier ?? 'MEM');
      if (!tier) {
        throw new TesseraError(ErrorCode.NO_SPACE, `Cannot store block ${id}: no tier has room for ${bytes.byteLength} bytes (every block left is pinned, unpersisted or being read)`);
      }
      meta.tier = tier;
      this.#meta.set(id, meta);
      this.#added.set(id, meta.lengthBytes);
      this.#removed.delete(id);
      return meta;
    } finally {
      unlock();
    }
  }

  /** Puts bytes in the first tier from `first` down that has (or can make) room. */
  async #place(id: number, bytes: Uint8Array, first: TierAlias): Promise<TierAlias | undefined> {
    if (first === 'MEM' && this.mem) {
      const ok = this.mem.put(id, bytes); // the engine evicts inline, victims go to #onMemEvict
      await this.#demoteChain; // demotions this put started finish before the write returns
      if (ok) return 'MEM';
    }
    const start = first === 'MEM' ? 0 : Math.max(0, this.fileTiers.findIndex((t) => t.alias === first));
    return this.#writeToFileTiers(id, bytes, start);
  }

  /** Writes a whole block into the first file tier from `start` down that takes it; its alias, or undefined. */
  async #writeToFileTiers(id: number, bytes: Uint8Array, start = 0): Promise<TierAlias | undefined> {
    for (let i = start; i < this.fileTiers.length; i++) {
      if (await this.#writeToFileTier(i, id, [bytes])) return this.fileTiers[i]!.alias as TierAlias;
    }
    return undefined;
  }

  // ---- read --------------------------------------------------------------------------

  /**
   * Opens a committed block for reading; undefined when it is not here. With `promote`, a
   * block in a lower tier first moves up to MEM (best effort: it stays put if MEM is full of
   * blocks that may not move).
   */
  async openReader(id: number, options: { promote?: boolean } = {}): Promise<BlockReader | undefined> {
    this.#checkOpen();
    for (let attempt = 0; attempt < 3; attempt++) {
      const m = this.#meta.get(id);
      if (!m) return undefined;
      // Best effort, never waiting: a block someone is reading stays where it is this time.
      if (options.promote && m.tier !== 'MEM' && this.mem && !this.locks.isLocked(id)) await this.promote(id);
      const unlock = await this.locks.read(id);
      const reader = this.#readerUnderLock(id, unlock);
      if (reader) return reader;
      unlock();
    }
    return undefined;
  }

  #readerUnderLock(id: number, unlock: Unlock): BlockReader | undefined {
    const m = this.#meta.get(id);
    if (!m) return undefined;
    m.lastAccessTick = ++this.#tick;
    if (m.tier === 'MEM') {
      const view = this.mem?.acquire(id);
      const bytes = view?.bytes ?? this.#demoting.get(id);
      if (!bytes) return undefined;
      return new MemReader(id, bytes, view !== undefined, () => { view?.release(); unlock(); });
    }
    const tier = this.fileTiers.find((t) => t.alias === m.tier)!;
    if (!tier.has(id)) return undefined;
    return new FileReader(id, m.lengthBytes, m.tier, tier, tier.entry(id)!.path, unlock);
  }

  /** Moves a block from a lower tier up to MEM; false when it is not moved. */
  async promote(id: number): Promise<boolean> {
    if (!this.mem) return false;
    const unlock = await this.locks.exclusive(id);
    try {
      const m = this.#meta.get(id);
      if (!m || m.tier === 'MEM') return false;
      const tier = this.fileTiers.find((t) => t.alias === m.tier)!;
      const bytes = Buffer.allocUnsafeSlow(m.lengthBytes);
      await tier.readInto(id, 0, bytes);
      if (!this.mem.put(id, bytes)) {
        await this.#demoteChain;
        return false;
      }
      m.tier = 'MEM';
      await tier.remove(id);
      await this.#demoteChain;
      return true;
    } finally {
      unlock();
    }
  }

  // ---- remove ------------------------------------------------------------------------

  /** Drops a block from every tier, waiting for its readers. */
  async remove(id: number): Promise<boolean> {
    const unlock = await this.locks.exclusive(id);
    try {
      const m = this.#meta.get(id);
      if (!m) return false;
      this.#meta.delete(id);
      this.#added.delete(id);
      this.#removed.add(id);
      this.#dropBytes(id, m.tier);
      if (m.tier !== 'MEM') await this.fileTiers.find((t) => t.alias === m.tier)!.remove(id);
      return true;
    } finally {
      unlock();
    }
  }

  /** Frees a cached block whose data is safe elsewhere; pinned blocks stay unless forced. */
  async free(id: number, options: { force?: boolean } = {}): Promise<boolean> {
    const m = this.#meta.get(id);
    if (!m) return false;
    if (m.pinned && !options.force) return false;
    return this.remove(id);
  }

  #dropBytes(id: number, tier: TierAlias): void {
    if (tier === 'MEM') {
      this.mem?.delete(id); // frees at the last release of any view
      // A demotion in flight notices the block is gone and drops its copy.
    }
  }

  // ---- eviction ----------------------------------------------------------------------

  #canEvictMem(id: number): boolean {
    // Locked first: a block being put (or promoted) holds its exclusive lock and has no
    // metadata yet; it must not be a victim of a concurrent put while its writer awaits.
    if (this.locks.isLocked(id)) return false;
    const m = this.#meta.get(id);
    if (!m) return true; // not ours (should not happen); let the engine decide
    if (!sticky(m)) return true;
    const next = this.fileTiers[0];
    return next !== undefined && next.capacityBytes - next.usedBytes - this.#demotingBytes >= m.lengthBytes;
  }

  /** Inside the engine's put: copy the victim out, demote it asynchronously. */
  #onMemEvict(id: number, bytes: Uint8Array): void {
    const m = this.#meta.get(id);
    if (!m) return;
    if (this.fileTiers.length === 0) {
      assert(!sticky(m), `sticky block ${id} evicted from MEM with no lower tier`);
      this.#forget(id);
      return;
    }
    const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
    copy.set(bytes);
    this.#demoting.set(id, copy);
    this.#demotingBytes += copy.byteLength;
    this.#demoteChain = this.#demoteChain.then(() => this.#finishDemotion(id, copy, m));
  }

  /** `victim` is the metadata at eviction: a block removed and written again meanwhile is another block. */
  async #finishDemotion(id: number, copy: Uint8Array, victim: BlockMeta): Promise<void> {
    try {
      const m = this.#meta.get(id);
      if (m !== victim || m.tier !== 'MEM') return; // removed meanwhile
      const placed = await this.#writeToFileTiers(id, copy);
      const got = this.#meta.get(id);
      const still = got === victim ? got : undefined;
      if (placed && still) {
        still.tier = placed;
      } else if (placed) {
        await this.fileTiers.find((t) => t.alias === placed)!.remove(id);
      } else if (still && !sticky(still)) {
        this.#forget(id);
      } else if (still) {
        // Nowhere to go for a sticky block: put it back in memory if it fits, else keep the copy.
        if (this.mem?.put(id, copy)) return;
        return; // stays in #demoting (readable) until removed
      }
    } catch {
      // The copy could not go down (I/O error): a droppable block goes; a sticky one stays
      // readable from its copy.
      const m = this.#meta.get(id);
      if (m === victim && !sticky(m)) this.#forget(id);
      return;
    } finally {
      const m = this.#meta.get(id);
      if (m !== victim || m.tier !== 'MEM' || this.mem?.has(id)) this.#dropDemotingCopy(id, copy);
    }
  }

  /** Forgets the in-flight demotion copy of `id` (only if it is `copy`, when given). */
  #dropDemotingCopy(id: number, copy?: Uint8Array): void {
    const held = this.#demoting.get(id);
    if (held === undefined || (copy !== undefined && held !== copy)) return;
    this.#demoting.delete(id);
    this.#demotingBytes -= held.byteLength;
  }

  #forget(id: number): void {
    if (!this.#meta.delete(id)) return;
    this.#added.delete(id);
    this.#removed.add(id);
    this.onDropped?.(id);
  }

  /** Writes a whole block into file tier `index`, evicting from it (down or out) for room. */
  async #writeToFileTier(index: number, id: number, chunks: Uint8Array[]): Promise<boolean> {
    const tier = this.fileTiers[index]!;
    const len = chunks.reduce((s, c) => s + c.byteLength, 0);
    if (len > tier.largestDirBytes) return false;
    const skip = new Set<number>();
    for (let round = 0; round < WORKER_EVICTION_ROUNDS_MAX; round++) {
      if (tier.chooseDir(len) !== -1) {
        const entry = await tier.writeWhole(id, chunks);
        if (entry) return true;
      }
      const candidates = [];
      for (const e of tier.entries()) {
        const m = this.#meta.get(e.id);
        if (!m || skip.has(e.id) || e.id === id) continue;
        const canDrop = !sticky(m);
        const canMove = index + 1 < this.fileTiers.length;
        candidates.push({ id: e.id, lengthBytes: e.lengthBytes, lastAccessTick: m.lastAccessTick, movable: !this.locks.isLocked(e.id) && (canDrop || canMove) });
      }
      const victim = chooseVictimsLru(candidates, 1)?.[0];
      if (victim === undefined) return false;
      if (!(await this.#evictFromFileTier(index, victim))) skip.add(victim);
    }
    return false;
  }

  async #evictFromFileTier(index: number, id: number): Promise<boolean> {
    const unlock = this.locks.tryExclusive(id);
    if (!unlock) return false;
    try {
      const tier = this.fileTiers[index]!;
      const m = this.#meta.get(id);
      const e = tier.entry(id);
      if (!m || !e) return false;
      if (index + 1 < this.fileTiers.length) {
        const bytes = Buffer.allocUnsafeSlow(e.lengthBytes);
        await tier.readInto(id, 0, bytes);
        if (await this.#writeToFileTier(index + 1, id, [bytes])) {
          m.tier = this.fileTiers[index + 1]!.alias as TierAlias;
          await tier.remove(id);
          return true;
        }
      }
      if (sticky(m)) return false;
      await tier.remove(id);
      this.#forget(id);
      return true;
    } finally {
      unlock();
    }
  }

  /**
   * For an orderly stop: moves every MEM block that exists nowhere else (an ASYNC_THROUGH file
   * not yet persisted) down to the first file tier with room, so it outlives the process (the
   * MEM arena does not) and its pending persist resumes after a restart. Returns the blocks
   * moved and those left in MEM (no file tier, or no room): the latter are lost with the arena.
   */
  async spillUnpersisted(): Promise<{ moved: number[]; left: number[] }> {
    const moved: number[] = [];
    const left: number[] = [];
    if (!this.mem) return { moved, left };
    await this.#demoteChain;
    for (const m of [...this.#meta.values()]) {
      if (m.tier !== 'MEM' || m.persisted) continue;
      const unlock = await this.locks.exclusive(m.id);
      try {
        if (this.#meta.get(m.id) !== m || m.tier !== 'MEM') continue;
        const placed = await this.#spill(m.id);
        if (placed) {
          m.tier = placed;
          this.mem.delete(m.id);
          this.#dropDemotingCopy(m.id);
          moved.push(m.id);
        } else {
          left.push(m.id);
        }
      } finally {
        unlock();
      }
    }
    return { moved, left };
  }

  async #spill(id: number): Promise<TierAlias | undefined> {
    const view = this.mem?.acquire(id);
    const bytes = view?.bytes ?? this.#demoting.get(id);
    try {
      return bytes ? await this.#writeToFileTiers(id, bytes) : undefined;
    } finally {
      view?.release();
    }
  }

  /** Waits for demotions in flight (tests and orderly stop). */
  async settle(): Promise<void> {
    await this.#demoteChain;
  }

  #checkOpen(): void {
    if (this.#closed) throw new TesseraError(ErrorCode.CLOSED, 'Cannot use block store: it is closed');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#demoteChain.catch(() => undefined);
    this.mem?.close();
    // A host the user keeps after stop keeps this store: hold no buffers for it.
    this.#staging.length = 0;
  }
}

/** Staging for one block being written: bytes collect here, commit() stores them. */
export class BlockWriter {
  #staging: Buffer;
  #writtenBytes = 0;
  #done = false;

  constructor(
    private readonly store: TieredBlockStore,
    readonly id: number,
    readonly reserveBytes: number,
    private readonly options: CommitOptions,
  ) {
    this.#staging = store.takeStaging(reserveBytes);
  }

  get writtenBytes(): number {
    return this.#writtenBytes;
  }

  append(chunk: Uint8Array): void {
    if (this.#done) throw new TesseraError(ErrorCode.CLOSED, `Cannot write block ${this.id}: the writer is closed`);
    if (this.#writtenBytes + chunk.byteLength > this.reserveBytes) {
      throw new TesseraError(ErrorCode.BLOCK_TOO_LARGE, `Cannot write block ${this.id}: ${this.#writtenBytes + chunk.byteLength} bytes exceed reserveBytes ${this.reserveBytes}`);
    }
    this.#staging.set(chunk, this.#writtenBytes);
    this.#writtenBytes += chunk.byteLength;
  }

  /** The bytes written so far (for CACHE_THROUGH, which writes them to the UFS first). */
  get bytes(): Uint8Array {
    return this.#staging.subarray(0, this.#writtenBytes);
  }

  async commit(): Promise<BlockMeta> {
    if (this.#done) throw new TesseraError(ErrorCode.CLOSED, `Cannot commit block ${this.id}: the writer is closed`);
    this.#done = true;
    try {
      return await this.store.putBlock(this.id, this.bytes, this.options);
    } finally {
      this.#returnStaging();
    }
  }

  abort(): void {
    this.#done = true;
    this.#returnStaging();
  }

  #returnStaging(): void {
    const b = this.#staging;
    this.#staging = Buffer.alloc(0);
    this.store.giveStaging(b);
  }
}

class MemReader implements BlockReader {
  readonly source = 'MEM' as const;
  readonly filePath = undefined;
  #released = false;
  constructor(readonly id: number, readonly memBytes: Uint8Array, readonly inArena: boolean, private readonly onRelease: () => void) {}
  get lengthBytes(): number {
    return this.memBytes.byteLength;
  }
  async read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    assert(!this.#released, 'read after release');
    assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= this.memBytes.byteLength, 'read range inside the block');
    return this.memBytes.subarray(offsetBytes, offsetBytes + lengthBytes);
  }
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.onRelease();
  }
}

class FileReader implements BlockReader {
  readonly memBytes = undefined;
  readonly inArena = false;
  #released = false;
  constructor(
    readonly id: number, readonly lengthBytes: number, readonly source: TierAlias, private readonly tier: FileTier,
    readonly filePath: string, private readonly unlock: Unlock,
  ) {}
  async read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    assert(!this.#released, 'read after release');
    const out = Buffer.allocUnsafeSlow(lengthBytes);
    await this.tier.readInto(this.id, offsetBytes, out);
    return out;
  }
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.unlock();
  }
}
