/**
 * The Iceberg writer: create or evolve a table, then commit a run's data
 * files as one snapshot with optimistic concurrency (reference iceberg.md
 * A5, B4). Catalog-agnostic: it builds the new metadata and the REST-style
 * requirements/updates, and a {@link Catalog} stores and swaps.
 *
 * Idempotency: the snapshot id is drawn once per call and kept across
 * retries; before each attempt the table is checked for that id and for our
 * data files being live already (a lost response, or a crashed process of
 * the same run), so a file is never added twice.
 */
import { randomUUID } from 'node:crypto';
import { DativoError, isDativoError } from '../errors.js';
import { definePolicy, retry, RetryBudget, type RetryPolicy, type RetryRunOptions } from '../retry.js';
import type { Storage } from '../storage/types.js';
import type { AssetField, DataFile } from '../types.js';
import type { Catalog, CommitRequest, LoadedTable, TableIdent, TableMetadata, TableRequirement, TableUpdate } from './catalog.js';
import { asLong } from './json.js';
import {
  buildManifest,
  buildManifestList,
  buildMergedManifest,
  carriedEntries,
  deletedCopy,
  readManifestEntries,
  readManifestList,
  type CarriedEntry,
  type ManifestContext,
  type ManifestEntryInfo,
  type ManifestListEntry,
} from './manifest.js';
import {
  checkWritable,
  currentSnapshot,
  currentSnapshotId,
  newSnapshotId,
  newTableMetadata,
  RUN_ID_SUMMARY_KEY,
  snapshotsOf,
  snapshotSummary,
  type Snapshot,
  type SummaryInput,
} from './metadata.js';
import { bindSpec, defaultSpec } from './partition.js';
import { joinUri, metadataDir, normalizeUri, storageKey } from './paths.js';
import { currentSchema, planSchema, type IcebergSchema, type SchemaPlan } from './schema.js';

/** Display name `ns1.ns2.table`. */
export function identName(ident: TableIdent): string {
  return [...ident.namespace, ident.name].join('.');
}

/** Options of {@link ensureTable}. */
export interface EnsureTableOptions {
  /** Asset columns plus system columns (`_dativo_ingested_at`, `_dativo_run_id`), in order. */
  fields: AssetField[];
  /** Table location URI used when the table is created (an existing table keeps its own). */
  location: string;
  /** Properties of a new table (merged over the defaults). */
  properties?: Record<string, string>;
  /** Partitioning of a new table (`target.partitioning`; default `[ingest_date]`). */
  partitioning?: readonly string[];
  /** Attempts for the create / schema-change commit. Default 5. */
  maxAttempts?: number;
  signal?: AbortSignal;
}

/** Result of {@link ensureTable}. */
export interface EnsuredTable {
  table: LoadedTable;
  /** `fields` with `fieldId` remapped to the table's ids: stamp these into the Parquet files. */
  fields: AssetField[];
  /** The schema the files must be written under (the table's current schema). */
  schema: IcebergSchema;
  created: boolean;
  /** What evolution was committed by this call (empty lists when none). */
  evolution: Pick<SchemaPlan, 'added' | 'promoted' | 'relaxed' | 'absent'>;
}

export function now(metadata: TableMetadata): bigint {
  // Java rejects metadata whose last-updated-ms goes back more than a minute
  // behind its logs; never go back at all.
  let t = BigInt(Date.now());
  const prev = asLong(metadata['last-updated-ms']);
  if (prev !== undefined && prev > t) t = prev;
  for (const logKey of ['snapshot-log', 'metadata-log']) {
    const log = (metadata[logKey] ?? []) as Record<string, unknown>[];
    const last = asLong(log[log.length - 1]?.['timestamp-ms']);
    if (last !== undefined && last > t) t = last;
  }
  return t;
}

/**
 * Copy of `base.metadata` for the next version: new `last-updated-ms`, and the
 * base file appended to `metadata-log` (trimmed to
 * `write.metadata.previous-versions-max`, default 100).
 */
export function nextMetadata(base: LoadedTable, ts: bigint): TableMetadata {
  const md = structuredClone(base.metadata);
  const props = (md.properties ?? {}) as Record<string, string>;
  const max = Number(props['write.metadata.previous-versions-max'] ?? 100);
  const log = [...((md['metadata-log'] ?? []) as Record<string, unknown>[])];
  log.push({ 'metadata-file': base.metadataLocation, 'timestamp-ms': asLong(base.metadata['last-updated-ms']) ?? ts });
  md['metadata-log'] = log.slice(Math.max(0, log.length - max));
  md['last-updated-ms'] = ts;
  return md;
}

