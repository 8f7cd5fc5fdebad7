/**
 * bench/csv-columnar-sketch.ts at a small size: every mode reads every demo
 * record (quoted line breaks, doubled quotes, unicode, NULL vs ""), and the
 * columns it builds sum to what DuckDB reads from the same file, so the
 * figures recorded in docs/benchmarks.md are of a correct result; so does the
 * Parquet file of the `parquet` mode, read back. Timing is
 * never asserted.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateOrders } from '../../pipelines/demo/generate-orders.js';

const SKETCH = fileURLToPath(new URL('../../bench/csv-columnar-sketch.ts', import.meta.url));
const ROWS = 3000;

let dir: string;
let file: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dativo-sketch-test-'));
  file = path.join(dir, 'orders.csv');
  await generateOrders(file, ROWS);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(mode: string, ...extra: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', SKETCH, file, mode, ...extra], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

test('the sketch splits every record and its columns sum to DuckDB reading of the same file', () => {
  for (const mode of ['offsets', 'strings']) {
    const out = run(mode);
    assert.equal(out['rows'], ROWS, mode);
    assert.equal(out['fields'], (ROWS + 1) * 10, mode);
  }
  const cols = run('columns', '--check');
  assert.equal(cols['rows'], ROWS);
  assert.equal(cols['refused'], 0);
  assert.deepEqual(cols['mismatch'], undefined);
  assert.equal(cols['verified'], true);
  // Through our Parquet encoder: the file read back sums to DuckDB's reading of the CSV.
  const pq = run('parquet', '--check');
  assert.equal(pq['rows'], ROWS);
  assert.deepEqual(pq['mismatch'], undefined);
  assert.equal(pq['verified'], true);
});
