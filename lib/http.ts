/**
 * The HTTP layer of API connectors, on Node's global `fetch` (undici): every
 * request goes through the job's {@link Limiter} and {@link RetryPolicy},
 * answers are mapped onto the error model, and every attempt that reaches
 * the network is counted per connector and object (API cost tracking).
 *
 * Status mapping (after the policy's retries for the retryable ones):
 * - 401/403 → AUTH_FAILED (exit 3), naming the credential's config key, never its value;
 * - 404 → SOURCE_NOT_FOUND (exit 3);
 * - 400, 422 and other 4xx → SOURCE_ERROR, fatal, with the API's own message;
 * - 429 (and Google's 403 `rateLimitExceeded`/`userRateLimitExceeded`) →
 *   retried; every request of the limiter pauses until `Retry-After`; when
 *   the policy is spent → RATE_LIMITED (exit 2);
 * - 5xx, timeouts, network errors (ECONNRESET anywhere on the cause chain) →
 *   retried, then SOURCE_UNAVAILABLE (exit 2);
 * - the caller's abort → ABORTED.
 *
 * Official SDKs (stripe, @hubspot/api-client, googleapis) are driven through
 * the same policy and limiter with {@link withPolicy}; turn the SDK's own
 * retries off (Stripe `maxNetworkRetries: 0`, HubSpot `numberOfApiCallRetries`
 * unset, gaxios `retry: false`) so there is one policy, ours.
 */
import { DativoError, isDativoError, toDativoError, type ErrorContext } from './errors.js';
import { acquireLimiter, type Limiter } from './limiter.js';
import { scrub, type Logger } from './log.js';
import { classifyFailure, DEFAULT_RETRY_POLICY, failureInfo, headerLookup, parseRetryAfter, retry, systemClock, type Clock, type RetryPolicy } from './retry.js';

/** Default timeout of one HTTP attempt (headers and body), in ms. */
export const DEFAULT_HTTP_TIMEOUT_MS = 60_000;

/**
 * API calls per connector and object: every attempt that reached the
 * network, retries included (they cost quota too).
 */
export class ApiCallCounter {
  private readonly counts = new Map<string, Map<string, number>>();

  /** Count one call. */
  add(connector: string, object: string, n = 1): void {
    let per = this.counts.get(connector);
    if (!per) this.counts.set(connector, (per = new Map()));
    per.set(object, (per.get(object) ?? 0) + n);
  }

  /** Calls of one object (of any connector when `connector` is omitted). */
  count(object: string, connector?: string): number {
    let n = 0;
    for (const [c, per] of this.counts) if (connector === undefined || c === connector) n += per.get(object) ?? 0;
    return n;
  }

  /** `{connector: {object: calls}}`, for a run summary or metrics. */
  toJSON(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [c, per] of this.counts) out[c] = Object.fromEntries(per);
    return out;
  }
}

/** Where requests go and how they authenticate: what a connector gives. */
export interface HttpEndpoint {
  /** Prefix of relative request paths, e.g. `https://api.stripe.com`. Default: paths must be absolute URLs. */
  baseUrl?: string;
  /** Headers of every request, e.g. `authorization`. Never logged. Default none. */
  headers?: Record<string, string>;
  /**
   * Config key of the credential the headers carry, named by AUTH_FAILED,
   * e.g. `source.credentials.api_key`. Default `source.credentials`.
   */
  credentialKey?: string;
  /** Timeout of one attempt in ms. Default {@link DEFAULT_HTTP_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** What the engine binds: policy, limiter, counting, logging, cancellation. */
export interface HttpClientOptions extends HttpEndpoint {
  /** Connector name, for errors and the call counter. */
  connector: string;
  /** Object the calls are counted under. Default `_`. */
  object?: string;
  /** Default {@link DEFAULT_RETRY_POLICY}. */
  policy?: RetryPolicy;
  /** Default: none (no rate limit, no shared 429 pause). */
  limiter?: Limiter;
  /** Default: none (calls are not counted). */
  counter?: ApiCallCounter;
  /** Cancels every request of this client. Default none. */
  signal?: AbortSignal;
  /** Debug line per request (method, path, status, ms; never headers or query values). Default none. */
  log?: Logger;
  /** Secret values scrubbed from error messages (an API may echo a key). Default none. */
  secrets?: readonly string[];
  /** Default the global `fetch`. */
  fetch?: typeof fetch;
  /** Default the system clock. */
  clock?: Clock;
}

/** One request. */
export interface RequestOptions {
  /** Default `GET`. */
  method?: string;
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  /** Extra headers of this request. */
  headers?: Record<string, string>;
  /** A JSON value (sent as `application/json`) or a string / form body as is. */
  body?: unknown;
  /** Cancels this request (with the client's signal). */
  signal?: AbortSignal;
  /** Statuses answered to the caller instead of thrown, e.g. `[404]` when absence is a valid answer. */
  accept?: readonly number[];
  /** Counted under this object instead of the client's. */
  object?: string;
}

/** An answered request. */
export interface HttpResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON (undefined for an empty body). */
  body: T;
}

