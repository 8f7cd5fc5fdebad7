/**
 * End-to-end behaviour of a SQL source through loadJob + runJob + the
 * Parquet target, read back with DuckDB. Shared by the Postgres and MySQL
 * test files; each dialect supplies DDL, a session killer and its database.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline, Transform } from 'node:stream';
import { loadJob } from '../../../lib/config/index.js';
import type { Connector } from '../../../lib/connector.js';
import { runJob, type RunSummary } from '../../../lib/run.js';
import type { Row } from '../../../lib/types.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { collect, makeAsset, makeCtx, makePlan, memoryLogger } from './helpers.js';

/** What a dialect provides to the suite. */
export interface SqlDialect {
  type: 'postgres' | 'mysql';
  connector: () => Promise<Connector>;
  /** Create a fresh database; `exec` runs one statement (with `?`/`$n` params as the driver wants). */
  createDb(): Promise<TestDb>;
  /** `CREATE TABLE <name> (id, v, updated_at)` with or without a primary key. */
  itemsDdl(name: string, withPk: boolean): string;
  /** SQL for a bulk insert of ids [from, to] with `v = 'v<id>'` and the given updated_at literal. */
  bulkInsert(name: string, from: number, to: number, updatedAt: string): string;
  /** Name of table `name` as a job's `tables[].name`. */
  tableName(db: TestDb, name: string): string;
}

export interface TestDb {
  database: string;
  connection: Record<string, unknown>;
  exec(sql: string): Promise<void>;
  scalar(sql: string): Promise<unknown>;
  /** Kill every other session on the test database (the reader), the way an operator would. */
  killReaders(): Promise<void>;
  /** Number of server sessions of this test database, excluding the test's own. */
  sessions(): Promise<number>;
  drop(): Promise<void>;
}

const ASSET_YAML = `apiVersion: v3.0.2
kind: DataContract
name: items
version: "1.0"
domain: test
source_type: SOURCE
object: items
schema:
  - {name: id, type: long, required: true}
  - {name: v, type: string}
  - {name: updated_at, type: timestamp}
PK
team: {owner: test@example.com}
`;

interface JobOptions {
  table: string;
  pk?: boolean;
  strategy?: 'updated_at' | 'id';
  lookbackDays?: number;
  batchSize?: number;
  extraConnection?: Record<string, unknown>;
  sync?: 'full_refresh' | 'incremental_append';
}

/** Run helper: writes the job and asset into `dir`, runs it, returns the summary. */
async function runJobFile(dialect: SqlDialect, db: TestDb, dir: string, o: JobOptions, extra: { connector?: Connector; batchRows?: number; runId?: string } = {}): Promise<RunSummary> {
  const assetFile = path.join(dir, `${o.table}.asset.yaml`);
  await writeFile(assetFile, ASSET_YAML.replace('SOURCE', dialect.type).replace('PK', o.pk === false ? '' : 'primary_key: [id]'));
  const conn = { ...db.connection, ...(o.batchSize ? { batch_size: o.batchSize } : {}), ...(o.extraConnection ?? {}) };
  const cursor = o.strategy === 'id' ? 'id' : 'updated_at';
  const job = {
    tenant_id: 'test',
    source_connector: dialect.type,
    asset_path: assetFile,
    source: {
      tables: [{ name: dialect.tableName(db, o.table), object: o.table }],
      connection: conn,
      ...(o.sync === 'full_refresh' ? {} : { incremental: { strategy: o.strategy ?? 'updated_at', cursor_field: cursor, lookback_days: o.lookbackDays ?? 0, lag_seconds: 0 } }),
    },
    target: { warehouse: path.join(dir, 'warehouse') },
    state: { path: path.join(dir, `${o.table}.state.json`) },
    reject_dir: path.join(dir, 'rejects'),
    ...(o.sync ? { sync_mode: o.sync } : {}),
  };
  const jobFile = path.join(dir, `${o.table}.job.yaml`);
  await writeFile(jobFile, JSON.stringify(job));
  const plan = await loadJob(jobFile, { cwd: dir });
  return runJob(plan, { ...(extra.connector ? { connector: extra.connector } : {}), batchRows: extra.batchRows ?? 1000, ...(extra.runId ? { runId: extra.runId } : {}) });
}

