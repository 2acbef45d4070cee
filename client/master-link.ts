/**
 * The client's way to call the master: one `call(method, request)` over whatever carries it,
 * plus the retry rule. A call that fails because the connection went away (master restart,
 * network blip) is retried with a doubling back-off until it succeeds, a non-connection
 * error comes back, CLIENT_MAX_CALL_ATTEMPTS attempts are spent or CLIENT_RECONNECT_TIMEOUT_MS
 * has passed. Reconnecting itself is the job of the link's implementation (connect.ts), which
 * also gives every call a deadline (CLIENT_CALL_DEADLINE_MS): a master that hangs fails the
 * call with TESSERA_ERR_DEADLINE_EXCEEDED instead of holding the caller forever.
 */
import { ErrorCode, TesseraError, isTesseraError, type ErrorCodeValue } from '../core/errors.js';
import {
  CLIENT_MAX_CALL_ATTEMPTS, CLIENT_RECONNECT_TIMEOUT_MS, CLIENT_RETRY_BASE_DELAY_MS, CLIENT_RETRY_MAX_DELAY_MS,
} from '../core/constants.js';
import type { MasterApi, MasterMethod } from '../transports/protocol/master.js';

export type MasterRequest<M extends MasterMethod> = Parameters<MasterApi[M]>[0];
export type MasterResponse<M extends MasterMethod> = Awaited<ReturnType<MasterApi[M]>>;

export interface MasterLink {
  /** One attempt of one call; rejects with a TesseraError. */
  call<M extends MasterMethod>(method: M, req: MasterRequest<M>): Promise<MasterResponse<M>>;
  close(): Promise<void>;
}

/** Errors that mean "the master could not be reached", not "the master said no". */
const RETRYABLE: readonly ErrorCodeValue[] = [
  ErrorCode.CONNECTION_CLOSED, ErrorCode.CONNECT_FAILED, ErrorCode.HANDSHAKE_TIMEOUT, ErrorCode.IDLE_TIMEOUT,
];

export function isConnectionError(err: unknown): boolean {
  if (isTesseraError(err)) return RETRYABLE.includes(err.code);
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function backoffMs(attempt: number): number {
  return Math.min(CLIENT_RETRY_MAX_DELAY_MS, CLIENT_RETRY_BASE_DELAY_MS * 2 ** attempt);
}

/** Any error as a TesseraError (a non-Tessera error keeps its message and becomes its cause). */
export function asTesseraError(err: unknown, code: ErrorCodeValue, context: string): TesseraError {
  if (err instanceof TesseraError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new TesseraError(code, `${context}: ${msg}`, { cause: err });
}

/**
 * Calls with the retry rule above. `state.retried` tells a caller that an earlier attempt may
 * have landed, so it can make a non-idempotent call safe (a delete retried after the first
 * attempt landed turns FILE_NOT_FOUND into success).
 */
export async function callWithRetry<M extends MasterMethod>(link: MasterLink, method: M, req: MasterRequest<M>, state?: { retried: boolean }): Promise<MasterResponse<M>> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    if (state && attempt > 0) state.retried = true;
    try {
      return await link.call(method, req);
    } catch (err) {
      const retry = isConnectionError(err) && attempt + 1 < CLIENT_MAX_CALL_ATTEMPTS && Date.now() - started < CLIENT_RECONNECT_TIMEOUT_MS;
      if (!retry) throw asTesseraError(err, ErrorCode.REMOTE, `Master call ${method} failed`);
      await sleep(backoffMs(attempt));
    }
  }
}
