import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadJob } from '../../../lib/config/index.js';
import { runJob } from '../../../lib/run.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { createTestPg, PG_HOST, PG_PORT, PG_USER, type TestPg } from './db.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('pipelines/acme/postgres_orders.yaml runs as documented', () => {
  let db: TestPg;
  let dir: string;
  before(async () => {
    db = await createTestPg('dativo_acme');
    dir = await mkdtemp(path.join(tmpdir(), 'dativo-acme-pg-'));
    await db.client.query(`
      CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, email text, amount numeric(12,2), currency text, status text,
                           created_at timestamptz, updated_at timestamptz, payload jsonb);
      INSERT INTO orders (customer_id, email, amount, currency, status, created_at, updated_at, payload)
      SELECT i, 'user' || i || '@example.com', i * 1.25, 'EUR', 'paid', '2026-01-01+00', '2026-01-01+00'::timestamptz + i * interval '1 second',
             jsonb_build_object('qty', i, 'big', 12345678901234567890)
        FROM generate_series(1, 500) i`);
  });
  after(async () => {
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads, reads the table and then only what changed', async () => {
    const env = { ...process.env, PGHOST: PG_HOST, PGPORT: String(PG_PORT), PGUSER: PG_USER, PGDATABASE: db.database, DATIVO_WAREHOUSE: path.join(dir, 'wh'), DATIVO_STATE_DIR: path.join(dir, 'state') };
    const load = () => loadJob(path.join(ROOT, 'pipelines/acme/postgres_orders.yaml'), { env, cwd: dir });
    const plan = await load();
    assert.equal(plan.source.type, 'postgres');
    assert.deepEqual(plan.asset.primaryKey, ['id']);
    assert.equal(plan.source.incremental?.cursorField, 'updated_at');
    const r1 = await runJob(plan);
    assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
    assert.equal(r1.objects[0]!.rows_written, 500);
    const rows = (await readParquetWithDuckDB(new URL(r1.objects[0]!.files[0]!).pathname)).rows;
    const first = rows.find((r) => Number(r['id']) === 1)!;
    assert.equal(first['amount'], '1.25');
    assert.match(String(first['payload']), /12345678901234567890/);

    // Changed after run 1, stamped at its watermark (the database clock minus lag_seconds): the next window starts there.
    await db.client.query(`UPDATE orders SET status = 'shipped', updated_at = '${r1.objects[0]!.cursor!.value}' WHERE id IN (7, 8)`);
    const r2 = await runJob(await load());
    assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
    const changed = (await readParquetWithDuckDB(new URL(r2.objects[0]!.files[0]!).pathname)).rows;
    assert.deepEqual(changed.map((r) => Number(r['id'])).sort((a, b) => a - b), [7, 8]);
  });
});
