/**
 * The columnar CSV path (bytes → Arrow columns, lib/stages/columnar.ts)
 * against the record path (`DATIVO_COLUMNAR=0`) on one awkward file
 * through the CLI into an Iceberg table: the Parquet read back by DuckDB
 * (every column, exactly), the reject files and the manifest's column
 * statistics (bounds, null and value counts) are the same, and the values
 * are the right ones. And the planner: columnar for a plain CSV run, records
 * when a cursor tracker needs them.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readAvroFile } from '../../../lib/iceberg/avro.js';
import { readManifestList } from '../../../lib/iceberg/manifest.js';
import { ancestry } from '../../../lib/iceberg/metadata.js';
import type { Row } from '../../../lib/types.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { dativo, jsonLine, logLines, parquetFiles, project, type Project } from '../cli/helpers.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: awkward
version: "1.0"
domain: core
schema:
  - {name: id, type: long, required: true}
  - {name: big, type: long}
  - {name: n, type: int}
  - {name: amt, type: "decimal(12,2)"}
  - {name: ts, type: timestamp}
  - {name: day, type: date}
  - {name: flag, type: boolean}
  - {name: s, type: string}
primary_key: [id]
`;

const job = (name: string, extra = ''): string => `tenant_id: core
source_connector: csv
target_connector: iceberg
asset_path: asset.yaml
source:
  files: [{path: data/awkward.csv, object: awkward}]
  incremental: {strategy: ${extra === '' ? 'file_modified' : `id, cursor_field: id`}}
  settle_seconds: 0
target:
  warehouse: wh-${name}
  batch_rows: 700
state: {path: state/${name}.json}
reject_dir: rejects-${name}
schema_validation_mode: warn
`;

/** Lines 2.. of the file (line 1 is the header), CRLF unless said. */
const AWKWARD: (string | Buffer)[] = [
  '1,9007199254740993,-2147483648,9999999999.99,2024-03-10T01:59:59.123456-08:00,2024-02-29,true,"héllo, ""wörld"" 🚀"\r\n',
  '2,-9223372036854775808,2147483647,-0.5,2024-03-10T10:00:00Z,0001-01-01,false,""\r\n',
  '3,,,,,,,\r\n',
  '4,9223372036854775807,0,1.005,2024-01-01T00:00:00Z,2024-01-01,true,out of scale\r\n',
  '5,1,1,12345678901.00,2024-01-01T00:00:00Z,2024-01-01,true,out of precision\r\n',
  '6,1,2147483648,1.00,2024-01-01T00:00:00Z,2024-01-01,true,int overflow\r\n',
  '7,1,1,1.00,2024-13-01T00:00:00Z,2024-01-01,true,bad month\r\n',
  '8,1,1\r\n',
  '9,1,1,1.00,2024-01-01T00:00:00Z,2024-01-01,true,a"b\r\n',
  '10,1,1,1.00,2024-01-01T00:00:00.5Z,2024-01-01,false,"line1\r\nline2\nline3"\n',
  ',1,1,1.00,2024-01-01T00:00:00Z,2024-01-01,true,no id\r\n',
  Buffer.concat([Buffer.from('12,1,1,1.00,2024-01-01T00:00:00Z,2024-01-01,true,bad '), Buffer.from([0xff, 0xfe]), Buffer.from('\r\n')]),
  '13,+5, 12 ,7,2024-01-01 00:00:00,2024-01-01,yes,coercer path\r\n',
  '14,-0,-0,0.1,2024-01-01T00:00:00+05:30,9999-12-31,FALSE,  spaces  \n',
  '15,123456789012345678,1,-9999999999.99,1970-01-01T00:00:00.000001Z,1970-01-01,true,NULL\r\n',
  '16,2,2,2,not a time,2024-01-01,true,bad ts\r\n',
  '17,3,3,3,2024-01-01T00:00:00Z,2024-01-01,maybe,bad flag\r\n',
];

function file(): Buffer {
  const parts: Buffer[] = [Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('id,big,n,amt,ts,day,flag,s\r\n')];
  for (const l of AWKWARD) parts.push(typeof l === 'string' ? Buffer.from(l) : l);
  // Enough plain rows for several batches (700) and two kinds of line break.
  for (let i = 100; i < 2600; i++) {
    const s = i % 4 === 0 ? '""' : i % 4 === 1 ? '' : i % 4 === 2 ? `"q ""${i}"" ,x"` : `zoë ${i} 中文`;
    parts.push(Buffer.from(`${i},${BigInt(i) * 3074457345618258n},${i - 1300},${i}.${String(i % 100).padStart(2, '0')},2024-06-01T12:00:00.${String(i).padStart(6, '0')}+02:00,2024-06-${String((i % 30) + 1).padStart(2, '0')},${i % 3 === 0},${s}${i % 2 === 0 ? '\r\n' : '\n'}`));
  }
  return Buffer.concat(parts);
}

