/**
 * The master host's public surface: the host (serves the master service), the file-system
 * master (all operations, usable in-process), and the pure parts (paths, inode tree, block
 * master, mount table) for tests and tools.
 */
export { MasterHost } from './host.js';
export type { MasterHostOptions } from './host.js';
export { FileSystemMaster, MASTER_VERSION } from './file-system-master.js';
export type { FileSystemMasterOptions } from './file-system-master.js';
export { BlockMaster } from './block-master.js';
export type { BlockMasterOptions, Clock } from './block-master.js';
export { MountTable } from './mount-table.js';
export type { MountPoint, MountResolution } from './mount-table.js';
export { InodeTree } from './inode-tree.js';
export { NamespaceMachine, EntryType, NAMESPACE_COMPONENT } from './namespace.js';
export { normalizePath, pathComponents, joinPath, isAncestorOrSelf, validateName } from './path.js';
export { MasterService, blockIdOf, fileIdOfBlock, sequenceOfBlock } from '../transports/protocol/master.js';
export type * from '../transports/protocol/master.js';
