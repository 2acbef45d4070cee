/**
 * Leases for client pins. A same-host client that opens a block for short-circuit reading
 * holds a pin on it (the bytes may not move or be freed while it maps them). Pins belong to an
 * owner (one client connection); the owner's lease expires unless renewed, and a connection
 * that closes releases everything it held. So a client that dies or hangs never keeps a block
 * pinned forever.
 *
 * The clock is passed in (`nowMs`), so expiry is tested without sleeping; the host drives
 * `sweep` from a timer.
 */
import { assert } from '../core/assert.js';
import { ErrorCode, TesseraError } from '../core/errors.js';
import { WORKER_PINS_PER_OWNER_MAX } from '../core/constants.js';

interface Owner {
  expiresAtMs: number;
  pins: Map<number, { blockId: number; release: () => void }>;
}

export interface LeaseTableOptions {
  leaseMs: number;
  pinsPerOwnerMax?: number;
}

export class LeaseTable {
  readonly #owners = new Map<string, Owner>();
  readonly #leaseMs: number;
  readonly #pinsMax: number;
  #nextPinId = 1;

  constructor(options: LeaseTableOptions) {
    if (!(Number.isSafeInteger(options.leaseMs) && options.leaseMs > 0)) {
      throw new TesseraError(ErrorCode.INVALID_ARGUMENT, `Invalid option leaseMs: must be a positive integer (got ${options.leaseMs})`);
    }
    this.#leaseMs = options.leaseMs;
    this.#pinsMax = options.pinsPerOwnerMax ?? WORKER_PINS_PER_OWNER_MAX;
  }

  get leaseMs(): number {
    return this.#leaseMs;
  }

  /** Records a pin for `owner` and (re)starts its lease; returns the pin id. */
  add(owner: string, blockId: number, release: () => void, nowMs: number): number {
    let o = this.#owners.get(owner);
    if (!o) {
      o = { expiresAtMs: nowMs + this.#leaseMs, pins: new Map() };
      this.#owners.set(owner, o);
    }
    if (o.pins.size >= this.#pinsMax) {
      throw new TesseraError(ErrorCode.LIMIT_EXCEEDED, `Cannot pin block ${blockId}: owner holds too many pins (pinsPerOwnerMax ${this.#pinsMax})`);
    }
    const pinId = this.#nextPinId++;
    o.pins.set(pinId, { blockId, release });
    o.expiresAtMs = nowMs + this.#leaseMs;
    return pinId;
  }

  /** Releases one pin; false when the owner or pin is unknown (already released or expired). */
  remove(owner: string, pinId: number): boolean {
    const o = this.#owners.get(owner);
    const p = o?.pins.get(pinId);
    if (!o || !p) return false;
    o.pins.delete(pinId);
    p.release();
    if (o.pins.size === 0) this.#owners.delete(owner);
    return true;
  }

  /** Extends the owner's lease; throws LEASE_EXPIRED when the owner holds nothing any more. */
  renew(owner: string, nowMs: number): number {
    const o = this.#owners.get(owner);
    if (!o) throw new TesseraError(ErrorCode.LEASE_EXPIRED, `Cannot renew lease: no pins held by ${owner} (expired or released)`);
    o.expiresAtMs = nowMs + this.#leaseMs;
    return o.expiresAtMs;
  }

  /** Releases every pin of one owner (its connection closed). Returns how many. */
  releaseOwner(owner: string): number {
    const o = this.#owners.get(owner);
    if (!o) return 0;
    this.#owners.delete(owner);
    for (const p of o.pins.values()) p.release();
    return o.pins.size;
  }

  /** Releases the pins of every owner whose lease ran out. Returns how many pins. */
  sweep(nowMs: number): number {
    let n = 0;
    for (const [owner, o] of [...this.#owners]) {
      if (o.expiresAtMs <= nowMs) n += this.releaseOwner(owner);
    }
    return n;
  }

  pinCount(owner?: string): number {
    if (owner !== undefined) return this.#owners.get(owner)?.pins.size ?? 0;
    let n = 0;
    for (const o of this.#owners.values()) n += o.pins.size;
    return n;
  }

  /** Releases everything (worker stop). */
  clear(): void {
    for (const owner of [...this.#owners.keys()]) this.releaseOwner(owner);
    assert(this.#owners.size === 0, 'lease table empty after clear');
  }
}
