/**
 * Where a job's rows land: an Iceberg table in a catalog, or (catalog `none`)
 * a plain Parquet dataset. runJob talks to both through {@link TableHandle};
 * lib/run/table.ts opens the one a job names.
 */
import type { PartitionLayout } from './iceberg/partition.js';
import type { JobPlan, TargetPlan } from './plan.js';
import type { AssetField, DataFile, ObjectState } from './types.js';
import { DativoError } from './errors.js';

export interface CommitInput {
  object: string;
  files: DataFile[];
  mode: 'append' | 'overwrite';
  runId: string;
  /** The object's state after this run; committed with the data. Undefined: the job's state is left as it is (a replay). */
  state?: ObjectState;
  /**
   * Reject files whose rows this commit lands (`dativo rejects replay`),
   * recorded in the snapshot summary (`dativo.replayed`). The commit refuses
   * (COMMIT_CONFLICT, `context.reason: 'already_replayed'`, nothing
   * committed) if any of them is recorded already, checked like the
   * compare-and-set on each attempt's metadata.
   */
  replays?: ReplayMark[];
  /**
   * Compare-and-set: the `runId` of this job's committed state for the object
   * when the run started (`null`: none). The commit lands only if the table
   * still holds that state, checked on the metadata each commit attempt
   * swaps from; otherwise COMMIT_CONFLICT (`context.reason: 'state_moved'`)
   * and nothing is committed. Undefined: no check (catalog `none` cannot
   * check; the per-job lock is its protection).
   */
  expectedRunId?: string | null;
}

export interface TableHandle {
  /** The table's columns with the table's field ids (asset + system columns). */
  readonly fields: AssetField[];
  /** Table location relative to the warehouse root, e.g. `demo/sales/orders`. */
  readonly relativeLocation: string;
  /** Folder layout of the data files: the Iceberg table's spec, or `target.partitioning` for a plain dataset. */
  readonly partitionLayout: PartitionLayout;
  /** State committed with the newest snapshot that carries this object's state, if any. */
  committedState(object: string): Promise<ObjectState | undefined>;
  /** Reject files already replayed into the table: {@link ReplayMark.file} → id of the replay run that landed them (empty without a catalog). */
  replayMarks(): Promise<Map<string, string>>;
  commit(input: CommitInput): Promise<{ snapshotId?: string }>;
  /**
   * Called once before any object runs: removes what earlier, killed runs of
   * this job left in the table and marks this run in flight; `end` (called
   * when the run is over, whatever its outcome) removes the mark.
   */
  beginRun(runId: string): Promise<{ end(): Promise<void> }>;
  close(): Promise<void>;
}

const safeFolder = (p: string): string => p.replace(/[^A-Za-z0-9_.=-]/g, '_');

/**
 * `<domain>/<dataProduct>/<table>` as in DESIGN.md (domain defaults to the
 * namespace), under `<tenant>/` when the table is tenant-scoped (the job named
 * no namespace, see {@link TargetPlan.tenantScope}).
 */
export function tableRelativeLocation(plan: JobPlan): string {
  const scope = plan.target.tenantScope;
  const legacy = legacyTableRelativeLocation(plan);
  return scope ? `${safeFolder(scope.tenant)}/${legacy}` : legacy;
}

/** The location earlier versions used: `<domain>/<dataProduct>/<table>`, no tenant folder. */
export function legacyTableRelativeLocation(plan: JobPlan): string {
  const parts = [plan.asset.domain ?? plan.target.tenantScope?.legacyNamespace ?? plan.target.namespace, plan.asset.dataProduct, plan.target.table].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
  return parts.map(safeFolder).join('/');
}

/** One reject file landed by a replay: `file` identifies it across runs (`<tenant>/<job>/<object folder>/<run id>.ndjson`), `lines` is the range replayed. */
export interface ReplayMark {
  file: string;
  lines: string;
}

/** Snapshot-summary key listing the reject files a replay commit landed (JSON array of {@link ReplayMark}). */
export const REPLAYED_SUMMARY_KEY = 'dativo.replayed';

/** Who a committed state belongs to: a cursor belongs to a job, never to a table. */
export interface StateOwner {
  tenant: string;
  job: string;
}

/** Prefix of the snapshot-summary keys holding a job's committed object state. */
export const STATE_KEY_PREFIX = 'dativo.state/';

/** Components are percent-encoded (`/` → `%2F`), so `/` separates them unambiguously whatever the names hold (dots included). */
const encodeComponent = (s: string): string => encodeURIComponent(s);

/**
 * Snapshot-summary key of one object's state of one job:
 * `dativo.state/<tenant>/<job>/<object>`, each component percent-encoded.
 */
export function stateSummaryKey(owner: StateOwner, object: string): string {
  return `${STATE_KEY_PREFIX}${encodeComponent(owner.tenant)}/${encodeComponent(owner.job)}/${encodeComponent(object)}`;
}

/** Tenant, job and object of a {@link stateSummaryKey}; undefined for any other key. */
export function parseStateSummaryKey(key: string): (StateOwner & { object: string }) | undefined {
  if (!key.startsWith(STATE_KEY_PREFIX)) return undefined;
  const parts = key.slice(STATE_KEY_PREFIX.length).split('/');
  if (parts.length !== 3) return undefined;
  try {
    const [tenant, job, object] = parts.map((p) => decodeURIComponent(p)) as [string, string, string];
    return { tenant, job, object };
  } catch {
    return undefined;
  }
}

/**
 * The key earlier versions wrote (`dativo.cursor.<object>`), with no job in
 * it. Read when a table has no key of this job yet, and replaced by
 * {@link stateSummaryKey} on the job's next commit (never written again).
 */
export const legacyStateSummaryKey = (object: string): string => `dativo.cursor.${object}`;

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
