/**
 * The network scope of one run: the job's per-request retry policy, its
 * source's limiter (one per connector and account, shared by every run in
 * the process, and across processes with `rate_limits.redis`) and the API
 * call counter whose figures land in each object's `api_calls`.
 */
import { ApiCallCounter, HttpClient, type HttpEndpoint, type HttpFactory } from '../http.js';
import { accountOf, acquireLimiter, rateLimitsFrom, type Limiter } from '../limiter.js';
import type { Connector, ReadContext } from '../connector.js';
import type { Logger } from '../log.js';
import type { JobPlan } from '../plan.js';
import { DEFAULT_RETRY_POLICY, definePolicy, retryOverrides, type RetryPolicy } from '../retry.js';

/** What {@link openNetwork} gives a run. */
export interface RunNetwork {
  readonly policy: RetryPolicy;
  readonly limiter: Limiter;
  readonly calls: ApiCallCounter;
  /** An HTTP client factory counting under `object`, cancelled by `signal`. */
  http(object: string, signal: AbortSignal, log: Logger): HttpFactory;
  /** Release the limiter (closed, and its Redis connections, when its last run ends). */
  close(): Promise<void>;
}

/**
 * The per-request policy of a job: the defaults, then the recipe's and the
 * job's `rate_limits.retry`, then the keys the job set in `retry_config`.
 */
export function requestPolicy(plan: JobPlan): RetryPolicy {
  const fromLimits = retryOverrides(plan.source.rateLimits?.['retry'] as Record<string, unknown> | undefined);
  const merged = { ...fromLimits, ...(plan.retry.request ?? {}) };
  // One bound given below the other's default moves that default along, rather than failing.
  if (merged.minDelayMs === undefined && merged.maxDelayMs !== undefined) merged.minDelayMs = Math.min(DEFAULT_RETRY_POLICY.minDelayMs, merged.maxDelayMs);
  const min = merged.minDelayMs ?? DEFAULT_RETRY_POLICY.minDelayMs;
  if ((merged.maxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs) < min) merged.maxDelayMs = min;
  return definePolicy(merged);
}

/** The plan with the `rate_limits` its connector derives (see Connector.rateLimits); the plan itself when it derives none. */
export function withConnectorLimits(plan: JobPlan, connector: Connector): JobPlan {
  if (!connector.rateLimits) return plan;
  const limits = connector.rateLimits(plan);
  if (limits === undefined) return plan;
  return { ...plan, source: { ...plan.source, rateLimits: limits } };
}

/** Open the network scope of a run of `plan` whose source is `connector`. */
export function openNetwork(plan: JobPlan, connector: string, log: Logger): RunNetwork {
  const limits = rateLimitsFrom(plan.source.rateLimits);
  const key = `${connector}:${accountOf(plan.tenantId, plan.source.options['credentials'], limits)}`;
  const { limiter, release } = acquireLimiter(key, limits, { log });
  const policy = requestPolicy(plan);
  const calls = new ApiCallCounter();
  return {
    policy,
    limiter,
    calls,
    http: (object, signal, objLog) => (endpoint: HttpEndpoint) =>
      new HttpClient({ ...endpoint, connector, object, policy, limiter, counter: calls, signal, log: objLog, secrets: plan.secrets }),
    close: release,
  };
}

/**
 * The limiter and HTTP factory of a read: the context's (set by `runJob`),
 * else, for a context built by hand, the process-wide limiter of the plan's
 * (connector, account) and a client on the plan's policy. That fallback
 * limiter stays open for the life of the process (it matters only with
 * `rate_limits.redis`, whose connection then keeps the process alive).
 */
export function networkOf(ctx: ReadContext, connector: string = ctx.plan.source.type): { limiter: Limiter; http: HttpFactory } {
  if (ctx.limiter && ctx.http) return { limiter: ctx.limiter, http: ctx.http };
  const net = openNetwork(ctx.plan, connector, ctx.log);
  return { limiter: ctx.limiter ?? net.limiter, http: ctx.http ?? net.http(ctx.object.name, ctx.signal, ctx.log) };
}
