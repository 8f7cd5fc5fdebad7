/**
 * Which rows of a table one run reads: the cursor window of the SQL sources.
 *
 * Semantics (docs/configuration.md "Incremental sync"): each run reads a
 * half-open window `from <= cursor < to` and reports it to the engine
 * (ReadContext.reportWindow), which saves `to` as the next `from`: no tie
 * keys, state of constant size, every row read once however many share a
 * value. `to`, the high watermark, comes from the database, never from this
 * machine's clock:
 * - timestamp cursors: the database clock at the start of the read's
 *   transaction minus `lag_seconds` (exclusive). For a column without a time
 *   zone (Postgres `timestamp`, MySQL `DATETIME`) the earlier of the clock
 *   in UTC and in the database's default time zone, so rows written as local
 *   times behind UTC are not skipped;
 * - date cursors: the database's current date (same rule) of that instant
 *   minus the lag, exclusive: a day is read once it is over;
 * - id and other cursors (integers, strings, decimals): `max(cursor)` in the
 *   read's own snapshot, inclusive; the next run reads `cursor > to`.
 * A saved cursor of an earlier version (a value plus tie keys) is read
 * `>= value` once; the engine drops the rows of its tie keys.
 *
 * NULL cursor values (documented in docs/connectors/postgres.md): rows whose
 * cursor is NULL are read on a full refresh and on the first incremental run
 * (no saved cursor), also when `lookback_days` limits that first run. Later
 * runs cannot tell a new NULL-cursor row from an old one, so they do not
 * re-read them; the connector counts them and logs a warning with the count
 * (`event_type: cursor_nulls_skipped`), never dropping them silently.
 */
import { DativoError } from '../../lib/errors.js';
import type { CursorWindow, ReadContext } from '../../lib/connector.js';
import type { FieldKind } from '../../lib/types.js';
import { formatDateDays, formatTimestampMicros, parseTimestampMicros } from '../../lib/records/time.js';
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
      /** Lower bound: canonical text (ISO-8601 `…Z` for timestamps, `YYYY-MM-DD`, digits). */
      value: string;
      /** `>=` (false only after a window whose upper bound was inclusive: `> value`). */
      inclusive: boolean;
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

const DAY_MICROS = 86_400_000_000n;

function floorDays(us: bigint): number {
  return Number((us - (((us % DAY_MICROS) + DAY_MICROS) % DAY_MICROS)) / DAY_MICROS);
}

/**
 * Decide the lower bound of one read from the plan and the saved state; a
 * first run with `lookback_days` starts that many days before `nowMicros`
 * (the database clock; default the run start). Throws CONFIG_INVALID when
 * incremental is on but no cursor column is known, or when the saved cursor
 * belongs to another column.
 */
export function cursorFilter(ctx: ReadContext, table: TableSpec, nowMicros?: bigint): CursorFilter {
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
    return { mode: 'from', field, kind, value: saved.value, inclusive: saved.upper !== 'inclusive', includeNulls: false, origin: 'saved' };
  }
  if (inc.lookbackDays > 0 && (kind === 'timestamp' || kind === 'date')) {
    const now = nowMicros ?? BigInt(ctx.runStartedAt.getTime()) * 1000n;
    const fromMicros = now - BigInt(Math.round(inc.lookbackDays * 86_400)) * 1_000_000n;
    const value = kind === 'date' ? formatDateDays(floorDays(fromMicros)) : formatTimestampMicros(fromMicros);
    return { mode: 'from', field, kind, value, inclusive: true, includeNulls: true, origin: 'lookback' };
  }
  return { mode: 'all', field };
}

/** The database clock at the start of a read, as canonical timestamp texts. */
export interface DbClock {
  /** Now in UTC. */
  utc: string;
  /** The same instant as wall-clock time of the database's default time zone (null when unknown). */
  local: string | null;
}

/** A bound of the window: canonical text and whether the value itself is in. */
export interface Bound {
  value: string;
  inclusive: boolean;
}

/** The full window of one incremental read (see the module comment). */
export interface ReadWindow {
  field: string;
  kind: CursorKind;
  from?: Bound;
  /** Undefined when no row with a cursor can be in the window (`max` found none): the cursor condition is false. */
  to?: Bound;
  /** First run: NULL-cursor rows are read too. */
  includeNulls: boolean;
  /** What the engine is told (counts are added once measured). */
  report: CursorWindow;
}

function micros(text: string): bigint {
  const us = parseTimestampMicros(text);
  if (typeof us === 'string') throw new DativoError('INTERNAL', `database clock value ${JSON.stringify(text)} is not a timestamp: ${us}`);
  return us;
}

/**
 * The instant the window's watermark is taken at: the database clock, or for
 * a column that stores wall-clock time without a zone (`naive`) the earlier
 * of its UTC and default-zone readings.
 */
export function clockMicros(clock: DbClock, naive: boolean): bigint {
  const utc = micros(clock.utc);
  if (!naive || clock.local === null) return utc;
  const local = micros(clock.local);
  return local < utc ? local : utc;
}

/**
 * The window of one incremental read, from its lower bound and the
 * watermark source: the database clock (timestamp and date cursors) or the
 * `max` of the cursor above the lower bound in the read's snapshot (other
 * kinds; null when there is none).
 */
