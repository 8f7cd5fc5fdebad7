/**
 * A stateful Google Sheets v4 API on loopback, written from the Sheets v4
 * discovery document (reference/specs/sheets-v4-discovery-trimmed.json) and
 * the public docs (developers.google.com/workspace/sheets/api/guides): enough
 * for the real `@googleapis/sheets` client to read spreadsheets as the
 * connector does.
 *
 * - `GET /v4/spreadsheets/{id}` (spreadsheets.get): `spreadsheetId`,
 *   `properties {title, locale, timeZone}`, `sheets[].properties {sheetId,
 *   title, index, sheetType: GRID, gridProperties {rowCount, columnCount}}`,
 *   `spreadsheetUrl`; no grid data.
 * - `GET /v4/spreadsheets/{id}/values/{range}` (values.get) and
 *   `GET /v4/spreadsheets/{id}/values:batchGet?ranges=…` (values.batchGet):
 *   A1 ranges (`Sheet1!A2:Z5001`, `'My sheet'!B:D`, `Sheet1!A5:C`, `Sheet1`,
 *   `A1:B2` on the first sheet). As the real API: trailing blank cells of a
 *   row are omitted, a blank row before the last non-blank one comes as `[]`,
 *   trailing blank rows are omitted, and `values` is absent when the range is
 *   blank; a range ending past the grid is clipped to it, one starting past it
 *   is 400 `exceeds grid limits`. `valueRenderOption` FORMATTED_VALUE (the
 *   API's default: every value a display string), UNFORMATTED_VALUE or
 *   FORMULA; `dateTimeRenderOption` SERIAL_NUMBER (default) or
 *   FORMATTED_STRING; `majorDimension` ROWS only (COLUMNS is 400 here).
 * - Mounted on the shared Google fake (test/fakes/google.ts, its
 *   {@link GoogleFake.route}): one server for the token endpoint, Drive and
 *   Sheets, as `source.connection.base_url` is one API root. A spreadsheet is
 *   a Drive file (`application/vnd.google-apps.spreadsheet`) of that fake, so
 *   Drive's files.get gives its `modifiedTime` and files.export its CSV; every
 *   edit through {@link SheetsFake.setRows} / {@link SheetsFake.setCell} is a
 *   new version with a new `modifiedTime`.
 * - Access as the Google fake decides it (a bearer token's principal, or an
 *   API key for "anyone with the link"): not shared, 403 `PERMISSION_DENIED`
 *   "The caller does not have permission"; unknown id, 404 `NOT_FOUND`
 *   "Requested entity was not found.", as Sheets answers (Drive says 404 for
 *   both).
 * - Quota: {@link SheetsFake.fail} queues answers (429 `RESOURCE_EXHAUSTED`
 *   with reason `RATE_LIMIT_EXCEEDED` by default, as Sheets answers quota
 *   exhaustion; headers such as `Retry-After` as given).
 */
import type http from 'node:http';
import { sendJson, type SeenRequest } from '../helpers/http-server.js';
import { GoogleFake, SHEET_MIME, type FakeFile, type GoogleFault, type Principal } from './google.js';

/** A date/time cell: its serial number (days since 1899-12-30, fraction = time of day). */
export interface SheetDate {
  serial: number;
}

/** One cell as stored: a number, string, boolean, date, or blank (null/undefined/''). */
export type Cell = string | number | boolean | SheetDate | null | undefined;

/** A date/time cell from its serial number. */
export function sheetDate(serial: number): SheetDate {
  return { serial };
}

/**
 * The serial number of a wall-clock date and time (`2026-03-29T12:34:56.789012`,
 * µs allowed): the double nearest to it, as Sheets stores it (one rounding:
 * the µs count from 1899-12-30 is an exact integer below 2^53, divided once).
 */
export function serialOf(iso: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?)?Z?$/.exec(iso);
  if (!m) throw new Error(`serialOf: ${iso}`);
  const ms = Date.parse(`${m[1]}T${m[2] ?? '00:00:00'}Z`);
  const micros = BigInt(ms) * 1000n + BigInt((m[3] ?? '').padEnd(6, '0')) + 25_569n * 86_400_000_000n;
  return Number(micros) / 86_400_000_000;
}

export interface FakeSheet {
  sheetId: number;
  title: string;
  rowCount: number;
  columnCount: number;
  rows: Cell[][];
}

export interface FakeSpreadsheet {
  id: string;
  timeZone: string;
  locale: string;
  sheets: FakeSheet[];
  /** Its Drive file: title (`name`), `modifiedTime`, sharing. */
  file: FakeFile;
}

