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
import type { Logger } from '../../../lib/log.js';
import type { JobPlan } from '../../../lib/plan.js';
import pg from 'pg';
import { runJob, type RunSummary } from '../../../lib/run.js';
import type { CursorState, Row } from '../../../lib/types.js';
import { cursorFromString, rowIdentity } from '../../../lib/records/cursor.js';
import { isoToSqlDateTime, parseTimestampText } from '../../../connectors/sql/time.js';
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
  /** A SELECT of the database clock in UTC as `YYYY-MM-DD HH:MM:SS.ffffff` (a literal for bulkInsert). */
  nowSql: string;
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
  /** null: the job sets no lookback_days (the recipe's default applies, if it did). */
  lookbackDays?: number | null;
  batchSize?: number;
  extraConnection?: Record<string, unknown>;
  sync?: 'full_refresh' | 'incremental_append';
  lagSeconds?: number;
  /** Asset YAML instead of the items asset. */
  asset?: string;
  validation?: 'strict' | 'warn';
}

/** Write the job and asset into `dir` and load the job. */
async function jobPlan(dialect: SqlDialect, db: TestDb, dir: string, o: JobOptions): Promise<JobPlan> {
  return writeJob(dialect, db, dir, o);
}

/** Run helper: writes the job and asset into `dir`, runs it, returns the summary. */
async function writeJob(dialect: SqlDialect, db: TestDb, dir: string, o: JobOptions): Promise<JobPlan> {
  const assetFile = path.join(dir, `${o.table}.asset.yaml`);
  await writeFile(assetFile, (o.asset ?? ASSET_YAML).replace('SOURCE', dialect.type).replace('PK', o.pk === false ? '' : 'primary_key: [id]'));
  const conn = { ...db.connection, ...(o.batchSize ? { batch_size: o.batchSize } : {}), ...(o.extraConnection ?? {}) };
  const cursor = o.strategy === 'id' ? 'id' : 'updated_at';
  const job = {
    tenant_id: 'test',
    source_connector: dialect.type,
    asset_path: assetFile,
    source: {
      tables: [{ name: dialect.tableName(db, o.table), object: o.table }],
      connection: conn,
      ...(o.sync === 'full_refresh' ? {} : { incremental: { strategy: o.strategy ?? 'updated_at', cursor_field: cursor, ...(o.lookbackDays === null ? {} : { lookback_days: o.lookbackDays ?? 0 }), lag_seconds: o.lagSeconds ?? 0 } }),
    },
    target: { warehouse: path.join(dir, 'warehouse') },
    state: { path: path.join(dir, `${o.table}.state.json`) },
    reject_dir: path.join(dir, 'rejects'),
    ...(o.sync ? { sync_mode: o.sync } : {}),
    ...(o.validation ? { schema_validation_mode: o.validation } : {}),
  };
  const jobFile = path.join(dir, `${o.table}.job.yaml`);
  await writeFile(jobFile, JSON.stringify(job));
  return loadJob(jobFile, { cwd: dir });
}

