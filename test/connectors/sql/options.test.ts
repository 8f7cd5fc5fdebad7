import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cursorFilter } from '../../../connectors/sql/cursor.js';
import { MYSQL_ENV, parseTableSpec, PG_ENV, resolveConnection, splitQualifiedName } from '../../../connectors/sql/options.js';
import { makeAsset, makeCtx, makePlan } from '../postgres/helpers.js';

const asset = makeAsset([
  ['id', 'long', true],
  ['updated_at', 'timestamp'],
  ['day', 'date'],
]);

describe('resolveConnection', () => {
  it('takes connection keys first, then credentials, then the environment, then defaults', () => {
    const plan = makePlan({ type: 'postgres', connection: { host: 'db1', port: '6543' }, credentials: { PGPASSWORD: 'pw-from-creds' }, tables: [{ name: 't' }], asset });
    const s = resolveConnection(plan, PG_ENV, { PGUSER: 'envuser', PGDATABASE: 'envdb', PGPASSWORD: 'ignored' });
    assert.equal(s.host, 'db1');
    assert.equal(s.port, 6543);
    assert.equal(s.user, 'envuser');
    assert.equal(s.database, 'envdb');
    assert.equal(s.password, 'pw-from-creds');
    assert.equal(s.ssl, false);
    assert.equal(s.batchSize, 2000);
    const d = resolveConnection(makePlan({ type: 'mysql', connection: {}, tables: [{ name: 't' }], asset }), MYSQL_ENV, { MYSQL_DB: 'shop', MYSQL_PWD: 'x' });
    assert.deepEqual([d.host, d.port, d.user, d.database, d.password], ['localhost', 3306, 'root', 'shop', 'x']);
  });

  it('lists bad keys as CONFIG_INVALID problems', () => {
    const plan = makePlan({ type: 'postgres', connection: { port: 'abc', ssl: 'maybe' }, tables: [{ name: 't' }], asset });
    assert.throws(() => resolveConnection(plan, PG_ENV, {}), (e: Error & { code?: string; problems?: { key: string }[] }) => {
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.deepEqual(e.problems!.map((p) => p.key).sort(), ['source.connection.port', 'source.connection.ssl']);
      return true;
    });
  });
});

describe('table entries', () => {
  it('splits qualified names, honouring quotes', () => {
    assert.deepEqual(splitQualifiedName('public.orders'), { schema: 'public', table: 'orders' });
    assert.deepEqual(splitQualifiedName('orders'), { table: 'orders' });
    assert.deepEqual(splitQualifiedName('"my.schema"."Or""ders"'), { schema: 'my.schema', table: 'Or"ders' });
    assert.deepEqual(splitQualifiedName('`shop`.`order items`'), { schema: 'shop', table: 'order items' });
    assert.equal(splitQualifiedName('a.b.c'), undefined);
    assert.equal(splitQualifiedName('a.'), undefined);
  });

  it('reads tables and queries', () => {
    const plan = makePlan({ type: 'postgres', connection: {}, tables: [{ name: 'public.orders', object: 'o', cursor_field: 'updated_at', primary_key: 'id' }, { name: 'q', query: 'select 1;  ' }], asset });
    assert.deepEqual(parseTableSpec(plan.source.objects[0]!, 0, plan, 'postgres'), { object: 'o', index: 0, schema: 'public', table: 'orders', cursorField: 'updated_at', primaryKey: ['id'] });
    assert.deepEqual(parseTableSpec(plan.source.objects[1]!, 1, plan, 'postgres'), { object: 'q', index: 1, query: 'select 1' });
  });
});

describe('cursorFilter', () => {
  const start = new Date('2026-11-27T12:00:00Z');
  const inc = (extra: Record<string, unknown> = {}) =>
    makePlan({ type: 'postgres', connection: {}, tables: [{ name: 't' }], asset, incremental: { strategy: 'updated', cursorField: 'updated_at', ...extra } });

  it('reads everything on a full refresh and on a first run without lookback', () => {
    assert.deepEqual(cursorFilter(makeCtx(makePlan({ type: 'postgres', connection: {}, tables: [{ name: 't' }], asset })), { object: 't', index: 0, table: 't' }), { mode: 'all' });
    assert.deepEqual(cursorFilter(makeCtx(inc()), { object: 't', index: 0, table: 't' }), { mode: 'all', field: 'updated_at' });
  });

  it('starts a first run with lookback N days before the run, NULL cursors included', () => {
    const f = cursorFilter(makeCtx(inc({ lookbackDays: 2 }), { runStartedAt: start }), { object: 't', index: 0, table: 't' });
    assert.deepEqual(f, { mode: 'from', field: 'updated_at', kind: 'timestamp', value: '2026-11-25T12:00:00.000000Z', inclusive: true, includeNulls: true, origin: 'lookback' });
  });

  it('continues from the saved cursor, inclusive, without NULL cursors', () => {
    const ctx = makeCtx(inc({ lookbackDays: 2 }), { state: { cursor: { field: 'updated_at', value: '2026-01-01T00:00:00.000001Z', written: [] } } });
    assert.deepEqual(cursorFilter(ctx, { object: 't', index: 0, table: 't' }), {
      mode: 'from', field: 'updated_at', kind: 'timestamp', value: '2026-01-01T00:00:00.000001Z', inclusive: true, includeNulls: false, origin: 'saved',
    });
    // After a window with an inclusive upper bound (max(id)), the next read starts after it.
    const after = makeCtx(inc(), { state: { cursor: { field: 'updated_at', value: '2026-01-01T00:00:00.000001Z', written: [], upper: 'inclusive' } } });
    const f = cursorFilter(after, { object: 't', index: 0, table: 't' });
    assert.equal(f.mode === 'from' && f.inclusive, false);
  });

  it('uses an integer bound for the id strategy and a date bound for a date cursor', () => {
    const byId = makePlan({ type: 'mysql', connection: {}, tables: [{ name: 't' }], asset, incremental: { strategy: 'id', cursorField: 'id', lookbackDays: 3 } });
    assert.deepEqual(cursorFilter(makeCtx(byId), { object: 't', index: 0, table: 't' }), { mode: 'all', field: 'id' });
    const byDay = makePlan({ type: 'mysql', connection: {}, tables: [{ name: 't' }], asset, incremental: { strategy: 'updated', cursorField: 'day', lookbackDays: 1 } });
    const f = cursorFilter(makeCtx(byDay, { runStartedAt: start }), { object: 't', index: 0, table: 't' });
    assert.equal(f.mode === 'from' && f.kind, 'date');
    assert.equal(f.mode === 'from' && f.value, '2026-11-26');
  });

  it('refuses a saved cursor of another column and a table cursor that contradicts the job', () => {
    const ctx = makeCtx(inc(), { state: { cursor: { field: 'created_at', value: '2026-01-01T00:00:00Z', written: [] } } });
    assert.throws(() => cursorFilter(ctx, { object: 't', index: 0, table: 't' }), { code: 'CONFIG_INVALID' });
    assert.throws(() => cursorFilter(makeCtx(inc()), { object: 't', index: 0, table: 't', cursorField: 'day' }), /differs from source.incremental.cursor_field/);
  });
});
