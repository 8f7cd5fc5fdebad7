import { getConnector } from '../../../connectors/index.js';
import { parseTimestampMicros } from '../../../lib/records/time.js';
import { describeConnectorConformance } from '../../conformance.js';
import { makeAsset, makePlan } from './helpers.js';
import { createTestPg, type TestPg } from './db.js';

let db: TestPg;
const asset = makeAsset([
  ['id', 'long', true],
  ['v', 'string'],
  ['updated_at', 'timestamp'],
]);
const ts = (iso: string): bigint => parseTimestampMicros(iso) as bigint;
const plan = (connection: Record<string, unknown>) =>
  makePlan({ type: 'postgres', connection, tables: [{ name: 'public.items', object: 'items' }], asset, incremental: { strategy: 'updated', cursorField: 'updated_at' } });

describeConnectorConformance('postgres', {
  before: async () => {
    db = await createTestPg('dativo_pgconf');
  },
  after: async () => db?.drop(),
  connector: () => getConnector('postgres'),
  makePlan: () => plan(db.connection),
  seed: async () => {
    await db.client.query(`DROP TABLE IF EXISTS items; CREATE TABLE items (id bigint PRIMARY KEY, v text, updated_at timestamptz);
      INSERT INTO items VALUES (1, 'a', '2026-01-01 00:00:00.000001+00'), (2, '', '2026-01-01 00:00:00.000001+00'), (3, NULL, '2026-01-02 00:00:00+00')`);
  },
  expectedRows: [
    { id: 1n, v: 'a', updated_at: ts('2026-01-01T00:00:00.000001Z') },
    { id: 2n, v: '', updated_at: ts('2026-01-01T00:00:00.000001Z') },
    { id: 3n, v: null, updated_at: ts('2026-01-02T00:00:00Z') },
  ],
  seedMore: async () => {
    // Committed after the first reads, so stamped with the database clock: the next window holds them.
    await db.client.query(`INSERT INTO items VALUES (4, 'd', now()), (5, 'e', now());
      UPDATE items SET v = 'A', updated_at = now() WHERE id = 1`);
  },
  // Compared by primary key (their updated_at is the database clock at seedMore).
  moreRows: [
    { id: 1n, v: 'A', updated_at: ts('2026-01-03T00:00:00Z') },
    { id: 4n, v: 'd', updated_at: ts('2026-01-02T00:00:00Z') },
    { id: 5n, v: 'e', updated_at: ts('2026-01-03T00:00:00Z') },
  ],
  seedMany: async () => {
    await db.client.query(`DROP TABLE IF EXISTS items; CREATE TABLE items (id bigint PRIMARY KEY, v text, updated_at timestamptz);
      INSERT INTO items SELECT i, 'v' || i, '2026-01-01+00' FROM generate_series(1, 20000) i`);
  },
  badCheck: { makePlan: () => makePlan({ type: 'postgres', connection: db.connection, tables: [{ name: 'public.no_such_table' }], asset }), code: 'SOURCE_NOT_FOUND' },
  incremental: { kind: 'cursor', field: 'updated_at', cursorKind: 'timestamp', primaryKey: ['id'] },
  resourcesOpen: async () => {
    const r = await db.client.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    return Number(r.rows[0]!.n);
  },
});