async function runJobFile(
  dialect: SqlDialect,
  db: TestDb,
  dir: string,
  o: JobOptions,
  extra: { connector?: Connector; batchRows?: number; runId?: string; log?: Logger; now?: () => Date } = {},
): Promise<RunSummary> {
  const plan = await writeJob(dialect, db, dir, o);
  return runJob(plan, {
    ...(extra.connector ? { connector: extra.connector } : {}),
    batchRows: extra.batchRows ?? 1000,
    ...(extra.runId ? { runId: extra.runId } : {}),
    ...(extra.log ? { log: extra.log } : {}),
    ...(extra.now ? { now: extra.now } : {}),
  });
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

    /** The database clock now, as a literal for bulkInsert (rows committed now carry it). */
    const dbNow = async (): Promise<string> => String(await db.scalar(dialect.nowSql));
    const micros = (literal: string): bigint => parseTimestampText(literal) as bigint;

    it('incremental: inserts and updates between runs add exactly the changed rows; the cursor is the database clock', async () => {
      await db.exec(dialect.itemsDdl('inc', true));
      await db.exec(dialect.bulkInsert('inc', 1, 100, '2026-01-01 00:00:00'));
      const before = micros(await dbNow());
      const r1 = await runJobFile(dialect, db, dir, { table: 'inc' });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.deepEqual(ids(await rowsOf(r1)), range(1, 100));
      // The window's high watermark, taken from the database clock (lag_seconds 0), is the next cursor: no tie keys.
      const c1 = r1.objects[0]!.cursor!;
      assert.equal(c1.upper, 'exclusive');
      assert.deepEqual(c1.written, []);
      const w1 = cursorFromString('timestamp', c1.value) as bigint;
      assert.ok(w1 >= before && w1 <= micros(await dbNow()), `watermark ${c1.value} is the database clock at the run`);

      const t = await dbNow();
      await db.exec(dialect.bulkInsert('inc', 101, 105, t));
      await db.exec(`UPDATE inc SET v = 'changed', updated_at = '${t}' WHERE id IN (3, 50, 99)`);
      const r2 = await runJobFile(dialect, db, dir, { table: 'inc' });
      assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
      const rows2 = await rowsOf(r2);
      assert.deepEqual(ids(rows2), [3, 50, 99, 101, 102, 103, 104, 105]);
      assert.equal(r2.objects[0]!.rows_read, 8, 'only the window since the last watermark is read');
      assert.equal(rows2.find((r) => Number(r['id']) === 50)!['v'], 'changed');
      assert.equal(rows2.find((r) => Number(r['id']) === 50)!['updated_at'], micros(t));
      assert.ok((cursorFromString('timestamp', r2.objects[0]!.cursor!.value) as bigint) > micros(t));

      const r3 = await runJobFile(dialect, db, dir, { table: 'inc' });
      assert.equal(r3.exit_code, 0);
      assert.equal(r3.objects[0]!.rows_written, 0, 'nothing new: nothing written');
    });

    it('5,000 rows sharing one cursor value across batch boundaries: read once, later ties at the watermark come with the next run', async () => {
      await db.exec(dialect.itemsDdl('ties', true));
      await db.exec(dialect.bulkInsert('ties', 1, 5000, '2026-03-01 12:00:00.123456'));
      const r1 = await runJobFile(dialect, db, dir, { table: 'ties', batchSize: 300 }, { batchRows: 700 });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.equal(r1.objects[0]!.rows_written, 5000);
      assert.deepEqual(r1.objects[0]!.cursor?.written, [], 'no tie keys');
      // Rows exactly AT the saved watermark (the window's excluded upper bound) belong to the next window.
      const w = r1.objects[0]!.cursor!.value;
      await db.exec(dialect.bulkInsert('ties', 5001, 5010, isoToSqlDateTime(w)));
      const r2 = await runJobFile(dialect, db, dir, { table: 'ties', batchSize: 300 }, { batchRows: 700 });
      assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
      assert.equal(r2.objects[0]!.rows_read, 10, 'the 5,000 tie rows are not read again');
      assert.deepEqual(ids(await rowsOf(r2)), range(5001, 5010));
      const r3 = await runJobFile(dialect, db, dir, { table: 'ties', batchSize: 300 }, { batchRows: 700 });
      assert.equal(r3.objects[0]!.rows_written, 0);
      assert.ok((await readFile(path.join(dir, 'ties.state.json'))).length < 2000, 'the state stays small');
    });

    it('incremental by increasing id: the window is (saved, max(id) in the snapshot]', async () => {
      await db.exec(dialect.itemsDdl('byid', true));
      await db.exec(dialect.bulkInsert('byid', 1, 30, '2026-01-01 00:00:00'));
      const r1 = await runJobFile(dialect, db, dir, { table: 'byid', strategy: 'id' });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.equal(r1.objects[0]!.rows_written, 30);
      assert.deepEqual(r1.objects[0]!.cursor, { field: 'id', value: '30', written: [], upper: 'inclusive', below: 30 });
      await db.exec(dialect.bulkInsert('byid', 31, 40, '2020-01-01 00:00:00'));
      const r2 = await runJobFile(dialect, db, dir, { table: 'byid', strategy: 'id' });
      assert.deepEqual(ids(await rowsOf(r2)), range(31, 40));
      assert.equal(r2.objects[0]!.rows_read, 10);
      const r3 = await runJobFile(dialect, db, dir, { table: 'byid', strategy: 'id' });
      assert.equal(r3.objects[0]!.rows_read, 0);
      assert.equal(r3.objects[0]!.cursor?.value, '40', 'an empty window keeps the cursor');
    });

    it('a table without a primary key works incrementally (whole-row identity at ties)', async () => {
      await db.exec(dialect.itemsDdl('nopk', false));
      await db.exec(dialect.bulkInsert('nopk', 1, 20, '2026-02-01 00:00:00'));
      const r1 = await runJobFile(dialect, db, dir, { table: 'nopk', pk: false });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.equal(r1.objects[0]!.rows_written, 20);
      await db.exec(dialect.bulkInsert('nopk', 21, 25, await dbNow()));
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
      await db.exec(`UPDATE killme SET v = 'again', updated_at = '${await dbNow()}' WHERE id <= 3000`);
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

    it("clock skew: this machine's clock days off the database's changes nothing, the watermark is the database clock", async () => {
      await db.exec(dialect.itemsDdl('skew', true));
      await db.exec(dialect.bulkInsert('skew', 1, 10, await dbNow()));
      let next = 11;
      const all: number[] = [];
      for (const days of [3, -3, 30, 0]) {
        const r = await runJobFile(dialect, db, dir, { table: 'skew' }, { now: () => new Date(Date.now() + days * 86_400_000) });
        assert.equal(r.exit_code, 0, JSON.stringify(r.error));
        all.push(...ids(await rowsOf(r)));
        // Committed after the run, stamped by the database: a watermark from this machine's clock (3 or 30 days ahead) would skip them.
        await db.exec(dialect.bulkInsert('skew', next, next + 9, await dbNow()));
        next += 10;
      }
      const last = await runJobFile(dialect, db, dir, { table: 'skew' }, { now: () => new Date(Date.now() - 86_400_000) });
      all.push(...ids(await rowsOf(last)));
      assert.deepEqual(all.sort((a, b) => a - b), range(1, next - 1), 'every row once');
    });

    if (dialect.type === 'postgres') {
      it('a timestamp column without time zone, written in the database default zone (UTC-8): the watermark follows that zone, no row skipped', async () => {
        await db.exec(`ALTER DATABASE ${db.database} SET timezone = 'America/Los_Angeles'`);
        // A writer session with the database default zone: DEFAULT now() stores Los Angeles wall-clock time.
        const writer = new pg.Client(db.connection as pg.ClientConfig);
        await writer.connect();
        try {
          await writer.query('CREATE TABLE tzlocal (id bigint PRIMARY KEY, v text, updated_at timestamp DEFAULT now())');
          await writer.query(`INSERT INTO tzlocal (id, v) SELECT i, 'v' || i FROM generate_series(1, 5) i`);
          const r1 = await runJobFile(dialect, db, dir, { table: 'tzlocal' });
          assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
          assert.equal(r1.objects[0]!.rows_written, 5);
          await writer.query(`INSERT INTO tzlocal (id, v) SELECT i, 'v' || i FROM generate_series(6, 8) i`);
          const r2 = await runJobFile(dialect, db, dir, { table: 'tzlocal' });
          assert.equal(r2.exit_code, 0, JSON.stringify(r2.error));
          assert.deepEqual(ids(await rowsOf(r2)), [6, 7, 8], 'rows stamped 8 hours behind UTC are in the next window');
        } finally {
          await writer.end();
          await db.exec(`ALTER DATABASE ${db.database} RESET timezone`);
        }
      });
    }

    it('a state file of an earlier version (value + tie keys) keeps working: its tie rows are dropped once, then a window is saved', async () => {
      await db.exec(dialect.itemsDdl('legacy', true));
      const tie = '2026-02-02 02:02:02.5';
      await db.exec(dialect.bulkInsert('legacy', 1, 2000, tie));
      const plan = await jobPlan(dialect, db, dir, { table: 'legacy' });
      // What the previous version saved after writing ids 1..1500 at the tie
      // (ids 1501..2000 were committed later with the same value).
      const value = '2026-02-02T02:02:02.500000Z';
      const written = Array.from({ length: 1500 }, (_, i) => rowIdentity(value, ['id'], { id: BigInt(i + 1) }));
      const stateFile = path.join(dir, 'legacy.state.json');
      const old = { version: 1, tenant: plan.tenantId, job: plan.name, objects: { legacy: { cursor: { field: 'updated_at', value, written }, runId: 'old-run', updatedAt: '2026-02-02T03:00:00.000Z' } }, updatedAt: '2026-02-02T03:00:00.000Z' };
      await writeFile(stateFile, JSON.stringify(old));
      assert.ok((await readFile(stateFile)).length > 40_000);

      const r1 = await runJobFile(dialect, db, dir, { table: 'legacy' });
      assert.equal(r1.exit_code, 0, JSON.stringify(r1.error));
      assert.deepEqual(ids(await rowsOf(r1)), range(1501, 2000), 'the tie rows the old state names are not written again');
      const saved = JSON.parse(await readFile(stateFile, 'utf8')) as { objects: { legacy: { cursor: CursorState } } };
      assert.equal(saved.objects.legacy.cursor.upper, 'exclusive');
      assert.deepEqual(saved.objects.legacy.cursor.written, []);
      assert.ok((await readFile(stateFile)).length < 1000, 'the new state is small');
      const r2 = await runJobFile(dialect, db, dir, { table: 'legacy' });
      assert.equal(r2.objects[0]!.rows_read, 0);
    });

    it('a rejected row moves the cursor too: it is in the reject file once and not read again', async () => {
      await db.exec(dialect.itemsDdl('rej', true));
      await db.exec(dialect.bulkInsert('rej', 1, 20, await dbNow()));
      await db.exec(`UPDATE rej SET v = 'bad' WHERE id = 7`);
      const asset = ASSET_YAML.replace('{name: v, type: string}', '{name: v, type: string, pattern: "^v"}');
      const r1 = await runJobFile(dialect, db, dir, { table: 'rej', asset, validation: 'warn' });
      assert.equal(r1.exit_code, 1, JSON.stringify(r1));
      assert.equal(r1.objects[0]!.rows_rejected, 1);
      assert.equal(r1.objects[0]!.rows_written, 19);
      const rejected = (await readFile(r1.objects[0]!.reject_file!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { record: Row });
      assert.deepEqual(rejected.map((j) => Number(j.record['id'])), [7]);
      const r2 = await runJobFile(dialect, db, dir, { table: 'rej', asset, validation: 'warn' });
      assert.equal(r2.exit_code, 0, 'not rejected again');
      assert.equal(r2.objects[0]!.rows_read, 0);
    });

    it("first run: reads the whole history without the job's own lookback_days (the recipe default does not narrow it), and logs its window", async () => {
      await db.exec(dialect.itemsDdl('first', true));
      await db.exec(dialect.bulkInsert('first', 1, 50, '2020-06-01 00:00:00'));
      const { log, lines } = memoryLogger();
      // The job gives no lookback_days; the connector's recipe has lookback_days_default: 1.
      const r = await runJobFile(dialect, db, dir, { table: 'first', lookbackDays: null }, { log });
      assert.equal(r.exit_code, 0, JSON.stringify(r.error));
      assert.equal(r.objects[0]!.rows_written, 50);
      const w = lines.find((l) => l['event_type'] === 'cursor_window');
      assert.ok(w, 'the window is logged');
      assert.equal(w['level'], 30, 'at info');
      assert.equal(w['first_run'], true);
      assert.equal(w['cursor_field'], 'updated_at');
      assert.equal(w['from'], null, 'from the beginning');
      assert.equal(w['to'], r.objects[0]!.cursor!.value);
      assert.match(String(w['msg']), /first run: reading updated_at from the beginning to .* \(exclusive\): the database clock/);
    });

    it('first run that reads 0 rows of a non-empty table says why (lookback_days older than every row)', async () => {
      await db.exec(dialect.itemsDdl('empty1', true));
      await db.exec(dialect.bulkInsert('empty1', 1, 12, '2020-06-01 00:00:00'));
      const { log, lines } = memoryLogger();
      const r = await runJobFile(dialect, db, dir, { table: 'empty1', lookbackDays: 1 }, { log });
      assert.equal(r.exit_code, 0, JSON.stringify(r.error));
      assert.equal(r.objects[0]!.rows_written, 0);
      const warn = lines.find((l) => l['event_type'] === 'first_run_empty');
      assert.ok(warn, 'a warning says why nothing was read');
      assert.equal(warn['level'], 40);
      assert.equal(warn['source_rows'], 12);
      assert.equal(warn['behind'], 12);
      assert.match(String(warn['msg']), /12 are older than .*lookback_days: 1.*remove lookback_days/);
    });

    it('rows whose cursor moves backwards behind the saved cursor are warned with a count', async () => {
      await db.exec(dialect.itemsDdl('back', true));
      await db.exec(dialect.bulkInsert('back', 1, 10, '2026-01-01 00:00:00'));
      const r1 = await runJobFile(dialect, db, dir, { table: 'back' });
      assert.equal(r1.objects[0]!.cursor?.below, 10);
      await db.exec(`UPDATE back SET v = 'moved', updated_at = '2001-01-01 00:00:00' WHERE id IN (1, 2, 3)`);
      await db.exec(dialect.bulkInsert('back', 11, 12, '2001-01-01 00:00:00'));
      const { log, lines } = memoryLogger();
      const r2 = await runJobFile(dialect, db, dir, { table: 'back' }, { log });
      assert.equal(r2.exit_code, 0);
      const warn = lines.find((l) => l['event_type'] === 'cursor_moved_backwards');
      assert.ok(warn, 'warned');
      // Updated rows were behind before as well; the two inserted behind the cursor are the new ones.
      assert.equal(warn['count'], 2);
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
