/**
 * Connection settings and table objects of the SQL sources (Postgres, MySQL),
 * read from a JobPlan. Pure functions: no driver is touched here.
 */
import { z } from 'zod';
import type { DeclaredObject, ObjectsContext } from '../../lib/connector.js';
import { DativoError, type ConfigProblem } from '../../lib/errors.js';
import type { JobPlan, SourceObjectSpec } from '../../lib/plan.js';

/** TLS settings: `true` = verify against the system CAs; an object adds PEM material. */
export type SslSettings = boolean | { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };

/** Resolved connection settings of a SQL source. */
export interface SqlConnectionSettings {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  ssl: SslSettings;
  /** Server-side statement timeout; undefined = the server's default (none). */
  statementTimeoutMs?: number;
  /** Shown in `pg_stat_activity` / the MySQL process list. Default `dativo-ingest`. */
  applicationName: string;
  /** Connect timeout. Default 10,000 ms. */
  connectTimeoutMs: number;
  /** Rows fetched per round trip (Postgres portal batch). Default 2,000: measured faster and smaller than 10,000. */
  batchSize: number;
}

/** Which environment variables and defaults a dialect falls back to. */
export interface DialectEnv {
  /** Connector name for messages. */
  connector: string;
  host: string[];
  port: string[];
  database: string[];
  user: string[];
  password: string[];
  defaultPort: number;
  defaultUser: string;
  defaultDatabase: string;
}

/** Postgres: `source.connection` → `source.credentials` → `PG*` env → libpq defaults. */
export const PG_ENV: DialectEnv = {
  connector: 'postgres',
  host: ['PGHOST'],
  port: ['PGPORT'],
  database: ['PGDATABASE'],
  user: ['PGUSER'],
  password: ['PGPASSWORD'],
  defaultPort: 5432,
  defaultUser: 'postgres',
  defaultDatabase: 'postgres',
};

/** MySQL/MariaDB: `source.connection` → `source.credentials` → `MYSQL_*` env → defaults. */
export const MYSQL_ENV: DialectEnv = {
  connector: 'mysql',
  host: ['MYSQL_HOST'],
  port: ['MYSQL_PORT', 'MYSQL_TCP_PORT'],
  database: ['MYSQL_DATABASE', 'MYSQL_DB'],
  user: ['MYSQL_USER'],
  password: ['MYSQL_PASSWORD', 'MYSQL_PWD'],
  defaultPort: 3306,
  defaultUser: 'root',
  defaultDatabase: '',
};

const intLike = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);
const boolLike = z.union([z.boolean(), z.enum(['true', 'false']).transform((s) => s === 'true')]);
const strLike = z.union([z.string(), z.number().transform(String)]);

const SslSchema = z.union([
  boolLike,
  z.object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional(), rejectUnauthorized: boolLike.optional() }),
]);

