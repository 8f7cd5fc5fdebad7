import { describeSqlSourceBehaviour, type TestDb } from '../postgres/behaviour.js';
import { createTestMysql } from './db.js';

describeSqlSourceBehaviour({
  type: 'mysql',
  connector: async () => (await import('../../../connectors/mysql/index.js')).default,
  async createDb(): Promise<TestDb> {
    const t = await createTestMysql();
    // Both servers stop recursive CTEs at 1,000 rows by default; each knows one of the two variables.
    await t.conn.query('SET SESSION cte_max_recursion_depth = 1000000').catch(() => undefined);
    await t.conn.query('SET SESSION max_recursive_iterations = 1000000').catch(() => undefined);
    const scalar = async (sql: string): Promise<unknown> => {
      const [rows] = (await t.conn.query(sql)) as unknown as [Record<string, unknown>[]];
      return Object.values(rows[0] ?? {})[0];
    };
    const others = 'FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()';
    return {
      database: t.database,
      connection: t.connection,
      exec: async (sql) => void (await t.conn.query(sql)),
      scalar,
      async killReaders() {
        const [rows] = (await t.conn.query(`SELECT ID AS id ${others}`)) as unknown as [{ id: number | string }[]];
        for (const r of rows) await t.conn.query(`KILL ${Number(r.id)}`).catch(() => undefined);
      },
      async sessions() {
        return Number(await scalar(`SELECT COUNT(*) ${others}`));
      },
      drop: () => t.drop(),
    };
  },
  itemsDdl: (name, withPk) => `CREATE TABLE ${name} (id BIGINT${withPk ? ' PRIMARY KEY' : ''}, v TEXT, updated_at DATETIME(6) NULL)`,
  bulkInsert: (name, from, to, ts) =>
    `INSERT INTO ${name} (id, v, updated_at) WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to}) SELECT i, CONCAT('v', i), '${ts}' FROM s`,
  nowSql: "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')",
  tableName: (_db, name) => name,
});
