/**
 * `sheets-parquet`: the Google Sheets source against the Sheets fake
 * (test/fakes/sheets.ts, on the Google fake) with optional latency, into local
 * Parquet, through the harness's CLI run (bench/harness.ts: the compiled
 * `dativo` in its own process, its peak RSS the kernel's VmHWM).
 *
 *   npm run bench -- sheets-parquet [--rows 200000] [--window-rows 5000] [--latency-ms 0]
 *
 * Rows are budget lines (9 columns: long, strings, serial date, decimal,
 * boolean, serial date-time). The baseline is the API itself: the same
 * windows fetched and JSON-parsed with plain `fetch` in this process (no
 * conversion, no Parquet). Prints rows/s, requests, peak RSS (flat in the
 * number of rows: one window and the read-ahead are held), and checks the
 * landed rows with DuckDB (count, distinct line ids, the sum of the decimal
 * column to the cent). Throws when the rows are wrong.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GoogleFake } from '../test/fakes/google.js';
import { SheetsFake } from '../test/fakes/sheets.js';
import { budgetSheet } from '../test/connectors/google_sheets/helpers.js';
import { loadNow, mismatches, readBack, result, ROOT, runCli, targetKeys, type BenchResult, type CommonOptions } from './harness.js';

/** What the scenario takes besides the common options. */
export interface SheetsOptions {
  windowRows: number;
  latencyMs: number;
}

const KEY = 'bench-api-key';

/** Fetch every window of the sheet with plain fetch (the API's own speed, the baseline). */
async function fetchAll(url: string, rows: number, windowRows: number): Promise<number> {
  let got = 0;
  for (let first = 2; first <= rows + 1; first += windowRows) {
    const last = Math.min(rows + 1, first + windowRows - 1);
    const range = encodeURIComponent(`Budget!A${first}:I${last}`);
    const res = await fetch(`${url}/v4/spreadsheets/bench-budget/values/${range}?key=${KEY}&valueRenderOption=UNFORMATTED_VALUE&dateTimeRenderOption=SERIAL_NUMBER`);
    const body = (await res.json()) as { values?: unknown[][] };
    got += body.values?.length ?? 0;
  }
  return got;
}

export async function benchSheetsParquet(o: CommonOptions, s: SheetsOptions): Promise<BenchResult> {
  const load = loadNow();
  const rows = o.rows ?? 200_000;
  const google = new GoogleFake({ latencyMs: s.latencyMs });
  const fake = await new SheetsFake(google).start();
  google.apiKeys.add(KEY);
  const dir = await mkdtemp(path.join(tmpdir(), 'dativo-bench-sheets-'));
  try {
    fake.create('bench-budget', { sheets: [{ title: 'Budget', rows: budgetSheet(rows), rowCount: rows + 1, columnCount: 9 }] });
    // Sum of the amounts in cents: budgetLine(i) has 100000 + 7i cents.
    const cents = BigInt(rows) * 100_000n + (7n * BigInt(rows) * BigInt(rows + 1)) / 2n;
    const sum = `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;

    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const fetched = await fetchAll(fake.url, rows, s.windowRows);
    const cpu = process.cpuUsage(cpu0);
    const baselineSeconds = (performance.now() - t0) / 1000;
    if (fetched !== rows) throw new Error(`baseline fetched ${fetched} rows, expected ${rows}`);
    google.requests.length = 0;

    await mkdir(path.join(dir, 'assets'));
    await copyFile(path.join(ROOT, 'schemas/google_sheets/v1.0/budget.yaml'), path.join(dir, 'assets/budget.yaml'));
    const job = path.join(dir, 'job.yaml');
    await writeFile(
      job,
      [
        'tenant_id: bench',
        'source_connector: google_sheets',
        'target_connector: parquet',
        'asset_path: assets/budget.yaml',
        'source:',
        '  sheets: [{spreadsheet_id: bench-budget, range: "Budget!A1:I"}]',
        `  window_rows: ${s.windowRows}`,
        '  connection:',
        `    api_key: ${KEY}`,
        `    base_url: ${fake.url}`,
        '  rate_limits: {requests_per_second: 1000, burst: 100}',
        `target: ${JSON.stringify({ warehouse: 'wh', ...targetKeys(o) })}`,
        'schema_validation_mode: strict',
        'sync_mode: full_refresh',
        'logging: {level: warn}',
        '',
      ].join('\n'),
    );
    o.log(`dativo run (sheets fake: ${rows} rows, windows of ${s.windowRows}, ${s.latencyMs} ms latency) ...`);
    const run = await runCli(o, job, dir, { cpuProfile: true });
    if (run.exit_code !== 0) throw new Error(`dativo run exited ${run.exit_code}: ${JSON.stringify(run.error)}`);
    const requests = google.requests.length;
    const got = await readBack(run.files, { n: 'count(*)', d: 'count(DISTINCT line_id)', s: 'sum(amount)' });
    const want = { n: String(rows), d: String(rows), s: sum };
    const wrong = mismatches(got, want);
    const lines = [
      `scenario          sheets-parquet (google_sheets budget → Parquet, fake with ${s.latencyMs} ms latency)`,
      `rows              ${rows.toLocaleString('en-US')} (verified: ${Number(got['n']).toLocaleString('en-US')} rows, ${Number(got['d']).toLocaleString('en-US')} distinct ids, sum(amount) ${got['s']}${wrong.length === 0 ? ', exact' : ' — WRONG'})`,
      `window rows       ${s.windowRows}`,
      `requests          ${requests} (Drive files.get, spreadsheets.get, ${Math.ceil(rows / s.windowRows)} values)`,
      `rows/s            ${Math.round(rows / run.seconds).toLocaleString('en-US')} (baseline: fetch + JSON.parse of the same windows ${Math.round(rows / baselineSeconds).toLocaleString('en-US')})`,
      `peak RSS          ${run.peak_rss_mb} MB (dativo process)`,
    ];
    if (wrong.length > 0) throw new Error(`wrong output: ${wrong.join('; ')}\n${lines.join('\n')}`);
    return result({
      scenario: 'sheets-parquet',
      rows,
      fulls: [run],
      bytes: 0,
      baseline: 'fetch + JSON.parse of the same windows (no conversion, no Parquet)',
      baselineRun: { seconds: baselineSeconds, cpu_seconds: (cpu.user + cpu.system) / 1e6, peak_rss_mb: null },
      fullLabel: 'dativo run (sheets fake) → Parquet',
      options: o,
      load,
      checked: 'count(*), count(DISTINCT line_id) and sum(amount) read by DuckDB = the seeded sheet',
      notes: lines,
      extra: { window_rows: s.windowRows, latency_ms: s.latencyMs, requests },
    });
  } finally {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}
