/**
 * Bench data sets: the `orders` table of reference/sources-lab.md §1 with N
 * rows, built inside the database server (Postgres generate_series, MySQL a
 * digits cross join) in a `dativo_bench` database. A table that already has
 * exactly N rows is reused (`--fresh` rebuilds it).
 */
import mysql from 'mysql2/promise';
import pg from 'pg';

/** Connection of the bench database (env overridable). */
export interface BenchDb {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export function pgBenchDb(): BenchDb {
  const password = process.env['BENCH_PGPASSWORD'];
  return {
    host: process.env['BENCH_PGHOST'] ?? '127.0.0.1',
    port: Number(process.env['BENCH_PGPORT'] ?? 5432),
    user: process.env['BENCH_PGUSER'] ?? 'postgres',
    ...(password ? { password } : {}),
    database: process.env['BENCH_PGDATABASE'] ?? 'dativo_bench',
  };
}

export function mysqlBenchDb(): BenchDb {
  const password = process.env['BENCH_MYSQL_PASSWORD'];
  return {
    host: process.env['BENCH_MYSQL_HOST'] ?? '127.0.0.1',
    port: Number(process.env['BENCH_MYSQL_PORT'] ?? 3306),
    user: process.env['BENCH_MYSQL_USER'] ?? 'root',
    ...(password ? { password } : {}),
    database: process.env['BENCH_MYSQL_DATABASE'] ?? 'dativo_bench',
  };
}

/** What the bench checks the output against. */
export interface TableFacts {
  table: string;
  rows: number;
  /** sum(id) as decimal text: catches a fast wrong answer that has the right count. */
  sumId: string;
  /** Bytes of the table as tab-separated text (≈ COPY text volume), for MB/s. */
  textBytes: number;
}

/** Create (or reuse) `orders_<rows>` in Postgres. */
export async function setupPgOrders(db: BenchDb, rows: number, fresh: boolean, log: (s: string) => void): Promise<TableFacts> {
  const admin = new pg.Client({ ...db, database: 'postgres' });
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.database]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${db.database}`);
  await admin.end();
  const c = new pg.Client(db);
  await c.connect();
  try {
    const table = `orders_${rows}`;
    const have = await c.query<{ n: string }>(`SELECT CASE WHEN to_regclass($1) IS NULL THEN -1 ELSE (SELECT count(*) FROM ${table}) END AS n`, [table]).catch(async () => ({ rows: [{ n: '-1' }] }));
    if (fresh || Number(have.rows[0]?.n) !== rows) {
      log(`creating postgres ${db.database}.${table} (${rows.toLocaleString('en-US')} rows) ...`);
      const t0 = performance.now();
      await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.query(`CREATE TABLE ${table} (
        id bigserial PRIMARY KEY, customer_id int, email text, amount numeric(12,2), currency text, status text,
        created_at timestamptz, updated_at timestamptz, payload jsonb)`);
      await c.query(`INSERT INTO ${table} (customer_id, email, amount, currency, status, created_at, updated_at, payload)
        SELECT i % 50000 + 1, 'user' || i || '@example.com', ((i::bigint * 7919) % 100000) / 100.0,
               (ARRAY['USD','EUR','GBP'])[1 + i % 3], (ARRAY['new','paid','shipped','cancelled'])[1 + i % 4],
               timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' + (i % 997) * interval '1 microsecond',
               timestamptz '2024-01-01 01:00:00+00' + i * interval '1 second' + (i % 991) * interval '1 microsecond',
               jsonb_build_object('qty', 1 + i % 5, 'sku', 'SKU-' || i % 1000, 'note', md5(i::text),
                                  'ship', jsonb_build_object('zip', lpad((i % 100000)::text, 5, '0'), 'city', 'Springfield'),
                                  'tags', jsonb_build_array('gift', 'promo'))
          FROM generate_series(1, ${rows}) i`);
      await c.query(`CREATE INDEX ON ${table} (updated_at, id)`);
      await c.query(`VACUUM ANALYZE ${table}`);
      log(`  created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const f = await c.query<{ n: string; s: string; b: string }>(`SELECT count(*) AS n, sum(id)::text AS s, sum(octet_length(o::text))::text AS b FROM ${table} o`);
    const r = f.rows[0]!;
    return { table, rows: Number(r.n), sumId: r.s, textBytes: Number(r.b) };
  } finally {
    await c.end();
  }
}

