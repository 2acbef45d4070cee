/**
 * Public surface of core/: the shared-memory block engine and the pieces other folders use.
 */
export { BlockCache } from './block-cache.js';
export type {
  BlockCacheAttachOptions, BlockCacheHandle, BlockCacheHooks, BlockCacheOptions, BlockCacheShmAddress, BlockCacheStats, BlockCacheUsage, BlockId, BlockView,
  EvictionPolicyName,
} from './block-cache.js';
export { SabArena, ARENA_ALIGNMENT_BYTES } from './arena.js';
export type { Arena, ArenaHandle, ArenaKind, ArenaWaitResult, SabArenaHandle, ShmArenaHandle } from './arena.js';
export { TlsfAllocator, GRANULE_BYTES } from './allocator.js';
export { readProcessStartToken } from './owners.js';
export { lruCreate, lruInsert, lruRemove, lruTouch, lruVictim, lruCount } from './policies/lru.js';
export type { LruState } from './policies/lru.js';
export { sieveCreate, sieveInsert, sieveRemove, sieveTouch, sieveVictim, sieveCount } from './policies/sieve.js';
export type { SieveState } from './policies/sieve.js';
export {
  s3fifoCreate, s3fifoInsert, s3fifoRemove, s3fifoTouch, s3fifoVictim, s3fifoRemember, s3fifoInSmall, s3fifoCount,
} from './policies/s3fifo.js';
export type { S3FifoState } from './policies/s3fifo.js';
export { TesseraError, ErrorCode, isTesseraError } from './errors.js';
export type { ErrorCodeValue } from './errors.js';
