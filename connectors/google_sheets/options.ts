/**
 * The Google Sheets source's options: `source.sheets` (which ranges, into
 * which object), `source.window_rows`, `source.time_zone`, and the shared
 * Google `source.connection` / `source.credentials`, checked once by `loadJob` (and so `dativo validate`)
 * with every other config problem; and the objects the entries declare.
 */
import { z } from 'zod';
import { parseSourceOptions } from '../../lib/config/source-options.js';
import { intLike, stringLike } from '../../lib/config/zod-util.js';
import { googleSourceOptions } from '../google/options.js';
import type { DeclaredObject, ObjectsContext } from '../../lib/connector.js';
import { DativoError } from '../../lib/errors.js';
import type { JobPlan, SourceObjectSpec } from '../../lib/plan.js';
import type { Asset } from '../../lib/types.js';
import { parseRange, type SheetRange } from './a1.js';
import { zoneOffset } from './convert.js';

/** Rows per values request unless `source.window_rows` says otherwise. */
export const DEFAULT_WINDOW_ROWS = 5000;

const SheetEntrySchema = z.strictObject({
  spreadsheet_id: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be a spreadsheet id (the part of its URL after /d/)'),
  range: z
    .string()
    .superRefine((v, ctx) => {
      const r = parseRange(v);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    })
    .optional(),
  object: stringLike.optional(),
});

/**
 * The Sheets source's keys of the `source` block: the shared Google ones
 * (`connection`, `credentials`: connectors/google/options.ts) and its own.
 */
export const sheetsSourceOptions = googleSourceOptions.extend({
  sheets: z.array(SheetEntrySchema).min(1, 'name at least one {spreadsheet_id, range}'),
  window_rows: intLike.pipe(z.number().int().min(1).max(100_000)).optional(),
  time_zone: z
    .string()
    .superRefine((v, ctx) => {
      if (v === 'spreadsheet') return;
      const o = zoneOffset(v);
      if (typeof o === 'string') ctx.addIssue({ code: 'custom', message: `${o}, or "spreadsheet" (the default: the spreadsheet's own time zone)` });
    })
    .optional(),
});

/** One range to read. */
export interface SheetSpec {
  spreadsheetId: string;
  /** As written (for messages); default: the first sheet, whole. */
  rangeText: string;
  range: SheetRange;
  /** Where it is declared, e.g. `source.sheets[0]`. */
  key: string;
}

/** Parsed options (the connection and credentials are the shared module's `googleSettings`). */
export interface SheetsSettings {
  windowRows: number;
  /** `spreadsheet` (each spreadsheet's own time zone) or a zone name. */
  timeZone: string;
}

function parsed(plan: JobPlan): z.infer<typeof sheetsSourceOptions> {
  return parseSourceOptions(plan, sheetsSourceOptions, 'google_sheets', 'Google Sheets');
}

/**
 * The settings of a plan.
 * @throws DativoError CONFIG_INVALID listing every bad key (never a key's value).
 */
export function sheetsSettings(plan: JobPlan): SheetsSettings {
  const o = parsed(plan);
  return { windowRows: o.window_rows ?? DEFAULT_WINDOW_ROWS, timeZone: o.time_zone ?? 'spreadsheet' };
}

/** The ranges of one object (its `config.sheets`, as `objects()` grouped them). */
export function sheetSpecs(plan: JobPlan, object: SourceObjectSpec): SheetSpec[] {
  const entries = Array.isArray(object.config['sheets']) ? (object.config['sheets'] as Record<string, unknown>[]) : [];
  if (entries.length === 0) {
    const key = 'source.sheets';
    throw new DativoError('CONFIG_INVALID', `google_sheets: object ${object.name} names no sheet; list it under source.sheets`, {
      problems: [{ file: plan.file, key, message: `object ${object.name} names no sheet` }],
      context: { connector: 'google_sheets', object: object.name, key, file: plan.file },
    });
  }
  return entries.map((e) => {
    const rangeText = typeof e['range'] === 'string' ? e['range'] : '';
    const range = rangeText === '' ? { sheet: undefined, firstColumn: 1, firstRow: 1 } : parseRange(rangeText);
    if (typeof range === 'string') throw new DativoError('CONFIG_INVALID', `google_sheets: range ${range}`, { context: { connector: 'google_sheets', file: plan.file } });
    return { spreadsheetId: String(e['spreadsheet_id']), rangeText, range, key: `source.sheets[${String(e['index'] ?? 0)}]` };
  });
}

/**
 * The object of `source.sheets`: the entries grouped by `object` (default
 * the asset's object). A job writes one table, and a changed sheet replaces
 * that table's rows, so one job reads one object: entries naming another
 * object are a problem (put them in a job of their own).
 */
export function sheetsObjects(options: Record<string, unknown>, asset: Asset | undefined, ctx: ObjectsContext): DeclaredObject[] {
  const entries = Array.isArray(options['sheets']) ? (options['sheets'] as unknown[]) : [];
  const defaultObject = asset?.object ?? asset?.name ?? 'sheet';
  let first: { name: string; index: number } | undefined;
  const grouped: Record<string, unknown>[] = [];
  entries.forEach((e, index) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) return;
    const entry = e as Record<string, unknown>;
    const named = entry['object'];
    const name = typeof named === 'string' && named !== '' ? named : typeof named === 'number' ? String(named) : defaultObject;
    if (first === undefined) first = { name, index };
    if (name !== first.name) {
      ctx.problem(['source', 'sheets', index, 'object'], `a job reads one object (its table is replaced by the sheet on every change), and source.sheets[${first.index}] reads "${first.name}": put "${name}" in a job of its own`);
      return;
    }
    grouped.push({ ...entry, index });
  });
  if (first === undefined) return [];
  return [{ name: first.name, config: { sheets: grouped }, key: ['source', 'sheets', first.index] }];
}