/** The message an API put in its JSON error body (Stripe, Google, HubSpot, OAuth shapes), if any. */
export function apiErrorMessage(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return typeof body === 'string' && body.trim() !== '' ? body.trim().slice(0, 500) : undefined;
  const b = body as Record<string, unknown>;
  const e = b['error'];
  if (e !== null && typeof e === 'object') {
    const m = (e as Record<string, unknown>)['message'];
    if (typeof m === 'string') return m;
  }
  if (typeof b['message'] === 'string') return b['message'];
  if (typeof b['error_description'] === 'string') return b['error_description'];
  if (typeof e === 'string') return e;
  const errors = b['errors'];
  if (Array.isArray(errors) && errors[0] !== null && typeof errors[0] === 'object') {
    const m = (errors[0] as Record<string, unknown>)['message'];
    if (typeof m === 'string') return m;
  }
  return undefined;
}

/** Google answers quota exhaustion as 403 with reason `rateLimitExceeded`/`userRateLimitExceeded`: a 429 in all but number. */
function isQuota403(status: number, body: unknown): boolean {
  if (status !== 403) return false;
  const text = JSON.stringify(body ?? '');
  return /"reason"\s*:\s*"(userRateLimitExceeded|rateLimitExceeded|quotaExceeded)"|RESOURCE_EXHAUSTED/.test(text);
}

/** Facts of a failure for {@link httpError}. */
export interface HttpFailure {
  connector: string;
  status: number;
  /** Parsed JSON body, or the text. */
  body?: unknown;
  headers?: Headers | Record<string, string>;
  /** e.g. `GET /v1/customers`. */
  what?: string;
  credentialKey?: string;
  secrets?: readonly string[];
  context?: ErrorContext;
  cause?: unknown;
}

/**
 * The {@link DativoError} of an HTTP error answer (also usable for an SDK's
 * error: pass its status, body and headers).
 */
export function httpError(f: HttpFailure): DativoError {
  const apiMsg = apiErrorMessage(f.body);
  const detail = apiMsg !== undefined ? `: ${scrub(apiMsg, f.secrets ?? [])}` : '';
  const where = `${f.connector}${f.what ? ` ${f.what}` : ''}`;
  const context: ErrorContext = { connector: f.connector, ...f.context, status: f.status };
  const opts = (extra: ErrorContext = {}) => ({ context: { ...context, ...extra }, ...(f.cause !== undefined ? { cause: f.cause } : {}) });
  if (f.status === 429 || isQuota403(f.status, f.body)) {
    const ra = parseRetryAfter(headerLookup(f.headers)?.('retry-after'));
    return new DativoError('RATE_LIMITED', `${where}: rate limited (HTTP ${f.status})${detail}`, opts(ra.kind === 'delay' ? { retryAfterMs: ra.ms } : {}));
  }
  if (f.status === 401 || f.status === 403) {
    const key = f.credentialKey ?? 'source.credentials';
    return new DativoError('AUTH_FAILED', `${where}: the API refused the credentials (HTTP ${f.status})${detail}; check ${key}`, opts({ key }));
  }
  if (f.status === 404) return new DativoError('SOURCE_NOT_FOUND', `${where}: not found (HTTP 404)${detail}`, opts());
  if (f.status >= 500 || f.status === 408) {
    return new DativoError('SOURCE_UNAVAILABLE', `${where}: server error (HTTP ${f.status})${detail}`, opts());
  }
  return new DativoError('SOURCE_ERROR', `${where}: request rejected (HTTP ${f.status})${detail}`, { ...opts(), disposition: 'fatal' });
}

