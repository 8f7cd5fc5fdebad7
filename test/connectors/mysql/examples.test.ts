import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadJob } from '../../../lib/config/index.js';
import { runJob } from '../../../lib/run.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { createTestMysql, MY_HOST, MY_PORT, MY_USER, type TestMysql } from './db.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('pipelines/acme/mysql_orders.yaml runs as documented', () => {
  let db: TestMysql;
  let dir: string;
  before(async () => {
    db = await createTestMysql('dativo_acme');
    dir = await mkdtemp(path.join(tmpdir(), 'dativo-acme-my-'));
    await db.conn.query('SET SESSION max_recursive_iterations = 1000000').catch(() => undefined);
    await db.conn.query('SET SESSION cte_max_recursion_depth = 1000000').catch(() => undefined);
    await db.conn.query(`
      CREATE TABLE orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, customer_id INT, email VARCHAR(255), amount DECIMAL(12,2),
                           currency VARCHAR(3), status VARCHAR(16), created_at DATETIME(6), updated_at DATETIME(6), payload JSON);
      INSERT INTO orders (customer_id, email, amount, currency, status, created_at, updated_at, payload)
      WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 500)
      SELECT i, CONCAT('user', i, '@example.com'), i * 1.25, 'EUR', 'paid', '2026-01-01', TIMESTAMPADD(SECOND, i, '2026-01-01'),
             CONCAT('{"qty": ', i, ', "big": 12345678901234567890}') FROM s`);
  });
  after(async () => {
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads, reads the table and then only what changed', async () => {
    const env = { ...process.env, MYSQL_HOST: MY_HOST, MYSQL_PORT: String(MY_PORT), MYSQL_USER: MY_USER, MYSQL_DATABASE: db.database, DATIVO_WAREHOUSE: path.join(dir, 'wh'), DATIVO_STATE_DIR: path.join(dir, 'state') };
    const load = () => loadJob(path.join(ROOT, 'pipelines/acme/mysql_orders.yaml'), { env, cwd: dir });
    const plan = await load();
    assert.equal(plan.source.type, 'mysql');
    const r1 = await runJob(plan);
    assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
    assert.equal(r1.objects[0]!.rows_written, 500);
    const rows = (await readParquetWithDuckDB(new URL(r1.objects[0]!.files[0]!).pathname)).rows;
    const first = rows.find((r) => Number(r['id']) === 1)!;
    assert.equal(first['amount'], '1.25');
    assert.match(String(first['payload']), /12345678901234567890/);

    // Changed after run 1, stamped at its watermark (the database clock minus lag_seconds): the next window starts there.
    const at = r1.objects[0]!.cursor!.value.replace('T', ' ').replace('Z', '');
    await db.conn.query(`UPDATE orders SET status = 'shipped', updated_at = '${at}' WHERE id IN (7, 8)`);
    const r2 = await runJob(await load());
    assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
    const changed = (await readParquetWithDuckDB(new URL(r2.objects[0]!.files[0]!).pathname)).rows;
    assert.deepEqual(changed.map((r) => Number(r['id'])).sort((a, b) => a - b), [7, 8]);
  });
});
