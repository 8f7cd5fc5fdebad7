/**
 * Test helpers shared by the Postgres and MySQL connector tests: build a
 * JobPlan and a ReadContext by hand, collect a stream, create throwaway
 * databases.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { parseFieldType } from '../../../lib/config/asset.js';
import type { ReadContext, Reject, RejectSink } from '../../../lib/connector.js';
import { pino } from 'pino';
import { silentLogger, type Logger } from '../../../lib/log.js';
import type { IncrementalSpec, JobPlan, SyncMode } from '../../../lib/plan.js';
import type { Asset, AssetField, ObjectState, Row } from '../../../lib/types.js';

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
  const plan: JobPlan = {
    file: '',
    name: 'test_job',
    tenantId: 'test',
    mode: 'self_hosted',
    source: {
      type: p.type,
      options: { connection: p.connection, tables: p.tables, ...(p.credentials ? { credentials: p.credentials } : {}) },
      objects: p.tables.map((t) => ({ name: String(t['object'] ?? t['name']), config: t })),
    },
    target: {
      type: 'local',
      warehouse: 'file:///nonexistent',
      catalog: { type: 'none' },
      namespace: 'default',
      table: 'test',
      partitioning: [],
      targetFileSizeBytes: 128 * 1024 * 1024,
      rowGroupRows: 100_000,
      compression: 'zstd',
    },
    asset: p.asset,
    syncMode: p.syncMode ?? (p.incremental ? 'incremental_append' : 'full_refresh'),
    validationMode: 'strict',
    rejectDir: '/nonexistent',
    state: { kind: 'file', path: '/nonexistent/state.json' },
    retry: { maxRetries: 0, initialDelaySeconds: 1, maxDelaySeconds: 1, backoffMultiplier: 2, retryableExitCodes: [2] },
    logging: { level: 'info', redaction: true },
    secrets: [],
  };
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
