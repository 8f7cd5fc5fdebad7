/**
 * What the REST client reports when the catalog fails around a commit, and
 * what actually happened on the server (gotcha 6: a 409 and a 5xx differ).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRestCatalog } from '../../../lib/iceberg/rest.js';
import type { Catalog, LoadedTable } from '../../../lib/iceberg/catalog.js';
import { DativoError } from '../../../lib/errors.js';
import { appendChange, sampleTableMetadata, startRestCatalog, type RestCatalogServer } from '../../helpers/rest-catalog-server.js';

let dir: string;
let server: RestCatalogServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-rest-faults-'));
  server = await startRestCatalog({ warehouse: pathToFileURL(dir).href });
});
after(async () => {
  await server.close();
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

let n = 0;
async function freshTable(timeoutMs?: number): Promise<{ cat: Catalog; table: LoadedTable }> {
  const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: server.uri }, undefined, timeoutMs ? { timeoutMs } : {});
  await cat.createNamespaceIfMissing(['db']);
  const name = `t${++n}`;
  const location = `${pathToFileURL(dir).href}/db/${name}`;
  const table = await cat.createTable({ namespace: ['db'], name }, { location, metadata: sampleTableMetadata(location) });
  return { cat, table };
}

const unknownOutcome = (id: bigint) => (e: DativoError) => {
  assert.equal(e.context.outcome, 'unknown');
  assert.equal(e.context.snapshotId, String(id));
  assert.equal(e.disposition, 'retryable');
};

describe('REST commit faults', () => {
  test('503 after the change was applied: CATALOG_UNAVAILABLE, outcome unknown, a reload shows the snapshot landed', async () => {
    const { cat, table } = await freshTable();
    server.addFault({ op: 'commit', when: 'after', action: { status: 503, type: 'ServiceUnavailableException', message: 'slow down' } });
    await assert.rejects(
      cat.commit(table, appendChange(table, 11n)),
      isCode('CATALOG_UNAVAILABLE', (e) => {
        unknownOutcome(11n)(e);
        assert.equal(e.context.status, 503);
        assert.match(e.message, /ServiceUnavailableException: slow down/);
      }),
    );
    const reloaded = await cat.loadTable(table.ident);
    assert.equal(reloaded?.metadata['current-snapshot-id'], 11n);
    // retrying the same change blindly is refused by the requirements: the table moved on
    await assert.rejects(cat.commit(table, appendChange(table, 11n)), isCode('COMMIT_CONFLICT'));
    await cat.close();
  });

  test('503 before the change was applied: CATALOG_UNAVAILABLE, outcome unknown, a reload shows it did not land', async () => {
    const { cat, table } = await freshTable();
    const applied = server.state.appliedCommits;
    server.addFault({ op: 'commit', when: 'before', action: { status: 503 } });
    await assert.rejects(cat.commit(table, appendChange(table, 12n)), isCode('CATALOG_UNAVAILABLE', unknownOutcome(12n)));
    const reloaded = await cat.loadTable(table.ident);
    assert.equal(reloaded?.metadata['current-snapshot-id'], -1n);
    assert.equal(server.state.appliedCommits, applied);
    // the same change re-sent on the unchanged base now lands
    const ok = await cat.commit(table, appendChange(table, 12n));
    assert.equal(ok.metadata['current-snapshot-id'], 12n);
    await cat.close();
  });

  for (const status of [500, 502, 504]) {
    test(`${status} on commit is an unknown outcome too`, async () => {
      const { cat, table } = await freshTable();
      server.addFault({ op: 'commit', action: { status } });
      await assert.rejects(cat.commit(table, appendChange(table, 13n)), isCode('CATALOG_UNAVAILABLE', (e) => assert.equal(e.context.outcome, 'unknown')));
      await cat.close();
    });
  }

  test('connection dropped after apply (lost response): unknown outcome, the snapshot landed', async () => {
    const { cat, table } = await freshTable();
    server.addFault({ op: 'commit', when: 'after', action: { close: true } });
    await assert.rejects(
      cat.commit(table, appendChange(table, 14n)),
      isCode('CATALOG_UNAVAILABLE', (e) => {
        unknownOutcome(14n)(e);
        assert.equal(e.context.transport, 'network');
      }),
    );
    assert.equal((await cat.loadTable(table.ident))?.metadata['current-snapshot-id'], 14n);
    await cat.close();
  });

  test('connection dropped before apply: unknown outcome, nothing landed', async () => {
    const { cat, table } = await freshTable();
    server.addFault({ op: 'commit', when: 'before', action: { close: true } });
    await assert.rejects(cat.commit(table, appendChange(table, 15n)), isCode('CATALOG_UNAVAILABLE', unknownOutcome(15n)));
    assert.equal((await cat.loadTable(table.ident))?.metadata['current-snapshot-id'], -1n);
    await cat.close();
  });

  test('timeout while the server is slow to answer an applied commit: unknown outcome, the snapshot landed', async () => {
    const { cat, table } = await freshTable(150);
    server.addFault({ op: 'commit', when: 'after', action: { delayMs: 500 } });
    const started = Date.now();
    await assert.rejects(
      cat.commit(table, appendChange(table, 16n)),
      isCode('CATALOG_UNAVAILABLE', (e) => {
        unknownOutcome(16n)(e);
        assert.equal(e.context.transport, 'timeout');
        assert.equal(e.context.timeoutMs, 150);
      }),
    );
    assert.ok(Date.now() - started < 450, 'the client must give up at its timeout, not wait for the server');
    assert.equal((await cat.loadTable(table.ident))?.metadata['current-snapshot-id'], 16n);
    await cat.close();
  });

  test('an injected 409 is COMMIT_CONFLICT (definitely not committed)', async () => {
    const { cat, table } = await freshTable();
    server.addFault({ op: 'commit', action: { status: 409 } });
    await assert.rejects(cat.commit(table, appendChange(table, 17n)), isCode('COMMIT_CONFLICT', (e) => assert.equal(e.context.outcome, 'not-committed')));
    assert.equal((await cat.loadTable(table.ident))?.metadata['current-snapshot-id'], -1n);
    await cat.close();
  });

  test('the Nth commit is the one that fails', async () => {
    const { cat, table } = await freshTable();
    server.addFault({ op: 'commit', nth: 2, action: { status: 503 } });
    const c1 = await cat.commit(table, appendChange(table, 18n));
    await assert.rejects(cat.commit(c1, appendChange(c1, 19n)), isCode('CATALOG_UNAVAILABLE'));
    const c3 = await cat.commit(c1, appendChange(c1, 19n));
    assert.equal(c3.metadata['current-snapshot-id'], 19n);
    await cat.close();
  });

  test('403 on commit is AUTH_FAILED; commit to a dropped table is CATALOG_INVALID', async () => {
    const { cat, table } = await freshTable();
    server.addFault({ op: 'commit', action: { status: 403, type: 'ForbiddenException', message: 'no write on db' } });
    await assert.rejects(cat.commit(table, appendChange(table, 20n)), isCode('AUTH_FAILED', (e) => assert.match(e.message, /ForbiddenException: no write on db/)));
    const res = await fetch(`${server.uri}/v1/namespaces/db/tables/${table.ident.name}`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    await assert.rejects(cat.commit(table, appendChange(table, 21n)), isCode('CATALOG_INVALID', (e) => assert.match(e.message, /table was dropped/)));
    assert.equal(await cat.loadTable(table.ident), undefined);
    await cat.close();
  });
});

describe('REST read faults', () => {
  test('5xx or a dropped connection on load is CATALOG_UNAVAILABLE; the next load works', async () => {
    const { cat, table } = await freshTable();
    server.addFault({ op: 'load-table', action: { status: 502 } });
    await assert.rejects(cat.loadTable(table.ident), isCode('CATALOG_UNAVAILABLE', (e) => assert.equal(e.context.status, 502)));
    server.addFault({ op: 'load-table', action: { close: true } });
    await assert.rejects(cat.loadTable(table.ident), isCode('CATALOG_UNAVAILABLE'));
    server.addFault({ op: 'list-tables', action: { status: 429 } });
    await assert.rejects(cat.listTables(['db']), isCode('CATALOG_UNAVAILABLE'));
    assert.ok(await cat.loadTable(table.ident));
    await cat.close();
  });

  test('close() aborts a request in flight (ABORTED) and later calls fail', async () => {
    const { cat, table } = await freshTable();
    server.addFault({ op: 'load-table', action: { delayMs: 300 } });
    const pending = cat.loadTable(table.ident);
    await new Promise((r) => setTimeout(r, 50));
    await cat.close();
    await assert.rejects(pending, isCode('ABORTED'));
    await assert.rejects(cat.loadTable(table.ident), isCode('INTERNAL'));
  });
});

describe('REST commit with Idempotency-Key (server advertises idempotency-key-lifetime)', () => {
  let idem: RestCatalogServer;
  before(async () => {
    idem = await startRestCatalog({ warehouse: pathToFileURL(dir).href, idempotencyKeyLifetime: 'PT30M' });
  });
  after(async () => {
    await idem.close();
  });

  async function idemTable(name: string) {
    const cat = await createRestCatalog({ type: 'rest', name: 'lake', uri: idem.uri }, undefined, { idempotentRetry: { minDelayMs: 10, maxDelayMs: 10 } });
    assert.equal(cat.idempotencyKeyLifetime, 'PT30M');
    await cat.createNamespaceIfMissing(['db']);
    const location = `${pathToFileURL(dir).href}/idem/${name}`;
    const table = await cat.createTable({ namespace: ['db'], name }, { location, metadata: sampleTableMetadata(location) });
    return { cat, table };
  }

  function commitsOf(mark: number) {
    return idem.requests.slice(mark).filter((r) => r.op === 'commit');
  }

  test('lost response: the re-sent request is answered from the stored result; applied once, reported committed', async () => {
    const { cat, table } = await idemTable('i1');
    const applied = idem.state.appliedCommits;
    const mark = idem.requests.length;
    idem.addFault({ op: 'commit', when: 'after', action: { status: 503 } });
    const out = await cat.commit(table, appendChange(table, 31n));
    assert.equal(out.metadata['current-snapshot-id'], 31n);
    assert.equal(idem.state.appliedCommits, applied + 1);
    const sent = commitsOf(mark);
    assert.equal(sent.length, 2);
    const key = sent[0]?.headers['idempotency-key'];
    assert.match(String(key), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(sent[1]?.headers['idempotency-key'], key);
    assert.equal(sent[1]?.replayed, true);
    await cat.close();
  });

  test('503 before apply: the re-sent request runs and lands once', async () => {
    const { cat, table } = await idemTable('i2');
    const mark = idem.requests.length;
    idem.addFault({ op: 'commit', action: { close: true } });
    const out = await cat.commit(table, appendChange(table, 32n));
    assert.equal(out.metadata['current-snapshot-id'], 32n);
    const sent = commitsOf(mark);
    assert.deepEqual(sent.map((r) => [r.status, r.replayed ?? false]), [['closed', false], [200, false]]);
    await cat.close();
  });

  test('a replayed 409 stays a conflict; new commits get new keys', async () => {
    const { cat, table } = await idemTable('i3');
    await cat.commit(table, appendChange(table, 33n));
    const mark = idem.requests.length;
    await assert.rejects(cat.commit(table, appendChange(table, 34n)), isCode('COMMIT_CONFLICT'));
    const [first, second] = commitsOf(mark - 1);
    assert.notEqual(first?.headers['idempotency-key'], second?.headers['idempotency-key']);
    await cat.close();
  });

  test('still unknown after every retry: CATALOG_UNAVAILABLE with outcome unknown, nothing applied', async () => {
    const { cat, table } = await idemTable('i4');
    for (let i = 1; i <= 3; i++) idem.addFault({ op: 'commit', nth: i, action: { status: 503 } });
    const mark = idem.requests.length;
    await assert.rejects(cat.commit(table, appendChange(table, 35n)), isCode('CATALOG_UNAVAILABLE', (e) => {
      assert.equal(e.context.outcome, 'unknown');
      assert.equal(typeof e.context.idempotencyKey, 'string');
    }));
    assert.equal(commitsOf(mark).length, 3);
    assert.equal((await cat.loadTable(table.ident))?.metadata['current-snapshot-id'], -1n);
    await cat.close();
  });
});
