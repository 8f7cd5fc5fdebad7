import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getConnector } from '../../../connectors/index.js';
import pgConnector, { discoverAsset } from '../../../connectors/postgres/index.js';
import { loadAsset } from '../../../lib/config/index.js';
import { silentLogger } from '../../../lib/log.js';
import { runJob } from '../../../lib/run.js';
import { collect, makeAsset, makeCtx, makePlan } from './helpers.js';
import { createTestPg, type TestPg } from './db.js';

const opts = () => ({ signal: new AbortController().signal, log: silentLogger() });

describe('postgres: registry, credentials, discover', () => {
  let db: TestPg;
  let dir: string;
  before(async () => {
    db = await createTestPg();
    dir = await mkdtemp(path.join(tmpdir(), 'dativo-pg-discover-'));
    await db.client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok');
      CREATE TABLE public.shop_orders (
        order_id bigint, line int, amount numeric(12,2) NOT NULL, total numeric, ratio float8, small float4, ok bool,
        placed date, updated_at timestamptz NOT NULL, naive timestamp, doc jsonb, raw bytea, u uuid, tags text[], m mood, note varchar(20),
        PRIMARY KEY (order_id, line));
      INSERT INTO shop_orders VALUES (1, 1, 9.99, 1.5, 0.5, 0.25, true, '2026-01-02', '2026-01-02 03:04:05.678901+00', NULL, '{"a": 1}', '\\x01', NULL, '{x}', 'ok', 'n');`);
  });
  after(async () => {
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is a built-in of the registry, refused in cloud mode by its descriptor', async () => {
    const c = await getConnector('postgres');
    assert.equal(c.descriptor.name, 'postgres');
    assert.equal(c.descriptor.allowedInCloud, false);
    assert.ok(Object.isFrozen(c.descriptor));
  });

  it('an unknown role is AUTH_FAILED (exit 3) from check() and from a run', async () => {
    const asset = makeAsset([['order_id', 'long', true]]);
    const plan = makePlan({ type: 'postgres', connection: { ...db.connection, user: 'dativo_no_such_role', password: 'wrong' }, tables: [{ name: 'shop_orders' }], asset });
    await assert.rejects(pgConnector.check!(plan, opts()), { code: 'AUTH_FAILED' });
    const summary = await runJob({ ...plan, target: { ...plan.target, warehouse: new URL(`file://${dir}/wh`).href } }, { connector: pgConnector });
    assert.equal(summary.exit_code, 3);
    assert.equal(summary.error?.code, 'AUTH_FAILED');
  });

  it('an unknown database is SOURCE_NOT_FOUND', async () => {
    const plan = makePlan({ type: 'postgres', connection: { ...db.connection, database: 'dativo_no_such_db' }, tables: [{ name: 'shop_orders' }], asset: makeAsset([['order_id', 'long']]) });
    await assert.rejects(pgConnector.check!(plan, opts()), { code: 'SOURCE_NOT_FOUND' });
  });

  it('statement_timeout_ms cancels a long read as SOURCE_UNAVAILABLE (retryable)', async () => {
    const asset = makeAsset([['id', 'int', true]]);
    const plan = makePlan({
      type: 'postgres',
      connection: { ...db.connection, statement_timeout_ms: 50 },
      tables: [{ object: 'slow', query: 'SELECT 1 AS id FROM pg_sleep(1)' }],
      asset,
    });
    await assert.rejects(collect(pgConnector.read(makeCtx(plan))), (e: Error & { code?: string; disposition?: string; context?: Record<string, unknown> }) => {
      assert.equal(e.code, 'SOURCE_UNAVAILABLE');
      assert.equal(e.disposition, 'retryable');
      assert.equal(e.context?.['sqlstate'], '57014');
      return true;
    });
  });

  it('discover() reads types, NOT NULL and the composite primary key from the catalog', async () => {
    const plan = makePlan({ type: 'postgres', connection: db.connection, tables: [{ name: 'public.shop_orders', object: 'orders' }], asset: makeAsset([['order_id', 'long']]) });
    const [o] = await pgConnector.discover!(plan, opts());
    assert.equal(o!.name, 'orders');
    assert.deepEqual(o!.primaryKey, ['order_id', 'line']);
    const types = Object.fromEntries(o!.columns.map((c) => [c.name, [c.type, c.required]]));
    assert.deepEqual(types, {
      order_id: ['long', true], line: ['int', true], amount: ['decimal(12,2)', true], total: ['string', false], ratio: ['double', false],
      small: ['float', false], ok: ['boolean', false], placed: ['date', false], updated_at: ['timestamp', true], naive: ['timestamp', false],
      doc: ['json', false], raw: ['binary', false], u: ['string', false], tags: ['json', false], m: ['string', false], note: ['string', false],
    });
    assert.equal(o!.columns.find((c) => c.name === 'amount')!.sourceType, 'numeric(12,2)');
  });

  it('discoverAsset() writes an asset YAML the job can use as is', async () => {
    const plan = makePlan({
      type: 'postgres', connection: db.connection, tables: [{ name: 'public.shop_orders', object: 'orders' }], asset: makeAsset([['order_id', 'long']]),
      incremental: { strategy: 'updated', cursorField: 'updated_at' },
    });
    const yaml = await discoverAsset(plan, { log: silentLogger() });
    const file = path.join(dir, 'orders.yaml');
    await writeFile(file, yaml);
    const asset = await loadAsset(file);
    assert.equal(asset.name, 'orders');
    assert.equal(asset.sourceType, 'postgres');
    assert.deepEqual(asset.primaryKey, ['order_id', 'line']);
    assert.equal(asset.cursorField, 'updated_at');
    assert.equal(asset.fields.length, 16);
    // ... and reading with it gives canonical values that match its types.
    const rows = await collect(pgConnector.read(makeCtx({ ...plan, asset, syncMode: 'full_refresh' })));
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!['amount'], '9.99');
    assert.equal(rows[0]!['updated_at'], 1767323045678901n);
  });
});
