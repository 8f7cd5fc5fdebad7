/**
 * The million-tie case of issue 8 at full size, on the local Postgres,
 * through the `dativo` CLI (run from source under tsx) with the embedded
 * Iceberg catalog: N rows sharing one updated_at, then three runs each
 * adding 10 rows at that same timestamp (inside lag_seconds, so the tie is
 * still open), then the run after the lag that reads them all, and one more.
 * For comparison, an ordinary run of N rows with distinct timestamps.
 * Prints, per run: exit code, rows written, peak RSS (VmHWM, via
 * bench/peak-rss.cjs), state-file size, largest metadata.json, --json size.
 *
 *   node --import tsx bench/ties.ts [--rows 1000000]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rowsArg = process.argv.indexOf('--rows');
const N = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : 1_000_000;
const PG = { host: process.env['PGHOST'] ?? '127.0.0.1', port: Number(process.env['PGPORT'] ?? 5432), user: process.env['PGUSER'] ?? 'postgres' };

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: ties
version: "1.0"
domain: bench
schema:
  - {name: id, type: long, required: true}
  - {name: v, type: string}
  - {name: updated_at, type: timestamp}
primary_key: [id]
team: {owner: bench@example.com}
`;

async function largest(dir: string, suffix: string): Promise<number> {
  let max = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith(suffix)) max = Math.max(max, (await stat(p)).size);
    }
  };
  await walk(dir);
  return max;
}

function cli(dir: string): Promise<{ code: number | null; stdout: string; stderr: string; peakMb: number }> {
  const stats = path.join(dir, 'stats.json');
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--require', path.join(ROOT, 'bench/peak-rss.cjs'), '--import', import.meta.resolve('tsx'), path.join(ROOT, 'lib/cli/bin.ts'), 'run', 'job.yaml', '--json'],
      { cwd: dir, env: { ...process.env, DATIVO_BENCH_STATS: stats }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    child.on('error', reject);
    child.on('close', (code) => {
      readFile(stats, 'utf8').then(
        (t) => resolve({ code, stdout, stderr, peakMb: (JSON.parse(t) as { peak_rss_mb: number }).peak_rss_mb }),
        () => resolve({ code, stdout, stderr, peakMb: NaN }),
      );
    });
  });
}

async function main(): Promise<void> {
  const database = `dativo_ties_${process.pid}`;
  const admin = new pg.Client({ ...PG, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const db = new pg.Client({ ...PG, database });
  await db.connect();
  const dir = await mkdtemp(path.join(tmpdir(), 'dativo-ties-'));
  const out: Record<string, unknown>[] = [];
  try {
    await writeFile(path.join(dir, 'ties.asset.yaml'), ASSET);
    const job = (table: string, lag: number): string =>
      JSON.stringify({
        tenant_id: 'bench',
        source_connector: 'postgres',
        target_connector: 'iceberg',
        asset_path: 'ties.asset.yaml',
        source: { tables: [{ name: `public.${table}`, object: table }], connection: { ...PG, database }, incremental: { strategy: 'updated_at', cursor_field: 'updated_at', lag_seconds: lag } },
        target: { warehouse: `wh-${table}` },
        state: { path: `${table}.state.json` },
      });
    const measure = async (label: string, table: string, lag: number): Promise<void> => {
      await writeFile(path.join(dir, 'job.yaml'), job(table, lag));
      const r = await cli(dir);
      const summary = r.stdout.trim() === '' ? undefined : (JSON.parse(r.stdout.trim().split('\n').pop()!) as { objects: { rows_written: number }[] });
      const row = {
        run: label,
        exit: r.code,
        rows_written: summary?.objects[0]?.rows_written,
        peak_rss_mb: r.peakMb,
        state_bytes: (await stat(path.join(dir, `${table}.state.json`)).catch(() => ({ size: 0 }))).size,
        max_metadata_json_bytes: await largest(path.join(dir, `wh-${table}`), '.metadata.json'),
        json_line_bytes: r.stdout.length,
      };
      out.push(row);
      console.error(JSON.stringify(row));
      if (r.code !== 0) throw new Error(`${label}: exit ${r.code}\n${r.stderr}`);
    };

    // Ordinary: N rows, distinct timestamps.
    await db.query('CREATE TABLE plain (id bigint PRIMARY KEY, v text, updated_at timestamptz)');
    await db.query(`INSERT INTO plain SELECT i, 'v' || i, now() - interval '1 day' + i * interval '1 microsecond' FROM generate_series(1, ${N}) i`);
    await measure(`ordinary ${N} rows`, 'plain', 0);

    // Ties: N rows at one timestamp inside the lag, three runs adding 10 at it, then the run after the lag.
    await db.query('CREATE TABLE ties (id bigint PRIMARY KEY, v text, updated_at timestamptz)');
    const tie = (await db.query<{ t: string }>("SELECT (now() - interval '30 seconds')::text AS t")).rows[0]!.t;
    await db.query(`INSERT INTO ties SELECT i, 'v' || i, '${tie}' FROM generate_series(1, ${N}) i`);
    let next = N + 1;
    for (let k = 1; k <= 3; k++) {
      await measure(`tie run ${k} (tie inside the lag)`, 'ties', 600);
      await db.query(`INSERT INTO ties SELECT i, 'v' || i, '${tie}' FROM generate_series(${next}, ${next + 9}) i`);
      next += 10;
    }
    await measure('tie run 4 (after the lag)', 'ties', 0);
    await measure('tie run 5', 'ties', 0);
    console.log(JSON.stringify({ rows: N, runs: out }));
  } finally {
    await db.end();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
