/**
 * Connectors own their options and objects: loadJob checks a job's `source`
 * block against the connector's options schema with every other config
 * problem (file, key, YAML line), an unknown option lists the valid ones,
 * and the objects come from the connector's `objects` hook (CSV globs, SQL
 * tables, a third-party connector's own shape), not from lib/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { z } from 'zod';
import { loadJob } from '../../../lib/config/index.js';
import { parseSourceOptions } from '../../../lib/config/source-options.js';
import { DativoError } from '../../../lib/errors.js';
import type { JobPlan } from '../../../lib/plan.js';
import { ORDERS_ASSET, problemsOf, tempTree } from './helpers.js';

const head = (connector: string) => `tenant_id: acme\nsource_connector: ${connector}\nasset_path: orders.yaml\n`;

test('CSV: a bad parser option, an unknown option and a missing variable are reported together, with keys and lines', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const job = await t.write(
      'job.yaml',
      `${head('csv')}source:\n  files: [data/a.csv]\n  fils: [data/b.csv]\n  engine: {options: {native: {delimiter: "", encoding: ebcdic}}}\n  settle_seconds: -1\ntarget: {warehouse: "\${NOPE_WH}"}\n`,
    );
    const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
    const byKey = new Map(problems.map((p) => [p.key, p.message]));
    assert.ok(problems.every((p) => p.file === job));
    assert.equal(byKey.get('target.warehouse'), 'variable ${NOPE_WH} is not set (line 9)');
    assert.match(byKey.get('source.fils') ?? '', /^unknown option of connector "csv" \(did you mean "files"\?\); valid options: (\w+, )*files, (\w+, )*settle_seconds(, \w+)* \(line 6\)$/);
    assert.match(byKey.get('source.engine.options.native.delimiter') ?? '', /must be a non-empty string without line breaks \(line 7\)/);
    assert.match(byKey.get('source.engine.options.native.encoding') ?? '', /unsupported encoding "ebcdic"/);
    assert.match(byKey.get('source.settle_seconds') ?? '', /must be a number of seconds from 0 to 86400 \(line 8\)/);
  } finally {
    await t.cleanup();
  }
});

test('CSV: a files entry with an unknown key names the valid keys; the check also runs when the job schema fails', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const job = await t.write('job.yaml', `${head('csv')}bogus: 1\nsource:\n  files: [{path: a.csv, objekt: orders}]\n`);
    const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
    assert.deepEqual(
      problems.map((p) => p.key),
      ['bogus', 'source.files[0].objekt'],
    );
    assert.equal(problems[1]!.message, 'unknown key (did you mean "object"?); valid keys: file, id, object, path (line 6)');
  } finally {
    await t.cleanup();
  }
});

test('Postgres: unknown source option, unknown table key and an impossible port, all at once', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const job = await t.write(
      'job.yaml',
      `${head('postgres')}source:\n  tabels: [{name: public.orders}]\n  tables: [{name: public.orders, cursor_feild: updated_at}]\n  connection: {host: db, port: 70000}\n`,
    );
    const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
    const byKey = new Map(problems.map((p) => [p.key, p.message]));
    assert.match(byKey.get('source.tabels') ?? '', /^unknown option of connector "postgres" \(did you mean "tables"\?\); valid options: .*\bconnection\b.*\btables\b.* \(line 5\)$/);
    assert.equal(
      byKey.get('source.tables[0].cursor_feild'),
      'unknown key (did you mean "cursor_field"?); valid keys: cursor_field, name, object, primary_key, query, table (line 6)',
    );
    assert.match(byKey.get('source.connection.port') ?? '', /65535.*\(line 7\)/);
  } finally {
    await t.cleanup();
  }
});

test('objects hook: CSV files and globs grouped by object, paths made absolute (job folder first, then cwd)', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    await t.write('jobs/data/a1.csv', 'id\n');
    await t.write('shared/b.csv', 'id\n');
    const job = await t.write(
      'jobs/job.yaml',
      'tenant_id: acme\nsource_connector: csv\nasset_path: ../orders.yaml\nsource:\n  files: ["data/*.csv", {path: "shared/*.csv", object: refunds, id: r}, {file: one.csv}]\n',
    );
    const plan = await loadJob(job, { cwd: t.dir, env: {} });
    assert.deepEqual(plan.source.objects, [
      { name: 'orders', config: { files: [{ path: path.join(t.dir, 'jobs/data/*.csv') }, { file: path.join(t.dir, 'jobs/one.csv') }] } },
      { name: 'refunds', config: { files: [{ path: path.join(t.dir, 'shared/*.csv'), object: 'refunds', id: 'r' }] } },
    ]);
    // The same entries, resolved, are what the connector reads from the options.
    assert.deepEqual(plan.source.options['files'], [
      { path: path.join(t.dir, 'jobs/data/*.csv') },
      { path: path.join(t.dir, 'shared/*.csv'), object: 'refunds', id: 'r' },
      { file: path.join(t.dir, 'jobs/one.csv') },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('objects hook: SQL tables, one object each; a table cursor_field is the cursor unless the job names one; names read twice', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const body = (inc: string) =>
      `${head('postgres')}source:\n  tables:\n    - {name: public.orders, cursor_field: updated_at}\n    - {object: big, query: "SELECT 1 AS id"}\n  incremental: {strategy: updated${inc}}\n`;
    const plan = await loadJob(await t.write('job.yaml', body('')), { cwd: t.dir, env: {} });
    assert.deepEqual(plan.source.objects, [
      { name: 'public.orders', config: { name: 'public.orders', cursor_field: 'updated_at' } },
      { name: 'big', config: { object: 'big', query: 'SELECT 1 AS id' } },
    ]);
    assert.equal(plan.source.incremental?.cursorField, 'updated_at');
    const own = await loadJob(await t.write('own.yaml', body(', cursor_field: id')), { cwd: t.dir, env: {} });
    assert.equal(own.source.incremental?.cursorField, 'id');

    const twice = await t.write('twice.yaml', `${head('postgres')}source:\n  tables: [{name: a.x, object: o}, {name: b.x, object: o}]\n`);
    assert.deepEqual(await problemsOf(loadJob(twice, { cwd: t.dir, env: {} })), [
      { file: twice, key: 'source.tables[1]', message: 'object "o" is already read by source.tables[0] (line 5)' },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('a third-party connector by path declares its own options and objects; lib/ knows neither', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const zod = import.meta.resolve('zod');
    await t.write(
      'acme-connector.mjs',
      `import { z } from ${JSON.stringify(zod)};
export default {
  descriptor: { name: 'acme', roles: ['source'], allowedInCloud: true, incrementalStrategies: ['updated'], sortedByCursor: false, description: 'test' },
  options: z.looseObject({ boards: z.array(z.strictObject({ board_id: z.string() })) }),
  objects: (options) => options.boards.map((b, i) => ({ name: 'board_' + b.board_id, config: b, key: ['source', 'boards', i] })),
  read() { throw new Error('not read in this test'); },
};
`,
    );
    const good = await t.write('good.yaml', `${head('./acme-connector.mjs')}source:\n  boards: [{board_id: "7"}, {board_id: "9"}]\n`);
    const plan = await loadJob(good, { cwd: t.dir, env: {} });
    assert.deepEqual(plan.source.objects.map((o) => o.name), ['board_7', 'board_9']);
    const bad = await t.write('bad.yaml', `${head('./acme-connector.mjs')}source:\n  tables: [{name: x}]\n`);
    const problems = await problemsOf(loadJob(bad, { cwd: t.dir, env: {} }));
    assert.deepEqual(problems.map((p) => p.key), ['source.tables', 'source.boards']);
    assert.match(problems[0]!.message, /^unknown option of connector "acme"; valid options: .*\bboards\b/);
    assert.equal(problems[1]!.message, 'required');
  } finally {
    await t.cleanup();
  }
});

test('parseSourceOptions: the typed options, or CONFIG_INVALID listing every bad key with its file, never a value', () => {
  const schema = z.looseObject({ connection: z.looseObject({ api_key: z.string().min(1), timeout_seconds: z.number().positive() }), window_rows: z.number().int().optional() });
  const plan = (options: Record<string, unknown>) => ({ file: '/jobs/x.yaml', source: { options } }) as unknown as JobPlan;
  assert.deepEqual(parseSourceOptions(plan({ connection: { api_key: 'sk_1', timeout_seconds: 3 } }), schema, 'x').connection.timeout_seconds, 3);
  const secret = 'sk_live_do_not_print';
  assert.throws(
    () => parseSourceOptions(plan({ connection: { api_key: secret, timeout_seconds: -1 }, window_rows: 1.5 }), schema, 'google_sheets', 'Google Sheets'),
    (err: unknown) => {
      assert.ok(err instanceof DativoError);
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.match(err.message, /^invalid Google Sheets options: source\.connection\.timeout_seconds: .+; source\.window_rows: .+$/);
      assert.deepEqual(err.problems.map((p) => [p.file, p.key]), [['/jobs/x.yaml', 'source.connection.timeout_seconds'], ['/jobs/x.yaml', 'source.window_rows']]);
      assert.deepEqual(err.context, { connector: 'google_sheets', file: '/jobs/x.yaml' });
      assert.ok(!JSON.stringify({ m: err.message, p: err.problems }).includes(secret));
      return true;
    },
  );
});
