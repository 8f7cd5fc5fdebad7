/**
 * `api-parquet`: the Stripe source against the Stripe-like fake
 * (test/fakes/stripe.ts) with injected latency and a rate limit, into local
 * Parquet, through the harness's CLI run (bench/harness.ts: the compiled
 * `dativo` in its own process, its peak RSS the kernel's VmHWM).
 *
 *   npm run bench -- api-parquet [--rows 60000] [--latency-ms 200] [--rps 25] [--windows 8]
 *
 * (`--rows` is the number of objects; `--objects` is the same.) Prints
 * requests/s used against the budget (over the span from the first to the
 * last request the fake saw), records/s against the ceiling (budget × page
 * size of 100, the baseline of the JSON line), the 429s the fake answered,
 * peak RSS, and checks the landed rows (DuckDB: count and distinct ids = the
 * seeded objects). Goals (issue 11): ≥ 95 % of the request budget, at most
 * one 429 per limit window, every record exactly once. Throws when the rows
 * are wrong.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startStripeFake } from '../test/fakes/stripe.js';
import { loadNow, mismatches, readBack, result, ROOT, runCli, targetKeys, type BenchResult, type CommonOptions } from './harness.js';

/** What the scenario takes besides the common options. */
export interface ApiOptions {
  latencyMs: number;
  rps: number;
  windows: number;
}

export async function benchApiParquet(o: CommonOptions, a: ApiOptions): Promise<BenchResult> {
  const load = loadNow();
  // 60,000 objects: a 26 s read at the defaults, long enough that the one round trip before the
  // windows start and the last partial second are not most of what it measures (docs/benchmarks.md).
  const objects = o.rows ?? 60_000;
  const { latencyMs, rps, windows } = a;
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
        `target: ${JSON.stringify({ warehouse: 'wh', ...targetKeys(o) })}`,
        'state: {path: state.json}',
        'schema_validation_mode: strict',
        'logging: {level: warn}',
        '',
      ].join('\n'),
    );
    o.log(`dativo run (stripe fake: ${objects} customers, ${latencyMs} ms, ${rps} requests/s, ${windows} windows) ...`);
    const run = await runCli(o, job, dir, { cpuProfile: true });
    if (run.exit_code !== 0) throw new Error(`dativo run exited ${run.exit_code}: ${JSON.stringify(run.error)}`);
    const seconds = run.wall;
    const peak = run;

    const reqs = fake.requests;
    const span = (reqs.at(-1)!.at - reqs[0]!.at) / 1000;
    const used = (reqs.length - 1) / span;
    const answered = reqs.length - fake.rateLimited;
    const records = run.rows_written;

    const got = await readBack(run.files, { n: 'count(*)', d: 'count(DISTINCT id)' });
    const n = Number(got['n']);
    const d = Number(got['d']);
    const exact = mismatches(got, { n: String(objects), d: String(objects) }).length === 0;

    const windowsOfLimit = Math.ceil(span);
    // Requests per second of the run, from its first request: where the budget went unused.
    const perSecond: number[] = [];
    for (const q of reqs) {
      const k = Math.floor((q.at - reqs[0]!.at) / 1000);
      perSecond[k] = (perSecond[k] ?? 0) + 1;
    }
    // What the fake's limit counts: requests in each wall-clock second; and the most in any second at all.
    const wall = new Map<number, number>();
    for (const q of reqs) {
      const k = Math.floor((performance.timeOrigin + q.at) / 1000);
      wall.set(k, (wall.get(k) ?? 0) + 1);
    }
    const mostWall = Math.max(...wall.values());
    let mostAny = 0;
    for (let i = 0, j = 0; i < reqs.length; i++) {
      while (reqs[i]!.at - reqs[j]!.at >= 1000) j++;
      mostAny = Math.max(mostAny, i - j + 1);
    }
    const whole = (reqs.length / run.wall / rps) * 100;
    const lines = [
      `scenario          api-parquet (stripe customers → Parquet, fake with ${latencyMs} ms latency, ${rps} requests/s)`,
      `objects           ${objects.toLocaleString('en-US')} (verified: ${Number(n).toLocaleString('en-US')} rows, ${Number(d).toLocaleString('en-US')} distinct ids${exact ? ', exactly once' : ' — WRONG'})`,
      `parallel windows  ${windows}`,
      `requests          ${reqs.length} (${answered} answered, ${fake.rateLimited} × 429) over ${span.toFixed(2)} s`,
      `requests/s        ${used.toFixed(2)} of ${rps} budget (${((100 * used) / rps).toFixed(1)} %)`,
      `records/s         ${(records / span).toFixed(0)} of ceiling ${rps * 100} (budget × page size 100) (${((100 * records) / span / (rps * 100)).toFixed(1)} %)`,
      `whole run         ${(reqs.length / run.wall).toFixed(2)} requests/s over the process's ${run.wall.toFixed(2)} s (${whole.toFixed(1)} % of the budget)`,
      `429s              ${fake.rateLimited} in ${windowsOfLimit} one-second limit windows`,
      `most in 1 s       ${mostWall} in one wall-clock second (what the fake's limit counts), ${mostAny} in any 1,000 ms`,
      `per second        ${Array.from(perSecond, (n) => n ?? 0).join(' ')} (requests in each second from the first)`,
      `wall seconds      ${seconds.toFixed(2)} (process start to exit, Parquet and state included)`,
      `peak RSS          ${peak.peak_rss_mb} MB (dativo process)`,
    ];
    if (!exact) throw new Error(`wrong output: ${n} rows, ${d} distinct ids, expected ${objects} of each\n${lines.join('\n')}`);
    return result({
      scenario: 'api-parquet',
      rows: objects,
      fulls: [run],
      bytes: 0,
      baseline: `ceiling: ${rps} requests/s budget × 100 per page`,
      baselineRun: { seconds: objects / (rps * 100), cpu_seconds: null, peak_rss_mb: null, rows_per_s: rps * 100 },
      fullLabel: 'dativo run (stripe fake) → Parquet',
      options: o,
      load,
      checked: 'count(*) and count(DISTINCT id) read by DuckDB = the seeded objects',
      notes: lines,
      extra: {
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
        exact,
        most_in_wall_second: mostWall,
        most_in_any_second: mostAny,
        whole_run_budget_used: Number((whole / 100).toFixed(3)),
      },
    });
  } finally {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}
