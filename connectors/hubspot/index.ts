/**
 * HubSpot source connector through the official `@hubspot/api-client` SDK:
 * contacts, companies, deals, tickets and owners; full refresh through the
 * objects lists, incremental on the modified date through the CRM search
 * API (a half-open window under HubSpot's clock, a new query per page so
 * the 10,000-results cap of one query never drops a record); properties
 * discovered through the properties API; archived objects and associations
 * as options; every request under the job's retry policy and rate limiter
 * (the SDK's own limiter and retries off). See docs/connectors/hubspot.md.
 */
import type { Connector, ConnectorDescriptor, DeclaredObject, DiscoveredObject, ObjectsContext, ReadContext, SourceStream } from '../../lib/connector.js';
import { declareCatalogObjects } from '../../lib/config/object-catalog.js';
import { sdkError, withPolicy } from '../../lib/http.js';
import { connectorRateLimits } from '../../lib/limiter.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import { requestPolicy } from '../../lib/run/network.js';
import { DELETED_COLUMN } from '../../lib/types.js';
import { assetTypeOf, HUBSPOT_OBJECTS, OWNER_FIELDS, type HubSpotObjectSpec, type PropertyDefinition } from './objects.js';
import { HUBSPOT_CATALOG, hubspotObjectOf, hubspotSettings, hubspotSourceOptions, type HubSpotSettings } from './options.js';
import { hubspotAgent, hubspotApis, readHubSpot, SDK_CALL_OPTIONS } from './read.js';

export { HUBSPOT_OBJECTS, HUBSPOT_OBJECT_NAMES } from './objects.js';
export { hubspotSettings, hubspotSourceOptions } from './options.js';

/** What the registry and the engine know about this connector. */
export const descriptor: ConnectorDescriptor = Object.freeze({
  name: 'hubspot',
  roles: Object.freeze(['source'] as const),
  allowedInCloud: true,
  incrementalStrategies: Object.freeze(['updated']),
  sortedByCursor: false,
  description: 'HubSpot CRM objects and owners through the official SDK: lists for a full refresh, the search API by modified date for incremental runs',
});

/** One SDK call of `check`/`discover`, under the job's policy (no limiter: a single call). */
async function once<T>(plan: JobPlan, s: HubSpotSettings, spec: HubSpotObjectSpec, what: string, fn: () => Promise<T>, opts: { signal: AbortSignal; log: Logger }): Promise<T> {
  return withPolicy(undefined, fn, {
    connector: 'hubspot',
    policy: requestPolicy(plan),
    signal: opts.signal,
    log: opts.log,
    object: spec.name,
    mapError: (err) => sdkError(err, 'hubspot', { what: `${spec.name} (${what})`, credentialKey: 'source.connection.access_token', secrets: [...plan.secrets, s.accessToken], context: { object: spec.name } }),
  });
}

/**
 * Options valid, objects known, and the token accepted: one `limit=1` list
 * call of the first object (AUTH_FAILED naming
 * source.connection.access_token, never its value).
 */
export async function check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
  const s = hubspotSettings(plan);
  const specs = plan.source.objects.map((o) => hubspotObjectOf(plan, o));
  const spec = specs[0] ?? HUBSPOT_OBJECTS['contacts']!;
  const agent = hubspotAgent(s);
  const apis = hubspotApis(s, agent);
  try {
    if (spec.kind === 'owners') await once(plan, s, spec, `GET ${spec.path}`, () => apis.owners.getPage(undefined, undefined, 1, undefined, SDK_CALL_OPTIONS), opts);
    else await once(plan, s, spec, `GET ${spec.path}`, () => apis.objects.getPage(spec.name, 1, undefined, undefined, undefined, undefined, undefined, SDK_CALL_OPTIONS), opts);
  } finally {
    agent.destroy();
  }
}

/**
 * The job's objects from HubSpot's own metadata: for a CRM object every
 * property of the properties API (`GET /crm/v3/properties/{type}`, not
 * archived ones) as a column typed by {@link assetTypeOf}, beside the
 * top-level fields; owners have a fixed set of fields.
 */