/**
 * Map anything an SDK call threw (Stripe, HubSpot, gaxios, AWS errors carry
 * status and headers in their own places, see {@link failureInfo}) to the
 * error model, like an HTTP answer; network failures via the cause chain.
 */
export function sdkError(err: unknown, connector: string, extra: Omit<HttpFailure, 'connector' | 'status'> = {}): DativoError {
  if (isDativoError(err)) return err;
  const info = failureInfo(err);
  if (info.aborted) return new DativoError('ABORTED', `${connector}: request aborted`, { cause: err, context: { connector } });
  if (info.status !== undefined) {
    const o = err as Record<string, unknown>;
    const response = o['response'] as Record<string, unknown> | undefined;
    const raw = o['raw'] as Record<string, unknown> | undefined;
    const body = extra.body ?? response?.['data'] ?? o['body'] ?? raw ?? (err instanceof Error ? { message: err.message } : undefined);
    const retryAfter = info.header?.('retry-after');
    return httpError({ ...extra, connector, status: info.status, body, ...(retryAfter !== undefined ? { headers: { 'retry-after': retryAfter } } : {}), cause: err });
  }
  const e = toDativoError(err, { connector });
  return e;
}

function composeSignals(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const list = signals.filter((s): s is AbortSignal => s !== undefined);
  if (list.length === 0) return undefined;
  return list.length === 1 ? list[0] : AbortSignal.any(list);
}

/** Options of {@link runUnderPolicy}. */
interface PolicyRun {
  connector: string;
  policy: RetryPolicy;
  limiter: Limiter | undefined;
  signal: AbortSignal | undefined;
  clock: Clock;
  log: Logger | undefined;
  logContext: Record<string, unknown>;
}

/**
 * One call under policy and limiter: each attempt waits for the limiter
 * (slot, token, 429 gate); a retried 429 pauses the whole limiter for the
 * wait; the last failure is rethrown as the classifier mapped it.
 */
async function runUnderPolicy<T>(run: PolicyRun, attempt: () => Promise<T>, map: (err: unknown) => unknown): Promise<T> {
  const { limiter, signal } = run;
  // Pause the limiter before the 429'd request gives its slot back, so the
  // next queued request already meets the gate; onRetry then extends the
  // pause to the full wait of the retry.
  const limited = limiter
    ? async (): Promise<T> => {
        try {
          return await attempt();
        } catch (err) {
          const e = map(err);
          if (isDativoError(e) && e.code === 'RATE_LIMITED') {
            const asked = typeof e.context.retryAfterMs === 'number' ? Math.min(e.context.retryAfterMs, run.policy.maxRetryAfterMs) : run.policy.minDelayMs;
            await limiter.pause(run.clock.now() + asked);
          }
          throw e;
        }
      }
    : attempt;
  return retry(
    async () => {
      try {
        return limiter ? await limiter.schedule(limited, signal ? { signal } : {}) : await attempt();
      } catch (err) {
        throw map(err);
      }
    },
    run.policy,
    {
      clock: run.clock,
      ...(signal ? { signal } : {}),
      ...(run.log ? { log: run.log } : {}),
      logContext: run.logContext,
      classify: (err) => classifyFailure(run.policy, err, run.clock.now()),
      onRetry: async ({ delayMs, error }) => {
        if (limiter && isDativoError(error) && error.code === 'RATE_LIMITED') await limiter.pause(run.clock.now() + delayMs);
      },
    },
  );
}

