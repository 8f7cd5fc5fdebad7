/**
 * `dativo tables list|show`: what the catalog holds. The catalog comes from a
 * job file when one is given, else the embedded default: the SQLite catalog
 * at `<warehouse>/catalog.db` (`--warehouse`, default `./warehouse`).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadJob } from '../config/index.js';
import { DativoError, ExitCode } from '../errors.js';
import { openCatalog, type Catalog, type TableMetadata } from '../iceberg/index.js';
import { ancestry } from '../iceberg/metadata.js';
import { stringifyJson } from '../json.js';
import type { CatalogSpec } from '../plan.js';
import { openStorage } from '../storage/index.js';
import type { CliIO, CliOptions } from './io.js';

interface Opened {
  catalog: Catalog;
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
  return { catalog, close: () => catalog.close() };
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
  if (sub === 'show') {
    const [name, jobFile] = rest;
    if (!name) throw new DativoError('CONFIG_INVALID', 'usage: dativo tables show <namespace.table> [<job.yaml>]');
    const parts = name.split('.');
    const ident = { namespace: parts.slice(0, -1), name: parts[parts.length - 1] as string };
    if (ident.namespace.length === 0) throw new DativoError('CONFIG_INVALID', `table name "${name}" needs a namespace: <namespace>.<table>`);
    const db = await open(jobFile, o);
    try {
      const t = await db.catalog.loadTable(ident);
      if (!t) throw new DativoError('SOURCE_NOT_FOUND', `no table ${name} in the catalog`, { context: { table: name } });
      const d = { table: name, 'metadata-location': t.metadataLocation, ...describe(t.metadata) };
      io.stdout.write(o.json ? `${stringifyJson(d)}\n` : formatTable(d));
      return ExitCode.OK;
    } finally {
      await db.close();
    }
  }
  throw new DativoError('CONFIG_INVALID', 'usage: dativo tables list|show …');
}
