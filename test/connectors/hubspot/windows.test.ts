/**
 * HubSpot parallel windows (lib/window-pool.ts): the same deals exactly
 * once read by search in 1 or 4 modified-date windows, with many records
 * sharing a modified millisecond across page and window boundaries; a
 * window that fails leaves the rows read committed, the cursor at the
 * contiguous prefix and the windows left in state, and the next run lands
 * the rest exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHubSpotFake, type CrmObject, type HubSpotFake } from '../../fakes/hubspot.js';
import { byId, hubspotProject, type HubSpotProject } from './helpers.js';

const ids = (rows: Record<string, unknown>[]): string[] => rows.map((r) => r['id'] as string);
const modified = (o: CrmObject): number => o.updatedAt;

describe('hubspot: parallel windows, rows exactly once', { concurrency: 1 }, () => {
  let fake: HubSpotFake;
  let one: HubSpotProject;
  let four: HubSpotProject;
  before(async () => {
    fake = await startHubSpotFake({ latencyMs: 10 });
    one = await hubspotProject(fake, 'hubspot-w1');
    four = await hubspotProject(fake, 'hubspot-w4');
  });
  after(async () => {
    await fake.close();
    await one.cleanup();
    await four.cleanup();
  });

  it('parallel_windows 1 and 4 land the same deals once each, then the same new versions', async () => {
    // 7 per millisecond: pages of 200 end inside a millisecond, splits too.
    const seeded = fake.seed('deals', 3000, { perStamp: 7, stepMs: 3 });
    const r1 = await one.run({ object: 'deals', source: ['parallel_windows: 1'] });
    const r4 = await four.run({ object: 'deals', source: ['parallel_windows: 4'] });
    for (const r of [r1, r4]) assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    const a = ids(await one.rows('deals'));
    const b = ids(await four.rows('deals'));
    assert.equal(a.length, 3000);
    assert.equal(b.length, 3000, 'four windows: no deal twice, none missing');
    assert.equal(new Set(b).size, 3000);
    assert.deepEqual([...b].sort(), [...a].sort());
    assert.deepEqual([...a].sort(), seeded.map((s) => s.id).sort());
    const w = r4.logs.find((l) => l['event_type'] === 'hubspot_windows');
    assert.ok(w && Number(w['windows']) > 1, `the search was split (${JSON.stringify(w)})`);

    fake.advance(10_000);
    fake.update('deals', seeded[10]!.id, { dealname: 'changed' });
    const fresh = fake.create('deals');
    fake.advance(10_000);
    const s1 = await one.run({ object: 'deals', source: ['parallel_windows: 1'] });
    const s4 = await four.run({ object: 'deals', source: ['parallel_windows: 4'] });
    assert.equal(s1.summary.objects[0]!.rows_written, 2);
    assert.equal(s4.summary.objects[0]!.rows_written, 2, 'the second run reads only the new and the modified deal');
    const all = byId(await four.rows('deals'));
    assert.equal(all.size, 3001);
    assert.equal(all.get(seeded[10]!.id)!.length, 2);
    assert.equal(all.get(fresh.id)!.length, 1);
    assert.equal((await four.state()).objects['deals']?.hubspot_windows, undefined, 'nothing left over after a complete read');
  });
});

describe('hubspot: a window that fails', { concurrency: 1 }, () => {
  let fake: HubSpotFake;
  let p: HubSpotProject;
  before(async () => {
    fake = await startHubSpotFake({ latencyMs: 5 });
    p = await hubspotProject(fake, 'hubspot-wfail');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('commits what was read with the cursor at the contiguous prefix; the rerun lands the rest exactly once', async () => {
    const old = fake.seed('deals', 400, { perStamp: 5 });
    const r0 = await p.run({ object: 'deals', source: ['parallel_windows: 4'] });
    assert.equal(r0.summary.exit_code, 0, JSON.stringify(r0.summary.objects[0]?.error));
    const w1 = Date.parse(String((await p.state()).objects['deals']!.cursor!.value));
    fake.advance(200_000);
    const fresh = fake.seed('deals', 4000, { perStamp: 5, stepMs: 10 });
    const first = modified(fresh[0]!);
    const last = modified(fresh.at(-1)!);
    assert.ok(first > w1);
    // Every search page of a window positioned inside this band fails (500, no retries left).
    const lo = first + Math.floor((last - first) * 0.5);
    const hi = first + Math.floor((last - first) * 0.6);
    fake.fail({
      status: 500,
      times: Number.POSITIVE_INFINITY,
      match: (q) => {
        if (!q.path.endsWith('/search')) return false;
        const body = JSON.parse(q.body) as { filterGroups?: { filters?: { propertyName: string; operator: string; value: string }[] }[] };
        const from = body.filterGroups?.[0]?.filters?.find((f) => f.propertyName === 'hs_lastmodifieddate' && (f.operator === 'GTE' || f.operator === 'GT' || f.operator === 'EQ'));
        return from !== undefined && Number(from.value) >= lo && Number(from.value) < hi;
      },
    });
    const r1 = await p.run({ object: 'deals', source: ['parallel_windows: 4'], extra: ['retry_config: {max_retries: 0}'] });
    fake.clearFaults();
    assert.equal(r1.summary.exit_code, 2, 'a 500 without retries left: retryable');
    const o1 = r1.summary.objects[0]!;
    assert.ok(o1.rows_written > 0 && o1.rows_written < 4000, `the rows read before the failure are committed (${o1.rows_written})`);
    assert.ok(r1.logs.some((l) => l['event_type'] === 'object_incomplete'));
    const rows1 = await p.rows('deals');
    assert.equal(rows1.length, 400 + o1.rows_written);
    assert.equal(new Set(ids(rows1)).size, rows1.length, 'no deal twice');

    const st = (await p.state()).objects['deals']!;
    const left = st.hubspot_windows!;
    assert.ok(left.windows.length > 0, 'the windows left are saved');
    const prefix = Date.parse(String(st.cursor!.value));
    assert.equal(st.cursor!.upper, 'exclusive');
    assert.ok(prefix >= w1 && prefix < hi, `the cursor is at the end of the contiguous prefix (${prefix}), not the watermark`);
    assert.equal(Math.min(...left.windows.map((w) => w.at!)), prefix, 'the oldest window left starts where the cursor is');
    const landed = new Set(ids(rows1));
    const leftOut = (o: CrmObject): boolean => left.windows.some((w) => modified(o) >= w.at! && modified(o) < w.to && !(w.seen ?? []).includes(o.id) && !(w.strict === true && modified(o) === w.at));
    for (const o of fresh) assert.equal(landed.has(o.id), !leftOut(o), `deal ${o.id} at ${modified(o)}: landed exactly when outside the windows left`);

    // Meanwhile: a deal of a window left is modified (it moves past the stopped run's watermark).
    const moved = fresh.find(leftOut)!;
    fake.advance(5_000);
    fake.update('deals', moved.id, { dealname: 'moved' });
    fake.advance(5_000);
    const r2 = await p.run({ object: 'deals', source: ['parallel_windows: 4'] });
    assert.equal(r2.summary.exit_code, 0, JSON.stringify(r2.summary.objects[0]?.error));
    const all = byId(await p.rows('deals'));
    assert.equal(all.size, 4400, 'every deal landed');
    for (const [id, versions] of all) assert.equal(versions.length, 1, `deal ${id} exactly once`);
    assert.equal(all.get(moved.id)![0]!['dealname'], 'moved');
    assert.equal((await p.state()).objects['deals']!.hubspot_windows, undefined);
  });
});
