/**
 * The SQL catalog on Postgres: the exact JDBC/PyIceberg layout, commits with
 * a lost swap, read-back, and an unreachable catalog database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { DativoError } from '../../../lib/errors.js';
import type { Catalog } from '../../../lib/iceberg/catalog.js';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { snapshotsOf } from '../../../lib/iceberg/metadata.js';
import { commitFiles, ensureTable } from '../../../lib/iceberg/table.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import { readIcebergTable } from '../../helpers/iceberg-read.js';
import { DAY_US, dayOf, orderFields, orderRows, writeDataFiles } from './fixtures.js';
import { assertInvariants } from './invariants.js';
import { pgAdmin } from '../../helpers/postgres.js';

const DB = `dativo_ice_test_${randomBytes(4).toString('hex')}`;
const URI = `postgres://postgres@127.0.0.1:5432/${DB}`;
let dir: string;
let storage: LocalStorage;


async function query(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ connectionString: URI });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

before(async () => {
  await pgAdmin(`CREATE DATABASE ${DB}`);
  dir = await mkdtemp(join(tmpdir(), 'dativo-ice-pg-'));
  storage = new LocalStorage(dir);
});
after(async () => {
  await pgAdmin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await rm(dir, { recursive: true, force: true });
});

async function open(): Promise<Catalog> {
  return (await openCatalog({ type: 'sql', name: 'lake', uri: URI }, storage))!;
}

test('the catalog tables have the JDBC/PyIceberg layout', async () => {
  const c = await open();
  await c.close();
  const cols = await query(
    `SELECT table_name, column_name, data_type, character_maximum_length AS len, is_nullable
       FROM information_schema.columns WHERE table_name IN ('iceberg_tables','iceberg_namespace_properties')
      ORDER BY table_name, ordinal_position`,
  );
  assert.deepEqual(
    cols.map((r) => [r.table_name, r.column_name, r.data_type, r.len, r.is_nullable]),
    [
      ['iceberg_namespace_properties', 'catalog_name', 'character varying', 255, 'NO'],
      ['iceberg_namespace_properties', 'namespace', 'character varying', 255, 'NO'],
      ['iceberg_namespace_properties', 'property_key', 'character varying', 255, 'NO'],
      ['iceberg_namespace_properties', 'property_value', 'character varying', 1000, 'YES'],
      ['iceberg_tables', 'catalog_name', 'character varying', 255, 'NO'],
      ['iceberg_tables', 'table_namespace', 'character varying', 255, 'NO'],
      ['iceberg_tables', 'table_name', 'character varying', 255, 'NO'],
      ['iceberg_tables', 'metadata_location', 'character varying', 1000, 'YES'],
      ['iceberg_tables', 'previous_metadata_location', 'character varying', 1000, 'YES'],
      ['iceberg_tables', 'iceberg_type', 'character varying', 5, 'YES'],
    ],
  );
  const pk = await query(
    `SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc
       JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name
      WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_name IN ('iceberg_tables','iceberg_namespace_properties')
      ORDER BY tc.table_name, kcu.ordinal_position`,
  );
  assert.deepEqual(pk.map((r) => `${String(r.table_name)}.${String(r.column_name)}`), [
    'iceberg_namespace_properties.catalog_name',
    'iceberg_namespace_properties.namespace',
    'iceberg_namespace_properties.property_key',
    'iceberg_tables.catalog_name',
    'iceberg_tables.table_namespace',
    'iceberg_tables.table_name',
  ]);
});

test('commits on Postgres: a lost swap is retried, the row points at the newest metadata, icebird reads every row', async () => {
  const a = await open();
  const b0 = await open();
  const ident = { namespace: ['crm', 'raw'], name: 'contacts' };
  const rel = 'crm/raw/contacts';
  const ingested = 20419n * DAY_US;
  const e = await ensureTable(a, ident, { fields: orderFields(), location: storage.uri(rel) });
  const rowsA = orderRows(0, 20, 'pa', ingested);
  const rowsB = orderRows(20, 35, 'pb', ingested);
  const write = (rows: typeof rowsA, runId: string) =>
    writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows, runId, ingestDay: dayOf(ingested) });
  const filesA = await write(rowsA, 'pa');
  const filesB = await write(rowsB, 'pb');
  let aDone = false;
  const b = Object.create(b0) as Catalog;
  b.commit = async (base, change) => {
    if (!aDone) {
      aDone = true;
      await commitFiles(a, ident, { files: filesA, mode: 'append', summary: { 'dativo.run-id': 'pa' }, fields: e.fields, location: storage.uri(rel), storage });
    }
    return b0.commit(base, change);
  };
  const rb = await commitFiles(b, ident, { files: filesB, mode: 'append', summary: { 'dativo.run-id': 'pb' }, fields: e.fields, location: storage.uri(rel), storage });
  assert.equal(rb.attempts, 2);
  assert.equal(rb.sequenceNumber, 2n);

  const table = (await a.loadTable(ident))!;
  await assertInvariants(table, storage);
  assert.equal(snapshotsOf(table.metadata).length, 2);
  const rows = await readIcebergTable({ warehouseDir: dir, location: String(table.metadata.location), metadataLocation: table.metadataLocation });
  assert.equal(rows.length, 35);
  assert.deepEqual(rows.map((r) => r.id).sort(), [...rowsA, ...rowsB].map((r) => r.id).sort());

  const [row] = await query(`SELECT * FROM iceberg_tables WHERE catalog_name = 'lake'`);
  assert.equal(row!.table_namespace, 'crm.raw');
  assert.equal(row!.table_name, 'contacts');
  assert.equal(row!.metadata_location, table.metadataLocation);
  assert.match(String(row!.metadata_location), /\/metadata\/00002-[0-9a-f-]{36}\.metadata\.json$/);
  assert.match(String(row!.previous_metadata_location), /\/metadata\/00001-[0-9a-f-]{36}\.metadata\.json$/);
  assert.equal(row!.iceberg_type, 'TABLE');
  const ns = await query(`SELECT namespace, property_key, property_value FROM iceberg_namespace_properties WHERE catalog_name = 'lake'`);
  assert.deepEqual(ns, [{ namespace: 'crm.raw', property_key: 'exists', property_value: 'true' }]);
  assert.deepEqual(await a.listTables(['crm', 'raw']), [ident]);

  // creating it again is a conflict that says so
  await assert.rejects(a.createTable(ident, { location: String(table.metadata.location), metadata: table.metadata }), (err: DativoError) => {
    assert.equal(err.code, 'COMMIT_CONFLICT');
    assert.equal(err.context.exists, true);
    return true;
  });
  await a.close();
  await b0.close();
});

test('an unreachable catalog database is CATALOG_UNAVAILABLE (exit 2)', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  await assert.rejects(openCatalog({ type: 'sql', name: 'lake', uri: `postgres://postgres@127.0.0.1:${port}/nope` }, storage), (err: DativoError) => {
    assert.equal(err.code, 'CATALOG_UNAVAILABLE');
    assert.equal(err.exitCode, 2);
    return true;
  });
  // a SQLite path that cannot be opened (here: a directory) is unavailable too
  await assert.rejects(openCatalog({ type: 'sql', name: 'lake', uri: `sqlite:${dir}` }, storage), {
    code: 'CATALOG_UNAVAILABLE',
  });
});

/**
 * A TCP proxy to Postgres that, once armed, lets the next `UPDATE
 * iceberg_tables` reach the server, waits for the server's answer (so the
 * swap is committed), drops that answer and cuts the client's connection.
 */
