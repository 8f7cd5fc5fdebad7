/**
 * `generator-parquet`: N synthetic orders of the demo's column mix, already
 * canonical (bench/generator-source.ts, a connector of our own), → Parquet
 * through the CLI: the engine from validate to the files, without parsing —
 * the writer's ceiling. Baseline: the generator alone into a null sink
 * (bench/pipeline-child.ts `--mode source`), the cost of making the rows.
 *
 * The connector is transpiled (tsc, types stripped) to an ES module
 * in the run's folder, so the compiled CLI loads it as a user's connector
 * module. The check: count(*), sum(order_id) and sum(amount) read back by
 * DuckDB equal the totals computed from the generator's own functions.
 */
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ORDER_TOTALS, ordersJob } from './csv-parquet.js';
import { expectedTotals, orderRow } from './generator-source.js';
import { breakdown, loadNow, measuredRuns, result, ROOT, runChild, spawnMeasured, TSX, writeJob, type BenchResult, type CommonOptions, type RunRow } from './harness.js';

/** Bytes of the first `rows` rows as CSV text (unquoted): what mb_per_s counts. */
function textBytes(rows: number): number {
  let n = 0;
  for (let i = 0; i < rows; i++) {
    const r = orderRow(i);
    for (const k in r) n += Buffer.byteLength(r[k] === null ? '' : String(r[k])) + 1;
  }
  return n;
}

/** The connector as an ES module the compiled CLI can import (types stripped by tsc, no check: typecheck covers it). */
async function transpiledSource(dir: string): Promise<string> {
  const out = path.join(dir, 'connector');
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const args = ['--ignoreConfig', path.join(ROOT, 'bench/generator-source.ts'), '--outDir', out, '--rootDir', path.join(ROOT, 'bench'), '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', '--noCheck', '--noResolve', '--skipLibCheck'];
  const r = await spawnMeasured(process.execPath, [tsc, ...args]);
  if (r.code !== 0) throw new Error(`transpiling bench/generator-source.ts failed: ${r.stdout}${r.stderr}`);
  // .mjs: the folder has no package.json saying "type": "module".
  const file = path.join(dir, 'generator-source.mjs');
  await rename(path.join(out, 'generator-source.js'), file);
  return file;
}

export async function benchGeneratorParquet(o: CommonOptions, s: { breakdown: boolean }): Promise<BenchResult> {
  const load = loadNow();
  const rows = o.rows ?? 1_000_000;
  const dir = await mkdtemp(path.join(tmpdir(), 'dativo-bench-gen-'));
  try {
    const want = expectedTotals(rows);
    const source = await transpiledSource(dir);
    const job = await writeJob(dir, ordersJob(dir, { source_connector: source, source: { objects: [{ name: 'orders', rows }] } }, o));
    let baseline = null;
    if (!o.skipBaseline) {
      o.log('baseline: the generator alone → null sink ...');
      baseline = await runChild(['--import', TSX, path.join(ROOT, 'bench/pipeline-child.ts'), '--job', job, '--mode', 'source'], { cwd: dir });
      if (baseline.out['rows'] !== rows) throw new Error(`the generator made ${String(baseline.out['rows'])} rows of ${rows}`);
    }
    const stages: RunRow[] = s.breakdown ? (await breakdown(o, job, rows)).slice(1) : [];
    const fulls = await measuredRuns(o, job, dir, ORDER_TOTALS, { ...want, reported: String(rows), rejected: '0' });
    return result({
      scenario: 'generator-parquet',
      rows,
      fulls,
      bytes: textBytes(rows),
      baseline: 'the generator alone → null sink',
      baselineRun: baseline,
      other: stages,
      fullLabel: 'dativo run (generator) → Parquet',
      options: o,
      load,
      checked: "count(*), sum(order_id), sum(amount) = the generator's totals",
      extra: { mb_per_s_of: 'the rows as CSV text' },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
