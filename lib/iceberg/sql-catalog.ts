/**
 * Iceberg SQL catalog in the exact table layout of Java's `JdbcCatalog` and
 * PyIceberg's `SqlCatalog` (reference iceberg.md A6.1), so any of the three
 * can read and write the same tables. SQLite (better-sqlite3, embedded
 * default, `sqlite:<path>`) and Postgres (`postgres://…`).
 *
 * A commit writes `<metadata dir>/NNNNN-<uuid>.metadata.json` through the
 * warehouse storage, then swaps the pointer with one conditional UPDATE:
 * one row changed → committed; none → COMMIT_CONFLICT (our metadata file is
 * deleted). A connection failure during the UPDATE is an unknown outcome
 * (CATALOG_UNAVAILABLE) and leaves the file in place.
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DativoError, isDativoError } from '../errors.js';
import { isPgAuthError, isPgConnectionError, pgConnectionString } from '../pg-client.js';
import type { CatalogSpec } from '../plan.js';
import type { Storage } from '../storage/types.js';
import type { Catalog, CommitRequest, CreateTableRequest, LoadedTable, TableIdent, TableMetadata } from './catalog.js';
import { asLong, parseJson, stringifyJson } from './json.js';
import { baseName, joinUri, metadataDir, storageKey } from './paths.js';

/** The SQL catalog spec (`type: sql`). */
export type SqlCatalogSpec = Extract<CatalogSpec, { type: 'sql' }>;

/** Rows and affected-row count of one statement. */
interface SqlResult {
  rows: Record<string, unknown>[];
  changes: number;
}

/** The little a catalog needs from a database driver. Placeholders are `?`. */
interface SqlDriver {
  readonly dialect: 'sqlite' | 'postgres';
  query(sql: string, params?: unknown[]): Promise<SqlResult>;
  close(): Promise<void>;
}

function mapDbError(err: unknown, spec: SqlCatalogSpec, op: string): DativoError {
  if (isDativoError(err)) return err;
  const e = err as { code?: string; message?: string };
  const context = { catalog: spec.name, operation: op, dbCode: e?.code };
  const msg = `SQL catalog ${spec.name}: ${op} failed: ${e?.message ?? String(err)}`;
  if (isPgAuthError(err)) return new DativoError('AUTH_FAILED', msg, { cause: err, context });
  if (e?.code === '3D000') return new DativoError('CATALOG_UNAVAILABLE', msg, { cause: err, context, disposition: 'fatal' });
  if (isPgConnectionError(err)) return new DativoError('CATALOG_UNAVAILABLE', msg, { cause: err, context });
  if (e?.code === 'SQLITE_NOTADB' || e?.code === 'SQLITE_CORRUPT') return new DativoError('CATALOG_INVALID', msg, { cause: err, context });
  if (op === 'open') return new DativoError('CATALOG_UNAVAILABLE', msg, { cause: err, context });
  if (typeof e?.code === 'string' && (e.code === 'SQLITE_BUSY' || e.code === 'SQLITE_LOCKED' || e.code === 'SQLITE_CANTOPEN' || e.code === 'SQLITE_IOERR')) {
    return new DativoError('CATALOG_UNAVAILABLE', msg, { cause: err, context });
  }
  return new DativoError('INTERNAL', msg, { cause: err, context });
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return code === '23505' || code.startsWith('SQLITE_CONSTRAINT');
}

/** Path of a `sqlite:` URI: `sqlite:/abs.db`, `sqlite:rel.db`, `sqlite:///abs.db` (one `//` is stripped), `sqlite::memory:`. */
export function sqlitePath(uri: string): string {
  let p = uri.slice('sqlite:'.length);
  if (p.startsWith('//')) p = p.slice(2);
  return p === '' ? ':memory:' : p;
}

async function openSqlite(uri: string): Promise<SqlDriver> {
  const { default: Database } = await import('better-sqlite3');
  const path = sqlitePath(uri);
  // Like the file itself, its directory is created on first use.
  if (path !== ':memory:') await mkdir(dirname(resolve(path)), { recursive: true });
  const db = new Database(path);
  // WAL lets readers run beside a writer; busy_timeout makes a second
  // process wait for the write lock instead of failing at once.
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  return {
    dialect: 'sqlite',
    async query(sql, params = []) {
      const stmt = db.prepare(sql);
      const args = params.map((p) => (p === undefined ? null : p)) as unknown[];
      if (stmt.reader) return { rows: stmt.all(...args) as Record<string, unknown>[], changes: 0 };
      return { rows: [], changes: stmt.run(...args).changes };
    },
    async close() {
      db.close();
    },
  };
}