async function lossyProxy(): Promise<{ port: number; arm(): void; dropped: () => number; close(): Promise<void> }> {
  let armed = false;
  let dropped = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(5432, '127.0.0.1');
    sockets.add(client).add(upstream);
    let dropNext = false;
    client.on('data', (d) => {
      if (armed && d.includes('UPDATE iceberg_tables')) {
        armed = false;
        dropNext = true;
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (dropNext) {
        dropped += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    arm: () => {
      armed = true;
    },
    dropped: () => dropped,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test('a swap whose answer is lost on the wire: CATALOG_UNAVAILABLE from the driver, reconciled, committed once', async () => {
  const proxy = await lossyProxy();
  const catalog = (await openCatalog({ type: 'sql', name: 'lossy', uri: `postgres://postgres@127.0.0.1:${proxy.port}/${DB}` }, storage))!;
  try {
    const ident = { namespace: ['wire'], name: 'lost' };
    const rel = 'wire/lost';
    const ingested = 20419n * DAY_US;
    const e = await ensureTable(catalog, ident, { fields: orderFields(), location: storage.uri(rel) });
    const files = await writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows: orderRows(0, 12, 'w1', ingested), runId: 'w1', ingestDay: dayOf(ingested) });
    // the raw catalog reports the unknown outcome...
    const base = (await catalog.loadTable(ident))!;
    const seen: string[] = [];
    proxy.arm();
    const res = await commitFiles(
      Object.assign(Object.create(catalog) as Catalog, {
        commit: async (b: typeof base, change: Parameters<Catalog['commit']>[1]) => {
          try {
            return await catalog.commit(b, change);
          } catch (err) {
            seen.push((err as DativoError).code);
            throw err;
          }
        },
      }),
      ident,
      { files, mode: 'append', summary: { 'dativo.run-id': 'w1' }, fields: e.fields, location: storage.uri(rel), storage },
    );
    assert.equal(proxy.dropped(), 1);
    assert.deepEqual(seen, ['CATALOG_UNAVAILABLE']);
    // ...and the writer finds its snapshot on reload instead of committing twice
    assert.equal(res.alreadyCommitted, true);
    const table = (await catalog.loadTable(ident))!;
    assert.notEqual(table.metadataLocation, base.metadataLocation);
    assert.equal(snapshotsOf(table.metadata).length, 1);
    assert.equal(table.metadata['current-snapshot-id'], res.snapshotId);
    await assertInvariants(table, storage);
  } finally {
    await catalog.close();
    await proxy.close();
  }
});