/** A queued fault (the Google fake's): path prefix, status, times, headers, body. */
export type SheetsFault = GoogleFault;

/** A spreadsheet to create. */
export interface SpreadsheetSeed {
  title?: string;
  timeZone?: string;
  /** Readable with an API key ("anyone with the link"). Default true. */
  anyoneWithLink?: boolean;
  /** Principals (a service account's e-mail) it is shared with. Default none. */
  sharedWith?: string[];
  sheets: { title: string; rows: Cell[][]; rowCount?: number; columnCount?: number }[];
}

/** The 429 body Sheets sends over quota (airbytehq/airbyte#4846). */
export const QUOTA_BODY = {
  error: {
    code: 429,
    message: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:123456'.",
    status: 'RESOURCE_EXHAUSTED',
    details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com', metadata: { service: 'sheets.googleapis.com', quota_metric: 'sheets.googleapis.com/read_requests' } }],
  },
};

function googleError(code: number, status: string, message: string, extra: Record<string, unknown> = {}): unknown {
  return { error: { code, message, status, ...extra } };
}

function colNumber(letters: string): number {
  let n = 0;
  for (const ch of letters.toUpperCase()) n = n * 26 + (ch.charCodeAt(0) - 64);
  return n;
}

function colLetters(n: number): string {
  let s = '';
  for (let x = n; x > 0; x = Math.floor((x - 1) / 26)) s = String.fromCharCode(65 + ((x - 1) % 26)) + s;
  return s;
}

function isBlank(c: Cell): boolean {
  return c === null || c === undefined || c === '';
}

/** A parsed request range: 1-based inclusive bounds; undefined = open to the grid's edge. */
interface ServerRange {
  sheet: string | undefined;
  c1: number;
  r1: number;
  c2: number | undefined;
  r2: number | undefined;
}

/** Parse a request's A1 range the way the server reads it; undefined when it cannot. */
function parseServerRange(text: string): ServerRange | undefined {
  let sheet: string | undefined;
  let cells = text;
  const bang = text.lastIndexOf('!');
  if (bang >= 0) {
    sheet = text.slice(0, bang);
    cells = text.slice(bang + 1);
    if (sheet.startsWith("'")) {
      if (!sheet.endsWith("'") || sheet.length < 2) return undefined;
      sheet = sheet.slice(1, -1).replace(/''/g, "'");
    }
  } else if (!/^[A-Za-z]*\d*(:[A-Za-z]*\d*)?$/.test(text) || text === '') {
    // No `!` and not cells: a sheet name.
    return { sheet: text.startsWith("'") && text.endsWith("'") ? text.slice(1, -1).replace(/''/g, "'") : text, c1: 1, r1: 1, c2: undefined, r2: undefined };
  }
  if (cells === '') return { sheet, c1: 1, r1: 1, c2: undefined, r2: undefined };
  const m = /^([A-Za-z]*)(\d*)(?::([A-Za-z]*)(\d*))?$/.exec(cells);
  if (!m) return undefined;
  const [, a, b, c, d] = m;
  if (a === '' && b === '') return undefined;
  const c1 = a ? colNumber(a) : 1;
  const r1 = b ? Number(b) : 1;
  if (m[3] === undefined && m[4] === undefined) {
    // One cell (`B3`), a whole column (`B`) or a whole row (`3`).
    return { sheet, c1, r1, c2: a ? c1 : undefined, r2: b ? r1 : undefined };
  }
  return { sheet, c1, r1, c2: c ? colNumber(c) : undefined, r2: d ? Number(d) : undefined };
}

function quoteSheet(title: string): string {
  return /^[A-Za-z0-9_]+$/.test(title) ? title : `'${title.replace(/'/g, "''")}'`;
}

/** Format a serial number as Sheets displays a date (M/D/YYYY) or date-time (M/D/YYYY H:MM:SS). */
function formatSerial(serial: number): string {
  const ms = Math.round((serial - 25_569) * 86_400_000);
  const d = new Date(ms);
  const date = `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()}`;
  if (Number.isInteger(serial)) return date;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date} ${d.getUTCHours()}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

export class SheetsFake {
  readonly spreadsheets = new Map<string, FakeSpreadsheet>();
  private nextSheetId = 1;
  private mounted = false;

  /** `google`: the Google fake to mount on (default a new one, started by {@link start}). */
  constructor(readonly google: GoogleFake = new GoogleFake()) {}

