/**
 * `postgres-parquet` / `mysql-parquet`: a database table → local Parquet,
 * end to end through runJob, against the database's own CLI dump as the
 * baseline measured in the same run.
 *
 * Steps: build (or reuse) `orders_<rows>`; run the baseline (`psql \copy … to
 * /dev/null`, `mysql --quick -e 'select …' > /dev/null`); build dist/ and run
 * the compiled CLI, `dativo run <job> --json`, as a user would (its peak RSS
 * is the kernel's VmHWM of that process); the optional breakdown modes run
 * bench/pipeline-child.ts under tsx, for the relative cost of each stage;
 * check the files (DuckDB count and sum(id) against the table) so that a
 * fast wrong answer fails; print a table and, last, one JSON line.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { mysqlBenchDb, pgBenchDb, setupMysqlOrders, setupPgOrders, type BenchDb, type TableFacts } from './sql-setup.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Options of a SQL → Parquet bench run. */
export interface SqlBenchOptions {
  rows: number;
  /** Rebuild the table even if it exists with the right row count. */
  fresh: boolean;
  /** Pipeline runs (the median is reported). Default 1. */
  repeat: number;
  /** Modes to run: `full` always; `source`, `validate` and `arrow` (everything but the Parquet encoding) for the breakdown. */
  modes: ('source' | 'validate' | 'arrow' | 'full')[];
  /** Postgres portal batch size (source.connection.batch_size). */
  batchSize?: number;
  /** Write CPU profiles of the full run into this folder. */
  cpuProfDir?: string;
  skipBaseline: boolean;
  log: (s: string) => void;
}

interface Measured {
  seconds: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      // Only the tail matters (the child's JSON line); the baselines send to /dev/null.
      stdout = (stdout + d.toString()).slice(-1_000_000);
    });
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ seconds: (performance.now() - t0) / 1000, code, stdout, stderr }));
  });
}

async function pgBaseline(db: BenchDb, table: string): Promise<number> {
  const r = await run('sh', ['-c', `psql -h ${db.host} -p ${db.port} -U ${db.user} -d ${db.database} -X -q -c "\\copy (select * from ${table}) to /dev/null"`], {
    env: db.password ? { PGPASSWORD: db.password } : {},
  });
  if (r.code !== 0) throw new Error(`psql baseline failed: ${r.stderr}`);
  return r.seconds;
}

async function mysqlBaseline(db: BenchDb, table: string): Promise<number> {
  const r = await run('sh', ['-c', `mysql -h${db.host} -P${db.port} -u${db.user} --quick -e 'select * from ${table}' ${db.database} > /dev/null`], {
    env: db.password ? { MYSQL_PWD: db.password } : {},
  });
  if (r.code !== 0) throw new Error(`mysql baseline failed: ${r.stderr}`);
  return r.seconds;
}

async function writeJob(dir: string, kind: 'postgres' | 'mysql', db: BenchDb, table: string, batchSize?: number): Promise<string> {
  const asset = path.join(ROOT, 'schemas/acme/v1.0', kind === 'postgres' ? 'pg_orders.yaml' : 'mysql_orders.yaml');
  const job = {
    tenant_id: 'bench',
    source_connector: kind,
    asset_path: asset,
    sync_mode: 'full_refresh',
    source: {
      tables: [{ name: kind === 'postgres' ? `public.${table}` : table, object: 'orders' }],
      connection: { host: db.host, port: db.port, user: db.user, database: db.database, ...(db.password ? { password: db.password } : {}), ...(batchSize ? { batch_size: batchSize } : {}) },
    },
    target: { warehouse: path.join(dir, 'warehouse') },
    state: { path: path.join(dir, 'state.json') },
    reject_dir: path.join(dir, 'rejects'),
    logging: { level: 'warn' },
  };
  const file = path.join(dir, 'job.yaml');
  await writeFile(file, JSON.stringify(job, null, 2));
  return file;
}

