/**
 * Exactness through the whole CLI: a CSV with int64 beyond 2^53, decimals,
 * timestamps with offsets, dates, unicode, NULL (unquoted empty) and ''
 * (quoted empty) goes through `dativo run` into a plain Parquet dataset, and
 * DuckDB and hyparquet both read back every value exactly. A second run
 * writes nothing. Appending to the CSV makes the third run read only the
 * appended rows: the file resumes after the bytes read before (their sha256
 * still matches), so a 4-row file grown to 6 leaves 6 rows, no duplicates
 * (documented in docs/cli.md; this test pins it so the docs stay true).
 */
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { readParquetWithDuckDB, readParquetWithHyparquet } from '../../helpers/readers.js';
import type { Row } from '../../../lib/types.js';
import { dativo, jsonLine, parquetFiles, project, snapshot, type Project } from '../cli/helpers.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: exact
version: "1.0"
domain: core
schema:
  - {name: id, type: long, required: true}
  - {name: big, type: long}
  - {name: n, type: int}
  - {name: dbl, type: double}
  - {name: amt, type: "decimal(38,9)"}
  - {name: price, type: "decimal(12,2)"}
  - {name: flag, type: boolean}
  - {name: day, type: date}
  - {name: ts, type: timestamp}
  - {name: s, type: string}
primary_key: [id]
`;

const JOB = `tenant_id: core
source_connector: csv
asset_path: asset.yaml
source:
  files: [{path: data/exact.csv, object: exact}]
  incremental: {strategy: file_modified_time}
target:
  warehouse: wh
