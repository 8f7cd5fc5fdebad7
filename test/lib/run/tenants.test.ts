/**
 * Tenant isolation by default: the same asset run by two tenants lands in
 * two tables (`<tenant>.<domain>.<table>` at `<warehouse>/<tenant>/<domain>/…`),
 * for Iceberg and plain Parquet targets; a table an earlier version wrote at
 * the pre-tenant default keeps being used by the job that wrote it, and only
 * by that job.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { loadJob } from '../../../lib/config/index.js';
import { createLogger } from '../../../lib/log.js';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { runJob, type RunSummary } from '../../../lib/run.js';
import { openStorage } from '../../../lib/storage/index.js';
import { readIcebergTable } from '../../helpers/iceberg-read.js';
import { project, type Project } from '../cli/helpers.js';
import { Writable } from 'node:stream';

let pr: Project;
before(async () => {
  pr = await project('tenants');
  await pr.write(
    'asset.yaml',
    ['apiVersion: v3.0.2', 'kind: DataContract', 'name: events', 'version: "1.0"', 'domain: shop', 'dataProduct: web', 'schema:', '  - {name: id, type: long, required: true}', 'primary_key: [id]', 'team: {owner: data@example.com}', ''].join('\n'),
  );
});
after(() => pr.cleanup());

async function job(file: string, tenant: string, data: string, opts: { catalog: boolean; namespace?: string }): Promise<string> {
  return pr.write(
    file,
    [
      `tenant_id: ${tenant}`,
      'source_connector: csv',
      `target_connector: ${opts.catalog ? 'iceberg' : 'parquet'}`,
      'asset_path: asset.yaml',
      'source:',
      `  files: [{path: "${data}/*.csv", object: events}]`,
      '  incremental: {strategy: file_modified_time}',
      'target:',
      `  warehouse: wh-${opts.catalog ? 'ice' : 'plain'}`,
      ...(opts.namespace ? [`  namespace: ${opts.namespace}`] : []),
      `state: {path: state/${tenant}/${path.basename(file, '.yaml')}.json}`,
      'reject_dir: rejects',
      '',
    ].join('\n'),
  );
}

function capture(): { log: ReturnType<typeof createLogger>; events: () => string[] } {
  let text = '';
  const destination = new Writable({
    write(c: Buffer, _e, cb) {
      text += c.toString();
      cb();
    },
  });
  return { log: createLogger({ level: 'info', destination }), events: () => text.split('\n').filter(Boolean).map((l) => String((JSON.parse(l) as { event_type?: string }).event_type)) };
}

async function run(file: string, log?: ReturnType<typeof createLogger>): Promise<RunSummary> {
  const r = await runJob(await loadJob(file, { cwd: pr.dir }), log ? { log } : {});
  assert.equal(r.exit_code, 0, JSON.stringify(r.error ?? r.objects[0]?.error));
  return r;
}

async function icebergIds(namespace: string[]): Promise<{ ids: number[]; location: string } | undefined> {
  const wh = pr.p('wh-ice');
  const storage = await openStorage(pathToFileURL(wh).href);
  const catalog = (await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${path.join(wh, 'catalog.db')}` }, storage))!;
  try {
    const t = await catalog.loadTable({ namespace, name: 'events' });
    if (!t) return undefined;
    const rows = await readIcebergTable({ warehouseDir: wh, location: t.metadata.location, metadataLocation: t.metadataLocation });
    return { ids: rows.map((r) => Number(r['id'])).sort((a, b) => a - b), location: t.metadata.location };
  } finally {
    await catalog.close();
  }
}

test('Iceberg: two tenants running the same asset get two tables; an explicit namespace is a shared one', async () => {
  await pr.write('a/1.csv', 'id\n1\n2\n');
  await pr.write('b/1.csv', 'id\n101\n102\n');
  const a = await job('ice-a.yaml', 'acme', 'a', { catalog: true });
  const b = await job('ice-b.yaml', 'globex', 'b', { catalog: true });
  await run(a);
  await run(b);
  const ta = await icebergIds(['acme', 'shop']);
  const tb = await icebergIds(['globex', 'shop']);
  assert.deepEqual(ta?.ids, [1, 2]);
  assert.deepEqual(tb?.ids, [101, 102]);
  assert.equal(ta?.location, pathToFileURL(pr.p('wh-ice/acme/shop/web/events')).href);
  assert.equal(tb?.location, pathToFileURL(pr.p('wh-ice/globex/shop/web/events')).href);
  assert.equal(await icebergIds(['shop']), undefined, 'no table at the pre-tenant default');

  const sa = await job('ice-sa.yaml', 'acme', 'a', { catalog: true, namespace: 'shared' });
  const sb = await job('ice-sb.yaml', 'globex', 'b', { catalog: true, namespace: 'shared' });
  await run(sa);
  await run(sb);
  const shared = await icebergIds(['shared']);
  assert.deepEqual(shared?.ids, [1, 2, 101, 102]);
  assert.equal(shared?.location, pathToFileURL(pr.p('wh-ice/shop/web/events')).href);
});

test('Iceberg: a table an earlier version wrote at the old default keeps being used by its job, not by another tenant', async () => {
  await pr.write('old/1.csv', 'id\n1\n2\n');
  await pr.write('other/1.csv', 'id\n201\n');
  // An earlier version: no tenant in the default, i.e. the table `shop.events` at wh/shop/web/events.
  const old = await job('legacy.yaml', 'initech', 'old', { catalog: true, namespace: 'shop' });
  await run(old);
  // The upgrade: the same job, now without a namespace.
  await writeFile(old, (await readFile(old, 'utf8')).replace('  namespace: shop\n', ''));
  await pr.write('old/2.csv', 'id\n3\n');
  const { log, events } = capture();
  const r = await run(old, log);
  assert.equal(r.objects[0]?.rows_written, 1);
  assert.ok(events().includes('legacy_table'), events().join(', '));
  assert.deepEqual((await icebergIds(['shop']))?.ids, [1, 2, 3]);
  assert.equal(await icebergIds(['initech', 'shop']), undefined);
  // Another tenant's new job with the same asset gets its own table.
  const other = await job('legacy-other.yaml', 'umbrella', 'other', { catalog: true });
  await run(other);
  assert.deepEqual((await icebergIds(['umbrella', 'shop']))?.ids, [201]);
  assert.deepEqual((await icebergIds(['shop']))?.ids, [1, 2, 3]);
});

async function parquetUnder(rel: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(path.join(d, e.name));
      else if (e.name.endsWith('.parquet')) out.push(e.name);
    }
  };
  await walk(pr.p(rel));
  return out;
}

test('plain Parquet: tenant folders by default; the old folder is kept by the job whose files are in it', async () => {
  await pr.write('pa/1.csv', 'id\n1\n');
  await pr.write('pb/1.csv', 'id\n2\n');
  const a = await job('plain-a.yaml', 'acme', 'pa', { catalog: false });
  const b = await job('plain-b.yaml', 'globex', 'pa', { catalog: false });
  const ra = await run(a);
  const rb = await run(b);
  assert.equal((await parquetUnder('wh-plain/acme/shop/web/events')).length, 1);
  assert.equal((await parquetUnder('wh-plain/globex/shop/web/events')).length, 1);
  assert.match(ra.objects[0]!.files[0]!, /\/wh-plain\/acme\/shop\/web\/events\/data\//);
  assert.match(rb.objects[0]!.files[0]!, /\/wh-plain\/globex\/shop\/web\/events\/data\//);

  const old = await job('plain-old.yaml', 'initech', 'pb', { catalog: false, namespace: 'shop' });
  await run(old);
  assert.equal((await parquetUnder('wh-plain/shop/web/events')).length, 1);
  await writeFile(old, (await readFile(old, 'utf8')).replace('  namespace: shop\n', ''));
  await pr.write('pb/2.csv', 'id\n3\n');
  const r = await run(old);
  assert.match(r.objects[0]!.files[0]!, /\/wh-plain\/shop\/web\/events\/data\//, 'kept writing the old folder');
  assert.equal((await parquetUnder('wh-plain/initech')).length, 0);
});