async function parquetFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.parquet')) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/** Every row of the files a run wrote, read back by DuckDB. */
async function rowsOf(summary: RunSummary): Promise<Row[]> {
  const rows: Row[] = [];
  for (const uri of summary.objects.flatMap((o) => o.files)) rows.push(...(await readParquetWithDuckDB(new URL(uri).pathname)).rows);
  return rows;
}

const ids = (rows: Row[]): number[] => rows.map((r) => Number(r['id'])).sort((a, b) => a - b);
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The behaviour suite of one dialect. */
export function describeSqlSourceBehaviour(dialect: SqlDialect): void {
  describe(`${dialect.type} source end to end (runJob → Parquet → DuckDB)`, () => {
    let db: TestDb;
    let dir: string;
    let connector: Connector;
    before(async () => {
      db = await dialect.createDb();
      dir = await mkdtemp(path.join(tmpdir(), `dativo-${dialect.type}-`));
      connector = await dialect.connector();
    });
    after(async () => {
      await db?.drop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('incremental: inserts and updates between runs add exactly the changed rows', async () => {
      await db.exec(dialect.itemsDdl('inc', true));
      await db.exec(dialect.bulkInsert('inc', 1, 100, '2026-01-01 00:00:00'));
      const r1 = await runJobFile(dialect, db, dir, { table: 'inc' });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.deepEqual(ids(await rowsOf(r1)), range(1, 100));
      assert.equal(r1.objects[0]!.cursor?.value, '2026-01-01T00:00:00.000000Z');

      await db.exec(dialect.bulkInsert('inc', 101, 105, '2026-01-02 00:00:00.000001'));
      await db.exec(`UPDATE inc SET v = 'changed', updated_at = '2026-01-02 00:00:00.5' WHERE id IN (3, 50, 99)`);
      const r2 = await runJobFile(dialect, db, dir, { table: 'inc' });
      assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
      const rows2 = await rowsOf(r2);
      assert.deepEqual(ids(rows2), [3, 50, 99, 101, 102, 103, 104, 105]);
      assert.equal(rows2.find((r) => Number(r['id']) === 50)!['v'], 'changed');
      assert.equal(rows2.find((r) => Number(r['id']) === 50)!['updated_at'], 1767312000500000n);
      assert.equal(r2.objects[0]!.cursor?.value, '2026-01-02T00:00:00.500000Z');

      const r3 = await runJobFile(dialect, db, dir, { table: 'inc' });
      assert.equal(r3.exit_code, 0);
      assert.equal(r3.objects[0]!.rows_written, 0, 'nothing new: nothing written');
    });

    it('5,000 rows sharing one cursor value across batch boundaries are written once across runs', async () => {
      await db.exec(dialect.itemsDdl('ties', true));
      await db.exec(dialect.bulkInsert('ties', 1, 5000, '2026-03-01 12:00:00.123456'));
      const r1 = await runJobFile(dialect, db, dir, { table: 'ties', batchSize: 300 }, { batchRows: 700 });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.equal(r1.objects[0]!.rows_written, 5000);
      await db.exec(dialect.bulkInsert('ties', 5001, 5010, '2026-03-01 12:00:00.123456'));
      const r2 = await runJobFile(dialect, db, dir, { table: 'ties', batchSize: 300 }, { batchRows: 700 });
      assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
      assert.equal(r2.objects[0]!.rows_read, 5010, 'the tie rows are re-read (>=) ...');
      assert.deepEqual(ids(await rowsOf(r2)), range(5001, 5010), '... and only the new ones written');
      const r3 = await runJobFile(dialect, db, dir, { table: 'ties', batchSize: 300 }, { batchRows: 700 });
      assert.equal(r3.objects[0]!.rows_written, 0);
    });

    it('incremental by increasing id', async () => {
      await db.exec(dialect.itemsDdl('byid', true));
      await db.exec(dialect.bulkInsert('byid', 1, 30, '2026-01-01 00:00:00'));
      const r1 = await runJobFile(dialect, db, dir, { table: 'byid', strategy: 'id' });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.equal(r1.objects[0]!.rows_written, 30);
      assert.equal(r1.objects[0]!.cursor?.value, '30');
      await db.exec(dialect.bulkInsert('byid', 31, 40, '2020-01-01 00:00:00'));
      const r2 = await runJobFile(dialect, db, dir, { table: 'byid', strategy: 'id' });
      assert.deepEqual(ids(await rowsOf(r2)), range(31, 40));
    });

    it('a table without a primary key works incrementally (whole-row identity at ties)', async () => {
      await db.exec(dialect.itemsDdl('nopk', false));
      await db.exec(dialect.bulkInsert('nopk', 1, 20, '2026-02-01 00:00:00'));
      const r1 = await runJobFile(dialect, db, dir, { table: 'nopk', pk: false });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.equal(r1.objects[0]!.rows_written, 20);
      await db.exec(dialect.bulkInsert('nopk', 21, 25, '2026-02-01 00:00:00'));
      const r2 = await runJobFile(dialect, db, dir, { table: 'nopk', pk: false });
      assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
      assert.deepEqual(ids(await rowsOf(r2)), range(21, 25));
    });

    it('NULL cursors: read by the first run (also with lookback), then skipped with a warning count', async () => {
      await db.exec(dialect.itemsDdl('nulls', true));
      const recent = new Date(Date.now() - 3600_000).toISOString().replace('T', ' ').replace('Z', '');
      await db.exec(dialect.bulkInsert('nulls', 1, 5, recent));
      await db.exec(dialect.bulkInsert('nulls', 6, 8, '2001-01-01 00:00:00'));
      await db.exec(`UPDATE nulls SET updated_at = NULL WHERE id IN (2, 7)`);
      const r1 = await runJobFile(dialect, db, dir, { table: 'nulls', lookbackDays: 1 });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      // Rows 6 and 8 are older than the lookback window; 7 has a NULL cursor and is included.
      assert.deepEqual(ids(await rowsOf(r1)), [1, 2, 3, 4, 5, 7]);

      await db.exec(dialect.bulkInsert('nulls', 9, 9, '2099-01-01 00:00:00'));
      await db.exec(`UPDATE nulls SET updated_at = NULL WHERE id = 9`);
      const plan = await loadJob(path.join(dir, 'nulls.job.yaml'), { cwd: dir });
      const { log, lines } = memoryLogger();
      const r2 = await runJob(plan, { log });
      assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
      assert.equal(r2.objects[0]!.rows_written, 0);
      const warn = lines.find((l) => l['event_type'] === 'cursor_nulls_skipped');
      assert.ok(warn, 'a warning names the skipped NULL-cursor rows');
      assert.equal(warn['count'], 3);
    });

    it('full refresh reads everything, NULL cursors included', async () => {
      const r = await runJobFile(dialect, db, dir, { table: 'nulls', sync: 'full_refresh' });
      assert.equal(r.exit_code, 0, JSON.stringify(r.error));
      assert.deepEqual(ids(await rowsOf(r)), range(1, 9));
    });

    it('connection killed mid-stream: SOURCE_UNAVAILABLE (exit 2), nothing committed, the next run resumes', async () => {
      await db.exec(dialect.itemsDdl('killme', true));
      await db.exec(dialect.bulkInsert('killme', 1, 8000, '2026-04-01 00:00:00'));
      await db.exec(`UPDATE killme SET updated_at = '2026-04-02 00:00:00' WHERE id > 4000`);
      const r0 = await runJobFile(dialect, db, dir, { table: 'killme', batchSize: 500 });
      assert.equal(r0.objects[0]!.rows_written, 8000);
      await db.exec(`UPDATE killme SET v = 'again', updated_at = '2026-04-03 00:00:00' WHERE id <= 3000`);
      const stateFile = path.join(dir, 'killme.state.json');
      const stateBefore = await readFile(stateFile, 'utf8');
      const filesBefore = await parquetFiles(path.join(dir, 'warehouse'));

      // The wrapper holds row 100 until the server has killed the reading
      // session, so the kill always lands while the table is being read.
      let killed = false;
      const killing: Connector = {
        ...connector,
        read(ctx) {
          let n = 0;
          const hold = new Transform({
            objectMode: true,
            transform(row, _enc, cb) {
              if (++n === 100) {
                killed = true;
                db.killReaders().then(() => cb(null, row), cb);
              } else cb(null, row);
            },
          });
          return pipeline(connector.read(ctx), hold, () => undefined) as Transform;
        },
      };
      // Only 3,000 rows match: a small batch size keeps the portal/stream open long enough.
      const r1 = await runJobFile(dialect, db, dir, { table: 'killme', batchSize: 50 }, { connector: killing, batchRows: 100 });
      assert.ok(killed);
      assert.equal(r1.exit_code, 2, JSON.stringify(r1));
      assert.equal(r1.error?.code, 'SOURCE_UNAVAILABLE', JSON.stringify(r1.error));
      assert.deepEqual(r1.objects[0]!.files, []);
      assert.equal(await readFile(stateFile, 'utf8'), stateBefore, 'state untouched');
      assert.deepEqual(await parquetFiles(path.join(dir, 'warehouse')), filesBefore, 'no file of the failed run remains');

      const r2 = await runJobFile(dialect, db, dir, { table: 'killme', batchSize: 500 });
      assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
      assert.deepEqual(ids(await rowsOf(r2)), range(1, 3000));
      assert.equal(await db.sessions(), 0, 'no session left open');
    });

    it('a missing table or cursor column is SOURCE_NOT_FOUND (exit 3) naming it', async () => {
      const r1 = await runJobFile(dialect, db, dir, { table: 'no_such_table' });
      assert.equal(r1.exit_code, 3);
      assert.equal(r1.error?.code, 'SOURCE_NOT_FOUND');
      assert.match(r1.error!.message, /no_such_table/);
      await db.exec(`CREATE TABLE nocursor (id INT PRIMARY KEY, v TEXT, changed_at TIMESTAMP NULL)`);
      const r2 = await runJobFile(dialect, db, dir, { table: 'nocursor' });
      assert.equal(r2.exit_code, 3);
      assert.equal(r2.error?.code, 'SOURCE_NOT_FOUND');
      assert.match(r2.error!.message, /updated_at/);
    });

    it('server down (closed port) is SOURCE_UNAVAILABLE (exit 2); check() says the same', async () => {
      const port = await freePort();
      const r = await runJobFile(dialect, db, dir, { table: 'inc', extraConnection: { port, connect_timeout_ms: 2000 } });
      assert.equal(r.exit_code, 2, JSON.stringify(r.error));
      assert.equal(r.error?.code, 'SOURCE_UNAVAILABLE');
      const plan = await loadJob(path.join(dir, 'inc.job.yaml'), { cwd: dir });
      await assert.rejects(connector.check!(plan, { signal: new AbortController().signal, log: memoryLogger().log }), { code: 'SOURCE_UNAVAILABLE' });
    });

    it('check() passes for a good job and names a missing column', async () => {
      const plan = await loadJob(path.join(dir, 'inc.job.yaml'), { cwd: dir });
      plan.source.options['connection'] = db.connection;
      await connector.check!(plan, { signal: new AbortController().signal, log: memoryLogger().log });
      const bad = { ...plan, source: { ...plan.source, incremental: { ...plan.source.incremental!, cursorField: 'nope' } } };
      await assert.rejects(connector.check!(bad, { signal: new AbortController().signal, log: memoryLogger().log }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'SOURCE_NOT_FOUND');
        assert.match(e.message, /"nope"/);
        return true;
      });
    });

    it('a row updated during the scan: the scan sees its snapshot, the next run picks the update up', async () => {
      await db.exec(dialect.itemsDdl('snap', true));
      await db.exec(dialect.bulkInsert('snap', 1, 2000, '2026-05-01 00:00:00'));
      const asset = makeAsset([
        ['id', 'long', true],
        ['v', 'string'],
        ['updated_at', 'timestamp'],
      ]);
      const plan = makePlan({
        type: dialect.type,
        connection: { ...db.connection, batch_size: 100 },
        tables: [{ name: dialect.tableName(db, 'snap'), object: 'snap' }],
        asset,
        incremental: { strategy: 'updated', cursorField: 'updated_at' },
      });
      const stream = connector.read(makeCtx(plan));
      const seen: Row[] = [];
      for await (const r of stream) {
        seen.push(r as Row);
        if (seen.length === 1) {
          // Committed by another session while the scan is under way.
          await db.exec(`UPDATE snap SET v = 'late', updated_at = '2026-05-02 00:00:00' WHERE id IN (1999, ${Number((r as Row)['id'])})`);
        }
      }
      assert.equal(seen.length, 2000, 'every row once');
      assert.equal(new Set(seen.map((r) => Number(r['id']))).size, 2000);
      assert.ok(seen.every((r) => r['v'] !== 'late'), 'the scan reads its snapshot');
      const next = await collect(connector.read(makeCtx(plan, { state: { cursor: { field: 'updated_at', value: '2026-05-01T00:00:00.000001Z', written: [] } } })));
      assert.equal(next.length, 2);
      assert.ok(next.every((r) => r['v'] === 'late'));
    });

    it('backpressure: a paused consumer holds about one batch; destroy releases the session', async () => {
      const asset = makeAsset([
        ['id', 'long', true],
        ['v', 'string'],
      ]);
      const plan = makePlan({ type: dialect.type, connection: { ...db.connection, batch_size: 200 }, tables: [{ name: dialect.tableName(db, 'ties'), object: 'ties' }], asset });
      const stream = connector.read(makeCtx(plan));
      const first = await new Promise<unknown>((resolve, reject) => {
        stream.once('readable', () => resolve(stream.read()));
        stream.once('error', reject);
      });
      assert.ok(first);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(stream.readableLength <= 2000, `buffered ${stream.readableLength} rows of 5010`);
      assert.ok((await db.sessions()) >= 1);
      stream.destroy();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await db.sessions(), 0, 'the connection is closed');
    });

    it('wide rows: the source holds a few of them (16 buffered; Postgres fetches ~8 MiB at a time), not batch_size rows', async () => {
      const mysql = dialect.type === 'mysql';
      await db.exec(`CREATE TABLE wide (id BIGINT PRIMARY KEY, v ${mysql ? 'LONGTEXT' : 'text'})`);
      await db.exec(
        mysql
          ? `INSERT INTO wide (id, v) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 60) SELECT i, REPEAT(CHAR(64 + i MOD 26), 1000000) FROM s`
          : `INSERT INTO wide SELECT g, repeat(chr(64 + g % 26), 1000000) FROM generate_series(1, 60) g`,
      );
      const asset = makeAsset([
        ['id', 'long', true],
        ['v', 'string'],
      ]);
      const plan = makePlan({ type: dialect.type, connection: { ...db.connection, batch_size: 2000 }, tables: [{ name: dialect.tableName(db, 'wide'), object: 'wide' }], asset });
      const stream = connector.read(makeCtx(plan));
      let most = 0;
      const ids: number[] = [];
      for await (const r of stream) {
        most = Math.max(most, stream.readableLength);
        const row = r as Row;
        ids.push(Number(row['id']));
        assert.equal(row['v'], String.fromCharCode(64 + (Number(row['id']) % 26)).repeat(1_000_000));
        // A slow consumer: the source has time to fill whatever buffer it allows.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.deepEqual(ids.sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i + 1));
      // The buffer holds 16 rows; Postgres fetches ~8 MiB (8 such rows) at a time, two at most waiting.
      assert.ok(most <= 16, `buffered up to ${most} rows of 1 MB`);
      if (dialect.type === 'postgres') {
        const fetched = (stream as unknown as { maxFetchRows: number }).maxFetchRows;
        assert.ok(fetched >= 1 && fetched <= 8, `fetched up to ${fetched} rows of 1 MB at once`);
      }
    });
  });
}