async function openPostgres(uri: string): Promise<SqlDriver> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: pgConnectionString(uri), max: 4, connectionTimeoutMillis: 10_000 });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return {
    dialect: 'postgres',
    async query(sql, params = []) {
      let i = 0;
      const text = sql.replace(/\?/g, () => `$${++i}`);
      const res = await pool.query(text, params);
      return { rows: res.rows as Record<string, unknown>[], changes: res.rowCount ?? 0 };
    },
    async close() {
      await pool.end();
    },
  };
}

const CREATE_TABLES = `CREATE TABLE IF NOT EXISTS iceberg_tables (
  catalog_name VARCHAR(255) NOT NULL,
  table_namespace VARCHAR(255) NOT NULL,
  table_name VARCHAR(255) NOT NULL,
  metadata_location VARCHAR(1000),
  previous_metadata_location VARCHAR(1000),
  iceberg_type VARCHAR(5),
  PRIMARY KEY (catalog_name, table_namespace, table_name))`;

const CREATE_NAMESPACE_PROPERTIES = `CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
  catalog_name VARCHAR(255) NOT NULL,
  namespace VARCHAR(255) NOT NULL,
  property_key VARCHAR(255),
  property_value VARCHAR(1000),
  PRIMARY KEY (catalog_name, namespace, property_key))`;

