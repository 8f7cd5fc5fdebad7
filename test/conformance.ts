/**
 * The conformance suite every source connector runs (STYLE.md 9). Modelled on
 * Airbyte's connector acceptance tests and Meltano's standard tap tests:
 *
 * - **spec**: the descriptor is frozen, its name a stable lower-case string,
 *   its roles include `source`;
 * - **check**: a good config passes; a bad one fails with the expected
 *   DativoError code;
 * - **discover** (when the connector has it): the object is listed with a
 *   column for every field its records carry, and its primary key exists;
 * - **read**: a full-refresh read returns exactly the seeded records, twice in
 *   a row (sequential reads agree);
 * - **incremental**: a second read with the state of the first returns nothing
 *   already written; after more data is seeded, a third read returns exactly
 *   the new records; a full refresh ignores the state; for cursor connectors
 *   a state far in the future returns nothing;
 * - **resources**: destroying or aborting a read in the middle releases what
 *   the connector opened (file descriptors, pool clients).
 *
 * Usage (one file per connector, e.g. `test/connectors/csv/conformance.test.ts`):
 *
 * ```ts
 * describeConnectorConformance('csv', {
 *   connector: () => getConnector('csv'),
 *   makePlan: () => makeCsvPlan({ dir, files: [{ path: 'data/*.csv' }] }),
 *   seed: async () => { ... },        // reset to the initial data
 *   expectedRows: [...],              // records as the connector emits them
 *   seedMore: async () => { ... },    // add data
 *   moreRows: [...],                  // what the next incremental read returns
 *   seedMany: async () => { ... },    // optional: more than the read-ahead, for destroy tests
 *   badCheck: { makePlan: () => ..., code: 'SOURCE_NOT_FOUND' },
 *   incremental: { kind: 'files' },   // or { kind: 'cursor', field, cursorKind, primaryKey }
 *   resourcesOpen: () => openFdsUnder(dir),
 * });
 * ```
 *
 * File connectors carry state through the stream's `checkpoint()`; cursor
 * connectors through the engine's own stages: the records go through
 * `validate(plan.asset)` and `track()` exactly as in a run, and the state is
 * `track().result()`. Nothing of ours is mocked.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Connector, ReadContext, Reject, RejectSink, SourceStream } from '../lib/connector.js';
import { DativoError, type ErrorCode } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';
import type { JobPlan } from '../lib/plan.js';
import { track } from '../lib/stages/track.js';
import { validate } from '../lib/stages/validate.js';
import type { CursorState, FieldKind, ObjectState, Row } from '../lib/types.js';

type MaybePromise<T> = T | Promise<T>;

/** How a connector's incremental state works. */
export type ConformanceIncremental =
  /** State comes from the stream's `checkpoint()` (file connectors). */
  | { kind: 'files' }
  /** State is a cursor: rows go through validate() and track() as in a run. */
  | { kind: 'cursor'; field: string; cursorKind: FieldKind; primaryKey: string[] };

/** What a connector's test file provides to {@link describeConnectorConformance}. */
export interface ConformanceSetup {
  /** Once before all suites (start a server, create a folder). */
  before?: () => MaybePromise<void>;
  /** Once after all suites (clean up). */
  after?: () => MaybePromise<void>;
  /** The connector under test, e.g. `() => getConnector('csv')`. */
  connector: () => MaybePromise<Connector>;
  /** A plan over the seeded data; its first object is the one read. */
  makePlan: () => MaybePromise<JobPlan>;
  /** Reset the source to the initial data set (called at the start of each test). Must hold at least 2 records. */
  seed: () => Promise<void>;
  /** The records a full read of the seeded data yields, as the connector emits them (any order). */
  expectedRows: Row[];
  /** Add data after the seed. */
  seedMore: () => Promise<void>;
  /** The records an incremental read returns after `seedMore()` (any order). */
  moreRows: Row[];
  /**
   * Seed so much data that reading one record does not drain the source
   * (more than the connector reads ahead), for the resource tests; default
   * `seed`. The data need not match `expectedRows`.
   */
  seedMany?: () => Promise<void>;
  /** A plan whose `check()` must fail, and the code it must fail with. */
  badCheck: { makePlan: () => MaybePromise<JobPlan>; code: ErrorCode };
  incremental: ConformanceIncremental;
  /** What the connector holds open right now: open fds for files, checked-out clients for a pool. */
  resourcesOpen: () => MaybePromise<number>;
  /** Row → comparable value for read comparisons; default: own enumerable fields, bigints as strings. */
  normalize?: (row: Row) => unknown;
}

