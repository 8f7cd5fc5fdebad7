/**
 * Which columns a SQL source selects, checked against what the table (or
 * custom query) really has: the asset's columns plus the cursor and primary
 * key columns. Selecting only these keeps unrelated wide columns off the
 * wire; columns the asset does not declare would be dropped by validate anyway.
 */
import { DativoError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { Asset } from '../../lib/types.js';
import type { TableSpec } from './options.js';

/** A human name of the table or query, for messages. */
export function sourceLabel(t: TableSpec): string {
  if (t.query !== undefined) return `query of ${t.object}`;
  return t.schema !== undefined ? `${t.schema}.${t.table}` : t.table!;
}

/**
 * The columns to select, in asset order. Throws SOURCE_NOT_FOUND naming the
 * cursor column, a primary key column or a required asset column that the
 * source lacks; optional asset columns that are missing are logged and left
 * to validate (they become NULL).
 */
export function selectColumns(
  asset: Asset,
  available: readonly string[],
  t: TableSpec,
  opts: { connector: string; cursorField?: string; primaryKey?: readonly string[]; log?: Logger },
): string[] {
  const have = new Set(available);
  const where = sourceLabel(t);
  const notFound = (column: string, role: string): never => {
    throw new DativoError('SOURCE_NOT_FOUND', `${opts.connector}: ${role} column "${column}" does not exist in ${where} (columns: ${available.join(', ')})`, {
      context: { connector: opts.connector, object: t.object, table: where, column },
    });
  };
  if (opts.cursorField !== undefined && !have.has(opts.cursorField)) notFound(opts.cursorField, 'cursor');
  for (const k of opts.primaryKey ?? []) if (!have.has(k)) notFound(k, 'primary key');
  const out: string[] = [];
  const missing: string[] = [];
  for (const f of asset.fields) {
    if (have.has(f.name)) out.push(f.name);
    else if (f.required) notFound(f.name, 'required');
    else missing.push(f.name);
  }
  if (missing.length > 0) {
    opts.log?.warn({ event_type: 'columns_missing', columns: missing, table: where }, `${where} has no column(s) ${missing.join(', ')}: they will be NULL`);
  }
  for (const extra of [opts.cursorField, ...(opts.primaryKey ?? [])]) {
    if (extra !== undefined && !out.includes(extra)) out.push(extra);
  }
  return out;
}
