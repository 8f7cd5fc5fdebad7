import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadJob, packageRoot } from '../../../lib/config/index.js';
import { problemsOf, tempTree } from './helpers.js';

/** The `<!-- file: x -->` + fenced block pairs of a Markdown document. */
function exampleFiles(md: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /<!-- file: (\S+) -->\n```[a-z]*\n([\s\S]*?)```/g;
  for (const m of md.matchAll(re)) out.set(m[1]!, m[2]!);
  return out;
}

test('the complete example in docs/configuration.md loads as documented', async () => {
  const md = await readFile(path.join(packageRoot(), 'docs/configuration.md'), 'utf8');
  const files = exampleFiles(md);
  assert.deepEqual([...files.keys()], ['pipelines/acme/pg_invoices.yaml', 'schemas/postgres/v1.0/invoices.yaml', 'secrets/acme/postgres.env']);
  const t = await tempTree();
  try {
    for (const [rel, text] of files) await t.write(rel, text);
    const job = path.join(t.dir, 'pipelines/acme/pg_invoices.yaml');
    const plan = await loadJob(job, { cwd: t.dir, env: {}, secretsDir: path.join(t.dir, 'secrets') });
    assert.equal(plan.source.type, 'postgres');
    assert.equal((plan.source.options['connection'] as Record<string, unknown>)['host'], 'db.internal');
    assert.equal((plan.source.options['connection'] as Record<string, unknown>)['password'], 'not-a-real-password');
    assert.deepEqual(plan.source.incremental, { strategy: 'updated', cursorField: 'changed_at', lookbackDays: 2, lagSeconds: 60 });
    assert.deepEqual(plan.source.objects.map((o) => o.name), ['invoices']);
    assert.equal(plan.target.type, 'iceberg');
    assert.equal(plan.target.warehouse, pathToFileURL(path.join(t.dir, 'warehouse')).href);
    assert.deepEqual(plan.target.catalog, { type: 'sql', name: 'dativo', uri: `sqlite:${path.join(t.dir, 'warehouse/catalog.db')}` });
    assert.equal(plan.target.namespace, 'acme.finance', 'tenant-scoped: the job names no namespace');
    assert.equal(plan.target.targetFileSizeBytes, 64 * 1024 * 1024);
    assert.equal(plan.validationMode, 'warn');
    assert.deepEqual(plan.asset.primaryKey, ['invoice_id']);
    assert.ok(plan.secrets.includes('not-a-real-password'));

    // Without the secrets folder the password is reported, with file, key and line.
    assert.deepEqual(await problemsOf(loadJob(job, { cwd: t.dir, env: {} })), [
      { file: job, key: 'source.connection.password', message: 'variable ${PG_PASSWORD} is not set (line 16)' },
    ]);
  } finally {
    await t.cleanup();
  }
});