  /** Start the Google fake (unless it runs) and add the Sheets routes to it. */
  async start(): Promise<this> {
    if (this.google.api === undefined) await this.google.start();
    if (!this.mounted) {
      this.google.route('GET', /^\/v4\/spreadsheets\//, (req, res, who) => this.handle(req, res, who));
      this.mounted = true;
    }
    return this;
  }

  get url(): string {
    return this.google.url;
  }

  get requests(): SeenRequest[] {
    return this.google.requests;
  }

  /** Requests to the Sheets API (not Drive, not the token endpoint) so far. */
  sheetsRequests(): SeenRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/v4/'));
  }

  openConnections(): number {
    return this.google.openConnections();
  }

  async close(): Promise<void> {
    await this.google.close();
  }

  /** Forget every spreadsheet, Drive file, fault and recorded request (accounts and keys stay). */
  reset(): void {
    this.spreadsheets.clear();
    this.google.reset();
  }

  /** Create (or replace) a spreadsheet: a Drive file of the Google fake with these sheets. */
  create(id: string, seed: SpreadsheetSeed): FakeSpreadsheet {
    const file = this.google.addFile({ id, name: seed.title ?? id, mimeType: SHEET_MIME, public: seed.anyoneWithLink ?? true }, seed.sharedWith ?? []);
    const s: FakeSpreadsheet = {
      id,
      timeZone: seed.timeZone ?? 'Etc/GMT',
      locale: 'en_US',
      file,
      sheets: seed.sheets.map((sh) => ({
        sheetId: this.nextSheetId++,
        title: sh.title,
        rows: sh.rows.map((r) => [...r]),
        rowCount: sh.rowCount ?? Math.max(1000, sh.rows.length),
        columnCount: sh.columnCount ?? Math.max(26, ...sh.rows.map((r) => r.length)),
      })),
    };
    this.spreadsheets.set(id, s);
    this.touch(id);
    return s;
  }

  /** The spreadsheet's Drive `modifiedTime`. */
  modifiedTime(id: string): string {
    return this.spreadsheets.get(id)!.file.modifiedTime;
  }

  /** Replace a sheet's rows (an edit: `modifiedTime` moves on; the grid grows to fit). */
  setRows(id: string, sheet: string, rows: Cell[][]): void {
    const sh = this.sheet(id, sheet);
    sh.rows = rows.map((r) => [...r]);
    sh.rowCount = Math.max(sh.rowCount, rows.length);
    sh.columnCount = Math.max(sh.columnCount, ...rows.map((r) => r.length));
    this.touch(id);
  }

  /** Set one cell (1-based row and column; an edit). */
  setCell(id: string, sheet: string, row: number, col: number, value: Cell): void {
    const sh = this.sheet(id, sheet);
    while (sh.rows.length < row) sh.rows.push([]);
    const r = sh.rows[row - 1]!;
    while (r.length < col) r.push(null);
    r[col - 1] = value;
    this.touch(id);
  }

  /** Queue a fault (default body for a 429: Sheets' RESOURCE_EXHAUSTED). */
  fail(fault: SheetsFault): void {
    this.google.fail({ ...fault, ...(fault.body === undefined && fault.status === 429 ? { body: QUOTA_BODY } : {}) });
  }

  private sheet(id: string, title: string): FakeSheet {
    const sh = this.spreadsheets.get(id)?.sheets.find((s) => s.title === title);
    if (!sh) throw new Error(`no sheet ${title} in ${id}`);
    return sh;
  }

  /** A new version of the Drive file: the first sheet's CSV (what files.export gives) and a new modifiedTime. */
  private touch(id: string): void {
    const s = this.spreadsheets.get(id);
    if (!s) return;
    const first = s.sheets[0];
    const csv = (first?.rows ?? []).map((r) => r.map((c) => (isBlank(c) ? '' : csvCell(c!))).join(',')).join('\n');
    this.google.setContent(id, Buffer.from(csv ? `${csv}\n` : ''));
  }

