import { describeSqlSourceBehaviour, type TestDb } from './behaviour.js';
import { createTestPg } from './db.js';

describeSqlSourceBehaviour({
  type: 'postgres',
  connector: async () => (await import('../../../connectors/postgres/index.js')).default,
  async createDb(): Promise<TestDb> {
    const t = await createTestPg();
    const scalar = async (sql: string): Promise<unknown> => Object.values((await t.client.query(sql)).rows[0] ?? {})[0];
    return {
      database: t.database,
      connection: t.connection,
      exec: async (sql) => void (await t.client.query(sql)),
      scalar,
      async killReaders() {
        await t.client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
      },
      async sessions() {
        return Number(await scalar('SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()'));
      },
      drop: () => t.drop(),
    };
  },
  itemsDdl: (name, withPk) => `CREATE TABLE ${name} (id bigint${withPk ? ' PRIMARY KEY' : ''}, v text, updated_at timestamptz)`,
  bulkInsert: (name, from, to, ts) => `INSERT INTO ${name} SELECT i, 'v' || i, '${ts}+00' FROM generate_series(${from}, ${to}) i`,
  nowSql: "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
  tableName: (_db, name) => `public.${name}`,
});
