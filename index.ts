/**
 * The package's face: the public exports of Tessera.
 */
export { TesseraError, ErrorCode, isTesseraError } from './core/errors.js';
export type { ErrorCodeValue } from './core/errors.js';
export { crc32c } from './core/crc32c.js';
