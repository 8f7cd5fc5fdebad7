/**
 * Stripe source connector through the official `stripe` SDK: customers,
 * charges, invoices, subscriptions, payment intents, products, prices,
 * refunds and balance transactions; incremental on `created` (a half-open
 * window under Stripe's clock) with updates and deletions from the Events
 * API; every request under the job's retry policy and rate limiter (the
 * SDK's own retries off). See docs/connectors/stripe.md.
 */
import { declareCatalogObjects } from '../../lib/config/object-catalog.js';
import type { Connector, ConnectorDescriptor, DeclaredObject, DiscoveredObject, ObjectsContext, ReadContext, SourceStream } from '../../lib/connector.js';
import { sdkError, withPolicy } from '../../lib/http.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import { connectorRateLimits, type Limiter } from '../../lib/limiter.js';
import { openNetwork, requestPolicy } from '../../lib/run/network.js';
import { DISCOVER_SAMPLE, discoverObject } from './discover.js';
import { STRIPE_OBJECTS, STRIPE_OBJECT_NAMES, type StripeObjectSpec, type StripePage } from './objects.js';
import { STRIPE_CATALOG, stripeObjectOf, stripeSettings, stripeSourceOptions } from './options.js';
import { readStripe, stripeAgent, stripeClient } from './read.js';

export { STRIPE_OBJECTS, STRIPE_OBJECT_NAMES } from './objects.js';
export { stripeSettings, stripeSourceOptions } from './options.js';

/** What the registry and the engine know about this connector. */
export const descriptor: ConnectorDescriptor = Object.freeze({
  name: 'stripe',
  roles: Object.freeze(['source'] as const),
  allowedInCloud: true,
  incrementalStrategies: Object.freeze(['created']),
  sortedByCursor: false,
  description: 'Stripe objects through the official SDK: lists by created window, updates and deletions from the Events API',
});

/** Every object of the job is one Stripe lists; the options are valid. Throws CONFIG_INVALID listing the valid objects. */
function checkObjects(plan: JobPlan): void {
  for (const object of plan.source.objects) stripeObjectOf(plan, object);
}

/** One list call of `spec` under the job's policy (and `limiter` when given); errors name the object and request, never the key. */
async function listOnce(plan: JobPlan, spec: StripeObjectSpec, limit: number, opts: { signal: AbortSignal; log: Logger; limiter?: Limiter }): Promise<StripePage> {
  const settings = stripeSettings(plan);
  const agent = stripeAgent(settings);
  const stripe = stripeClient(settings, agent);
  try {
    return await withPolicy(opts.limiter, () => spec.list(stripe, { limit }, {}), {
      connector: 'stripe',
      policy: requestPolicy(plan),
      signal: opts.signal,
      log: opts.log,
      object: spec.name,
      mapError: (err) => sdkError(err, 'stripe', { what: `${spec.name} (GET ${spec.path})`, credentialKey: 'source.connection.api_key', secrets: [...plan.secrets, settings.apiKey], context: { object: spec.name } }),
    });
  } finally {
    agent.destroy();
  }
}

/**
 * Options valid, objects known, and the key accepted: one `limit=1` list
 * call of the first object (AUTH_FAILED naming source.connection.api_key,
 * never its value).
 */
export async function check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
  stripeSettings(plan);
  checkObjects(plan);
  const first = plan.source.objects[0];
  await listOnce(plan, first ? stripeObjectOf(plan, first) : STRIPE_OBJECTS['customers']!, 1, opts);
}

/**
 * The asset of each of the job's objects (connectors/stripe/discover.ts):
 * the shipped one, plus the fields a sample page of the object's list
 * carries that it does not declare. One `limit=100` call per object, under
 * the job's policy and its Stripe budget.
 */
export async function discover(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<DiscoveredObject[]> {
  stripeSettings(plan);
  checkObjects(plan);
  const network = openNetwork({ ...plan, source: { ...plan.source, rateLimits: rateLimits(plan) } }, 'stripe', opts.log);
  try {
    const out: DiscoveredObject[] = [];
    for (const object of plan.source.objects) {
      const spec = stripeObjectOf(plan, object);
      const page = await listOnce(plan, spec, DISCOVER_SAMPLE, { ...opts, limiter: network.limiter });
      out.push(await discoverObject(spec, page.data));
    }
    return out;
  } finally {
    await network.close();
  }
}

/** Open the record stream of one object. */
export function read(ctx: ReadContext): SourceStream {
  const settings = stripeSettings(ctx.plan);
  return readStripe(ctx, settings, stripeObjectOf(ctx.plan, ctx.object));
}

/** Stripe ids are the key of every object. */
export function primaryKey(): string[] {
  return ['id'];
}

/**
 * The limiter's budget: the merged `rate_limits` (recipe: 100 requests/s,
 * Stripe's live-mode limit), at most the test-mode budget (25/s) for a
 * `sk_test_`/`rk_test_` key, and keyed by the API key and connected account
 * (hashed) unless `rate_limits.account` names the budget.
 */
export function rateLimits(plan: JobPlan): Record<string, unknown> | undefined {
  let settings;
  try {
    settings = stripeSettings(plan);
  } catch {
    return plan.source.rateLimits;
  }
  return connectorRateLimits(plan.source.rateLimits, plan.tenantId, `${settings.apiKey}\u0000${settings.account ?? ''}`, settings.testMode ? { cap: settings.testRequestsPerSecond } : {});
}

/**
 * The objects of `source.objects` given as plain names (`[customers,
 * charges]`); each name, plain or `{name: …}`, must be one Stripe lists
 * (a problem listing the valid ones).
 */
export function objects(options: Record<string, unknown>, _asset: unknown, ctx: ObjectsContext): DeclaredObject[] {
  return declareCatalogObjects(STRIPE_CATALOG, options, ctx);
}

const connector: Connector = Object.freeze({ descriptor, options: stripeSourceOptions, objects, check, discover, read, primaryKey, rateLimits });
export default connector;