/** A reject sink that keeps everything. */
class KeepRejects implements RejectSink {
  readonly items: Reject[] = [];
  reject(r: Reject): void {
    this.items.push(r);
  }
  get count(): number {
    return this.items.length;
  }
}

function defaultNormalize(row: Row): unknown {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v;
  }
  return out;
}

function sortedJson(rows: unknown[]): string[] {
  return rows.map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).sort();
}

/** A state value no data reaches, per cursor kind (Airbyte's "future state"). */
function futureCursor(kind: FieldKind): string | undefined {
  switch (kind) {
    case 'timestamp':
      return '9999-12-31T23:59:59.999999Z';
    case 'date':
      return '9999-12-31';
    case 'long':
      return '9223372036854775807';
    case 'int':
      return '2147483647';
    default:
      return undefined;
  }
}

/**
 * Register the conformance suites of one connector with node:test. Call it
 * at the top level of a test file.
 */
export function describeConnectorConformance(name: string, setup: ConformanceSetup): void {
  const normalize = setup.normalize ?? defaultNormalize;
  const inc = setup.incremental;
  /** Identity for incremental comparisons: the primary key when there is one. */
  const identity = (row: Row): string =>
    inc.kind === 'cursor' && inc.primaryKey.length > 0
      ? inc.primaryKey.map((k) => String(row[k])).join('\u0000')
      : (sortedJson([normalize(row)])[0] ?? '');

  const context = (plan: JobPlan, opts: { state?: ObjectState; fullRefresh: boolean; signal?: AbortSignal }): ReadContext & { rejects: KeepRejects } => ({
    plan,
    object: plan.source.objects[0]!,
    state: opts.state,
    fullRefresh: opts.fullRefresh,
    runId: 'conformance',
    runStartedAt: new Date(),
    signal: opts.signal ?? new AbortController().signal,
    log: silentLogger(),
    rejects: new KeepRejects(),
  });

  async function collect(stream: SourceStream): Promise<Row[]> {
    const rows: Row[] = [];
    for await (const r of stream) rows.push(r as Row);
    return rows;
  }

  /** One incremental run: rows written and the object state to save after it. */
  async function incrementalRun(state: ObjectState | undefined): Promise<{ rows: Row[]; state: ObjectState }> {
    const connector = await setup.connector();
    const plan = await setup.makePlan();
    const ctx = context(plan, { ...(state ? { state } : {}), fullRefresh: false });
    const tracker = inc.kind === 'files' ? undefined : track({ field: inc.field, kind: inc.cursorKind, primaryKey: inc.primaryKey, saved: state?.cursor });
    // As runJob does: a source that bounds its window reports it, and the tracker saves it.
    if (tracker) ctx.reportWindow = (w) => tracker.tracker.window(w);
    const source = connector.read(ctx);
    if (inc.kind === 'files' || tracker === undefined) {
      const rows = await collect(source);
      assert.equal(typeof source.checkpoint, 'function', 'a file connector reports its state through checkpoint()');
      return { rows, state: { ...(state ?? {}), ...source.checkpoint!() } };
    }
    const rows: Row[] = [];
    await pipeline(
      source,
      validate(plan.asset, { mode: 'strict', rejects: ctx.rejects, object: ctx.object.name }),
      tracker,
      new Writable({
        objectMode: true,
        write(row: Row, _enc, cb) {
          rows.push(row);
          cb();
        },
      }),
    );
    const cursor: CursorState | undefined = tracker.result() ?? state?.cursor;
    return { rows, state: { ...(state ?? {}), ...(cursor ? { cursor } : {}) } };
  }

  /** Wait (briefly) until the connector holds no more than `baseline`: pools release asynchronously. */
  async function releasedTo(baseline: number): Promise<number> {
    let now = await setup.resourcesOpen();
    for (let i = 0; i < 50 && now > baseline; i++) {
      await sleep(20);
      now = await setup.resourcesOpen();
    }
    return now;
  }

  describe(`${name} conformance`, () => {
    before(async () => {
      await setup.before?.();
    });
    after(async () => {
      await setup.after?.();
    });

    describe('spec', () => {
      it('has a frozen descriptor with a stable name and the source role', async () => {
        const c = await setup.connector();
        const d = c.descriptor;
        assert.ok(Object.isFrozen(d), 'descriptor is frozen');
        assert.match(d.name, /^[a-z][a-z0-9_]*$/, 'name is an explicit lower-case identifier');
        assert.equal((await setup.connector()).descriptor.name, d.name, 'name is the same on every load');
        assert.ok(d.roles.includes('source'), 'roles include source');
        assert.equal(typeof d.allowedInCloud, 'boolean');
        assert.equal(typeof d.sortedByCursor, 'boolean');
        assert.ok(Array.isArray(d.incrementalStrategies) && d.incrementalStrategies.length > 0, 'declares its incremental strategies');
        assert.equal(typeof d.description, 'string');
        assert.equal(typeof c.read, 'function');
        assert.deepEqual(JSON.parse(JSON.stringify(d)), { ...d, roles: [...d.roles], incrementalStrategies: [...d.incrementalStrategies] });
      });

      it('its options schema, if it declares one, accepts its own good config', async (t) => {
        const c = await setup.connector();
        if (!c.options) return t.skip('connector declares no options schema');
        const parsed = c.options.safeParse((await setup.makePlan()).source.options);
        assert.ok(parsed.success, parsed.error?.message);
      });
    });

    describe('check', () => {
      it('succeeds on a good config', async (t) => {
        const c = await setup.connector();
        if (!c.check) return t.skip('connector has no check()');
        await setup.seed();
        await c.check(await setup.makePlan(), { signal: new AbortController().signal, log: silentLogger() });
      });

      it(`fails on a bad config with ${setup.badCheck.code}`, async (t) => {
        const c = await setup.connector();
        if (!c.check) return t.skip('connector has no check()');
        const plan = await setup.badCheck.makePlan();
        await assert.rejects(c.check(plan, { signal: new AbortController().signal, log: silentLogger() }), (err: unknown) => {
          assert.ok(err instanceof DativoError, `a DativoError, got ${String(err)}`);
          assert.equal(err.code, setup.badCheck.code);
          return true;
        });
      });
    });

    describe('discover', () => {
      it('describes the object with a column for every field of its records', async (t) => {
        const c = await setup.connector();
        if (!c.discover) return t.skip('connector has no discover()');
        await setup.seed();
        const plan = await setup.makePlan();
        const found = await c.discover(plan, { signal: new AbortController().signal, log: silentLogger() });
        const object = found.find((o) => o.name === plan.source.objects[0]!.name);
        assert.ok(object, `discover() lists object "${plan.source.objects[0]!.name}" (got ${found.map((o) => o.name).join(', ')})`);
        const names = new Set(object.columns.map((col) => col.name));
        assert.equal(names.size, object.columns.length, 'no duplicate column names');
        for (const key of new Set(setup.expectedRows.flatMap((r) => Object.keys(r)))) assert.ok(names.has(key), `column ${key}`);
        for (const col of object.columns) assert.equal(typeof col.type, 'string');
        for (const k of object.primaryKey) assert.ok(names.has(k), `primary key column ${k} exists`);
      });
    });

    describe('read', () => {
      it('returns exactly the seeded records, with no rejects', async () => {
        await setup.seed();
        assert.ok(setup.expectedRows.length >= 2, 'the seed holds at least 2 records');
        const c = await setup.connector();
        const ctx = context(await setup.makePlan(), { fullRefresh: true });
        const rows = await collect(c.read(ctx));
        assert.deepEqual(ctx.rejects.items, []);
        assert.deepEqual(sortedJson(rows.map(normalize)), sortedJson(setup.expectedRows.map(normalize)));
      });

      it('two sequential full reads agree', async () => {
        await setup.seed();
        const c = await setup.connector();
        const plan = await setup.makePlan();
        const a = await collect(c.read(context(plan, { fullRefresh: true })));
        const b = await collect(c.read(context(plan, { fullRefresh: true })));
        assert.deepEqual(sortedJson(b.map(normalize)), sortedJson(a.map(normalize)));
      });
    });

    describe('incremental', () => {
      it('a second read with the first read’s state returns nothing already written; new data comes next', async () => {
        await setup.seed();
        const first = await incrementalRun(undefined);
        assert.deepEqual(first.rows.map(identity).sort(), setup.expectedRows.map(identity).sort(), 'first run reads everything');
        assert.notDeepEqual(first.state, {}, 'the first run produced a state');
        const second = await incrementalRun(first.state);
        assert.deepEqual(second.rows.map(identity), [], 'nothing already written comes back');
        await setup.seedMore();
        const third = await incrementalRun(second.state);
        assert.deepEqual(third.rows.map(identity).sort(), setup.moreRows.map(identity).sort(), 'only the new records');
        const fourth = await incrementalRun(third.state);
        assert.deepEqual(fourth.rows.map(identity), [], 'and then nothing again');
      });

      it('a full refresh ignores the saved state', async () => {
        await setup.seed();
        const first = await incrementalRun(undefined);
        const c = await setup.connector();
        const ctx = context(await setup.makePlan(), { state: first.state, fullRefresh: true });
        const rows = await collect(c.read(ctx));
        assert.deepEqual(rows.map(identity).sort(), setup.expectedRows.map(identity).sort());
      });

      if (inc.kind === 'cursor' && futureCursor(inc.cursorKind) !== undefined) {
        it('a state in the far future returns nothing', async () => {
          await setup.seed();
          const saved: CursorState = { field: inc.field, value: futureCursor(inc.cursorKind)!, written: [] };
          const run = await incrementalRun({ cursor: saved });
          assert.deepEqual(run.rows, []);
        });
      }
    });

    describe('resources', () => {
      it('destroy in the middle of a read releases what the connector opened', async () => {
        await (setup.seedMany ?? setup.seed)();
        const baseline = await setup.resourcesOpen();
        const c = await setup.connector();
        const stream = c.read(context(await setup.makePlan(), { fullRefresh: true }));
        const it = stream[Symbol.asyncIterator]();
        const first = await it.next();
        assert.equal(first.done, false, 'a first record arrives');
        assert.ok((await setup.resourcesOpen()) > baseline, 'the read holds a resource while in progress (probe works)');
        stream.destroy();
        await finished(stream).catch(() => undefined);
        assert.equal(await releasedTo(baseline), baseline);
      });

      it('an abort signal fails the read with ABORTED and releases what it opened', async () => {
        await (setup.seedMany ?? setup.seed)();
        const baseline = await setup.resourcesOpen();
        const c = await setup.connector();
        const ac = new AbortController();
        const stream = c.read(context(await setup.makePlan(), { fullRefresh: true, signal: ac.signal }));
        const it = stream[Symbol.asyncIterator]();
        await it.next();
        ac.abort();
        await assert.rejects(
          (async () => {
            for (let r = await it.next(); !r.done; r = await it.next());
          })(),
          (err: unknown) => err instanceof DativoError && err.code === 'ABORTED',
        );
        assert.equal(await releasedTo(baseline), baseline);
      });
    });
  });
}
