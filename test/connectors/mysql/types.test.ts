import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import mysqlConnector from '../../../connectors/mysql/index.js';
import { compileCoercer } from '../../../lib/records/coerce.js';
import { assertParquetRoundTrip, collect, makeAsset, makeCtx, makePlan } from '../postgres/helpers.js';
import { createTestMysql, type TestMysql } from './db.js';

const COLUMNS: [string, string, boolean?][] = [
  ['id', 'long', true],
  ['ti', 'int'],
  ['flag', 'boolean'],
  ['bitflag', 'boolean'],
  ['si', 'int'],
  ['mi', 'int'],
  ['i', 'int'],
  ['iu', 'long'],
  ['big', 'long'],
  ['amount', 'decimal(38,9)'],
  ['f', 'float'],
  ['d', 'double'],
  ['dt', 'timestamp'],
  ['ts', 'timestamp'],
  ['dd', 'date'],
  ['doc', 'json'],
  ['bin', 'binary'],
  ['blb', 'binary'],
  ['s', 'string'],
  ['e', 'string'],
  ['en', 'string'],
  ['y', 'int'],
  ['tm', 'string'],
];

describe('mysql source: every type round-trips exactly', () => {
  let db: TestMysql;
  before(async () => {
    db = await createTestMysql();
    await db.conn.query(`
      CREATE TABLE alltypes (
        id BIGINT PRIMARY KEY, ti TINYINT, flag TINYINT(1), bitflag BIT(1), si SMALLINT, mi MEDIUMINT, i INT, iu INT UNSIGNED,
        big BIGINT, amount DECIMAL(38,9), f FLOAT, d DOUBLE, dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, dd DATE, doc JSON,
        bin VARBINARY(16), blb BLOB, s VARCHAR(50), e TEXT, en ENUM('a','b'), y YEAR, tm TIME(3), not_in_asset TEXT
      ) DEFAULT CHARSET utf8mb4;
      INSERT INTO alltypes VALUES
        (1, -128, 1, b'1', 32767, 8388607, 2147483647, 4294967295, 9223372036854775807, 12345678901234567890123456789.123456789,
         1.5, 0.1, '2026-11-27 02:43:48.123456', '2026-11-27 02:43:48.123456', '1969-12-31',
         '{"n": 12345678901234567890123, "a": [1, 2.50]}', X'00ff0001', X'00', '', 'héllo 🎉 naïve', 'b', 2024, '12:34:56.789', 'x'),
        (2, 0, 0, b'0', -32768, -8388608, -2147483648, 0, -9223372036854775807, -0.000000001,
         -3.25, -1e300, '1969-07-20 20:17:40.000001', '1970-01-01 00:00:01', '0001-01-01',
         '[]', X'', X'', 'NULL', '', 'a', 1901, '-838:59:59.000', 'y'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    `);
  });
  after(async () => db?.drop());

  it('reads canonical values that validate accepts unchanged', async () => {
    const asset = makeAsset(COLUMNS);
    const plan = makePlan({ type: 'mysql', connection: db.connection, tables: [{ name: `${db.database}.alltypes`, object: 'alltypes' }], asset });
    const rows = await collect(mysqlConnector.read(makeCtx(plan)));
    rows.sort((a, b) => Number(a['id']) - Number(b['id']));
    assert.equal(rows.length, 3);

    // Independent oracle: the server's own arithmetic on the same values.
    const [oracle] = (await db.conn.query(
      `SELECT CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', dt) AS CHAR) AS dt,
              CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ts) AS CHAR) AS ts,
              DATEDIFF(dd, '1970-01-01') AS dd, CONCAT(doc) AS doc FROM alltypes ORDER BY id`,
    )) as unknown as [{ dt: string | null; ts: string | null; dd: number | null; doc: string | null }[]];

    const [r1, r2, r3] = rows as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual(Object.keys(r1).sort(), COLUMNS.map((c) => c[0]).sort(), 'only the asset columns are selected');
    assert.equal(r1['id'], 1n);
    assert.equal(r1['ti'], -128);
    assert.equal(r1['flag'], true);
    assert.equal(r2['flag'], false);
    assert.equal(r1['bitflag'], true);
    assert.equal(r2['bitflag'], false);
    assert.equal(r1['i'], 2147483647);
    assert.equal(r1['iu'], 4294967295n);
    assert.equal(r1['big'], 9223372036854775807n);
    assert.equal(r2['big'], -9223372036854775807n);
    assert.equal(r1['amount'], '12345678901234567890123456789.123456789');
    assert.equal(r2['amount'], '-0.000000001');
    assert.equal(r1['f'], 1.5);
    assert.equal(r1['d'], 0.1);
    assert.equal(r2['d'], -1e300);
    for (const [i, r] of [r1, r2].entries()) {
      const o = oracle[i]!;
      assert.equal(r['dt'], BigInt(o.dt!), `dt of row ${i + 1}`);
      assert.equal(r['ts'], BigInt(o.ts!), `ts of row ${i + 1}`);
      assert.equal(r['dd'], o.dd, `dd of row ${i + 1}`);
      assert.equal(r['doc'], o.doc, `doc of row ${i + 1}`);
    }
    assert.equal(r1['dt'], 1795747428123456n);
    assert.equal(r2['dt'], -14182939999999n, 'pre-1970 with µs');
    assert.match(String(r1['doc']), /12345678901234567890123/, 'big JSON numbers stay text');
    assert.deepEqual(r1['bin'], new Uint8Array([0, 255, 0, 1]));
    assert.deepEqual(r1['blb'], new Uint8Array([0]));
    assert.deepEqual(r2['bin'], new Uint8Array([]));
    assert.equal(r1['s'], '', 'empty string is not NULL');
    assert.equal(r2['s'], 'NULL', 'the text NULL is not NULL');
    assert.equal(r1['e'], 'héllo 🎉 naïve');
    assert.equal(r1['en'], 'b');
    assert.equal(r1['y'], 2024);
    assert.equal(r1['tm'], '12:34:56.789');
    for (const c of COLUMNS) if (c[0] !== 'id') assert.equal(r3[c[0]], null, `${c[0]} NULL`);

    const coerce = compileCoercer(asset.fields);
    for (const r of rows) {
      const out = coerce(r);
      assert.ok(out.ok, JSON.stringify(!out.ok && out.errors));
      for (const c of COLUMNS) assert.deepEqual(out.row[c[0]], r[c[0]], `validate keeps ${c[0]} as read`);
    }
  });

  it('round-trips through runJob into Parquet, read back by DuckDB', async () => {
    const plan = makePlan({ type: 'mysql', connection: db.connection, tables: [{ name: `${db.database}.alltypes`, object: 'alltypes' }], asset: makeAsset(COLUMNS) });
    await assertParquetRoundTrip(mysqlConnector, plan, COLUMNS);
  });

  it('reads a custom query as a subquery', async () => {
    const asset = makeAsset([
      ['id', 'long', true],
      ['label', 'string'],
    ]);
    const plan = makePlan({
      type: 'mysql',
      connection: db.connection,
      tables: [{ object: 'q', query: "SELECT id, CONCAT(en, '!') AS label FROM alltypes WHERE id < 3;" }],
      asset,
    });
    const rows = await collect(mysqlConnector.read(makeCtx(plan)));
    rows.sort((a, b) => Number(a['id']) - Number(b['id']));
    assert.deepEqual(rows, [
      { id: 1n, label: 'b!' },
      { id: 2n, label: 'a!' },
    ]);
  });
});
