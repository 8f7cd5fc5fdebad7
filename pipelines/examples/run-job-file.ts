/**
 * A whole job from its file, as `dativo run` runs it: load, run, redact,
 * summary — one call, the same summary the CLI prints with `--json`.
 *
 *   node --import tsx pipelines/examples/run-job-file.ts [OUT_DIR]
 *
 * OUT_DIR (default ./warehouse/examples-run) gets the Parquet dataset, the
 * state and the reject files. docs/library.md quotes it;
 * test/pipelines/examples.test.ts runs it.
 * In your own project import from 'dativo-ingest' instead of '../../lib/index.js'.
 */
import path from 'node:path';
import { createLogger, runJobFile, stringifyJson } from '../../lib/index.js';

const outDir = path.resolve(process.argv[2] ?? 'warehouse/examples-run');

const summary = await runJobFile(path.join(import.meta.dirname, 'customers_csv.yaml'), {
  // `${VAR}`s of the job come from here (default process.env); so do the state and reject folders.
  env: { ...process.env, EXAMPLES_WAREHOUSE: outDir, DATIVO_STATE_DIR: path.join(outDir, 'state'), DATIVO_REJECT_DIR: path.join(outDir, 'rejects') },
  log: (plan) => createLogger({ level: 'warn', secrets: plan.secrets }), // default: silent
  signal: AbortSignal.timeout(10 * 60_000), // abort = nothing committed
});
console.log(stringifyJson(summary)); // secrets already replaced by [REDACTED]
process.exitCode = summary.exit_code; // 0 ok, 1 partial, 2 retryable, 3 permanent
