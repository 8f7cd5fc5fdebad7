/**
 * A1 notation of the ranges a job names (`Budget!A1:F`, `'Q1 plan'!B3:H`,
 * `Budget`) and of the windows the connector reads (`Budget!A2:F5001`):
 * plain functions, no I/O.
 */

/** A range a job names: a sheet (undefined = the first) and 1-based bounds; an absent end is the grid's edge. */
export interface SheetRange {
  sheet: string | undefined;
  firstColumn: number;
  firstRow: number;
  lastColumn?: number;
  lastRow?: number;
}

/** Column number of letters (`A` → 1, `Z` → 26, `AA` → 27). */
export function columnNumber(letters: string): number {
  let n = 0;
  for (const ch of letters.toUpperCase()) n = n * 26 + (ch.charCodeAt(0) - 64);
  return n;
}

/** Letters of a column number (1 → `A`, 27 → `AA`). */
export function columnLetters(n: number): string {
  let s = '';
  for (let x = n; x > 0; x = Math.floor((x - 1) / 26)) s = String.fromCharCode(65 + ((x - 1) % 26)) + s;
  return s;
}

/** A sheet name as A1 notation writes it: quoted (`'Q1 plan'`, inner `'` doubled) unless plain letters, digits and `_`. */
export function quoteSheetName(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !/^[A-Za-z]{1,3}\d+$/.test(name) ? name : `'${name.replace(/'/g, "''")}'`;
}

const CELLS_RE = /^([A-Za-z]{0,3})(\d*)(?::([A-Za-z]{0,3})(\d*))?$/;

/**
 * Parse a job's `range`: `Sheet`, `Sheet!A1:F`, `'My sheet'!B3:H200`,
 * `Sheet!A:F`, or cells alone (`A1:F`, on the first sheet). The header is the
 * range's first row. Returns a message when it is not one.
 */
export function parseRange(text: string): SheetRange | string {
  const t = text.trim();
  if (t === '') return 'is empty';
  let sheet: string | undefined;
  let cells: string;
  if (t.startsWith("'")) {
    const end = /^'((?:[^']|'')*)'(?:!(.*))?$/.exec(t);
    if (!end) return `${JSON.stringify(text)}: a quoted sheet name needs its closing quote`;
    sheet = end[1]!.replace(/''/g, "'");
    cells = end[2] ?? '';
  } else {
    const bang = t.indexOf('!');
    if (bang < 0) {
      // Cells alone on the first sheet, or a sheet name.
      if (CELLS_RE.test(t) && /\d|:/.test(t)) {
        sheet = undefined;
        cells = t;
      } else {
        sheet = t;
        cells = '';
      }
    } else {
      sheet = t.slice(0, bang);
      cells = t.slice(bang + 1);
    }
  }
  if (sheet !== undefined && sheet === '') return `${JSON.stringify(text)}: the sheet name is empty`;
  if (cells === '') return { sheet, firstColumn: 1, firstRow: 1 };
  const m = CELLS_RE.exec(cells);
  if (!m || (m[1] === '' && m[2] === '')) return `${JSON.stringify(text)}: not an A1 range (e.g. Sheet1!A1:F or 'My sheet'!B3:H200)`;
  const [, a, b, c, d] = m;
  const firstColumn = a ? columnNumber(a) : 1;
  const firstRow = b ? Number(b) : 1;
  if (firstRow < 1) return `${JSON.stringify(text)}: rows start at 1`;
  const out: SheetRange = { sheet, firstColumn, firstRow };
  if (m[3] === undefined && m[4] === undefined) {
    // One cell: a header with no room for data; `A`-only: that one column.
    if (a) out.lastColumn = firstColumn;
    if (b) out.lastRow = firstRow;
  } else {
    if (c) out.lastColumn = columnNumber(c);
    if (d) out.lastRow = Number(d);
  }
  if (out.lastColumn !== undefined && out.lastColumn < firstColumn) return `${JSON.stringify(text)}: the last column comes before the first`;
  if (out.lastRow !== undefined && out.lastRow < firstRow) return `${JSON.stringify(text)}: the last row comes before the first`;
  return out;
}

/** A1 text of a block of one sheet: `Budget!A2:F5001`. */
export function a1(sheet: string, firstColumn: number, firstRow: number, lastColumn: number, lastRow: number): string {
  return `${quoteSheetName(sheet)}!${columnLetters(firstColumn)}${firstRow}:${columnLetters(lastColumn)}${lastRow}`;
}

/** One window of data rows: `[first, last]`, 1-based, inclusive. */
export interface RowWindow {
  first: number;
  last: number;
}

/**
 * The data-row windows of `[first, last]` in blocks of `size` rows. A plain
 * iterator: the reader asks for the next only when it needs it.
 */
export function* windows(first: number, last: number, size: number): Generator<RowWindow> {
  for (let r = first; r <= last; r += size) yield { first: r, last: Math.min(last, r + size - 1) };
}
