/**
 * Always-on invariant checks. A failed assertion is a bug in Tessera, never an operating
 * error: it throws TESSERA_ERR_ASSERTION. Operating errors (bad input, full arena, missing
 * block) are TesseraErrors with their own codes, see core/errors.ts.
 */
import { ErrorCode, TesseraError } from './errors.js';

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new TesseraError(ErrorCode.ASSERTION, `Assertion failed: ${message}`);
}

export function assertNever(value: never, message = 'unexpected value'): never {
  throw new TesseraError(ErrorCode.ASSERTION, `Assertion failed: ${message}: ${String(value)}`);
}
