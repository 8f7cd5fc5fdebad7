/**
 * The HubSpot source end to end: the real `@hubspot/api-client` SDK against
 * the HubSpot-like fake, through runJobFile into an Iceberg table read back
 * with icebird. More contacts in one window than one search query may return
 * (10,000), modified dates shared by more than a page of records, records
 * modified while a read goes on, then creates, updates and archivals between
 * runs; full refresh by the lists with associations and archived objects;
 * owners; the search budget; our retry policy only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rateLimits } from '../../../connectors/hubspot/index.js';
import { loadJob } from '../../../lib/config/index.js';
import { fileURLToPath } from 'node:url';
import { SEARCH_RESULT_CAP, startHubSpotFake, type HubSpotFake } from '../../fakes/hubspot.js';
import { duckToCanonical, readParquetWithDuckDB } from '../../helpers/readers.js';
import { byId, hubspotProject, type HubSpotProject } from './helpers.js';

const searches = (fake: HubSpotFake, from: number) => fake.requests.slice(from).filter((q) => q.method === 'POST' && q.path.endsWith('/search'));
const bodyOf = (q: { body: string }) => JSON.parse(q.body) as Record<string, unknown>;
/** The fake's clock as the `Date` header shows it (whole seconds), as the cursor's text. */
const headerClock = (fake: HubSpotFake): string => new Date(Math.floor(fake.now / 1000) * 1000).toISOString().replace('Z', '000Z');

