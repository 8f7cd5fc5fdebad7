/**
 * CSV parser candidates on the same file, in-process, arrays of field
 * strings out and nothing else (one process per candidate, CPU seconds):
 *
 *   node --import tsx bench/csv-parsers.ts <file.csv> <candidate> [candidate dir]
 *
 * Candidates: `ours` (connectors/csv LocatedParser: our splitter), `bytes`
 * (ColumnarParser: the byte splitter of the columnar path, offsets out, no
 * strings: `fields` counts offsets), `old`
 * (bench/out/old-parse.ts, a copy of the csv-parse based LocatedParser from
 * before, if present), `csv-parse` (its stream Parser with the cheapest
 * options), `udsv` and `papaparse` (installed OUTSIDE the project: pass the
 * folder whose node_modules holds them). Prints one JSON line
 * `{candidate, records, fields, seconds, cpu_seconds}`; `fields` (the sum of
 * field counts) must agree between candidates.
 */
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { Parser } from 'csv-parse';
import { CSV_DEFAULTS } from '../connectors/csv/options.js';
import { ColumnarParser, LocatedParser, type CsvRecord, type ParsedBytes } from '../connectors/csv/parse.js';

const [file, candidate, dir] = process.argv.slice(2);
if (!file || !candidate) throw new Error('usage: csv-parsers.ts <file.csv> <ours|bytes|old|csv-parse|udsv|papaparse> [dir]');

let records = 0;
let fields = 0;
const count = (n: number): void => {
  records++;
  fields += n;
};
const sink = (f: (chunk: unknown) => void): Writable =>
  new Writable({
    objectMode: true,
    highWaterMark: 1000,
    write(chunk, _e, cb) {
      f(chunk);
      cb();
    },
  });

const t0 = performance.now();
const c0 = process.cpuUsage();
const input = (): NodeJS.ReadableStream => createReadStream(file, { highWaterMark: 64 * 1024 });
const opts = { ...CSV_DEFAULTS };
if (candidate === 'ours') {
  await pipeline(input(), new LocatedParser(opts, () => undefined), sink((r) => count((r as CsvRecord).fields.length)));
} else if (candidate === 'bytes') {
  await pipeline(
    input(),
    new ColumnarParser(opts, () => undefined),
    sink((b) => {
      const p = b as ParsedBytes;
      for (let r = 0; r < p.count; r++) count(p.firstField[r + 1]! - p.firstField[r]!);
    }),
  );
} else if (candidate === 'old') {
  const mod = (await import(pathToFileURL(path.resolve('bench/out/old-parse.ts')).href)) as { LocatedParser: typeof LocatedParser };
  await pipeline(input(), new mod.LocatedParser(opts, () => undefined), sink((r) => count((r as CsvRecord).fields.length)));
} else if (candidate === 'csv-parse') {
  await pipeline(input(), new Parser({ relax_column_count: true, skip_empty_lines: true }), sink((r) => count((r as string[]).length)));
} else {
  const req = createRequire(path.join(path.resolve(dir ?? '/tmp/csvcand'), 'x.js'));
  if (candidate === 'udsv') {
    // uDSV's streaming API: chunks of text in, typed arrays of rows out.
    const { inferSchema, initParser } = req('udsv') as {
      inferSchema: (s: string) => unknown;
      initParser: (schema: unknown) => { chunk: (s: string, fmt: unknown, each: (row: string[]) => void) => void; end: () => void; stringArrs: unknown };
    };
    let parser: ReturnType<typeof initParser> | undefined;
    const decoder = new TextDecoder();
    for await (const chunk of input()) {
      const text = decoder.decode(chunk as Buffer, { stream: true });
      parser ??= initParser(inferSchema(text));
      // stringArrs: every field a string (what we need); the third argument: row by row, nothing accumulated.
      parser.chunk(text, parser.stringArrs, (row: string[]) => count(row.length));
    }
    parser?.end();
  } else if (candidate === 'papaparse') {
    const Papa = req('papaparse') as { parse: (s: NodeJS.ReadableStream, o: Record<string, unknown>) => void; NODE_STREAM_INPUT: unknown };
    await new Promise<void>((resolve, reject) => {
      const s = (Papa.parse as unknown as (i: unknown, o: Record<string, unknown>) => NodeJS.ReadWriteStream)(Papa.NODE_STREAM_INPUT, { skipEmptyLines: true });
      s.on('data', (r: string[]) => count(r.length));
      s.on('end', resolve);
      s.on('error', reject);
      input().pipe(s);
    });
  } else throw new Error(`unknown candidate ${candidate}`);
}
const cpu = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ candidate, records, fields, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)), cpu_seconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)) }) + '\n');
