/**
 * `postgres-parquet` / `mysql-parquet`: a database table → local Parquet,
 * through the harness (bench/harness.ts), against the database's own CLI dump
 * as the baseline measured in the same run.
 *
 * Steps: build (or reuse) `orders_<rows>` (bench/sql-setup.ts); run the
 * baseline (`psql \copy … to /dev/null`, `mysql --quick -e 'select …' >
 * /dev/null`); with `--breakdown` the stage costs; the measured runs of the
 * CLI; check the files (DuckDB count and sum(id) against the table).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mysqlBenchDb, pgBenchDb, setupMysqlOrders, setupPgOrders, type BenchDb, type TableFacts } from './sql-setup.js';
import { breakdown, loadNow, measuredRuns, result, ROOT, spawnMeasured, targetKeys, writeJob, type BenchResult, type CommonOptions, type RunRow } from './harness.js';

/** What the SQL scenarios take besides the common options. */
export interface SqlOptions {
  /** Rebuild the table even if it exists with the right row count. */
  fresh: boolean;
  /** Also time the source alone, + validate, + Arrow buffers. */
  breakdown: boolean;
  /** Postgres portal batch size (source.connection.batch_size). */
  batchSize?: number;
}

async function pgBaseline(db: BenchDb, table: string): Promise<number> {
  const r = await spawnMeasured('sh', ['-c', `psql -h ${db.host} -p ${db.port} -U ${db.user} -d ${db.database} -X -q -c "\\copy (select * from ${table}) to /dev/null"`], {
    env: db.password ? { PGPASSWORD: db.password } : {},
  });
  if (r.code !== 0) throw new Error(`psql baseline failed: ${r.stderr}`);
  return r.seconds;
}

async function mysqlBaseline(db: BenchDb, table: string): Promise<number> {
  const r = await spawnMeasured('sh', ['-c', `mysql -h${db.host} -P${db.port} -u${db.user} --quick -e 'select * from ${table}' ${db.database} > /dev/null`], {
    env: db.password ? { MYSQL_PWD: db.password } : {},
  });
  if (r.code !== 0) throw new Error(`mysql baseline failed: ${r.stderr}`);
  return r.seconds;
}

function sqlJob(dir: string, kind: 'postgres' | 'mysql', db: BenchDb, table: string, o: CommonOptions, s: SqlOptions): Record<string, unknown> {
  return {
    tenant_id: 'bench',
    source_connector: kind,
    asset_path: path.join(ROOT, 'schemas/acme/v1.0', kind === 'postgres' ? 'pg_orders.yaml' : 'mysql_orders.yaml'),
    sync_mode: 'full_refresh',
    source: {
      tables: [{ name: kind === 'postgres' ? `public.${table}` : table, object: 'orders' }],
      connection: { host: db.host, port: db.port, user: db.user, database: db.database, ...(db.password ? { password: db.password } : {}), ...(s.batchSize ? { batch_size: s.batchSize } : {}) },
    },
    target: { warehouse: path.join(dir, 'warehouse'), ...targetKeys(o) },
    state: { path: path.join(dir, 'state.json') },
    reject_dir: path.join(dir, 'rejects'),
    logging: { level: 'warn' },
  };
}

/** Run one SQL → Parquet scenario. Throws when the output does not match the table. */
export async function benchSqlParquet(kind: 'postgres' | 'mysql', o: CommonOptions, s: SqlOptions): Promise<BenchResult> {
  const load = loadNow();
  const rows = o.rows ?? 2_000_000;
  const db = kind === 'postgres' ? pgBenchDb() : mysqlBenchDb();
  const facts: TableFacts = kind === 'postgres' ? await setupPgOrders(db, rows, s.fresh, o.log) : await setupMysqlOrders(db, rows, s.fresh, o.log);
  const baselineName = kind === 'postgres' ? `psql \\copy (select * from ${facts.table}) to /dev/null` : `mysql --quick -e 'select * from ${facts.table}' > /dev/null`;
  let baseline: number | null = null;
  if (!o.skipBaseline) {
    o.log(`baseline: ${baselineName}`);
    baseline = kind === 'postgres' ? await pgBaseline(db, facts.table) : await mysqlBaseline(db, facts.table);
  }
  const dir = await mkdtemp(path.join(tmpdir(), `dativo-bench-${kind}-`));
  try {
    const job = await writeJob(dir, sqlJob(dir, kind, db, facts.table, o, s));
    const stages: RunRow[] = s.breakdown ? await breakdown(o, job, facts.rows) : [];
    const fulls = await measuredRuns(o, job, dir, { rows: 'count(*)', sum_id: 'sum(id)' }, { rows: String(facts.rows), sum_id: facts.sumId, reported: String(facts.rows), rejected: '0' });
    return result({
      scenario: `${kind}-parquet`,
      rows: facts.rows,
      fulls,
      bytes: facts.textBytes,
      baseline: baselineName,
      baselineRun: baseline === null ? null : { seconds: baseline, cpu_seconds: null, peak_rss_mb: null },
      other: stages,
      fullLabel: 'dativo run → Parquet',
      options: o,
      load,
      checked: 'count(*) and sum(id) of the Parquet files, read by DuckDB, = the table',
      extra: { mb_per_s_of: 'the table as text', ...(s.batchSize ? { batch_size: s.batchSize } : {}) },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
