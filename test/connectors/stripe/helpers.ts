/**
 * Stripe test setup: a project folder with a job reading one object of the
 * Stripe-like fake (test/fakes/stripe.ts) into an Iceberg table of the
 * embedded catalog, run through `runJobFile` (the CLI's entry point) with a
 * logger whose lines the test reads back.
 */
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunSummary } from '../../../lib/run/types.js';
import type { JobState } from '../../../state/index.js';
import type { StripeFake, StripeResourceName } from '../../fakes/stripe.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { runLogged } from '../../helpers/run-logged.js';
import { project, repo, type Project } from '../../lib/cli/helpers.js';

export const TEST_KEY = 'sk_test_fake_4242';

export interface StripeJob {
  object?: StripeResourceName | string;
  key?: string;
  mode?: 'strict' | 'warn';
  sync?: 'incremental' | 'full_refresh';
  lag?: number;
  /** Extra lines under `source.connection`. */
  connection?: string[];
  /** Extra lines under `source` (e.g. `parallel_windows: 4`). */
  source?: string[];
  /** Extra top-level lines (e.g. retry_config). */
  extra?: string[];
}

/** A project with the Stripe assets copied in and a job writer. */
export interface StripeProject extends Project {
  job(spec?: StripeJob): Promise<string>;
  run(spec?: StripeJob): Promise<{ summary: RunSummary; logs: Record<string, unknown>[] }>;
  rows(object?: string): Promise<Record<string, unknown>[]>;
  state(): Promise<JobState>;
}

export async function stripeProject(fake: StripeFake, prefix = 'stripe'): Promise<StripeProject> {
  const p = await project(prefix);
  for (const f of ['customers', 'charges', 'products', 'balance_transactions', 'subscriptions']) {
    await p.write(`assets/${f}.yaml`, '');
    await copyFile(path.join(repo, 'schemas/stripe/v1.0', `${f}.yaml`), p.p(`assets/${f}.yaml`));
  }
  const job = async (spec: StripeJob = {}): Promise<string> => {
    const object = spec.object ?? 'customers';
    const asset = ['customers', 'charges', 'products', 'balance_transactions', 'subscriptions'].includes(object) ? object : 'customers';
    return p.write(
      'job.yaml',
      [
        'tenant_id: acme',
        'source_connector: stripe',
        'target_connector: iceberg',
        `asset_path: assets/${asset}.yaml`,
        'source:',
        `  objects: [${object}]`,
        ...(spec.source ?? []).map((l) => `  ${l}`),
        ...(spec.sync === 'full_refresh' ? [] : [`  incremental: {strategy: created, cursor_field: created, lag_seconds: ${spec.lag ?? 0}}`]),
        '  connection:',
        `    api_key: "${spec.key ?? TEST_KEY}"`,
        `    base_url: ${fake.url}`,
        ...(spec.connection ?? []).map((l) => `    ${l}`),
        ...(spec.sync === 'full_refresh' ? ['sync_mode: full_refresh'] : []),
        'target:',
        '  warehouse: wh',
        '  namespace: stripe',
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
    async run(spec = {}) {
      return runLogged(await job(spec), { cwd: p.dir });
    },
    rows: (object = 'customers') => readWarehouseTable(p.p('wh'), 'stripe', object),
    state: async () => JSON.parse(await readFile(p.p('state.json'), 'utf8')) as JobState,
  };
}
