/**
 * One measured pipeline run, in its own process so that its peak RSS is its
 * own: `node dist/bench/pipeline-child.js --job <job.yaml> --mode <m>` (the
 * harness compiles it beside the CLI, bench/harness.ts `pipelineChild`), or
 * `node --import tsx bench/pipeline-child.ts …` from source.
 *
 * Modes (for the cost breakdown):
 * - `source`:   connector stream → null sink
 * - `validate`: connector stream → validate → null sink
 * - `arrow`:    connector stream → validate → rows appended into Arrow column
 *               buffers, a RecordBatch built every 10,000 rows (everything but
 *               the Parquet encoding and the commit)
 * - `full`:     runJobFile (load → source → validate → Parquet sink → commit); the bench
 *               itself measures the compiled CLI instead
 *
 * Prints one JSON line: `{mode, rows, seconds, cpu_seconds, peak_rss_mb, rss_sampled_mb, files, exit_code, error}`
 * (`seconds` and `cpu_seconds` of the pipeline alone, start-up excluded; the
 * breakdown takes the whole process's CPU from bench/peak-rss.cjs instead).
 */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { getConnector } from '../connectors/index.js';
import { loadJob } from '../lib/config/index.js';
import type { ReadContext, Reject, RejectSink } from '../lib/connector.js';
import { silentLogger } from '../lib/log.js';
import type { AssetField, Row } from '../lib/types.js';
import { runJobFile } from '../lib/run/file.js';
import { arrowSchema, RecordBatchBuilder } from '../lib/parquet/arrow.js';
import { isIpcBatch, type IpcBatch } from '../lib/parquet/ipc-batch.js';
import { isColumnarText } from '../lib/records/columnar.js';
import { columnarPlanned } from '../lib/run/object.js';
import { validate } from '../lib/stages/validate.js';

const { values } = parseArgs({
  options: {
    job: { type: 'string' },
    mode: { type: 'string', default: 'full' },
    'batch-rows': { type: 'string', default: '10000' },
  },
});

/** Peak resident set size of this process so far (kernel high-water mark), MiB. */
function vmHwmMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : Math.round(process.memoryUsage().rss / 1048576);
}

class CountingRejects implements RejectSink {
  count = 0;
  first: Reject | undefined;
  reject(r: Reject): void {
    this.count++;
    this.first ??= r;
  }
}

function nullSink(): Writable & { rows: number } {
  const w = new Writable({
    objectMode: true,
    highWaterMark: 16,
    write(chunk: unknown, _enc, cb) {
      w.rows += Array.isArray(chunk) ? chunk.length : isColumnarText(chunk) || isIpcBatch(chunk) ? chunk.rows : 1;
      cb();
    },
  }) as Writable & { rows: number };
  w.rows = 0;
  return w;
}

/** Rows appended into reused Arrow buffers, a batch built (and dropped) every `batchRows`. */
function arrowSink(fields: AssetField[], batchRows: number): Writable & { rows: number } {
  const builder = new RecordBatchBuilder(fields, {}, arrowSchema(fields), batchRows, true);
  const w = new Writable({
    objectMode: true,
    highWaterMark: 16,
    write(row: Row | IpcBatch, _enc, cb) {
      // The columnar path's validate built the Arrow batch already.
      if (isIpcBatch(row)) {
        w.rows += row.rows;
        cb();
        return;
      }
      builder.append(row);
      w.rows++;
      if (builder.length >= batchRows) builder.build();
      cb();
    },
    final(cb) {
      builder.build();
      cb();
    },
  }) as Writable & { rows: number };
  w.rows = 0;
  return w;
}

async function main(): Promise<void> {
  if (!values.job) throw new Error('--job is required');
  const plan = await loadJob(values.job);
  let sampled = 0;
  const sampler = setInterval(() => {
    sampled = Math.max(sampled, process.memoryUsage().rss);
  }, 50);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const out: Record<string, unknown> = { mode: values.mode };
  try {
    if (values.mode === 'full') {
      const s = await runJobFile(values.job, { batchRows: Number(values['batch-rows']) });
      out['rows'] = s.objects.reduce((n, o) => n + o.rows_written, 0);
      out['rows_read'] = s.objects.reduce((n, o) => n + o.rows_read, 0);
      out['files'] = s.objects.flatMap((o) => o.files);
      out['exit_code'] = s.exit_code;
      if (s.error) out['error'] = s.error;
    } else {
      const connector = await getConnector(plan.source.type);
      const rejects = new CountingRejects();
      const ctx: ReadContext = {
        plan,
        object: plan.source.objects[0]!,
        state: undefined,
        fullRefresh: true,
        runId: 'bench',
        runStartedAt: new Date(),
        signal: new AbortController().signal,
        log: silentLogger(),
        rejects,
        // As the run planner does (no cursor tracker here): the columnar path unless DATIVO_COLUMNAR=0.
        ...(columnarPlanned({ tracker: false }) ? { columnarText: true } : {}),
      };
      const batchRows = Number(values['batch-rows']);
      const columnar = ctx.columnarText === true ? { columnar: { fields: plan.asset.fields, constants: {}, batchRows } } : {};
      const sink = values.mode === 'arrow' ? arrowSink(plan.asset.fields, batchRows) : nullSink();
      const stages = values.mode === 'validate' || values.mode === 'arrow' ? [validate(plan.asset, { mode: 'warn', rejects, ...columnar })] : [];
      await pipeline([connector.read(ctx), ...stages, sink]);
      out['rows'] = sink.rows;
      out['rejected'] = rejects.count;
      if (rejects.first) out['first_reject'] = rejects.first.reason;
      out['exit_code'] = 0;
    }
  } catch (err) {
    out['exit_code'] = 3;
    out['error'] = { message: (err as Error).message, code: (err as { code?: string }).code };
  }
  out['seconds'] = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // CPU time of this process: less sensitive than wall time to other load on a shared box.
  out['cpu_seconds'] = (cpu.user + cpu.system) / 1e6;
  clearInterval(sampler);
  out['rss_sampled_mb'] = Math.round(sampled / 1048576);
  out['peak_rss_mb'] = vmHwmMb();
  process.stdout.write(JSON.stringify(out) + '\n');
}

await main();
