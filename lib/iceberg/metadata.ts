/**
 * Table metadata (format v2): creation, snapshot ids, snapshot summaries,
 * applying a commit's changes, and looking up dativo's own snapshots so a run
 * can reconcile its state with the table.
 */
import { randomUUID } from 'node:crypto';
import { DativoError } from '../errors.js';
import type { Asset, AssetField } from '../types.js';
import type { TableMetadata } from './catalog.js';
import { asLong } from './json.js';
import { INGEST_DATE_PARTITION, PARTITION_ID_START, specForPartitioning } from './partition.js';
import { buildSchema } from './schema.js';

/** Table properties every new dativo table gets (overridable by the caller). */
export const DEFAULT_TABLE_PROPERTIES: Readonly<Record<string, string>> = {
  'write.parquet.compression-codec': 'zstd',
};

/** Summary key holding the id of the dativo run that made a snapshot. */
export const RUN_ID_SUMMARY_KEY = 'dativo.run-id';

/** A snapshot as stored in metadata (longs are bigints). */
export interface Snapshot {
  'snapshot-id': bigint;
  'parent-snapshot-id'?: bigint;
  'sequence-number': bigint;
  'timestamp-ms': bigint;
  'manifest-list': string;
  summary: Record<string, string>;
  'schema-id'?: number;
  [key: string]: unknown;
}

/** Options of {@link newTableMetadata}. */
export interface NewTableOptions {
  /** Absolute table location URI. */
  location: string;
  /** Asset columns plus system columns, in order. */
  fields: AssetField[];
  /** Merged over {@link DEFAULT_TABLE_PROPERTIES}. */
  properties?: Record<string, string>;
  /** The job's `target.partitioning` (default `[ingest_date]`, see {@link specForPartitioning}). */
  partitioning?: readonly string[];
  /** Creation time in epoch ms (default now). */
  nowMs?: number;
}

/**
 * Metadata of a new, empty v2 table: fresh field ids 1..n, spec
 * `ingest_date = day(_dativo_ingested_at)` (field id 1000) or unpartitioned
 * (`partitioning: []`), unsorted order 0,
 * `current-snapshot-id` -1 and no refs (what Java writes for v2).
 */
export function newTableMetadata(opts: NewTableOptions): { metadata: TableMetadata; fields: AssetField[] } {
  const fresh = buildSchema(opts.fields, 0);
  const spec = specForPartitioning(fresh.schema, opts.partitioning ?? [INGEST_DATE_PARTITION]);
  const metadata: TableMetadata = {
    'format-version': 2,
    'table-uuid': randomUUID(),
    location: opts.location.replace(/\/+$/, ''),
    'last-sequence-number': 0n,
    'last-updated-ms': BigInt(opts.nowMs ?? Date.now()),
    'last-column-id': fresh.lastColumnId,
    'current-schema-id': 0,
    schemas: [fresh.schema],
    'default-spec-id': 0,
    'partition-specs': [spec],
    'last-partition-id': spec.fields.length > 0 ? PARTITION_ID_START + spec.fields.length - 1 : PARTITION_ID_START - 1,
    'default-sort-order-id': 0,
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    properties: { ...DEFAULT_TABLE_PROPERTIES, ...(opts.properties ?? {}) },
    'current-snapshot-id': -1n,
    refs: {},
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
  };
  return { metadata, fields: fresh.fields };
}

/**
 * A new snapshot id as Java makes it: a random v4 UUID's two 64-bit halves
 * XORed, masked to a positive 63-bit value; redrawn until it is not zero and
 * not in `taken`.
 */
export function newSnapshotId(taken: Iterable<bigint> = []): bigint {
  const used = new Set(taken);
  for (;;) {
    const hex = randomUUID().replace(/-/g, '');
    const id = (BigInt('0x' + hex.slice(0, 16)) ^ BigInt('0x' + hex.slice(16))) & 0x7fffffffffffffffn;
    if (id !== 0n && !used.has(id)) return id;
  }
}

/** All snapshots of the metadata. */
export function snapshotsOf(metadata: TableMetadata): Snapshot[] {
  return (metadata.snapshots ?? []) as Snapshot[];
}

/** Current snapshot id of `main`, or null (accepts -1, null or absent as "none"). */
export function currentSnapshotId(metadata: TableMetadata): bigint | null {
  const refs = metadata.refs as Record<string, { 'snapshot-id'?: unknown }> | undefined;
  const fromRef = asLong(refs?.main?.['snapshot-id']);
  if (fromRef !== undefined && fromRef >= 0n) return fromRef;
  const id = asLong(metadata['current-snapshot-id']);
  return id === undefined || id < 0n ? null : id;
}

