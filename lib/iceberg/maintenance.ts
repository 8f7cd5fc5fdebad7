/**
 * Table maintenance: which files a table still reaches, the live data files
 * of its current snapshot, orphan files (under the table's `data/` and
 * `metadata/` but reached by no snapshot and no metadata file), snapshot
 * expiry through the catalog's atomic commit, and the per-run markers that
 * let a run remove what an earlier, killed run of the same job left behind.
 *
 * Safety rules (reference iceberg.md B2 #5, #9): a file any snapshot reaches
 * is never deleted; paths are compared as normalised URIs; deletion waits
 * for an age threshold longer than any write; files are deleted only after
 * an expiry commit definitely landed.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { DativoError, isDativoError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Storage, StoredObject } from '../storage/types.js';
import type { Catalog, LoadedTable, TableIdent, TableMetadata } from './catalog.js';
import { ancestry, currentSnapshot, currentSnapshotId, snapshotsOf, type Snapshot } from './metadata.js';
import { baseName, joinUri, metadataDir, storageKey } from './paths.js';
import { identName, ManifestCache, nextMetadata, now } from './table.js';
import { asLong } from './json.js';

/** Storage key of `uri`, or undefined when it lies outside the warehouse (not ours to manage). */
function keyOf(storage: Storage, uri: string): string | undefined {
  try {
    return storageKey(storage, uri);
  } catch {
    return undefined;
  }
}

/**
 * Storage keys of every file `snapshots` reach: their manifest lists, the
 * manifests those list, and every file a manifest holds as ADDED or
 * EXISTING (data and delete files). A DELETED entry keeps nothing: the
 * snapshots where that file was live reach it themselves.
 */
export async function reachableFiles(storage: Storage, snapshots: Snapshot[], reader = new ManifestCache(storage)): Promise<Set<string>> {
  const out = new Set<string>();
  const add = (uri: string): void => {
    const k = keyOf(storage, uri);
    if (k !== undefined) out.add(k);
  };
  const seenManifests = new Set<string>();
  for (const s of snapshots) {
    add(s['manifest-list']);
    for (const row of await reader.list(s['manifest-list'])) {
      add(row.manifest_path);
      if (seenManifests.has(row.manifest_path)) continue;
      seenManifests.add(row.manifest_path);
      for (const e of await reader.entries(row)) if (e.status !== 2) add(e.filePath);
    }
  }
  return out;
}

/**
 * Refuse maintenance on a catalog whose table metadata does not show the
 * table's history: Nessie serves only the current snapshot of a branch, and
 * older commits and other branches reference files this view cannot see,
 * so "reached by no snapshot" would not mean unreferenced (CATALOG_INVALID;
 * Nessie has its own garbage collector).
 */
export function assertFullHistory(catalog: Catalog, table: string): void {
  const config = (catalog as Partial<{ config: Readonly<Record<string, string>> }>).config;
  if (config?.['nessie.is-nessie-catalog'] === 'true') {
    throw new DativoError(
      'CATALOG_INVALID',
      `catalog ${catalog.name} is Nessie, which shows only the current snapshot of table ${table}: files its other commits and branches use cannot be seen, so dativo does not remove orphans or expire snapshots there (use Nessie's GC)`,
      { context: { table } },
    );
  }
}

/** A live data file of the current snapshot. */
export interface LiveDataFile {
  uri: string;
  recordCount: bigint;
  fileSizeBytes: bigint;
}

/** The data files (content 0, not DELETED) of the current snapshot, in manifest order. Empty for a table without snapshots. */
export async function liveDataFiles(storage: Storage, metadata: TableMetadata): Promise<LiveDataFile[]> {
  const snap = currentSnapshot(metadata);
  if (!snap) return [];
  const reader = new ManifestCache(storage);
  const out: LiveDataFile[] = [];
  for (const row of await reader.list(snap['manifest-list'])) {
    if (row.content !== 0) continue;
    for (const e of await reader.entries(row)) {
      if (e.status !== 2 && e.content === 0) out.push({ uri: e.filePath, recordCount: e.recordCount, fileSizeBytes: e.fileSizeBytes });
    }
  }
  return out;
}

