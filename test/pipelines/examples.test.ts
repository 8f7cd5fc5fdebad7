/**
 * Docs that run: pipelines/examples/custom-transform.ts is executed the way
 * docs/library.md tells a user to, its Parquet output is read back with
 * DuckDB and hyparquet, and every code excerpt in docs/library.md must be
 * a verbatim part of the example file.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { maskEmail } from '../../pipelines/examples/custom-transform.js';
import { runJobFile } from '../../lib/index.js';
import { readParquetWithDuckDB, readParquetWithHyparquet } from '../helpers/readers.js';

const repo = path.resolve(import.meta.dirname, '../..');
const example = path.join(repo, 'pipelines/examples/custom-transform.ts');
let out: string;

before(async () => {
  out = await mkdtemp(path.join(tmpdir(), 'dativo-example-'));
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const micros = (iso: string): bigint => BigInt(Date.parse(iso)) * 1000n;

it('maskEmail keeps the domain and a hash, hides the local part, keeps NULL', () => {
  assert.match(maskEmail('ana.lima@example.com')!, /^a\*\*\*@example\.com#[0-9a-f]{8}$/);
  assert.equal(maskEmail('Ana.Lima@example.com')!.slice(-8), maskEmail('ana.lima@example.com')!.slice(-8), 'case-insensitive hash');
  assert.equal(maskEmail(null), null);
  assert.equal(maskEmail('no-at-sign'), '***');
});

it('custom-transform.ts runs as documented: masked, exact Parquet plus a reject for the bad row', async () => {
  const r = await run([example, out]);
  assert.equal(r.code, 0, r.stderr);
  const wrote = /^wrote (file:\/\/\S+\.parquet) \(4 rows, \d+ bytes\)$/m.exec(r.stdout);
  assert.ok(wrote, r.stdout);
  const file = fileURLToPath(wrote[1]!);
  assert.ok(file.startsWith(path.join(out, 'customers')), file);

  const expected = [
    { customer_id: 1n, email: maskEmail('ana.lima@example.com'), name: 'Ana Lima', lifetime_value: '1250.50', signed_up_at: micros('2024-01-15T08:30:00Z') },
    { customer_id: 2n, email: maskEmail('bob@example.org'), name: 'Bob Smith', lifetime_value: '0.00', signed_up_at: micros('2024-02-01T00:00:00Z') },
    { customer_id: 3n, email: null, name: 'Chloé Dubois', lifetime_value: '99.99', signed_up_at: micros('2024-03-10T17:00:00Z') },
    { customer_id: 5n, email: maskEmail('eve@example.com'), name: 'Eve', lifetime_value: '7.25', signed_up_at: micros('2024-04-01T08:00:00Z') },
  ];
  for (const [reader, rows] of [
    ['duckdb', (await readParquetWithDuckDB(file)).rows],
    ['hyparquet', (await readParquetWithHyparquet(file)).rows],
  ] as const) {
    assert.deepEqual(rows, expected, reader);
  }
  const text = await readFile(file);
  assert.ok(!text.includes('ana.lima@'), 'no clear-text address in the file');

  const rejected = /^rejected 1 row\(s\): (\S+)$/m.exec(r.stdout);
  assert.ok(rejected, r.stdout);
  const lines = (await readFile(rejected[1]!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { location: { line: number }; fields: string[] });
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.location.line, 5);
  assert.deepEqual(lines[0]!.fields, ['signed_up_at']);
});

it('run-job-file.ts runs as documented: the redacted summary, exit 1 (one reject), the dataset in OUT_DIR', async () => {
  const dir = path.join(out, 'run-job-file');
  const r = await run([path.join(repo, 'pipelines/examples/run-job-file.ts'), dir]);
  assert.equal(r.code, 1, r.stderr);
  const s = JSON.parse(r.stdout) as { exit_code: number; job: string; objects: { name: string; rows_written: number; rows_rejected: number; files: string[] }[] };
  assert.equal(s.exit_code, 1);
  assert.equal(s.job, 'customers_csv');
  assert.deepEqual(s.objects.map((o) => [o.name, o.rows_written, o.rows_rejected]), [['customers', 4, 1]]);
  const file = fileURLToPath(s.objects[0]!.files[0]!);
  assert.ok(file.startsWith(dir), file);
  assert.equal((await readParquetWithHyparquet(file)).rows.length, 4);
});

it('ndjson-connector.ts: a connector of your own runs its job, and its options are checked when the job loads', async () => {
  const dir = path.join(out, 'ndjson');
  const env = { ...process.env, EXAMPLES_WAREHOUSE: dir, DATIVO_STATE_DIR: path.join(dir, 'state'), DATIVO_REJECT_DIR: path.join(dir, 'rejects') };
  const s = await runJobFile(path.join(repo, 'pipelines/examples/ndjson_job.yaml'), { env });
  assert.equal(s.exit_code, 0, JSON.stringify(s.error));
  assert.deepEqual(s.objects.map((o) => [o.name, o.rows_written]), [['customers', 2]]);
  const { rows } = await readParquetWithHyparquet(fileURLToPath(s.objects[0]!.files[0]!));
  assert.deepEqual(
    rows.map((r) => [r['customer_id'], r['lifetime_value'], r['signed_up_at']]),
    [
      [1n, '1250.50', micros('2024-01-15T08:30:00Z')],
      [2n, '0.00', micros('2024-02-01T00:00:00Z')],
    ],
  );

  // A typo and an entry without its path: both reported, nothing created.
  const bad = path.join(out, 'ndjson-bad.yaml');
  const job = (await readFile(path.join(repo, 'pipelines/examples/ndjson_job.yaml'), 'utf8'))
    .replace('./ndjson-connector.ts', path.join(repo, 'pipelines/examples/ndjson-connector.ts'))
    .replace('assets/customers.yaml', path.join(repo, 'pipelines/examples/assets/customers.yaml'))
    .replace('    - {object: customers, path: data/customers.ndjson}', '    - {object: customers}\n  streems: []');
  await writeFile(bad, job);
  const b = await runJobFile(bad, { env: { ...env, EXAMPLES_WAREHOUSE: path.join(out, 'ndjson-bad-wh') } });
  assert.equal(b.exit_code, 3);
  const problems = (b.error?.problems ?? []) as { key: string; message: string }[];
  assert.deepEqual(problems.map((p) => p.key).sort(), ['source.streams[0].path', 'source.streems']);
  assert.match(problems.find((p) => p.key === 'source.streems')!.message, /did you mean "streams"\?\); valid options: .*\bstreams\b/);
  assert.equal(existsSync(path.join(out, 'ndjson-bad-wh')), false);
});

it('every code excerpt in docs/library.md is verbatim in the example it quotes', async () => {
  const doc = await readFile(path.join(repo, 'docs/library.md'), 'utf8');
  const blocks = [...doc.matchAll(/<!-- from: (\S+) -->\n```ts\n([\s\S]*?)```/g)];
  assert.ok(blocks.length >= 3, 'the walkthrough quotes the example');
  for (const [, source, code] of blocks) {
    const text = await readFile(path.join(repo, source!), 'utf8');
    assert.ok(text.includes(code!), `docs/library.md excerpt not found in ${source}:\n${code}`);
  }
});
