/**
 * A CSV file whose header lacks required asset columns, through the CLI, on
 * both text paths and in both validation modes: the run fails up front with
 * SOURCE_FORMAT (exit 3) naming the file and the missing columns; no row of
 * it is written or rejected, the warehouse, the state and the reject folder
 * stay byte-identical. A header lacking only optional columns is read as
 * before: those columns are NULL.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { dativo, jsonLine, logLines, ordersJob, parquetFiles, project, snapshot, type Project } from './helpers.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: orders
version: "1.0"
domain: shop
schema:
  - {name: id, type: long, required: true}
  - {name: amount, type: "decimal(12,2)", required: true}
  - {name: at, type: timestamp}
  - {name: day, type: date}
  - {name: note, type: string}
primary_key: [id]
`;

const projects: Project[] = [];
after(async () => {
  await Promise.all(projects.map((p) => p.cleanup()));
});

for (const [label, env, textPath] of [
  ['record path', { DATIVO_COLUMNAR: '0' }, 'records'],
  ['columnar path', {}, 'columnar'],
] as const) {
  describe(`csv header without required asset columns: ${label}`, () => {
    it('fails the file up front in warn and strict mode (exit 3, file and columns named), nothing written, state untouched', async () => {
      const pr = await project('csv-header');
      projects.push(pr);
      await pr.write('asset.yaml', ASSET);
      await pr.write('job.yaml', ordersJob({ mode: 'warn' }));
      await pr.write('data/a.csv', 'id,amount,at,day,note\n1,10.00,2024-01-01T00:00:00Z,2024-01-01,first\n2,20.00,2024-01-02T00:00:00Z,2024-01-02,second\n');
      // Optional columns missing: read as before, NULL.
      await pr.write('data/c.csv', 'amount,id\n30.00,3\n');

      const first = await dativo(['run', 'job.yaml', '--json', '--log-level', 'info'], { cwd: pr.dir, env });
      assert.equal(first.code, 0, first.stderr);
      assert.equal(logLines(first.stderr).find((l) => l['event_type'] === 'object_started')?.['text_path'], textPath);
      const rows = [];
      for (const f of await parquetFiles(pr.p('wh'))) rows.push(...(await readParquetWithDuckDB(f)).rows);
      rows.sort((x, y) => ((x['id'] as bigint) < (y['id'] as bigint) ? -1 : 1));
      assert.deepEqual(
        rows.map((r) => [r['id'], r['amount'], r['at'], r['day'], r['note']]),
        [
          [1n, '10.00', BigInt(Date.parse('2024-01-01T00:00:00Z')) * 1000n, 19723, 'first'],
          [2n, '20.00', BigInt(Date.parse('2024-01-02T00:00:00Z')) * 1000n, 19724, 'second'],
          [3n, '30.00', null, null, null],
        ],
      );
      const wh = await snapshot(pr.p('wh'));
      const state = await pr.read('state/job.json');
      const rejects = await snapshot(pr.p('rejects'));

      // b.csv comes between a.csv and c.csv (both unchanged, skipped).
      await pr.write('data/b.csv', 'note,day,at\nx,2024-01-03,2024-01-03T00:00:00Z\ny,2024-01-04,2024-01-04T00:00:00Z\n');
      for (const mode of ['warn', 'strict'] as const) {
        await pr.write('job.yaml', ordersJob({ mode }));
        const r = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir, env });
        assert.equal(r.code, 3, `${mode}: ${r.stderr}`);
        const o = jsonLine(r.stdout).objects[0]!;
        assert.equal(o.error?.code, 'SOURCE_FORMAT', mode);
        assert.equal(o.error?.message, `csv: the header of ${pr.p('data/b.csv')} lacks the required columns "id", "amount" of asset orders: the file fails before any row`, mode);
        assert.deepEqual([o.rows_written, o.rows_rejected, o.files], [0, 0, []], mode);
        assert.equal(o.reject_file, undefined, mode);
        assert.deepEqual(await snapshot(pr.p('wh')), wh, `${mode}: warehouse byte-identical`);
        assert.deepEqual(await pr.read('state/job.json'), state, `${mode}: state byte-identical`);
        assert.deepEqual(await snapshot(pr.p('rejects')), rejects, `${mode}: no reject file`);
      }
    });
  });
}
