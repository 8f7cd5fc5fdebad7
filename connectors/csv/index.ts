/**
 * The `csv` connector: local CSV files (plain paths or globs) read as streams
 * of string records, incremental by file size + modification time, with
 * appended files resumed after the bytes already read.
 *
 * Records: an object per data line keyed by the header's column names, every
 * value a string, an unquoted empty field `null` and a quoted empty field
 * `""` the empty string. Each record carries its `{file, line}` under
 * `LOCATION` (lib/records/location.ts). Broken lines (wrong field count, bad
 * quoting, invalid UTF-8) go to the reject sink and reading continues; see
 * `parse.ts` for what bad quoting can cost. A file whose header cannot be
 * read, or names a column twice, fails the read (SOURCE_FORMAT).
 *
 * Options (recipe `default_engine.options.native`, see `options.ts`):
 * `delimiter` (`,`), `quote_char` (`"`), `encoding` (`utf8`; or `latin1`),
 * `chunk_size` (1000 records read ahead), `max_record_size` (16 Mi chars);
 * `source.settle_seconds` (5).
 *
 * State: `files` maps `file_<id>` (the entry's `id`, else its path relative
 * to the job folder — the path as written — or absolute outside it; a glob
 * adds one key per matched file) to the size and mtime seen, plus the sha256
 * and line count of the bytes taken (`resume.ts`). A file whose size and
 * mtime both match is skipped; one that grew, whose first bytes still hash
 * the same, is read from there on; any other change fails the read with
 * `SOURCE_REWRITTEN` (reading it again would write its rows twice). A file
 * modified less than `source.settle_seconds` ago may still be written: its
 * unfinished last record is left for the next run. All of this unless the
 * run is a full refresh, incremental is off, or `lookback_days` > 0 (as in
 * the Python tool, lookback only turns skipping off for files): then every
 * file is read whole.
 */
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Connector, ConnectorDescriptor, DiscoveredObject, ReadContext, SourceStream } from '../../lib/connector.js';
import { DativoError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import { csvObjects, csvSourceOptions } from './config.js';
import { fileEntries, resolveFiles } from './files.js';
import { SAMPLE_ROWS, inferTypes } from './infer.js';
import { parseCsvOptions } from './options.js';
import { LocatedParser, type CsvRecord } from './parse.js';
import { fileError, LocalCsvFiles } from './local.js';
import { CsvSourceStream } from './stream.js';

export { CsvSourceStream, type CsvFile, type CsvFileSource, type CsvLocation, type OpenCsvFile } from './stream.js';
export { LOCATION } from '../../lib/records/location.js';
export { parseCsvOptions, CSV_DEFAULTS, type CsvOptions } from './options.js';

/** The connector's descriptor (frozen). */
export const descriptor: ConnectorDescriptor = Object.freeze({
  name: 'csv',
  roles: Object.freeze(['source'] as const),
  // Reads the server's own file system: not something a cloud tenant may do.
  allowedInCloud: false,
  incrementalStrategies: Object.freeze(['file_modified']),
  sortedByCursor: false,
  description: 'Local CSV files (globs allowed); incremental by file size + modification time, appended rows resumed',
});

/** Relative file paths resolve against the job's folder (or the working directory for a hand-built plan). */
function baseDir(plan: JobPlan): string {
  return plan.file ? dirname(plan.file) : process.cwd();
}

/** Read the header of a file and up to `limit` records after it (records of the wrong length are left out). */
async function readSample(path: string, plan: JobPlan, signal: AbortSignal, limit: number): Promise<{ header: string[]; rows: string[][] }> {
  const options = parseCsvOptions(plan.source.options, plan.file);
  const handle = await open(path, 'r').catch((err: unknown) => {
    throw fileError(err, path);
  });
  const stream = handle.createReadStream({ autoClose: false, highWaterMark: 64 * 1024 });
  const parser = new LocatedParser(options, () => undefined);
  try {
    stream.pipe(parser);
    let header: string[] | undefined;
    const rows: string[][] = [];
    for await (const rec of parser) {
      if (signal.aborted) throw new DativoError('ABORTED', 'csv: discover aborted');
      const { fields, badUtf8 } = rec as CsvRecord;
      if (header === undefined) {
        header = fields.slice();
        if (header[0] !== undefined) header[0] = header[0].replace(/^\uFEFF/, '');
        continue;
      }
      if (!badUtf8 && fields.length === header.length) rows.push(fields);
      if (rows.length >= limit) break;
    }
    return { header: header ?? [], rows };
  } finally {
    // As in CsvSourceStream.closeFile: close the handle, then wait for the
    // stream's close, which follows the descriptor's.
    stream.unpipe();
    parser.destroy();
    const closed = stream.closed ? undefined : once(stream, 'close');
    await handle.close();
    await closed?.catch(() => undefined);
  }
}

/** The `csv` connector. */
const csv: Connector = Object.freeze({
  descriptor,

  /** The schema of its `source` keys and the objects of `source.files` (config.ts). */
  options: csvSourceOptions,
  objects: csvObjects,

  /** Every file (or glob) of every object exists and can be opened for reading; the options are valid. */
  async check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
    parseCsvOptions(plan.source.options, plan.file);
    for (const object of plan.source.objects) {
      const files = await resolveFiles(fileEntries(object), baseDir(plan));
      for (const f of files) {
        if (opts.signal.aborted) throw new DativoError('ABORTED', 'csv: check aborted');
        const handle = await open(f.path, 'r').catch((err: unknown) => {
          throw fileError(err, f.path);
        });
        try {
          await handle.read(Buffer.alloc(1), 0, 1, 0);
        } catch (err) {
          throw fileError(err, f.path);
        } finally {
          await handle.close();
        }
      }
      opts.log.debug({ object: object.name, files: files.length }, 'csv: files readable');
    }
  },

  /**
   * Columns of each object from the header of its first file, typed from its
   * first {@link SAMPLE_ROWS} records (see `infer.ts`: only exact textual
   * forms become long, decimal, boolean, date or timestamp; the rest string).
   * No column is required and there is no primary key: a sample proves neither.
   */
  async discover(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<DiscoveredObject[]> {
    const out: DiscoveredObject[] = [];
    for (const object of plan.source.objects) {
      const files = await resolveFiles(fileEntries(object), baseDir(plan));
      const sample = files[0] === undefined ? { header: [], rows: [] } : await readSample(files[0].path, plan, opts.signal, SAMPLE_ROWS);
      out.push({ name: object.name, columns: inferTypes(sample.header, sample.rows), primaryKey: [] });
    }
    return out;
  },

  /** A stream of the object's records; see the module comment for values, rejects and state. */
  read(ctx: ReadContext): SourceStream {
    const options = parseCsvOptions(ctx.plan.source.options, ctx.plan.file);
    const inc = ctx.plan.source.incremental;
    const skipUnchanged = !ctx.fullRefresh && inc !== undefined && inc.lookbackDays === 0;
    return new CsvSourceStream(ctx, { options, skipUnchanged }, new LocalCsvFiles(ctx.object, baseDir(ctx.plan)));
  },
});

export default csv;
