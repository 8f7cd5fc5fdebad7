/**
 * Which rows of a table one run reads: the cursor filter of the SQL sources.
 *
 * Semantics (DESIGN.md "Incremental sync"): read `cursor >= saved` and let
 * the engine's `track` stage drop the rows at exactly `saved` that were
 * already written (their identities are kept in state), so ties are neither
 * missed nor duplicated; no ORDER BY is needed because `track` computes the
 * maximum itself and caps it at run start minus the lag.
 *
 * NULL cursor values (documented in docs/connectors/postgres.md): rows whose
 * cursor is NULL are read on a full refresh and on the first incremental run
 * (no saved cursor), also when `lookback_days` limits that first run. Later
 * runs cannot tell a new NULL-cursor row from an old one, so they do not
 * re-read them; the connector counts them and logs a warning with the count
 * (`event_type: cursor_nulls_skipped`), never dropping them silently.
 */
import { DativoError } from '../../lib/errors.js';
import type { ReadContext } from '../../lib/connector.js';
import type { FieldKind } from '../../lib/types.js';
import { formatDateDays, formatTimestampMicros } from '../../lib/records/time.js';
import type { TableSpec } from './options.js';

/** How the cursor value is bound as a parameter (`text`: as the saved text, compared in the column's type). */
export type CursorKind = 'timestamp' | 'date' | 'integer' | 'text';

/** The filter of one read. */
export type CursorFilter =
  | {
      mode: 'all';
      /** The cursor column, when the job is incremental (first run without lookback). */
      field?: string;
    }
  | {
      mode: 'from';
      field: string;
      kind: CursorKind;
      /** Lower bound, inclusive: canonical text (ISO-8601 `…Z` for timestamps, `YYYY-MM-DD`, digits). */
      value: string;
      /** True on the first run (lookback window): NULL-cursor rows are read too. */
      includeNulls: boolean;
      /** Where the bound came from. */
      origin: 'saved' | 'lookback';
    };

function kindOf(strategy: string, assetKind: FieldKind | undefined): CursorKind {
  if (strategy === 'id') return 'integer';
  switch (assetKind) {
    case 'date':
      return 'date';
    case 'long':
    case 'int':
      return 'integer';
    case 'string':
    case 'decimal':
    case 'float':
    case 'double':
      return 'text';
    default:
      return 'timestamp';
  }
}

/**
 * The cursor column of a table: the table entry's `cursor_field`, else
 * `source.incremental.cursor_field`, else the asset's. The engine tracks
 * `source.incremental.cursor_field`, so a table entry naming another column
 * is a config error rather than a silent mismatch.
 */
export function cursorFieldOf(ctx: ReadContext, table: TableSpec): string | undefined {
  const inc = ctx.plan.source.incremental;
  const fromJob = inc?.cursorField;
  if (table.cursorField !== undefined && fromJob !== undefined && table.cursorField !== fromJob) {
    const key = `source.tables[${table.index}].cursor_field`;
    throw new DativoError('CONFIG_INVALID', `table ${table.object}: cursor_field "${table.cursorField}" differs from source.incremental.cursor_field "${fromJob}"`, {
      context: { file: ctx.plan.file, key, object: table.object },
      problems: [{ file: ctx.plan.file, key, message: `differs from source.incremental.cursor_field "${fromJob}"` }],
    });
  }
  return table.cursorField ?? fromJob ?? ctx.plan.asset.cursorField;
}

/**
 * Decide the filter of one read from the plan, the saved state and the run
 * start time. Throws CONFIG_INVALID when incremental is on but no cursor
 * column is known, or when the saved cursor belongs to another column.
 */
export function cursorFilter(ctx: ReadContext, table: TableSpec): CursorFilter {
  const inc = ctx.plan.source.incremental;
  if (ctx.fullRefresh || ctx.plan.syncMode === 'full_refresh' || inc === undefined || inc.strategy === 'file_modified') {
    return { mode: 'all' };
  }
  const field = cursorFieldOf(ctx, table);
  if (field === undefined) {
    const key = 'source.incremental.cursor_field';
    throw new DativoError('CONFIG_INVALID', `table ${table.object}: incremental strategy "${inc.strategy}" needs a cursor column`, {
      context: { file: ctx.plan.file, key, object: table.object },
      problems: [{ file: ctx.plan.file, key, message: `strategy "${inc.strategy}" needs a cursor column (or set it per table: source.tables[${table.index}].cursor_field)` }],
    });
  }
  const kind = kindOf(inc.strategy, ctx.plan.asset.fields.find((f) => f.name === field)?.type.kind);
  const saved = ctx.state?.cursor;
  if (saved !== undefined) {
    if (saved.field !== field) {
      const key = 'source.incremental.cursor_field';
      throw new DativoError(
        'CONFIG_INVALID',
        `table ${table.object}: the saved cursor is on column "${saved.field}" but the job now uses "${field}"; reset the object's state to re-read it`,
        { context: { file: ctx.plan.file, key, object: table.object }, problems: [{ file: ctx.plan.file, key, message: `saved state has cursor column "${saved.field}"` }] },
      );
    }
    return { mode: 'from', field, kind, value: saved.value, includeNulls: false, origin: 'saved' };
  }
  if (inc.lookbackDays > 0 && (kind === 'timestamp' || kind === 'date')) {
    const fromMicros = BigInt(ctx.runStartedAt.getTime()) * 1000n - BigInt(Math.round(inc.lookbackDays * 86_400)) * 1_000_000n;
    const value = kind === 'date' ? formatDateDays(Number(fromMicros / 86_400_000_000n) - (fromMicros % 86_400_000_000n < 0n ? 1 : 0)) : formatTimestampMicros(fromMicros);
    return { mode: 'from', field, kind, value, includeNulls: true, origin: 'lookback' };
  }
  return { mode: 'all', field };
}