/** Updates, requirements and metadata changes that put `plan.schema` in place. */
function applySchema(md: TableMetadata, base: TableMetadata, plan: SchemaPlan, updates: TableUpdate[], reqs: TableRequirement[]): void {
  if (!plan.changed) return;
  reqs.push({ type: 'assert-current-schema-id', 'current-schema-id': base['current-schema-id'] });
  if (plan.isNewSchema) {
    reqs.push({ type: 'assert-last-assigned-field-id', 'last-assigned-field-id': base['last-column-id'] });
    updates.push({ action: 'add-schema', schema: plan.schema, 'last-column-id': plan.lastColumnId });
    updates.push({ action: 'set-current-schema', 'schema-id': -1 });
    md.schemas = [...((md.schemas ?? []) as IcebergSchema[]), plan.schema];
  } else {
    updates.push({ action: 'set-current-schema', 'schema-id': plan.schema['schema-id'] });
  }
  md['current-schema-id'] = plan.schema['schema-id'];
  md['last-column-id'] = Math.max(Number(md['last-column-id'] ?? 0), plan.lastColumnId);
}

/**
 * The commit retry policy from the table's properties, as Iceberg's Java
 * `SnapshotProducer` reads them: `commit.retry.min-wait-ms` (100),
 * `commit.retry.max-wait-ms` (60 000), `commit.retry.total-timeout-ms`
 * (1 800 000); doubling waits with +10 % jitter. `maxAttempts` is the
 * caller's (default 5).
 */
export function commitRetryPolicy(metadata: TableMetadata, maxAttempts: number): RetryPolicy {
  const props = (metadata.properties ?? {}) as Record<string, string>;
  const num = (key: string, dflt: number): number => {
    const v = Number(props[key]);
    return props[key] !== undefined && Number.isFinite(v) && v >= 0 ? v : dflt;
  };
  const minDelayMs = num('commit.retry.min-wait-ms', 100);
  return definePolicy({
    maxAttempts,
    minDelayMs,
    maxDelayMs: Math.max(minDelayMs, num('commit.retry.max-wait-ms', 60_000)),
    maxElapsedMs: Math.max(1, num('commit.retry.total-timeout-ms', 1_800_000)),
    factor: 2,
    jitter: 0.1,
  });
}

async function loadExisting(catalog: Catalog, ident: TableIdent): Promise<LoadedTable> {
  const t = await catalog.loadTable(ident);
  if (!t) throw new DativoError('SOURCE_NOT_FOUND', `table ${identName(ident)} does not exist (dropped while committing?)`, { context: { table: identName(ident) } });
  return t;
}

/**
 * Load the table, creating it (namespace included) when missing, and evolve
 * its schema to accept `fields` (see {@link planSchema}): a needed schema
 * change is committed right away, so the field ids returned are final before
 * any Parquet file is written. Throws SCHEMA_INCOMPATIBLE, CATALOG_INVALID
 * (not a v2 table), CATALOG_UNAVAILABLE.
 */
export async function ensureTable(catalog: Catalog, ident: TableIdent, opts: EnsureTableOptions): Promise<EnsuredTable> {
  const name = identName(ident);
  const maxAttempts = opts.maxAttempts ?? 5;
  await catalog.createNamespaceIfMissing(ident.namespace);
  const evolution = { added: [] as string[], promoted: [] as string[], relaxed: [] as string[], absent: [] as string[] };
  let lastError: unknown;
  // Waits follow the table's commit.retry.* properties, so the budget starts with the first metadata seen.
  let budget: RetryBudget | undefined;
  const budgetFor = (md: TableMetadata): RetryBudget => (budget ??= new RetryBudget(commitRetryPolicy(md, maxAttempts), retryRun(opts.signal)));
  for (;;) {
    opts.signal?.throwIfAborted();
    let table = await catalog.loadTable(ident);
    if (!table) {
      const fresh = newTableMetadata({
        location: opts.location,
        fields: opts.fields,
        ...(opts.properties ? { properties: opts.properties } : {}),
        ...(opts.partitioning ? { partitioning: opts.partitioning } : {}),
      });
      try {
        table = await catalog.createTable(ident, { location: fresh.metadata.location, metadata: fresh.metadata });
        const plan = planSchema(table.metadata, opts.fields);
        return { table, fields: plan.fields, schema: plan.schema, created: true, evolution };
      } catch (err) {
        if (isDativoError(err) && err.code === 'COMMIT_CONFLICT') {
          lastError = err;
          // Created concurrently: load it (no wait, but it counts as an attempt).
          const b = budgetFor(fresh.metadata);
          if (b.nextDelay() === undefined) break;
          b.attempts++;
          continue;
        }
        throw err;
      }
    }
    checkWritable(table.metadata, name);
    const plan = planSchema(table.metadata, opts.fields);
    evolution.absent = plan.absent;
    if (!plan.changed) return { table, fields: plan.fields, schema: plan.schema, created: false, evolution };
    const ts = now(table.metadata);
    const md = nextMetadata(table, ts);
    const updates: TableUpdate[] = [];
    const requirements: TableRequirement[] = [{ type: 'assert-table-uuid', uuid: table.metadata['table-uuid'] }];
    applySchema(md, table.metadata, plan, updates, requirements);
    try {
      const committed = await catalog.commit(table, { requirements, updates, newMetadata: md });
      evolution.added.push(...plan.added);
      evolution.promoted.push(...plan.promoted);
      evolution.relaxed.push(...plan.relaxed);
      const after = planSchema(committed.metadata, opts.fields);
      return { table: committed, fields: after.fields, schema: after.schema, created: false, evolution };
    } catch (err) {
      // Conflict or unknown outcome: re-plan against a fresh load (an
      // evolution that did land makes the next plan a no-op).
      if (isDativoError(err) && (err.code === 'COMMIT_CONFLICT' || err.code === 'CATALOG_UNAVAILABLE')) {
        lastError = err;
        if (await budgetFor(table.metadata).backoff()) continue;
        break;
      }
      throw err;
    }
  }
  throw new DativoError('COMMIT_CONFLICT', `could not create or evolve table ${name} after ${maxAttempts} attempts`, {
    cause: lastError,
    context: { table: name },
  });
}

