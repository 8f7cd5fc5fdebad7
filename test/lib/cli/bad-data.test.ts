/**
 * Bad CSV data through the CLI. Warn mode: exit 1, every bad line in
 * `<reject_dir>/<object>/<run_id>.ndjson` with its reason and line number,
 * the good rows written, earlier files untouched. Strict mode: exit 3,
 * nothing committed, state and warehouse byte-identical.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { dativo, jsonLine, ordersProject, parquetFiles, snapshot, ORDERS_HEADER, type Project } from './helpers.js';

const projects: Project[] = [];
after(async () => {
  await Promise.all(projects.map((p) => p.cleanup()));
});

async function ids(files: string[]): Promise<bigint[]> {
  const out: bigint[] = [];
  for (const f of files) for (const r of (await readParquetWithDuckDB(f)).rows) out.push(r['id'] as bigint);
  return out.sort((a, b) => (a < b ? -1 : 1));
}

const ok = (id: number): string => `${id},${id}.00,2024-01-03T00:00:00Z,2024-01-03,ok${id}`;

describe('bad CSV data', { concurrency: true }, () => {
  it('warn mode: exit 1, each bad line rejected with reason and line, good rows written, earlier data kept', async () => {
    const pr = await ordersProject('warn', { mode: 'warn' });
    projects.push(pr);
    const first = await dativo(['run', 'job.yaml'], { cwd: pr.dir });
    assert.equal(first.code, 0, first.stderr);
    const firstFiles = await snapshot(pr.p('wh'));

    const lines = [
      ORDERS_HEADER, // line 1
      ok(3), // 2
      '4,abc,2024-01-03T00:00:00Z,2024-01-03,badtype', // 3: not a decimal
      '5,1.00,2024-01-03T00:00:00Z', // 4: 3 fields of 5
      ok(6), // 5
      '7,99999999999999.00,2024-01-03T00:00:00Z,2024-01-03,big', // 6: does not fit decimal(12,2)
      '8,a"b,2024-01-03T00:00:00Z,2024-01-03,q', // 7: quote inside an unquoted field
      '9,9.00,2024-01-03T00:00:00Z,2024-13-03,badday', // 8: month 13
      ok(10), // 9
      '11,"bad"q,2024-01-03T00:00:00Z,2024-01-03,x', // 10: bad closing quote, never closed after
      ok(12), // 11: swallowed by line 10's record, so it is in the reject file
    ];
    await pr.write('data/b.csv', `${lines.join('\n')}\n`);
    const r = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 1, r.stderr);
    const s = jsonLine(r.stdout);
    assert.equal(s.exit_code, 1);
    const o = s.objects[0]!;
    assert.deepEqual([o.rows_written, o.rows_rejected], [3, 6]);
    assert.equal(o.reject_file, path.join(pr.p('rejects'), 'orders', `${s.run_id}.ndjson`));

    const rejects = (await readFile(o.reject_file!, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { code: string; reason: string; location: { file: string; line: number }; fields: string[]; record: unknown; run_id: string });
    rejects.sort((a, b) => a.location.line - b.location.line);
    assert.deepEqual(
      rejects.map((x) => [x.location.line, x.code]),
      [
        [3, 'type'],
        [4, 'column_count'],
        [6, 'range'],
        [7, 'csv_quote'],
        [8, 'range'],
        [10, 'csv_quote'],
      ],
    );
    for (const x of rejects) {
      assert.equal(x.location.file, pr.p('data/b.csv'));
      assert.equal(x.run_id, s.run_id);
      assert.ok(x.reason.length > 0);
    }
    assert.match(rejects[0]!.reason, /^amount: "abc" is not a decimal/);
    assert.deepEqual(rejects[0]!.fields, ['amount']);
    assert.match(rejects[1]!.reason, /expected 5 fields .*got 3/);
    assert.match(rejects[2]!.reason, /decimal\(12,2\)/);
    assert.deepEqual(rejects[4]!.fields, ['day']);
    assert.equal(rejects[5]!.record, `11,"bad"q,2024-01-03T00:00:00Z,2024-01-03,x\n${ok(12)}`, 'the swallowed line is kept in the reject');

    // The first run's file is byte-identical; the new file holds exactly the good rows.
    const now = await snapshot(pr.p('wh'));
    for (const [f, h] of Object.entries(firstFiles)) assert.equal(now[f], h, f);
    const added = (await parquetFiles(pr.p('wh'))).filter((f) => !(path.relative(pr.p('wh'), f) in firstFiles));
    assert.deepEqual(await ids(added), [3n, 6n, 10n]);
    assert.deepEqual(await ids(await parquetFiles(pr.p('wh'))), [1n, 2n, 3n, 6n, 10n]);
  });

  it('strict mode: a bad value or a bad line exits 3, commits nothing and leaves state as it was', async () => {
    const pr = await ordersProject('strict', { mode: 'strict' });
    projects.push(pr);
    const first = await dativo(['run', 'job.yaml'], { cwd: pr.dir });
    assert.equal(first.code, 0, first.stderr);
    const wh = await snapshot(pr.p('wh'));
    const state = await pr.read('state/job.json');

    const cases: [string, string[], RegExp][] = [
      ['type', [ORDERS_HEADER, ok(3), '4,abc,2024-01-03T00:00:00Z,2024-01-03,x', ok(5)], /at \S+b\.csv line 3: amount: "abc" is not a decimal/],
      ['column count', [ORDERS_HEADER, ok(3), ok(4), '5,1.00', ok(6)], /at \S+b\.csv line 4: expected 5 fields/],
      ['quoting', [ORDERS_HEADER, ok(3), '4,a"b,2024-01-03T00:00:00Z,2024-01-03,x', ok(5)], /at \S+b\.csv line 3: Invalid Opening Quote/],
      // The parser reads ahead of validate; the error still names the first bad line.
      ['value before line', [ORDERS_HEADER, ok(3), '4,abc,2024-01-03T00:00:00Z,2024-01-03,x', '5,1.00', ok(6)], /at \S+b\.csv line 3: amount: "abc"/],
      ['line before value', [ORDERS_HEADER, ok(3), '4,1.00', '5,abc,2024-01-03T00:00:00Z,2024-01-03,x', ok(6)], /at \S+b\.csv line 3: expected 5 fields/],
      ['bad line last', [ORDERS_HEADER, ok(3), ok(4), '5,"x"y,2024-01-03T00:00:00Z,2024-01-03,x'], /at \S+b\.csv line 4: Invalid Closing Quote/],
    ];
    for (const [what, lines, message] of cases) {
      await pr.write('data/b.csv', `${lines.join('\n')}\n`);
      const r = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
      assert.equal(r.code, 3, `${what}: ${r.stderr}`);
      const s = jsonLine(r.stdout);
      assert.equal(s.objects[0]?.error?.code, 'VALIDATION_FAILED', what);
      assert.match(s.objects[0]!.error!.message, message, what);
      assert.deepEqual(s.objects[0]?.files, [], what);
      assert.deepEqual(await snapshot(pr.p('wh')), wh, `${what}: warehouse byte-identical`);
      assert.deepEqual(await pr.read('state/job.json'), state, `${what}: state byte-identical`);
    }

    // Once the file is fixed the next run takes it whole.
    await pr.write('data/b.csv', `${[ORDERS_HEADER, ok(3), ok(4)].join('\n')}\n`);
    const fixed = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.deepEqual(await ids(await parquetFiles(pr.p('wh'))), [1n, 2n, 3n, 4n]);
  });
});
