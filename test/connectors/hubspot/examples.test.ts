/**
 * pipelines/acme/hubspot_contacts.yaml runs as documented, against the
 * HubSpot-like fake (HUBSPOT_BASE_URL), with its recipe budget: every
 * contact, the ids of its companies, then only what changed, archived
 * contacts as deletion rows.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadJob } from '../../../lib/config/index.js';
import { runJob } from '../../../lib/run.js';
import { startHubSpotFake, type HubSpotFake } from '../../fakes/hubspot.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { repo } from '../../lib/cli/helpers.js';
import { TEST_TOKEN } from './helpers.js';

describe('pipelines/acme/hubspot_contacts.yaml runs as documented', () => {
  let fake: HubSpotFake;
  let dir: string;
  before(async () => {
    fake = await startHubSpotFake({ searchPerSecond: 4 });
    dir = await mkdtemp(path.join(tmpdir(), 'dativo-acme-hubspot-'));
  });
  after(async () => {
    await fake.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads, reads every contact and then only what changed', async () => {
    const contacts = fake.seed('contacts', 450, { perStamp: 4 });
    fake.associate('contacts', contacts[0]!.id, 'companies', '4242');
    const env = { ...process.env, HUBSPOT_ACCESS_TOKEN: TEST_TOKEN, HUBSPOT_BASE_URL: fake.url, DATIVO_WAREHOUSE: path.join(dir, 'wh'), DATIVO_STATE_DIR: path.join(dir, 'state') };
    const load = () => loadJob(path.join(repo, 'pipelines/acme/hubspot_contacts.yaml'), { env, cwd: dir });
    const plan = await load();
    assert.equal(plan.source.type, 'hubspot');
    assert.equal(plan.source.incremental?.cursorField, 'lastmodifieddate');
    assert.ok(plan.secrets.includes(TEST_TOKEN), 'the token is a secret of the plan (redacted from logs)');
    const r1 = await runJob(plan);
    assert.equal(r1.exit_code, 0, JSON.stringify(r1.error ?? r1.objects[0]?.error));
    assert.equal(r1.objects[0]!.rows_written, 450);
    assert.equal(fake.rateLimited, 0, 'the recipe budget: no 429');
    const rows = (await readParquetWithDuckDB(new URL(r1.objects[0]!.files[0]!).pathname)).rows;
    assert.deepEqual(JSON.parse(String(rows.find((r) => r['id'] === contacts[0]!.id)!['associations'])), { companies: ['4242'] });

    fake.advance(120_000);
    fake.update('contacts', contacts[9]!.id, { lifecyclestage: 'customer' });
    fake.archive('contacts', contacts[10]!.id);
    fake.advance(120_000);
    const r2 = await runJob(await load());
    assert.equal(r2.exit_code, 0, JSON.stringify(r2.error ?? r2.objects[0]?.error));
    const changed = (await readParquetWithDuckDB(new URL(r2.objects[0]!.files[0]!).pathname)).rows;
    assert.deepEqual(changed.map((r) => [r['id'], r['_dativo_deleted']]).sort(), [[contacts[9]!.id, false], [contacts[10]!.id, true]].sort());
  });
});
