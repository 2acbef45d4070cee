/** Helpers shared by the CLI tests. */
import * as assert from 'uvu/assert';
import { isTesseraError } from '../../core/errors.js';

/** Asserts that `fn` throws TESSERA_ERR_CONFIG with a message that mentions each of `mention`. */
export function configError(fn: () => unknown, mention: string[]): void {
  try {
    fn();
    assert.unreachable('should throw');
  } catch (err) {
    assert.ok(isTesseraError(err, 'TESSERA_ERR_CONFIG'), `expected TESSERA_ERR_CONFIG, got ${String(err)}`);
    for (const m of mention) assert.match((err as Error).message, m);
  }
}
