/**
 * The contract between the journal and the components whose state it makes durable.
 * A component (the master's file system, block metadata, mount table, ...) is a
 * `JournaledStateMachine`: its state changes only by `apply(entry)`, it can be reset to empty,
 * snapshotted into a checkpoint and loaded back from one. The journal owns ordering and
 * durability; the component owns the meaning of `type` and the encoding of `payload`.
 */

/** One journal entry as the state machine sees it, on append and on replay alike. */
export interface JournalEntry {
  /** Position in the component's log: 1, 2, 3, ... with no gaps (per component). */
  readonly sequence: number;
  /** The component's own entry kind, an unsigned 32-bit integer. */
  readonly type: number;
  /**
   * The component's bytes, exactly as appended. On replay this is a view into the journal's
   * read buffer; a machine may keep it (the buffer is never reused) but must not mutate it.
   */
  readonly payload: Uint8Array;
}

/**
 * A consistent snapshot of a component, produced synchronously by `snapshot()` and written out
 * later (possibly while more entries are applied). Its chunks are the component's own bytes;
 * the journal frames and checksums them. Empty chunks are allowed and skipped. The loader
 * receives the same chunks, except that one above JOURNAL_CHECKPOINT_CHUNK_BYTES (4 MiB)
 * arrives split into pieces of at most that size: treat the checkpoint as a byte stream
 * (or keep chunks small) and nothing changes.
 */
export type CheckpointWriter = Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** What `loadCheckpoint` receives: the chunks written by `snapshot()`, verified, in order. */
export type CheckpointReader = AsyncIterable<Uint8Array>;

export interface JournaledStateMachine {
  /** The component's name and directory in the journal: lower case, `[a-z][a-z0-9_-]*`. */
  readonly name: string;
  /**
   * Applies one entry. The ONLY way the component's state changes; it must be deterministic
   * (same state + same entry → same state), because replay calls it again after a restart.
   * If it throws on append, the state must be unchanged and the journal writes nothing.
   */
  apply(entry: JournalEntry): void;
  /** Back to the empty state; called before replay. */
  reset(): void;
  /**
   * A consistent snapshot of the state at the current sequence, captured synchronously (copy,
   * or freeze an immutable structure): entries applied after the call must not show in it.
   * The returned chunks may be produced lazily.
   */
  snapshot(): CheckpointWriter;
  /**
   * Replaces the state (after `reset()`) with the one in a checkpoint. The journal verifies
   * every chunk's CRC32C as it is read; a corrupt checkpoint makes the iteration throw
   * TESSERA_ERR_JOURNAL_CORRUPT (let it propagate).
   */
  loadCheckpoint(chunks: CheckpointReader): Promise<void> | void;
}

/** A torn or corrupt tail of a current log that `Journal.open` cut off (and saved). */
export interface TailRecovery {
  component: string;
  /** The current log that was cut. */
  file: string;
  /** Byte offset of the first bad entry; the log now ends there. */
  offsetBytes: number;
  /** How many bytes were cut. */
  cutBytes: number;
  /** Where the cut bytes were saved. */
  brokenFile: string;
  /** Why the entry at `offsetBytes` was rejected. */
  reason: string;
}