/** The current snapshot of `main`, if any. */
export function currentSnapshot(metadata: TableMetadata): Snapshot | undefined {
  const id = currentSnapshotId(metadata);
  return id === null ? undefined : snapshotsOf(metadata).find((s) => asLong(s['snapshot-id']) === id);
}

/** Snapshots of `main` from the current one back through `parent-snapshot-id` (newest first), at most `limit`. */
export function ancestry(metadata: TableMetadata, limit = Number.POSITIVE_INFINITY): Snapshot[] {
  const byId = new Map(snapshotsOf(metadata).map((s) => [asLong(s['snapshot-id']), s]));
  const out: Snapshot[] = [];
  let s = currentSnapshot(metadata);
  while (s && out.length < limit) {
    out.push(s);
    const parent = asLong(s['parent-snapshot-id']);
    s = parent === undefined ? undefined : byId.get(parent);
  }
  return out;
}

/**
 * The newest snapshot on `main` (walking back from the current one) whose
 * summary has `dativo.run-id` — equal to `runId` when given. This is the
 * checkpoint a job reconciles its state with.
 */
export function findDativoSnapshot(metadata: TableMetadata, runId?: string): Snapshot | undefined {
  return ancestry(metadata).find((s) => {
    const v = s.summary?.[RUN_ID_SUMMARY_KEY];
    return v !== undefined && (runId === undefined || v === runId);
  });
}

/**
 * Summary keys starting with `prefix` (default `dativo.`) of the newest dativo
 * snapshot on `main`, or undefined when there is none. E.g.
 * `{ 'dativo.run-id': '…', 'dativo.cursor.orders': '…' }`.
 */
export function latestSummary(metadata: TableMetadata, prefix = 'dativo.'): Record<string, string> | undefined {
  const s = findDativoSnapshot(metadata);
  if (!s) return undefined;
  return Object.fromEntries(Object.entries(s.summary).filter(([k]) => k.startsWith(prefix)));
}

/** Totals carried by a snapshot summary. */
const TOTAL_KEYS = ['total-data-files', 'total-records', 'total-files-size', 'total-delete-files', 'total-position-deletes', 'total-equality-deletes'] as const;

/** What a commit adds, for {@link snapshotSummary}. */
export interface SummaryInput {
  operation: 'append' | 'overwrite';
  addedFiles: number;
  addedRecords: bigint;
  addedBytes: bigint;
  /** Partitions with files added or removed (spec: `changed-partition-count`). */
  changedPartitions: number;
  /**
   * What an overwrite removed, counted from the DELETED entries it wrote.
   * Default (an overwrite without it): the parent's totals.
   */
  removed?: { dataFiles: number; records: bigint; bytes: bigint; deleteFiles: number; positionDeletes: bigint; equalityDeletes: bigint };
  /** The parent snapshot's summary (undefined for the first snapshot). */
  parent: Record<string, string> | undefined;
  /** Caller keys (e.g. `dativo.run-id`, `dativo.cursor.<object>`); they cannot override Iceberg keys. */
  extra: Record<string, string>;
}

function parseTotal(parent: Record<string, string> | undefined, key: string): bigint | undefined {
  if (!parent) return 0n;
  const v = parent[key];
  return v !== undefined && /^\d+$/.test(v) ? BigInt(v) : undefined;
}

/**
 * Snapshot summary as PyIceberg computes it: `added-*`, `changed-partition-count`,
 * `total-*` = parent total + added − removed (a total is dropped when the
 * parent lacks it). An overwrite removes every live file of the parent: its
 * `deleted-data-files`/`deleted-records`/`removed-files-size` (and
 * `removed-delete-files`/`-position-deletes`/`-equality-deletes`) count the
 * DELETED entries it wrote (`removed`), and its totals are what it added.
 */
