import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pgConnector from '../../../connectors/postgres/index.js';
import { compileCoercer } from '../../../lib/records/coerce.js';
import { assertParquetRoundTrip, collect, makeAsset, makeCtx, makePlan } from './helpers.js';
import { createTestPg, type TestPg } from './db.js';

const COLUMNS: [string, string, boolean?][] = [
  ['id', 'long', true],
  ['i2', 'int'],
  ['i4', 'int'],
  ['big', 'long'],
  ['amount', 'decimal(38,9)'],
  ['f4', 'float'],
  ['f8', 'double'],
  ['flag', 'boolean'],
  ['ts', 'timestamp'],
  ['tsn', 'timestamp'],
  ['d', 'date'],
  ['doc', 'json'],
  ['j', 'json'],
  ['bin', 'binary'],
  ['u', 'string'],
  ['tags', 'json'],
  ['ints', 'json'],
  ['m', 'string'],
  ['moods', 'json'],
  ['s', 'string'],
  ['e', 'string'],
];

describe('postgres source: every type round-trips exactly', () => {
  let db: TestPg;
  before(async () => {
    db = await createTestPg();
    await db.client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE TABLE public.alltypes (
        id int8 PRIMARY KEY, i2 int2, i4 int4, big int8, amount numeric(38,9), f4 float4, f8 float8, flag bool,
        ts timestamptz, tsn timestamp, d date, doc jsonb, j json, bin bytea, u uuid,
        tags text[], ints int8[], m mood, moods mood[], s text, e text, not_in_asset text);
      INSERT INTO alltypes VALUES
        (1, 32767, 2147483647, 9223372036854775807, 12345678901234567890123456789.123456789, 1.5, 0.1, true,
         '2026-11-27 02:43:48.123456+00', '1900-01-01 00:00:00.5', '1969-12-31',
         '{"n": 12345678901234567890123, "a": [1, 2.50]}', '{"k" :  1.10}', '\\x00ff0001', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '{a,"b c",NULL,"x\\"y"}', '{1,-9223372036854775808}', 'happy', '{sad,ok}', '', 'héllo 🎉 naïve', 'x'),
        (2, -32768, -2147483648, -9223372036854775807, -0.000000001, -3.25, -1e300, false,
         '1969-07-20 20:17:40.000001+00', '1600-02-29 23:59:59.999999', '0001-01-01',
         '[]', 'null', '\\x', '00000000-0000-0000-0000-000000000000',
         '{}', '{}', 'sad', '{}', 'NULL', '', 'y'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    `);
  });
  after(async () => db?.drop());

  it('reads canonical values that validate accepts unchanged', async () => {
    const asset = makeAsset(COLUMNS);
    const plan = makePlan({ type: 'postgres', connection: db.connection, tables: [{ name: 'public.alltypes', object: 'alltypes' }], asset });
    const rows = await collect(pgConnector.read(makeCtx(plan)));
    rows.sort((a, b) => Number(a['id']) - Number(b['id']));
    assert.equal(rows.length, 3);

    // Independent oracle: Postgres' own arithmetic on the same values.
    const oracle = await db.client.query<{ id: string; ts: string | null; tsn: string | null; d: number | null; doc: string | null; j: string | null }>(
      `SELECT id::text, (extract(epoch FROM ts) * 1000000)::numeric(30,0)::text AS ts,
              (extract(epoch FROM tsn) * 1000000)::numeric(30,0)::text AS tsn,
              (d - date '1970-01-01') AS d, doc::text AS doc, j::text AS j FROM alltypes ORDER BY id`,
    );

    const [r1, r2, r3] = rows as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual(Object.keys(r1).sort(), COLUMNS.map((c) => c[0]).sort(), 'only the asset columns are selected');
    assert.equal(r1['id'], 1n);
    assert.equal(r1['i2'], 32767);
    assert.equal(r1['i4'], 2147483647);
    assert.equal(r1['big'], 9223372036854775807n);
    assert.equal(r2['big'], -9223372036854775807n);
    assert.equal(r1['amount'], '12345678901234567890123456789.123456789');
    assert.equal(r2['amount'], '-0.000000001');
    assert.equal(r1['f4'], 1.5);
    assert.equal(r1['f8'], 0.1);
    assert.equal(r2['f8'], -1e300);
    assert.equal(r1['flag'], true);
    assert.equal(r2['flag'], false);
    for (const [i, r] of [r1, r2].entries()) {
      const o = oracle.rows[i]!;
      assert.equal(r['ts'], BigInt(o.ts!), `ts of row ${i + 1}`);
      assert.equal(r['tsn'], BigInt(o.tsn!), `tsn of row ${i + 1}`);
      assert.equal(r['d'], o.d, `d of row ${i + 1}`);
      assert.equal(r['doc'], o.doc);
      assert.equal(r['j'], o.j);
    }
    assert.equal(r1['ts'], 1795747428123456n);
    assert.equal(r2['ts'], -14182939999999n, 'pre-1970 with µs');
    assert.match(String(r1['doc']), /12345678901234567890123/, 'big JSON numbers stay text');
    assert.equal(r1['j'], '{"k" :  1.10}', 'json keeps the exact text');
    assert.deepEqual(r1['bin'], new Uint8Array([0, 255, 0, 1]));
    assert.deepEqual(r2['bin'], new Uint8Array([]));
    assert.equal(r1['u'], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    assert.equal(r1['tags'], '["a","b c",null,"x\\"y"]');
    assert.deepEqual(JSON.parse(String(r1['tags'])), ['a', 'b c', null, 'x"y']);
    assert.equal(r1['ints'], '[1,-9223372036854775808]');
    assert.equal(r2['tags'], '[]');
    assert.equal(r1['m'], 'happy');
    assert.equal(r1['moods'], '["sad","ok"]');
    assert.equal(r1['s'], '', 'empty string is not NULL');
    assert.equal(r2['s'], 'NULL', 'the text NULL is not NULL');
    assert.equal(r1['e'], 'héllo 🎉 naïve');
    for (const c of COLUMNS) if (c[0] !== 'id') assert.equal(r3[c[0]], null, `${c[0]} NULL`);

    const coerce = compileCoercer(asset.fields);
    for (const r of rows) {
      const out = coerce(r);
      assert.ok(out.ok, JSON.stringify(!out.ok && out.errors));
      for (const c of COLUMNS) {
        // String '' is kept by validate only for string columns; everything else must pass through unchanged.
        assert.deepEqual(out.row[c[0]], r[c[0]], `validate keeps ${c[0]} as read`);
      }
    }
  });

  it('round-trips through runJob into Parquet, read back by DuckDB', async () => {
    const plan = makePlan({ type: 'postgres', connection: db.connection, tables: [{ name: 'public.alltypes', object: 'alltypes' }], asset: makeAsset(COLUMNS) });
    await assertParquetRoundTrip(pgConnector, plan, COLUMNS);
  });

  it('reads a custom query as a subquery', async () => {
    const asset = makeAsset([
      ['id', 'long', true],
      ['label', 'string'],
    ]);
    const plan = makePlan({
      type: 'postgres',
      connection: db.connection,
      tables: [{ object: 'q', query: "SELECT id, m::text || '!' AS label FROM alltypes WHERE id < 3;" }],
      asset,
    });
    const rows = await collect(pgConnector.read(makeCtx(plan)));
    rows.sort((a, b) => Number(a['id']) - Number(b['id']));
    assert.deepEqual(rows, [
      { id: 1n, label: 'happy!' },
      { id: 2n, label: 'sad!' },
    ]);
  });
});
