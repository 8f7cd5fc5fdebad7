/**
 * `dativo tables list|show|files|gc`: what the catalog holds, the live data
 * files of a table, and its maintenance (orphan files, snapshot expiry). The catalog comes from a
 * job file when one is given, else the embedded default: the SQLite catalog
 * at `<warehouse>/catalog.db` (`--warehouse`, default `./warehouse`).
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadJob } from '../config/index.js';
import { DativoError, ExitCode } from '../errors.js';
import { openCatalog, type Catalog, type LoadedTable, type TableMetadata } from '../iceberg/index.js';
import { assertFullHistory, expireSnapshots, findOrphans, liveDataFiles, runsInFlight, type ExpireResult } from '../iceberg/maintenance.js';
import { storageKey } from '../iceberg/paths.js';
import { ancestry } from '../iceberg/metadata.js';
import { stringifyJson } from '../json.js';
import type { CatalogSpec } from '../plan.js';
import { openStorage } from '../storage/index.js';
import type { Storage } from '../storage/types.js';
import type { CliIO, CliOptions } from './io.js';

interface Opened {
  catalog: Catalog;
  storage: Storage;
  close(): Promise<void>;
}

async function open(jobFile: string | undefined, o: CliOptions): Promise<Opened> {
  let spec: CatalogSpec;
  let warehouse: string;
  let s3;
  if (jobFile) {
    const plan = await loadJob(jobFile, { mode: o.mode, ...(o.secretsDir ? { secretsDir: o.secretsDir } : {}) });
    spec = plan.target.catalog;
    warehouse = plan.target.warehouse;
    s3 = plan.target.s3;
  } else {
    const dir = path.resolve(o.warehouse ?? 'warehouse');
    warehouse = pathToFileURL(dir).href;
    spec = { type: 'sql', name: 'dativo', uri: `sqlite:${path.join(dir, 'catalog.db')}` };
  }
  if (spec.type === 'none') throw new DativoError('CONFIG_INVALID', 'this job writes plain Parquet files: it has no catalog to list');
  if (spec.type === 'sql' && spec.uri.startsWith('sqlite:')) {
    const { existsSync } = await import('node:fs');
    if (!existsSync(spec.uri.slice('sqlite:'.length))) {
      throw new DativoError('CATALOG_INVALID', `no catalog at ${spec.uri.slice('sqlite:'.length)} (run a job with an iceberg target first, or pass --warehouse)`);
    }
  }
  const storage = await openStorage(warehouse, s3);
  const catalog = (await openCatalog(spec, storage)) as Catalog;
  return { catalog, storage, close: () => catalog.close() };
}

/** Rows per snapshot, newest first. */
function describe(md: TableMetadata): Record<string, unknown> {
  const schemas = (md['schemas'] ?? []) as { 'schema-id': number; fields: { id: number; name: string; type: unknown; required: boolean }[] }[];
  const current = schemas.find((s) => s['schema-id'] === md['current-schema-id']);
  return {
    location: md.location,
    'format-version': md['format-version'],
    'table-uuid': md['table-uuid'],
    schema: current?.fields.map((f) => ({ id: f.id, name: f.name, type: f.type, required: f.required })) ?? [],
    snapshots: ancestry(md).map((s) => ({
      'snapshot-id': String(s['snapshot-id']),
      'sequence-number': String(s['sequence-number']),
      timestamp: new Date(Number(s['timestamp-ms'])).toISOString(),
      operation: s.summary['operation'],
      'added-records': s.summary['added-records'],
      'total-records': s.summary['total-records'],
      'total-data-files': s.summary['total-data-files'],
      'run-id': s.summary['dativo.run-id'],
    })),
  };
}