/** Metadata files the table itself points at: the current one, its `metadata-log`, statistics files, `version-hint.text`. */
function metadataFilesOf(storage: Storage, table: LoadedTable): Set<string> {
  const md = table.metadata;
  const out = new Set<string>();
  const add = (uri: unknown): void => {
    if (typeof uri !== 'string') return;
    const k = keyOf(storage, uri);
    if (k !== undefined) out.add(k);
  };
  add(table.metadataLocation);
  for (const e of (md['metadata-log'] ?? []) as Record<string, unknown>[]) add(e['metadata-file']);
  for (const key of ['statistics', 'partition-statistics']) for (const e of (md[key] ?? []) as Record<string, unknown>[]) add(e['statistics-path']);
  add(joinUri(metaDirOf(md), 'version-hint.text'));
  return out;
}

function metaDirOf(md: TableMetadata): string {
  return metadataDir(String(md.location), md.properties as Record<string, string> | undefined);
}

/** `write.data.path` or `<location>/data`. */
function dataDirOf(md: TableMetadata): string {
  const custom = (md.properties as Record<string, string> | undefined)?.['write.data.path'];
  return custom ? custom.replace(/\/+$/, '') : joinUri(String(md.location), 'data');
}

/** Options of {@link findOrphans}. */
export interface OrphanOptions {
  /** Only files last modified longer ago than this are orphans (in-flight writes are younger). */
  olderThanMs: number;
  /** Clock (tests). */
  now?: Date;
  /** Data files of these runs are never orphans (runs in flight, see {@link runsInFlight}). */
  inFlightRunIds?: ReadonlySet<string>;
}

/**
 * Files under the table's data and metadata folders (local temp files of
 * unfinished writes included) that no snapshot and no metadata file
 * reaches, older than `olderThanMs`, and not written by a run in flight.
 */
export async function findOrphans(storage: Storage, table: LoadedTable, opts: OrphanOptions): Promise<StoredObject[]> {
  const md = table.metadata;
  const keep = await reachableFiles(storage, snapshotsOf(md));
  for (const k of metadataFilesOf(storage, table)) keep.add(k);
  const cutoff = (opts.now ?? new Date()).getTime() - opts.olderThanMs;
  const inFlight = [...(opts.inFlightRunIds ?? [])].flatMap((id) => runFilePrefixes(id));
  const out: StoredObject[] = [];
  const seen = new Set<string>();
  for (const dirUri of [dataDirOf(md), metaDirOf(md)]) {
    const dir = keyOf(storage, dirUri);
    if (dir === undefined) continue;
    for (const o of await storage.listDetailed(`${dir}/`, { inProgress: true })) {
      if (seen.has(o.path)) continue;
      seen.add(o.path);
      if (keep.has(o.path) || o.modifiedAt.getTime() >= cutoff) continue;
      if (inFlight.some((prefix) => baseName(o.path).startsWith(prefix))) continue;
      out.push(o);
    }
  }
  return out;
}

/** Name prefixes of a run's data files and of their local temp files (see lib/run/layout.ts, lib/storage/local.ts). */
function runFilePrefixes(runId: string): string[] {
  return [`part-${runId}-`, `.part-${runId}-`];
}

/** Options of {@link expireSnapshots}. */
export interface ExpireOptions {
  /** Expire snapshots older than this (ms before now). Default: none by age. */
  olderThanMs?: number;
  /** Always keep the newest N snapshots of `main` (at least 1, the current one). Default 1. */
  retainLast?: number;
  /** List what would be expired and deleted; change nothing. */
  dryRun?: boolean;
  now?: Date;
}

/** Result of {@link expireSnapshots}. */
export interface ExpireResult {
  expired: bigint[];
  /** Storage keys of the files only the expired snapshots reached (deleted unless dry run). */
  files: string[];
  metadataLocation: string;
}

/**
 * Ids of the snapshots to expire: those older than the cutoff (every one
 * when only `retainLast` is given), except the newest `retainLast` of
 * `main`, any snapshot a ref points at, and, for every `dativo.*` summary
 * key, the newest snapshot of `main` carrying it (a job's checkpoint must
 * survive, reference iceberg.md B2 #9).
 */