const byId = (a: Row, b: Row): number => ((a['id'] as bigint) < (b['id'] as bigint) ? -1 : 1);

async function rows(dir: string): Promise<Row[]> {
  const out: Row[] = [];
  for (const f of await parquetFiles(dir)) {
    for (const r of (await readParquetWithDuckDB(f)).rows) {
      const { _dativo_run_id: _r, _dativo_ingested_at: _t, ...rest } = r;
      out.push(rest);
    }
  }
  return out.sort(byId);
}

/** Every reject as written, minus what names the run. */
async function rejects(dir: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const f of entries.filter((e) => e.isFile())) {
    for (const l of (await readFile(path.join(f.parentPath ?? f.path, f.name), 'utf8')).split('\n')) {
      if (l === '') continue;
      const j = JSON.parse(l) as Record<string, unknown>;
      for (const k of Object.keys(j)) if (/run_id|^at$|_at$|time/.test(k)) delete j[k];
      out.push(j);
    }
  }
  const line = (r: Record<string, unknown>): number => Number((r['location'] as { line?: number } | undefined)?.line);
  return out.sort((a, b) => line(a) - line(b));
}

/** The data files' column statistics in the table's current snapshot, as the manifests hold them. */
async function stats(wh: string): Promise<unknown[]> {
  const meta = (await readdir(wh, { recursive: true })).filter((f) => f.endsWith('.metadata.json')).sort();
  assert.ok(meta.length > 0, `metadata under ${wh}`);
  const md = JSON.parse(await readFile(path.join(wh, meta.at(-1)!), 'utf8')) as Parameters<typeof ancestry>[0];
  const snap = ancestry(md)[0]!;
  // The system columns (run id, ingest time) differ from run to run by design.
  const schemas = (md as unknown as { schemas: { fields: { id: number; name: string }[] }[] }).schemas;
  const system = new Set(schemas.flatMap((s) => s.fields.filter((f) => f.name.startsWith('_dativo_')).map((f) => f.id)));
  // Plain objects (the Avro reader's records are of a class per file), bytes as hex.
  const own = (v: unknown): unknown =>
    Array.isArray(v)
      ? v
          .filter((e: { key: number }) => !system.has(e.key))
          .map((e: { key: number; value: unknown }) => ({ key: e.key, value: e.value instanceof Uint8Array ? Buffer.from(e.value).toString('hex') : e.value }))
      : v;
  const out: unknown[] = [];
  for (const m of readManifestList(await readFile(fileURLToPath(snap['manifest-list'])))) {
    for (const rec of readAvroFile(await readFile(fileURLToPath(m.manifest_path))).records) {
      const df = (rec as { data_file: Record<string, unknown> }).data_file;
      out.push({
        record_count: df['record_count'],
        value_counts: own(df['value_counts']),
        null_value_counts: own(df['null_value_counts']),
        nan_value_counts: own(df['nan_value_counts']),
        lower_bounds: own(df['lower_bounds']),
        upper_bounds: own(df['upper_bounds']),
      });
    }
  }
  return out.sort((a, b) => JSON.stringify(a, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)).localeCompare(JSON.stringify(b, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))));
}

function textPath(stderr: string): unknown {
  return logLines(stderr).find((l) => l['event_type'] === 'object_started')?.['text_path'];
}

