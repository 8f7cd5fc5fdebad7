/**
 * Postgres source connector: tables, views and custom queries, full refresh
 * or incremental by a timestamp or increasing-id cursor, each table read in
 * one consistent snapshot with exact types. See docs/connectors/postgres.md.
 */
import pg from 'pg';
import type { Connector, ConnectorDescriptor, DiscoveredObject, ReadContext, SourceStream } from '../../lib/connector.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan, SourceObjectSpec } from '../../lib/plan.js';
import { selectColumns, sourceLabel } from '../sql/columns.js';
import { cursorFieldOf } from '../sql/cursor.js';
import { renderAssetYaml } from '../../lib/discover.js';
import { objectIndex, parseTableSpec, PG_ENV, resolveConnection, sqlSourceOptions, tableObjects, type TableSpec } from '../sql/options.js';
import { mapPgError } from './errors.js';
import { lookupUserTypes, notNullColumns, poolConfig, primaryKeyOf, resolveSource, SESSION_SQL } from './session.js';
import { PgSourceStream } from './stream.js';
import { assetTypeOf } from './types.js';

export { buildSelect, PgSourceStream } from './stream.js';
export { mapPgError } from './errors.js';

/** What the registry and the engine know about this connector. */
export const descriptor: ConnectorDescriptor = Object.freeze({
  name: 'postgres',
  roles: Object.freeze(['source'] as const),
  allowedInCloud: false,
  incrementalStrategies: Object.freeze(['updated', 'created', 'id']),
  sortedByCursor: false,
  description: 'PostgreSQL tables, views and custom queries (pg, server-side portal, one REPEATABLE READ snapshot per table)',
});

function tableOf(plan: JobPlan, object: SourceObjectSpec): TableSpec {
  return parseTableSpec(object, objectIndex(plan, object), plan, 'postgres');
}

/** Run `fn` with one pooled connection in a UTC session; the pool is closed afterwards. */
async function withClient<T>(plan: JobPlan, signal: AbortSignal, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const pool = new pg.Pool(poolConfig(resolveConnection(plan, PG_ENV), 1));
  pool.on('error', () => undefined);
  let client: pg.PoolClient | undefined;
  const onAbort = (): void => client?.release(true);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    client = await pool.connect();
    client.on('error', () => undefined);
    await client.query(SESSION_SQL);
    const out = await fn(client);
    client.release();
    client = undefined;
    return out;
  } catch (err) {
    client?.release(true);
    client = undefined;
    throw mapPgError(err, {});
  } finally {
    signal.removeEventListener('abort', onAbort);
    await pool.end().catch(() => undefined);
  }
}

/**
 * Connect, authenticate and check every table of the job: the table exists,
 * and so do its cursor column, primary key columns and the asset's required
 * columns. Throws AUTH_FAILED, SOURCE_UNAVAILABLE or SOURCE_NOT_FOUND
 * (naming the table or column).
 */
export async function check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
  await withClient(plan, opts.signal, async (client) => {
    for (const object of plan.source.objects) {
      const t = tableOf(plan, object);
      try {
        const src = await resolveSource(client, t);
        const cursorField = plan.source.incremental && plan.source.incremental.strategy !== 'file_modified' ? (t.cursorField ?? plan.source.incremental.cursorField) : undefined;
        selectColumns(plan.asset, src.fields.map((f) => f.name), t, {
          connector: 'postgres',
          ...(cursorField !== undefined ? { cursorField } : {}),
          ...(t.primaryKey ? { primaryKey: t.primaryKey } : {}),
          log: opts.log,
        });
      } catch (err) {
        throw mapPgError(err, { object: t.object, table: sourceLabel(t) });
      }
    }
  });
}

/**
 * Describe the job's tables from the catalog: columns with asset types
 * (`long`, `int`, `decimal(p,s)`, `timestamp`, `date`, `json`, `binary`,
 * `boolean`, `double`, `string`), NOT NULL as `required`, and the primary key
 * (the table entry's `primary_key` when given, else pg_index).
 */
export async function discover(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<DiscoveredObject[]> {
  return withClient(plan, opts.signal, async (client) => {
    const out: DiscoveredObject[] = [];
    for (const object of plan.source.objects) {
      const t = tableOf(plan, object);
      try {
        const src = await resolveSource(client, t);
        const notNull = await notNullColumns(client, src.fields);
        const userTypes = await lookupUserTypes(client, src.fields.map((f) => f.dataTypeID));
        const names = await client.query<{ t: string }>(
          'SELECT format_type(o, NULLIF(m, -1)) AS t FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS u(o, m, i) ORDER BY i',
          [src.fields.map((f) => f.dataTypeID), src.fields.map((f) => f.dataTypeModifier)],
        );
        const pk = t.primaryKey ?? (src.tableOid !== undefined ? await primaryKeyOf(client, src.tableOid) : []);
        out.push({
          name: t.object,
          primaryKey: pk,
          columns: src.fields.map((f, i) => ({
            name: f.name,
            type: assetTypeOf(f.dataTypeID, f.dataTypeModifier, userTypes),
            required: notNull.has(`${f.tableID}:${f.columnID}`) || pk.includes(f.name),
            sourceType: names.rows[i]?.t ?? String(f.dataTypeID),
          })),
        });
      } catch (err) {
        throw mapPgError(err, { object: t.object, table: sourceLabel(t) });
      }
    }
    return out;
  });
}

/**
 * `dativo discover <job>` for Postgres: the asset YAML (flat ODCS) of the
 * job's tables, ready to save as the job's asset file.
 */
export async function discoverAsset(plan: JobPlan, opts: { signal?: AbortSignal; log: Logger }): Promise<string> {
  const objects = await discover(plan, { signal: opts.signal ?? new AbortController().signal, log: opts.log });
  return renderAssetYaml(plan, 'postgres', objects);
}

/** Open the record stream of one table. */
export function read(ctx: ReadContext): SourceStream {
  const t = tableOf(ctx.plan, ctx.object);
  cursorFieldOf(ctx, t);
  return new PgSourceStream(ctx, resolveConnection(ctx.plan, PG_ENV), t);
}

/**
 * The table entry's `primary_key`, when it declares one; otherwise the
 * engine uses the asset's (`dativo discover` copies the catalog's key into
 * the asset). Without any, tie handling uses whole-row identity.
 */
export function primaryKey(object: SourceObjectSpec, plan: JobPlan): string[] | undefined {
  return tableOf(plan, object).primaryKey;
}

const connector: Connector = { descriptor, options: sqlSourceOptions, check, read, discover, primaryKey, objects: tableObjects };
export default connector;