export function snapshotsToExpire(md: TableMetadata, opts: ExpireOptions): bigint[] {
  const retainLast = Math.max(1, opts.retainLast ?? 1);
  const keep = new Set<bigint>();
  const main = ancestry(md);
  for (const s of main.slice(0, retainLast)) keep.add(s['snapshot-id']);
  for (const ref of Object.values((md.refs ?? {}) as Record<string, { 'snapshot-id'?: unknown }>)) {
    const id = asLong(ref['snapshot-id']);
    if (id !== undefined) keep.add(id);
  }
  const current = currentSnapshotId(md);
  if (current !== null) keep.add(current);
  const keys = new Set<string>();
  for (const s of main) {
    for (const k of Object.keys(s.summary ?? {})) {
      if (!k.startsWith('dativo.') || keys.has(k)) continue;
      keys.add(k);
      keep.add(s['snapshot-id']);
    }
  }
  const cutoff = opts.olderThanMs === undefined ? undefined : BigInt((opts.now ?? new Date()).getTime() - opts.olderThanMs);
  if (cutoff === undefined && opts.retainLast === undefined) return [];
  return snapshotsOf(md)
    .filter((s) => !keep.has(s['snapshot-id']) && (cutoff === undefined || s['timestamp-ms'] < cutoff))
    .map((s) => s['snapshot-id']);
}

/**
 * Expire snapshots (see {@link snapshotsToExpire}): commit a metadata
 * version without them (`remove-snapshots`, asserting `main` did not move;
 * retried on a conflict), then delete the manifest lists, manifests and
 * data files only they reached. Nothing is deleted unless the commit
 * definitely landed. Throws SOURCE_NOT_FOUND for a missing table,
 * CATALOG_INVALID on Nessie (see {@link assertFullHistory}).
 */
export async function expireSnapshots(catalog: Catalog, ident: TableIdent, storage: Storage, opts: ExpireOptions): Promise<ExpireResult> {
  const name = identName(ident);
  assertFullHistory(catalog, name);
  let lastError: unknown;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const base = await catalog.loadTable(ident);
    if (!base) throw new DativoError('SOURCE_NOT_FOUND', `no table ${name} in the catalog`, { context: { table: name } });
    const md0 = base.metadata;
    const expired = snapshotsToExpire(md0, opts);
    if (expired.length === 0) return { expired, files: [], metadataLocation: base.metadataLocation };
    const gone = new Set(expired);
    const all = snapshotsOf(md0);
    const kept = all.filter((s) => !gone.has(s['snapshot-id']));
    const reader = new ManifestCache(storage);
    const before = await reachableFiles(storage, all, reader);
    const after = await reachableFiles(storage, kept, reader);
    const files = [...before].filter((k) => !after.has(k)).sort();
    if (opts.dryRun) return { expired, files, metadataLocation: base.metadataLocation };
    const md = nextMetadata(base, now(md0));
    md.snapshots = kept;
    md['snapshot-log'] = ((md0['snapshot-log'] ?? []) as Record<string, unknown>[]).filter((e) => !gone.has(asLong(e['snapshot-id']) ?? -1n));
    try {
      const committed = await catalog.commit(base, {
        requirements: [
          { type: 'assert-table-uuid', uuid: md0['table-uuid'] },
          { type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': currentSnapshotId(md0) },
        ],
        updates: [{ action: 'remove-snapshots', 'snapshot-ids': expired }],
        newMetadata: md,
      });
      for (const k of files) await storage.delete(k);
      return { expired, files, metadataLocation: committed.metadataLocation };
    } catch (err) {
      if (isDativoError(err) && err.code === 'COMMIT_CONFLICT') {
        lastError = err;
        continue;
      }
      throw err;
    }
  }
  throw new DativoError('COMMIT_CONFLICT', `could not expire snapshots of ${name}: the table kept changing`, { cause: lastError, context: { table: name } });
}

// ---- per-run markers: what a killed run left behind

/** Folder (under the table location) of the in-flight markers of dativo runs. */
export const RUN_MARKER_DIR = '.dativo/runs';

/** Stable, path-safe key of a job: tenant and job name hashed (names may hold any character). */
export function jobKey(tenant: string, job: string): string {
  return createHash('sha256').update(`${tenant}\0${job}`).digest('hex').slice(0, 16);
}

/** What a marker records about the run that wrote it. */
interface RunMarker {
  tenant: string;
  job: string;
  runId: string;
  pid: number;
  host: string;
  startedAt: string;
}