export function snapshotSummary(input: SummaryInput): Record<string, string> {
  const s: Record<string, string> = { ...input.extra };
  s.operation = input.operation;
  s['added-data-files'] = String(input.addedFiles);
  s['added-records'] = input.addedRecords.toString();
  s['added-files-size'] = input.addedBytes.toString();
  s['changed-partition-count'] = String(input.changedPartitions);
  const prev = Object.fromEntries(TOTAL_KEYS.map((k) => [k, parseTotal(input.parent, k)])) as Record<(typeof TOTAL_KEYS)[number], bigint | undefined>;
  const added = { 'total-data-files': BigInt(input.addedFiles), 'total-records': input.addedRecords, 'total-files-size': input.addedBytes };
  if (input.operation === 'overwrite' && input.parent) {
    const r = input.removed;
    const put = (key: string, v: bigint | number | undefined): void => {
      if (v !== undefined && BigInt(v) > 0n) s[key] = v.toString();
    };
    put('deleted-data-files', r ? r.dataFiles : prev['total-data-files']);
    put('deleted-records', r ? r.records : prev['total-records']);
    put('removed-files-size', r ? r.bytes : prev['total-files-size']);
    put('removed-delete-files', r ? r.deleteFiles : prev['total-delete-files']);
    put('removed-position-deletes', r ? r.positionDeletes : prev['total-position-deletes']);
    put('removed-equality-deletes', r ? r.equalityDeletes : prev['total-equality-deletes']);
    s['total-data-files'] = added['total-data-files'].toString();
    s['total-records'] = added['total-records'].toString();
    s['total-files-size'] = added['total-files-size'].toString();
    // An overwrite carries none of the parent's manifests, so its delete files are gone too.
    s['total-delete-files'] = '0';
    s['total-position-deletes'] = '0';
    s['total-equality-deletes'] = '0';
    return s;
  }
  for (const k of TOTAL_KEYS) {
    const p = prev[k];
    if (p === undefined) continue;
    const a = k in added ? added[k as keyof typeof added] : 0n;
    s[k] = (p + a).toString();
  }
  return s;
}

/** Asset/job values that become table properties (see {@link assetTableProperties}). */
export interface GovernanceOverrides {
  /** Job `classification_overrides`: column → class; key `default` sets the table default. */
  classification?: Record<string, string>;
  /** Job `finops` block, overriding the asset's. */
  finops?: Record<string, unknown>;
  /** Job `governance_overrides` (`retention_days`, `owner`). */
  governance?: Record<string, unknown>;
}

function str(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(String).join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/**
 * Table properties describing the asset, as the Python dativo wrote them:
 * `asset.name|version|domain|data_product|source_type|object`,
 * `classification.default` and `classification.fields.<col>` (lower-cased;
 * asset field < job override), `governance.retention_days|owner|domain|data_product|regulations`,
 * `finops.cost_center|business_tags|project|environment` (job overrides asset).
 * Lists are comma-joined; empty values are left out.
 */
export function assetTableProperties(asset: Asset, overrides: GovernanceOverrides = {}): Record<string, string> {
  const raw = asset.raw ?? {};
  const compliance = obj(raw.compliance);
  const team = obj(raw.team);
  const finops = { ...obj(raw.finops), ...(overrides.finops ?? {}) };
  const gov = overrides.governance ?? {};
  const out: Record<string, string | undefined> = {
    'asset.name': asset.name,
    'asset.version': asset.version,
    'asset.domain': asset.domain,
    'asset.data_product': asset.dataProduct,
    'asset.source_type': asset.sourceType ?? str(raw.source_type),
    'asset.object': asset.object ?? str(raw.object),
    'governance.retention_days': str(gov.retention_days ?? compliance.retention_days),
    'governance.owner': str(gov.owner ?? team.owner),
    'governance.domain': asset.domain,
    'governance.data_product': asset.dataProduct,
    'governance.regulations': str(compliance.regulations),
    'finops.cost_center': str(finops.cost_center),
    'finops.business_tags': str(finops.business_tags),
    'finops.project': str(finops.project),
    'finops.environment': str(finops.environment),
  };
  const classes = Array.isArray(compliance.classification) ? compliance.classification : [];
  const dflt = overrides.classification?.default ?? (classes.length > 0 ? String(classes[0]) : undefined);
  if (dflt) out['classification.default'] = dflt.toLowerCase();
  for (const f of asset.fields) {
    const c = overrides.classification?.[f.name] ?? f.classification;
    if (c) out[`classification.fields.${f.name}`] = c.toLowerCase();
  }
  for (const [k, v] of Object.entries(overrides.classification ?? {})) {
    if (k !== 'default' && v) out[`classification.fields.${k}`] = v.toLowerCase();
  }
  return Object.fromEntries(Object.entries(out).filter((e): e is [string, string] => e[1] !== undefined));
}

/** Throw unless the metadata is a v2 table we may write. */
export function checkWritable(metadata: TableMetadata, table: string): void {
  if (metadata['format-version'] !== 2) {
    throw new DativoError('CATALOG_INVALID', `table ${table} has format-version ${String(metadata['format-version'])}; dativo writes format-version 2 tables only`, {
      context: { table },
    });
  }
}
