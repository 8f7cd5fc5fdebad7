/**
 * pipelines/acme/gdrive_orders_csv.yaml runs as shipped against the Google
 * fake (its base_url and folder from the environment, the key from the
 * secrets folder): the orders-* CSVs of the folder land once, then only
 * what is appended or new.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJobFile } from '../../../lib/run/file.js';
import { GoogleFake } from '../../fakes/google.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { project, repo, type Project } from '../../lib/cli/helpers.js';
import { HEADER, orders } from './helpers.js';

describe('pipelines/acme/gdrive_orders_csv.yaml runs as documented', () => {
  const fake = new GoogleFake();
  let p: Project;
  before(async () => {
    await fake.start();
    p = await project('acme-gdrive');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('lands the folder’s order files once, then only the appended rows and the new file', async () => {
    const account = fake.serviceAccount('ingest@acme-data.iam.gserviceaccount.com');
    await p.write('secrets/acme/gdrive.json', JSON.stringify(account.key));
    const folder = fake.addFolder('Order exports', [account.email]);
    const day1 = fake.addFile({ name: 'orders-2026-11-30.csv', parents: [folder.id], content: Buffer.from(HEADER + orders(0, 40)) });
    fake.addFile({ name: 'summary.csv', parents: [folder.id], content: Buffer.from('total\n40\n') });
    const env = { ...process.env, ACME_ORDERS_FOLDER_ID: folder.id, GOOGLE_API_BASE_URL: fake.url, DATIVO_WAREHOUSE: p.p('wh'), DATIVO_STATE_DIR: p.p('state'), DATIVO_REJECT_DIR: p.p('rejects') };
    const job = path.join(repo, 'pipelines/acme/gdrive_orders_csv.yaml');
    const opts = { env, cwd: p.dir, secretsDir: p.p('secrets') };
    const r1 = await runJobFile(job, opts);
    assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
    assert.equal(r1.objects[0]?.rows_written, 40);
    const table = () => readWarehouseTable(p.p('wh'), 'acme_sales', 'orders_gdrive');
    assert.equal((await table()).length, 40);

    fake.appendContent(day1.id, orders(40, 45));
    fake.addFile({ name: 'orders-2026-12-01.csv', parents: [folder.id], content: Buffer.from(HEADER + orders(45, 60)) });
    const r2 = await runJobFile(job, opts);
    assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
    assert.equal(r2.objects[0]?.rows_written, 20);
    const rows = await table();
    assert.equal(rows.length, 60);
    assert.equal(new Set(rows.map((r) => String(r['order_id']))).size, 60, 'each order once');
  });
});
