/**
 * Exactly once when runs overlap and jobs share a table, on the embedded
 * SQLite catalog and the SQL catalog on Postgres:
 *
 * - 20 rounds of two `dativo run` processes of one job started at once, new
 *   rows between rounds: every row lands once; the second run exits 2
 *   (JOB_LOCKED naming the holder, or COMMIT_CONFLICT) or finds nothing new.
 * - 20 rounds of two runJob calls on the same plan at once, without the lock:
 *   the commit's compare-and-set lets exactly one land; the loser gets
 *   COMMIT_CONFLICT, commits nothing and leaves no data file behind.
 * - Fan-in: two tenants' jobs into one explicitly shared table, and two shard
 *   jobs into one table, each with its own cursor: no row skipped.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { loadJob } from '../../../lib/config/index.js';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { currentSnapshot } from '../../../lib/iceberg/metadata.js';
import type { CatalogSpec } from '../../../lib/plan.js';
import { runJob, type RunSummary } from '../../../lib/run.js';
import { openStorage } from '../../../lib/storage/index.js';
import { stateSummaryKey } from '../../../lib/table-target.js';
import { readIcebergTable } from '../../helpers/iceberg-read.js';
import { pgAdmin } from '../../helpers/postgres.js';
import { dativo } from '../cli/helpers.js';
import { eventsAsset, writeEventsCsv } from '../../helpers/events.js';

const DB = `dativo_concurrent_${randomBytes(4).toString('hex')}`;
const PG_URI = `postgres://postgres@127.0.0.1:5432/${DB}`;
const ROUNDS = 20;
/**
 * Rounds of two spawned CLI processes. Each round spawns two processes (two
 * to six seconds a round on a loaded two-core machine), so the suite runs 10
 * on SQLite and 5 on Postgres; DATIVO_CLI_ROUNDS=20 runs the full 20 on both.
 * The in-process rounds (the compare-and-set without the lock) are always 20.
 */
const CLI_ROUNDS: Record<'sqlite' | 'postgres', number> = {
  sqlite: Number(process.env['DATIVO_CLI_ROUNDS'] ?? 10),
  postgres: Number(process.env['DATIVO_CLI_ROUNDS'] ?? 5),
};

let root: string;

before(async () => {
  await pgAdmin(`CREATE DATABASE ${DB}`);
  root = await mkdtemp(path.join(tmpdir(), 'dativo-concurrent-'));
});

after(async () => {
  await pgAdmin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await rm(root, { recursive: true, force: true });
});

const ASSET = eventsAsset('conc');

type Kind = 'sqlite' | 'postgres';

interface Setup {
  dir: string;
  wh: string;
  catalog: CatalogSpec;
}

