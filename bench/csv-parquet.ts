/**
 * `csv-parquet`: a generated CSV of N demo orders (pipelines/demo/generate-orders.ts:
 * ids beyond 2^53, exact decimals, unicode, offsets and µs, NULL vs "",
 * quoted line breaks) → Parquet through the csv connector, against DuckDB
 * converting the same file to ZSTD Parquet in the same run.
 *
 * The file is made once per row count under bench/out/ and reused. The check:
 * count(*), sum(order_id) and sum(amount) of our files, read back by DuckDB,
 * equal those of DuckDB's own conversion of the file.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateOrders } from '../pipelines/demo/generate-orders.js';
import { breakdown, loadNow, measuredRuns, readBack, result, ROOT, runChild, targetKeys, TSX, writeJob, type BenchResult, type CommonOptions, type RunRow } from './harness.js';

/** The aggregates both scenarios of the demo orders check. */
export const ORDER_TOTALS = { rows: 'count(*)', sum_id: 'sum(order_id)', sum_amount: 'sum(amount)' };

/** <dataDir>/orders-<rows>.csv (default bench/out), written once. */
export async function ordersCsv(rows: number, o: CommonOptions): Promise<string> {
  const file = path.join(o.dataDir ?? path.join(ROOT, 'bench/out'), `orders-${rows}.csv`);
  await mkdir(path.dirname(file), { recursive: true });
  if (await generateOrders(file, rows)) o.log(`wrote ${file}`);
  return file;
}

/** A full-refresh job of the demo asset into a local Parquet warehouse under `dir`. */
export function ordersJob(dir: string, source: Record<string, unknown>, o: CommonOptions): Record<string, unknown> {
  return {
    tenant_id: 'bench',
    asset_path: path.join(ROOT, 'schemas/demo/v1.0/orders.yaml'),
    sync_mode: 'full_refresh',
    ...source,
    target: { warehouse: path.join(dir, 'warehouse'), ...targetKeys(o) },
    state: { path: path.join(dir, 'state.json') },
    reject_dir: path.join(dir, 'rejects'),
    schema_validation_mode: 'strict',
    logging: { level: 'warn' },
  };
}

/** What the scenario takes besides the common options. */
export interface CsvOptions {
  breakdown: boolean;
}

export async function benchCsvParquet(o: CommonOptions, s: CsvOptions): Promise<BenchResult> {
  const load = loadNow();
  const rows = o.rows ?? 1_000_000;
  const csv = await ordersCsv(rows, o);
  const bytes = (await stat(csv)).size;
  const dir = await mkdtemp(path.join(tmpdir(), 'dativo-bench-csv-'));
  try {
    // DuckDB's conversion is the baseline and, read back, the expected totals.
    o.log('baseline: DuckDB read_csv → ZSTD Parquet ...');
    const duck = path.join(dir, 'duckdb.parquet');
    const b = await runChild(['--import', TSX, path.join(ROOT, 'bench/duckdb-copy.ts'), '--csv', csv, '--out', duck, '--compression', 'zstd'], { cwd: dir });
    const want = await readBack([duck], ORDER_TOTALS);
    if (want['rows'] !== String(rows)) throw new Error(`DuckDB read ${want['rows']} rows of ${rows} from ${csv}`);

    const job = await writeJob(dir, ordersJob(dir, { source_connector: 'csv', source: { files: [{ path: csv, object: 'orders' }] } }, o));
    const stages: RunRow[] = s.breakdown ? await breakdown(o, job, rows) : [];
    const fulls = await measuredRuns(o, job, dir, ORDER_TOTALS, { ...want, reported: String(rows), rejected: '0' });
    return result({
      scenario: 'csv-parquet',
      rows,
      fulls,
      bytes,
      baseline: 'DuckDB read_csv → ZSTD Parquet, same file',
      baselineRun: b,
      other: stages,
      fullLabel: 'dativo run (csv) → Parquet',
      options: o,
      load,
      checked: "count(*), sum(order_id), sum(amount) of our files = those of DuckDB's conversion",
      extra: { csv_bytes: bytes, mb_per_s_of: 'the CSV file' },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
