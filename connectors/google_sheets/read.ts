/**
 * Reading one object of a Sheets job: its spreadsheets' Drive
 * `modifiedTime` first (all unchanged since the last run: nothing is read),
 * then each range: the sheet's grid size (spreadsheets.get), the header row
 * with the first window in one values.batchGet, and the following windows
 * of `window_rows` rows with values.get, each fetched only when the stream
 * wants more. Every call goes through the job's retry policy and limiter.
 *
 * A changed object is read whole and replaces its table's rows (an
 * overwrite snapshot, `replacesTable()`), so the table is always the sheet
 * as it is now; the `modifiedTime` taken before the read is saved, so an
 * edit made during the read is read by the next run.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { ReadContext, SourceStream } from '../../lib/connector.js';
import { DativoError, isDativoError } from '../../lib/errors.js';
import { sdkError, type HttpClient } from '../../lib/http.js';
import { withLocation } from '../../lib/records/location.js';
import { networkOf } from '../../lib/run/network.js';
import type { AssetField, FileMark, ObjectState } from '../../lib/types.js';
import { a1, windows } from './a1.js';
import { convertCell, zoneOffset, type ZoneOffset } from './convert.js';
import { googleClients, type GoogleClients } from './google.js';
import { matchHeader, type HeaderMatch } from './header.js';
import type { SheetSpec, SheetsSettings } from './options.js';

/** Rows held ahead of the consumer (the stream's high-water mark); one window is held besides. */
export const READ_AHEAD_ROWS = 500;

/** Counts of one read, logged at the end. */
export interface SheetsReadCounts {
  rows: number;
  /** Blank rows between data rows (skipped). */
  blankRows: number;
  rejected: number;
  /** values requests (the header's batchGet included). */
  windows: number;
}

/** What the grid metadata says of the sheet a range is on. */
interface SheetGrid {
  title: string;
  rowCount: number;
  columnCount: number;
  timeZone: string | undefined;
  spreadsheetTitle: string;
}

type Values = unknown[][];

/** The keep-alive agent of one read (closed with the read's stream). */
export function sheetsAgent(settings: SheetsSettings): http.Agent {
  return settings.baseUrl?.startsWith('http:') ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
}

function isBlankCell(c: unknown): boolean {
  return c === undefined || c === null || c === '';
}

/** One object's read; `rows()` is its generator. */
export class SheetsRead {
  readonly counts: SheetsReadCounts = { rows: 0, blankRows: 0, rejected: 0, windows: 0 };
  /** Set when the read's stream closed: no attempt (no retry) starts after it. */
  closed = false;
  /** True when this read is the object's whole content and replaces the table's rows. */
  replaces = false;
  private marks: Record<string, FileMark> | undefined;
  private readonly client: HttpClient;
  private readonly incremental: boolean;

  constructor(
    private readonly ctx: ReadContext,
    private readonly settings: SheetsSettings,
    private readonly specs: SheetSpec[],
    private readonly google: GoogleClients,
  ) {
    this.client = networkOf(ctx, 'google_sheets').http({ credentialKey: google.credentialKey, timeoutMs: settings.timeoutMs });
    const inc = ctx.plan.source.incremental;
    this.incremental = !ctx.fullRefresh && ctx.plan.syncMode === 'incremental_append' && inc?.strategy === 'file_modified';
  }

  /** State to merge after a successful read: each spreadsheet's `modifiedTime` as it was before the read. */
  checkpoint(): Partial<ObjectState> {
    return this.marks !== undefined ? { files: this.marks } : {};
  }

  /** One API call under the policy and limiter; errors name the spreadsheet and whom to share it with. */
  async call<T>(spec: SheetSpec, what: string, fn: (signal: AbortSignal | undefined) => Promise<{ data: T }>): Promise<T> {
    const object = this.ctx.object.name;
    const res = await this.client.withPolicy(
      (signal) => {
        if (this.closed) throw new DativoError('ABORTED', `google_sheets ${object}: the read was closed`, { disposition: 'fatal', context: { connector: 'google_sheets', object } });
        return fn(signal);
      },
      { mapError: (err) => this.mapError(err, spec, what) },
    );
    return res.data;
  }

  private mapError(err: unknown, spec: SheetSpec, what: string): DativoError {
    const e = isDativoError(err) ? err : sdkError(err, 'google_sheets', { what, credentialKey: this.google.credentialKey, secrets: [...this.ctx.plan.secrets, ...this.google.secrets], context: { object: this.ctx.object.name } });
    const status = e.context.status;
    if (e.code !== 'SOURCE_NOT_FOUND' && !(e.code === 'AUTH_FAILED' && status === 403)) return e;
    // Sheets says 404 for an unknown id and 403 for one not shared; Drive says 404 for both.
    const message = `google_sheets: spreadsheet ${spec.spreadsheetId} (${spec.key}.spreadsheet_id) ${status === 404 ? 'does not exist or is not shared with' : 'is not shared with'} ${this.google.principal}: ${this.google.shareHint}`;
    return new DativoError(status === 404 ? 'SOURCE_NOT_FOUND' : 'AUTH_FAILED', message, {
      cause: e,
      disposition: 'fatal',
      context: { ...e.context, spreadsheet_id: spec.spreadsheetId, key: `${spec.key}.spreadsheet_id`, file: this.ctx.plan.file, share_with: this.google.principal },
    });
  }