function formatTable(d: ReturnType<typeof describe> & { table: string; 'metadata-location': string }): string {
  const lines = [`table ${d.table}`, `  location  ${String(d.location)}`, `  metadata  ${d['metadata-location']}`, '  schema:'];
  for (const f of d.schema as { id: number; name: string; type: unknown; required: boolean }[]) {
    lines.push(`    ${String(f.id).padStart(3)}  ${f.name}  ${typeof f.type === 'string' ? f.type : JSON.stringify(f.type)}${f.required ? '  required' : ''}`);
  }
  lines.push('  snapshots (newest first):');
  for (const s of d.snapshots as Record<string, string | undefined>[]) {
    lines.push(`    ${s['snapshot-id']}  seq ${s['sequence-number']}  ${s['timestamp']}  ${s['operation']}  +${s['added-records'] ?? 0} rows  total ${s['total-records'] ?? '?'}  run ${s['run-id'] ?? '-'}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function tablesCommand(args: string[], o: CliOptions, io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'list') {
    const db = await open(rest[0], o);
    try {
      const idents = await db.catalog.listTables();
      const out = [];
      for (const id of idents) {
        const t = await db.catalog.loadTable(id);
        const snap = t ? ancestry(t.metadata, 1)[0] : undefined;
        out.push({ table: [...id.namespace, id.name].join('.'), 'total-records': snap?.summary['total-records'] ?? '0', location: t?.metadata.location });
      }
      if (o.json) io.stdout.write(`${stringifyJson(out)}\n`);
      else for (const r of out) io.stdout.write(`${r.table}\t${r['total-records']} rows\t${String(r.location)}\n`);
      return ExitCode.OK;
    } finally {
      await db.close();
    }
  }
  if (sub === 'files') return withTable(sub, rest, o, (t, db, name) => files(t, db, name, o, io));
  if (sub === 'gc') return withTable(sub, rest, o, (t, db, name) => gc(t, db, name, o, io));
  if (sub === 'show') {
    return withTable(sub, rest, o, async (t, _db, name) => {
      const d = { table: name, 'metadata-location': t.metadataLocation, ...describe(t.metadata) };
      io.stdout.write(o.json ? `${stringifyJson(d)}\n` : formatTable(d));
      return ExitCode.OK;
    });
  }
  throw new DativoError('CONFIG_INVALID', 'usage: dativo tables list|show|files|gc …');
}

/** Open the catalog, load `<namespace.table>` (the first of `rest`; the optional second is a job file) and run `fn` on it. */
async function withTable(sub: string, rest: string[], o: CliOptions, fn: (t: LoadedTable, db: Opened, name: string) => Promise<number>): Promise<number> {
  const [name, jobFile] = rest;
  if (!name) throw new DativoError('CONFIG_INVALID', `usage: dativo tables ${sub} <namespace.table> [<job.yaml>]`);
  const parts = name.split('.');
  const ident = { namespace: parts.slice(0, -1), name: parts[parts.length - 1] as string };
  if (ident.namespace.length === 0) throw new DativoError('CONFIG_INVALID', `table name "${name}" needs a namespace: <namespace>.<table>`);
  const db = await open(jobFile, o);
  try {
    const t = await db.catalog.loadTable(ident);
    if (!t) throw new DativoError('SOURCE_NOT_FOUND', `no table ${name} in the catalog`, { context: { table: name } });
    return await fn(t, db, name);
  } finally {
    await db.close();
  }
}

/** A local `file://` URI as a plain path (what DuckDB and most tools take); other URIs as they are. */
function displayPath(uri: string): string {
  return uri.startsWith('file:') ? fileURLToPath(uri) : uri;
}

const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/**
 * `tables files`: the live data files of the current snapshot, exactly the
 * files a reader must read (never a killed run's leftovers or replaced
 * files). `--sql` prints a DuckDB query over them; `--json` the details.
 */
async function files(t: LoadedTable, db: Opened, name: string, o: CliOptions, io: CliIO): Promise<number> {
  const live = await liveDataFiles(db.storage, t.metadata);
  if (o.json) {
    io.stdout.write(`${stringifyJson(live.map((f) => ({ path: displayPath(f.uri), uri: f.uri, records: f.recordCount, bytes: f.fileSizeBytes })))}\n`);
  } else if (o.tables?.sql) {
    if (live.length === 0) throw new DativoError('SOURCE_NOT_FOUND', `table ${name} has no data files yet`, { context: { table: name } });
    io.stdout.write(`SELECT * FROM read_parquet([${live.map((f) => sqlString(displayPath(f.uri))).join(', ')}], hive_partitioning = false)\n`);
  } else {
    for (const f of live) io.stdout.write(`${displayPath(f.uri)}\n`);
  }
  return ExitCode.OK;
}

/** `1h`, `30m`, `7d`, `2w`, `45s` → milliseconds; CONFIG_INVALID naming the option otherwise. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!m) throw new DativoError('CONFIG_INVALID', `${option} must be a duration like 30m, 1h, 7d or 2w, got "${text}"`, { context: { key: option } });
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd' | 'w'];
  return Math.round(Number(m[1]) * unit);
}

/** Default `--older-than` of `tables gc`: orphans must be older than any run that may still be writing. */
export const DEFAULT_ORPHAN_AGE = '1d';

/**
 * `tables gc`: expire snapshots when asked (`--expire-snapshots-older-than`,
 * `--retain-last`), then remove orphan files older than `--older-than`
 * (default 1d). `--dry-run` lists and changes nothing.
 */
async function gc(t: LoadedTable, db: Opened, name: string, o: CliOptions, io: CliIO): Promise<number> {
  const opts = o.tables ?? {};
  assertFullHistory(db.catalog, name);
  const dryRun = opts.dryRun === true;
  const olderThanMs = parseDuration(opts.olderThan ?? DEFAULT_ORPHAN_AGE, '--older-than');
  const expireAge = opts.expireSnapshotsOlderThan === undefined ? undefined : parseDuration(opts.expireSnapshotsOlderThan, '--expire-snapshots-older-than');
  let retainLast: number | undefined;
  if (opts.retainLast !== undefined) {
    retainLast = Number(opts.retainLast);
    if (!Number.isInteger(retainLast) || retainLast < 1) throw new DativoError('CONFIG_INVALID', `--retain-last must be a whole number of at least 1, got "${opts.retainLast}"`, { context: { key: '--retain-last' } });
  }
  let expired: ExpireResult | undefined;
  if (expireAge !== undefined || retainLast !== undefined) {
    expired = await expireSnapshots(db.catalog, t.ident, db.storage, {
      ...(expireAge !== undefined ? { olderThanMs: expireAge } : {}),
      ...(retainLast !== undefined ? { retainLast } : {}),
      dryRun,
    });
  }
  const table = expired && !dryRun ? ((await db.catalog.loadTable(t.ident)) ?? t) : t;
  const tableRel = storageKey(db.storage, String(table.metadata.location));
  const orphans = await findOrphans(db.storage, table, { olderThanMs, inFlightRunIds: await runsInFlight(db.storage, tableRel) });
  if (!dryRun) for (const f of orphans) await db.storage.delete(f.path);
  const bytes = orphans.reduce((n, f) => n + f.size, 0);
  if (o.json) {
    io.stdout.write(
      `${stringifyJson({
        table: name,
        dry_run: dryRun,
        expired_snapshots: (expired?.expired ?? []).map(String),
        expired_files: expired?.files ?? [],
        orphan_files: orphans.map((f) => ({ path: f.path, bytes: f.size, modified_at: f.modifiedAt.toISOString() })),
        orphan_bytes: bytes,
      })}\n`,
    );
    return ExitCode.OK;
  }
  const verb = dryRun ? 'would remove' : 'removed';
  if (expired) {
    io.stdout.write(`${dryRun ? 'would expire' : 'expired'} ${expired.expired.length} snapshot(s)${expired.expired.length > 0 ? `: ${expired.expired.join(', ')}` : ''}\n`);
    io.stdout.write(`${verb} ${expired.files.length} file(s) only those snapshots used\n`);
    for (const f of expired.files) io.stdout.write(`  ${f}\n`);
  }
  io.stdout.write(`${verb} ${orphans.length} orphan file(s), ${bytes} bytes (older than ${opts.olderThan ?? DEFAULT_ORPHAN_AGE}, reached by no snapshot)\n`);
  for (const f of orphans) io.stdout.write(`  ${f.path}\n`);
  return ExitCode.OK;
}