export function readWindow(
  filter: CursorFilter,
  kind: CursorKind,
  watermark: { clock: DbClock; naive: boolean; lagSeconds: number } | { max: string | null },
): ReadWindow | undefined {
  if (filter.field === undefined) return undefined;
  const field = filter.field;
  const from: Bound | undefined = filter.mode === 'from' ? { value: filter.value, inclusive: filter.inclusive } : undefined;
  const includeNulls = filter.mode === 'all' || filter.includeNulls;
  if ('clock' in watermark) {
    const at = clockMicros(watermark.clock, watermark.naive) - BigInt(Math.round(watermark.lagSeconds * 1e6));
    const isDate = kind === 'date';
    const toText = isDate ? formatDateDays(floorDays(at)) : formatTimestampMicros(at);
    const to: Bound = { value: toText, inclusive: false };
    const lag = `lag_seconds ${watermark.lagSeconds}`;
    const basis = `the database clock${watermark.naive ? ' (the earlier of UTC and its default time zone, for a column without a time zone)' : ''} minus ${lag}${isDate ? ', as a date' : ''}`;
    // Not past the lower bound: nothing new can be read, the saved cursor stays.
    const empty = from !== undefined && (isDate ? toText <= from.value : at <= micros(from.value));
    return { field, kind, ...(from ? { from } : {}), to, includeNulls, report: { field, ...(from ? { from: from.value, fromInclusive: from.inclusive } : {}), ...(empty ? {} : { to: toText }), upper: 'exclusive', basis } };
  }
  const to: Bound | undefined = watermark.max === null ? undefined : { value: watermark.max, inclusive: true };
  return {
    field,
    kind,
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    includeNulls,
    report: { field, ...(from ? { from: from.value, fromInclusive: from.inclusive } : {}), ...(to ? { to: to.value } : {}), upper: 'inclusive', basis: `max(${field}) in the read's snapshot` },
  };
}

/** How the cursor of a read is bound (also for a first run without lookback, whose filter has no kind). */
export function filterKind(ctx: ReadContext, filter: CursorFilter): CursorKind | undefined {
  if (filter.mode === 'from') return filter.kind;
  if (filter.field === undefined) return undefined;
  const inc = ctx.plan.source.incremental;
  return kindOf(inc?.strategy ?? 'updated', ctx.plan.asset.fields.find((f) => f.name === filter.field)?.type.kind);
}

/** True when the window's watermark comes from the database clock (else from `max(cursor)`). */
export function clockBound(kind: CursorKind): boolean {
  return kind === 'timestamp' || kind === 'date';
}

/** What the window SQL needs of a dialect. */
export interface WindowDialect {
  quote(name: string): string;
  /** The placeholder of the `n`-th (1-based) parameter: `$n` or `?`. */
  param(n: number): string;
  /** A bound's value as the driver binds it for a cursor of `kind`. */
  bind(kind: CursorKind, value: string): unknown;
  /** An aggregate counting the rows where `cond` holds, never NULL. */
  countIf(cond: string): string;
}

/** The WHERE condition of a window read, with its parameters (first run: `OR cursor IS NULL`). */
export function windowWhere(w: ReadWindow, d: WindowDialect, first = 1): { cond: string; values: unknown[] } {
  const c = d.quote(w.field);
  const values: unknown[] = [];
  const bound = (b: Bound, lower: boolean): string => {
    values.push(d.bind(w.kind, b.value));
    return `${c} ${lower ? (b.inclusive ? '>=' : '>') : b.inclusive ? '<=' : '<'} ${d.param(first + values.length - 1)}`;
  };
  const parts: string[] = [];
  if (w.to === undefined) parts.push('FALSE');
  else {
    if (w.from) parts.push(bound(w.from, true));
    parts.push(bound(w.to, false));
  }
  const cond = parts.join(' AND ');
  return { cond: w.includeNulls ? `(${cond} OR ${c} IS NULL)` : cond, values };
}

/**
 * One counting pass over the cursor column, in the read's snapshot: rows
 * with a cursor, with a NULL cursor, behind the window (before `from`) and
 * below the next cursor (before `to`). What {@link windowCounts} reads back.
 */
export function windowCountSql(w: ReadWindow, from: string, d: WindowDialect): { sql: string; values: unknown[] } {
  const c = d.quote(w.field);
  const values: unknown[] = [];
  const cols = [`${d.countIf(`${c} IS NOT NULL`)} AS n_rows`, `${d.countIf(`${c} IS NULL`)} AS n_nulls`];
  if (w.from) {
    values.push(d.bind(w.kind, w.from.value));
    cols.push(`${d.countIf(`${c} ${w.from.inclusive ? '<' : '<='} ${d.param(values.length)}`)} AS n_behind`);
  }
  if (w.to) {
    values.push(d.bind(w.kind, w.to.value));
    cols.push(`${d.countIf(`${c} ${w.to.inclusive ? '<=' : '<'} ${d.param(values.length)}`)} AS n_below`);
  }
  return { sql: `SELECT ${cols.join(', ')} FROM ${from}`, values };
}

/** Fill the window report's counts from the row of {@link windowCountSql}; returns the NULL-cursor count. */
export function windowCounts(w: ReadWindow, row: Record<string, unknown> | undefined): number {
  const n = (k: string): number | undefined => (row?.[k] === undefined || row[k] === null ? undefined : Number(row[k]));
  const rows = n('n_rows') ?? 0;
  const below = n('n_below');
  const behind = n('n_behind');
  w.report.rows = rows;
  w.report.behind = behind ?? 0;
  if (below !== undefined) {
    w.report.ahead = rows - below;
    if (w.report.to !== undefined) w.report.below = below;
  } else w.report.ahead = rows - (behind ?? 0);
  return n('n_nulls') ?? 0;
}
