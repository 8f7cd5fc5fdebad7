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
import { sheets, type sheets_v4 } from '@googleapis/sheets';
import type { ReadContext, SourceStream } from '../../lib/connector.js';
import { DativoError, isDativoError } from '../../lib/errors.js';
import { withLocation } from '../../lib/records/location.js';
import { networkOf } from '../../lib/run/network.js';
import type { AssetField, FileMark, ObjectState } from '../../lib/types.js';
import { GOOGLE_CLIENT_OPTIONS, googleCall, type GoogleRequestOptions } from '../google/call.js';
import { openGoogleSession, type GoogleSession } from '../google/session.js';
import { a1, windows } from './a1.js';
import { convertCell, zoneOffset, type ZoneOffset } from './convert.js';
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

/** The key file stem of the Sheets connector in the secrets folder: `<secrets-dir>/<tenant>/gsheets.json`. */
export const SHEETS_SECRET = 'gsheets';
/** What a read needs (OAuth scopes): the values, and Drive's `modifiedTime`. */
export const SHEETS_SCOPES: readonly string[] = Object.freeze(['https://www.googleapis.com/auth/spreadsheets.readonly', 'https://www.googleapis.com/auth/drive.metadata.readonly']);

/** The Sheets v4 client of a session, on its API root and the read's keep-alive agent (closed with the read's stream); no retries of its own. */
function sheetsClient(session: GoogleSession, agent: http.Agent): sheets_v4.Sheets {
  return sheets({
    version: 'v4',
    ...GOOGLE_CLIENT_OPTIONS,
    agent,
    timeout: session.settings.timeoutMs,
    ...(session.settings.baseUrl !== undefined ? { rootUrl: session.settings.baseUrl } : {}),
    ...(session.auth.apiKey !== undefined ? { auth: session.auth.apiKey } : {}),
  });
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
  private readonly incremental: boolean;
  private session: GoogleSession | undefined;
  private sheets: sheets_v4.Sheets | undefined;
  private agent: http.Agent | undefined;

  constructor(
    private readonly ctx: ReadContext,
    private readonly settings: SheetsSettings,
    private readonly specs: SheetSpec[],
  ) {
    const inc = ctx.plan.source.incremental;
    this.incremental = !ctx.fullRefresh && ctx.plan.syncMode === 'incremental_append' && inc?.strategy === 'file_modified';
  }

  /** The read's stream closed (ended, failed or destroyed): no attempt starts after it, its connections close. */
  close(): void {
    this.closed = true;
    this.agent?.destroy();
  }

  /** State to merge after a successful read: each spreadsheet's `modifiedTime` as it was before the read. */
  checkpoint(): Partial<ObjectState> {
    return this.marks !== undefined ? { files: this.marks } : {};
  }

  /** The credentials and clients, opened by the first row asked for (a malformed key file: CONFIG_INVALID naming it). */
  private async open(): Promise<{ session: GoogleSession; sheets: sheets_v4.Sheets }> {
    if (this.session === undefined || this.sheets === undefined) {
      const { http: factory } = networkOf(this.ctx, 'google_sheets');
      this.session = await openGoogleSession(this.ctx.plan, { connector: 'google_sheets', secret: SHEETS_SECRET, scopes: SHEETS_SCOPES, http: factory, signal: this.ctx.signal, log: this.ctx.log });
      if (this.closed) throw new DativoError('ABORTED', `google_sheets ${this.ctx.object.name}: the read was closed`, { disposition: 'fatal', context: { connector: 'google_sheets' } });
      this.agent = this.session.settings.baseUrl?.startsWith('http:') ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
      this.sheets = sheetsClient(this.session, this.agent);
    }
    return { session: this.session, sheets: this.sheets };
  }

  /**
   * One API call through the shared Google call (our policy and limiter,
   * Google's errors mapped: not found / not shared name the spreadsheet and
   * whom to share it with); the config key of the entry is added.
   */
  async call<T>(spec: SheetSpec, what: string, fn: (sheets: sheets_v4.Sheets, session: GoogleSession, opts: GoogleRequestOptions) => Promise<{ data: T }>): Promise<T> {
    const object = this.ctx.object.name;
    const { session, sheets: client } = await this.open();
    try {
      const res = await googleCall(session.http, session.auth, { connector: 'google_sheets', what, resource: { kind: 'spreadsheet', id: spec.spreadsheetId } }, (opts) => {
        if (this.closed) throw new DativoError('ABORTED', `google_sheets ${object}: the read was closed`, { disposition: 'fatal', context: { connector: 'google_sheets', object } });
        return fn(client, session, opts);
      });
      return res.data;
    } catch (err) {
      if (!isDativoError(err) || (err.code !== 'SOURCE_NOT_FOUND' && err.code !== 'AUTH_FAILED') || err.context.resource !== spec.spreadsheetId) throw err;
      const key = `${spec.key}.spreadsheet_id`;
      throw new DativoError(err.code, `${err.message} (${key})`, { cause: err, disposition: err.disposition, context: { ...err.context, key, file: this.ctx.plan.file } });
    }
  }

  /** The spreadsheet's Drive `modifiedTime` (files.get fields=modifiedTime, shared drives included). */
  private async modifiedTime(spec: SheetSpec): Promise<string> {
    const file = await this.call(spec, 'Drive files.get', (_sheets, session, opts) =>
      session.drive.files.get({ fileId: spec.spreadsheetId, fields: 'modifiedTime', supportsAllDrives: true }, opts),
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
    const meta = await this.call(spec, 'spreadsheets.get', (client, _s, opts) =>
      client.spreadsheets.get(
        { spreadsheetId: spec.spreadsheetId, includeGridData: false, fields: 'spreadsheetId,properties(title,timeZone),sheets(properties(sheetId,title,index,sheetType,gridProperties(rowCount,columnCount)))' },
        opts,
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
    const batch = await this.call(spec, 'values.batchGet', (client, _s, opts) => client.spreadsheets.values.batchGet({ spreadsheetId: spec.spreadsheetId, ranges, ...this.valuesParams() }, opts));
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
      const got = await this.call(spec, `values.get ${range}`, (client, _s, opts) => client.spreadsheets.values.get({ spreadsheetId: spec.spreadsheetId, range, ...this.valuesParams() }, opts));
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
  const r = new SheetsRead(ctx, settings, specs);
  const stream = Readable.from(r.rows(), { objectMode: true, highWaterMark: READ_AHEAD_ROWS }) as SourceStream;
  stream.once('close', () => r.close());
  stream.checkpoint = () => r.checkpoint();
  stream.replacesTable = () => r.replaces;
  return stream;
}
