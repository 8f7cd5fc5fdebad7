/**
 * One googleapis call under the job's retry policy and limiter
 * (`HttpClient.withPolicy`, lib/http.ts), with the client's own retries off
 * (`retry: false`, {@link GOOGLE_CLIENT_OPTIONS}) and Google's answers mapped
 * onto our errors:
 *
 * - 429, and 403 `rateLimitExceeded` / `userRateLimitExceeded` → retried with
 *   backoff, `Retry-After` honoured, the whole limiter paused; spent →
 *   RATE_LIMITED (exit 2) — the mapping of lib/http.ts `httpError`;
 * - 404 on a named file or folder → SOURCE_NOT_FOUND (exit 3), and 403 on it
 *   → AUTH_FAILED (exit 3), both saying which file or folder and with whom to
 *   share it (the service account's e-mail);
 * - 401 → AUTH_FAILED naming the credential's config key;
 * - 5xx, network errors → retried, then SOURCE_UNAVAILABLE (exit 2).
 */
import { Readable } from 'node:stream';
import { DativoError } from '../../lib/errors.js';
import { sdkError, type HttpClient } from '../../lib/http.js';
import type { GoogleAuth } from './auth.js';

/**
 * Options every googleapis client of ours is created with: no retries of its
 * own (it ignores `Retry-After`; ours is the one policy), no keep-alive pool
 * left behind by a finished read.
 */
export const GOOGLE_CLIENT_OPTIONS = Object.freeze({ retry: false as const, retryConfig: { retry: 0 } });

/** The file, folder or spreadsheet a call is about (named by not-found and not-shared errors). */
export interface GoogleResource {
  kind: string;
  id: string;
  name?: string;
}

/** What a call is, for its errors. */
export interface GoogleCallFacts {
  connector: string;
  /** e.g. `files.list` or `files.get alt=media`. */
  what: string;
  resource?: GoogleResource;
  /** Counted under this object (default the client's). */
  object?: string;
}

/** What {@link googleCall}'s function gets: the auth headers and the signal of this attempt. */
export interface GoogleRequestOptions {
  headers: Record<string, string>;
  signal?: AbortSignal;
}

function describe(r: GoogleResource): string {
  return `${r.kind} ${r.id}${r.name !== undefined && r.name !== r.id ? ` ("${r.name}")` : ''}`;
}

/** Map what a googleapis call threw (a GaxiosError, a network error) to our error model; see the module comment. */
export function googleError(err: unknown, auth: GoogleAuth, facts: GoogleCallFacts): DativoError {
  const e = sdkError(err, facts.connector, {
    what: facts.what,
    credentialKey: auth.credentialKey,
    secrets: auth.secrets,
    context: { request: facts.what, ...(facts.resource ? { resource: facts.resource.id, resourceKind: facts.resource.kind } : {}) },
  });
  const status = e.context.status;
  const r = facts.resource;
  if (r !== undefined && e.code === 'SOURCE_NOT_FOUND') {
    return new DativoError('SOURCE_NOT_FOUND', `${facts.connector}: ${describe(r)} does not exist or is not shared with ${whom(auth)}: ${auth.shareHint}`, {
      cause: e,
      context: { ...e.context, ...(auth.email !== undefined ? { shareWith: auth.email } : {}) },
    });
  }
  if (r !== undefined && e.code === 'AUTH_FAILED' && status === 403) {
    return new DativoError('AUTH_FAILED', `${facts.connector}: ${whom(auth)} may not read ${describe(r)} (HTTP 403): ${auth.shareHint}`, {
      cause: e,
      context: { ...e.context, ...(auth.email !== undefined ? { shareWith: auth.email } : {}) },
    });
  }
  if (e.code === 'AUTH_FAILED' && status === 401) auth.invalidate();
  return e;
}

function whom(auth: GoogleAuth): string {
  if (auth.email !== undefined) return `the service account ${auth.email}`;
  return auth.kind === 'api_key' ? 'the public (API key)' : 'the OAuth user';
}

/**
 * An error answer to a `responseType: 'stream'` request carries its body as
 * a stream: read it (at most 64 KiB) so the mapping sees Google's reason
 * (`userRateLimitExceeded` in a 403, the message of a 404).
 */
async function readStreamedErrorBody(err: unknown): Promise<void> {
  const response = (err as { response?: { data?: unknown } } | null)?.response;
  const data = response?.data;
  // gaxios 7 reads an error answer's stream itself, into `String(chunks)`:
  // the bytes as comma-separated numbers. Decode them.
  if (response !== undefined && typeof data === 'string' && /^\d{1,3}(,\d{1,3})*$/.test(data) && data.length > 8) {
    const text = Buffer.from(data.split(',').map(Number)).toString('utf8');
    try {
      response.data = JSON.parse(text);
    } catch {
      response.data = text.slice(0, 500);
    }
    return;
  }
  // For a stream request gaxios 7 puts the error answer's text in the message and no data.
  if (response !== undefined && (data === undefined || data === null || data === '')) {
    const message = (err as Error).message;
    if (typeof message === 'string' && message.trimStart().startsWith('{')) {
      try {
        response.data = JSON.parse(message);
      } catch {
        // not JSON: the status alone maps
      }
    }
    return;
  }
  if (response === undefined || !(data instanceof Readable || (data !== null && typeof data === 'object' && typeof (data as { getReader?: unknown }).getReader === 'function'))) return;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    const readable = data instanceof Readable ? data : Readable.fromWeb(data as import('node:stream/web').ReadableStream);
    for await (const c of readable) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
      chunks.push(b);
      size += b.length;
      if (size > 64 * 1024) break;
    }
    readable.destroy();
  } catch {
    // The body is a courtesy: the status alone still maps.
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    response.data = JSON.parse(text);
  } catch {
    response.data = text.slice(0, 500);
  }
}

/**
 * Run `fn` (one googleapis call) under the client's policy, limiter, call
 * counter and signal, with the auth headers and the error
 * mapping of {@link googleError}. The token is renewed minutes before it
 * expires, so it outlives the attempts of one call.
 */
export async function googleCall<T>(client: HttpClient, auth: GoogleAuth, facts: GoogleCallFacts, fn: (opts: GoogleRequestOptions) => Promise<T>): Promise<T> {
  // The token first, outside the call's attempts: its exchange has its own
  // policy and limiter slot (inside, it would wait for the slot this call holds).
  const headers = await auth.headers();
  return client.withPolicy(
    async (signal) => {
      try {
        return await fn({ headers, ...(signal ? { signal } : {}) });
      } catch (err) {
        await readStreamedErrorBody(err);
        throw err;
      }
    },
    { ...(facts.object !== undefined ? { object: facts.object } : {}), mapError: (err) => googleError(err, auth, facts) },
  );
}