/** Options of {@link withPolicy}. */
export interface WithPolicyOptions {
  /** Connector name for errors. Default: the limiter key's connector part. */
  connector?: string;
  /** Default {@link DEFAULT_RETRY_POLICY}. */
  policy?: RetryPolicy;
  signal?: AbortSignal;
  /** Counts each attempt under `object`. */
  counter?: ApiCallCounter;
  /** Default `_`. */
  object?: string;
  log?: Logger;
  clock?: Clock;
  /** Error mapping of what `fn` throws. Default {@link sdkError}. */
  mapError?: (err: unknown) => DativoError;
}

/**
 * Run one SDK call (`fn(signal)`) under the retry policy and the limiter:
 * every attempt waits for the limiter, SDK errors are classified by their
 * status/headers/cause chain, a 429 pauses the limiter until `Retry-After`.
 * `limiter` may be a {@link Limiter}, the key of a process-wide one (see
 * {@link acquireLimiter}; a key nobody acquired gets an unthrottled limiter
 * for the call), or undefined (policy only). The SDK's own retries must be off.
 */
export async function withPolicy<T>(limiter: Limiter | string | undefined, fn: (signal: AbortSignal | undefined) => Promise<T>, options: WithPolicyOptions = {}): Promise<T> {
  let lim: Limiter | undefined;
  let release: (() => Promise<void>) | undefined;
  if (typeof limiter === 'string') {
    const acquired = acquireLimiter(limiter, { burst: 1, concurrency: Number.MAX_SAFE_INTEGER });
    lim = acquired.limiter;
    release = acquired.release;
  } else lim = limiter;
  const connector = options.connector ?? lim?.key.split(':')[0] ?? 'api';
  const object = options.object ?? '_';
  const map = options.mapError ?? ((err: unknown) => sdkError(err, connector));
  try {
    return await runUnderPolicy(
      {
        connector,
        policy: options.policy ?? DEFAULT_RETRY_POLICY,
        limiter: lim,
        signal: options.signal,
        clock: options.clock ?? systemClock,
        log: options.log,
        logContext: { connector, object },
      },
      () => {
        options.counter?.add(connector, object);
        return fn(options.signal);
      },
      map,
    );
  } finally {
    await release?.();
  }
}

/**
 * An HTTP client of one connector (and object): JSON in and out, the retry
 * policy, the limiter, call counting and the error mapping of the module doc.
 */
export class HttpClient {
  private readonly clock: Clock;
  private readonly policy: RetryPolicy;

  constructor(readonly options: HttpClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.policy = options.policy ?? DEFAULT_RETRY_POLICY;
  }

  /** The same client counting under another object. */
  forObject(object: string): HttpClient {
    return new HttpClient({ ...this.options, object });
  }

  /** A request; JSON body parsed. Throws the mapped DativoError for statuses not in `accept`. */
  async request<T = unknown>(path: string, req: RequestOptions = {}): Promise<HttpResponse<T>> {
    const url = this.url(path, req.query);
    const method = (req.method ?? 'GET').toUpperCase();
    const what = `${method} ${new URL(url).pathname}`;
    const object = req.object ?? this.options.object ?? '_';
    const signal = composeSignals(this.options.signal, req.signal);
    return runUnderPolicy(
      {
        connector: this.options.connector,
        policy: this.policy,
        limiter: this.options.limiter,
        signal,
        clock: this.clock,
        log: this.options.log,
        logContext: { connector: this.options.connector, object, request: what },
      },
      () => this.once<T>(url, method, what, object, req, signal),
      (err) => err,
    );
  }

  /** GET (or `req.method`) and return the parsed JSON body. */
  async json<T = unknown>(path: string, req: RequestOptions = {}): Promise<T> {
    return (await this.request<T>(path, req)).body;
  }