  /** The spreadsheet's Drive `modifiedTime` (files.get fields=modifiedTime). */
  private async modifiedTime(spec: SheetSpec): Promise<string> {
    const file = await this.call(spec, `Drive files.get ${spec.spreadsheetId}`, (signal) =>
      this.google.drive.files.get({ fileId: spec.spreadsheetId, fields: 'modifiedTime', supportsAllDrives: true }, signal ? { signal } : {}),
    );
    const t = file.modifiedTime;
    if (typeof t !== 'string' || Number.isNaN(Date.parse(t))) {
      throw new DativoError('SOURCE_ERROR', `google_sheets: Drive gave no modifiedTime for spreadsheet ${spec.spreadsheetId}`, { disposition: 'fatal', context: { connector: 'google_sheets', spreadsheet_id: spec.spreadsheetId } });
    }
    return t;
  }

  /** Every row of this read. */
  async *rows(): AsyncGenerator<Record<string, unknown>> {
    const marks: Record<string, FileMark> = {};
    for (const spec of this.specs) if (marks[spec.spreadsheetId] === undefined) marks[spec.spreadsheetId] = { modifiedAt: await this.modifiedTime(spec) };
    const saved = this.ctx.state?.files;
    const ids = Object.keys(marks);
    const object = this.ctx.object.name;
    if (this.incremental && saved !== undefined && ids.every((id) => saved[id]?.modifiedAt === marks[id]!.modifiedAt)) {
      this.ctx.log.info(
        { event_type: 'sheets_unchanged', connector: 'google_sheets', spreadsheets: ids.map((id) => ({ id, modified_time: marks[id]!.modifiedAt })) },
        `google_sheets ${object}: ${ids.length === 1 ? `spreadsheet ${ids[0]} has` : `its ${ids.length} spreadsheets have`} not changed since the last run (Drive modifiedTime): nothing read`,
      );
      return;
    }
    this.replaces = this.incremental;
    for (const spec of this.specs) yield* this.readRange(spec);
    this.marks = marks;
    const c = this.counts;
    this.ctx.log.info(
      { event_type: 'sheets_read', connector: 'google_sheets', rows: c.rows, blank_rows: c.blankRows, rejected: c.rejected, requests: c.windows, replaces_table: this.replaces },
      `google_sheets ${object}: ${c.rows} row(s) in ${c.windows} values request(s)${c.blankRows > 0 ? `, ${c.blankRows} blank row(s) between data rows skipped` : ''}${this.replaces ? '; the table is replaced by this snapshot' : ''}`,
    );
  }

  /** The grid of the range's sheet (spreadsheets.get, no cell data). */
  private async grid(spec: SheetSpec): Promise<SheetGrid> {
    const meta = await this.call(spec, `spreadsheets.get ${spec.spreadsheetId}`, (signal) =>
      this.google.sheets.spreadsheets.get(
        { spreadsheetId: spec.spreadsheetId, includeGridData: false, fields: 'spreadsheetId,properties(title,timeZone),sheets(properties(sheetId,title,index,sheetType,gridProperties(rowCount,columnCount)))' },
        signal ? { signal } : {},
      ),
    );
    const sheets = (meta.sheets ?? []).map((s) => s.properties ?? {});
    const grids = sheets.filter((p) => p.sheetType === undefined || p.sheetType === null || p.sheetType === 'GRID');
    const want = spec.range.sheet;
    const p = want === undefined ? grids[0] : grids.find((x) => x.title === want);
    const spreadsheetTitle = meta.properties?.title ?? spec.spreadsheetId;
    if (!p) {
      const names = grids.map((x) => JSON.stringify(x.title ?? '')).join(', ');
      const message =
        want === undefined
          ? `google_sheets: spreadsheet ${spec.spreadsheetId} ("${spreadsheetTitle}") has no grid sheet to read`
          : `google_sheets: spreadsheet ${spec.spreadsheetId} ("${spreadsheetTitle}") has no sheet named ${JSON.stringify(want)} (${spec.key}.range); its sheets: ${names}`;
      throw new DativoError('SOURCE_NOT_FOUND', message, { context: { connector: 'google_sheets', spreadsheet_id: spec.spreadsheetId, key: `${spec.key}.range`, file: this.ctx.plan.file } });
    }
    return {
      title: p.title ?? '',
      rowCount: p.gridProperties?.rowCount ?? 0,
      columnCount: p.gridProperties?.columnCount ?? 0,
      timeZone: meta.properties?.timeZone ?? undefined,
      spreadsheetTitle,
    };
  }