export async function discover(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<DiscoveredObject[]> {
  const s = hubspotSettings(plan);
  const agent = hubspotAgent(s);
  const apis = hubspotApis(s, agent);
  try {
    const out: DiscoveredObject[] = [];
    for (const object of plan.source.objects) {
      const spec = hubspotObjectOf(plan, object);
      if (spec.kind === 'owners') {
        out.push({ name: spec.name, primaryKey: ['id'], columns: OWNER_FIELDS.map((f) => ({ ...f })) });
        continue;
      }
      const what = `GET /crm/v3/properties/${spec.name}`;
      const answer = await once(plan, s, spec, what, () => apis.properties.getAll(spec.name, false, undefined, SDK_CALL_OPTIONS), opts);
      const props = ((answer as { results?: PropertyDefinition[] }).results ?? []).filter((p) => typeof p.name === 'string' && p.name !== '');
      const columns = [{ name: 'id', type: 'string', required: true, description: `HubSpot ${spec.name} record id` }];
      for (const p of props) {
        columns.push({
          name: p.name,
          type: assetTypeOf(p),
          required: p.name === spec.modified,
          description: `${p.label ?? p.name} (HubSpot property, type ${p.type}${p.fieldType ? `, field ${p.fieldType}` : ''})${p.name === spec.modified ? '; the incremental cursor' : ''}`,
        });
      }
      columns.push(
        { name: 'createdAt', type: 'timestamp', required: true, description: 'creation time' },
        { name: 'updatedAt', type: 'timestamp', required: true, description: 'last modification time' },
        { name: 'archived', type: 'boolean', required: true, description: 'true for an archived (deleted) object' },
        { name: 'archivedAt', type: 'timestamp', required: false, description: 'when it was archived' },
      );
      if (s.associations.length > 0) columns.push({ name: 'associations', type: 'json', required: false, description: `ids of associated ${s.associations.join(', ')} as JSON text` });
      columns.push({ name: DELETED_COLUMN, type: 'boolean', required: true, description: 'true on the row of an archived object (source.archived); false otherwise' });
      out.push({ name: spec.name, primaryKey: ['id'], columns });
    }
    return out;
  } finally {
    agent.destroy();
  }
}

/** Open the record stream of one object. */
export function read(ctx: ReadContext): SourceStream {
  return readHubSpot(ctx, hubspotSettings(ctx.plan), hubspotObjectOf(ctx.plan, ctx.object));
}

/** HubSpot ids are the key of every object. */
export function primaryKey(): string[] {
  return ['id'];
}

/** True when a run of the plan reads through the search API (an incremental run of a CRM object). */
function readsBySearch(plan: JobPlan): boolean {
  const inc = plan.source.incremental;
  if (plan.syncMode !== 'incremental_append' || inc === undefined || inc.strategy === 'file_modified') return false;
  return plan.source.objects.some((o) => HUBSPOT_OBJECTS[o.name]?.kind === 'crm');
}

/**
 * The limiter's budget. HubSpot has two: the general one (the recipe: 100
 * requests per 10 s for Free/Starter, 150 for Pro/Enterprise) and the CRM
 * search API's own, 4 requests/s per token, exempt from the ten-secondly
 * limit. A run that reads through search is held to
 * `connection.search_requests_per_second` (default 4, spaced, no burst) and
 * keyed apart (`….search`), so a full refresh and an incremental run on one
 * token each use their own budget; a job's lower `rate_limits` still win.
 * Keyed by a hash of the token (never the token) unless `rate_limits.account`
 * names the budget.
 */
export function rateLimits(plan: JobPlan): Record<string, unknown> | undefined {
  let s: HubSpotSettings;
  try {
    s = hubspotSettings(plan);
  } catch {
    return plan.source.rateLimits;
  }
  const search = readsBySearch(plan);
  return connectorRateLimits(plan.source.rateLimits, plan.tenantId, s.accessToken, search ? { cap: s.searchRequestsPerSecond, burst: 1, accountSuffix: 'search' } : {});
}

/**
 * The objects of `source.objects` given as plain names (`[contacts]`), each
 * declaring its cursor column (contacts `lastmodifieddate`, the other CRM
 * objects `hs_lastmodifieddate`, owners `updatedAt`); each name, plain or
 * `{name: …}`, must be one HubSpot lists (a problem listing the valid ones).
 */
export function objects(options: Record<string, unknown>, _asset: unknown, ctx: ObjectsContext): DeclaredObject[] {
  return declareCatalogObjects(HUBSPOT_CATALOG, options, ctx, (spec) => ({ cursorField: spec.modified }));
}

const connector: Connector = Object.freeze({ descriptor, options: hubspotSourceOptions, objects, check, read, discover, primaryKey, rateLimits });
export default connector;
