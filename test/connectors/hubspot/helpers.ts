/**
 * HubSpot test setup: a project folder with a job reading one object of the
 * HubSpot-like fake (test/fakes/hubspot.ts) into an Iceberg table of the
 * embedded catalog, run through `runJobFile` with its log lines read back
 * (test/connectors/api-helpers.ts).
 */
import { HUBSPOT_OBJECTS } from '../../../connectors/hubspot/index.js';
import type { HubSpotFake } from '../../fakes/hubspot.js';
import { apiProject, type ApiJob, type ApiProject } from '../api-helpers.js';

export { byId } from '../api-helpers.js';

export const TEST_TOKEN = 'pat-na1-fake-0000';

export interface HubSpotJob extends ApiJob {
  token?: string;
  /** The recipe's search budget (4/s) instead of the fast one tests use. Default false. */
  realBudget?: boolean;
}

export type HubSpotProject = ApiProject<HubSpotJob>;

export async function hubspotProject(fake: HubSpotFake, prefix = 'hubspot'): Promise<HubSpotProject> {
  return apiProject<HubSpotJob>({
    connector: 'hubspot',
    assets: ['contacts', 'companies', 'deals', 'tickets', 'owners'],
    defaultObject: 'contacts',
    url: fake.url,
    prefix,
    parts: (spec, object) => ({
      incremental: `{strategy: updated, cursor_field: ${HUBSPOT_OBJECTS[object]?.modified ?? 'lastmodifieddate'}, lag_seconds: ${spec.lag ?? 0}}`,
      credential: [`access_token: "${spec.token ?? TEST_TOKEN}"`],
      ...(spec.realBudget ? {} : { connection: ['search_requests_per_second: 1000'], source: ['rate_limits: {requests_per_second: 1000, burst: 100}'] }),
    }),
  });
}
