/**
 * Bad input for the HubSpot source, through the `dativo` CLI as a user runs
 * it, against the HubSpot-like fake: a revoked token, an unknown object, bad
 * options, a response missing required fields, a page cursor that repeats
 * (a list's `after`, and a search that ignores its filters), a 429 that
 * never ends. Exit codes as DESIGN.md says; the token never printed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHubSpotFake, type HubSpotFake } from '../../fakes/hubspot.js';
import { dativo, snapshot } from '../../lib/cli/helpers.js';
import { assertAuthFailed, assertBadOptions, assertMissingFieldsRejected, assertUnchanged, assertUnknownObject } from '../api-helpers.js';
import { hubspotProject, TEST_TOKEN, type HubSpotProject } from './helpers.js';

describe('hubspot: bad input', () => {
  let fake: HubSpotFake;
  let p: HubSpotProject;
  before(async () => {
    fake = await startHubSpotFake();
    fake.seed('contacts', 250, { perStamp: 9 });
    p = await hubspotProject(fake, 'hubspot-bad');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });
  const run = (args: string[] = ['run', 'job.yaml']) => dativo(args, { cwd: p.dir });
  /** State and data files as they were (a run may create the empty table it was to fill). */
  const unchanged = (snap: Record<string, string>): Promise<void> => assertUnchanged(p.dir, snap, (f) => f.endsWith('.parquet') || f === 'state.json');

  it('a revoked token: exit 3 naming connector, object and the token setting, never the token', async () => {
    const token = 'pat-na1-revoked-5f3e9c1a7b';
    fake.tokens.add(token);
    fake.revoked.add(token);
    await p.job({ token });
    const snap = await snapshot(p.dir);
    const r = await run();
    assertAuthFailed(r, { what: 'hubspot contacts', key: 'source.connection.access_token', secret: token, secretTail: '5f3e9c1a7b' });
    assert.match(r.stdout + r.stderr, /expired/, "HubSpot's own message");
    await unchanged(snap);
  });

  it('an unknown object: exit 3 at validate time, listing the valid ones, nothing read (run too)', async () => {
    await p.job({ object: 'contactz' });
    const valid = /source\.objects\[0\]: unknown HubSpot object "contactz"; valid objects: companies, contacts, deals, owners, tickets/;
    await assertUnknownObject(run, valid, () => fake.requests.length);
  });

  it('bad options: every problem with its key at validate time, exit 3, the token never printed', async () => {
    await p.job({ realBudget: true, connection: ['timeout_seconds: -1', 'search_requests_per_second: 0'], source: ['associations: [Companies]', 'archived: maybe'] });
    await assertBadOptions(run, ['source.connection.timeout_seconds', 'source.connection.search_requests_per_second', 'source.associations', 'source.archived'], TEST_TOKEN);
    await p.job({ source: ['archivd: true'] });
    const typo = await run(['validate', 'job.yaml']);
    assert.equal(typo.code, 3, typo.stderr);
    assert.match(typo.stderr, /archivd/);
    await p.job();
    const ok = await run(['validate', 'job.yaml']);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('a response missing required fields: strict stops with the object id (exit 3), warn rejects it and lands the rest', async () => {
    const victim = fake.objects('contacts')[17]!.id;
    fake.omit('contacts', ['createdAt', 'lastmodifieddate'], [victim]);
    await assertMissingFieldsRejected(p, run, { victim, fields: ['createdAt', 'lastmodifieddate'], landed: 249 });
    fake.omitted.clear();
  });

  it('a list cursor that repeats: loop detected, exit 2, state and table unchanged', async () => {
    fake.seed('companies', 350);
    fake.loopCursor = true;
    await p.job({ object: 'companies', sync: 'full_refresh' });
    const snap = await snapshot(p.dir);
    const r = await run();
    fake.loopCursor = false;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout + r.stderr, /same page token twice/);
    assert.match(r.stdout + r.stderr, /hubspot companies/);
    await unchanged(snap);
    assert.deepEqual(await p.rows('companies'), [], 'nothing committed');
  });

  it('a search that ignores its filters (the same page again): loop detected, exit 2, nothing committed', async () => {
    await p.job({ object: 'companies' });
    const snap = await snapshot(p.dir);
    fake.ignoreSearchFilters = true;
    const r = await run();
    fake.ignoreSearchFilters = false;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout + r.stderr, /hubspot companies \(POST \/crm\/v3\/objects\/companies\/search\).*same page token twice/);
    await unchanged(snap);
  });

  it('a 429 that never ends: gives up at the policy cap, exit 2, state and table unchanged', async () => {
    fake.advance(5_000);
    fake.create('contacts');
    fake.advance(1_000);
    await p.job();
    const snap = await snapshot(p.dir);
    fake.fail({ status: 429, times: Number.POSITIVE_INFINITY, headers: { 'retry-after': '0' } });
    await p.job({ extra: ['retry_config: {max_retries: 3, initial_delay_seconds: 0.02, max_delay_seconds: 0.05}'] });
    const before = fake.requests.length;
    const r = await run();
    fake.clearFaults();
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout + r.stderr, /RATE_LIMITED/);
    assert.match(r.stdout + r.stderr, /secondly limit/, "HubSpot's own message");
    assert.equal(fake.requests.length - before, 4, 'max_retries 3: four attempts, none of them the SDK’s own');
    await unchanged(snap);
    assert.ok(!(r.stdout + r.stderr).includes(TEST_TOKEN));
  });
});