/** Version number of a metadata file name `NNNNN-<uuid>.metadata.json`; -1 if it has none. */
export function metadataVersion(location: string): number {
  const name = baseName(location);
  const m = /^(\d+)-/.exec(name) ?? /^v(\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
}

/** Check REST-style requirements against the base the change was built on (SQL catalogs have no server to do it). */
function checkRequirements(base: TableMetadata, change: CommitRequest, table: string): void {
  for (const r of change.requirements) {
    let ok = true;
    if (r.type === 'assert-table-uuid') ok = r.uuid === base['table-uuid'];
    else if (r.type === 'assert-ref-snapshot-id') {
      const refs = (base.refs ?? {}) as Record<string, { 'snapshot-id'?: unknown }>;
      const have = asLong(refs[String(r.ref)]?.['snapshot-id']) ?? null;
      const want = r['snapshot-id'] === null || r['snapshot-id'] === undefined ? null : asLong(r['snapshot-id']);
      ok = have === want;
    } else if (r.type === 'assert-current-schema-id') ok = r['current-schema-id'] === base['current-schema-id'];
    else if (r.type === 'assert-last-assigned-field-id') ok = r['last-assigned-field-id'] === base['last-column-id'];
    if (!ok) {
      throw new DativoError('COMMIT_CONFLICT', `table ${table} changed: requirement ${r.type} failed`, { context: { table, requirement: r.type } });
    }
  }
}

/**
 * {@link Catalog} over the JDBC/PyIceberg SQL layout. Create with
 * {@link openSqlCatalog}; `spec.name` is the `catalog_name` every client of
 * the same catalog must use.
 */
export class SqlCatalog implements Catalog {
  readonly type = 'sql';
  readonly name: string;
  private hasIcebergType = true;

  private constructor(
    private readonly spec: SqlCatalogSpec,
    private readonly db: SqlDriver,
    private readonly storage: Storage,
  ) {
    this.name = spec.name;
  }

  /** Open the database and create the two catalog tables if missing. Throws CATALOG_UNAVAILABLE. */
  static async open(spec: SqlCatalogSpec, storage: Storage): Promise<SqlCatalog> {
    let db: SqlDriver;
    try {
      if (spec.uri.startsWith('sqlite:')) db = await openSqlite(spec.uri);
      else if (/^postgres(ql)?(\+[a-z0-9]+)?:\/\//i.test(spec.uri)) db = await openPostgres(spec.uri);
      else {
        throw new DativoError('CONFIG_INVALID', `SQL catalog URI must start with sqlite: or postgres:// (got ${spec.uri.split(':')[0]}:)`, {
          context: { catalog: spec.name },
        });
      }
    } catch (err) {
      throw mapDbError(err, spec, 'open');
    }
    const cat = new SqlCatalog(spec, db, storage);
    try {
      await cat.init();
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
    return cat;
  }

  private async q(sql: string, params: unknown[], op: string): Promise<SqlResult> {
    try {
      return await this.db.query(sql, params);
    } catch (err) {
      throw mapDbError(err, this.spec, op);
    }
  }

  private async init(): Promise<void> {
    for (const ddl of [CREATE_TABLES, CREATE_NAMESPACE_PROPERTIES]) {
      try {
        await this.db.query(ddl);
      } catch (err) {
        // Two processes creating the tables at once: Postgres reports a duplicate type/table.
        const code = (err as { code?: string }).code;
        if (code !== '42P07' && code !== '23505') throw mapDbError(err, this.spec, 'create catalog tables');
      }
    }
    // Tables made by an older Java (the "V0" schema) have no iceberg_type column.
    const cols =
      this.db.dialect === 'sqlite'
        ? (await this.q(`PRAGMA table_info(iceberg_tables)`, [], 'inspect')).rows.map((r) => String(r.name))
        : (
            await this.q(
              `SELECT column_name FROM information_schema.columns WHERE table_name = 'iceberg_tables' AND table_schema = current_schema()`,
              [],
              'inspect',
            )
          ).rows.map((r) => String(r.column_name));
    this.hasIcebergType = cols.map((c) => c.toLowerCase()).includes('iceberg_type');
  }

  private get tableOnly(): string {
    return this.hasIcebergType ? ` AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)` : '';
  }

  private where(ident: TableIdent): [string, unknown[]] {
    return [`catalog_name = ? AND table_namespace = ? AND table_name = ?`, [this.name, ident.namespace.join('.'), ident.name]];
  }

  async createNamespaceIfMissing(namespace: string[]): Promise<void> {
    const ns = namespace.join('.');
    const inTables = await this.q(
      `SELECT 1 AS x FROM iceberg_tables WHERE catalog_name = ? AND (table_namespace = ? OR table_namespace LIKE ?) LIMIT 1`,
      [this.name, ns, `${ns}.%`],
      'namespace lookup',
    );
    if (inTables.rows.length > 0) return;
    const inProps = await this.q(
      `SELECT 1 AS x FROM iceberg_namespace_properties WHERE catalog_name = ? AND (namespace = ? OR namespace LIKE ?) LIMIT 1`,
      [this.name, ns, `${ns}.%`],
      'namespace lookup',
    );
    if (inProps.rows.length > 0) return;
    await this.q(
      `INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value) VALUES (?, ?, 'exists', 'true') ON CONFLICT DO NOTHING`,
      [this.name, ns],
      'create namespace',
    );
  }

  async listTables(namespace?: string[]): Promise<TableIdent[]> {
    const params: unknown[] = [this.name];
    let sql = `SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = ?${this.tableOnly}`;
    if (namespace) {
      sql += ` AND table_namespace = ?`;
      params.push(namespace.join('.'));
    }
    const res = await this.q(sql + ` ORDER BY table_namespace, table_name`, params, 'list tables');
    return res.rows.map((r) => ({ namespace: String(r.table_namespace).split('.'), name: String(r.table_name) }));
  }

  /** Read and parse a metadata file (plain or gzip). */
  private async readMetadata(location: string): Promise<TableMetadata> {
    let buf = await this.storage.read(storageKey(this.storage, location));
    if (location.endsWith('.gz.metadata.json') || location.endsWith('.metadata.json.gz')) buf = gunzipSync(buf);
    const md = parseJson(buf.toString('utf8'), location) as TableMetadata;
    if (md === null || typeof md !== 'object' || typeof md['format-version'] !== 'number') {
      throw new DativoError('CATALOG_INVALID', `${location} is not Iceberg table metadata`, { context: { file: location } });
    }
    return md;
  }

  async loadTable(ident: TableIdent): Promise<LoadedTable | undefined> {
    const [w, p] = this.where(ident);
    const res = await this.q(`SELECT metadata_location FROM iceberg_tables WHERE ${w}${this.tableOnly}`, p, 'load table');
    const row = res.rows[0];
    if (!row) return undefined;
    const metadataLocation = row.metadata_location;
    if (typeof metadataLocation !== 'string' || metadataLocation === '') {
      throw new DativoError('CATALOG_INVALID', `table ${[...ident.namespace, ident.name].join('.')} has no metadata location`, {
        context: { table: [...ident.namespace, ident.name].join('.') },
      });
    }
    return { ident, metadataLocation, metadata: await this.readMetadata(metadataLocation) };
  }

  /** Write `metadata` as version `version` under its metadata directory; returns URI and storage key. */
  private async writeMetadata(metadata: TableMetadata, version: number): Promise<{ uri: string; key: string }> {
    const dir = metadataDir(String(metadata.location), metadata.properties as Record<string, string> | undefined);
    const uri = joinUri(dir, `${String(version).padStart(5, '0')}-${randomUUID()}.metadata.json`);
    const key = storageKey(this.storage, uri);
    await this.storage.writeAtomic(key, stringifyJson(metadata, 2), { ifNotExists: true, contentType: 'application/json' });
    return { uri, key };
  }

  /**
   * `metadata/version-hint.text` holding the version number, for readers
   * without a catalog (icebird, Hadoop-style). Best effort: the catalog row is
   * the truth, and a stale hint is only a hint.
   */
  private async writeVersionHint(metadata: TableMetadata, version: number): Promise<void> {
    try {
      const dir = metadataDir(String(metadata.location), metadata.properties as Record<string, string> | undefined);
      await this.storage.writeAtomic(storageKey(this.storage, joinUri(dir, 'version-hint.text')), String(version), { contentType: 'text/plain' });
    } catch {
      // ignored: see above
    }
  }

  async createTable(ident: TableIdent, request: CreateTableRequest): Promise<LoadedTable> {
    const table = [...ident.namespace, ident.name].join('.');
    const metadata = { ...request.metadata, location: request.location.replace(/\/+$/, '') };
    const { uri, key } = await this.writeMetadata(metadata, 0);
    const cols = this.hasIcebergType ? ', iceberg_type' : '';
    const vals = this.hasIcebergType ? `, 'TABLE'` : '';
    try {
      await this.db.query(
        `INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location${cols}) VALUES (?, ?, ?, ?, NULL${vals})`,
        [this.name, ident.namespace.join('.'), ident.name, uri],
      );
    } catch (err) {
      if (isUniqueViolation(err)) {
        await this.storage.delete(key).catch(() => undefined);
        throw new DativoError('COMMIT_CONFLICT', `table ${table} already exists`, { cause: err, context: { table, exists: true } });
      }
      throw mapDbError(err, this.spec, 'create table');
    }
    await this.writeVersionHint(metadata, 0);
    return { ident, metadata, metadataLocation: uri };
  }

  async commit(base: LoadedTable, change: CommitRequest): Promise<LoadedTable> {
    const table = [...base.ident.namespace, base.ident.name].join('.');
    checkRequirements(base.metadata, change, table);
    const version = metadataVersion(base.metadataLocation) + 1;
    const { uri, key } = await this.writeMetadata(change.newMetadata, version);
    const [w, p] = this.where(base.ident);
    let changes: number;
    try {
      const res = await this.db.query(
        `UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? WHERE ${w} AND metadata_location = ?${this.tableOnly}`,
        [uri, base.metadataLocation, ...p, base.metadataLocation],
      );
      changes = res.changes;
    } catch (err) {
      // The statement may or may not have been applied: keep our file, let the caller check.
      const e = mapDbError(err, this.spec, 'commit');
      if (e.code === 'INTERNAL') throw e;
      throw new DativoError('CATALOG_UNAVAILABLE', `commit to ${table} has an unknown outcome: ${e.message}`, {
        cause: err,
        context: { table, metadataLocation: uri },
      });
    }
    if (changes !== 1) {
      await this.storage.delete(key).catch(() => undefined);
      throw new DativoError('COMMIT_CONFLICT', `table ${table} was changed by another writer (metadata is no longer ${baseName(base.metadataLocation)})`, {
        context: { table },
      });
    }
    await this.writeVersionHint(change.newMetadata, version);
    return { ident: base.ident, metadata: change.newMetadata, metadataLocation: uri };
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** Open a {@link SqlCatalog}. */
export function openSqlCatalog(spec: SqlCatalogSpec, storage: Storage): Promise<SqlCatalog> {
  return SqlCatalog.open(spec, storage);
}
