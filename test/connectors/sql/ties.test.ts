/**
 * The million-tie case of issue 8 at a suite-friendly size, on the real
 * Postgres and MariaDB, through the `dativo` CLI with the embedded Iceberg
 * catalog: 50,000 rows sharing one updated_at, then three runs each adding
 * 10 rows at that same timestamp. Every run exits 0, every row lands exactly
 * once, and the state file, each metadata.json and the --json line stay
 * under 100 KB (the tie-key protocol wrote all 50,000 keys into each).
 *
 * Under the window protocol a row is read once the watermark (database
 * clock minus lag_seconds) has passed its cursor: while the shared
 * timestamp is inside the lag, runs read none of its rows and new rows can
 * still join the tie; once the lag has passed (the job's lag_seconds is
 * lowered here instead of waiting an hour) one run reads all of them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { formatTimestampMicros } from '../../../lib/records/time.js';
import { isoToSqlDateTime, parseTimestampText } from '../../../connectors/sql/time.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { dativo, jsonLine, project, type Project } from '../../lib/cli/helpers.js';
import { createTestPg } from '../postgres/db.js';
import { createTestMysql } from '../mysql/db.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: ties
version: "1.0"
domain: test
schema:
  - {name: id, type: long, required: true}
  - {name: v, type: string}
  - {name: updated_at, type: timestamp}
primary_key: [id]
team: {owner: test@example.com}
`;

interface Db {
  connection: Record<string, unknown>;
  exec(sql: string): Promise<void>;
  now(): Promise<string>;
  insert(from: number, to: number, ts: string): string;
  table: string;
  drop(): Promise<void>;
}

async function files(dir: string, suffix: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith(suffix)) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

function describeTies(type: 'postgres' | 'mysql', open: () => Promise<Db>): void {
  describe(`${type}: 50,000 rows sharing one updated_at, then three runs adding 10 at that same timestamp (CLI, Iceberg)`, () => {
    let db: Db;
    let p: Project;
    before(async () => {
      db = await open();
      p = await project(`ties-${type}`);
      await p.write('ties.asset.yaml', ASSET);
    });
    after(async () => {
      await db?.drop();
      await p?.cleanup();
    });

    const job = (lag: number): string =>
      JSON.stringify({
        tenant_id: 't1',
        source_connector: type,
        target_connector: 'iceberg',
        asset_path: 'ties.asset.yaml',
        source: { tables: [{ name: db.table, object: 'ties' }], connection: { ...db.connection, batch_size: 5000 }, incremental: { strategy: 'updated_at', cursor_field: 'updated_at', lag_seconds: lag } },
        target: { warehouse: 'wh' },
        state: { path: 'state.json' },
      });

    const small = async (what: string): Promise<void> => {
      const state = await stat(p.p('state.json'));
      assert.ok(state.size < 100_000, `${what}: state file ${state.size} bytes`);
      for (const m of await files(p.p('wh'), '.metadata.json')) {
        const s = await stat(m);
        assert.ok(s.size < 100_000, `${what}: ${path.basename(m)} ${s.size} bytes`);
      }
    };

    it('every run exits 0, each row lands exactly once, state and metadata.json stay under 100 KB', async () => {
      // The shared timestamp: 30 s ago by the database clock, inside a lag of 10 minutes.
      const tie = isoToSqlDateTime(formatTimestampMicros((parseTimestampText(await db.now()) as bigint) - 30_000_000n));
      await db.exec(db.insert(1, 50_000, tie));
      let next = 50_001;
      await p.write('job.yaml', job(600));
      for (let run = 1; run <= 3; run++) {
        const ran = await dativo(['run', 'job.yaml', '--json'], { cwd: p.dir, timeoutMs: 120_000 });
        assert.equal(ran.code, 0, ran.stderr);
        assert.ok(ran.stdout.length < 100_000, `--json line ${ran.stdout.length} bytes`);
        const summary = jsonLine(ran.stdout);
        assert.equal(summary.objects[0]!.rows_written, 0, 'the tie is inside the lag: not read yet');
        await small(`run ${run}`);
        await db.exec(db.insert(next, next + 9, tie));
        next += 10;
      }
      // The lag has passed.
      await p.write('job.yaml', job(0));
      const ran = await dativo(['run', 'job.yaml', '--json'], { cwd: p.dir, timeoutMs: 120_000 });
      assert.equal(ran.code, 0, ran.stderr);
      assert.ok(ran.stdout.length < 100_000, `--json line ${ran.stdout.length} bytes`);
      assert.equal(jsonLine(ran.stdout).objects[0]!.rows_written, 50_030);
      await small('the run after the lag');
      const again = await dativo(['run', 'job.yaml', '--json'], { cwd: p.dir, timeoutMs: 120_000 });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(jsonLine(again.stdout).objects[0]!.rows_written, 0);
      await small('the run after that');

      const ids: number[] = [];
      for (const f of await files(p.p('wh'), '.parquet')) for (const r of (await readParquetWithDuckDB(f)).rows) ids.push(Number(r['id']));
      ids.sort((a, b) => a - b);
      assert.equal(ids.length, 50_030);
      assert.ok(ids.every((id, i) => id === i + 1), 'ids 1..50,030, each once');
      const state = JSON.parse(await readFile(p.p('state.json'), 'utf8')) as { objects: { ties: { cursor: { written: string[]; upper: string } } } };
      assert.deepEqual(state.objects.ties.cursor.written, []);
      assert.equal(state.objects.ties.cursor.upper, 'exclusive');
    });
  });
}

describeTies('postgres', async () => {
  const t = await createTestPg();
  await t.client.query('CREATE TABLE ties (id bigint PRIMARY KEY, v text, updated_at timestamptz)');
  return {
    connection: t.connection,
    table: 'public.ties',
    exec: async (sql) => void (await t.client.query(sql)),
    now: async () => String((await t.client.query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS n")).rows[0].n),
    insert: (from, to, ts) => `INSERT INTO ties SELECT i, 'v' || i, '${ts}+00' FROM generate_series(${from}, ${to}) i`,
    async drop() {
      await t.drop();
    },
  };
});

describeTies('mysql', async () => {
  const t = await createTestMysql();
  await t.conn.query('SET SESSION cte_max_recursion_depth = 1000000').catch(() => undefined);
  await t.conn.query('SET SESSION max_recursive_iterations = 1000000').catch(() => undefined);
  await t.conn.query('CREATE TABLE ties (id BIGINT PRIMARY KEY, v TEXT, updated_at DATETIME(6) NULL)');
  return {
    connection: t.connection,
    table: 'ties',
    exec: async (sql) => void (await t.conn.query(sql)),
    now: async () => {
      const [rows] = (await t.conn.query("SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f') AS n")) as unknown as [{ n: string }[]];
      return rows[0]!.n;
    },
    insert: (from, to, ts) =>
      `INSERT INTO ties (id, v, updated_at) WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to}) SELECT i, CONCAT('v', i), '${ts}' FROM s`,
    async drop() {
      await t.drop();
    },
  };
});
