/**
 * End to end through the REST catalog: real Parquet files, `commitFiles`
 * (lib/iceberg/table.ts) committing through the REST client to the loopback
 * REST server, then the table read back by icebird (an independent reader)
 * from the metadata the catalog serves. Covers the lost-response retry (no
 * data file may be added twice) and two concurrent writers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { icebergRead } from 'icebird';
import { createRestCatalog } from '../../../lib/iceberg/rest.js';
import { commitFiles } from '../../../lib/iceberg/table.js';
import { readManifestEntries, readManifestList } from '../../../lib/iceberg/manifest.js';
import type { Catalog, LoadedTable, TableIdent } from '../../../lib/iceberg/catalog.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import { parquetSink } from '../../../lib/stages/parquet-sink.js';
import type { AssetField, DataFile, Row } from '../../../lib/types.js';
import { startRestCatalog, type RestCatalogServer } from '../../helpers/rest-catalog-server.js';

const fields: AssetField[] = [
  { name: 'id', type: { kind: 'long' }, typeName: 'long', required: true, fieldId: 1 },
  { name: 'name', type: { kind: 'string' }, typeName: 'string', required: false, fieldId: 2 },
  { name: '_dativo_ingested_at', type: { kind: 'timestamp' }, typeName: 'timestamp', required: true, fieldId: 3 },
  { name: '_dativo_run_id', type: { kind: 'string' }, typeName: 'string', required: true, fieldId: 4 },
];
const INGESTED_AT = 1795737600000000n; // 2026-11-27T00:00:00Z in µs
const INGEST_DAY = Number(INGESTED_AT / 86_400_000_000n);

let dir: string;
let storage: LocalStorage;
let server: RestCatalogServer;
let catalog: Catalog;
let nessieServer: RestCatalogServer;
let nessieCatalog: Catalog;
const realFetch = globalThis.fetch;

/**
 * icebird reads through global fetch; let it read `file://` URLs (HEAD for
 * the size, Range GETs for the bytes) and pass everything else through.
 */
