import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRestCatalog, encodeNamespace, encodePrefix } from '../../../lib/iceberg/rest.js';
import { DativoError } from '../../../lib/errors.js';
import { createLogger } from '../../../lib/log.js';
import { Writable } from 'node:stream';
import { appendChange, sampleTableMetadata, startRestCatalog, type RestCatalogServer } from '../../helpers/rest-catalog-server.js';

let dir: string;
let warehouse: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-rest-'));
  warehouse = pathToFileURL(dir).href;
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function isCode(code: string, extra?: (e: DativoError) => void) {
  return (err: unknown) => {
    assert.ok(err instanceof DativoError, `expected DativoError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    extra?.(err);
    return true;
  };
}

async function withServer(opts: Partial<Parameters<typeof startRestCatalog>[0]>, fn: (s: RestCatalogServer) => Promise<void>): Promise<void> {
  const server = await startRestCatalog({ warehouse, ...opts });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

describe('REST catalog: config and prefix', () => {
  test('takes the prefix from overrides and routes every call under it', async () => {
    await withServer({ prefix: 'acme-prod' }, async (server) => {
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri });
      assert.equal(cat.prefix, 'acme-prod');
      assert.equal(cat.config['rest-page-size'], '100');
      await cat.createNamespaceIfMissing(['ingest']);
      assert.deepEqual(server.state.namespaces(), [['ingest']]);
      const paths = server.requests.map((r) => r.url);
      assert.equal(paths[0], '/v1/config');
      assert.ok(paths.slice(1).every((p) => p.startsWith('/v1/acme-prod/namespaces')), paths.join(' '));
      await cat.close();
    });
  });

  test('a server override beats the prefix given in the job; without a server prefix the job prefix is used', async () => {
    await withServer({ prefix: 'server-side' }, async (server) => {
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri, prefix: 'mine' });
      assert.equal(cat.prefix, 'server-side');
      await cat.close();
    });
    await withServer({}, async (server) => {
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: `${server.uri}/`, prefix: 'mine' });
      assert.equal(cat.prefix, 'mine');
      assert.equal(cat.baseUri, server.uri);
      // this server has no prefix routes, so the explicit prefix is really sent (and rejected)
      await assert.rejects(cat.createNamespaceIfMissing(['x']), isCode('CATALOG_INVALID', (e) => assert.equal(e.context.status, 404)));
      assert.ok(server.requests.at(-1)?.url.startsWith('/v1/mine/namespaces'));
      await cat.close();
    });
  });

  test('sends ?warehouse= to /v1/config; a missing warehouse is a config error', async () => {
    await withServer({ warehouseName: 'lake wh' }, async (server) => {
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri, warehouse: 'lake wh' });
      assert.equal(server.requests[0]?.url, '/v1/config?warehouse=lake%20wh');
      assert.equal(cat.config.warehouse, 'lake wh');
      await cat.close();
      await assert.rejects(createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri }), isCode('CATALOG_INVALID', (e) => assert.equal(e.context.status, 404)));
    });
  });

  test('encodes prefixes and namespaces for the path', () => {
    assert.equal(encodeNamespace(['ingest', 'raw']), 'ingest%1Fraw');
    assert.equal(encodePrefix('main|wh'), 'main%7Cwh');
    assert.equal(encodePrefix('main%7Cwh'), 'main%7Cwh');
    assert.equal(encodePrefix('catalogs/my cat'), 'catalogs/my%20cat');
  });
});

describe('REST catalog: namespaces and tables', () => {
  test('namespace creation is idempotent and creates parent levels', async () => {
    await withServer({}, async (server) => {
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri });
      await cat.createNamespaceIfMissing(['ingest', 'raw']);
      await cat.createNamespaceIfMissing(['ingest', 'raw']);
      await cat.createNamespaceIfMissing(['ingest']);
      assert.deepEqual(server.state.namespaces(), [['ingest'], ['ingest', 'raw']]);
      assert.ok(server.requests.some((r) => r.url === '/v1/namespaces/ingest%1Fraw'));
      // second call: one GET that finds it, no POST
      const posts = server.requests.filter((r) => r.method === 'POST');
      assert.equal(posts.length, 2);
      await cat.close();
    });
  });

  test('create, load, list; load of a missing table is undefined', async () => {
    await withServer({}, async (server) => {
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri });
      await cat.createNamespaceIfMissing(['ingest', 'raw']);
      const ident = { namespace: ['ingest', 'raw'], name: 'orders' };
      assert.equal(await cat.loadTable(ident), undefined);
      const location = `${warehouse}/ingest/raw/orders`;
      const initial = sampleTableMetadata(location);
      const created = await cat.createTable(ident, { location, metadata: initial });
      assert.equal(created.metadata.location, location);
      assert.match(created.metadataLocation, new RegExp(`^${location}/metadata/00000-[0-9a-f-]{36}\\.metadata\\.json$`));
      // the server assigns the table uuid, keeps the schema and properties
      assert.notEqual(created.metadata['table-uuid'], initial['table-uuid']);
      assert.deepEqual((created.metadata.schemas as unknown[])[0], (initial.schemas as unknown[])[0]);
      assert.equal((created.metadata.properties as Record<string, string>)['write.format.default'], 'parquet');
      assert.equal(created.metadata['current-snapshot-id'], -1n);
      const body = JSON.parse(server.requests.find((r) => r.op === 'create-table')?.body ?? '{}') as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ['location', 'name', 'partition-spec', 'properties', 'schema', 'stage-create', 'write-order']);
      assert.equal(body['stage-create'], false);

      const onDisk = JSON.parse(await readFile(fileURLToPath(created.metadataLocation), 'utf8')) as Record<string, unknown>;
      assert.equal(onDisk['table-uuid'], created.metadata['table-uuid']);

      const loaded = await cat.loadTable(ident);
      assert.ok(loaded);
      assert.equal(loaded.metadataLocation, created.metadataLocation);
      assert.deepEqual(loaded.ident, ident);

      await assert.rejects(cat.createTable(ident, { location, metadata: initial }), isCode('COMMIT_CONFLICT', (e) => assert.equal(e.context.exists, true)));
      await assert.rejects(
        cat.createTable({ namespace: ['nope'], name: 't' }, { location: `${warehouse}/nope/t`, metadata: sampleTableMetadata(`${warehouse}/nope/t`) }),
        isCode('CATALOG_INVALID'),
      );

      assert.deepEqual(await cat.listTables(['ingest', 'raw']), [ident]);
      assert.deepEqual(await cat.listTables(['missing']), []);
      await cat.close();
    });
  });

  test('listTables follows page tokens and walks nested namespaces when none is given', async () => {
    await withServer({ pageSize: 2 }, async (server) => {
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri });
      const idents = [];
      for (const [ns, n] of [[['a'], 3], [['a', 'b'], 2], [['c'], 1]] as const) {
        await cat.createNamespaceIfMissing([...ns]);
        for (let i = 0; i < n; i++) {
          const ident = { namespace: [...ns], name: `t${i}` };
          const location = `${warehouse}/paged/${ns.join('/')}/t${i}`;
          await cat.createTable(ident, { location, metadata: sampleTableMetadata(location) });
          idents.push(ident);
        }
      }
      assert.deepEqual(await cat.listTables(['a']), idents.slice(0, 3));
      assert.ok(server.requests.some((r) => r.url.includes('pageToken=2')));
      const all = await cat.listTables();
      const key = (t: { namespace: string[]; name: string }) => [...t.namespace, t.name].join('.');
      assert.deepEqual(all.map(key).sort(), idents.map(key).sort());
      await cat.close();
    });
  });
});

describe('REST catalog: commit', () => {
  async function setup(server: RestCatalogServer, name: string) {
    const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri });
    await cat.createNamespaceIfMissing(['db']);
    const location = `${warehouse}/db/${name}`;
    const table = await cat.createTable({ namespace: ['db'], name }, { location, metadata: sampleTableMetadata(location) });
    return { cat, table };
  }

  test('a commit with correct requirements lands: snapshot, ref, logs, new metadata file', async () => {
    await withServer({}, async (server) => {
      const { cat, table } = await setup(server, 'c1');
      const c1 = await cat.commit(table, appendChange(table, 101n, { 'dativo.run-id': 'r1' }));
      assert.equal(c1.metadata['current-snapshot-id'], 101n);
      assert.equal(c1.metadata['last-sequence-number'], 1n);
      assert.match(c1.metadataLocation, /\/metadata\/00001-[0-9a-f-]{36}\.metadata\.json$/);
      assert.deepEqual(c1.metadata['metadata-log'], [{ 'timestamp-ms': table.metadata['last-updated-ms'], 'metadata-file': table.metadataLocation }]);
      assert.equal((c1.metadata['snapshot-log'] as unknown[]).length, 1);
      const c2 = await cat.commit(c1, appendChange(c1, 102n));
      assert.equal(c2.metadata['current-snapshot-id'], 102n);
      assert.equal(c2.metadata['last-sequence-number'], 2n);
      const snaps = c2.metadata.snapshots as Record<string, unknown>[];
      assert.deepEqual(snaps.map((s) => s['snapshot-id']), [101n, 102n]);
      assert.equal(snaps[1]?.['parent-snapshot-id'], 101n);
      assert.match(c2.metadataLocation, /\/00002-/);
      // what the server holds and wrote is what the client got
      const stored = server.state.getTable(['db'], 'c1');
      assert.equal(stored?.metadataLocation, c2.metadataLocation);
      assert.equal(stored?.metadataFiles.length, 3);
      const sent = JSON.parse(server.requests.filter((r) => r.op === 'commit').at(-1)?.body ?? '{}') as Record<string, unknown>;
      assert.deepEqual(sent.identifier, { namespace: ['db'], name: 'c1' });
      assert.deepEqual(Object.keys(sent).sort(), ['identifier', 'requirements', 'updates']);
      await cat.close();
    });
  });

  test('a stale assert-ref-snapshot-id is COMMIT_CONFLICT and changes nothing', async () => {
    await withServer({}, async (server) => {
      const { cat, table } = await setup(server, 'c2');
      const first = await cat.commit(table, appendChange(table, 201n));
      // a writer that still holds the snapshot-less base asserts "main must not exist"
      await assert.rejects(
        cat.commit(table, appendChange(table, 202n)),
        isCode('COMMIT_CONFLICT', (e) => {
          assert.equal(e.context.status, 409);
          assert.equal(e.context.restErrorType, 'CommitFailedException');
          assert.equal(e.context.snapshotId, '202');
          assert.equal(e.disposition, 'retryable');
          assert.match(e.message, /Requirement failed: main was created concurrently/);
        }),
      );
      const stale = { ...first, metadata: { ...first.metadata } };
      await cat.commit(first, appendChange(first, 203n));
      await assert.rejects(cat.commit(stale, appendChange(stale, 204n)), isCode('COMMIT_CONFLICT', (e) => assert.match(e.message, /branch main has changed: expected id 201 != 203/)));
      const wrongUuid = appendChange(first, 205n);
      wrongUuid.requirements[0] = { type: 'assert-table-uuid', uuid: '00000000-0000-0000-0000-000000000000' };
      await assert.rejects(cat.commit(first, wrongUuid), isCode('COMMIT_CONFLICT'));
      const now = await cat.loadTable(table.ident);
      assert.equal(now?.metadata['current-snapshot-id'], 203n);
      assert.equal(server.state.appliedCommits, 2);
      await cat.close();
    });
  });

  test('the server checks schema/spec/sort requirements and rejects unknown updates and stale sequence numbers', async () => {
    await withServer({}, async (server) => {
      const { cat, table } = await setup(server, 'c3');
      const base = { requirements: [{ type: 'assert-table-uuid', uuid: table.metadata['table-uuid'] }], newMetadata: table.metadata };
      for (const [type, key] of [
        ['assert-current-schema-id', 'current-schema-id'],
        ['assert-last-assigned-field-id', 'last-assigned-field-id'],
        ['assert-default-spec-id', 'default-spec-id'],
        ['assert-default-sort-order-id', 'default-sort-order-id'],
        ['assert-last-assigned-partition-id', 'last-assigned-partition-id'],
      ] as const) {
        await assert.rejects(
          cat.commit(table, { ...base, requirements: [{ type, [key]: 77 }], updates: [{ action: 'set-properties', updates: { a: '1' } }] }),
          isCode('COMMIT_CONFLICT'),
          type,
        );
      }
      // schema evolution with the right requirements lands; set-current-schema -1 = last added
      const schema = { type: 'struct', 'schema-id': 1, fields: [...((table.metadata.schemas as Record<string, unknown>[])[0]?.fields as unknown[]), { id: 4, name: 'extra', required: false, type: 'string' }] };
      const evolved = await cat.commit(table, {
        ...base,
        requirements: [...base.requirements, { type: 'assert-current-schema-id', 'current-schema-id': 0 }, { type: 'assert-last-assigned-field-id', 'last-assigned-field-id': 3 }],
        updates: [
          { action: 'add-schema', schema },
          { action: 'set-current-schema', 'schema-id': -1 },
          { action: 'set-properties', updates: { 'dativo.x': 'y', drop: 'me' } },
          { action: 'remove-properties', removals: ['drop'] },
        ],
      });
      assert.equal(evolved.metadata['current-schema-id'], 1);
      assert.equal(evolved.metadata['last-column-id'], 4);
      assert.equal((evolved.metadata.properties as Record<string, string>)['dativo.x'], 'y');
      assert.equal((evolved.metadata.properties as Record<string, string>).drop, undefined);

      await assert.rejects(cat.commit(evolved, { ...base, updates: [{ action: 'frobnicate' }] }), isCode('CATALOG_INVALID', (e) => assert.equal(e.context.status, 400)));
      await assert.rejects(cat.commit(evolved, { ...base, requirements: [{ type: 'assert-moon-phase' }], updates: [] }), isCode('CATALOG_INVALID'));

      const s1 = await cat.commit(evolved, appendChange(evolved, 301n));
      const staleSeq = appendChange(s1, 302n);
      ((staleSeq.updates[0] as Record<string, unknown>).snapshot as Record<string, unknown>)['sequence-number'] = 1n;
      await assert.rejects(cat.commit(s1, staleSeq), isCode('CATALOG_INVALID', (e) => assert.match(e.message, /sequence number 1 older than last sequence number 1/)));
      await cat.close();
    });
  });

  test('63-bit snapshot ids cross the wire exactly (ids that collide as doubles stay distinct)', async () => {
    await withServer({}, async (server) => {
      const { cat, table } = await setup(server, 'big');
      const id1 = 8123456789012345678n;
      const id2 = 8123456789012345679n; // the same IEEE double as id1
      assert.equal(Number(id1), Number(id2));
      const c1 = await cat.commit(table, appendChange(table, id1));
      assert.equal(c1.metadata['current-snapshot-id'], id1);
      const sent = server.requests.filter((r) => r.op === 'commit').at(-1)?.body ?? '';
      assert.match(sent, /"snapshot-id":8123456789012345678[,}]/);
      const onDisk = await readFile(fileURLToPath(c1.metadataLocation), 'utf8');
      assert.match(onDisk, /"current-snapshot-id": 8123456789012345678,/);
      // a base that claims main is at id2 must be rejected: the server compares exactly
      const lying = { ...c1, metadata: { ...c1.metadata, refs: { main: { 'snapshot-id': id2, type: 'branch' } } } };
      await assert.rejects(cat.commit(lying, appendChange(lying, 9000000000000000001n)), isCode('COMMIT_CONFLICT'));
      const c2 = await cat.commit(c1, appendChange(c1, 9223372036854775807n));
      const loaded = await cat.loadTable(table.ident);
      assert.equal(loaded?.metadata['current-snapshot-id'], 9223372036854775807n);
      assert.equal((loaded?.metadata.snapshots as Record<string, unknown>[])[1]?.['parent-snapshot-id'], id1);
      assert.equal(c2.metadataLocation, loaded?.metadataLocation);
      await cat.close();
    });
  });
});

describe('REST catalog: auth, headers, unreachable', () => {
  test('401 is AUTH_FAILED and the token is never in the error; token and extra headers are sent', async () => {
    const token = 'tok-s3cr3t-value-42';
    await withServer({ token }, async (server) => {
      await assert.rejects(createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri }), isCode('AUTH_FAILED', (e) => assert.equal(e.context.status, 401)));
      const wrong = 'tok-wrong-value-43';
      await assert.rejects(
        createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri, token: wrong }),
        isCode('AUTH_FAILED', (e) => {
          const all = `${e.message} ${JSON.stringify(e.toJSON())} ${e.stack ?? ''}`;
          assert.ok(!all.includes(wrong), 'token leaked into the error');
          assert.equal(e.disposition, 'fatal');
        }),
      );
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri, token, headers: { 'X-Tenant': 'acme' } });
      await cat.createNamespaceIfMissing(['db']);
      const last = server.requests.at(-1);
      assert.equal(last?.headers.authorization, `Bearer ${token}`);
      assert.equal(last?.headers['x-tenant'], 'acme');
      assert.equal(last?.headers['content-type'], 'application/json');
      await cat.close();
    });
  });

  test('debug logging shows requests but never the token', async () => {
    const token = 'tok-never-in-logs-77';
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const log = createLogger({ level: 'debug', destination });
    await withServer({ token }, async (server) => {
      const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri, token }, undefined, { log });
      await cat.createNamespaceIfMissing(['db']);
      const location = `${warehouse}/logged/t`;
      const t = await cat.createTable({ namespace: ['db'], name: 't' }, { location, metadata: sampleTableMetadata(location) });
      server.addFault({ op: 'commit', action: { status: 503 } });
      await assert.rejects(cat.commit(t, appendChange(t, 1n)));
      await cat.close();
    });
    const text = lines.join('');
    assert.match(text, /rest catalog request/);
    assert.match(text, /"status":503/);
    assert.ok(!text.includes(token), 'token leaked into the log');
  });

  test('connection refused is CATALOG_UNAVAILABLE (retryable)', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(
      createRestCatalog({ type: 'rest', name: 'lake', uri: `http://127.0.0.1:${port}` }),
      isCode('CATALOG_UNAVAILABLE', (e) => {
        assert.equal(e.context.syscallCode, 'ECONNREFUSED');
        assert.equal(e.disposition, 'retryable');
        assert.equal(e.exitCode, 2);
      }),
    );
  });

  test('a URI without a REST catalog is CATALOG_INVALID', async () => {
    const other = createServer((_req, res) => res.writeHead(404).end('not here'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    const port = (other.address() as AddressInfo).port;
    try {
      await assert.rejects(createRestCatalog({ type: 'rest', name: 'lake', uri: `http://127.0.0.1:${port}/api` }), isCode('CATALOG_INVALID', (e) => assert.match(e.message, /no Iceberg REST catalog/)));
    } finally {
      other.closeAllConnections();
      await new Promise<void>((r) => other.close(() => r()));
    }
  });
});
