/**
 * `dativo discover` on a HubSpot job: the properties API of the fake becomes
 * an asset (types from HubSpot's property types, the cursor column
 * required), `--write` puts it where the job's asset_path points, and a run
 * with the discovered asset lands the rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { assetTypeOf } from '../../../connectors/hubspot/objects.js';
import { PROPERTY_DEFS, startHubSpotFake, type HubSpotFake } from '../../fakes/hubspot.js';
import { dativo } from '../../lib/cli/helpers.js';
import { hubspotProject, type HubSpotProject } from './helpers.js';

describe('hubspot: discover', () => {
  let fake: HubSpotFake;
  let p: HubSpotProject;
  before(async () => {
    fake = await startHubSpotFake();
    p = await hubspotProject(fake, 'hubspot-discover');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('maps HubSpot property types onto asset types, exactly', () => {
    assert.equal(assetTypeOf({ name: 'closedate', type: 'datetime' }), 'timestamp');
    assert.equal(assetTypeOf({ name: 'date_of_birth', type: 'date' }), 'date');
    assert.equal(assetTypeOf({ name: 'is_public', type: 'bool' }), 'boolean');
    assert.equal(assetTypeOf({ name: 'amount', type: 'number' }), 'decimal(38,18)', 'numbers are decimal text at HubSpot: never a float');
    assert.equal(assetTypeOf({ name: 'hs_object_id', type: 'number' }), 'long');
    assert.equal(assetTypeOf({ name: 'dealstage', type: 'enumeration' }), 'string');
    assert.equal(assetTypeOf({ name: 'phone', type: 'phone_number' }), 'string');
  });

  it('writes an asset with every property of the properties API, and a job runs on it', async () => {
    fake.seed('deals', 40);
    await p.job({ object: 'deals', source: ['associations: [companies]'] });
    const job = (await p.read('job.yaml')).toString().replace('asset_path: assets/deals.yaml', 'asset_path: discovered/deals.yaml');
    await p.write('job.yaml', job);
    const before = fake.requests.length;
    const d = await dativo(['discover', 'job.yaml', '--write'], { cwd: p.dir });
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(fake.requests.slice(before).map((q) => q.path), ['/crm/v3/properties/deals'], 'one properties call');
    const asset = parse(await (await p.read('discovered/deals.yaml')).toString()) as { schema: { name: string; type: string; required: boolean; description?: string }[]; primary_key: string[]; cursor_field?: string; source_type: string };
    assert.equal(asset.source_type, 'hubspot');
    assert.deepEqual(asset.primary_key, ['id']);
    assert.equal(asset.cursor_field, 'hs_lastmodifieddate');
    const col = new Map(asset.schema.map((c) => [c.name, c]));
    for (const def of PROPERTY_DEFS.deals) assert.equal(col.get(def.name)?.type, assetTypeOf(def), `property ${def.name}`);
    assert.equal(col.get('hs_lastmodifieddate')!.required, true, 'the cursor column is required');
    assert.match(col.get('amount')!.description ?? '', /Amount \(HubSpot property, type number/);
    for (const c of ['id', 'createdAt', 'updatedAt', 'archived', 'archivedAt', 'associations', '_dativo_deleted']) assert.ok(col.has(c), c);
    const again = await dativo(['discover', 'job.yaml', '--write'], { cwd: p.dir });
    assert.equal(again.code, 3, 'an existing asset is never replaced');

    const run = await dativo(['run', 'job.yaml'], { cwd: p.dir });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const rows = await p.rows('deals');
    assert.equal(rows.length, 40, 'the deals landed with the discovered asset');
    const deal = fake.objects('deals')[0]!;
    const row = rows.find((x) => x['id'] === deal.id)!;
    assert.equal(row['dealname'], deal.properties['dealname']);
    assert.equal((row['closedate'] as Date).toISOString(), deal.properties['closedate']);
    assert.equal(row['hs_object_id'], BigInt(deal.id));
  });
});
