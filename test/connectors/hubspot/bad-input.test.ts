/**
 * Bad input for the HubSpot source, through the `dativo` CLI as a user runs
 * it, against the HubSpot-like fake: a revoked token, an unknown object, bad
 * options, a response missing required fields, a page cursor that repeats
 * (a list's `after`, and a search that ignores its filters), a 429 that
 * never ends. Exit codes as DESIGN.md says; the token never printed.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { startHubSpotFake, type HubSpotFake } from '../../fakes/hubspot.js';
import { dativo, snapshot } from '../../lib/cli/helpers.js';
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
  const unchanged = async (snap: Record<string, string>): Promise<void> => {
    const now = await snapshot(p.dir);
    for (const f of Object.keys({ ...now, ...snap })) if (f.endsWith('.parquet') || f === 'state.json') assert.equal(now[f], snap[f], `${f} unchanged`);
  };

  it('a revoked token: exit 3 naming connector, object and the token setting, never the token', async () => {
    const token = 'pat-na1-revoked-5f3e9c1a7b';
    fake.tokens.add(token);
    fake.revoked.add(token);
    await p.job({ token });
    const snap = await snapshot(p.dir);
    const r = await run();
    assert.equal(r.code, 3, r.stderr);
    const out = r.stdout + r.stderr;
    assert.match(out, /AUTH_FAILED/);
    assert.match(out, /hubspot contacts/);
    assert.match(out, /source\.connection\.access_token/);
    assert.match(out, /expired/, "HubSpot's own message");
    assert.ok(!out.includes(token), 'the token is never printed');
    assert.ok(!out.includes('5f3e9c1a7b'), 'not even its end');
    await unchanged(snap);
  });

  it('an unknown object: exit 3 at validate time, listing the valid ones, nothing read (run too)', async () => {
    await p.job({ object: 'contactz' });
    const before = fake.requests.length;
    const valid = /source\.objects\[0\]: unknown HubSpot object "contactz"; valid objects: companies, contacts, deals, owners, tickets/;
    const v = await run(['validate', 'job.yaml']);
    assert.equal(v.code, 3, v.stderr);
    assert.match(v.stderr, valid);
    const r = await run();
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout + r.stderr, valid);
    assert.equal(fake.requests.length, before, 'no request was made');
  });

  it('bad options: every problem with its key at validate time, exit 3, the token never printed', async () => {
    await p.job({ realBudget: true, connection: ['timeout_seconds: -1', 'search_requests_per_second: 0'], source: ['associations: [Companies]', 'archived: maybe'] });
    const v = await run(['validate', 'job.yaml']);
    assert.equal(v.code, 3, v.stderr);
    for (const k of ['source.connection.timeout_seconds', 'source.connection.search_requests_per_second', 'source.associations', 'source.archived']) assert.ok(v.stderr.includes(k), `${k} in ${v.stderr}`);
    assert.ok(!v.stderr.includes(TEST_TOKEN));
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
    const snap = await snapshot(p.p('wh'));
    await p.job({ mode: 'strict' });
    const strict = await run();
    assert.equal(strict.code, 3, strict.stdout + strict.stderr);
    assert.match(strict.stdout + strict.stderr, new RegExp(`VALIDATION_FAILED.*id ${victim}`));
    assert.deepEqual(await snapshot(p.p('wh')), snap, 'strict: nothing landed');

    await p.job({ mode: 'warn' });
    const warn = await run();
    assert.equal(warn.code, 1, warn.stderr);
    const rows = await p.rows();
    assert.equal(rows.length, 249);
    const files = (await readdir(p.p('rejects'), { recursive: true })).filter((f) => f.endsWith('.ndjson') || f.endsWith('.jsonl'));
    assert.equal(files.length, 2, 'one reject file per run');
    for (const f of files) {
      const lines = (await readFile(p.p(`rejects/${f}`), 'utf8')).trim().split('\n');
      assert.equal(lines.length, 1);
      const reject = JSON.parse(lines[0]!) as Record<string, unknown>;
      assert.equal((reject['location'] as Record<string, unknown>)['id'], victim, 'the reject names the object id');
      assert.deepEqual([...(reject['fields'] as string[])].sort(), ['createdAt', 'lastmodifieddate']);
    }
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
