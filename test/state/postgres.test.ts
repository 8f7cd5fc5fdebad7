/**
 * The Postgres state store on the real server: the same document and the
 * same corruption rules as the file store, transactional writes, clear
 * errors without the URL's password.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { DativoError } from '../../lib/errors.js';
import { emptyState, openStateStore, type JobState, type StateStore } from '../../state/index.js';
import { PG_ADMIN_URI, pgAdmin } from '../helpers/postgres.js';

const SUFFIX = randomBytes(4).toString('hex');
const TABLE = `dativo_state_t${SUFFIX}`;
const RO_ROLE = `dativo_ro_${SUFFIX}`;
const ids = { tenant: 'acme', job: 'orders' };

function store(job = ids.job, url = PG_ADMIN_URI, table = TABLE): StateStore {
  return openStateStore({ kind: 'postgres', url, table }, { tenant: ids.tenant, job });
}

function sample(job = ids.job): JobState {
  return {
    ...emptyState({ tenant: ids.tenant, job }),
    objects: {
      orders: { cursor: { field: 'id', value: '9007199254740993', written: ['9007199254740993\u0000[1]'] }, runId: 'r1' },
      files: { files: { 'data/ü ñ 日本.csv': { size: 12, modifiedAt: '2026-11-27T02:43:00.123456789Z' } } },
    },
  };
}

async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URI });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

async function setDocument(job: string, document: string): Promise<void> {
  await sql(`UPDATE ${TABLE} SET document = $3 WHERE tenant = $1 AND job = $2`, [ids.tenant, job, document]);
}

async function expectCorrupt(s: StateStore, pattern: RegExp): Promise<void> {
  await assert.rejects(s.load(), (err: unknown) => {
    assert.ok(err instanceof DativoError);
    assert.equal(err.code, 'STATE_CORRUPT');
    assert.equal(err.exitCode, 3);
    assert.match(err.message, pattern);
    assert.match(err.message, new RegExp(`^state row .*table ${TABLE} \\(tenant "acme", job "\\w+"\\) cannot be used`));
    return true;
  });
}

before(async () => {
  await pgAdmin(`CREATE ROLE ${RO_ROLE} LOGIN`);
});
after(async () => {
  await pgAdmin(`DROP TABLE IF EXISTS ${TABLE}`);
  await pgAdmin(`DROP TABLE IF EXISTS ${TABLE}_x`);
  await pgAdmin(`DROP ROLE IF EXISTS ${RO_ROLE}`);
});

describe('Postgres state store', () => {
  it('no table and no row are a first run: an empty state, and nothing is created by a load', async () => {
    assert.deepEqual(await store().load(), emptyState(ids));
    assert.deepEqual(await sql('SELECT to_regclass($1) AS t', [TABLE]), [{ t: null }]);
  });

  it('round-trips the document byte for byte (int64 cursor as a string, unicode keys); each save is one more generation', async () => {
    const s = store();
    await s.checkWritable();
    await s.save(sample());
    const loaded = await s.load();
    assert.deepEqual(loaded.objects, sample().objects);
    assert.equal(loaded.objects['orders']?.cursor?.value, '9007199254740993');
    const [row] = await sql<{ document: string; generation: string }>(`SELECT document, generation FROM ${TABLE} WHERE tenant = 'acme' AND job = 'orders'`);
    assert.equal(row?.generation, '1');
    assert.equal(row?.document, `${JSON.stringify(loaded, null, 2)}\n`, 'the same text the file store writes');
    await s.save(loaded);
    const [again] = await sql<{ generation: string }>(`SELECT generation FROM ${TABLE} WHERE tenant = 'acme' AND job = 'orders'`);
    assert.equal(again?.generation, '2');
  });

  it('twenty saves at once from separate connections: none lost, the row is one of them whole', async () => {
    const s = store('many');
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.save({ ...sample('many'), objects: { o: { runId: `run-${i}` } } })));
    const [row] = await sql<{ generation: string; document: string }>(`SELECT generation, document FROM ${TABLE} WHERE job = 'many'`);
    assert.equal(row?.generation, '20');
    assert.match((await s.load()).objects['o']?.runId ?? '', /^run-\d+$/);
  });

  it('a corrupt row is STATE_CORRUPT naming the row, never an empty state, and a load leaves it as it is', async () => {
    const s = store('bad');
    await s.save(sample('bad'));
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['{"version": 1, "tenant": "acme", "job": "bad", "objects": {', /not valid JSON/],
      ['[1,2]', /top level is not a JSON object/],
      ['{"tenant": "acme", "job": "bad", "objects": {}}', /no "version" field/],
      ['{"version": 2, "tenant": "acme", "job": "bad", "objects": {}, "updatedAt": ""}', /unknown state version 2/],
      ['{"version": 1, "tenant": "acme", "job": "bad", "objects": {"o": {"cursor": {"field": "id", "value": 5, "written": []}}}, "updatedAt": ""}', /wrong shape: objects\.o\.cursor\.value/],
      ['{"version": 1, "tenant": "globex", "job": "bad", "objects": {}, "updatedAt": ""}', /belongs to tenant "globex"/],
    ];
    for (const [doc, pattern] of cases) {
      await setDocument('bad', doc);
      await expectCorrupt(s, pattern);
      const [row] = await sql<{ document: string }>(`SELECT document FROM ${TABLE} WHERE job = 'bad'`);
      assert.equal(row?.document, doc, 'the row is untouched');
    }
    // reset(object) must read the row: refused too, nothing written.
    await assert.rejects(s.reset('o'), (e: unknown) => e instanceof DativoError && e.code === 'STATE_CORRUPT');
    // The whole-job reset is the way out.
    await s.reset();
    assert.deepEqual((await s.load()).objects, {});
  });

  it('reset(object) drops one object in one transaction and keeps the others', async () => {
    const s = store('reset');
    await s.save(sample('reset'));
    await s.reset('orders');
    assert.deepEqual(Object.keys((await s.load()).objects), ['files']);
    await s.reset('not-there');
    assert.deepEqual(Object.keys((await s.load()).objects), ['files']);
  });

  it('a role that may only read: checkWritable and save are STORAGE_NOT_WRITABLE, load works', async () => {
    await store('ro').save(sample('ro'));
    await pgAdmin(`GRANT SELECT ON ${TABLE} TO ${RO_ROLE}`);
    const ro = store('ro', `postgres://${RO_ROLE}@127.0.0.1:5432/test`);
    assert.deepEqual((await ro.load()).objects, sample('ro').objects);
    await assert.rejects(ro.checkWritable(), (e: unknown) => e instanceof DativoError && e.code === 'STORAGE_NOT_WRITABLE' && /may not INSERT and UPDATE/.test(e.message));
    await assert.rejects(ro.save(sample('ro')), (e: unknown) => e instanceof DativoError && e.code === 'STORAGE_NOT_WRITABLE' && e.exitCode === 3);
    // A missing table it may not create: also not writable (no CREATE on the schema), named.
    const noCreate = store('ro', `postgres://${RO_ROLE}@127.0.0.1:5432/test`, `${TABLE}_x`);
    await assert.rejects(noCreate.checkWritable(), (e: unknown) => e instanceof DativoError && e.code === 'STORAGE_NOT_WRITABLE');
  });

  it('an unreachable server is STORAGE_IO (exit 2, retried) and no message holds the password', async () => {
    const s = store('x', 'postgres://app:s3cr3t-pw@127.0.0.1:1/test');
    assert.ok(!s.path.includes('s3cr3t-pw'));
    for (const op of [() => s.load(), () => s.save(sample('x')), () => s.checkWritable()]) {
      await assert.rejects(op(), (e: unknown) => {
        assert.ok(e instanceof DativoError);
        assert.equal(e.code, 'STORAGE_IO');
        assert.equal(e.exitCode, 2);
        assert.ok(!JSON.stringify({ m: e.message, c: e.context }).includes('s3cr3t-pw'), e.message);
        assert.match(e.message, /postgres:\/\/app:\[REDACTED\]@127\.0\.0\.1:1\/test/);
        return true;
      });
    }
  });
});