state: {path: state/exact.json}
reject_dir: rejects
schema_validation_mode: strict
`;

const CSV = [
  'id,big,n,dbl,amt,price,flag,day,ts,s',
  '1,9007199254740993,2147483647,0.1,12345678901234567890123456789.123456789,1.5,true,2024-02-29,2024-03-10T01:59:59.123456-08:00,héllo wörld 🚀 中文',
  '2,-9223372036854775808,-2147483648,-1.7976931348623157e308,-0.000000001,-0.01,false,1969-12-31,2024-01-01T00:00:00+05:30,""',
  '3,9223372036854775807,,,,,,,,',
  '4,0,0,3.14,0,99999999.99,false,1970-01-01,2000-01-01T00:00:00.000001Z,"multi\nline, ""quoted"""',
];

const utcMicros = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, us = 0): bigint => BigInt(Date.UTC(y, mo - 1, d, h, mi, s)) * 1000n + BigInt(us);
const days = (y: number, mo: number, d: number): number => Date.UTC(y, mo - 1, d) / 86_400_000;

/** The canonical values (lib/types.ts) each row must read back as. */
const EXPECTED: Row[] = [
  {
    id: 1n,
    big: 9007199254740993n,
    n: 2147483647,
    dbl: 0.1,
    amt: '12345678901234567890123456789.123456789',
    price: '1.50',
    flag: true,
    day: days(2024, 2, 29),
    ts: utcMicros(2024, 3, 10, 9, 59, 59, 123456),
    s: 'héllo wörld 🚀 中文',
  },
  {
    id: 2n,
    big: -9223372036854775808n,
    n: -2147483648,
    dbl: -1.7976931348623157e308,
    amt: '-0.000000001',
    price: '-0.01',
    flag: false,
    day: -1,
    ts: utcMicros(2023, 12, 31, 18, 30),
    s: '',
  },
  { id: 3n, big: 9223372036854775807n, n: null, dbl: null, amt: null, price: null, flag: null, day: null, ts: null, s: null },
  {
    id: 4n,
    big: 0n,
    n: 0,
    dbl: 3.14,
    amt: '0.000000000',
    price: '99999999.99',
    flag: false,
    day: 0,
    ts: utcMicros(2000, 1, 1, 0, 0, 0, 1),
    s: 'multi\nline, "quoted"',
  },
];
const COLUMNS = Object.keys(EXPECTED[0]!);

let pr: Project;
before(async () => {
  pr = await project('exact');
  await pr.write('asset.yaml', ASSET);
  await pr.write('job.yaml', JOB);
  await pr.write('data/exact.csv', `${CSV.join('\n')}\n`);
});
after(async () => {
  await pr?.cleanup();
});

const byId = (a: Row, b: Row): number => ((a['id'] as bigint) < (b['id'] as bigint) ? -1 : (a['id'] as bigint) > (b['id'] as bigint) ? 1 : 0);

async function readAll(files: string[]): Promise<{ duck: Row[]; hyp: Row[] }> {
  const duck: Row[] = [];
  const hyp: Row[] = [];
  for (const f of files) {
    duck.push(...(await readParquetWithDuckDB(f)).rows);
    hyp.push(...(await readParquetWithHyparquet(f)).rows);
  }
  return { duck: duck.sort(byId), hyp: hyp.sort(byId) };
}

it('every value round-trips exactly through dativo run; a second run writes nothing; an appended file yields only its new rows', async () => {
  // Run 1: everything, exactly.
  const r1 = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
  assert.equal(r1.code, 0, r1.stderr);
  const s1 = jsonLine(r1.stdout);
  assert.deepEqual([s1.objects[0]?.rows_read, s1.objects[0]?.rows_written, s1.objects[0]?.rows_rejected], [4, 4, 0]);
  const files1 = await parquetFiles(pr.p('wh'));
  assert.deepEqual(files1.map((f) => 'file://' + f), s1.objects[0]?.files);
  const { duck, hyp } = await readAll(files1);
  for (const [reader, rows] of [['duckdb', duck], ['hyparquet', hyp]] as const) {
    assert.equal(rows.length, EXPECTED.length, reader);
    rows.forEach((row, i) => {
      for (const c of COLUMNS) assert.deepEqual(row[c], EXPECTED[i]![c], `${reader}: id ${String(EXPECTED[i]!['id'])} column ${c}`);
      assert.equal(row['_dativo_run_id'], s1.run_id, reader);
      assert.equal(typeof row['_dativo_ingested_at'], 'bigint', reader);
    });
  }
  const types = (await readParquetWithDuckDB(files1[0]!)).types;
  assert.deepEqual(
    COLUMNS.map((c) => types[c]),
    ['BIGINT', 'BIGINT', 'INTEGER', 'DOUBLE', 'DECIMAL(38,9)', 'DECIMAL(12,2)', 'BOOLEAN', 'DATE', 'TIMESTAMP WITH TIME ZONE', 'VARCHAR'],
  );

  // Run 2: nothing new, nothing written, exit 0.
  const before2 = await snapshot(pr.p('wh'));
  const r2 = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
  assert.equal(r2.code, 0, r2.stderr);
  const s2 = jsonLine(r2.stdout);
  assert.deepEqual([s2.objects[0]?.rows_read, s2.objects[0]?.rows_written, s2.objects[0]?.files], [0, 0, []]);
  assert.deepEqual(await snapshot(pr.p('wh')), before2);

  // Run 3: rows appended to the same file. Its first bytes are those read
  // by run 1, so reading resumes after them: only rows 5 and 6.
  await appendFile(pr.p('data/exact.csv'), '5,5,5,5,5,5,true,2024-01-05,2024-01-05T05:05:05Z,five\n6,6,6,6,6,6,false,2024-01-06,2024-01-06T06:06:06Z,six\n');
  const r3 = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
  assert.equal(r3.code, 0, r3.stderr);
  const s3 = jsonLine(r3.stdout);
  assert.deepEqual([s3.objects[0]?.rows_read, s3.objects[0]?.rows_written], [2, 2]);
  const all = await readAll(await parquetFiles(pr.p('wh')));
  assert.deepEqual(
    all.duck.map((r) => r['id']),
    [1n, 2n, 3n, 4n, 5n, 6n],
    'an appended file resumes: the plain dataset holds every row once',
  );
  assert.deepEqual(all.hyp.map((r) => r['id']), all.duck.map((r) => r['id']));
  // The first run's file is untouched.
  for (const [f, h] of Object.entries(before2)) assert.equal((await snapshot(pr.p('wh')))[f], h, path.basename(f));
});