/** Options of {@link commitFiles}. */
export interface CommitFilesOptions {
  /** Durable Parquet files of this run (may be empty: the snapshot then only records the summary). */
  files: DataFile[];
  /** `append` keeps the table's files; `overwrite` replaces all of them (full refresh). */
  mode: 'append' | 'overwrite';
  /** Extra summary keys, e.g. `dativo.run-id` (used for reconciliation) and `dativo.cursor.<object>`. */
  summary: Record<string, string>;
  /**
   * More summary keys computed from the table as loaded for each attempt
   * (a retry after a conflict sees the winner's metadata), e.g. carrying
   * forward other objects' `dativo.cursor.*` keys. `summary` wins on a clash.
   * Default: none.
   */
  summaryFrom?: (metadata: TableMetadata) => Record<string, string>;
  /**
   * Compare-and-set hook, called on the metadata of every attempt (after the
   * check for an already-landed commit, before anything is written for the
   * attempt). Throwing stops the commit: nothing of this call stays in the
   * table, the manifests it wrote are removed, and the error is rethrown with
   * `context.committed = false`. Because the swap asserts `main` is still the
   * snapshot this metadata shows, the check and the swap are one atomic step.
   */
  precondition?: (metadata: TableMetadata) => void;
  /** The columns the files were written with (asset + system columns; field ids as returned by {@link ensureTable}). */
  fields: AssetField[];
  /** Location for a table that does not exist yet. */
  location: string;
  /** Storage of the warehouse: manifests and manifest lists are written through it. */
  storage: Storage;
  /** Table properties: used on create, and set in the commit when the table's values differ. */
  properties?: Record<string, string>;
  /** Partitioning of a table created by this call (see {@link EnsureTableOptions}). */
  partitioning?: readonly string[];
  /** Commit attempts on conflict. Default 5. */
  maxAttempts?: number;
  /**
   * Snapshot id to use (positive, < 2^63), e.g. one the caller persisted to
   * recognise its commit later. Default: a random id as Java draws it.
   */
  snapshotId?: bigint;
  signal?: AbortSignal;
}

/** Result of {@link commitFiles}. */
export interface CommitResult {
  snapshotId: bigint;
  /**
   * Sequence number of the snapshot. 0 only when an already-landed commit was
   * recognised by its files after the catalog stopped listing its snapshot
   * and its manifest had been merged (the number is then not recoverable).
   */
  sequenceNumber: bigint;
  metadataLocation: string;
  /** True when the commit had already landed (lost response, or an earlier process of the same run). */
  alreadyCommitted: boolean;
  /** Commit attempts made by this call (1 when the first swap won). */
  attempts: number;
}

/** Reads manifests once per process: manifest files are immutable. */
export class ManifestCache {
  private readonly lists = new Map<string, ManifestListEntry[]>();
  private readonly manifests = new Map<string, ManifestEntryInfo[]>();
  constructor(private readonly storage: Storage) {}

  async list(uri: string): Promise<ManifestListEntry[]> {
    let rows = this.lists.get(uri);
    if (!rows) {
      rows = readManifestList(await this.storage.read(storageKey(this.storage, uri)), uri);
      this.lists.set(uri, rows);
    }
    return rows;
  }

  async entries(row: ManifestListEntry): Promise<ManifestEntryInfo[]> {
    let e = this.manifests.get(row.manifest_path);
    if (!e) {
      e = readManifestEntries(await this.storage.read(storageKey(this.storage, row.manifest_path)), row, row.manifest_path);
      this.manifests.set(row.manifest_path, e);
    }
    return e;
  }
}

/** Where a live data file of ours sits: the snapshot that added it and, when known, that snapshot's sequence number. */
interface LiveFile {
  snapshotId: bigint;
  /** The manifest's sequence number for an ADDED entry; undefined for EXISTING entries (merged manifests). */
  sequenceNumber: bigint | undefined;
}

/**
 * Which of `ours` are live (ADDED/EXISTING data entries) in the current
 * snapshot, mapped to the snapshot that added each.
 */