describe('csv: the columnar path against the record path', () => {
  let pr: Project;
  before(async () => {
    pr = await project('csv-columnar');
    await pr.write('asset.yaml', ASSET);
    await pr.write('job-records.yaml', job('records'));
    await pr.write('job-columnar.yaml', job('columnar'));
    await pr.write('job-cursor.yaml', job('cursor', 'cursor'));
    await pr.write('data/awkward.csv', file());
  });
  after(async () => {
    await pr?.cleanup();
  });

  it('writes the same Parquet, rejects and manifest statistics as the record path, and the right values', async () => {
    const rec = await dativo(['run', 'job-records.yaml', '--json', '--log-level', 'info'], { cwd: pr.dir, env: { DATIVO_COLUMNAR: '0' } });
    const col = await dativo(['run', 'job-columnar.yaml', '--json', '--log-level', 'info'], { cwd: pr.dir });
    assert.equal(rec.code, 1, rec.stderr); // partial: rejects
    assert.equal(col.code, 1, col.stderr);
    assert.equal(textPath(rec.stderr), 'records');
    assert.equal(textPath(col.stderr), 'columnar');
    const [a, b] = [jsonLine(rec.stdout).objects[0]!, jsonLine(col.stdout).objects[0]!];
    assert.deepEqual([b.rows_read, b.rows_written, b.rows_rejected], [a.rows_read, a.rows_written, a.rows_rejected]);
    assert.deepEqual([b.rows_read, b.rows_rejected], [2517, 10]);

    const [ra, rb] = [await rows(pr.p('wh-records')), await rows(pr.p('wh-columnar'))];
    assert.equal(rb.length, 2507);
    assert.deepEqual(rb, ra);
    const by = new Map(rb.map((r) => [r['id'], r]));
    assert.deepEqual(by.get(1n), {
      id: 1n,
      big: 9007199254740993n,
      n: -2147483648,
      amt: '9999999999.99',
      ts: BigInt(Date.parse('2024-03-10T09:59:59Z')) * 1000n + 123456n,
      day: 19782,
      flag: true,
      s: 'héllo, "wörld" 🚀',
    });
    assert.deepEqual(by.get(2n), { id: 2n, big: -9223372036854775808n, n: 2147483647, amt: '-0.50', ts: BigInt(Date.parse('2024-03-10T10:00:00Z')) * 1000n, day: -719162, flag: false, s: '' });
    assert.deepEqual(by.get(3n), { id: 3n, big: null, n: null, amt: null, ts: null, day: null, flag: null, s: null });
    assert.equal(by.get(10n)?.['s'], 'line1\r\nline2\nline3');
    assert.equal(by.get(10n)?.['ts'], BigInt(Date.parse('2024-01-01T00:00:00Z')) * 1000n + 500000n);
    assert.deepEqual([by.get(13n)?.['big'], by.get(13n)?.['n'], by.get(13n)?.['flag'], by.get(13n)?.['amt']], [5n, 12, true, '7.00']);
    assert.deepEqual([by.get(14n)?.['big'], by.get(14n)?.['n'], by.get(14n)?.['s'], by.get(14n)?.['day'], by.get(14n)?.['flag']], [0n, 0, '  spaces  ', 2932896, false]);
    assert.equal(by.get(14n)?.['ts'], BigInt(Date.parse('2023-12-31T18:30:00Z')) * 1000n);
    assert.deepEqual([by.get(15n)?.['big'], by.get(15n)?.['amt'], by.get(15n)?.['ts'], by.get(15n)?.['s']], [123456789012345678n, '-9999999999.99', 1n, 'NULL']);
    assert.deepEqual(by.get(2599n)?.['big'], 2599n * 3074457345618258n);
    assert.equal(by.get(2598n)?.['s'], 'q "2598" ,x');
    assert.equal(by.get(2597n)?.['s'], null);
    assert.equal(by.get(2596n)?.['s'], '');

    const [ja, jb] = [await rejects(pr.p('rejects-records')), await rejects(pr.p('rejects-columnar'))];
    assert.deepEqual(jb, ja);
    assert.deepEqual(
      jb.map((r) => [(r['location'] as { line: number }).line, r['code']]),
      [
        [5, 'precision'],
        [6, 'range'],
        [7, 'range'],
        [8, 'range'],
        [9, 'column_count'],
        [10, 'csv_quote'],
        [14, 'required'],
        [15, 'utf8'],
        [19, 'type'],
        [20, 'type'],
      ],
    );

    const [sa, sb] = [await stats(pr.p('wh-records')), await stats(pr.p('wh-columnar'))];
    assert.ok(sa.length >= 1);
    assert.deepEqual(sb, sa);
    // Bounds of every asset column are there (not two empty lists that agree).
    const first = sa[0] as { lower_bounds: { key: number }[]; upper_bounds: { key: number }[]; null_value_counts: { key: number; value: bigint | number }[] };
    assert.equal(first.lower_bounds.length, 8);
    assert.equal(first.upper_bounds.length, 8);
    assert.ok(first.null_value_counts.some((e) => Number(e.value) > 0));
  });

  it('the planner keeps records where a cursor tracker needs them', async () => {
    const r = await dativo(['run', 'job-cursor.yaml', '--json', '--log-level', 'info'], { cwd: pr.dir });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(textPath(r.stderr), 'records');
    assert.equal(jsonLine(r.stdout).objects[0]!.rows_written, 2507);
  });
});