const ConnectionSchema = z.looseObject({
  host: strLike.optional(),
  port: intLike.optional(),
  database: strLike.optional(),
  dbname: strLike.optional(),
  user: strLike.optional(),
  username: strLike.optional(),
  password: strLike.optional(),
  ssl: SslSchema.optional(),
  statement_timeout_ms: intLike.optional(),
  application_name: z.string().optional(),
  connect_timeout_ms: intLike.optional(),
  batch_size: intLike.pipe(z.number().min(1).max(1_000_000)).optional(),
});

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function firstString(...values: unknown[]): string | undefined {
  for (const v of values) {
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

function zodProblems(err: z.ZodError, file: string, base: string): ConfigProblem[] {
  return err.issues.map((i) => ({ file, key: [base, ...i.path.map(String)].join('.'), message: i.message }));
}

/**
 * Resolve the connection settings of a SQL source from `plan.source.options`:
 * `connection` keys first, then `credentials` (`user`/`password` or the
 * dialect's env names such as `PGPASSWORD`), then the environment, then the
 * dialect defaults (host `localhost`). Throws CONFIG_INVALID listing every
 * bad key.
 */
export function resolveConnection(plan: JobPlan, env: DialectEnv, processEnv: NodeJS.ProcessEnv = process.env): SqlConnectionSettings {
  const opts = plan.source.options;
  const rawConn = isRecord(opts['connection']) ? opts['connection'] : {};
  const creds = isRecord(opts['credentials']) ? opts['credentials'] : {};
  const parsed = ConnectionSchema.safeParse(rawConn);
  if (!parsed.success) {
    throw new DativoError('CONFIG_INVALID', `invalid ${env.connector} connection settings`, {
      context: { file: plan.file, key: 'source.connection', connector: env.connector },
      problems: zodProblems(parsed.error, plan.file, 'source.connection'),
    });
  }
  const c = parsed.data;
  const fromEnv = (names: string[]): string | undefined => firstString(...names.map((n) => creds[n]), ...names.map((n) => processEnv[n]));
  const portText = firstString(c.port, creds['port'], fromEnv(env.port));
  const port = portText === undefined ? env.defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DativoError('CONFIG_INVALID', `invalid ${env.connector} port "${portText}"`, {
      context: { file: plan.file, key: 'source.connection.port', connector: env.connector },
      problems: [{ file: plan.file, key: 'source.connection.port', message: `expected a port number 1-65535, got "${portText}"` }],
    });
  }
  const password = firstString(c.password, creds['password'], fromEnv(env.password));
  const settings: SqlConnectionSettings = {
    host: firstString(c.host, creds['host'], fromEnv(env.host)) ?? 'localhost',
    port,
    database: firstString(c.database, c.dbname, creds['database'], fromEnv(env.database)) ?? env.defaultDatabase,
    user: firstString(c.user, c.username, creds['user'], creds['username'], fromEnv(env.user)) ?? env.defaultUser,
    ssl: c.ssl ?? false,
    applicationName: c.application_name ?? 'dativo-ingest',
    connectTimeoutMs: c.connect_timeout_ms ?? 10_000,
    batchSize: c.batch_size ?? 2_000,
  };
  if (password !== undefined) settings.password = password;
  if (c.statement_timeout_ms !== undefined) settings.statementTimeoutMs = c.statement_timeout_ms;
  return settings;
}

/** One table (or custom query) to read: a `source.tables[]` entry. */
export interface TableSpec {
  /** Object name (state key). */
  object: string;
  /** Schema (Postgres) or database (MySQL); undefined = search path / connection database. */
  schema?: string;
  /** Table or view name; undefined when `query` is given. */
  table?: string;
  /** Custom SELECT, read as a subquery. */
  query?: string;
  cursorField?: string;
  primaryKey?: string[];
  /** Index of the entry in `source.tables`, for messages. */
  index: number;
}

/** A `source.tables[]` entry: only these keys (another is a typo, reported with the valid ones). */
const TableEntrySchema = z.strictObject({
  name: z.string().min(1).optional(),
  table: z.string().min(1).optional(),
  object: z.string().min(1).optional(),
  query: z.string().min(1).optional(),
  cursor_field: z.string().min(1).optional(),
  primary_key: z.union([z.string().min(1).transform((s) => [s]), z.array(z.string().min(1)).min(1)]).optional(),
});

/**
 * Split `schema.table` (each part optionally quoted with `"` or a backtick)
 * into its parts. A bare name has no schema.
 */
export function splitQualifiedName(name: string): { schema?: string; table: string } | undefined {
  const parts: string[] = [];
  let i = 0;
  while (i < name.length) {
    const q = name[i];
    if (q === '"' || q === '`') {
      let part = '';
      i++;
      for (;;) {
        if (i >= name.length) return undefined;
        if (name[i] === q) {
          if (name[i + 1] === q) {
            part += q;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += name[i++];
      }
      parts.push(part);
    } else {
      const dot = name.indexOf('.', i);
      const end = dot === -1 ? name.length : dot;
      parts.push(name.slice(i, end).trim());
      i = end;
    }
    if (i < name.length) {
      if (name[i] !== '.') return undefined;
      i++;
      if (i === name.length) return undefined;
    }
  }
  if (parts.length === 0 || parts.length > 2 || parts.some((p) => p === '')) return undefined;
  return parts.length === 2 ? { schema: parts[0]!, table: parts[1]! } : { table: parts[0]! };
}

/**
 * Read one `source.tables[]` entry: `{name: 'schema.table', object?,
 * cursor_field?, primary_key?}` or `{name?, object, query: 'SELECT …'}`.
 * Throws CONFIG_INVALID naming the key.
 */
export function parseTableSpec(spec: SourceObjectSpec, index: number, plan: JobPlan, connector: string): TableSpec {
  const parsed = TableEntrySchema.safeParse(spec.config);
  const base = `source.tables[${index}]`;
  const fail = (key: string, message: string): never => {
    throw new DativoError('CONFIG_INVALID', `${connector} table ${spec.name}: ${message}`, {
      context: { file: plan.file, key, connector, object: spec.name },
      problems: [{ file: plan.file, key, message }],
    });
  };
  if (!parsed.success) {
    throw new DativoError('CONFIG_INVALID', `invalid ${connector} table entry ${spec.name}`, {
      context: { file: plan.file, key: base, connector, object: spec.name },
      problems: zodProblems(parsed.error, plan.file, base),
    });
  }
  const e = parsed.data;
  const out: TableSpec = { object: spec.name, index };
  if (e.query !== undefined) {
    out.query = e.query.trim().replace(/;\s*$/, '');
  } else {
    const name = e.table ?? e.name;
    if (name === undefined) return fail(base, 'give the table as `name: schema.table` or a `query:`');
    const q = splitQualifiedName(name);
    if (q === undefined) return fail(`${base}.name`, `"${name}" is not a table name (expected table or schema.table)`);
    if (q.schema !== undefined) out.schema = q.schema;
    out.table = q.table;
  }
  if (e.cursor_field !== undefined) out.cursorField = e.cursor_field;
  if (e.primary_key !== undefined) out.primaryKey = e.primary_key;
  return out;
}

/** Index of an object in `plan.source.objects` (for messages), or 0. */
export function objectIndex(plan: JobPlan, object: SourceObjectSpec): number {
  const i = plan.source.objects.indexOf(object);
  return i === -1 ? Math.max(0, plan.source.objects.findIndex((o) => o.name === object.name)) : i;
}

/**
 * The SQL sources' keys of the `source` block, checked by `loadJob`:
 * `connection` (host, port 1-65535, database, user, password, ssl, timeouts,
 * batch size; other keys pass, as libpq options do) and `tables`.
 */
export const sqlSourceOptions = z.looseObject({
  connection: ConnectionSchema.extend({ port: intLike.pipe(z.number().min(1).max(65535)).optional() }).optional(),
  tables: z.array(TableEntrySchema).optional(),
});

/**
 * The objects of `source.tables`: one per entry, named by its `object`, else
 * its `name`; a table's `cursor_field` is the job's cursor column unless the
 * job names one.
 */
export function tableObjects(options: Record<string, unknown>, _asset: unknown, ctx: ObjectsContext): DeclaredObject[] {
  const tables = Array.isArray(options['tables']) ? (options['tables'] as unknown[]) : [];
  const out: DeclaredObject[] = [];
  tables.forEach((e, i) => {
    if (!isRecord(e)) return;
    const key = ['source', 'tables', i] as const;
    const name = e['object'] ?? e['name'];
    if (typeof name !== 'string' || name === '') {
      ctx.problem(key, 'needs an object or name');
      return;
    }
    const cursor = e['cursor_field'];
    out.push({ name, config: e, key, ...(typeof cursor === 'string' ? { cursorField: cursor } : {}) });
  });
  return out;
}