function fileFetch(): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith('file:')) return realFetch(input, init);
    const path = fileURLToPath(url);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      return new Response('not found', { status: 404 });
    }
    if (init?.method === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(size) } });
    const headers = new Headers(init?.headers);
    const range = /^bytes=(\d+)-(\d*)$/.exec(headers.get('range') ?? '');
    const bytes = await readFile(path);
    if (!range) return new Response(bytes, { status: 200, headers: { 'content-length': String(size) } });
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    return new Response(bytes.subarray(start, end + 1), {
      status: 206,
      headers: { 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${size}` },
    });
  }) as typeof fetch;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-rest-e2e-'));
  storage = new LocalStorage(pathToFileURL(dir).href);
  server = await startRestCatalog({ warehouse: storage });
  catalog = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri }, storage);
  nessieServer = await startRestCatalog({ warehouse: storage, nessieStyle: true });
  nessieCatalog = await createRestCatalog({ type: 'rest', name: 'nessie', uri: `${nessieServer.uri}/main` }, storage);
  globalThis.fetch = fileFetch();
});
after(async () => {
  globalThis.fetch = realFetch;
  await catalog.close();
  await server.close();
  await nessieCatalog.close();
  await nessieServer.close();
  await rm(dir, { recursive: true, force: true });
});

/** Write `ids` as one real Parquet file of run `runId` under the table location. */
async function writeRun(table: string, runId: string, ids: number[]): Promise<DataFile[]> {
  const rows: Row[] = ids.map((id) => ({ id: BigInt(id), name: `n${id}`, _dativo_ingested_at: INGESTED_AT }));
  const sink = parquetSink({
    storage,
    fields,
    constants: { _dativo_run_id: runId },
    directory: `db/${table}/data/ingest_date=2026-11-27`,
    relativeTo: `db/${table}`,
    filePrefix: `part-${runId}`,
    partition: { ingest_date: INGEST_DAY },
  });
  await pipeline(Readable.from([rows]), sink);
  assert.equal(sink.files.length, 1);
  return sink.files;
}

function commit(table: string, runId: string, files: DataFile[]) {
  return commitFiles(catalog, { namespace: ['db'], name: table }, {
    files,
    mode: 'append',
    summary: { 'dativo.run-id': runId, 'dativo.cursor.events': JSON.stringify({ run: runId }) },
    fields,
    location: `${storage.root}/db/${table}`,
    storage,
  });
}

/** Data file paths live in the current snapshot, with how often each appears. */
async function liveFiles(table: LoadedTable): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const current = table.metadata['current-snapshot-id'];
  const snap = (table.metadata.snapshots as Record<string, unknown>[]).find((s) => s['snapshot-id'] === current);
  assert.ok(snap, 'current snapshot present');
  const list = readManifestList(await readFile(fileURLToPath(String(snap['manifest-list']))));
  for (const row of list) {
    for (const e of readManifestEntries(await readFile(fileURLToPath(row.manifest_path)), row)) {
      if (e.status !== 2) out.set(e.filePath, (out.get(e.filePath) ?? 0) + 1);
    }
  }
  return out;
}

/** Every row of the table as icebird reads it, sorted by id. */
async function readTable(ident: TableIdent): Promise<Row[]> {
  const t = await catalog.loadTable(ident);
  assert.ok(t);
  const rows = (await icebergRead({ tableUrl: String(t.metadata.location), metadata: t.metadata as never })) as Row[];
  return rows.sort((a, b) => Number(a.id) - Number(b.id));
}

describe('commitFiles through the REST catalog', () => {
  test('creates the table and appends two runs; icebird reads every row once', async () => {
    const ident = { namespace: ['db'], name: 'events' };
    const r1 = await commit('events', 'run-1', await writeRun('events', 'run-1', [1, 2, 3]));
    assert.equal(r1.alreadyCommitted, false);
    const r2 = await commit('events', 'run-2', await writeRun('events', 'run-2', [4, 5]));
    const t = await catalog.loadTable(ident);
    assert.equal(t?.metadata['current-snapshot-id'], r2.snapshotId);
    assert.equal(t?.metadata['last-sequence-number'], 2n);
    assert.equal(server.state.getTable(['db'], 'events')?.metadataLocation, t?.metadataLocation);
    const rows = await readTable(ident);
    assert.deepEqual(rows.map((r) => r.id), [1n, 2n, 3n, 4n, 5n]);
    assert.deepEqual(rows.map((r) => r._dativo_run_id), ['run-1', 'run-1', 'run-1', 'run-2', 'run-2']);
    assert.ok(r1.snapshotId > 0n);
  });

  for (const action of [{ status: 503 }, { close: true as const }]) {
    const label = 'status' in action ? '503' : 'dropped connection';
    test(`lost response (${label} after the commit applied): reported as committed, no file added twice`, async () => {
      const name = `lost_${'status' in action ? 's' : 'c'}`;
      const ident = { namespace: ['db'], name };
      await commit(name, 'run-a', await writeRun(name, 'run-a', [1, 2]));
      const applied = server.state.appliedCommits;
      const files = await writeRun(name, 'run-b', [3, 4, 5]);
      server.addFault({ op: 'commit', when: 'after', action });
      const r = await commit(name, 'run-b', files);
      assert.equal(r.alreadyCommitted, true);
      assert.equal(server.state.appliedCommits, applied + 1, 'exactly one commit applied');
      const t = await catalog.loadTable(ident);
      assert.ok(t);
      assert.equal(t.metadata['current-snapshot-id'], r.snapshotId);
      const live = await liveFiles(t);
      assert.equal(live.size, 2);
      assert.ok([...live.values()].every((n) => n === 1), `a file is listed twice: ${[...live].join(' ')}`);
      assert.deepEqual((await readTable(ident)).map((row) => row.id), [1n, 2n, 3n, 4n, 5n]);

      // Same run committed again (e.g. a crashed process re-running its commit): still once.
      const again = await commit(name, 'run-b', files);
      assert.equal(again.alreadyCommitted, true);
      assert.equal(server.state.appliedCommits, applied + 1);
    });
  }

  test('503 before the commit applied: retried, lands once', async () => {
    const name = 'lost_before';
    const ident = { namespace: ['db'], name };
    await commit(name, 'run-a', await writeRun(name, 'run-a', [1]));
    server.addFault({ op: 'commit', when: 'before', action: { status: 503 } });
    const r = await commit(name, 'run-b', await writeRun(name, 'run-b', [2, 3]));
    assert.equal(r.alreadyCommitted, false);
    const t = await catalog.loadTable(ident);
    assert.ok(t);
    assert.equal(t.metadata['current-snapshot-id'], r.snapshotId);
    assert.equal(t.metadata['last-sequence-number'], 2n);
    assert.deepEqual((await readTable(ident)).map((row) => row.id), [1n, 2n, 3n]);
  });

  test('two concurrent writers: one loses the race (409), rebases, and both land', async () => {
    const name = 'concurrent';
    const ident = { namespace: ['db'], name };
    await commit(name, 'run-0', await writeRun(name, 'run-0', [0]));
    const [fa, fb] = await Promise.all([writeRun(name, 'run-x', [1, 2]), writeRun(name, 'run-y', [3, 4])]);
    // Hold the first commit that arrives until the second has landed, so the race is certain.
    server.addFault({ op: 'commit', when: 'before', action: { delayMs: 300 } });
    const mark = server.requests.length;
    const [ra, rb] = await Promise.all([commit(name, 'run-x', fa), commit(name, 'run-y', fb)]);
    const commits = server.requests.slice(mark).filter((r) => r.op === 'commit');
    assert.ok(commits.some((r) => r.status === 409), `expected a 409 among ${commits.map((r) => r.status).join(',')}`);
    const t = await catalog.loadTable(ident);
    assert.ok(t);
    const ids = (t.metadata.snapshots as Record<string, unknown>[]).map((s) => s['snapshot-id']);
    assert.ok(ids.includes(ra.snapshotId) && ids.includes(rb.snapshotId));
    assert.equal(t.metadata['last-sequence-number'], 3n);
    const live = await liveFiles(t);
    assert.equal(live.size, 3);
    assert.ok([...live.values()].every((n) => n === 1));
    assert.deepEqual((await readTable(ident)).map((row) => row.id), [0n, 1n, 2n, 3n, 4n]);
  });
});

describe('commitFiles through a Nessie-style REST catalog (metadata shows only the current snapshot)', () => {
  const nessieCommit = (table: string, runId: string, files: DataFile[]) =>
    commitFiles(nessieCatalog, { namespace: ['db'], name: table }, {
      files,
      mode: 'append',
      summary: { 'dativo.run-id': runId },
      fields,
      location: `${storage.root}/db/${table}`,
      storage,
    });

  test('lost response, then a concurrent pair: every file once, every row read back', async () => {
    const name = 'nessie_events';
    const ident = { namespace: ['db'], name };
    await nessieCommit(name, 'run-a', await writeRun(name, 'run-a', [1]));
    const loaded = await nessieCatalog.loadTable(ident);
    assert.match(String(loaded?.metadata.location), /\/db\/nessie_events_[0-9a-f-]{36}$/);

    const applied = nessieServer.state.appliedCommits;
    nessieServer.addFault({ op: 'commit', when: 'after', action: { close: true } });
    const lost = await nessieCommit(name, 'run-b', await writeRun(name, 'run-b', [2, 3]));
    assert.equal(lost.alreadyCommitted, true);
    assert.equal(nessieServer.state.appliedCommits, applied + 1);

    const [fx, fy] = await Promise.all([writeRun(name, 'run-x', [4]), writeRun(name, 'run-y', [5])]);
    nessieServer.addFault({ op: 'commit', when: 'before', action: { delayMs: 300 } });
    await Promise.all([nessieCommit(name, 'run-x', fx), nessieCommit(name, 'run-y', fy)]);

    const t = await nessieCatalog.loadTable(ident);
    assert.ok(t);
    assert.equal((t.metadata.snapshots as unknown[]).length, 1);
    assert.equal(t.metadata['last-sequence-number'], 4n);
    const live = await liveFiles(t);
    assert.equal(live.size, 4);
    assert.ok([...live.values()].every((n) => n === 1), `a file is listed twice: ${[...live].join(' ')}`);
    const rows = (await icebergRead({ tableUrl: String(t.metadata.location), metadata: t.metadata as never })) as Row[];
    assert.deepEqual(rows.map((r) => r.id).sort((a, b) => Number(a) - Number(b)), [1n, 2n, 3n, 4n, 5n]);
  });
});

describe('lost response while another writer commits before the status check', () => {
  for (const style of ['plain', 'nessie'] as const) {
    // With Nessie the metadata holds only the current snapshot, so run-b's
    // snapshot is gone from it once run-c lands: findLanded must recognise the
    // commit by its files (all live, added by run-b's snapshot id).
    test(`${style}: the lost commit is recognised as landed, no file twice`, async () => {
      const cat = style === 'plain' ? catalog : nessieCatalog;
      const srv = style === 'plain' ? server : nessieServer;
      const name = `lost_race_${style}`;
      const ident = { namespace: ['db'], name };
      const run = (runId: string, files: DataFile[]) =>
        commitFiles(cat, ident, { files, mode: 'append', summary: { 'dativo.run-id': runId }, fields, location: `${storage.root}/db/${name}`, storage });
      await run('run-a', await writeRun(name, 'run-a', [1]));
      const [fb, fc] = await Promise.all([writeRun(name, 'run-b', [2]), writeRun(name, 'run-c', [3])]);
      // run-b's commit lands, run-c commits on top of it, then run-b's connection drops.
      srv.addFault({ op: 'commit', when: 'after', action: [{ call: async () => void (await run('run-c', fc)) }, { close: true }] });
      const r = await run('run-b', fb);
      assert.equal(r.alreadyCommitted, true);
      assert.equal(r.sequenceNumber, 2n, 'run-b landed right after run-a');
      const t = await cat.loadTable(ident);
      assert.ok(t);
      const live = await liveFiles(t);
      assert.equal(live.size, 3);
      assert.ok([...live.values()].every((n) => n === 1));
    });
  }

  test('nessie: the same on the last allowed attempt is recognised by the status check itself', async () => {
    const name = 'lost_race_last';
    const ident = { namespace: ['db'], name };
    const run = (runId: string, files: DataFile[]) =>
      commitFiles(nessieCatalog, ident, { files, mode: 'append', summary: { 'dativo.run-id': runId }, fields, location: `${storage.root}/db/${name}`, storage, maxAttempts: 1 });
    await run('run-a', await writeRun(name, 'run-a', [1]));
    const [fb, fc] = await Promise.all([writeRun(name, 'run-b', [2]), writeRun(name, 'run-c', [3])]);
    nessieServer.addFault({ op: 'commit', when: 'after', action: [{ call: async () => void (await run('run-c', fc)) }, { close: true }] });
    const r = await run('run-b', fb);
    assert.equal(r.alreadyCommitted, true);
    assert.equal(r.attempts, 1);
    const t = await nessieCatalog.loadTable(ident);
    assert.ok(t);
    assert.equal((await liveFiles(t)).size, 3);
  });
});