/** Whether process `pid` exists on this machine (EPERM: it exists, owned by someone else). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The run markers under `prefix`, each judged abandoned (run provably dead, or marker older than `minAgeMs`) or not. */
async function readMarkers(storage: Storage, prefix: string, now: number, minAgeMs: number): Promise<{ key: string; marker: RunMarker; abandoned: boolean }[]> {
  const host = hostname();
  const out: { key: string; marker: RunMarker; abandoned: boolean }[] = [];
  for (const o of await storage.listDetailed(prefix)) {
    if (!o.path.endsWith('.json')) continue;
    let marker: RunMarker;
    try {
      marker = JSON.parse((await storage.read(o.path)).toString('utf8')) as RunMarker;
    } catch {
      continue; // unreadable: not a marker of ours
    }
    if (typeof marker.runId !== 'string') continue;
    const dead = marker.host === host && typeof marker.pid === 'number' && !processAlive(marker.pid);
    out.push({ key: o.path, marker, abandoned: dead || now - o.modifiedAt.getTime() > minAgeMs });
  }
  return out;
}

/** Run ids of every job's runs on the table that may still be in flight (their marker is not abandoned). */
export async function runsInFlight(storage: Storage, tableRel: string, now = new Date(), minAgeMs = ABANDONED_RUN_AGE_MS): Promise<Set<string>> {
  const markers = await readMarkers(storage, `${tableRel}/${RUN_MARKER_DIR}/`, now.getTime(), minAgeMs);
  return new Set(markers.filter((m) => !m.abandoned).map((m) => m.marker.runId));
}

/** Options of {@link beginRun}. */
export interface BeginRunOptions {
  storage: Storage;
  /** Table location relative to the storage root. */
  tableRel: string;
  tenant: string;
  job: string;
  runId: string;
  /** The table as loaded for this run: files its snapshots reach are never removed. */
  load: () => Promise<LoadedTable | undefined>;
  /**
   * A marker whose run cannot be proven dead (another host, or its pid is
   * alive here) is acted on only when older than this. Default 24 h.
   */
  minAgeMs?: number;
  log: Logger;
  now?: Date;
}

/** Default age after which a marker of a run not provably dead counts as abandoned. */
export const ABANDONED_RUN_AGE_MS = 24 * 3600 * 1000;

/**
 * Start a run on a table: remove the leftovers of earlier runs of the same
 * job that were killed (their marker is still there), then write this run's
 * marker. Leftovers are the files under the table's data folder named
 * `part-<that run id>-…` (local temp files `.part-<run id>-….inprogress`
 * too) that no snapshot reaches. Another job's files are never touched
 * (markers are per job), nor a run of this job still in flight: that run
 * holds the job lock, and its marker proves it alive (same host, live pid)
 * or is younger than `minAgeMs`. Returns the function that removes this
 * run's marker at its end.
 */
export async function beginRun(opts: BeginRunOptions): Promise<{ removed: string[]; end(): Promise<void> }> {
  const { storage, log } = opts;
  const dir = `${opts.tableRel}/${RUN_MARKER_DIR}/${jobKey(opts.tenant, opts.job)}`;
  const now = (opts.now ?? new Date()).getTime();
  const minAge = opts.minAgeMs ?? ABANDONED_RUN_AGE_MS;
  const abandoned = (await readMarkers(storage, `${dir}/`, now, minAge)).filter((m) => m.abandoned && m.marker.runId !== opts.runId);
  const removed: string[] = [];
  if (abandoned.length > 0) {
    const table = await opts.load();
    const keep = table ? await reachableFiles(storage, snapshotsOf(table.metadata)) : new Set<string>();
    const files = await storage.listDetailed(`${opts.tableRel}/data/`, { inProgress: true });
    for (const { key, marker } of abandoned) {
      const names = runFilePrefixes(marker.runId);
      const leftovers = files.filter((f) => names.some((n) => baseName(f.path).startsWith(n)) && !keep.has(f.path));
      for (const f of leftovers) await storage.delete(f.path);
      await storage.delete(key);
      removed.push(...leftovers.map((f) => f.path));
      log.info(
        { event_type: 'orphans_removed', orphan_run_id: marker.runId, files: leftovers.length, bytes: leftovers.reduce((n, f) => n + f.size, 0) },
        `removed ${leftovers.length} file(s) left by the earlier run ${marker.runId}, which did not finish`,
      );
    }
  }
  const mine = `${dir}/${opts.runId}.json`;
  const marker: RunMarker = { tenant: opts.tenant, job: opts.job, runId: opts.runId, pid: process.pid, host: hostname(), startedAt: new Date(now).toISOString() };
  await storage.writeAtomic(mine, `${JSON.stringify(marker)}\n`, { contentType: 'application/json' });
  return {
    removed,
    end: async () => {
      await storage.delete(mine);
    },
  };
}
