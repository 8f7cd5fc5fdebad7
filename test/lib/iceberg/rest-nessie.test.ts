/**
 * The REST client against a Nessie-style Iceberg REST endpoint (`<nessie>/iceberg`):
 * branch selection by URI, by explicit prefix, and with a warehouse.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRestCatalog } from '../../../lib/iceberg/rest.js';
import { DativoError } from '../../../lib/errors.js';
import { appendChange, sampleTableMetadata, startRestCatalog, type RestCatalogServer } from '../../helpers/rest-catalog-server.js';

let dir: string;
let warehouse: string;
let server: RestCatalogServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-rest-nessie-'));
  warehouse = pathToFileURL(dir).href;
  server = await startRestCatalog({ warehouse, nessieStyle: true, branches: ['dev'] });
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function since(mark: number) {
  return server.requests.slice(mark).map((r) => r.url);
}

describe('Nessie-style REST endpoint', () => {
  test('uri …/iceberg: the default branch comes back as prefix and data routes go to /iceberg/v1/main/…', async () => {
    const mark = server.requests.length;
    const cat = await createRestCatalog({ type: 'rest', name: 'nessie', uri: server.uri });
    assert.equal(cat.prefix, 'main');
    assert.equal(cat.baseUri, server.uri);
    assert.equal(cat.config['nessie.is-nessie-catalog'], 'true');
    await cat.createNamespaceIfMissing(['sales', 'raw']);
    const urls = since(mark);
    assert.equal(urls[0], '/iceberg/v1/config');
    assert.ok(urls.slice(1).every((u) => u.startsWith('/iceberg/v1/main/namespaces')), urls.join(' '));
    // Nessie needs parent namespaces: the client created both levels
    assert.deepEqual(server.state.namespaces('main'), [['sales'], ['sales', 'raw']]);
    await cat.close();
  });

  test('uri …/iceberg/<branch>: config of that branch, then the server base URI and the branch as prefix', async () => {
    const mark = server.requests.length;
    const cat = await createRestCatalog({ type: 'rest', name: 'nessie', uri: `${server.uri}/dev` });
    assert.equal(cat.prefix, 'dev');
    assert.equal(cat.baseUri, server.uri);
    await cat.createNamespaceIfMissing(['sales']);
    const urls = since(mark);
    assert.equal(urls[0], '/iceberg/dev/v1/config');
    assert.ok(urls.slice(1).every((u) => u.startsWith('/iceberg/v1/dev/')), urls.join(' '));
    assert.deepEqual(server.state.namespaces('dev'), [['sales']]);
    await cat.close();
  });

  test('explicit prefix selects the branch; tables on one branch are invisible on another', async () => {
    const dev = await createRestCatalog({ type: 'rest', name: 'nessie', uri: server.uri, prefix: 'dev' });
    const main = await createRestCatalog({ type: 'rest', name: 'nessie', uri: server.uri });
    assert.equal(dev.prefix, 'dev');
    await dev.createNamespaceIfMissing(['sales']);
    const ident = { namespace: ['sales'], name: 'orders' };
    const clientLocation = `${warehouse}/client/chosen`;
    const created = await dev.createTable(ident, { location: clientLocation, metadata: sampleTableMetadata(clientLocation) });
    // Nessie chooses the location itself
    assert.match(created.metadata.location, new RegExp(`^${warehouse}/sales/orders_[0-9a-f-]{36}$`));
    assert.equal((created.metadata.properties as Record<string, string>)['gc.enabled'], 'false');
    assert.ok(await dev.loadTable(ident));
    assert.equal(await main.loadTable(ident), undefined);
    assert.deepEqual(await dev.listTables(['sales']), [ident]);
    await dev.close();
    await main.close();
  });

  test('warehouse: prefix is `<branch>|<warehouse>` URL-encoded, and works on every route', async () => {
    const mark = server.requests.length;
    const cat = await createRestCatalog({ type: 'rest', name: 'nessie', uri: `${server.uri}/dev`, warehouse: 'wh' });
    assert.equal(cat.prefix, 'dev%7Cwh');
    await cat.createNamespaceIfMissing(['sales']);
    const urls = since(mark);
    assert.equal(urls[0], '/iceberg/dev/v1/config?warehouse=wh');
    assert.ok(urls.slice(1).every((u) => u.startsWith('/iceberg/v1/dev%7Cwh/')), urls.join(' '));
    await cat.close();
  });

  test('explicit branch plus warehouse: prefix `<branch>|<warehouse>` as Nessie expects', async () => {
    const mark = server.requests.length;
    const cat = await createRestCatalog({ type: 'rest', name: 'nessie', uri: server.uri, prefix: 'dev', warehouse: 'wh' });
    assert.equal(cat.prefix, 'dev%7Cwh');
    await cat.createNamespaceIfMissing(['sales']);
    assert.ok(since(mark).slice(1).every((u) => u.startsWith('/iceberg/v1/dev%7Cwh/')));
    await cat.close();
  });

  test('commits land and the loaded metadata carries only the current snapshot', async () => {
    const cat = await createRestCatalog({ type: 'rest', name: 'nessie', uri: server.uri });
    await cat.createNamespaceIfMissing(['ops']);
    const ident = { namespace: ['ops'], name: 'events' };
    const t0 = await cat.createTable(ident, { location: `${warehouse}/x`, metadata: sampleTableMetadata(`${warehouse}/x`) });
    const t1 = await cat.commit(t0, appendChange(t0, 8123456789012345678n, { 'dativo.cursor.events': '{"v":1}' }));
    const t2 = await cat.commit(t1, appendChange(t1, 2n));
    const loaded = await cat.loadTable(ident);
    assert.equal(loaded?.metadataLocation, t2.metadataLocation);
    const snaps = loaded?.metadata.snapshots as Record<string, unknown>[];
    assert.deepEqual(snaps.map((s) => s['snapshot-id']), [2n]);
    assert.equal(snaps[0]?.['parent-snapshot-id'], 8123456789012345678n);
    assert.equal(loaded?.metadata['last-sequence-number'], 2n);
    // the stale base is still refused on the ref check
    await assert.rejects(cat.commit(t1, appendChange(t1, 3n)), (e: unknown) => e instanceof DativoError && e.code === 'COMMIT_CONFLICT');
    await cat.close();
  });

  test('an unknown branch is a clear CATALOG_INVALID', async () => {
    const cat = await createRestCatalog({ type: 'rest', name: 'nessie', uri: server.uri, prefix: 'nope' });
    await assert.rejects(cat.createNamespaceIfMissing(['x']), (e: unknown) => {
      assert.ok(e instanceof DativoError);
      assert.equal(e.code, 'CATALOG_INVALID');
      assert.match(e.message, /NoSuchReferenceException: Named reference 'nope' not found/);
      return true;
    });
    await cat.close();
  });
});
