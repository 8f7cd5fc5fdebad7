/**
 * A portal with hundreds of custom properties: the list URL would carry more
 * `properties` than HubSpot accepts in a request line (414 URI Too Long), so
 * the list pages ask for ids only and each page's properties come from one
 * batch read. The fake answers 414 past MAX_URL_CHARS, as HubSpot does.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { LIST_PROPERTY_CHARS, listPropertyChars } from '../../../connectors/hubspot/read.js';
import { MAX_URL_CHARS, startHubSpotFake, type HubSpotFake } from '../../fakes/hubspot.js';
import { byId, hubspotProject, type HubSpotProject } from './helpers.js';

/** 260 custom property names of 40 characters: about 11,000 characters of `properties`. */
const CUSTOM = Array.from({ length: 260 }, (_, i) => `custom_property_with_a_long_name_${String(i).padStart(7, '0')}`);

describe('hubspot: a property list too long for a URL', () => {
  let fake: HubSpotFake;
  let p: HubSpotProject;
  before(async () => {
    fake = await startHubSpotFake();
    p = await hubspotProject(fake, 'hubspot-wide');
    // The asset gets every custom property (as `dativo discover` writes them for such a portal).
    const file = p.p('assets/tickets.yaml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/^schema:\n/m, `schema:\n${CUSTOM.map((n) => `  - {name: ${n}, type: string}\n`).join('')}`));
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('the fake refuses such a list URL with 414, as HubSpot does', async () => {
    assert.ok(listPropertyChars(CUSTOM) > LIST_PROPERTY_CHARS && listPropertyChars(CUSTOM) > MAX_URL_CHARS);
    const r = await fetch(`${fake.url}/crm/v3/objects/tickets?limit=100&properties=${CUSTOM.join(',')}`, { headers: { authorization: 'Bearer pat-na1-fake-0000' } });
    assert.equal(r.status, 414);
  });

  it('lists ids, then reads each page of 100 with one batch read: every property, associations kept, archived ones as deletions', async () => {
    const tickets = Array.from({ length: 230 }, (_, i) =>
      fake.create('tickets', { subject: `ticket ${i}`, [CUSTOM[i % CUSTOM.length]!]: `value ${i} ✓`, [CUSTOM[259]!]: i % 2 === 0 ? '' : null }),
    );
    fake.archive('tickets', tickets[7]!.id);
    fake.associate('tickets', tickets[3]!.id, 'contacts', '91');
    const start = fake.requests.length;
    const r = await p.run({ object: 'tickets', sync: 'full_refresh', source: ['archived: true', 'associations: [contacts]'] });
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    assert.equal(r.summary.objects[0]!.rows_written, 230);
    const seen = fake.requests.slice(start);
    assert.ok(seen.every((q) => q.path.length + q.query.toString().length < MAX_URL_CHARS), 'no request line too long');
    const lists = seen.filter((q) => q.path === '/crm/v3/objects/tickets');
    const batches = seen.filter((q) => q.path === '/crm/v3/objects/tickets/batch/read');
    assert.equal(lists.length, 3 + 1, '229 live tickets in 3 pages, then the archived page');
    assert.equal(batches.length, lists.length, 'one batch read per list page');
    assert.deepEqual(lists[0]!.query.getAll('properties'), ['hs_object_id'], 'the list asks for ids only');
    const body = JSON.parse(batches[0]!.body) as { inputs: { id: string }[]; properties: string[] };
    assert.equal(body.inputs.length, 100);
    for (const n of CUSTOM) assert.ok(body.properties.includes(n), `${n} asked for in the batch body`);
    assert.equal(batches[3]!.query.get('archived'), 'true');
    assert.equal(r.summary.objects[0]!.api_calls, lists.length + batches.length);

    const rows = byId(await p.rows('tickets'));
    assert.equal(rows.size, 230);
    for (const [i, t] of tickets.entries()) {
      const row = rows.get(t.id)![0]!;
      assert.equal(row['subject'], `ticket ${i}`);
      assert.equal(row[CUSTOM[i % CUSTOM.length]!], `value ${i} ✓`);
      if (i % CUSTOM.length !== 259) assert.equal(row[CUSTOM[259]!], i % 2 === 0 ? '' : null, 'empty string and unset stay apart');
    }
    assert.equal(rows.get(tickets[7]!.id)![0]!['_dativo_deleted'], true);
    assert.equal(rows.get(tickets[8]!.id)![0]!['_dativo_deleted'], false);
    assert.deepEqual(JSON.parse(rows.get(tickets[3]!.id)![0]!['associations'] as string), { contacts: ['91'] });
    const read = r.logs.find((l) => l['event_type'] === 'hubspot_read')!;
    assert.equal(read['batch_reads'], 4);
    assert.equal(read['batch_missing'], 0);
  });
});