interface ChildResult {
  mode: string;
  rows: number;
  seconds: number;
  cpu_seconds: number;
  wall: number;
  peak_rss_mb: number;
  rss_sampled_mb: number;
  files?: string[];
  exit_code: number;
  error?: unknown;
  rejected?: number;
  first_reject?: string;
}

/**
 * The measured run, as a user runs it: the compiled CLI (`dativo run <job>
 * --json`), with bench/peak-rss.cjs preloaded to report its peak RSS and CPU
 * time. Seconds are the job's own (the summary's), not process start-up.
 */
async function runCli(dir: string, job: string, cpuProfDir?: string): Promise<ChildResult> {
  const stats = path.join(dir, 'cli-stats.json');
  const args = [
    '--require',
    path.join(ROOT, 'bench/peak-rss.cjs'),
    ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []),
    path.join(ROOT, 'dist/lib/cli/bin.js'),
    'run',
    job,
    '--json',
  ];
  const r = await run(process.execPath, args, { env: { DATIVO_BENCH_STATS: stats } });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let summary: { exit_code: number; seconds: number; objects: { rows_written: number; files: string[] }[]; error?: unknown };
  let measured: { peak_rss_mb: number; cpu_seconds: number };
  try {
    summary = JSON.parse(last) as typeof summary;
    measured = JSON.parse(await readFile(stats, 'utf8')) as typeof measured;
  } catch {
    throw new Error(`dativo run printed no summary (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  }
  return {
    mode: 'full',
    rows: summary.objects.reduce((n, o) => n + o.rows_written, 0),
    seconds: summary.seconds,
    cpu_seconds: measured.cpu_seconds,
    wall: r.seconds,
    peak_rss_mb: measured.peak_rss_mb,
    rss_sampled_mb: measured.peak_rss_mb,
    files: summary.objects.flatMap((o) => o.files),
    exit_code: summary.exit_code,
    ...(summary.error !== undefined ? { error: summary.error } : {}),
  };
}

/** Build dist/ so that the CLI measured is the code in this checkout. */
async function build(): Promise<void> {
  const r = await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')]);
  if (r.code !== 0) throw new Error(`build failed: ${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
}

async function runChild(job: string, mode: string, cpuProfDir?: string): Promise<ChildResult> {
  const args = ['--import', 'tsx', ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []), path.join(ROOT, 'bench/pipeline-child.ts'), '--job', job, '--mode', mode];
  const r = await run(process.execPath, args);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let parsed: ChildResult;
  try {
    parsed = JSON.parse(last) as ChildResult;
  } catch {
    throw new Error(`pipeline child (${mode}) printed no result (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  }
  return { ...parsed, wall: r.seconds };
}

/** Count and sum(id) of the written files, read back by DuckDB. */
async function verifyFiles(files: string[]): Promise<{ rows: number; sumId: string }> {
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const conn = await instance.connect();
  try {
    const list = files.map((f) => `'${fileURLToPath(f).replaceAll("'", "''")}'`).join(', ');
    const r = await conn.runAndReadAll(`SELECT count(*) AS n, CAST(sum(id) AS VARCHAR) AS s FROM read_parquet([${list}])`);
    const row = r.getRowObjectsJS()[0]!;
    return { rows: Number(row['n']), sumId: String(row['s']) };
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

/** The JSON line the bench prints last. */
export interface BenchResult {
  scenario: string;
  rows: number;
  seconds: number;
  rows_per_s: number;
  mb_per_s: number;
  peak_rss_mb: number;
  baseline: string;
  baseline_seconds: number | null;
  baseline_rows_per_s: number | null;
  ratio: number | null;
  /** Per mode: wall seconds, CPU seconds of the pipeline process (less sensitive to other load), rows/s, peak RSS. */
  breakdown?: Record<string, { seconds: number; cpu_seconds: number; rows_per_s: number; peak_rss_mb: number }>;
  verified: boolean;
  /** 1-minute load average when the bench started: other work on the box skews wall times. */
  load_average: number;
}

/** Run one SQL → Parquet scenario. Throws when the output does not match the table. */
export async function benchSqlParquet(kind: 'postgres' | 'mysql', o: SqlBenchOptions): Promise<BenchResult> {
  const load = round(loadavg()[0] ?? 0, 2);
  const db = kind === 'postgres' ? pgBenchDb() : mysqlBenchDb();
  const facts: TableFacts = kind === 'postgres' ? await setupPgOrders(db, o.rows, o.fresh, o.log) : await setupMysqlOrders(db, o.rows, o.fresh, o.log);
  const baselineName = kind === 'postgres' ? `psql \\copy (select * from ${facts.table}) to /dev/null` : `mysql --quick -e 'select * from ${facts.table}' > /dev/null`;
  let baseline: number | null = null;
  if (!o.skipBaseline) {
    o.log(`baseline: ${baselineName}`);
    baseline = kind === 'postgres' ? await pgBaseline(db, facts.table) : await mysqlBaseline(db, facts.table);
  }

  const dir = await mkdtemp(path.join(tmpdir(), `dativo-bench-${kind}-`));
  try {
    o.log('building dist/ (the CLI measured) ...');
    await build();
    const job = await writeJob(dir, kind, db, facts.table, o.batchSize);
    const breakdown: BenchResult['breakdown'] = {};
    for (const mode of o.modes.filter((m) => m !== 'full')) {
      o.log(`pipeline (${mode}) ...`);
      const r = await runChild(job, mode);
      if (r.exit_code !== 0 || r.rows !== facts.rows) throw new Error(`${mode} run: ${r.rows} rows, exit ${r.exit_code}: ${JSON.stringify(r.error ?? r.first_reject)}`);
      breakdown[mode] = { seconds: round(r.seconds, 2), cpu_seconds: round(r.cpu_seconds, 2), rows_per_s: Math.round(r.rows / r.seconds), peak_rss_mb: r.peak_rss_mb };
    }
    const fulls: ChildResult[] = [];
    for (let i = 0; i < o.repeat; i++) {
      o.log(`pipeline (full, run ${i + 1}/${o.repeat}) ...`);
      await rm(path.join(dir, 'warehouse'), { recursive: true, force: true });
      const r = await runCli(dir, job, i === 0 ? o.cpuProfDir : undefined);
      if (r.exit_code !== 0) throw new Error(`full run failed: ${JSON.stringify(r.error)}`);
      const v = await verifyFiles(r.files ?? []);
      if (v.rows !== facts.rows || v.sumId !== facts.sumId || r.rows !== facts.rows) {
        throw new Error(`wrong output: files hold ${v.rows} rows (sum(id) ${v.sumId}), runJob reported ${r.rows}; the table has ${facts.rows} (sum(id) ${facts.sumId})`);
      }
      fulls.push(r);
    }
    const seconds = median(fulls.map((r) => r.seconds));
    breakdown['full'] = {
      seconds: round(seconds, 2),
      cpu_seconds: round(median(fulls.map((r) => r.cpu_seconds)), 2),
      rows_per_s: Math.round(facts.rows / seconds),
      peak_rss_mb: Math.max(...fulls.map((r) => r.peak_rss_mb)),
    };
    const rowsPerS = Math.round(facts.rows / seconds);
    const result: BenchResult = {
      scenario: `${kind}-parquet`,
      rows: facts.rows,
      seconds: round(seconds, 2),
      rows_per_s: rowsPerS,
      mb_per_s: round(facts.textBytes / 1e6 / seconds, 1),
      peak_rss_mb: Math.max(...fulls.map((r) => r.peak_rss_mb)),
      baseline: baselineName,
      baseline_seconds: baseline === null ? null : round(baseline, 2),
      baseline_rows_per_s: baseline === null ? null : Math.round(facts.rows / baseline),
      ratio: baseline === null ? null : round(baseline / seconds, 2),
      breakdown,
      verified: true,
      load_average: load,
    };
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