  private offsetFor(grid: SheetGrid, spec: SheetSpec): ZoneOffset {
    const name = this.settings.timeZone === 'spreadsheet' ? (grid.timeZone ?? 'UTC') : this.settings.timeZone;
    const o = zoneOffset(name);
    if (typeof o !== 'string') return o;
    this.ctx.log.warn({ event_type: 'sheets_time_zone', spreadsheet_id: spec.spreadsheetId, time_zone: name }, `google_sheets: spreadsheet ${spec.spreadsheetId} has time zone ${JSON.stringify(name)}, which is not known here: date-times are read as UTC (set source.time_zone)`);
    return () => 0;
  }

  private valuesParams(): { valueRenderOption: string; dateTimeRenderOption: string; majorDimension: string } {
    return { valueRenderOption: 'UNFORMATTED_VALUE', dateTimeRenderOption: 'SERIAL_NUMBER', majorDimension: 'ROWS' };
  }

  /** The rows of one range. */
  private async *readRange(spec: SheetSpec): AsyncGenerator<Record<string, unknown>> {
    const grid = await this.grid(spec);
    const r = spec.range;
    const headerRow = r.firstRow;
    const firstColumn = r.firstColumn;
    const lastColumn = Math.min(r.lastColumn ?? grid.columnCount, grid.columnCount);
    const lastRow = Math.min(r.lastRow ?? grid.rowCount, grid.rowCount);
    const where = `spreadsheet ${spec.spreadsheetId}${grid.spreadsheetTitle !== spec.spreadsheetId ? ` ("${grid.spreadsheetTitle}")` : ''} sheet ${JSON.stringify(grid.title)}`;
    if (headerRow > grid.rowCount || firstColumn > grid.columnCount) {
      throw new DativoError('SOURCE_FORMAT', `google_sheets: ${spec.key}.range ${JSON.stringify(spec.rangeText)} starts outside ${where} (${grid.rowCount} rows, ${grid.columnCount} columns)`, {
        disposition: 'fatal',
        context: { connector: 'google_sheets', spreadsheet_id: spec.spreadsheetId, key: `${spec.key}.range`, file: this.ctx.plan.file },
      });
    }
    const offset = this.offsetFor(grid, spec);
    const headerA1 = a1(grid.title, firstColumn, headerRow, lastColumn, headerRow);
    const wins = windows(headerRow + 1, lastRow, this.settings.windowRows);
    const firstWin = wins.next();
    const ranges = [headerA1, ...(firstWin.done ? [] : [a1(grid.title, firstColumn, firstWin.value.first, lastColumn, firstWin.value.last)])];
    const batch = await this.call(spec, `values.batchGet ${spec.spreadsheetId}`, (signal) =>
      this.google.sheets.spreadsheets.values.batchGet({ spreadsheetId: spec.spreadsheetId, ranges, ...this.valuesParams() }, signal ? { signal } : {}),
    );
    this.counts.windows++;
    const header = (batch.valueRanges?.[0]?.values?.[0] ?? []) as unknown[];
    const match = this.checkHeader(header, spec, where, headerRow);
    const fields = new Map(this.ctx.plan.asset.fields.map((f) => [f.name, f]));
    const columns = match.fields.map((name) => (name === undefined ? undefined : fields.get(name)));
    let pendingBlank = 0;
    let win = firstWin.done ? undefined : firstWin.value;
    let values = (batch.valueRanges?.[1]?.values ?? []) as Values;
    while (win !== undefined) {
      for (let i = 0; i < values.length; i++) {
        const row = values[i]!;
        if (row.every(isBlankCell)) {
          pendingBlank++;
          continue;
        }
        this.counts.blankRows += pendingBlank;
        pendingBlank = 0;
        const rec = this.record(row, columns, offset, spec, grid, win.first + i);
        if (rec !== undefined) yield rec;
      }
      // The API leaves out a window's trailing blank rows: blank, unless no data follows.
      pendingBlank += win.last - win.first + 1 - values.length;
      const next = wins.next();
      if (next.done) break;
      win = next.value;
      const range = a1(grid.title, firstColumn, win.first, lastColumn, win.last);
      const got = await this.call(spec, `values.get ${range}`, (signal) =>
        this.google.sheets.spreadsheets.values.get({ spreadsheetId: spec.spreadsheetId, range, ...this.valuesParams() }, signal ? { signal } : {}),
      );
      this.counts.windows++;
      values = (got.values ?? []) as Values;
    }
  }

