/**
 * `api-parquet`: the Stripe source against the Stripe-like fake
 * (test/fakes/stripe.ts) with injected latency and a rate limit, into local
 * Parquet, through the `dativo` CLI in its own process (its peak RSS is the
 * kernel's VmHWM, bench/peak-rss.cjs).
 *
 *   npm run bench -- api-parquet [--objects 15000] [--latency-ms 200] [--rps 25] [--windows 8]
 *
 * Prints requests/s used against the budget (over the span from the first
 * to the last request the fake saw), records/s against the ceiling
 * (budget × page size of 100), the 429s the fake answered, peak RSS, and
 * checks the landed rows (DuckDB: count and distinct ids = the seeded
 * objects). Goals (issue 11): ≥ 95 % of the request budget, at most one 429
 * per limit window, every record exactly once. Last line: one JSON object.
 * Exit 1 when the rows are wrong.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { startStripeFake } from '../test/fakes/stripe.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '15000' },
    'latency-ms': { type: 'string', default: '200' },
    rps: { type: 'string', default: '25' },
    windows: { type: 'string', default: '8' },
  },
});
const objects = Number(values.objects);
const latencyMs = Number(values['latency-ms']);
const rps = Number(values.rps);
const windows = Number(values.windows);

const fake = await startStripeFake({ latencyMs, rateLimit: rps });
const dir = await mkdtemp(path.join(tmpdir(), 'dativo-bench-api-'));
try {
  fake.seed('customers', objects, { perSecond: 37 });
  await mkdir(path.join(dir, 'assets'));
  await copyFile(path.join(ROOT, 'schemas/stripe/v1.0/customers.yaml'), path.join(dir, 'assets/customers.yaml'));
  const job = path.join(dir, 'job.yaml');
  await writeFile(
    job,
    [
      'tenant_id: bench',
      'source_connector: stripe',
      'target_connector: parquet',
      'asset_path: assets/customers.yaml',
      'source:',
      '  objects: [customers]',
      `  parallel_windows: ${windows}`,
      '  incremental: {strategy: created, cursor_field: created, lag_seconds: 0}',
      '  connection:',
      '    api_key: sk_test_fake_4242',
      `    base_url: ${fake.url}`,
      `    test_requests_per_second: ${rps}`,
      '  rate_limits:',
      `    requests_per_second: ${rps}`,
      '    burst: 1',
      `    concurrency: ${windows * 2}`,
      'target: {warehouse: wh}',
      'state: {path: state.json}',
      'schema_validation_mode: strict',
      'logging: {level: warn}',
      '',
    ].join('\n'),
  );
  const stats = path.join(dir, 'stats.json');
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--require', path.join(ROOT, 'bench/peak-rss.cjs'), '--import', import.meta.resolve('tsx'), path.join(ROOT, 'lib/cli/bin.ts'), 'run', job, '--json'], {
    cwd: dir,
    env: { ...process.env, DATIVO_BENCH_STATS: stats },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`dativo run exited ${code}: ${out}`);
  const summary = JSON.parse(out.trim().split('\n').at(-1)!) as { objects: { files: string[]; rows_written: number; api_calls?: number }[] };
  const peak = JSON.parse(await readFile(stats, 'utf8')) as { peak_rss_mb: number };

  const reqs = fake.requests;
  const span = (reqs.at(-1)!.at - reqs[0]!.at) / 1000;
  const used = (reqs.length - 1) / span;
  const answered = reqs.length - fake.rateLimited;
  const records = summary.objects[0]!.rows_written;

  const files = summary.objects[0]!.files.map((u) => new URL(u).pathname);
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  const list = files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ');
  const r = await con.runAndReadAll(`SELECT count(*)::BIGINT AS n, count(DISTINCT id)::BIGINT AS d FROM read_parquet([${list}])`);
  const [n, d] = r.getRows()[0]! as [bigint, bigint];
  con.closeSync();
  const exact = Number(n) === objects && Number(d) === objects;

  const windowsOfLimit = Math.ceil(span);
  const lines = [
    `scenario          api-parquet (stripe customers → Parquet, fake with ${latencyMs} ms latency, ${rps} requests/s)`,
    `objects           ${objects.toLocaleString('en-US')} (verified: ${Number(n).toLocaleString('en-US')} rows, ${Number(d).toLocaleString('en-US')} distinct ids${exact ? ', exactly once' : ' — WRONG'})`,
    `parallel windows  ${windows}`,
    `requests          ${reqs.length} (${answered} answered, ${fake.rateLimited} × 429) over ${span.toFixed(2)} s`,
    `requests/s        ${used.toFixed(2)} of ${rps} budget (${((100 * used) / rps).toFixed(1)} %)`,
    `records/s         ${(records / span).toFixed(0)} of ceiling ${rps * 100} (budget × page size 100) (${((100 * records) / span / (rps * 100)).toFixed(1)} %)`,
    `429s              ${fake.rateLimited} in ${windowsOfLimit} one-second limit windows`,
    `wall seconds      ${seconds.toFixed(2)} (process start to exit, Parquet and state included)`,
    `peak RSS          ${peak.peak_rss_mb} MB (dativo process)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  process.stdout.write(
    JSON.stringify({
      scenario: 'api-parquet',
      objects,
      latency_ms: latencyMs,
      budget_rps: rps,
      windows,
      requests: reqs.length,
      rate_limited: fake.rateLimited,
      span_seconds: Number(span.toFixed(3)),
      requests_per_s: Number(used.toFixed(2)),
      budget_used: Number((used / rps).toFixed(3)),
      records_per_s: Math.round(records / span),
      ceiling_records_per_s: rps * 100,
      peak_rss_mb: peak.peak_rss_mb,
      exact,
    }) + '\n',
  );
  if (!exact) process.exitCode = 1;
} finally {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
}