  /** Run one SDK call under this client's policy, limiter, counter and signal (see {@link withPolicy}). */
  async withPolicy<T>(fn: (signal: AbortSignal | undefined) => Promise<T>, options: Pick<WithPolicyOptions, 'object' | 'mapError'> = {}): Promise<T> {
    const o = this.options;
    return withPolicy(o.limiter, fn, {
      connector: o.connector,
      policy: this.policy,
      object: options.object ?? o.object ?? '_',
      clock: this.clock,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.counter ? { counter: o.counter } : {}),
      ...(o.log ? { log: o.log } : {}),
      mapError: options.mapError ?? ((err) => sdkError(err, o.connector, { ...(o.credentialKey ? { credentialKey: o.credentialKey } : {}), ...(o.secrets ? { secrets: o.secrets } : {}) })),
    });
  }

  private url(path: string, query: RequestOptions['query']): string {
    const base = this.options.baseUrl;
    const u = /^https?:\/\//i.test(path) || base === undefined ? new URL(path) : new URL(path.replace(/^\/+/, ''), base.endsWith('/') ? base : `${base}/`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  private async once<T>(url: string, method: string, what: string, object: string, req: RequestOptions, signal: AbortSignal | undefined): Promise<HttpResponse<T>> {
    const o = this.options;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'dativo-ingest', ...o.headers, ...req.headers };
    let body: string | undefined;
    if (req.body !== undefined) {
      if (typeof req.body === 'string') body = req.body;
      else {
        body = JSON.stringify(req.body);
        headers['content-type'] ??= 'application/json';
      }
    }
    const timeoutMs = o.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    const timeout = AbortSignal.timeout(timeoutMs);
    const all = composeSignals(signal, timeout)!;
    const started = this.clock.now();
    o.counter?.add(o.connector, object);
    const ctx: ErrorContext = { object, request: what };
    let status: number;
    let resHeaders: Headers;
    let text: string;
    try {
      const res = await (o.fetch ?? globalThis.fetch)(url, { method, headers, signal: all, redirect: 'follow', ...(body !== undefined ? { body } : {}) });
      status = res.status;
      resHeaders = res.headers;
      // The body is part of the attempt: a connection dropped mid-body is retried like one dropped before the status.
      text = await res.text();
    } catch (err) {
      o.log?.debug({ connector: o.connector, request: what, failed: true, ms: this.clock.now() - started }, 'http request failed');
      if (signal?.aborted) throw new DativoError('ABORTED', `${o.connector} ${what}: aborted`, { cause: err, context: { connector: o.connector, ...ctx } });
      if (timeout.aborted) {
        throw new DativoError('SOURCE_UNAVAILABLE', `${o.connector} ${what}: no answer within ${timeoutMs} ms`, { cause: err, context: { connector: o.connector, ...ctx, timeoutMs } });
      }
      const e = toDativoError(err, { connector: o.connector, ...ctx });
      if (e.code === 'SOURCE_UNAVAILABLE') e.message = `${o.connector} ${what}: ${e.message}`;
      throw e;
    }
    o.log?.debug({ connector: o.connector, request: what, status, ms: this.clock.now() - started }, 'http request');
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        if (status >= 200 && status < 300) {
          throw new DativoError('SOURCE_ERROR', `${o.connector} ${what}: answered invalid JSON (HTTP ${status})`, { cause: err, context: { connector: o.connector, ...ctx, status } });
        }
        parsed = text.slice(0, 500);
      }
    }
    if ((status >= 200 && status < 300) || req.accept?.includes(status)) return { status, headers: resHeaders, body: parsed as T };
    throw httpError({
      connector: o.connector,
      status,
      body: parsed,
      headers: resHeaders,
      what,
      ...(o.credentialKey !== undefined ? { credentialKey: o.credentialKey } : {}),
      ...(o.secrets !== undefined ? { secrets: o.secrets } : {}),
      context: ctx,
    });
  }
}

/** A client factory bound to the job's policy, limiter, counter, signal and log; connectors add the endpoint. */
export type HttpFactory = (endpoint: HttpEndpoint) => HttpClient;
