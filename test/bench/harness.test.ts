/**
 * The bench harness end to end at a small size: generator-parquet and
 * csv-parquet each run the CLI (from source, to keep it short), read the
 * files back with DuckDB and print the JSON line's fields. The check itself
 * must catch a wrong answer. (The SQL and API scenarios go through the same
 * runCli/readBack; timing is never asserted here.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { expectedTotals, orderRow } from '../../bench/generator-source.js';
import { jsonLine, mismatches, type BenchResult } from '../../bench/harness.js';
import { runScenario } from '../../bench/index.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dativo-bench-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FIELDS = ['scenario', 'rows', 'seconds', 'rows_per_s', 'rows_per_cpu_s', 'mb_per_s', 'peak_rss_mb', 'baseline', 'baseline_rows_per_s', 'ratio', 'verified'];

function checkLine(r: BenchResult, scenario: string, rows: number): void {
  const line = JSON.parse(jsonLine(r)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(line).slice(0, FIELDS.length), FIELDS);
  assert.equal(line['scenario'], scenario);
  assert.equal(line['rows'], rows);
  assert.equal(line['verified'], true);
  for (const k of ['seconds', 'rows_per_s', 'rows_per_cpu_s', 'peak_rss_mb', 'baseline_rows_per_s']) assert.ok(typeof line[k] === 'number' && line[k] > 0, `${k} = ${String(line[k])}`);
  assert.equal(line['ratio'], Math.round((r.rows_per_s / r.baseline_rows_per_s!) * 100) / 100);
}

test('generator-parquet and csv-parquet run the CLI, and what they wrote is read back exactly', async () => {
  const log = (): void => undefined;
  const gen = await runScenario('generator-parquet', ['--rows', '2000', '--from-source', '--row-group-rows', '500'], log);
  checkLine(gen, 'generator-parquet', 2000);
  const csv = await runScenario('csv-parquet', ['--rows', '2000', '--from-source', '--data-dir', dir, '--compression', 'snappy'], log);
  checkLine(csv, 'csv-parquet', 2000);
  assert.equal(csv.options['compression'], 'snappy');
});

test('sheets-parquet runs the CLI on the Sheets fake in windows, and what it wrote is read back exactly', async () => {
  const r = await runScenario('sheets-parquet', ['--rows', '2000', '--window-rows', '700', '--from-source'], () => undefined);
  checkLine(r, 'sheets-parquet', 2000);
  assert.equal(r.extra?.['requests'], 2 + 3, 'Drive files.get, spreadsheets.get, 3 windows (the first with the header)');
});

test('the read-back check names every total that differs', () => {
  const want = expectedTotals(10);
  assert.deepEqual(mismatches({ ...want }, want), []);
  const wrong = mismatches({ ...want, sum_amount: '0.00' }, want);
  assert.equal(wrong.length, 1);
  assert.match(wrong[0]!, /^sum_amount: the files hold 0\.00, expected /);
  // The generator's totals follow its rows: ids beyond 2^53 summed exactly.
  const ids = Array.from({ length: 10 }, (_, i) => orderRow(i)['order_id'] as bigint);
  assert.equal(want.sum_id, ids.reduce((a, b) => a + b, 0n).toString());
  assert.ok(ids[7]! > 2n ** 53n);
});

test('a bad option is a usage error before anything runs', async () => {
  await assert.rejects(runScenario('csv-parquet', ['--rows', 'many'], () => undefined), /--rows must be an integer/);
  await assert.rejects(runScenario('csv-parquet', ['--compression', 'lz5'], () => undefined), /--compression must be/);
});
