/**
 * Test helpers shared by the Postgres and MySQL connector tests: build a
 * JobPlan and a ReadContext by hand, collect a stream, create throwaway
 * databases.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import { parseFieldType } from '../../../lib/config/asset.js';
import type { Connector, ReadContext, Reject, RejectSink } from '../../../lib/connector.js';
import { pino } from 'pino';
import { silentLogger, type Logger } from '../../../lib/log.js';
import type { IncrementalSpec, JobPlan, SyncMode } from '../../../lib/plan.js';
import type { Asset, AssetField, ObjectState, Row } from '../../../lib/types.js';
import { runJob } from '../../../lib/run.js';
import { testPlan } from '../../helpers/plan.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';

/** A random lower-case name with a prefix, for throwaway databases. */
export function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** An asset from `[name, type, required?]` triples. */
export function makeAsset(columns: [string, string, boolean?][], extra: Partial<Asset> = {}): Asset {
  const fields: AssetField[] = columns.map(([name, typeName, required], i) => {
    const t = parseFieldType(typeName);
    if ('error' in t) throw new Error(t.error);
    return { name, type: t.type, typeName, required: required ?? false, fieldId: i + 1 };
  });
  return { name: 'test_asset', version: '1.0', fields, primaryKey: [], file: '', raw: {}, ...extra };
}

export interface PlanInput {
  type: 'postgres' | 'mysql';
  connection: Record<string, unknown>;
  tables: Record<string, unknown>[];
  asset: Asset;
  incremental?: Partial<IncrementalSpec> & { strategy: IncrementalSpec['strategy'] };
  syncMode?: SyncMode;
  credentials?: Record<string, unknown>;
}

/** A JobPlan as loadJob would return it, with a local target that these tests never use. */
export function makePlan(p: PlanInput): JobPlan {
  const plan = testPlan({
    source: {
      type: p.type,
      options: { connection: p.connection, tables: p.tables, ...(p.credentials ? { credentials: p.credentials } : {}) },
      objects: p.tables.map((t) => ({ name: String(t['object'] ?? t['name']), config: t })),
    },
    asset: p.asset,
    syncMode: p.syncMode ?? (p.incremental ? 'incremental_append' : 'full_refresh'),
  });
  if (p.incremental) plan.source.incremental = { lookbackDays: 0, lagSeconds: 0, ...p.incremental };
  return plan;
}

/** A reject sink that keeps what it gets. */
export class MemoryRejects implements RejectSink {
  readonly items: Reject[] = [];
  reject(r: Reject): void {
    this.items.push(r);
  }
  get count(): number {
    return this.items.length;
  }
}

/** A ReadContext for object `index` of the plan. */
export function makeCtx(
  plan: JobPlan,
  opts: { index?: number; state?: ObjectState; runStartedAt?: Date; signal?: AbortSignal; log?: Logger } = {},
): ReadContext {
  const object = plan.source.objects[opts.index ?? 0]!;
  return {
    plan,
    object,
    state: opts.state,
    fullRefresh: plan.syncMode === 'full_refresh',
    runId: 'run-test',
    runStartedAt: opts.runStartedAt ?? new Date(),
    signal: opts.signal ?? new AbortController().signal,
    log: opts.log ?? silentLogger(),
    rejects: new MemoryRejects(),
  };
}

/** Read a stream to the end. */
export async function collect(stream: Readable): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const r of stream) rows.push(r as Row);
  return rows;
}

/** A logger that records every line as an object. */
export function memoryLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const dest = {
    write(s: string): void {
      for (const l of s.split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  };
  return { log: pino({ level: 'debug' }, dest), lines };
}

/**
 * Run `plan` (its one object) through `runJob` into a temporary warehouse and
 * check, with DuckDB reading the Parquet file back, that every column of every
 * row equals what the connector itself reads (long as bigint, float as float32).
 */
export async function assertParquetRoundTrip(connector: Connector, plan: JobPlan, columns: [string, string, boolean?][]): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dativo-sql-types-'));
  try {
    plan.target.warehouse = pathToFileURL(path.join(dir, 'wh')).href;
    plan.rejectDir = path.join(dir, 'rejects');
    const expected = await collect(connector.read(makeCtx(plan)));
    const summary = await runJob(plan, { connector });
    assert.equal(summary.exit_code, 0, JSON.stringify(summary.error));
    assert.equal(summary.objects[0]!.files.length, 1);
    const back = await readParquetWithDuckDB(new URL(summary.objects[0]!.files[0]!).pathname);
    assert.equal(back.rows.length, expected.length);
    const byId = new Map(back.rows.map((r) => [String(r['id']), r]));
    for (const e of expected) {
      const b = byId.get(String(e['id']))!;
      for (const [name, type] of columns) {
        const want = e[name];
        const got = b[name];
        if (want === null) assert.equal(got, null, `${name} of ${String(e['id'])}`);
        else if (type === 'long') assert.equal(BigInt(got as bigint), BigInt(want as bigint), name);
        else if (type === 'float') assert.equal(got, Math.fround(want as number), name);
        else assert.deepEqual(got, want, `${name} of row ${String(e['id'])}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
