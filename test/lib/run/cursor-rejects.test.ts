/**
 * Rejected rows move the cursor too, for a source that cannot bound its
 * window (the tie-key protocol): runJob with a source that returns every
 * row with cursor >= the saved value, one of them invalid. Without it the
 * invalid row at the newest value would be re-read and re-rejected by every
 * run (exit 1 forever).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Connector, SourceStream } from '../../../lib/connector.js';
import { cursorFromString, compareCursor } from '../../../lib/records/cursor.js';
import { runJob } from '../../../lib/run.js';
import type { Row } from '../../../lib/types.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { makeAsset, makePlan, memoryLogger } from '../../connectors/postgres/helpers.js';

describe('rejected rows and the tie-key cursor', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dativo-rejcursor-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const table: Row[] = [];
  const T = '2024-03-03T03:03:03.000000Z';
  // A source without a window: `cursor >= saved`, as an API without an upper bound would.
  const source: Connector = {
    descriptor: Object.freeze({ name: 'memory', roles: Object.freeze(['source'] as const), allowedInCloud: true, incrementalStrategies: Object.freeze(['updated']), sortedByCursor: false, description: 'rows in memory' }),
    read(ctx) {
      const saved = ctx.state?.cursor?.value;
      const from = saved === undefined ? undefined : cursorFromString('timestamp', saved);
      return Readable.from(table.filter((r) => from === undefined || compareCursor('timestamp', cursorFromString('timestamp', String(r['at'])), from) >= 0)) as SourceStream;
    },
  };
  const plan = (): ReturnType<typeof makePlan> => {
    const p = makePlan({
      type: 'postgres',
      connection: {},
      tables: [{ name: 'things', object: 'things' }],
      asset: makeAsset([['id', 'long', true], ['amount', 'long'], ['at', 'timestamp']], { primaryKey: ['id'] }),
      incremental: { strategy: 'updated', cursorField: 'at', lagSeconds: 0 },
    });
    p.target.warehouse = `file://${path.join(dir, 'wh')}`;
    p.state = { kind: 'file', path: path.join(dir, 'state.json') };
    p.rejectDir = path.join(dir, 'rejects');
    p.validationMode = 'warn';
    return p;
  };

  it('a rejected row at the newest cursor value is in the reject file once and is not rejected again', async () => {
    for (let i = 1; i <= 5; i++) table.push({ id: String(i), amount: String(i * 10), at: T });
    table.push({ id: '6', amount: 'not a number', at: T });
    const r1 = await runJob(plan(), { connector: source });
    assert.equal(r1.exit_code, 1, JSON.stringify(r1));
    assert.equal(r1.objects[0]!.rows_rejected, 1);
    assert.equal(r1.objects[0]!.rows_written, 5);
    const rejects = (await readFile(r1.objects[0]!.reject_file!, 'utf8')).trim().split('\n');
    assert.equal(rejects.length, 1);
    assert.equal((JSON.parse(rejects[0]!) as { record: Row }).record['id'], '6');
    assert.equal(r1.objects[0]!.cursor?.value, T);
    assert.equal(r1.objects[0]!.cursor?.written.length, 6, 'the rejected row is placed at the tie like a written one');

    // Same value, one new row: the source returns all seven again.
    table.push({ id: '7', amount: '70', at: T });
    const { log, lines } = memoryLogger();
    const r2 = await runJob(plan(), { connector: source, log });
    assert.equal(r2.exit_code, 0, JSON.stringify(r2));
    assert.equal(r2.objects[0]!.rows_rejected, 0, 'not rejected again');
    assert.equal(r2.objects[0]!.reject_file, undefined);
    const written = (await readParquetWithDuckDB(new URL(r2.objects[0]!.files[0]!).pathname)).rows;
    assert.deepEqual(written.map((r) => Number(r['id'])), [7]);
    assert.ok(!lines.some((l) => l['event_type'] === 'cursor_window'), 'not a first run: no first-run window line');

    // A new bad row at the tie is rejected (once).
    table.push({ id: '8', amount: 'bad', at: T });
    const r3 = await runJob(plan(), { connector: source });
    assert.equal(r3.exit_code, 1);
    assert.equal(r3.objects[0]!.rows_rejected, 1);
    const r4 = await runJob(plan(), { connector: source });
    assert.equal(r4.exit_code, 0);
    assert.equal(r4.objects[0]!.rows_written, 0);
  });

  it('the first run of a source without a window logs what it read at info', async () => {
    const fresh = plan();
    fresh.state = { kind: 'file', path: path.join(dir, 'fresh.json') };
    const { log, lines } = memoryLogger();
    const r = await runJob(fresh, { connector: source, log });
    assert.equal(r.exit_code, 1, 'row 6 and 8 are still invalid');
    const w = lines.find((l) => l['event_type'] === 'cursor_window');
    assert.ok(w);
    assert.equal(w['level'], 30);
    assert.equal(w['first_run'], true);
    assert.equal(w['cursor_field'], 'at');
    assert.equal(w['from'], null);
    assert.equal(w['to'], T);
  });
});
