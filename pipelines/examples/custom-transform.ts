/**
 * The stages as a library: a hand-made pipeline that reads CSV, validates it
 * against the asset, masks e-mail addresses with a user Transform, batches
 * and writes Parquet to a local folder — no runJob, no state, no catalog.
 *
 *   node --import tsx pipelines/examples/custom-transform.ts [OUT_DIR]
 *
 * OUT_DIR defaults to ./warehouse/examples. docs/library.md walks through it;
 * test/pipelines/examples.test.ts runs it and reads the output back.
 * In your own project import from 'dativo-ingest' instead of '../../lib/index.js'.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import {
  batch,
  createLogger,
  createRejectWriter,
  getConnector,
  loadJob,
  newRunId,
  openStorage,
  parquetSink,
  validate,
  type DataFile,
  type Row,
} from '../../lib/index.js';

/**
 * `ana.lima@example.com` → `a***@example.com#3f2a9c1e`: the domain stays for
 * analytics, the local part is hidden, and a short hash keeps addresses
 * joinable without revealing them. NULL stays NULL.
 */
export function maskEmail(email: string | null): string | null {
  if (email === null) return null;
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  const hash = createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 8);
  return `${email[0]}***${email.slice(at)}#${hash}`;
}

/** A user stage: rows in, rows out, in object mode like every dativo stage. */
class MaskEmails extends Transform {
  constructor(private readonly column: string) {
    super({ objectMode: true });
  }

  override _transform(row: Row, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(null, { ...row, [this.column]: maskEmail(row[this.column] as string | null) });
  }
}

/** What {@link runExample} did. */
export interface ExampleResult {
  runId: string;
  files: DataFile[];
  rejected: number;
  rejectFile: string | undefined;
}

/** Run the example pipeline, writing Parquet under `outDir/customers/` and rejects under `outDir/rejects/`. */
export async function runExample(outDir: string, signal?: AbortSignal): Promise<ExampleResult> {
  // The job file gives the CSV source and the asset; the pipeline is ours.
  const plan = await loadJob(path.join(import.meta.dirname, 'customers_csv.yaml'));
  const object = plan.source.objects[0]!;
  const runId = newRunId();
  const log = createLogger({ level: 'warn' });
  const rejects = createRejectWriter({ dir: path.join(outDir, 'rejects'), object: object.name, runId });
  const controller = new AbortController();
  signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });

  const connector = await getConnector(plan.source.type);
  const source = connector.read({
    plan,
    object,
    state: undefined, // no state: read everything
    fullRefresh: true,
    runId,
    runStartedAt: new Date(),
    signal: controller.signal,
    log,
    rejects,
  });
  const storage = await openStorage(pathToFileURL(path.resolve(outDir)).href);
  const sink = parquetSink({
    storage,
    fields: plan.asset.fields,
    directory: 'customers',
    filePrefix: `part-${runId}`,
    signal: controller.signal,
  });

  try {
    await pipeline(
      source,
      validate(plan.asset, { mode: 'warn', rejects, log }), // strings → canonical values; bad rows → rejects
      new MaskEmails('email'),
      batch({ maxRows: 10_000, maxBytes: 8 * 1024 * 1024 }),
      sink,
      { signal: controller.signal },
    );
  } finally {
    await rejects.close();
  }
  return { runId, files: sink.files, rejected: rejects.count, rejectFile: rejects.path };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? path.join(process.cwd(), 'warehouse', 'examples');
  const result = await runExample(out);
  for (const f of result.files) console.log(`wrote ${f.uri} (${f.recordCount} rows, ${f.fileSizeBytes} bytes)`);
  if (result.rejectFile) console.log(`rejected ${result.rejected} row(s): ${result.rejectFile}`);
}