async function liveFiles(metadata: TableMetadata, ours: Set<string>, mayHold: (row: ManifestListEntry) => boolean, cache: ManifestCache): Promise<Map<string, LiveFile>> {
  const found = new Map<string, LiveFile>();
  const snap = currentSnapshot(metadata);
  if (!snap || ours.size === 0) return found;
  for (const row of await cache.list(snap['manifest-list'])) {
    if (row.content !== 0 || !mayHold(row)) continue;
    for (const e of await cache.entries(row)) {
      if (e.status === 2 || e.content !== 0) continue;
      const p = normalizeUri(e.filePath);
      if (!ours.has(p)) continue;
      const added = e.status === 1 && e.snapshotId === row.added_snapshot_id;
      found.set(p, { snapshotId: e.snapshotId, sequenceNumber: added ? row.sequence_number : undefined });
    }
  }
  return found;
}

/** Decode a partition summary bound of an int-like result type; undefined when not comparable here. */
function boundValue(type: unknown, b: Buffer | null): bigint | undefined {
  if (!b) return undefined;
  if ((type === 'date' || type === 'int') && b.length === 4) return BigInt(b.readInt32LE(0));
  if ((type === 'long' || type === 'timestamp' || type === 'timestamptz') && b.length === 8) return b.readBigInt64LE(0);
  return undefined;
}

/**
 * A cheap, sound pre-filter for the duplicate check: a manifest of the same
 * spec whose partition summary ranges exclude every one of our files cannot
 * hold them (e.g. earlier days of a day-partitioned table), so it is not
 * read. Anything we cannot decide is read.
 */
function manifestFilter(metadata: TableMetadata, files: DataFile[]): (row: ManifestListEntry) => boolean {
  let bound: ReturnType<typeof bindSpec>;
  let specId: number;
  try {
    const spec = defaultSpec(metadata);
    specId = spec['spec-id'];
    bound = bindSpec(spec, currentSchema(metadata));
  } catch {
    return () => true;
  }
  const values = bound.map((p) => {
    try {
      return files.map((f) => p.valueOf(f));
    } catch {
      return undefined;
    }
  });
  return (row) => {
    if (row.partition_spec_id !== specId || !row.partitions || row.partitions.length !== bound.length) return true;
    for (let i = 0; i < bound.length; i++) {
      const vals = values[i];
      const summary = row.partitions[i]!;
      if (vals === undefined) continue;
      const lo = boundValue(bound[i]!.resultType, summary.lower_bound);
      const hi = boundValue(bound[i]!.resultType, summary.upper_bound);
      if (lo === undefined || hi === undefined) continue;
      const inRange = vals.some((v) => {
        if (v === null || v === undefined) return summary.contains_null;
        if (typeof v !== 'number' && typeof v !== 'bigint') return true;
        const n = BigInt(v);
        return n >= lo && n <= hi;
      });
      if (!inRange) return false;
    }
    return true;
  };
}

/** A commit found in the table: its snapshot id and sequence number (0 when the table no longer tells). */
interface Landed {
  snapshotId: bigint;
  sequenceNumber: bigint;
}

/**
 * If this commit is already in the table, where it landed: our snapshot id is
 * present, or every one of our files is live and was added by one snapshot
 * that is either ours (by id) or carries our `dativo.run-id`. Nessie-style
 * catalogs list only the current snapshot, so after another writer's commit
 * the adding snapshot may be absent from the metadata: then "every file live,
 * added by our snapshot id" still proves it, and so does "every file live,
 * added by one snapshot the metadata no longer lists" (our data file names
 * are unique to this run, so only an earlier attempt of it can have added
 * them all). Some but not all of our files live, or live under a listed
 * snapshot of another run → CATALOG_INVALID (never add a file twice).
 */
async function findLanded(
  metadata: TableMetadata,
  snapshotId: bigint,
  runId: string | undefined,
  ours: Set<string>,
  mayHold: (row: ManifestListEntry) => boolean,
  cache: ManifestCache,
  table: string,
): Promise<Landed | undefined> {
  const snaps = snapshotsOf(metadata);
  const mine = snaps.find((s) => asLong(s['snapshot-id']) === snapshotId);
  if (mine) return landedOf(mine);
  const live = await liveFiles(metadata, ours, mayHold, cache);
  if (live.size === 0) return undefined;
  const adders = new Set([...live.values()].map((l) => l.snapshotId));
  if (live.size === ours.size && adders.size === 1) {
    const adderId = [...adders][0]!;
    const adder = snaps.find((s) => asLong(s['snapshot-id']) === adderId);
    const seq = [...live.values()].find((l) => l.sequenceNumber !== undefined)?.sequenceNumber ?? 0n;
    if (adder && runId !== undefined && adder.summary?.[RUN_ID_SUMMARY_KEY] === runId) return landedOf(adder);
    if (adderId === snapshotId || !adder) return { snapshotId: adderId, sequenceNumber: seq };
  }
  throw new DativoError(
    'CATALOG_INVALID',
    `${live.size} of the ${ours.size} data files of this commit are already live in table ${table} (added by snapshot ${[...adders].join(', ')}); refusing to add them twice`,
    { context: { table, files: [...live.keys()].slice(0, 10), snapshotId: [...adders].join(',') } },
  );
}

