/**
 * Benchmark dispatcher: `npm run bench -- <scenario> [options]`.
 *
 *   postgres-parquet [--rows N] [--repeat N] [--breakdown] [--batch-size N] [--fresh] [--no-baseline] [--cpu-prof DIR]
 *   mysql-parquet    (same options)
 *   coerce [rows]                  → bench/coerce.ts
 *   parquet-sink [--rows=N ...]    → bench/parquet-sink.ts
 *   api-parquet [--objects N] [--latency-ms N] [--rps N] [--windows N] → bench/api-parquet.ts
 *
 * The SQL scenarios print a readable table and, as the LAST line, one JSON
 * object `{scenario, rows, seconds, rows_per_s, mb_per_s, peak_rss_mb,
 * baseline, baseline_rows_per_s, ratio, …}`; they exit non-zero when the
 * written files do not hold exactly the table's rows.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpus, totalmem } from 'node:os';
import { benchSqlParquet, type BenchResult } from './sql-parquet.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCRIPTS: Record<string, string> = { coerce: 'coerce.ts', 'parquet-sink': 'parquet-sink.ts', 'api-parquet': 'api-parquet.ts' };

function usage(): never {
  process.stderr.write(
    'usage: npm run bench -- <postgres-parquet|mysql-parquet|coerce|parquet-sink|api-parquet> [options]\n' +
      '  SQL options: --rows N (default 2000000) --repeat N (default 1) --breakdown (also time source only, + validate, + Arrow buffers)\n' +
      '               --batch-size N (Postgres portal batch) --fresh (rebuild the table) --no-baseline --cpu-prof DIR\n',
  );
  process.exit(2);
}

function printTable(r: BenchResult): void {
  const fmt = (n: number | null): string => (n === null ? '-' : n.toLocaleString('en-US'));
  const lines = [
    `scenario        ${r.scenario}`,
    `machine         ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    `rows            ${fmt(r.rows)} (verified: count and sum(id) of the Parquet files = the table)`,
    '',
    'run                               seconds  CPU s      rows/s   peak RSS MB',
  ];
  if (r.baseline_seconds !== null) lines.push(`baseline ${r.baseline.slice(0, 24).padEnd(24)} ${String(r.baseline_seconds).padStart(8)}      - ${fmt(r.baseline_rows_per_s).padStart(11)}             -`);
  for (const [mode, b] of Object.entries(r.breakdown ?? {})) {
    const label =
      mode === 'full' ? 'dativo run → Parquet' : mode === 'source' ? 'pipeline: source only' : mode === 'validate' ? 'pipeline: source → validate' : 'pipeline: … → Arrow (no Parquet)';
    lines.push(`${label.padEnd(33)} ${String(b.seconds).padStart(8)} ${String(b.cpu_seconds).padStart(6)} ${fmt(b.rows_per_s).padStart(11)} ${String(b.peak_rss_mb).padStart(13)}`);
  }
  lines.push('', `MB/s (table as text): ${r.mb_per_s}   ratio (pipeline speed / baseline speed): ${r.ratio ?? '-'}   load average at start: ${r.load_average}`);
  process.stdout.write(lines.join('\n') + '\n');
}

async function main(): Promise<void> {
  const [scenario, ...rest] = process.argv.slice(2);
  if (scenario === undefined) usage();
  const script = SCRIPTS[scenario];
  if (script !== undefined) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(HERE, script), ...rest], { stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }
  if (scenario !== 'postgres-parquet' && scenario !== 'mysql-parquet') usage();
  const { values } = parseArgs({
    args: rest,
    options: {
      rows: { type: 'string', default: '2000000' },
      repeat: { type: 'string', default: '1' },
      breakdown: { type: 'boolean', default: false },
      'batch-size': { type: 'string' },
      fresh: { type: 'boolean', default: false },
      'no-baseline': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
    },
  });
  const log = (s: string): void => void process.stderr.write(s + '\n');
  const result = await benchSqlParquet(scenario === 'postgres-parquet' ? 'postgres' : 'mysql', {
    rows: Number(values.rows),
    fresh: values.fresh,
    repeat: Math.max(1, Number(values.repeat)),
    modes: values.breakdown ? ['source', 'validate', 'arrow', 'full'] : ['full'],
    ...(values['batch-size'] ? { batchSize: Number(values['batch-size']) } : {}),
    ...(values['cpu-prof'] ? { cpuProfDir: path.resolve(values['cpu-prof']) } : {}),
    skipBaseline: values['no-baseline'],
    log,
  });
  printTable(result);
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
