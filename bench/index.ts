/**
 * The benchmark harness's command line: `npm run bench -- <scenario> [options]`.
 *
 *   generator-parquet  N canonical demo orders (bench/generator-source.ts) → Parquet: the writer's ceiling
 *   csv-parquet        a generated CSV of N demo orders → Parquet, DuckDB on the same file as baseline
 *   postgres-parquet   orders_<N> in Postgres → Parquet, `psql \copy` as baseline
 *   mysql-parquet      orders_<N> in MariaDB → Parquet, `mysql --quick` as baseline
 *   api-parquet        the Stripe fake (latency, rate limit) → Parquet, the request budget as ceiling
 *   gdrive-csv         one large CSV on the Google fake (generated as sent) → Parquet, peak RSS against the file size
 *   sheets-parquet     a budget sheet on the Sheets fake → Parquet in windows, fetch + JSON.parse of the windows as baseline
 *   coerce, parquet-sink  in-process micro-benchmarks (bench/coerce.ts, bench/parquet-sink.ts)
 *
 * Every scenario runs the compiled CLI as a user runs it (bench/harness.ts),
 * checks what it wrote with DuckDB (exit 1 when wrong), prints a readable
 * table and, last, one JSON line `{scenario, rows, seconds, rows_per_s,
 * rows_per_cpu_s, mb_per_s, peak_rss_mb, baseline, baseline_rows_per_s,
 * ratio, verified, …}`.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchApiParquet } from './api-parquet.js';
import { benchGdriveCsv } from './gdrive-csv.js';
import { benchCsvParquet } from './csv-parquet.js';
import { benchGeneratorParquet } from './generator-parquet.js';
import { formatTable, jsonLine, type BenchResult, type CommonOptions } from './harness.js';
import { benchSheetsParquet } from './sheets-parquet.js';
import { benchSqlParquet } from './sql-parquet.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCRIPTS: Record<string, string> = { coerce: 'coerce.ts', 'parquet-sink': 'parquet-sink.ts' };

export const SCENARIOS = ['generator-parquet', 'csv-parquet', 'postgres-parquet', 'mysql-parquet', 'api-parquet', 'gdrive-csv', 'sheets-parquet'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const USAGE = `usage: npm run bench -- <${SCENARIOS.join('|')}> [options]
  --rows N              rows (objects for api-parquet); default 1,000,000 (generator, csv), 2,000,000 (SQL), 60,000 (api), 200,000 (sheets)
  --repeat N            measured runs, the median reported (default 1)
  --batch-rows N        target.batch_rows: rows per Arrow batch to the encoder (default 10,000)
  --row-group-rows N    target.row_group_rows (default 100,000)
  --compression C       target.compression: zstd (default), snappy, gzip, uncompressed
  --workers N           target.workers: threads coercing CSV records into Arrow columns (0 = main thread; default 1 with 4+ cores)
  --encoder E           where Parquet is encoded: inline (main thread) or worker (default with 2+ cores)
  --breakdown           also time the source alone, + validate, + Arrow buffers (not api-parquet)
  --cpu-prof DIR        CPU profile of the first measured run into DIR
  --no-baseline         skip the baseline (csv-parquet always runs DuckDB: it is the check)
  --from-source         run lib/cli/bin.ts under tsx instead of building dist/
  --data-dir DIR        where csv-parquet keeps its generated CSV files (default bench/out)
  SQL: --batch-size N (Postgres portal batch)  --fresh (rebuild the table)
  api: --latency-ms N (200)  --rps N (25)  --windows N (8)  --objects N (= --rows)
  gdrive-csv: --pad N (1000: width of a filler column; with the default 200,000 rows about 207 MB)
  sheets: --window-rows N (5000)  --latency-ms N (0)
  also: coerce [rows], parquet-sink [--rows=N --compression=C --batch=N]
`;

const OPTIONS = {
  rows: { type: 'string' },
  objects: { type: 'string' },
  repeat: { type: 'string', default: '1' },
  'batch-rows': { type: 'string' },
  'row-group-rows': { type: 'string' },
  compression: { type: 'string' },
  workers: { type: 'string' },
  encoder: { type: 'string' },
  breakdown: { type: 'boolean', default: false },
  'cpu-prof': { type: 'string' },
  'no-baseline': { type: 'boolean', default: false },
  'from-source': { type: 'boolean', default: false },
  'data-dir': { type: 'string' },
  'batch-size': { type: 'string' },
  fresh: { type: 'boolean', default: false },
  'latency-ms': { type: 'string' },
  'window-rows': { type: 'string', default: '5000' },
  rps: { type: 'string', default: '25' },
  windows: { type: 'string', default: '8' },
  pad: { type: 'string', default: '1000' },
  help: { type: 'boolean', default: false },
} as const;

/** A positive integer option, or undefined; anything else is a usage error. */
function int(name: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

class UsageError extends Error {}

/** Run one scenario with command-line arguments (after the scenario name). */
export async function runScenario(scenario: Scenario, argv: string[], log: (s: string) => void): Promise<BenchResult> {
  const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
  const compression = values.compression;
  if (compression !== undefined && !['zstd', 'snappy', 'gzip', 'uncompressed'].includes(compression)) throw new UsageError(`--compression must be zstd, snappy, gzip or uncompressed, got "${compression}"`);
  const workers = int('workers', values.workers, 0);
  const encoder = values.encoder;
  if (encoder !== undefined && encoder !== 'inline' && encoder !== 'worker') throw new UsageError(`--encoder must be inline or worker, got "${encoder}"`);
  const rows = int('rows', values.rows) ?? int('objects', values.objects);
  const batchRows = int('batch-rows', values['batch-rows']);
  const rowGroupRows = int('row-group-rows', values['row-group-rows']);
  const o: CommonOptions = {
    ...(rows !== undefined ? { rows } : {}),
    repeat: int('repeat', values.repeat)!,
    ...(batchRows !== undefined ? { batchRows } : {}),
    ...(rowGroupRows !== undefined ? { rowGroupRows } : {}),
    ...(compression !== undefined ? { compression } : {}),
    ...(workers !== undefined ? { workers } : {}),
    ...(encoder !== undefined ? { encoder } : {}),
    ...(values['cpu-prof'] ? { cpuProfDir: path.resolve(values['cpu-prof']) } : {}),
    skipBaseline: values['no-baseline'],
    fromSource: values['from-source'],
    ...(values['data-dir'] ? { dataDir: path.resolve(values['data-dir']) } : {}),
    log,
  };
  switch (scenario) {
    case 'generator-parquet':
      return benchGeneratorParquet(o, { breakdown: values.breakdown });
    case 'csv-parquet':
      return benchCsvParquet(o, { breakdown: values.breakdown });
    case 'postgres-parquet':
    case 'mysql-parquet': {
      const batchSize = int('batch-size', values['batch-size']);
      return benchSqlParquet(scenario === 'postgres-parquet' ? 'postgres' : 'mysql', o, { fresh: values.fresh, breakdown: values.breakdown, ...(batchSize !== undefined ? { batchSize } : {}) });
    }
    case 'api-parquet':
      return benchApiParquet(o, { latencyMs: int('latency-ms', values['latency-ms'] ?? '200', 0)!, rps: int('rps', values.rps)!, windows: int('windows', values.windows)! });
    case 'gdrive-csv':
      return benchGdriveCsv(o, { pad: int('pad', values.pad, 0)! });
    case 'sheets-parquet':
      return benchSheetsParquet(o, { windowRows: int('window-rows', values['window-rows'])!, latencyMs: int('latency-ms', values['latency-ms'] ?? '0', 0)! });
  }
}

async function main(): Promise<void> {
  const [scenario, ...rest] = process.argv.slice(2);
  const script = scenario === undefined ? undefined : SCRIPTS[scenario];
  if (script !== undefined) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(HERE, script), ...rest], { stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }
  if (scenario === undefined || scenario === '--help' || rest.includes('--help') || !(SCENARIOS as readonly string[]).includes(scenario)) {
    process.stderr.write(USAGE);
    process.exit(scenario === '--help' || rest.includes('--help') ? 0 : 2);
  }
  try {
    const r = await runScenario(scenario as Scenario, rest, (s) => void process.stderr.write(s + '\n'));
    process.stdout.write(formatTable(r) + jsonLine(r) + '\n');
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}`);
      process.exit(2);
    }
    throw err;
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