  /** Match the header; fatal for a duplicate or a missing required column, warnings for the rest. */
  private checkHeader(header: unknown[], spec: SheetSpec, where: string, headerRow: number): HeaderMatch {
    const asset = this.ctx.plan.asset;
    const ctxFields = { connector: 'google_sheets', spreadsheet_id: spec.spreadsheetId, row: headerRow, file: this.ctx.plan.file, key: `${spec.key}.range` };
    if (header.every(isBlankCell)) {
      throw new DativoError('SOURCE_FORMAT', `google_sheets: the header row (row ${headerRow}) of ${where} is blank; the range's first row must name the columns (${spec.key}.range)`, { disposition: 'fatal', context: ctxFields });
    }
    const m = matchHeader(header, asset.fields);
    if (m.duplicates.length > 0) {
      throw new DativoError('SOURCE_FORMAT', `google_sheets: the header row (row ${headerRow}) of ${where} names ${m.duplicates.map((d) => JSON.stringify(d)).join(', ')} more than once (names compare without case and surrounding spaces): rename one`, {
        disposition: 'fatal',
        context: { ...ctxFields, columns: m.duplicates },
      });
    }
    if (m.missingRequired.length > 0) {
      const renamed = m.extra.length > 0 ? `; the header has ${m.extra.map((x) => JSON.stringify(x)).join(', ')}, which the asset does not declare (renamed?)` : '';
      throw new DativoError(
        'SOURCE_FORMAT',
        `google_sheets: the header row (row ${headerRow}) of ${where} lacks the required column${m.missingRequired.length > 1 ? 's' : ''} ${m.missingRequired.map((x) => JSON.stringify(x)).join(', ')} of asset ${asset.name}${renamed}`,
        { disposition: 'fatal', context: { ...ctxFields, columns: m.missingRequired, extra: m.extra } },
      );
    }
    const log = this.ctx.log;
    for (const name of m.missingOptional) log.warn({ event_type: 'missing_column', spreadsheet_id: spec.spreadsheetId, column: name }, `google_sheets: ${where} has no column "${name}" (optional in asset ${asset.name}): its values are null`);
    for (const name of m.extra) log.warn({ event_type: 'unknown_column', spreadsheet_id: spec.spreadsheetId, column: name }, `column "${name}" of ${where} is not in asset ${asset.name}: not written`);
    if (m.moved) log.info({ event_type: 'columns_moved', spreadsheet_id: spec.spreadsheetId }, `google_sheets: the columns of ${where} are in another order than asset ${asset.name} declares: read by name`);
    return m;
  }

  /** The record of one data row, or undefined when it was rejected. */
  private record(row: unknown[], columns: (AssetField | undefined)[], offset: ZoneOffset, spec: SheetSpec, grid: SheetGrid, rowNumber: number): Record<string, unknown> | undefined {
    const rec: Record<string, unknown> = {};
    let errors: { field: string; code: 'type' | 'range'; message: string }[] | undefined;
    for (let j = 0; j < columns.length; j++) {
      const f = columns[j];
      if (f === undefined) continue;
      const cell = row[j];
      // A blank cell is NULL: Sheets does not tell an empty string from a blank cell.
      if (isBlankCell(cell)) {
        rec[f.name] = null;
        continue;
      }
      const c = convertCell(cell, f.type, offset);
      if (c.ok) rec[f.name] = c.value;
      else (errors ??= []).push({ field: f.name, code: c.code, message: c.message });
    }
    const location = { spreadsheet_id: spec.spreadsheetId, sheet: grid.title, row: rowNumber };
    if (errors !== undefined) {
      this.counts.rejected++;
      const raw: Record<string, unknown> = {};
      columns.forEach((f, j) => {
        if (f !== undefined) raw[f.name] = row[j] ?? null;
      });
      this.ctx.rejects.reject({ code: errors[0]!.code, reason: errors.map((e) => `${e.field}: ${e.message}`).join('; '), record: raw, location, fields: errors.map((e) => e.field) });
      return undefined;
    }
    this.counts.rows++;
    return withLocation(rec, location);
  }
}

/** The record stream of one object. */
export function readSheets(ctx: ReadContext, settings: SheetsSettings, specs: SheetSpec[]): SourceStream {
  const agent = sheetsAgent(settings);
  let r: SheetsRead;
  try {
    r = new SheetsRead(ctx, settings, specs, googleClients(ctx.plan, settings, agent));
  } catch (err) {
    agent.destroy();
    throw err;
  }
  const stream = Readable.from(r.rows(), { objectMode: true, highWaterMark: READ_AHEAD_ROWS }) as SourceStream;
  stream.once('close', () => {
    r.closed = true;
    agent.destroy();
  });
  stream.checkpoint = () => r.checkpoint();
  stream.replacesTable = () => r.replaces;
  return stream;
}
