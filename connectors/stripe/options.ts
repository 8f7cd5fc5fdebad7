/**
 * The Stripe source's options: `source.connection` (api_key from secrets,
 * base_url, account, api_version, test-mode budget) and `source.events`,
 * checked once; and the objects a job may name.
 */
import { z } from 'zod';
import { catalogEntryOf, type ObjectCatalog } from '../../lib/config/object-catalog.js';
import { parseSourceOptions } from '../../lib/config/source-options.js';
import { boolLike, numLike } from '../../lib/config/zod-util.js';
import type { JobPlan, SourceObjectSpec } from '../../lib/plan.js';
import { STRIPE_OBJECTS, type StripeObjectSpec } from './objects.js';

/** The API version the SDK sends when neither the recipe nor the job names one (the SDK's own pin). */
export const DEFAULT_API_VERSION = '2026-10-28.endive';
/** Stripe's budget in test mode (docs.stripe.com/rate-limits): 25 requests/s. */
export const TEST_MODE_REQUESTS_PER_SECOND = 25;

/** `source.connection` of a Stripe job. */
export const StripeConnectionSchema = z.looseObject({
  api_key: z.string().min(1, 'needs the secret key (sk_live_… / sk_test_… / rk_…), e.g. "${STRIPE_API_KEY}"'),
  base_url: z.url({ protocol: /^https?$/ }).optional(),
  account: z.string().regex(/^acct_[A-Za-z0-9]+$/, 'must be a connected account id (acct_…)').optional(),
  api_version: z.string().regex(/^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$/, 'must look like 2026-10-28.endive').optional(),
  timeout_seconds: numLike.pipe(z.number().positive().max(600)).optional(),
  test_requests_per_second: numLike.pipe(z.number().positive()).optional(),
});

/** The Stripe source's own keys of the `source` block. */
export const stripeSourceOptions = z.looseObject({
  connection: StripeConnectionSchema,
  events: boolLike.optional(),
  parallel_windows: numLike.pipe(z.number().int().min(1).max(32)).optional(),
});

/** Parsed connection settings. */
export interface StripeSettings {
  apiKey: string;
  baseUrl?: URL;
  account?: string;
  apiVersion: string;
  timeoutMs: number;
  /** Updates and deletions through the Events API (`source.events`, default true). */
  events: boolean;
  /** `source.parallel_windows`: the list pass split into this many `created` windows read concurrently (default 1). */
  parallelWindows: number;
  /** True for a test-mode key (`sk_test_`, `rk_test_`). */
  testMode: boolean;
  testRequestsPerSecond: number;
}

/**
 * The connection settings of a plan.
 * @throws DativoError CONFIG_INVALID listing every bad key (never a key's value).
 */
export function stripeSettings(plan: JobPlan): StripeSettings {
  const data = parseSourceOptions(plan, stripeSourceOptions, 'stripe', 'Stripe');
  const c = data.connection;
  return {
    apiKey: c.api_key,
    ...(c.base_url !== undefined ? { baseUrl: new URL(c.base_url) } : {}),
    ...(c.account !== undefined ? { account: c.account } : {}),
    apiVersion: c.api_version ?? DEFAULT_API_VERSION,
    timeoutMs: Math.round((c.timeout_seconds ?? 80) * 1000),
    events: data.events ?? true,
    parallelWindows: data.parallel_windows ?? 1,
    testMode: /^(sk|rk)_test_/.test(c.api_key),
    testRequestsPerSecond: c.test_requests_per_second ?? TEST_MODE_REQUESTS_PER_SECOND,
  };
}

/** Stripe's objects by name. */
export const STRIPE_CATALOG: ObjectCatalog<StripeObjectSpec> = { connector: 'stripe', label: 'Stripe', objects: STRIPE_OBJECTS };

/**
 * The catalog entry of one of the job's objects.
 * @throws DativoError CONFIG_INVALID naming the object and listing the valid ones.
 */
export function stripeObjectOf(plan: JobPlan, object: SourceObjectSpec): StripeObjectSpec {
  return catalogEntryOf(STRIPE_CATALOG, plan, object);
}
