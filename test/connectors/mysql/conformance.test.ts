import { getConnector } from '../../../connectors/index.js';
import { parseTimestampMicros } from '../../../lib/records/time.js';
import { describeConnectorConformance } from '../../conformance.js';
import { makeAsset, makePlan } from '../postgres/helpers.js';
import { createTestMysql, type TestMysql } from './db.js';

let db: TestMysql;
const asset = makeAsset([
  ['id', 'long', true],
  ['v', 'string'],
  ['updated_at', 'timestamp'],
]);
const ts = (iso: string): bigint => parseTimestampMicros(iso) as bigint;
const plan = (connection: Record<string, unknown>) =>
  makePlan({ type: 'mysql', connection, tables: [{ name: 'items', object: 'items' }], asset, incremental: { strategy: 'updated', cursorField: 'updated_at' } });
const TABLE = 'DROP TABLE IF EXISTS items; CREATE TABLE items (id BIGINT PRIMARY KEY, v TEXT, updated_at DATETIME(6) NULL);';

describeConnectorConformance('mysql', {
  before: async () => {
    db = await createTestMysql('dativo_myconf');
    await db.conn.query('SET SESSION max_recursive_iterations = 1000000').catch(() => undefined);
    await db.conn.query('SET SESSION cte_max_recursion_depth = 1000000').catch(() => undefined);
  },
  after: async () => db?.drop(),
  connector: () => getConnector('mysql'),
  makePlan: () => plan(db.connection),
  seed: async () => {
    await db.conn.query(`${TABLE} INSERT INTO items VALUES (1, 'a', '2026-01-01 00:00:00.000001'), (2, '', '2026-01-01 00:00:00.000001'), (3, NULL, '2026-01-02 00:00:00')`);
  },
  expectedRows: [
    { id: 1n, v: 'a', updated_at: ts('2026-01-01T00:00:00.000001Z') },
    { id: 2n, v: '', updated_at: ts('2026-01-01T00:00:00.000001Z') },
    { id: 3n, v: null, updated_at: ts('2026-01-02T00:00:00Z') },
  ],
  seedMore: async () => {
    // Committed after the first reads, so stamped with the database clock: the next window holds them.
    await db.conn.query(`INSERT INTO items VALUES (4, 'd', UTC_TIMESTAMP(6)), (5, 'e', UTC_TIMESTAMP(6));
      UPDATE items SET v = 'A', updated_at = UTC_TIMESTAMP(6) WHERE id = 1`);
  },
  // Compared by primary key (their updated_at is the database clock at seedMore).
  moreRows: [
    { id: 1n, v: 'A', updated_at: ts('2026-01-03T00:00:00Z') },
    { id: 4n, v: 'd', updated_at: ts('2026-01-02T00:00:00Z') },
    { id: 5n, v: 'e', updated_at: ts('2026-01-03T00:00:00Z') },
  ],
  seedMany: async () => {
    await db.conn.query(
      `${TABLE} INSERT INTO items (id, v, updated_at) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000) SELECT i, CONCAT('v', i), '2026-01-01' FROM s`,
    );
  },
  badCheck: { makePlan: () => makePlan({ type: 'mysql', connection: db.connection, tables: [{ name: 'no_such_table' }], asset }), code: 'SOURCE_NOT_FOUND' },
  incremental: { kind: 'cursor', field: 'updated_at', cursorKind: 'timestamp', primaryKey: ['id'] },
  resourcesOpen: async () => {
    const [rows] = (await db.conn.query('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()')) as unknown as [{ n: number }[]];
    return Number(rows[0]!.n);
  },
});
