import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getConnector } from '../../../connectors/index.js';
import mysqlConnector, { discoverAsset } from '../../../connectors/mysql/index.js';
import { loadAsset } from '../../../lib/config/index.js';
import { silentLogger } from '../../../lib/log.js';
import { runJob } from '../../../lib/run.js';
import { collect, makeAsset, makeCtx, makePlan, randomName } from '../postgres/helpers.js';
import { createTestMysql, type TestMysql } from './db.js';

const opts = () => ({ signal: new AbortController().signal, log: silentLogger() });

describe('mysql: registry, credentials, discover', () => {
  let db: TestMysql;
  let dir: string;
  const user = randomName('dativo_u');
  const hosts = ['%', 'localhost', '127.0.0.1'];
  before(async () => {
    db = await createTestMysql();
    dir = await mkdtemp(path.join(tmpdir(), 'dativo-my-discover-'));
    for (const h of hosts) {
      await db.conn.query(`CREATE USER '${user}'@'${h}' IDENTIFIED BY 'right-password'`);
      await db.conn.query(`GRANT SELECT ON \`${db.database}\`.* TO '${user}'@'${h}'`);
    }
    await db.conn.query(`
      CREATE TABLE shop_orders (
        order_id BIGINT, line INT, amount DECIMAL(12,2) NOT NULL, ratio DOUBLE, small FLOAT, ok TINYINT(1), tiny TINYINT, big_u BIGINT UNSIGNED,
        int_u INT UNSIGNED, placed DATE, updated_at DATETIME(6) NOT NULL, ts TIMESTAMP(3) NULL, doc JSON, raw VARBINARY(8), flag BIT(1),
        note VARCHAR(20), e ENUM('a','b'), PRIMARY KEY (order_id, line));
      INSERT INTO shop_orders VALUES (1, 1, 9.99, 0.5, 0.25, 1, 7, 18446744073709551615, 4294967295, '2026-01-02', '2026-01-02 03:04:05.678901',
        NULL, '{"a": 1}', X'01', b'1', 'n', 'a');`);
  });
  after(async () => {
    for (const h of hosts) await db?.conn.query(`DROP USER IF EXISTS '${user}'@'${h}'`).catch(() => undefined);
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is a built-in of the registry, refused in cloud mode by its descriptor', async () => {
    const c = await getConnector('mysql');
    assert.equal(c.descriptor.name, 'mysql');
    assert.equal(c.descriptor.allowedInCloud, false);
  });

  it('the right password passes check(); a wrong one is AUTH_FAILED (exit 3)', async () => {
    const asset = makeAsset([['order_id', 'long', true]]);
    const good = makePlan({ type: 'mysql', connection: { ...db.connection, user }, credentials: { password: 'right-password' }, tables: [{ name: 'shop_orders' }], asset });
    await mysqlConnector.check!(good, opts());
    const bad = makePlan({ type: 'mysql', connection: { ...db.connection, user, password: 'wrong-password' }, tables: [{ name: 'shop_orders' }], asset });
    await assert.rejects(mysqlConnector.check!(bad, opts()), { code: 'AUTH_FAILED' });
    const summary = await runJob({ ...bad, target: { ...bad.target, warehouse: new URL(`file://${dir}/wh`).href } }, { connector: mysqlConnector });
    assert.equal(summary.exit_code, 3);
    assert.equal(summary.error?.code, 'AUTH_FAILED');
  });

  it('an unknown database is SOURCE_NOT_FOUND', async () => {
    const plan = makePlan({ type: 'mysql', connection: { ...db.connection, database: 'dativo_no_such_db' }, tables: [{ name: 'shop_orders' }], asset: makeAsset([['order_id', 'long']]) });
    await assert.rejects(mysqlConnector.check!(plan, opts()), { code: 'SOURCE_NOT_FOUND' });
  });

  it('discover() reads types, NOT NULL and the composite primary key', async () => {
    const plan = makePlan({ type: 'mysql', connection: db.connection, tables: [{ name: 'shop_orders', object: 'orders' }], asset: makeAsset([['order_id', 'long']]) });
    const [o] = await mysqlConnector.discover!(plan, opts());
    assert.deepEqual(o!.primaryKey, ['order_id', 'line']);
    const types = Object.fromEntries(o!.columns.map((c) => [c.name, [c.type, c.required]]));
    assert.deepEqual(types, {
      order_id: ['long', true], line: ['int', true], amount: ['decimal(12,2)', true], ratio: ['double', false], small: ['float', false],
      ok: ['int', false], tiny: ['int', false], big_u: ['decimal(20,0)', false], int_u: ['long', false], placed: ['date', false],
      updated_at: ['timestamp', true], ts: ['timestamp', false], doc: ['json', false], raw: ['binary', false], flag: ['boolean', false],
      note: ['string', false], e: ['string', false],
    });
  });

  it('discoverAsset() writes an asset YAML the job can use as is', async () => {
    const plan = makePlan({
      type: 'mysql', connection: db.connection, tables: [{ name: 'shop_orders', object: 'orders' }], asset: makeAsset([['order_id', 'long']]),
      incremental: { strategy: 'updated', cursorField: 'updated_at' },
    });
    const file = path.join(dir, 'orders.yaml');
    await writeFile(file, await discoverAsset(plan, { log: silentLogger() }));
    const asset = await loadAsset(file);
    assert.deepEqual(asset.primaryKey, ['order_id', 'line']);
    assert.equal(asset.cursorField, 'updated_at');
    const rows = await collect(mysqlConnector.read(makeCtx({ ...plan, asset, syncMode: 'full_refresh' })));
    assert.equal(rows.length, 1);
    const r = rows[0]!;
    assert.equal(r['ok'], 1, 'TINYINT(1) is an int: BOOL is only its alias, and the column holds -128..127');
    assert.equal(r['flag'], true);
    assert.equal(r['int_u'], 4294967295n);
    assert.equal(r['big_u'], '18446744073709551615', 'BIGINT UNSIGNED is decimal(20,0): the exact digits');
    assert.equal(r['updated_at'], 1767323045678901n);
  });
});
