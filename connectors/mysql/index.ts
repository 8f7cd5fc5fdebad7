/**
 * MySQL / MariaDB source connector: tables, views and custom queries, full
 * refresh or incremental by a timestamp or increasing-id cursor, each table
 * read in one consistent snapshot with exact types. See docs/connectors/mysql.md.
 */
import type { PoolConnection } from 'mysql2';
import type { Connector, ConnectorDescriptor, DiscoveredObject, ReadContext, SourceStream } from '../../lib/connector.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan, SourceObjectSpec } from '../../lib/plan.js';
import { selectColumns, sourceLabel } from '../sql/columns.js';
import { cursorFieldOf } from '../sql/cursor.js';
import { renderAssetYaml } from '../../lib/discover.js';
import { MYSQL_ENV, objectIndex, parseTableSpec, resolveConnection, sqlSourceOptions, tableObjects, type TableSpec } from '../sql/options.js';
import { mapMysqlError } from './errors.js';
import { columnInfo, createPool, endPool, getConnection, prepareSession, primaryKeyOf, resolveSource } from './session.js';
import { MysqlSourceStream } from './stream.js';
import { assetTypeOf, isNotNull } from './types.js';

export { buildSelect, MysqlSourceStream } from './stream.js';
export { mapMysqlError } from './errors.js';

/** What the registry and the engine know about this connector. */
export const descriptor: ConnectorDescriptor = Object.freeze({
  name: 'mysql',
  roles: Object.freeze(['source'] as const),
  allowedInCloud: false,
  incrementalStrategies: Object.freeze(['updated', 'created', 'id']),
  sortedByCursor: false,
  description: 'MySQL 8 / MariaDB tables, views and custom queries (mysql2 streaming, one consistent snapshot per table)',
});

function tableOf(plan: JobPlan, object: SourceObjectSpec): TableSpec {
  return parseTableSpec(object, objectIndex(plan, object), plan, 'mysql');
}

/** Run `fn` with one pooled connection in a UTC session; the pool is closed afterwards. */
async function withConnection<T>(plan: JobPlan, signal: AbortSignal, fn: (c: PoolConnection) => Promise<T>): Promise<T> {
  const settings = resolveConnection(plan, MYSQL_ENV);
  const pool = createPool(settings, 1);
  let conn: PoolConnection | undefined;
  const onAbort = (): void => conn?.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    conn = await getConnection(pool);
    conn.on('error', () => undefined);
    await prepareSession(conn, settings);
    const out = await fn(conn);
    conn.release();
    conn = undefined;
    return out;
  } catch (err) {
    conn?.destroy();
    conn = undefined;
    throw mapMysqlError(err, {});
  } finally {
    signal.removeEventListener('abort', onAbort);
    await endPool(pool);
  }
}

/**
 * Connect, authenticate and check every table of the job: the table exists,
 * and so do its cursor column, primary key columns and the asset's required
 * columns. Throws AUTH_FAILED, SOURCE_UNAVAILABLE or SOURCE_NOT_FOUND.
 */
export async function check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
  await withConnection(plan, opts.signal, async (conn) => {
    for (const object of plan.source.objects) {
      const t = tableOf(plan, object);
      try {
        const src = await resolveSource(conn, t);
        const inc = plan.source.incremental;
        const cursorField = inc && inc.strategy !== 'file_modified' ? (t.cursorField ?? inc.cursorField) : undefined;
        selectColumns(plan.asset, src.fields.map((f) => f.name), t, {
          connector: 'mysql',
          ...(cursorField !== undefined ? { cursorField } : {}),
          ...(t.primaryKey ? { primaryKey: t.primaryKey } : {}),
          log: opts.log,
        });
      } catch (err) {
        throw mapMysqlError(err, { object: t.object, table: sourceLabel(t) });
      }
    }
  });
}

/**
 * Describe the job's tables: columns with asset types, NOT NULL as
 * `required`, and the primary key (the table entry's `primary_key`, else
 * information_schema).
 */
export async function discover(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<DiscoveredObject[]> {
  return withConnection(plan, opts.signal, async (conn) => {
    const out: DiscoveredObject[] = [];
    for (const object of plan.source.objects) {
      const t = tableOf(plan, object);
      try {
        const src = await resolveSource(conn, t);
        const info = await columnInfo(conn, t);
        const pk = t.primaryKey ?? (await primaryKeyOf(conn, t));
        out.push({
          name: t.object,
          primaryKey: pk,
          columns: src.fields.map((f) => {
            const ci = info.get(f.name);
            return {
              name: f.name,
              type: assetTypeOf(f, ci),
              required: (ci ? !ci.nullable : isNotNull(f)) || pk.includes(f.name),
              ...(ci ? { sourceType: ci.columnType } : {}),
            };
          }),
        });
      } catch (err) {
        throw mapMysqlError(err, { object: t.object, table: sourceLabel(t) });
      }
    }
    return out;
  });
}

/** `dativo discover <job>` for MySQL: the asset YAML (flat ODCS) of the job's tables. */
export async function discoverAsset(plan: JobPlan, opts: { signal?: AbortSignal; log: Logger }): Promise<string> {
  const objects = await discover(plan, { signal: opts.signal ?? new AbortController().signal, log: opts.log });
  return renderAssetYaml(plan, 'mysql', objects);
}

/** Open the record stream of one table. */
export function read(ctx: ReadContext): SourceStream {
  const t = tableOf(ctx.plan, ctx.object);
  cursorFieldOf(ctx, t);
  return new MysqlSourceStream(ctx, resolveConnection(ctx.plan, MYSQL_ENV), t);
}

/** The table entry's `primary_key`, when it declares one (else the asset's is used; see docs). */
export function primaryKey(object: SourceObjectSpec, plan: JobPlan): string[] | undefined {
  return tableOf(plan, object).primaryKey;
}

const connector: Connector = { descriptor, options: sqlSourceOptions, check, read, discover, primaryKey, objects: tableObjects };
export default connector;