/** Create (or reuse) `orders_<rows>` in MySQL/MariaDB. */
export async function setupMysqlOrders(db: BenchDb, rows: number, fresh: boolean, log: (s: string) => void): Promise<TableFacts> {
  const c = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, ...(db.password ? { password: db.password } : {}), supportBigNumbers: true, bigNumberStrings: true });
  try {
    await c.query(`CREATE DATABASE IF NOT EXISTS \`${db.database}\` CHARACTER SET utf8mb4`);
    await c.query(`USE \`${db.database}\``);
    await c.query("SET time_zone = '+00:00'");
    const table = `orders_${rows}`;
    const [t] = (await c.query('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [table])) as unknown as [{ n: number }[]];
    let have = -1;
    if (Number(t[0]?.n) > 0) {
      const [cnt] = (await c.query(`SELECT COUNT(*) AS n FROM ${table}`)) as unknown as [{ n: number | string }[]];
      have = Number(cnt[0]?.n);
    }
    if (fresh || have !== rows) {
      log(`creating mysql ${db.database}.${table} (${rows.toLocaleString('en-US')} rows) ...`);
      const t0 = performance.now();
      await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.query(`CREATE TABLE ${table} (
        id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, customer_id INT, email VARCHAR(255), amount DECIMAL(12,2),
        currency VARCHAR(3), status VARCHAR(16), created_at DATETIME(6), updated_at DATETIME(6), payload JSON,
        KEY updated_id (updated_at, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
      await c.query('CREATE TABLE IF NOT EXISTS bench_digits (x INT PRIMARY KEY)');
      await c.query('INSERT IGNORE INTO bench_digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)');
      // i = 1..rows from a 7-digit cross join; chunks of 100k keep each transaction small.
      for (let start = 0; start < rows; start += 100_000) {
        const end = Math.min(rows, start + 100_000);
        await c.query(`INSERT INTO ${table} (id, customer_id, email, amount, currency, status, created_at, updated_at, payload)
          SELECT i, i % 50000 + 1, CONCAT('user', i, '@example.com'), ((i * 7919) % 100000) / 100,
                 ELT(1 + i % 3, 'USD', 'EUR', 'GBP'), ELT(1 + i % 4, 'new', 'paid', 'shipped', 'cancelled'),
                 TIMESTAMPADD(MICROSECOND, i % 997, TIMESTAMPADD(SECOND, i, '2024-01-01 00:00:00')),
                 TIMESTAMPADD(MICROSECOND, i % 991, TIMESTAMPADD(SECOND, i, '2024-01-01 01:00:00')),
                 CONCAT('{"qty": ', 1 + i % 5, ', "sku": "SKU-', i % 1000, '", "note": "', MD5(i), '", "ship": {"zip": "',
                        LPAD(i % 100000, 5, '0'), '", "city": "Springfield"}, "tags": ["gift", "promo"]}')
            FROM (SELECT ${start} + 1 + a.x + 10 * b.x + 100 * c.x + 1000 * d.x + 10000 * e.x AS i
                    FROM bench_digits a, bench_digits b, bench_digits c, bench_digits d, bench_digits e) s
           WHERE i <= ${end}`);
      }
      await c.query(`ANALYZE TABLE ${table}`);
      log(`  created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const [f] = (await c.query(
      `SELECT COUNT(*) AS n, CAST(SUM(id) AS CHAR) AS s,
              SUM(LENGTH(CONCAT_WS('\\t', id, customer_id, email, amount, currency, status, created_at, updated_at, payload))) AS b FROM ${table}`,
    )) as unknown as [{ n: number | string; s: string; b: number | string }[]];
    return { table, rows: Number(f[0]!.n), sumId: String(f[0]!.s), textBytes: Number(f[0]!.b) };
  } finally {
    await c.end();
  }
}
