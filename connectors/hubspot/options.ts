/**
 * The HubSpot source's options: `source.connection` (access_token from
 * secrets, base_url, timeout, the search budget) and `source.archived` /
 * `source.associations`, checked once; and the objects a job may name.
 */
import { z } from 'zod';
import { catalogEntryOf, type ObjectCatalog } from '../../lib/config/object-catalog.js';
import { parseSourceOptions } from '../../lib/config/source-options.js';
import { boolLike, numLike } from '../../lib/config/zod-util.js';
import type { JobPlan, SourceObjectSpec } from '../../lib/plan.js';
import { HUBSPOT_OBJECTS, type HubSpotObjectSpec } from './objects.js';

/** HubSpot's CRM search budget (developers.hubspot.com changelog "CRM Search API Rate Limit Increase"): 4 requests/s per token. */
export const SEARCH_REQUESTS_PER_SECOND = 4;

/** `source.connection` of a HubSpot job. */
export const HubSpotConnectionSchema = z.looseObject({
  access_token: z.string().min(1, 'needs a private app or OAuth access token, e.g. "${HUBSPOT_ACCESS_TOKEN}"'),
  base_url: z.url({ protocol: /^https?$/ }).optional(),
  timeout_seconds: numLike.pipe(z.number().positive().max(600)).optional(),
  search_requests_per_second: numLike.pipe(z.number().positive()).optional(),
});

/** The HubSpot source's own keys of the `source` block. */
export const hubspotSourceOptions = z.looseObject({
  connection: HubSpotConnectionSchema,
  archived: boolLike.optional(),
  associations: z.array(z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be an object type such as companies or deals')).max(10).optional(),
  parallel_windows: numLike.pipe(z.number().int().min(1).max(32)).optional(),
});

/** Parsed settings. */
export interface HubSpotSettings {
  accessToken: string;
  baseUrl?: string;
  timeoutMs: number;
  /** `source.archived`: archived objects as deletion rows (default false). */
  archived: boolean;
  /** `source.associations`: object types whose associated ids land in `associations` (default none). */
  associations: string[];
  /** The search budget the limiter is held to (`connection.search_requests_per_second`, default 4). */
  searchRequestsPerSecond: number;
  /** `source.parallel_windows`: an incremental search split into this many modified-date windows read at once (default 1). */
  parallelWindows: number;
}

/**
 * The settings of a plan.
 * @throws DativoError CONFIG_INVALID listing every bad key (never a token).
 */
export function hubspotSettings(plan: JobPlan): HubSpotSettings {
  const data = parseSourceOptions(plan, hubspotSourceOptions, 'hubspot', 'HubSpot');
  const c = data.connection;
  return {
    accessToken: c.access_token,
    ...(c.base_url !== undefined ? { baseUrl: c.base_url.replace(/\/+$/, '') } : {}),
    timeoutMs: Math.round((c.timeout_seconds ?? 80) * 1000),
    archived: data.archived ?? false,
    associations: data.associations ?? [],
    searchRequestsPerSecond: c.search_requests_per_second ?? SEARCH_REQUESTS_PER_SECOND,
    parallelWindows: data.parallel_windows ?? 1,
  };
}

/** HubSpot's objects by name. */
export const HUBSPOT_CATALOG: ObjectCatalog<HubSpotObjectSpec> = { connector: 'hubspot', label: 'HubSpot', objects: HUBSPOT_OBJECTS };

/**
 * The catalog entry of one of the job's objects.
 * @throws DativoError CONFIG_INVALID naming the object and listing the valid ones.
 */
export function hubspotObjectOf(plan: JobPlan, object: SourceObjectSpec): HubSpotObjectSpec {
  return catalogEntryOf(HUBSPOT_CATALOG, plan, object);
}
