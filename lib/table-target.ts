/**
 * Where a job's rows land: an Iceberg table in a catalog, or (catalog `none`)
 * a plain Parquet dataset. runJob talks to both through {@link TableHandle};
 * lib/run/table.ts opens the one a job names.
 */
import type { JobPlan } from './plan.js';
import type { AssetField, DataFile, ObjectState } from './types.js';
import { DativoError } from './errors.js';

export interface CommitInput {
  object: string;
  files: DataFile[];
  mode: 'append' | 'overwrite';
  runId: string;
  /** The object's state after this run; committed with the data. */
  state: ObjectState;
}

export interface TableHandle {
  /** The table's columns with the table's field ids (asset + system columns). */
  readonly fields: AssetField[];
  /** Table location relative to the warehouse root, e.g. `demo/sales/orders`. */
  readonly relativeLocation: string;
  /** State committed with the newest snapshot that carries this object's state, if any. */
  committedState(object: string): Promise<ObjectState | undefined>;
  commit(input: CommitInput): Promise<{ snapshotId?: string }>;
  close(): Promise<void>;
}

/** `<domain>/<dataProduct>/<table>` as in DESIGN.md (domain defaults to the namespace). */
export function tableRelativeLocation(plan: JobPlan): string {
  const parts = [plan.asset.domain ?? plan.target.namespace, plan.asset.dataProduct, plan.target.table].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
  return parts.map((p) => p.replace(/[^A-Za-z0-9_.=-]/g, '_')).join('/');
}

/** Snapshot summary key of an object's state. */
export const stateSummaryKey = (object: string): string => `dativo.cursor.${object}`;

/** Parse the object state stored in a snapshot summary. */
export function parseCommittedState(text: string, where: string): ObjectState {
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as ObjectState;
  } catch (err) {
    throw new DativoError('STATE_CORRUPT', `cannot parse the state committed in ${where}: ${(err as Error).message}`, {
      cause: err,
      context: { file: where },
    });
  }
}
