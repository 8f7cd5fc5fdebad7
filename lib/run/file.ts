/**
 * runJobFile: the one entry point from a job file to its redacted run
 * summary — load, run, redact — that the CLI, the benchmarks and a scheduler
 * call, so none of them repeats the sequence.
 */
import { getConnector } from '../../connectors/index.js';
import { loadJob, type LoadOptions } from '../config/index.js';
import type { Connector } from '../connector.js';
import { toDativoError, type DativoError } from '../errors.js';
import { redactDeep, type Logger } from '../log.js';
import type { JobPlan } from '../plan.js';
import { runJob } from '../run.js';
import type { RunOptions, RunSummary } from './types.js';

/** Options of {@link runJobFile}: how to load the job, and how to run it. */
export interface RunFileOptions extends LoadOptions, Omit<RunOptions, 'log' | 'connector'> {
  /**
   * A logger, or a function that makes one from the loaded plan (the CLI
   * builds its logger from the job's `logging` block and `plan.secrets`).
   * Default: a silent logger.
   */
  log?: Logger | ((plan: JobPlan) => Logger);
}

/** The message, prefixed with the job file when it does not name it already. */
function withFile(e: DativoError, file: string): string {
  return e.message.includes(file) || e.problems.length > 0 ? e.message : `${file}: ${e.message}`;
}

/**
 * The summary of a job that never started because its file (or a file it
 * names, or its connector) did not load: `run_id` is empty, no object ran,
 * nothing was touched.
 */
function notStarted(file: string, err: unknown): RunSummary {
  const e = toDativoError(err, { file });
  return {
    run_id: '',
    exit_code: e.exitCode,
    job: file,
    tenant: '',
    started_at: new Date().toISOString(),
    seconds: 0,
    objects: [],
    error: { code: e.code, message: withFile(e, file), ...(e.problems.length > 0 ? { problems: e.problems } : {}) },
  };
}

/**
 * Load the job file at `file`, run it, and return its summary with every
 * secret value of the job replaced by `[REDACTED]` (unless the job sets
 * `logging.redaction: false`) — the summary `dativo run` prints.
 *
 * Never throws for a failed job. A job that does not load (config problems,
 * unknown connector) returns a summary with an empty `run_id`, the error
 * (with every problem, file and key) and its exit code (3 for config),
 * before any table, file or state is touched.
 */
export async function runJobFile(file: string, opts: RunFileOptions = {}): Promise<RunSummary> {
  const { secretsDir, mode, env, cwd, log, ...runOpts } = opts;
  const loadOpts: LoadOptions = {
    ...(secretsDir !== undefined ? { secretsDir } : {}),
    ...(mode !== undefined ? { mode } : {}),
    ...(env !== undefined ? { env } : {}),
    ...(cwd !== undefined ? { cwd } : {}),
  };

  // 1. Load: the plan and its connector. A problem ends the job here.
  let plan: JobPlan;
  let connector: Connector;
  try {
    plan = await loadJob(file, loadOpts);
    connector = await getConnector(plan.source.type, cwd !== undefined ? { cwd } : {});
  } catch (err) {
    return notStarted(file, err);
  }

  // 2. Run. Whatever must hold for the whole run (e.g. a per-job lock) wraps this step.
  const logger = typeof log === 'function' ? log(plan) : log;
  const ran = await runJob(plan, { ...runOpts, connector, ...(logger ? { log: logger } : {}) });

  // 3. Redact: error messages can quote a secret (a URL built with one): the
  // logs mask it, and so must the summary — the same function, so names and
  // file URIs stay true in both.
  return plan.logging.redaction === false ? ran : redactDeep(ran, plan.secrets);
}
