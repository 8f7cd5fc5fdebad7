/**
 * gdrive_csv test setup: a project folder with the orders asset, the fake's
 * service-account key in `secrets/acme/gdrive.json` (as the Python tool kept
 * it), a job writer, and runs through `runJobFile` (the CLI's entry point)
 * with a logger whose lines the test reads back.
 */
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunSummary } from '../../../lib/run/types.js';
import type { JobState } from '../../../state/index.js';
import type { FakeServiceAccount, GoogleFake } from '../../fakes/google.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { runLogged } from '../../helpers/run-logged.js';
import { project, repo, type Project } from '../../lib/cli/helpers.js';
import { targetLines } from '../api-helpers.js';

export const HEADER = 'order_id,customer_email,amount,currency,created_at,note\n';

/** CSV lines of orders `from..to-1`. */
export function orders(from: number, to: number): string {
  let out = '';
  for (let i = from; i < to; i++) out += `${9007199254740993n + BigInt(i)},c${i}@acme.example,${i}.${String(i % 100).padStart(2, '0')},EUR,2026-11-${String(1 + (i % 28)).padStart(2, '0')}T10:00:00.123456Z,${i % 3 === 0 ? '' : i % 3 === 1 ? '""' : `note ${i}`}\n`;
  return out;
}

export interface GdriveJob {
  /** Lines under `source` (files / folder_id / query …). */
  source: string[];
  mode?: 'strict' | 'warn';
  sync?: 'incremental' | 'full_refresh';
  /** Extra top-level lines. */
  extra?: string[];
  /** Lines under `source.connection` besides base_url. */
  connection?: string[];
}

export interface GdriveProject extends Project {
  account: FakeServiceAccount;
  job(spec: GdriveJob): Promise<string>;
  run(spec: GdriveJob): Promise<{ summary: RunSummary; logs: Record<string, unknown>[] }>;
  rows(): Promise<Record<string, unknown>[]>;
  state(): Promise<JobState>;
}

export async function gdriveProject(fake: GoogleFake, prefix = 'gdrive'): Promise<GdriveProject> {
  const p = await project(prefix);
  const account = fake.serviceAccount();
  await p.write('secrets/acme/gdrive.json', JSON.stringify(account.key, null, 2));
  await p.write('assets/orders.yaml', '');
  await copyFile(path.join(repo, 'schemas/acme/v1.0/gdrive_orders.yaml'), p.p('assets/orders.yaml'));
  const job = (spec: GdriveJob): Promise<string> =>
    p.write(
      'job.yaml',
      [
        'tenant_id: acme',
        'source_connector: gdrive_csv',
        'target_connector: iceberg',
        'asset_path: assets/orders.yaml',
        'source:',
        ...spec.source.map((l) => `  ${l}`),
        '  settle_seconds: 0',
        ...(spec.sync === 'full_refresh' ? [] : ['  incremental: {strategy: file_modified_time}']),
        '  connection:',
        `    base_url: ${fake.url}`,
        ...(spec.connection ?? []).map((l) => `    ${l}`),
        ...(spec.sync === 'full_refresh' ? ['sync_mode: full_refresh'] : []),
        ...targetLines({ namespace: 'drive', table: 'orders', mode: spec.mode }),
        ...(spec.extra ?? []),
        '',
      ].join('\n'),
    );
  return {
    ...p,
    account,
    job,
    run: async (spec) => runLogged(await job(spec), { cwd: p.dir, secretsDir: p.p('secrets') }),
    rows: () => readWarehouseTable(p.p('wh'), 'drive', 'orders'),
    state: async () => JSON.parse(await readFile(p.p('state.json'), 'utf8')) as JobState,
  };
}
