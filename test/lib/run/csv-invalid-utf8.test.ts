/**
 * Invalid UTF-8 early in a CSV file that is still being written, through the
 * CLI, on both text paths: the first run stops at a record (itself
 * holding an invalid byte) cut inside a three-byte character, held back;
 * the writer appends the rest; the second run resumes at the byte the first
 * one stopped at. Every valid row lands exactly once with its exact text (a
 * real U+FFFD included), each record holding invalid bytes is rejected with
 * its own line, and nothing else is.
 *
 * The record path once counted each replaced sequence as U+FFFD's three
 * bytes: it rejected the valid U+FFFD row, let the cut E2 82 row through and
 * marked the file two bytes short of the held record.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, utimes } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { dativo, jsonLine, logLines, project, type Project } from '../cli/helpers.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: events
version: "1.0"
domain: live
schema:
  - {name: id, type: long, required: true}
  - {name: note, type: string}
team: {owner: data@example.com}
`;

const JOB = `tenant_id: live
source_connector: csv
target_connector: iceberg
asset_path: asset.yaml
source:
  files: [{path: data/live.csv, object: events}]
  incremental: {strategy: file_modified_time}
  settle_seconds: 3600
target:
  warehouse: wh
state: {path: state/job.json}
reject_dir: rejects
schema_validation_mode: warn
`;

const b = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

/** What the writer has written when the first run starts: the last record stops inside a character. */
const FIRST = b(
  'id,note\n', // line 1
  '1,plain\n', // 2
  '2,bad ', [0xff], ' byte\n', // 3: invalid
  '3,real \uFFFD kept\n', // 4: a real U+FFFD (EF BF BD) is valid
  '4,cut ', [0xe2, 0x82], ' seq\n', // 5: invalid
  '5,after\n', // 6
  '6,zoë ', [0xff], ' naïve ', [0xe2, 0x82], // 7: invalid, unfinished: cut inside € (E2 82 | AC)
);
const REST = b([0xac], ' price\n', '7,', [0xf0, 0x9f, 0x8e, 0x89], ' party\n', '8,bad ', [0xc0, 0xaf], '\n', '9,end\n');

const LANDED = new Map<bigint, string>([
  [1n, 'plain'],
  [3n, 'real \uFFFD kept'],
  [5n, 'after'],
  [7n, '🎉 party'],
  [9n, 'end'],
]);

async function rejects(dir: string): Promise<{ line: number; code: string; reason: string; record: string }[]> {
  const out: { line: number; code: string; reason: string; record: string }[] = [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const f of entries.filter((e) => e.isFile())) {
    for (const l of (await readFile(path.join(f.parentPath, f.name), 'utf8')).split('\n')) {
      if (l === '') continue;
      const j = JSON.parse(l) as { location: { line: number }; code: string; reason: string; record: string };
      out.push({ line: j.location.line, code: j.code, reason: j.reason, record: j.record });
    }
  }
  return out.sort((x, y) => x.line - y.line);
}

for (const [label, env] of [
  ['record path', { DATIVO_COLUMNAR: '0' }],
  ['columnar path', {}],
] as const) {
  describe(`csv, invalid UTF-8 early, stopped and resumed: ${label}`, () => {
    let pr: Project;
    before(async () => {
      pr = await project('csv-utf8');
      await pr.write('asset.yaml', ASSET);
      await pr.write('job.yaml', JOB);
      await pr.write('data/live.csv', FIRST);
    });
    after(async () => {
      await pr?.cleanup();
    });

    const run = () => dativo(['run', 'job.yaml', '--json', '--log-level', 'info'], { cwd: pr.dir, env, timeoutMs: 120_000 });

    it('every valid row once, each bad record rejected with its line, the resume at the right byte', async () => {
      const r1 = await run();
      assert.equal(r1.code, 1, r1.stderr); // partial: rejects
      const s1 = jsonLine(r1.stdout).objects[0]!;
      assert.deepEqual([s1.rows_written, s1.rows_rejected], [3, 2], r1.stderr);
      assert.ok(logLines(r1.stderr).some((l) => l['event_type'] === 'csv_tail_held'), 'the record cut inside € waits');
      const mark = JSON.parse((await pr.read('state/job.json')).toString('utf8')) as { objects: Record<string, { files: Record<string, { size: number; lines: number }> }> };
      const m = Object.values(mark.objects['events']!.files)[0]!;
      assert.equal(m.size, FIRST.indexOf('6,zo'), 'the mark ends where the held record starts, in bytes');
      assert.equal(m.lines, 6);

      await pr.write('data/live.csv', Buffer.concat([FIRST, REST]));
      const t = new Date(Date.now() - 7200_000); // settled: read to the end
      await utimes(pr.p('data/live.csv'), t, t);
      const r2 = await run();
      assert.equal(r2.code, 1, r2.stderr);
      const s2 = jsonLine(r2.stdout).objects[0]!;
      assert.deepEqual([s2.rows_read, s2.rows_written, s2.rows_rejected], [4, 2, 2], r2.stderr);

      const rows = await readWarehouseTable(pr.p('wh'), 'live.live', 'events');
      assert.equal(rows.length, LANDED.size, JSON.stringify(rows.map((x) => [String(x['id']), x['note']])));
      const got = new Map(rows.map((x) => [x['id'] as bigint, x['note']]));
      assert.deepEqual(got, LANDED);

      const rj = await rejects(pr.p('rejects'));
      assert.deepEqual(
        rj.map((x) => [x.line, x.code, x.reason]),
        [
          [3, 'utf8', 'invalid UTF-8 at line 3'],
          [5, 'utf8', 'invalid UTF-8 at line 5'],
          [7, 'utf8', 'invalid UTF-8 at line 7'],
          [9, 'utf8', 'invalid UTF-8 at line 9'],
        ],
      );
      assert.deepEqual(
        rj.map((x) => x.record),
        ['2,bad \uFFFD byte', '4,cut \uFFFD seq', '6,zoë \uFFFD naïve € price', '8,bad \uFFFD\uFFFD'],
      );

      const r3 = await run();
      assert.equal(r3.code, 0, r3.stderr);
      assert.equal(jsonLine(r3.stdout).objects[0]!.rows_read, 0, 'nothing new');
    });
  });
}