describe('hubspot: incremental by modified date through search', () => {
  let fake: HubSpotFake;
  let p: HubSpotProject;
  before(async () => {
    fake = await startHubSpotFake();
    p = await hubspotProject(fake);
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('lands 10,600 contacts once although one query caps at 10,000, then new, updated and archived ones', async () => {
    // 250 contacts share each modified millisecond: more than a page at every date, ties across every boundary.
    const seeded = fake.seed('contacts', 10_600, { perStamp: 250 });
    const email5 = seeded[5]!.properties['email'];
    const start = fake.requests.length;
    const r1 = await p.run({ source: ['archived: true'] });
    assert.equal(r1.summary.exit_code, 0, JSON.stringify(r1.summary.error ?? r1.summary.objects[0]?.error));
    const o1 = r1.summary.objects[0]!;
    assert.equal(o1.rows_written, 10_600);
    const rows1 = await p.rows();
    assert.equal(byId(rows1).size, 10_600, 'each contact once at equal modified dates');
    const s1 = searches(fake, start);
    assert.ok(s1.length > 10_600 / 200, `${s1.length} search requests`);
    assert.equal(o1.api_calls, fake.requests.length - start, 'every request the API saw is counted, none hidden');
    assert.ok(s1.every((q) => bodyOf(q)['after'] === undefined), 'no offset paging: every page is a new query');
    assert.ok(s1.every((q) => (bodyOf(q)['limit'] as number) === 200 && (bodyOf(q)['sorts'] as unknown[]).length === 1));
    assert.ok(SEARCH_RESULT_CAP < 10_600);
    const read = r1.logs.find((l) => l['event_type'] === 'hubspot_read')!;
    assert.ok((read['tie_queries'] as number) > 0, 'dates with more than a page of records were read by id');

    const c0 = rows1.find((r) => r['id'] === seeded[0]!.id)!;
    assert.equal((c0['lastmodifieddate'] as Date).getTime(), seeded[0]!.updatedAt);
    assert.equal(c0['_dativo_deleted'], false);
    assert.equal(c0['hs_object_id'], BigInt(seeded[0]!.id), 'hs_object_id as long');
    assert.equal(typeof c0['hs_email_optout'], 'boolean');
    const zoe = rows1.find((r) => r['firstname'] === 'Zoë');
    assert.ok(zoe, 'unicode lands as is');
    const blank = rows1.find((r) => r['id'] === seeded.find((x) => x.properties['company'] === '')!.id)!;
    assert.equal(blank['company'], '', 'an empty string stays an empty string');
    const nul = rows1.find((r) => r['id'] === seeded.find((x) => x.properties['phone'] === null)!.id)!;
    assert.equal(nul['phone'], null, 'null stays null');
    const window = r1.logs.find((l) => l['event_type'] === 'cursor_window')!;
    assert.equal(window['to'], headerClock(fake), "watermark: HubSpot's clock (Date header)");
    const state1 = await p.state();
    assert.equal(state1.objects['contacts']?.cursor?.field, 'lastmodifieddate');
    assert.deepEqual(state1.objects['contacts']?.cursor?.written, [], 'no tie keys');

    // Between runs: 3 created, 2 updated (one twice), one updated right after creation, 2 archived.
    fake.advance(10_000);
    const fresh = [fake.create('contacts'), fake.create('contacts'), fake.create('contacts')];
    fake.update('contacts', seeded[5]!.id, { email: 'first@example.com' });
    fake.advance(1_000);
    fake.update('contacts', seeded[5]!.id, { email: 'second@example.com' });
    fake.update('contacts', seeded[9_999]!.id, { lastname: 'Renamed' });
    fake.update('contacts', fresh[0]!.id, { firstname: 'updated right after creation' });
    fake.archive('contacts', seeded[7]!.id);
    fake.archive('contacts', seeded[10_599]!.id);
    fake.advance(5_000);
    const start2 = fake.requests.length;
    const r2 = await p.run({ source: ['archived: true'] });
    assert.equal(r2.summary.exit_code, 0, JSON.stringify(r2.summary.objects[0]?.error));
    assert.equal(r2.summary.objects[0]!.rows_written, 3 + 2 + 2);
    const s2 = searches(fake, start2);
    assert.equal(s2.length, 1, 'one search page for 5 changed contacts');
    const filters = (bodyOf(s2[0]!)['filterGroups'] as { filters: { propertyName: string; operator: string; value: string }[] }[])[0]!.filters;
    assert.deepEqual(
      filters.map((f) => [f.propertyName, f.operator, new Date(Number(f.value)).toISOString()]),
      [['lastmodifieddate', 'GTE', state1.objects['contacts']!.cursor!.value.replace('000Z', 'Z')]],
      'the first query starts at the saved cursor (its upper bound comes from its own answer)',
    );
    const all = byId(await p.rows());
    assert.equal(all.size, 10_603);
    const v5 = all.get(seeded[5]!.id)!;
    assert.deepEqual(v5.map((r) => r['email']).sort(), [email5, 'second@example.com'].sort(), 'an update lands as a new row version (the current state)');
    assert.equal(all.get(fresh[0]!.id)!.length, 1);
    assert.equal(all.get(fresh[0]!.id)![0]!['firstname'], 'updated right after creation');
    const arch = all.get(seeded[7]!.id)!;
    assert.deepEqual(arch.map((r) => r['_dativo_deleted']).sort(), [false, true], 'an archived contact: a deletion row');
    const del = arch.find((r) => r['_dativo_deleted'] === true)!;
    assert.equal(del['archived'], true);
    assert.equal((del['archivedAt'] as Date).getTime(), fake.get('contacts', seeded[7]!.id).archivedAt);

    // Nothing new: nothing written, the cursor moves on.
    fake.advance(3_000);
    const r3 = await p.run({ source: ['archived: true'] });
    assert.equal(r3.summary.objects[0]!.rows_written, 0);
    assert.equal((await p.state()).objects['contacts']?.cursor?.value, headerClock(fake));
  });

  it('records modified while the read goes on skip no other record; they come back next run', async () => {
    fake.reset();
    const seeded = fake.seed('deals', 2_000, { perStamp: 3 });
    let n = 0;
    const moved: string[] = [];
    fake.beforeAnswer = (req) => {
      if (!req.path.endsWith('/search')) return;
      n++;
      if (n < 2 || n > 6) return;
      // Three deals already read and one not read yet are modified "now", past the run's window.
      for (const i of [n * 40, n * 40 + 1, n * 40 + 2, 1_999 - n]) {
        fake.update('deals', seeded[i]!.id, { dealstage: 'closedwon' });
        moved.push(seeded[i]!.id);
      }
    };
    fake.advance(1);
    const r1 = await p.run({ object: 'deals' });
    fake.beforeAnswer = undefined;
    assert.equal(r1.summary.exit_code, 0, JSON.stringify(r1.summary.objects[0]?.error));
    const first = byId(await p.rows('deals'));
    const notReadYet = new Set([2, 3, 4, 5, 6].map((k) => seeded[1_999 - k]!.id));
    for (const d of seeded) if (!notReadYet.has(d.id)) assert.equal(first.get(d.id)?.length, 1, `deal ${d.id} read once`);
    for (const id of notReadYet) assert.equal(first.get(id), undefined, 'modified before it was read: left for the next run');
    fake.advance(2_000);
    const r2 = await p.run({ object: 'deals' });
    assert.equal(r2.summary.objects[0]!.rows_written, new Set(moved).size, 'every modified deal comes back once, as its new version');
    const second = byId(await p.rows('deals'));
    assert.equal(second.size, 2_000);
    for (const id of new Set(moved)) assert.ok(second.get(id)!.some((r) => r['dealstage'] === 'closedwon'));
  });

  it('associations: the ids of associated objects, by batch read in incremental runs', async () => {
    fake.reset();
    const companies = fake.seed('companies', 30);
    const contacts = fake.seed('contacts', 5);
    fake.associate('companies', companies[0]!.id, 'contacts', contacts[1]!.id);
    fake.associate('companies', companies[0]!.id, 'contacts', contacts[0]!.id);
    fake.associate('companies', companies[2]!.id, 'deals', '999');
    fake.advance(1);
    const start = fake.requests.length;
    const r = await p.run({ object: 'companies', source: ['associations: [contacts, deals]'] });
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    const rows = byId(await p.rows('companies'));
    assert.deepEqual(JSON.parse(rows.get(companies[0]!.id)![0]!['associations'] as string), { contacts: [contacts[0]!.id, contacts[1]!.id].sort((a, b) => Number(a) - Number(b)), deals: [] });
    assert.deepEqual(JSON.parse(rows.get(companies[2]!.id)![0]!['associations'] as string), { contacts: [], deals: ['999'] });
    const batch = fake.requests.slice(start).filter((q) => q.path.startsWith('/crm/v4/associations/companies/'));
    assert.deepEqual(batch.map((q) => q.path).sort(), ['/crm/v4/associations/companies/contacts/batch/read', '/crm/v4/associations/companies/deals/batch/read']);
  });
});

describe('hubspot: full refresh through the lists', () => {
  let fake: HubSpotFake;
  let p: HubSpotProject;
  before(async () => {
    fake = await startHubSpotFake();
    p = await hubspotProject(fake, 'hubspot-full');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('limit=100 and after, the asset properties, associations, archived objects as deletion rows', async () => {
    const tickets = fake.seed('tickets', 350);
    fake.archive('tickets', tickets[4]!.id);
    fake.associate('tickets', tickets[0]!.id, 'contacts', '77');
    const start = fake.requests.length;
    const r = await p.run({ object: 'tickets', sync: 'full_refresh', source: ['archived: true', 'associations: [contacts]'] });
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    assert.equal(r.summary.objects[0]!.rows_written, 350);
    const lists = fake.requests.slice(start).filter((q) => q.path === '/crm/v3/objects/tickets');
    assert.equal(lists.length, 4 + 1, '349 live tickets in 4 pages of 100, then one page of archived ones');
    assert.equal(r.summary.objects[0]!.api_calls, 5);
    assert.ok(lists.every((q) => q.query.get('limit') === '100'));
    const live = tickets.filter((_, i) => i !== 4);
    assert.deepEqual(lists.map((q) => q.query.get('after')), [null, live[100]!.id, live[200]!.id, live[300]!.id, null], 'after: where the next page starts');
    assert.equal(lists[4]!.query.get('archived'), 'true');
    assert.match(lists[0]!.query.getAll('properties').join(','), /^subject,content,hs_pipeline,hs_pipeline_stage,hs_ticket_priority,createdate,hs_lastmodifieddate,hs_object_id$/);
    assert.equal(lists[0]!.query.get('associations'), 'contacts');
    const rows = byId(await p.rows('tickets'));
    assert.equal(rows.size, 350);
    assert.equal(rows.get(tickets[4]!.id)![0]!['_dativo_deleted'], true);
    assert.equal(rows.get(tickets[5]!.id)![0]!['_dativo_deleted'], false);
    assert.deepEqual(JSON.parse(rows.get(tickets[0]!.id)![0]!['associations'] as string), { contacts: ['77'] });
    assert.equal(rows.get(tickets[9]!.id)![0]!['subject'], tickets[9]!.properties['subject']);
  });

  it('owners: the list, then only the owners updated since', async () => {
    const owners = fake.seedOwners(230);
    const r1 = await p.run({ object: 'owners' });
    assert.equal(r1.summary.exit_code, 0, JSON.stringify(r1.summary.objects[0]?.error));
    assert.equal(r1.summary.objects[0]!.rows_written, 230);
    assert.equal(r1.summary.objects[0]!.api_calls, 3);
    const row = (await p.rows('owners')).find((o) => o['id'] === owners[0]!.id)!;
    assert.equal(row['email'], owners[0]!.email);
    assert.equal(row['userId'], BigInt(owners[0]!.userId));
    assert.deepEqual(JSON.parse(row['teams'] as string), owners[0]!.teams);
    fake.advance(5_000);
    fake.updateOwner(owners[3]!.id, { lastName: 'Changed' });
    fake.updateOwner(owners[200]!.id, { email: 'new@example.com' });
    fake.advance(1_000);
    const r2 = await p.run({ object: 'owners' });
    assert.equal(r2.summary.objects[0]!.rows_written, 2);
    assert.equal((await p.rows('owners')).length, 232);
  });
});

describe('hubspot: budgets and retries', () => {
  let fake: HubSpotFake;
  let p: HubSpotProject;
  before(async () => {
    fake = await startHubSpotFake({ searchPerSecond: 4, tenSecondly: 100 });
    p = await hubspotProject(fake, 'hubspot-budget');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('incremental runs get the search budget (4/s, keyed apart), full refreshes the general one; never the token', async () => {
    const plan = async (spec: Parameters<HubSpotProject['job']>[0]) => {
      await p.job(spec);
      return loadJob(p.p('job.yaml'), { cwd: p.dir });
    };
    const inc = rateLimits(await plan({ realBudget: true }))!;
    assert.equal(inc['requests_per_second'], 4);
    assert.equal(inc['burst'], 1);
    const full = rateLimits(await plan({ realBudget: true, sync: 'full_refresh' }))!;
    assert.equal(full['requests_per_second'], 9, 'the recipe: at most 100 requests in any 10 s');
    assert.equal(full['burst'], 10);
    assert.equal(inc['account'], `${String(full['account'])}.search`, 'the search budget is its own');
    assert.ok(!String(full['account']).includes('pat-'), 'the budget key never holds the token');
    const owners = rateLimits(await plan({ realBudget: true, object: 'owners' }))!;
    assert.equal(owners['requests_per_second'], 9, 'owners never search');
  });

  it('the recipe budget against a fake enforcing 4 searches/s: no 429', async () => {
    fake.seed('contacts', 2_000);
    const start = fake.requests.length;
    const r = await p.run({ realBudget: true });
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    assert.equal(r.summary.objects[0]!.rows_written, 2_000);
    assert.equal(fake.rateLimited, 0, 'not one 429');
    const s = searches(fake, start);
    assert.ok(s.length >= 10);
    for (let i = 1; i < s.length; i++) assert.ok(s[i]!.at - s[i - 1]!.at >= 200, `searches spaced ~250 ms (got ${Math.round(s[i]!.at - s[i - 1]!.at)} ms)`);
  });

  it('a 500 and a 429 with Retry-After are retried by our policy only, and counted', async () => {
    fake.reset();
    fake.seed('companies', 150);
    fake.fail({ status: 500, times: 1 });
    fake.fail({ status: 429, times: 1, headers: { 'retry-after': '0' } });
    const start = fake.requests.length;
    const r = await p.run({ object: 'companies', sync: 'full_refresh' });
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    assert.equal(r.summary.objects[0]!.rows_written, 150);
    assert.equal(fake.requests.length - start, 2 + 2, 'two pages, two retries: the SDK retried nothing itself');
    assert.equal(r.summary.objects[0]!.api_calls, 4);
    const last = fake.requests.at(-1)!;
    assert.match(String(last.headers['user-agent']), /hubspot-api-client-nodejs/, 'the SDK made the request');
    // Numbers are decimal text at HubSpot and land exactly (DuckDB reads the file independently).
    const duck = await readParquetWithDuckDB(fileURLToPath(r.summary.objects[0]!.files[0]!));
    assert.equal(duck.types['annualrevenue'], 'DECIMAL(38,18)');
    const company = fake.objects('companies')[7]!;
    const got = duck.rows.find((x) => x['id'] === company.id)!;
    assert.equal(duckToCanonical(got['annualrevenue']), `${company.properties['annualrevenue']!}0000000000000000`);
  });
});
