/**
 * Helpers of the CSV connector tests: a JobPlan over files in a temp folder,
 * a read context with an in-memory reject sink, an fd probe.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ReadContext, Reject, RejectSink } from '../../../lib/connector.js';
import { silentLogger } from '../../../lib/log.js';
import type { JobPlan } from '../../../lib/plan.js';
import { locationOf } from '../../../lib/records/location.js';
import type { ObjectState, Row } from '../../../lib/types.js';
import { testPlan } from '../../helpers/plan.js';

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

export interface CsvPlanInput {
  /** The job folder: relative file paths resolve against it. */
  dir: string;
  /** `source.files` entries; each object gets those naming it (default object `data`). */
  files: Record<string, unknown>[];
  /** Engine options (`source.engine.options.native`). */
  options?: Record<string, unknown>;
  /** Incremental on (file_modified) unless false. */
  incremental?: boolean;
  lookbackDays?: number;
  /**
   * `source.settle_seconds`. Default 0 here: a file the test just wrote is
   * finished (read to its end); tests of files still being written set more.
   */
  settleSeconds?: number;
}

/** A JobPlan as loadJob would return it for a CSV job in `dir`. */
export function makeCsvPlan(p: CsvPlanInput): JobPlan {
  const names = [...new Set(p.files.map((f) => String(f.object ?? 'data')))];
  const plan = testPlan({
    file: join(p.dir, 'job.yaml'),
    name: 'csv_job',
    source: {
      type: 'csv',
      options: { files: p.files, settle_seconds: p.settleSeconds ?? 0, ...(p.options ? { engine: { type: 'native', options: { native: p.options } } } : {}) },
      objects: names.map((name) => ({
        name,
        config: { files: p.files.filter((f) => String(f.object ?? 'data') === name) },
      })),
    },
    asset: { name: 'test', version: '1.0', fields: [], primaryKey: [], file: '', raw: {} },
    syncMode: 'incremental_append',
    validationMode: 'warn',
    state: { kind: 'file', path: join(p.dir, 'state.json') },
  });
  if (p.incremental !== false) {
    plan.source.incremental = { strategy: 'file_modified', lookbackDays: p.lookbackDays ?? 0, lagSeconds: 0 };
  }
  return plan;
}

/** A read context for object `index` of the plan. */
export function makeCsvCtx(
  plan: JobPlan,
  opts: { index?: number; state?: ObjectState; fullRefresh?: boolean; signal?: AbortSignal } = {},
): ReadContext & { rejects: MemoryRejects } {
  return {
    plan,
    object: plan.source.objects[opts.index ?? 0]!,
    state: opts.state,
    fullRefresh: opts.fullRefresh ?? false,
    runId: 'run-test',
    runStartedAt: new Date(),
    signal: opts.signal ?? new AbortController().signal,
    log: silentLogger(),
    rejects: new MemoryRejects(),
  };
}

/** Read a stream to the end. */
export async function collect(stream: Readable): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const r of stream) rows.push(r as Row);
  return rows;
}

/** Plain copies of rows (enumerable keys only) plus their `line`. */
export function withLines(rows: Row[]): (Row & { _line: unknown })[] {
  return rows.map((r) => ({ ...r, _line: locationOf(r)?.line }));
}

/** Paths of this process's open file descriptors that point into `dir` (Linux /proc). */
export function openFdPathsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(`${fd}:${target}`);
    } catch {
      // the fd closed while we looked
    }
  }
  return out;
}

/** Number of open file descriptors that point into `dir`. */
export function openFdsUnder(dir: string): number {
  return openFdPathsUnder(dir).length;
}