function landedOf(snap: Snapshot): Landed {
  return { snapshotId: asLong(snap['snapshot-id'])!, sequenceNumber: asLong(snap['sequence-number']) ?? 0n };
}

/** Check that each file's column field ids are the table's ids for those names. */
function checkFieldIds(files: DataFile[], schema: IcebergSchema, table: string): void {
  const ids = new Map(schema.fields.map((f) => [f.name, f.id]));
  const bad: string[] = [];
  for (const f of files) {
    for (const [name, stats] of Object.entries(f.columns)) {
      const id = ids.get(name);
      if (id !== undefined && stats.fieldId !== id) bad.push(`${name} (file id ${stats.fieldId}, table id ${id})`);
    }
  }
  if (bad.length > 0) {
    throw new DativoError('SCHEMA_INCOMPATIBLE', `data files were written with field ids that table ${table} no longer uses: ${[...new Set(bad)].join(', ')}`, {
      context: { table, columns: [...new Set(bad)] },
    });
  }
}

/**
 * Commit `files` as one snapshot on `main` (see module doc). Per attempt:
 * load the table; return early if the commit already landed; plan the schema
 * (a compatible evolution is committed together with the snapshot); build the
 * manifest list (append: our manifest first, then every manifest of the
 * current snapshot that still has live files, merged at the threshold;
 * overwrite: ours, then one manifest per live manifest of the current
 * snapshot recording its files as DELETED), the snapshot and the new metadata;
 * commit with `assert-table-uuid` + `assert-ref-snapshot-id main`. COMMIT_CONFLICT →
 * backoff and retry on the new head; CATALOG_UNAVAILABLE → reload and check
 * whether the commit landed, by snapshot id or by our files being live (see
 * findLanded; success with `alreadyCommitted`), retry if it did not, rethrow
 * if the table cannot be read.
 */