  private handle(req: SeenRequest, res: http.ServerResponse, who: Principal): void {
    const send = (status: number, body: unknown): void => sendJson(res, status, body);
    const m = /^\/v4\/spreadsheets\/([^/:]+)(?::?\/?(.*))?$/.exec(req.path);
    if (!m) return send(404, googleError(404, 'NOT_FOUND', `path ${req.path} not found`));
    const s = this.spreadsheets.get(decodeURIComponent(m[1]!));
    if (!s) return send(404, googleError(404, 'NOT_FOUND', 'Requested entity was not found.'));
    if (!this.google.canRead(who, s.file)) return send(403, googleError(403, 'PERMISSION_DENIED', 'The caller does not have permission'));
    const rest = m[2] ?? '';
    if (rest === '') return send(200, this.metadata(s));
    if (rest === 'values:batchGet') {
      const ranges = req.query.getAll('ranges');
      if (ranges.length === 0) return send(400, googleError(400, 'INVALID_ARGUMENT', 'Must specify at least one range.'));
      const out: unknown[] = [];
      for (const r of ranges) {
        const vr = this.valueRange(s, r, req.query);
        if ('error' in vr) return send(400, vr);
        out.push(vr);
      }
      return send(200, { spreadsheetId: s.id, valueRanges: out });
    }
    const v = /^values\/(.+)$/.exec(rest);
    if (v) {
      const vr = this.valueRange(s, decodeURIComponent(v[1]!), req.query);
      return send('error' in vr ? 400 : 200, vr);
    }
    send(404, googleError(404, 'NOT_FOUND', `path ${req.path} not found`));
  }

  private metadata(s: FakeSpreadsheet): unknown {
    return {
      spreadsheetId: s.id,
      properties: { title: s.file.name, locale: s.locale, autoRecalc: 'ON_CHANGE', timeZone: s.timeZone },
      sheets: s.sheets.map((sh, index) => ({
        properties: { sheetId: sh.sheetId, title: sh.title, index, sheetType: 'GRID', gridProperties: { rowCount: sh.rowCount, columnCount: sh.columnCount } },
      })),
      spreadsheetUrl: `https://docs.google.com/spreadsheets/d/${s.id}/edit`,
    };
  }

  private render(c: Cell, q: URLSearchParams): unknown {
    const value = q.get('valueRenderOption') ?? 'FORMATTED_VALUE';
    const dates = q.get('dateTimeRenderOption') ?? 'SERIAL_NUMBER';
    if (c !== null && typeof c === 'object') {
      if (value === 'FORMATTED_VALUE' || dates === 'FORMATTED_STRING') return formatSerial(c.serial);
      return c.serial;
    }
    if (value === 'FORMATTED_VALUE') return typeof c === 'boolean' ? (c ? 'TRUE' : 'FALSE') : String(c);
    return c;
  }

  private valueRange(s: FakeSpreadsheet, text: string, q: URLSearchParams): { range: string; majorDimension: string; values?: unknown[][] } | { error: unknown } {
    const bad = (message: string): { error: unknown } => googleError(400, 'INVALID_ARGUMENT', message) as { error: unknown };
    if ((q.get('majorDimension') ?? 'ROWS') !== 'ROWS') return bad('majorDimension COLUMNS is not supported by this fake');
    const r = parseServerRange(text);
    if (!r) return bad(`Unable to parse range: ${text}`);
    const sh = r.sheet === undefined ? s.sheets[0] : s.sheets.find((x) => x.title === r.sheet);
    if (!sh) return bad(`Unable to parse range: ${text}`);
    if (r.r1 > sh.rowCount || r.c1 > sh.columnCount) {
      return bad(`Range (${quoteSheet(sh.title)}!${colLetters(r.c1)}${r.r1}) exceeds grid limits. Max rows: ${sh.rowCount}, max columns: ${sh.columnCount}`);
    }
    const r2 = Math.min(r.r2 ?? sh.rowCount, sh.rowCount);
    const c2 = Math.min(r.c2 ?? sh.columnCount, sh.columnCount);
    const rows: unknown[][] = [];
    for (let i = r.r1; i <= r2; i++) {
      const src = sh.rows[i - 1] ?? [];
      const row: unknown[] = [];
      let last = -1;
      for (let j = r.c1; j <= c2; j++) {
        const c = src[j - 1];
        if (!isBlank(c)) last = j - r.c1;
        row.push(isBlank(c) ? '' : this.render(c, q));
      }
      rows.push(row.slice(0, last + 1));
    }
    while (rows.length > 0 && rows[rows.length - 1]!.length === 0) rows.pop();
    const range = `${quoteSheet(sh.title)}!${colLetters(r.c1)}${r.r1}:${colLetters(c2)}${r2}`;
    return { range, majorDimension: 'ROWS', ...(rows.length > 0 ? { values: rows } : {}) };
  }
}

/** A cell as files.export writes it in CSV. */
function csvCell(c: Exclude<Cell, null | undefined>): string {
  const text = typeof c === 'object' ? formatSerial(c.serial) : typeof c === 'boolean' ? (c ? 'TRUE' : 'FALSE') : String(c);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
