import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { isDativoError } from '../../../lib/errors.js';
import { withLocation } from '../../../lib/records/location.js';
import { createRejectWriter } from '../../../lib/stages/rejects.js';
import { validate } from '../../../lib/stages/validate.js';
import type { Asset, Row } from '../../../lib/types.js';

const asset: Asset = {
  name: 'orders',
  version: '1.0',
  object: 'orders',
  file: 'orders.yaml',
  primaryKey: ['id'],
  fields: [
    { name: 'id', type: { kind: 'long' }, typeName: 'long', required: true, fieldId: 1 },
    { name: 'amount', type: { kind: 'decimal', precision: 10, scale: 2 }, typeName: 'decimal(10,2)', required: false, fieldId: 2 },
    { name: 'created_at', type: { kind: 'timestamp' }, typeName: 'timestamp', required: true, fieldId: 3 },
  ],
  raw: { schema: [{ name: 'amount', minimum: '0' }] },
};

/** CSV-like records, each carrying its file and line. */
function records(): Row[] {
  const raw: Row[] = [
    { id: '1', amount: '10.5', created_at: '2024-01-01T00:00:00Z' },
    { id: 'x', amount: '1', created_at: '2024-01-01T00:00:00Z' },
    { id: '3', amount: '-1', created_at: '2024-01-01T00:00:00Z', note: 'extra' },
    { id: '4', amount: '', created_at: '2024-13-01' },
    { id: '5', amount: '2', created_at: '2024-01-02 00:00:00', note: 'again' },
  ];
  return raw.map((r, i) => withLocation(r, { file: 'orders.csv', line: i + 2 }));
}

async function readLines(path: string | undefined): Promise<Record<string, unknown>[]> {
  assert.ok(path);
  const text = await readFile(path, 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function collector(out: Row[]): Writable {
  return new Writable({ objectMode: true, write: (row: Row, _e, cb) => (out.push(row), cb()) });
}

describe('validate stage', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dativo-validate-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('warn mode rejects bad records to NDJSON with reason and line, and keeps going', async () => {
    const rejects = createRejectWriter({ dir, object: 'orders', runId: 'run-warn' });
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, new Writable({ write: (c: Buffer, _e, cb) => (warnings.push(c.toString()), cb()) }));
    const v = validate(asset, { mode: 'warn', rejects, log });
    const out: Row[] = [];
    await pipeline(Readable.from(records()), v, collector(out));
    await rejects.close();

    assert.deepEqual(out, [
      { id: 1n, amount: '10.50', created_at: 1704067200000000n },
      { id: 5n, amount: '2.00', created_at: 1704153600000000n },
    ]);
    assert.deepEqual([v.rowsIn, v.rowsOut, v.rejected, rejects.count], [5, 2, 3, 3]);
    assert.equal(rejects.path, join(dir, 'orders', 'run-warn.ndjson'));
    const lines = await readLines(rejects.path);
    assert.deepEqual(
      lines.map((l) => [l.code, l.fields, l.location]),
      [
        ['type', ['id'], { file: 'orders.csv', line: 3 }],
        ['constraint', ['amount'], { file: 'orders.csv', line: 4 }],
        ['range', ['created_at'], { file: 'orders.csv', line: 5 }],
      ],
    );
    assert.match(String(lines[0]?.reason), /^id: "x" is not an integer/);
    assert.deepEqual(lines[0]?.record, { id: 'x', amount: '1', created_at: '2024-01-01T00:00:00Z' });
    assert.equal(lines[0]?.run_id, 'run-warn');
    assert.equal(lines[0]?.object, 'orders');
    // The undeclared column is reported once, not once per record.
    assert.equal(warnings.filter((w) => w.includes('"column":"note"')).length, 1);
  });

  it('strict mode fails with VALIDATION_FAILED naming field, code and line, and still writes the reject', async () => {
    const rejects = createRejectWriter({ dir, object: 'orders', runId: 'run-strict' });
    const v = validate(asset, { mode: 'strict', rejects });
    const out: Row[] = [];
    await assert.rejects(pipeline(Readable.from(records()), v, collector(out)), (err) => {
      assert.ok(isDativoError(err));
      assert.equal(err.code, 'VALIDATION_FAILED');
      assert.equal(err.exitCode, 3);
      assert.deepEqual(err.context.fields, ['id']);
      assert.equal(err.context.rejectCode, 'type');
      assert.equal(err.context.line, 3);
      assert.equal(err.context.file, 'orders.csv');
      assert.equal(err.context.object, 'orders');
      return true;
    });
    await rejects.close();
    assert.deepEqual(out.map((r) => r.id), [1n]);
    assert.deepEqual([v.rowsIn, v.rowsOut, v.rejected], [2, 1, 1]);
    const lines = await readLines(rejects.path);
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0]?.location, { file: 'orders.csv', line: 3 });
  });

  it('rejects a record that is not an object instead of crashing', async () => {
    const rejects = createRejectWriter({ dir, object: 'odd', runId: 'r' });
    const v = validate(asset, { mode: 'warn', rejects });
    const out: Row[] = [];
    await pipeline(Readable.from([['a'], { id: 1, created_at: 0 }]), v, collector(out));
    await rejects.close();
    assert.equal(out.length, 1);
    assert.equal(rejects.count, 1);
  });

  it('refuses an asset with an impossible constraint before reading anything', () => {
    const bad: Asset = { ...asset, raw: { schema: [{ name: 'id', pattern: '^1' }] } };
    assert.throws(
      () => validate(bad, { mode: 'warn', rejects: createRejectWriter({ dir, object: 'x', runId: 'r' }) }),
      (e) => isDativoError(e) && e.code === 'CONFIG_INVALID',
    );
  });
});
