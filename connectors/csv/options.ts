/**
 * CSV reading options: the recipe's `default_engine.options.native` block,
 * overridden by the job, plus `source.settle_seconds`, checked once before
 * any file is opened.
 */
import type { z } from 'zod';
import { DativoError, isDativoError, type ConfigProblem } from '../../lib/errors.js';
import { DEFAULT_SETTLE_SECONDS } from './resume.js';

/** Parsed, checked CSV options. */
export interface CsvOptions {
  /** Field delimiter. Default `,`. */
  delimiter: string;
  /** Quote character; a doubled quote inside a quoted field is a literal quote. Default `"`. */
  quote: string;
  /** Text encoding: `utf8` (default; invalid bytes reject the record) or `latin1`. */
  encoding: 'utf8' | 'latin1';
  /** The first line holds the column names. Always true (the only mode supported). */
  header: true;
  /** Records buffered ahead of the consumer (object high-water mark). Default 1000. */
  chunkSize: number;
  /** Longest record accepted, in characters; longer ones are rejected. Default 16 MiB. */
  maxRecordChars: number;
  /**
   * `source.settle_seconds`: a file not modified for this long is finished,
   * so a last line without a line break is a record; a file modified more
   * recently may still be written, and its unfinished last record is left
   * for the next run. Default 5.
   */
  settleSeconds: number;
}

/** Defaults of {@link CsvOptions}. */
export const CSV_DEFAULTS: Readonly<CsvOptions> = Object.freeze({
  delimiter: ',',
  quote: '"',
  encoding: 'utf8',
  header: true,
  chunkSize: 1000,
  maxRecordChars: 16 * 1024 * 1024,
  settleSeconds: DEFAULT_SETTLE_SECONDS,
});

const ENCODINGS: Record<string, 'utf8' | 'latin1'> = {
  utf8: 'utf8',
  'utf-8': 'utf8',
  latin1: 'latin1',
  'latin-1': 'latin1',
  'iso-8859-1': 'latin1',
  iso88591: 'latin1',
};

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * The engine option block inside a merged `source` block:
 * `engine.options.native`, else `engine.options` (also under `default_engine`).
 */
export function engineOptions(source: Record<string, unknown>): Record<string, unknown> {
  for (const key of ['engine', 'default_engine']) {
    const engine = asRecord(source[key]);
    const options = asRecord(engine?.options);
    if (options === undefined) continue;
    return asRecord(options.native) ?? options;
  }
  return {};
}

function positiveInt(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Parse the CSV options of a merged `source` block. Unknown keys are ignored
 * (recipes of the Python tool carry more).
 * @throws DativoError `CONFIG_INVALID` listing every bad option.
 */
export function parseCsvOptions(source: Record<string, unknown>, file = ''): CsvOptions {
  const raw = engineOptions(source);
  const problems: ConfigProblem[] = [];
  const bad = (key: string, message: string): void => {
    problems.push({ file, key: `source.engine.options.native.${key}`, message });
  };
  const out: CsvOptions = { ...CSV_DEFAULTS };

  if (raw.delimiter !== undefined && raw.delimiter !== null) {
    const d = raw.delimiter;
    if (typeof d !== 'string' || d.length === 0 || /[\r\n]/.test(d)) bad('delimiter', 'must be a non-empty string without line breaks');
    else out.delimiter = d === '\\t' ? '\t' : d;
  }
  const q = raw.quote_char ?? raw.quote;
  if (q !== undefined && q !== null) {
    if (typeof q !== 'string' || q.length !== 1 || /[\r\n]/.test(q)) bad('quote_char', 'must be one character');
    else out.quote = q;
  }
  if (out.quote === out.delimiter) bad('quote_char', 'must differ from the delimiter');
  if (raw.encoding !== undefined && raw.encoding !== null) {
    const e = typeof raw.encoding === 'string' ? ENCODINGS[raw.encoding.trim().toLowerCase()] : undefined;
    if (e === undefined) bad('encoding', `unsupported encoding ${JSON.stringify(raw.encoding)}; use utf8 or latin1`);
    else out.encoding = e;
  }
  if (raw.header !== undefined && raw.header !== null && raw.header !== true && raw.header !== 'true') {
    bad('header', 'only header: true is supported (the first line names the columns)');
  }
  if (raw.chunk_size !== undefined && raw.chunk_size !== null) {
    const n = positiveInt(raw.chunk_size);
    if (n === undefined) bad('chunk_size', 'must be a positive integer');
    else out.chunkSize = n;
  }
  if (raw.max_record_size !== undefined && raw.max_record_size !== null) {
    const n = positiveInt(raw.max_record_size);
    if (n === undefined) bad('max_record_size', 'must be a positive integer');
    else out.maxRecordChars = n;
  }
  const settle = source.settle_seconds;
  if (settle !== undefined && settle !== null) {
    const n = typeof settle === 'string' && settle.trim() !== '' ? Number(settle) : settle;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 86_400) {
      problems.push({ file, key: 'source.settle_seconds', message: 'must be a number of seconds from 0 to 86400' });
    } else out.settleSeconds = n;
  }
  if (problems.length > 0) {
    throw new DativoError('CONFIG_INVALID', `invalid CSV options: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, {
      problems,
      context: { connector: 'csv', ...(file ? { file } : {}) },
    });
  }
  return out;
}

/**
 * The CSV options' checks as a zod refinement of a source block (CSV files
 * and Drive CSV files share them): each problem of {@link parseCsvOptions}
 * becomes an issue at its key, so the config loader lists them all.
 */
export function refineCsvOptions(source: Record<string, unknown>, ctx: z.RefinementCtx): void {
  try {
    parseCsvOptions(source);
  } catch (err) {
    if (!isDativoError(err)) throw err;
    for (const p of err.problems) ctx.addIssue({ code: 'custom', path: p.key.split('.').slice(1), message: p.message });
  }
}
