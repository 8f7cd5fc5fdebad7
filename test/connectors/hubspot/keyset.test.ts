/**
 * The search keyset protocol (connectors/hubspot/keyset.ts) as plain logic,
 * against an in-memory search with HubSpot's rules: one sort, no documented
 * order among equal values (here: a scramble of the id), `limit` results.
 * Every record in the window exactly once, whatever the ties, with records
 * modified while the read goes on, and with tie groups larger than a page
 * and than the 10,000-results cap of one query.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ModifiedKeyset, SEARCH_LIMIT, type Hit, type KeysetRequest } from '../../../connectors/hubspot/keyset.js';

interface Rec {
  id: string;
  m: number;
}

const rank = (id: string): string => createHash('md5').update(id).digest('hex');

/** Answer one keyset request over `data` as HubSpot's search would (first page of the query only). */
function search(data: readonly Rec[], req: KeysetRequest): Hit[] {
  const ok = (r: Rec): boolean =>
    req.filterGroups.length === 0 ||
    req.filterGroups.some((g) =>
      g.filters.every((f) => {
        const v = f.propertyName === 'hs_object_id' ? Number(r.id) : r.m;
        const x = Number(f.value);
        return f.operator === 'EQ' ? v === x : f.operator === 'GT' ? v > x : f.operator === 'GTE' ? v >= x : v < x;
      }),
    );
  const sort = req.sorts[0]!.propertyName;
  const rows = data.filter(ok).sort((a, b) => (sort === 'hs_object_id' ? Number(a.id) - Number(b.id) : a.m - b.m || (rank(a.id) < rank(b.id) ? -1 : 1)));
  return rows.slice(0, req.limit).map((r) => ({ id: r.id, modified: r.m }));
}

/** Read the window [from, to) to the end; `mutate(page)` may change `data` between pages. */
function readAll(data: Rec[], from: number | undefined, to: number, mutate?: (page: number) => void): { ids: string[]; requests: number; keyset: ModifiedKeyset } {
  const k = new ModifiedKeyset('hs_lastmodifieddate', from, undefined);
  const ids: string[] = [];
  let requests = 0;
  const tokens = new Set<string>();
  while (!k.done) {
    assert.ok(!tokens.has(k.token), 'no query is asked twice');
    tokens.add(k.token);
    const hits = search(data, k.request());
    requests++;
    if (requests === 1) k.setUpper(to);
    if (k.done) break;
    for (const h of k.advance(hits)) ids.push(h.id);
    mutate?.(requests);
    assert.ok(requests < 10_000, 'terminates');
  }
  return { ids, requests, keyset: k };
}

function make(n: number, stamp: (i: number) => number): Rec[] {
  return Array.from({ length: n }, (_, i) => ({ id: String(1000 + i), m: stamp(i) }));
}

const expectOnce = (ids: string[], want: readonly Rec[]): void => {
  assert.equal(new Set(ids).size, ids.length, 'no record twice');
  assert.deepEqual([...ids].sort(), want.map((r) => r.id).sort(), 'every record of the window');
};

describe('hubspot search keyset', () => {
  it('distinct dates: one query per page, one repeated record per page at most', () => {
    const data = make(1000, (i) => 1_000 + i);
    const r = readAll(data, undefined, 10_000);
    expectOnce(r.ids, data);
    assert.equal(r.requests, 6, '1000 records: five full pages (199 new after the first) and the rest');
    const first = new ModifiedKeyset('p', 5, 50).request();
    assert.deepEqual(first.filterGroups, [{ filters: [{ propertyName: 'p', operator: 'GTE', value: '5' }, { propertyName: 'p', operator: 'LT', value: '50' }] }]);
    assert.deepEqual(first.sorts, [{ propertyName: 'p', direction: 'ASCENDING' }]);
    assert.equal(first.limit, SEARCH_LIMIT);
  });

  it('many equal dates straddling every page, tie groups of a page and more read by id', () => {
    for (const per of [7, 37, 199, 200, 201, 450, 1000]) {
      const data = make(3000, (i) => 5_000 + Math.floor(i / per) * 3);
      const r = readAll(data, undefined, 1_000_000);
      expectOnce(r.ids, data);
      if (per >= 200) assert.ok(r.keyset.tieQueries > 0, `groups of ${per}: read by id`);
    }
  });

  it('a tie group larger than the 10,000-results cap of one query', () => {
    const data = [...make(10_500, () => 42_000), ...make(300, (i) => 42_001 + i).map((r) => ({ ...r, id: String(50_000 + Number(r.id)) }))];
    const r = readAll(data, 41_000, 1_000_000);
    expectOnce(r.ids, data);
    assert.ok(r.requests <= Math.ceil(10_800 / 200) + 3, `${r.requests} requests`);
  });

  it('the window is half-open and honoured on the first answer too', () => {
    const data = make(500, (i) => i * 10);
    const r = readAll(data, 1_000, 3_000);
    expectOnce(r.ids, data.filter((x) => x.m >= 1_000 && x.m < 3_000));
    const none = readAll(data, 3_000, 3_000);
    assert.deepEqual(none.ids, []);
    assert.equal(none.requests, 1);
  });

  it('records modified while the read goes on leave the window without another being skipped', () => {
    // Offset paging would skip one record per modification of a record already passed.
    const data = make(2000, (i) => 10_000 + Math.floor(i / 3));
    const want = [...data];
    const to = 1_000_000;
    const r = readAll(data, undefined, to, (page) => {
      // Modify three records already read and one not read yet: their new date is past the window.
      for (const i of [page * 5, page * 5 + 1, page * 5 + 2, 1999 - page]) data[i]!.m = to + page;
    });
    const left = new Set(data.filter((x) => x.m >= to).map((x) => x.id));
    const got = new Set(r.ids);
    assert.equal(got.size, r.ids.length, 'no record twice');
    for (const w of want) if (!left.has(w.id)) assert.ok(got.has(w.id), `record ${w.id}, never modified, was read`);
  });

  it('a full page without modified dates cannot go on: SOURCE_ERROR', () => {
    const k = new ModifiedKeyset('p', undefined, 100);
    assert.throws(
      () => k.advance(Array.from({ length: SEARCH_LIMIT }, (_, i) => ({ id: String(i), modified: undefined }))),
      (e: unknown) => (e as { code?: string }).code === 'SOURCE_ERROR',
    );
  });
});