/** A project folder with the asset and a warehouse, its catalog of `kind` (Postgres: one schema-free catalog name per setup). */
async function setup(name: string, kind: Kind): Promise<Setup> {
  const dir = path.join(root, `${name}-${kind}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'asset.yaml'), ASSET);
  const wh = path.join(dir, 'wh');
  const catalog: CatalogSpec =
    kind === 'sqlite' ? { type: 'sql', name: 'dativo', uri: `sqlite:${path.join(wh, 'catalog.db')}` } : { type: 'sql', name: `c_${name.replace(/\W/g, '_')}`, uri: PG_URI };
  return { dir, wh, catalog };
}

interface JobSpec {
  file: string;
  tenant?: string;
  data: string;
  /** `file_modified_time` (default) or an `id` cursor. */
  cursor?: boolean;
  namespace?: string;
  table?: string;
}

async function writeJob(s: Setup, spec: JobSpec): Promise<string> {
  await mkdir(path.join(s.dir, spec.data), { recursive: true });
  const file = path.join(s.dir, spec.file);
  const catalogLines =
    s.catalog.type === 'sql' ? ['  catalog:', '    type: sql', `    name: ${s.catalog.name}`, `    uri: "${s.catalog.uri}"`] : [];
  await writeFile(
    file,
    [
      `tenant_id: ${spec.tenant ?? 'acme'}`,
      'source_connector: csv',
      'target_connector: iceberg',
      'asset_path: asset.yaml',
      'source:',
      `  files: [{path: "${spec.data}/*.csv", object: events}]`,
      spec.cursor ? '  incremental: {strategy: id, cursor_field: id}' : '  incremental: {strategy: file_modified_time}',
      'target:',
      '  warehouse: wh',
      ...(spec.namespace ? [`  namespace: ${spec.namespace}`] : []),
      ...(spec.table ? [`  table: ${spec.table}`] : []),
      ...catalogLines,
      `state: {path: state/${spec.tenant ?? 'acme'}/${path.basename(spec.file, '.yaml')}.json}`,
      'reject_dir: rejects',
      '',
    ].join('\n'),
  );
  return file;
}

/** Rows `from..from+count-1` in `<data>/<name>`, modified two minutes ago (past the lag). */
async function writeCsv(s: Setup, data: string, name: string, from: number, count: number): Promise<void> {
  await writeEventsCsv(path.join(s.dir, data, name), from, count, { minutesAgo: 2 });
}

async function tableIds(s: Setup, namespace = 'acme.conc', name = 'events'): Promise<{ ids: number[]; dataFiles: number; summary: Record<string, string> }> {
  const storage = await openStorage(pathToFileURL(s.wh).href);
  const catalog = await openCatalog(s.catalog, storage);
  assert.ok(catalog);
  try {
    const t = await catalog.loadTable({ namespace: namespace.split('.'), name });
    assert.ok(t, 'table exists');
    const rows = await readIcebergTable({ warehouseDir: s.wh, location: t.metadata.location, metadataLocation: t.metadataLocation });
    const summary = currentSnapshot(t.metadata)?.summary ?? {};
    return { ids: rows.map((r) => Number(r['id'])).sort((a, b) => a - b), dataFiles: Number(summary['total-data-files']), summary };
  } finally {
    await catalog.close();
  }
}

async function parquetCount(dir: string): Promise<number> {
  let n = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(path.join(d, e.name));
      else if (e.name.endsWith('.parquet')) n++;
    }
  };
  await walk(dir);
  return n;
}

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`concurrent runs of one job, ${kind} catalog`, () => {
    const cliRounds = CLI_ROUNDS[kind];
    test(`${cliRounds} rounds of two dativo run processes at once: every row exactly once`, async () => {
      const s = await setup('cli', kind);
      const job = await writeJob(s, { file: 'job.yaml', data: 'data' });
      const outcomes: string[] = [];
      for (let round = 0; round < cliRounds; round++) {
        await writeCsv(s, 'data', `r${round}.csv`, round * 10 + 1, 10);
        const runs = await Promise.all([0, 1].map(() => dativo(['run', path.basename(job), '--json'], { cwd: s.dir })));
        let landed = 0;
        for (const r of runs) {
          assert.ok(r.code === 0 || r.code === 2, `round ${round}: exit ${r.code}\n${r.stderr}`);
          const summary = JSON.parse(r.stdout) as RunSummary;
          if (r.code === 2) {
            assert.ok(summary.error?.code === 'JOB_LOCKED' || summary.objects[0]?.error?.code === 'COMMIT_CONFLICT', r.stdout);
            if (summary.error?.code === 'JOB_LOCKED') assert.match(summary.error.message, /another run of this job is running \(pid \d+ on .+ since \d{4}-\d\d-\d\dT/);
            outcomes.push(summary.error?.code ?? 'COMMIT_CONFLICT');
          } else {
            landed += summary.objects[0]!.rows_written;
            if (summary.objects[0]!.rows_written === 0) outcomes.push('nothing new');
          }
        }
        assert.equal(landed, 10, `round ${round}: the new rows land once (${outcomes.join(', ')})`);
      }
      const t = await tableIds(s);
      assert.deepEqual(t.ids, range(1, cliRounds * 10));
      assert.equal(await parquetCount(path.join(s.wh, 'acme', 'conc')), t.dataFiles, 'no data file of a losing run is left behind');
      assert.ok(outcomes.length >= cliRounds, `every round had a second run that did not land (${outcomes.length})`);
    });

    test(`${ROUNDS} rounds of two runJob calls on one plan at once, without the lock: the compare-and-set lets one land`, async () => {
      const s = await setup('lib', kind);
      const job = await writeJob(s, { file: 'job.yaml', data: 'data' });
      const plan = await loadJob(job, { cwd: s.dir });
      let conflicts = 0;
      for (let round = 0; round < ROUNDS; round++) {
        await writeCsv(s, 'data', `r${round}.csv`, round * 10 + 1, 10);
        const runs = await Promise.all([0, 1].map(() => runJob(plan, { lock: false })));
        let landed = 0;
        for (const r of runs) {
          const o = r.objects[0]!;
          if (r.exit_code === 0) {
            landed += o.rows_written;
            continue;
          }
          assert.equal(r.exit_code, 2, JSON.stringify(r.error));
          assert.equal(o.error?.code, 'COMMIT_CONFLICT', JSON.stringify(o.error));
          assert.match(o.error.message, /another run of job job \(tenant acme\) committed events/);
          conflicts++;
        }
        assert.equal(landed, 10, `round ${round}: ${JSON.stringify(runs.map((r) => [r.exit_code, r.objects[0]?.rows_written, r.objects[0]?.error?.code]))}`);
      }
      const t = await tableIds(s);
      assert.deepEqual(t.ids, range(1, ROUNDS * 10));
      assert.equal(await parquetCount(path.join(s.wh, 'acme', 'conc')), t.dataFiles, 'the losers removed their data files');
      assert.ok(conflicts > 0, 'the compare-and-set was exercised');
    });

    test('two tenants into one explicitly shared table, and two shard jobs into one table: each job its own cursor, no row skipped', async () => {
      const s = await setup('fanin', kind);
      const shared = { namespace: 'shared', table: 'all_events', cursor: true };
      const a = await writeJob(s, { ...shared, file: 'a.yaml', tenant: 'acme', data: 'a' });
      const b = await writeJob(s, { ...shared, file: 'b.yaml', tenant: 'globex', data: 'b' });
      const shard1 = await writeJob(s, { ...shared, file: 'shard.1.yaml', tenant: 'acme', data: 's1' });
      const shard2 = await writeJob(s, { ...shared, file: 'shard.2.yaml', tenant: 'acme', data: 's2' });
      const run = async (f: string): Promise<RunSummary> => {
        const r = await runJob(await loadJob(f, { cwd: s.dir }));
        assert.equal(r.exit_code, 0, JSON.stringify(r.error ?? r.objects[0]?.error));
        return r;
      };
      // Ids of the later jobs are below the earlier jobs' cursors: a shared cursor would skip them all.
      await writeCsv(s, 'a', '1.csv', 9001, 10);
      await writeCsv(s, 'b', '1.csv', 5001, 10);
      await writeCsv(s, 's1', '1.csv', 3001, 10);
      await writeCsv(s, 's2', '1.csv', 1001, 10);
      const written = async (): Promise<number[]> => [
        (await run(a)).objects[0]!.rows_written,
        (await run(b)).objects[0]!.rows_written,
        (await run(shard1)).objects[0]!.rows_written,
        (await run(shard2)).objects[0]!.rows_written,
      ];
      assert.deepEqual(await written(), [10, 10, 10, 10]);
      await writeCsv(s, 'a', '2.csv', 9011, 5);
      await writeCsv(s, 'b', '2.csv', 5011, 5);
      await writeCsv(s, 's1', '2.csv', 3011, 5);
      await writeCsv(s, 's2', '2.csv', 1011, 5);
      assert.deepEqual(await written(), [5, 5, 5, 5]);
      assert.deepEqual(await written(), [0, 0, 0, 0], 'a third round reads nothing new');
      const t = await tableIds(s, 'shared', 'all_events');
      assert.deepEqual(t.ids, [...range(1001, 15), ...range(3001, 15), ...range(5001, 15), ...range(9001, 15)]);
      const cursor = (tenant: string, job: string): string => (JSON.parse(t.summary[stateSummaryKey({ tenant, job }, 'events')]!) as { cursor: { value: string } }).cursor.value;
      // Every job's cursor rides along in the newest snapshot, each its own.
      assert.deepEqual([cursor('acme', 'a'), cursor('globex', 'b'), cursor('acme', 'shard.1'), cursor('acme', 'shard.2')], ['9015', '5015', '3015', '1015']);
    });
  });
}
