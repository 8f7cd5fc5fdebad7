/**
 * HubSpot test setup: a project folder with a job reading one object of the
 * HubSpot-like fake (test/fakes/hubspot.ts) into an Iceberg table of the
 * embedded catalog, run through `runJobFile` with its log lines read back
 * (test/helpers/run-logged.ts).
 */
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { HUBSPOT_OBJECTS } from '../../../connectors/hubspot/index.js';
import type { RunSummary } from '../../../lib/run/types.js';
import type { JobState } from '../../../state/index.js';
import type { HubSpotFake } from '../../fakes/hubspot.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { runLogged } from '../../helpers/run-logged.js';
import { project, repo, type Project } from '../../lib/cli/helpers.js';

export const TEST_TOKEN = 'pat-na1-fake-0000';
const ASSETS = ['contacts', 'companies', 'deals', 'tickets', 'owners'];

export interface HubSpotJob {
  object?: string;
  token?: string;
  mode?: 'strict' | 'warn';
  sync?: 'incremental' | 'full_refresh';
  lag?: number;
  /** Extra lines under `source.connection`. */
  connection?: string[];
  /** Extra lines under `source` (e.g. `archived: true`). */
  source?: string[];
  /** Extra top-level lines (e.g. retry_config). */
  extra?: string[];
  /** The recipe's search budget (4/s) instead of the fast one tests use. Default false. */
  realBudget?: boolean;
}

export interface HubSpotProject extends Project {
  job(spec?: HubSpotJob): Promise<string>;
  run(spec?: HubSpotJob): Promise<{ summary: RunSummary; logs: Record<string, unknown>[] }>;
  rows(object?: string): Promise<Record<string, unknown>[]>;
  state(): Promise<JobState>;
}

export async function hubspotProject(fake: HubSpotFake, prefix = 'hubspot'): Promise<HubSpotProject> {
  const p = await project(prefix);
  for (const f of ASSETS) {
    await p.write(`assets/${f}.yaml`, '');
    await copyFile(path.join(repo, 'schemas/hubspot/v1.0', `${f}.yaml`), p.p(`assets/${f}.yaml`));
  }
  const job = async (spec: HubSpotJob = {}): Promise<string> => {
    const object = spec.object ?? 'contacts';
    const asset = ASSETS.includes(object) ? object : 'contacts';
    const cursor = HUBSPOT_OBJECTS[object]?.modified ?? 'lastmodifieddate';
    return p.write(
      'job.yaml',
      [
        'tenant_id: acme',
        'source_connector: hubspot',
        'target_connector: iceberg',
        `asset_path: assets/${asset}.yaml`,
        'source:',
        `  objects: [${object}]`,
        ...(spec.source ?? []).map((l) => `  ${l}`),
        ...(spec.sync === 'full_refresh' ? [] : [`  incremental: {strategy: updated, cursor_field: ${cursor}, lag_seconds: ${spec.lag ?? 0}}`]),
        '  connection:',
        `    access_token: "${spec.token ?? TEST_TOKEN}"`,
        `    base_url: ${fake.url}`,
        ...(spec.realBudget ? [] : ['    search_requests_per_second: 1000']),
        ...(spec.connection ?? []).map((l) => `    ${l}`),
        ...(spec.realBudget ? [] : ['  rate_limits: {requests_per_second: 1000, burst: 100}']),
        ...(spec.sync === 'full_refresh' ? ['sync_mode: full_refresh'] : []),
        'target:',
        '  warehouse: wh',
        '  namespace: hubspot',
        `  table: ${object}`,
        'state: {path: state.json}',
        'reject_dir: rejects',
        `schema_validation_mode: ${spec.mode ?? 'strict'}`,
        ...(spec.extra ?? []),
        '',
      ].join('\n'),
    );
  };
  return {
    ...p,
    job,
    run: async (spec = {}) => runLogged(await job(spec), { cwd: p.dir }),
    rows: (object = 'contacts') => readWarehouseTable(p.p('wh'), 'hubspot', object),
    state: async () => JSON.parse(await readFile(p.p('state.json'), 'utf8')) as JobState,
  };
}

/** Rows grouped by id. */
export function byId(rows: Record<string, unknown>[]): Map<string, Record<string, unknown>[]> {
  const m = new Map<string, Record<string, unknown>[]>();
  for (const r of rows) m.set(r['id'] as string, [...(m.get(r['id'] as string) ?? []), r]);
  return m;
}