export async function commitFiles(catalog: Catalog, ident: TableIdent, opts: CommitFilesOptions): Promise<CommitResult> {
  const name = identName(ident);
  const maxAttempts = opts.maxAttempts ?? 5;
  const runId = opts.summary[RUN_ID_SUMMARY_KEY];
  const storage = opts.storage;
  const cache = new ManifestCache(storage);
  const ours = new Set(opts.files.map((f) => normalizeUri(f.uri)));
  if (ours.size !== opts.files.length) {
    throw new DativoError('INTERNAL', `the same data file is listed twice in one commit to ${name}`, { context: { table: name } });
  }

  const ensured = await ensureTable(catalog, ident, {
    fields: opts.fields,
    location: opts.location,
    ...(opts.properties ? { properties: opts.properties } : {}),
    ...(opts.partitioning ? { partitioning: opts.partitioning } : {}),
    maxAttempts,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  let base = ensured.table;
  const snapshotId = opts.snapshotId ?? newSnapshotId(snapshotsOf(base.metadata).map((s) => asLong(s['snapshot-id'])!));
  if (snapshotId <= 0n || snapshotId > 0x7fffffffffffffffn) {
    throw new DativoError('INTERNAL', `snapshot id ${snapshotId} is not a positive 63-bit value`, { context: { table: name } });
  }
  const commitUuid = randomUUID();
  let manifest: { specId: number; row: Omit<ManifestListEntry, 'sequence_number' | 'min_sequence_number'>; partitionKeys: Set<string>; key: string } | undefined;
  /** Manifests this call wrote: storage key → URI. */
  const written = new Map<string, string>();
  let merged: { sources: string; used: Set<string>; row: Omit<ManifestListEntry, 'sequence_number'> } | undefined;
  /** An overwrite's DELETED manifests, for the parent they were built against. */
  let deleted: { parentList: string; rows: Omit<ManifestListEntry, 'sequence_number'>[]; removed: Removed } | undefined;
  const lists: string[] = [];
  let lastError: unknown;
  // After an unknown outcome a late write could still land: never delete then.
  let uncertain = false;

  const landedResult = (landed: Landed, table: LoadedTable, attempts: number): CommitResult => ({
    snapshotId: landed.snapshotId,
    sequenceNumber: landed.sequenceNumber,
    metadataLocation: table.metadataLocation,
    alreadyCommitted: true,
    attempts,
  });

  const budget = new RetryBudget(commitRetryPolicy(base.metadata, maxAttempts), retryRun(opts.signal));
  for (;;) {
    const attempt = budget.attempts;
    opts.signal?.throwIfAborted();
    if (attempt > 1) base = await loadExisting(catalog, ident);
    const md0 = base.metadata;
    checkWritable(md0, name);
    const landed = await findLanded(md0, snapshotId, runId, ours, manifestFilter(md0, opts.files), cache, name);
    if (landed) return landedResult(landed, base, attempt - 1);
    if (opts.precondition) {
      try {
        opts.precondition(md0);
      } catch (err) {
        if (!uncertain) await removeQuietly(storage, [...lists, ...written.keys()]);
        if (isDativoError(err)) {
          err.context.committed = uncertain ? 'unknown' : false;
          err.context.table ??= name;
        }
        throw err;
      }
    }

    const plan = planSchema(md0, opts.fields);
    checkFieldIds(opts.files, plan.schema, name);
    const spec = defaultSpec(md0);
    const location = String(md0.location);
    const metaDir = metadataDir(location, md0.properties as Record<string, string> | undefined);

    if (opts.files.length > 0 && (!manifest || manifest.specId !== spec['spec-id'])) {
      const built = buildManifest(opts.files, { schema: plan.schema, spec, partition: bindSpec(spec, plan.schema), snapshotId });
      const uri = joinUri(metaDir, `${commitUuid}-m${written.size}.avro`);
      const key = storageKey(storage, uri);
      await storage.writeAtomic(key, built.bytes, { contentType: 'application/octet-stream' });
      written.set(key, uri);
      manifest = {
        specId: spec['spec-id'],
        key,
        partitionKeys: built.partitionKeys,
        row: {
          manifest_path: uri,
          manifest_length: BigInt(built.bytes.length),
          partition_spec_id: spec['spec-id'],
          content: 0,
          added_snapshot_id: snapshotId,
          added_files_count: built.addedFiles,
          existing_files_count: 0,
          deleted_files_count: 0,
          added_rows_count: built.addedRows,
          existing_rows_count: 0n,
          deleted_rows_count: 0n,
          partitions: built.partitions,
          key_metadata: null,
        },
      };
    }

    const parent = currentSnapshot(md0);
    const parentId = currentSnapshotId(md0);
    const seq = (asLong(md0['last-sequence-number']) ?? 0n) + 1n;
    const rows: ManifestListEntry[] = [];
    if (manifest) rows.push({ ...manifest.row, sequence_number: seq, min_sequence_number: seq });
    // Manifests left with only DELETED entries (an overwrite's) are not carried.
    const parentRows = parent ? (await cache.list(parent['manifest-list'])).filter(hasLiveFiles) : [];
    if (opts.mode === 'append' && parent) {
      let carried = parentRows;
      const mergeable = carried.filter((r) => r.content === 0 && r.partition_spec_id === spec['spec-id']);
      if (shouldMerge(md0, carried.length + rows.length) && mergeable.length >= 2) {
        const sources = mergeable.map((r) => r.manifest_path).join('\n');
        if (merged?.sources !== sources) {
          merged = undefined;
          const m = await mergeManifests(mergeable, { schema: plan.schema, spec, partition: bindSpec(spec, plan.schema) }, storage, snapshotId, joinUri(metaDir, `${commitUuid}-m${written.size}.avro`));
          if (m) {
            written.set(m.key, m.row.manifest_path);
            merged = { sources, used: new Set(m.used), row: m.row };
          }
        }
        if (merged) {
          // Only the manifests the merge rewrote are replaced; any it could not read stay as they are.
          const replaced = merged.used;
          carried = [{ ...merged.row, sequence_number: seq }, ...carried.filter((r) => !replaced.has(r.manifest_path))];
        }
      }
      rows.push(...carried);
    }
    let removed: Removed | undefined;
    if (opts.mode === 'overwrite' && parent) {
      if (deleted?.parentList !== parent['manifest-list']) {
        deleted = { parentList: parent['manifest-list'], ...(await deleteManifests(parentRows, storage, snapshotId, (i) => joinUri(metaDir, `${commitUuid}-d${written.size}-${i}.avro`), written)) };
      }
      rows.push(...deleted.rows.map((r) => ({ ...r, sequence_number: seq })));
      removed = deleted.removed;
    }
    const listUri = joinUri(metaDir, `snap-${snapshotId}-${attempt}-${commitUuid}.avro`);
    const listKey = storageKey(storage, listUri);
    await storage.writeAtomic(listKey, buildManifestList(rows, { snapshotId, parentSnapshotId: parentId, sequenceNumber: seq }), {
      contentType: 'application/octet-stream',
    });
    lists.push(listKey);

    const ts = now(md0);
    const summary = snapshotSummary({
      operation: opts.mode,
      addedFiles: opts.files.length,
      addedRecords: opts.files.reduce((s, f) => s + BigInt(f.recordCount), 0n),
      addedBytes: opts.files.reduce((s, f) => s + BigInt(f.fileSizeBytes), 0n),
      changedPartitions: new Set([...(manifest?.partitionKeys ?? []), ...(removed?.partitionKeys ?? [])]).size,
      ...(removed ? { removed } : {}),
      parent: parent?.summary,
      extra: { ...(opts.summaryFrom?.(md0) ?? {}), ...opts.summary },
    });
    const snapshot: Snapshot = {
      'snapshot-id': snapshotId,
      ...(parentId !== null ? { 'parent-snapshot-id': parentId } : {}),
      'sequence-number': seq,
      'timestamp-ms': ts,
      'manifest-list': listUri,
      summary,
      'schema-id': plan.schema['schema-id'],
    };

    const md = nextMetadata(base, ts);
    const updates: TableUpdate[] = [];
    const requirements: TableRequirement[] = [
      { type: 'assert-table-uuid', uuid: md0['table-uuid'] },
      { type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': parentId },
    ];
    applySchema(md, md0, plan, updates, requirements);
    const props = (md0.properties ?? {}) as Record<string, string>;
    const changedProps = Object.fromEntries(Object.entries(opts.properties ?? {}).filter(([k, v]) => props[k] !== v));
    if (Object.keys(changedProps).length > 0) {
      updates.push({ action: 'set-properties', updates: changedProps });
      md.properties = { ...props, ...changedProps };
    }
    updates.push({ action: 'add-snapshot', snapshot });
    updates.push({ action: 'set-snapshot-ref', 'ref-name': 'main', type: 'branch', 'snapshot-id': snapshotId });
    md.snapshots = [...snapshotsOf(md0), snapshot];
    md['last-sequence-number'] = seq;
    md['current-snapshot-id'] = snapshotId;
    md.refs = { ...((md0.refs ?? {}) as Record<string, unknown>), main: { 'snapshot-id': snapshotId, type: 'branch' } };
    md['snapshot-log'] = [...((md0['snapshot-log'] ?? []) as unknown[]), { 'snapshot-id': snapshotId, 'timestamp-ms': ts }];

    const change: CommitRequest = { requirements, updates, newMetadata: md };
    try {
      const committed = await catalog.commit(base, change);
      const live = new Set(rows.map((r) => r.manifest_path));
      await removeQuietly(storage, [...lists.slice(0, -1), ...[...written].filter(([, uri]) => !live.has(uri)).map(([key]) => key)]);
      return { snapshotId, sequenceNumber: seq, metadataLocation: committed.metadataLocation, alreadyCommitted: false, attempts: attempt };
    } catch (err) {
      if (!isDativoError(err)) throw err;
      if (err.code === 'COMMIT_CONFLICT') {
        lastError = err;
        if (await budget.backoff()) continue;
        break;
      }
      if (err.code === 'CATALOG_UNAVAILABLE') {
        // Unknown outcome: look before retrying; delete nothing.
        const check = await statusCheck(catalog, ident, budget.policy, opts.signal);
        if (check === 'unreachable') throw err;
        // By snapshot id, or by our files (Nessie may already show another writer's snapshot instead of ours).
        const landed = await findLanded(check.metadata, snapshotId, runId, ours, manifestFilter(check.metadata, opts.files), cache, name);
        if (landed) return landedResult(landed, check, attempt);
        uncertain = true;
        lastError = err;
        if (await budget.backoff()) continue;
        break;
      }
      throw err;
    }
  }
  // Definitely not committed: what this call wrote is garbage.
  if (!uncertain) await removeQuietly(storage, [...lists, ...written.keys()]);
  const reason = lastError instanceof Error ? lastError.message : 'conflicts';
  const code = isDativoError(lastError) && lastError.code === 'CATALOG_UNAVAILABLE' ? 'CATALOG_UNAVAILABLE' : 'COMMIT_CONFLICT';
  const spent = budget.exhausted === 'time' ? `${budget.attempts} attempts (commit.retry.total-timeout-ms reached)` : `${budget.attempts} attempts`;
  throw new DativoError(code, `could not commit to table ${name} after ${spent}: ${reason}`, {
    cause: lastError,
    context: { table: name, snapshotId: snapshotId.toString(), committed: uncertain ? 'unknown' : false },
  });
}

/**
 * Reload (up to 3 tries, waiting as the commit policy's third retry and on)
 * after an unknown commit outcome; 'unreachable' when the catalog stays down.
 */
async function statusCheck(catalog: Catalog, ident: TableIdent, policy: RetryPolicy, signal: AbortSignal | undefined): Promise<'unreachable' | LoadedTable> {
  const checks = definePolicy({ maxAttempts: 3, minDelayMs: policy.minDelayMs * policy.factor ** 2 }, policy);
  try {
    return await retry(() => loadExisting(catalog, ident), checks, {
      ...retryRun(signal),
      classify: (err) => ({ retry: isDativoError(err) && err.code === 'CATALOG_UNAVAILABLE', reason: 'catalog unavailable' }),
    });
  } catch (err) {
    if (isDativoError(err) && err.code === 'CATALOG_UNAVAILABLE') return 'unreachable';
    throw err;
  }
}

function retryRun(signal: AbortSignal | undefined): RetryRunOptions {
  return signal ? { signal } : {};
}

/**
 * Whether an append should merge the carried manifests (Java's MergeAppend
 * defaults): `commit.manifest-merge.enabled` (default true) and at least
 * `commit.manifest.min-count-to-merge` (default 100) manifests. Without it
 * every run adds one manifest forever, and query planning slows down.
 */
function shouldMerge(metadata: TableMetadata, manifests: number): boolean {
  const props = (metadata.properties ?? {}) as Record<string, string>;
  if ((props['commit.manifest-merge.enabled'] ?? 'true').toLowerCase() === 'false') return false;
  return manifests >= Number(props['commit.manifest.min-count-to-merge'] ?? 100);
}

/**
 * Rewrite the live entries of `rows` into one manifest of EXISTING entries
 * at `uri`. Manifests of another writer's Avro layout are read by field id
 * and re-encoded in ours; one that cannot be without loss is left out, and
 * `used` lists the manifests merged (only those may leave the list).
 * Undefined when fewer than two can be merged.
 */
async function mergeManifests(
  rows: ManifestListEntry[],
  ctx: Omit<ManifestContext, 'snapshotId'>,
  storage: Storage,
  snapshotId: bigint,
  uri: string,
): Promise<{ key: string; used: string[]; row: Omit<ManifestListEntry, 'sequence_number'> } | undefined> {
  const entries: CarriedEntry[] = [];
  const used: string[] = [];
  for (const row of rows) {
    const e = carriedEntries(await storage.read(storageKey(storage, row.manifest_path)), row, ctx.partition, row.manifest_path);
    if (!e) continue;
    entries.push(...e);
    used.push(row.manifest_path);
  }
  if (used.length < 2) return undefined;
  const built = buildMergedManifest(entries, ctx);
  const key = storageKey(storage, uri);
  await storage.writeAtomic(key, built.bytes, { contentType: 'application/octet-stream' });
  return {
    key,
    used,
    row: {
      manifest_path: uri,
      manifest_length: BigInt(built.bytes.length),
      partition_spec_id: ctx.spec['spec-id'],
      content: 0,
      min_sequence_number: built.minSequenceNumber,
      added_snapshot_id: snapshotId,
      added_files_count: 0,
      existing_files_count: built.files,
      deleted_files_count: 0,
      added_rows_count: 0n,
      existing_rows_count: built.rows,
      deleted_rows_count: 0n,
      partitions: built.partitions,
      key_metadata: null,
    },
  };
}

/** False for a manifest that holds only DELETED entries (by its list row counts). */
function hasLiveFiles(row: ManifestListEntry): boolean {
  return row.added_files_count + row.existing_files_count > 0 || row.deleted_files_count === 0;
}

/** What an overwrite removed (summary `deleted-*`/`removed-*` keys and changed partitions). */
export type Removed = NonNullable<SummaryInput['removed']> & { partitionKeys: Set<string> };

/**
 * For an overwrite: one manifest per live manifest of the parent recording
 * each of its live files as DELETED (see {@link deletedCopy}), written
 * through `storage` and registered in `written`; their list rows (sequence
 * number to be set by the caller) and what they removed.
 */
async function deleteManifests(
  parentRows: ManifestListEntry[],
  storage: Storage,
  snapshotId: bigint,
  uriOf: (i: number) => string,
  written: Map<string, string>,
): Promise<{ rows: Omit<ManifestListEntry, 'sequence_number'>[]; removed: Removed }> {
  const rows: Omit<ManifestListEntry, 'sequence_number'>[] = [];
  const removed: Removed = { dataFiles: 0, records: 0n, bytes: 0n, deleteFiles: 0, positionDeletes: 0n, equalityDeletes: 0n, partitionKeys: new Set() };
  for (const [i, row] of parentRows.entries()) {
    const d = deletedCopy(await storage.read(storageKey(storage, row.manifest_path)), row, snapshotId, row.manifest_path);
    if (!d) continue;
    const uri = uriOf(i);
    const key = storageKey(storage, uri);
    await storage.writeAtomic(key, d.bytes, { contentType: 'application/octet-stream' });
    written.set(key, uri);
    rows.push({
      manifest_path: uri,
      manifest_length: BigInt(d.bytes.length),
      partition_spec_id: row.partition_spec_id,
      content: row.content,
      min_sequence_number: d.minSequenceNumber,
      added_snapshot_id: snapshotId,
      added_files_count: 0,
      existing_files_count: 0,
      deleted_files_count: d.files,
      added_rows_count: 0n,
      existing_rows_count: 0n,
      deleted_rows_count: d.records,
      // The source's summaries bound a superset of these files: still valid bounds.
      partitions: row.partitions,
      key_metadata: null,
    });
    for (const k of d.partitionKeys) removed.partitionKeys.add(k);
    for (const [content, c] of d.byContent) {
      if (content === 0) {
        removed.dataFiles += c.files;
        removed.records += c.records;
        removed.bytes += c.bytes;
      } else {
        removed.deleteFiles += c.files;
        if (content === 1) removed.positionDeletes += c.records;
        else removed.equalityDeletes += c.records;
      }
    }
  }
  return { rows, removed };
}

async function removeQuietly(storage: Storage, keys: string[]): Promise<void> {
  for (const k of keys) {
    try {
      await storage.delete(k);
    } catch {
      // An orphan file is harmless; failing a successful commit over it is not.
    }
  }
}
