/**
 * Google Sheets test setup: a project folder with the budget asset
 * (schemas/google_sheets/v1.0/budget.yaml) and a job reading a range of the
 * Sheets fake (test/fakes/sheets.ts) into an Iceberg table of the embedded
 * catalog, run through `runJobFile` (the CLI's entry point) with a logger
 * whose lines the test reads back; and budget sheets to seed.
 */
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunSummary } from '../../../lib/run/types.js';
import type { JobState } from '../../../state/index.js';
import { serialOf, sheetDate, type Cell, type SheetsFake } from '../../fakes/sheets.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { runLogged } from '../../helpers/run-logged.js';
import { project, repo, type Project } from '../../lib/cli/helpers.js';
import { targetLines } from '../api-helpers.js';

export const TEST_KEY = 'fake-api-key';

/** The budget asset's header, as a sheet writes it. */
export const BUDGET_HEADER: Cell[] = ['line_id', 'department', 'category', 'month', 'amount', 'currency', 'approved', 'updated_at', 'note'];

/** Budget line `i` (1-based) as sheet cells, in {@link BUDGET_HEADER} order. */
export function budgetLine(i: number, amountCents = 100_000 + i * 7): Cell[] {
  return [
    i,
    ['Sales', 'Ops', 'R&D'][i % 3]!,
    i % 4 === 0 ? null : `cat ${i % 5}`,
    sheetDate(serialOf(`2026-${String((i % 12) + 1).padStart(2, '0')}-01`)),
    amountCents / 100,
    'EUR',
    i % 2 === 0,
    sheetDate(serialOf(`2026-11-${String((i % 28) + 1).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:15`)),
    i % 7 === 0 ? `note ${i} ✓` : null,
  ];
}

/** A header and `n` budget lines. */
export function budgetSheet(n: number, from = 1): Cell[][] {
  return [BUDGET_HEADER, ...Array.from({ length: n }, (_, k) => budgetLine(from + k))];
}

/**
 * The row a budget line becomes in the table, as {@link SheetsProject.rows}
 * reads it back (icebird: dates and timestamps as ISO text at ms, decimals with
 * two places; exact values are checked with DuckDB on the data files).
 */
export function budgetRecord(i: number, amountCents = 100_000 + i * 7): Record<string, unknown> {
  const month = `2026-${String((i % 12) + 1).padStart(2, '0')}-01`;
  const updated = `2026-11-${String((i % 28) + 1).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:15.000Z`;
  return {
    line_id: BigInt(i),
    department: ['Sales', 'Ops', 'R&D'][i % 3]!,
    category: i % 4 === 0 ? null : `cat ${i % 5}`,
    month,
    amount: (amountCents / 100).toFixed(2),
    currency: 'EUR',
    approved: i % 2 === 0,
    updated_at: updated,
    note: i % 7 === 0 ? `note ${i} ✓` : null,
  };
}

export interface SheetsJob {
  sheets?: { spreadsheet_id: string; range?: string; object?: string }[];
  /** The API key; null: none (the service-account key of the secrets folder). */
  key?: string | null;
  /** `--secrets-dir` of the run. */
  secretsDir?: string;
  mode?: 'strict' | 'warn';
  sync?: 'incremental' | 'full_refresh';
  windowRows?: number;
  /** Extra lines under `source`. */
  source?: string[];
  /** Extra top-level lines. */
  extra?: string[];
}

export interface SheetsProject extends Project {
  job(spec?: SheetsJob): Promise<string>;
  run(spec?: SheetsJob): Promise<{ summary: RunSummary; logs: Record<string, unknown>[] }>;
  /** The table's rows (icebird), without the engine's columns, dates and timestamps as ISO text. */
  rows(): Promise<Record<string, unknown>[]>;
  state(): Promise<JobState>;
}

/** A project reading spreadsheet `budget-1` (range `Budget`) of `fake` unless the job says otherwise. */
export async function sheetsProject(fake: SheetsFake, prefix = 'sheets'): Promise<SheetsProject> {
  const p = await project(prefix);
  fake.google.apiKeys.add(TEST_KEY);
  await p.write('assets/budget.yaml', '');
  await copyFile(path.join(repo, 'schemas/google_sheets/v1.0/budget.yaml'), p.p('assets/budget.yaml'));
  const job = async (spec: SheetsJob = {}): Promise<string> => {
    const sheets = spec.sheets ?? [{ spreadsheet_id: 'budget-1', range: 'Budget' }];
    return p.write(
      'job.yaml',
      [
        'tenant_id: acme',
        'source_connector: google_sheets',
        'target_connector: iceberg',
        'asset_path: assets/budget.yaml',
        'source:',
        '  sheets:',
        ...sheets.map((s) => `    - {spreadsheet_id: ${s.spreadsheet_id}${s.range !== undefined ? `, range: ${JSON.stringify(s.range)}` : ''}${s.object !== undefined ? `, object: ${s.object}` : ''}}`),
        ...(spec.windowRows !== undefined ? [`  window_rows: ${spec.windowRows}`] : []),
        ...(spec.source ?? []).map((l) => `  ${l}`),
        ...(spec.sync === 'full_refresh' ? [] : ['  incremental: {strategy: file_modified}']),
        '  connection:',
        ...(spec.key === null ? [] : [`    api_key: "${spec.key ?? TEST_KEY}"`]),
        `    base_url: ${fake.url}`,
        // The fake has no quota of its own unless a test queues one: no need to wait 1 s per request.
        '  rate_limits: {requests_per_second: 1000, burst: 100, retry: {max_retries: 4}}',
        ...(spec.sync === 'full_refresh' ? ['sync_mode: full_refresh'] : []),
        ...targetLines({ namespace: 'sheets', table: 'budget', mode: spec.mode }),
        'retry_config: {initial_delay_seconds: 0.05, max_delay_seconds: 0.2}',
        ...(spec.extra ?? []),
        '',
      ].join('\n'),
    );
  };
  return {
    ...p,
    job,
    async run(spec = {}) {
      return runLogged(await job(spec), { cwd: p.dir, ...(spec.secretsDir !== undefined ? { secretsDir: spec.secretsDir } : {}) });
    },
    rows: async () =>
      (await readWarehouseTable(p.p('wh'), 'sheets', 'budget')).map((r) => {
        const { _dativo_ingested_at: _a, _dativo_run_id: _b, ...rest } = r;
        for (const [k, v] of Object.entries(rest)) if (v instanceof Date) rest[k] = k === 'month' ? v.toISOString().slice(0, 10) : v.toISOString();
        // icebird gives a decimal as a JS number (1000.4200000000001): two places, as the column's scale.
        if (typeof rest['amount'] === 'number') rest['amount'] = rest['amount'].toFixed(2);
        return rest;
      }),
    state: async () => JSON.parse(await readFile(p.p('state.json'), 'utf8')) as JobState,
  };
}
