/**
 * `target.workers`: CSV records coerced into Arrow columns in worker threads
 * (packed records, lib/stages/coerce-pool.ts) give the same table as on the
 * main thread: every value, NULL vs '', quoted line breaks and unicode, the
 * same rejects with the same lines (values refused by validate and lines the
 * parser refused, across many batches), strict mode naming the first bad
 * line and committing nothing, and an appended file resumed with only its
 * new rows. Runs through the CLI, as a user runs it.
 */
import assert from 'node:assert/strict';
import { appendFile, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import type { Row } from '../../../lib/types.js';
import { dativo, jsonLine, parquetFiles, project, type Project } from '../cli/helpers.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: wide
version: "1.0"
domain: core
schema:
  - {name: id, type: long, required: true}
  - {name: amt, type: "decimal(12,2)"}
  - {name: ts, type: timestamp}
  - {name: day, type: date}
  - {name: flag, type: boolean}
  - {name: s, type: string}
primary_key: [id]
`;

const job = (workers: number, mode: 'warn' | 'strict', name: string): string => `tenant_id: core
source_connector: csv
asset_path: asset.yaml
source:
  files: [{path: data/${name}.csv, object: ${name}}]
  incremental: {strategy: file_modified_time}
  settle_seconds: 0
target:
  warehouse: wh-${name}-${workers}
  batch_rows: 700
  workers: ${workers}
state: {path: state/${name}-${workers}.json}
reject_dir: rejects-${name}-${workers}
schema_validation_mode: ${mode}
`;

/** Record of id i: every 997th refused by validate, every 1999th by the parser (a bad closing quote). */
function line(i: number): string {
  if (i % 1999 === 1998) return `${i},1.00,"broken"x`;
  if (i % 997 === 996) return `${i},not-a-number,2024-01-01T00:00:00Z,2024-01-01,true,x`;
  const s = i % 5 === 0 ? '""' : i % 5 === 1 ? '' : i % 5 === 2 ? `"multi\nline, ""q"" ${i}"` : i % 5 === 3 ? `héllo 🚀 中文 ${i}` : `plain${i}`;
  const amt = i % 7 === 0 ? '' : `${i}.${String(i % 100).padStart(2, '0')}`;
  return `${i},${amt},2024-03-10T01:59:59.${String(i % 1_000_000).padStart(6, '0')}-08:00,2024-02-${String((i % 28) + 1).padStart(2, '0')},${i % 3 === 0 ? 'true' : 'false'},${s}`;
}

function csv(from: number, to: number): string {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(line(i));
  return out.join('\n') + '\n';
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

async function rejects(dir: string): Promise<{ code: unknown; line: unknown; record: unknown }[]> {
  const out: { code: unknown; line: unknown; record: unknown }[] = [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const f of entries.filter((e) => e.isFile())) {
    for (const l of (await readFile(path.join(f.parentPath ?? f.path, f.name), 'utf8')).trim().split('\n')) {
      if (l === '') continue;
      const j = JSON.parse(l) as { code: unknown; location?: { line?: unknown }; record: unknown };
      out.push({ code: j.code, line: j.location?.line, record: j.record });
    }
  }
  return out.sort((a, b) => Number(a.line) - Number(b.line));
}

describe('csv through coercion threads (target.workers)', () => {
  let pr: Project;
  const N = 9_000;
  before(async () => {
    pr = await project('csv-workers');
    await pr.write('asset.yaml', ASSET);
    for (const w of [0, 2]) await pr.write(`job-warn-${w}.yaml`, job(w, 'warn', 'warn'));
    await pr.write('job-strict-2.yaml', job(2, 'strict', 'strict'));
    await pr.write('data/warn.csv', `id,amt,ts,day,flag,s\n${csv(0, N)}`);
    await pr.write('data/strict.csv', `id,amt,ts,day,flag,s\n${csv(0, 3000)}`);
  });
  after(async () => {
    await pr?.cleanup();
  });

  it('writes the same rows and rejects (with their lines) as the main thread, and resumes an appended file exactly once', async () => {
    const runs = [];
    for (const w of [0, 2]) {
      const r = await dativo(['run', `job-warn-${w}.yaml`, '--json'], { cwd: pr.dir });
      assert.equal(r.code, 1, r.stderr); // partial: some records were rejected
      runs.push(jsonLine(r.stdout).objects[0]!);
    }
    assert.equal(runs[1]!.rows_rejected, runs[0]!.rows_rejected);
    assert.equal(runs[1]!.rows_read, runs[0]!.rows_read);
    assert.equal(runs[1]!.rows_written, runs[0]!.rows_written);
    assert.ok(runs[0]!.rows_rejected >= Math.floor(N / 997), `rejected ${runs[0]!.rows_rejected}`);

    const [main, threads] = [await rows(pr.p('wh-warn-0')), await rows(pr.p('wh-warn-2'))];
    assert.equal(threads.length, runs[1]!.rows_written);
    assert.deepEqual(threads, main);
    // Spot checks of the values themselves (not only that both paths agree).
    const byKey = new Map(threads.map((r) => [r['id'], r]));
    assert.equal(byKey.get(5n)?.['s'], ''); // quoted empty: ''
    assert.equal(byKey.get(6n)?.['s'], null); // unquoted empty: NULL
    assert.equal(byKey.get(7n)?.['s'], 'multi\nline, "q" 7');
    assert.equal(byKey.get(8n)?.['s'], 'héllo 🚀 中文 8');
    assert.equal(byKey.get(14n)?.['amt'], null);
    assert.equal(byKey.get(15n)?.['amt'], '15.15');

    const [rm, rt] = [await rejects(pr.p('rejects-warn-0')), await rejects(pr.p('rejects-warn-2'))];
    assert.deepEqual(rt, rm);
    assert.equal(rt.length, runs[1]!.rows_rejected);
    assert.ok(rt.every((r) => typeof r.line === 'number' && r.line > 1));
    assert.ok(rt.some((r) => r.code === 'type'));
    assert.ok(rt.some((r) => r.code === 'csv_quote'));

    // Appended rows: read from where the last run stopped, and only those, as on the main thread.
    await appendFile(pr.p('data/warn.csv'), csv(N, N + 1500));
    const second = [];
    for (const w of [0, 2]) {
      const again = await dativo(['run', `job-warn-${w}.yaml`, '--json'], { cwd: pr.dir });
      assert.ok(again.code === 0 || again.code === 1, again.stderr);
      second.push(jsonLine(again.stdout).objects[0]!);
    }
    assert.deepEqual(second[1], { ...second[0]!, files: second[1]!.files, reject_file: second[1]!.reject_file });
    assert.ok(second[1]!.rows_read > 1400 && second[1]!.rows_read <= 1500, `read ${second[1]!.rows_read}`);
    const all = await rows(pr.p('wh-warn-2'));
    const ids = all.map((r) => r['id']);
    assert.equal(new Set(ids).size, ids.length, 'no row twice');
    assert.equal(all.length, runs[1]!.rows_written + second[1]!.rows_written);
    assert.deepEqual(all, await rows(pr.p('wh-warn-0')));
  });

  it('strict mode: the first bad line fails the run, its line is named, nothing is committed', async () => {
    const r = await dativo(['run', 'job-strict-2.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    const s = jsonLine(r.stdout);
    assert.match(JSON.stringify(s.error), /VALIDATION_FAILED|invalid record in strict mode/);
    // id 996 is the first bad record; its line counts the quoted line breaks before it.
    const breaksBefore = Array.from({ length: 996 }, (_, i) => i).filter((i) => i % 5 === 2 && i % 997 !== 996 && i % 1999 !== 1998).length;
    assert.match(JSON.stringify(s.error), new RegExp(`line ${996 + 2 + breaksBefore}\\b`));
    assert.deepEqual(await parquetFiles(pr.p('wh-strict-2')).catch(() => []), []);
  });
});
