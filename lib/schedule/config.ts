/**
 * runner.yaml: the schedules of a deployment, validated up front with every
 * problem listed (file, key, YAML line) before anything runs.
 *
 * Layouts read (the Python tool's, where it worked, and ours):
 * - ours: `schedules`, `concurrency_per_tenant`, `max_concurrent_runs`,
 *   `retry_policy`, `timeout_seconds`, ... at the top level;
 * - the Python tool's: `{mode, orchestrator: {type, schedules, concurrency_per_tenant}}`;
 * - either wrapped in a top-level `runner:` mapping (every shipped Python
 *   example did that, and the Python loader then failed: here it loads).
 *
 * Problems of the runner file itself (syntax, unknown keys, a cron or time
 * zone that does not parse, duplicate names, a job file that does not exist)
 * fail the whole file: CONFIG_INVALID, exit 3. A job file that exists but
 * does not load (its own config problems) is reported and its schedule
 * skipped; the other schedules run.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Cron } from 'croner';
import { z } from 'zod';
import { loadJob, type LoadOptions } from '../config/job.js';
import { formatKey, Problems, type KeyPath } from '../config/problems.js';
import { nonNegNumber, nonNegInt, posInt, posNumber } from '../config/schema.js';
import { expandTree, isPlainObject } from '../config/vars.js';
import { readYamlFile, type YamlFile } from '../config/yaml.js';
import { addZodProblems, boolLike, numLike, stringLike } from '../config/zod-util.js';
import { toDativoError, type ConfigProblem } from '../errors.js';
import type { RetryConfig } from '../plan.js';
import { DEFAULT_RUN_RETRY, type RunRetryPolicy } from './policy.js';
import { stateLocation } from '../../state/index.js';

/** A schedule name: it names log lines, run-log entries, Dagster definitions and queue keys. */
export const SCHEDULE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Defaults of the runner-wide settings. */
export const RUNNER_DEFAULTS = Object.freeze({
  /** Runs of one tenant at a time. */
  concurrencyPerTenant: 1,
  /** Runs at a time in all (all tenants). */
  maxConcurrentRuns: 4,
  /** A run still going after this long is killed and counted as retryable: 6 hours. */
  timeoutSeconds: 6 * 3600,
  /** On SIGTERM, how long running runs may go on before they are stopped. */
  shutdownGraceSeconds: 60,
  /** After SIGTERM to a run (timeout, shutdown), how long before SIGKILL. */
  killGraceSeconds: 10,
  timezone: 'UTC',
});

const backoffFactor = numLike.refine((n) => n >= 1, { message: 'must be >= 1' });

/** `retry_policy` (per schedule, or at the top as the default of every schedule). */
export const RetryPolicySchema = z.strictObject({
  max_retries: nonNegInt.optional(),
  delay_seconds: nonNegNumber.optional(),
  backoff_factor: backoffFactor.optional(),
  max_delay_seconds: posNumber.optional(),
  retry_on_partial: boolLike.optional(),
});
type RetryPolicyInput = z.infer<typeof RetryPolicySchema>;

/** One entry of `schedules`. */
export const ScheduleSchema = z.strictObject({
  name: stringLike.pipe(z.string().regex(SCHEDULE_NAME_RE, 'must be letters, digits, "_", "." or "-" (it names logs, runs and Dagster definitions)')),
  config: z.string().min(1),
  cron: z.string().min(1).optional(),
  interval_seconds: posNumber.optional(),
  enabled: boolLike.optional(),
  timezone: z.string().min(1).optional(),
  tags: z.record(z.string(), stringLike).nullable().optional(),
  description: z.string().optional(),
  retry_policy: RetryPolicySchema.optional(),
  timeout_seconds: posNumber.optional(),
  /** The Python tool's; parsed there and unused. Runs of one job never overlap here, so only 1 means something. */
  max_concurrent_runs: posInt.optional(),
});

/** `run_log`: where runs are recorded (`dativo runs` reads it). A string is a file path. */
export const RunLogSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { kind: 'file', path: v } : v),
  z.strictObject({ kind: z.literal('file'), path: z.string().min(1) }),
);

const settings = {
  schedules: z.array(z.unknown()).optional(),
  concurrency_per_tenant: posInt.optional(),
  max_concurrent_runs: posInt.optional(),
  retry_policy: RetryPolicySchema.optional(),
  timeout_seconds: posNumber.optional(),
  shutdown_grace_seconds: nonNegNumber.optional(),
  kill_grace_seconds: nonNegNumber.optional(),
  run_log: RunLogSchema.optional(),
};

/** The Python tool's `orchestrator` block (its keys, and ours). */
const OrchestratorSchema = z.strictObject({ type: z.string().optional(), ...settings });

/** The top level (after an optional `runner:` wrapper). */
export const RunnerSchema = z.strictObject({
  $schema: z.string().optional(),
  mode: z.enum(['orchestrated', 'oneshot']).optional(),
  orchestrator: OrchestratorSchema.optional(),
  ...settings,
});

/** When a schedule fires. */
export type Trigger =
  | { kind: 'cron'; cron: string; timezone: string }
  /** Every `seconds`, on multiples of it since the Unix epoch (so a restart keeps the rhythm). */
  | { kind: 'interval'; seconds: number };

/** What a schedule's job file says, once it loaded. */
export interface ScheduleJob {
  tenant: string;
  /** Job name (the file name without `.yaml`). */
  name: string;
  /** Where the job's state lives (file path, or Postgres table and row; see stateLocation): two schedules with the same key are the same job and never run at once. */
  key: string;
  /** Its objects, in order. */
  objects: string[];
}

/** One schedule, resolved. */
export interface Schedule {
  name: string;
  /** Absolute path of the job file. */
  config: string;
  trigger: Trigger;
  enabled: boolean;
  tags: Record<string, string>;
  description?: string;
  retry: RunRetryPolicy;
  timeoutSeconds: number;
  job: ScheduleJob;
  /** Key path of this schedule in the runner file (e.g. `orchestrator.schedules[2]`). */
  at: string;
}

/** A schedule whose job file did not load: reported, not run. */
export interface SkippedSchedule {
  name: string;
  config: string;
  at: string;
  /** The job file's problems (file, key, message). */
  problems: ConfigProblem[];
  code: string;
  message: string;
}

/** A loaded runner file. */
export interface RunnerConfig {
  file: string;
  /** Every schedule whose job loaded, enabled or not, in file order. */
  schedules: Schedule[];
  skipped: SkippedSchedule[];
  concurrencyPerTenant: number;
  maxConcurrentRuns: number;
  shutdownGraceSeconds: number;
  killGraceSeconds: number;
  /** Undefined: the default location (lib/schedule/run-log.ts). */
  runLog?: { kind: 'file'; path: string };
  /** Things that do not stop the file from loading but are worth saying (a key read and ignored). */
  warnings: ConfigProblem[];
}

/** Options of {@link loadRunner}: how the job files are loaded (as `dativo run` would). */
export type RunnerLoadOptions = Pick<LoadOptions, 'secretsDir' | 'mode' | 'env' | 'cwd'>;

/** Whether `tz` is an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The croner error for `cron` in `timezone`, or undefined when it parses. */
export function cronProblem(cron: string, timezone: string): string | undefined {
  try {
    new Cron(cron, { timezone, paused: true }).stop();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * The run retry policy from `retry_policy` layers, the most specific first,
 * over the defaults: the schedule's, then the keys its job file's
 * `retry_config` sets, then the runner file's top-level one.
 */
export function retryPolicyOf(...layers: (RetryPolicyInput | undefined)[]): RunRetryPolicy {
  const pick = <K extends keyof RetryPolicyInput>(k: K): RetryPolicyInput[K] => layers.find((l) => l?.[k] !== undefined)?.[k];
  return Object.freeze({
    maxRetries: pick('max_retries') ?? DEFAULT_RUN_RETRY.maxRetries,
    delaySeconds: pick('delay_seconds') ?? DEFAULT_RUN_RETRY.delaySeconds,
    backoffFactor: pick('backoff_factor') ?? DEFAULT_RUN_RETRY.backoffFactor,
    maxDelaySeconds: pick('max_delay_seconds') ?? DEFAULT_RUN_RETRY.maxDelaySeconds,
    retryOnPartial: pick('retry_on_partial') ?? DEFAULT_RUN_RETRY.retryOnPartial,
  });
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** The job file a schedule names: relative to the runner file's folder, then to `cwd`. */
async function resolveJobFile(config: string, runnerDir: string, cwd: string): Promise<string | undefined> {
  const candidates = path.isAbsolute(config) ? [config] : [path.resolve(runnerDir, config), path.resolve(cwd, config)];
  for (const c of candidates) if (await isFile(c)) return c;
  return undefined;
}

/**
 * Load and validate `runnerFile` and every job file it names.
 *
 * @throws DativoError CONFIG_INVALID (exit 3) listing every problem of the
 *   runner file (file, key, line), among them a missing job file; a job file
 *   with problems of its own only skips its schedule ({@link RunnerConfig.skipped}).
 */
export async function loadRunner(runnerFile: string, opts: RunnerLoadOptions = {}): Promise<RunnerConfig> {
  const env = opts.env ?? process.env;
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const file = path.resolve(cwd, runnerFile);
  const problems = new Problems();
  const y = await readYamlFile(file, problems, 'runner file');
  if (y === undefined) problems.throwIfAny();
  const yaml = y as YamlFile;
  if (!isPlainObject(yaml.data)) {
    problems.add(file, '', yaml.data === undefined ? 'runner file is empty' : 'expected a mapping at the top level');
    problems.throwIfAny();
  }

  // `runner:` wrapping the whole file (the Python examples' layout).
  let base: KeyPath = [];
  let raw = yaml.data as Record<string, unknown>;
  if (Object.keys(raw).length === 1 && isPlainObject(raw['runner'])) {
    base = ['runner'];
    raw = raw['runner'];
  }
  const expanded = expandTree(raw, (n) => env[n], base);
  for (const m of expanded.missing) problems.missingVar(file, m.path, m.name, yaml.lineOf(m.path));
  const data = expanded.value as Record<string, unknown>;
  const line = (p: KeyPath): string => {
    const l = yaml.lineOf([...base, ...p]);
    return l === undefined ? '' : ` (line ${l})`;
  };
  const add = (p: KeyPath, message: string): void => problems.add(file, [...base, ...p], message + line(p));

  const parsed = RunnerSchema.safeParse(data);
  if (!parsed.success) {
    addZodProblems(parsed.error, problems, file, data, { yaml, schema: RunnerSchema, basePath: base });
    problems.throwIfAny();
  }
  const top = parsed.data!;
  const orch = top.orchestrator;
  const setting = <K extends keyof typeof settings>(k: K): { value: z.infer<(typeof settings)[K]> | undefined; at: KeyPath } => {
    if (orch?.[k] !== undefined && top[k] !== undefined) add(['orchestrator', k], `given both here and at the top level (${k}); keep one`);
    return orch?.[k] !== undefined ? { value: orch[k] as z.infer<(typeof settings)[K]>, at: ['orchestrator', k] } : { value: top[k] as z.infer<(typeof settings)[K]> | undefined, at: [k] };
  };
  const schedulesAt = setting('schedules');
  const retryAt = setting('retry_policy');
  const defaults = retryAt.value;
  const defaultTimeout = setting('timeout_seconds').value ?? RUNNER_DEFAULTS.timeoutSeconds;
  const warnings: ConfigProblem[] = [];
  if (schedulesAt.value === undefined) add([], 'schedules: required (a list of {name, config, cron | interval_seconds})');
  checkRetry(defaults, retryAt.at, add);

  // Each schedule: its own schema, then what a schema cannot say.
  const entries: { s: z.infer<typeof ScheduleSchema>; at: KeyPath; jobFile: string | undefined }[] = [];
  const byName = new Map<string, string>();
  const runnerDir = path.dirname(file);
  for (const [i, item] of (schedulesAt.value ?? []).entries()) {
    const at: KeyPath = [...schedulesAt.at, i];
    const r = ScheduleSchema.safeParse(item);
    if (!r.success) {
      addZodProblems(r.error, problems, file, item, { yaml, schema: ScheduleSchema, basePath: [...base, ...at] });
      continue;
    }
    const s = r.data;
    const tz = s.timezone ?? RUNNER_DEFAULTS.timezone;
    if (s.cron !== undefined && s.interval_seconds !== undefined) add([...at, 'cron'], 'give either cron or interval_seconds, not both');
    else if (s.cron === undefined && s.interval_seconds === undefined) add([...at, 'name'], `schedule "${s.name}" needs cron or interval_seconds`);
    if (!isTimeZone(tz)) add([...at, 'timezone'], `unknown time zone "${tz}" (an IANA name such as Europe/Berlin or UTC)`);
    else if (s.cron !== undefined) {
      const why = cronProblem(s.cron, tz);
      if (why !== undefined) add([...at, 'cron'], `invalid cron expression "${s.cron}": ${why.replace(/^CronPattern: /, '')}`);
    }
    const seen = byName.get(s.name);
    if (seen !== undefined) add([...at, 'name'], `duplicate schedule name "${s.name}" (also at ${seen})`);
    else byName.set(s.name, formatKey([...base, ...at]));
    checkRetry(s.retry_policy, [...at, 'retry_policy'], add);
    if (s.max_concurrent_runs !== undefined && s.max_concurrent_runs > 1) {
      warnings.push({
        file,
        key: formatKey([...base, ...at, 'max_concurrent_runs']),
        message: `ignored: runs of one job never overlap (the job lock), so at most 1 runs at a time${line([...at, 'max_concurrent_runs'])}`,
      });
    }
    const jobFile = await resolveJobFile(s.config, runnerDir, cwd);
    if (jobFile === undefined) add([...at, 'config'], `job file not found: ${path.resolve(runnerDir, s.config)}`);
    entries.push({ s, at, jobFile });
  }
  problems.throwIfAny();

  const loadOpts: LoadOptions = {
    ...(opts.secretsDir !== undefined ? { secretsDir: opts.secretsDir } : {}),
    ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
    env,
    cwd,
  };
  const schedules: Schedule[] = [];
  const skipped: SkippedSchedule[] = [];
  for (const { s, at, jobFile } of entries) {
    const config = jobFile as string;
    const atText = formatKey([...base, ...at]);
    let job: ScheduleJob;
    let fromJob: RetryPolicyInput;
    try {
      const plan = await loadJob(config, loadOpts);
      job = { tenant: plan.tenantId, name: plan.name, key: stateLocation(plan.state, { tenant: plan.tenantId, job: plan.name }), objects: plan.source.objects.map((o) => o.name) };
      fromJob = jobRetryLayer(plan.retry);
    } catch (err) {
      const e = toDativoError(err, { file: config });
      skipped.push({ name: s.name, config, at: atText, problems: e.problems, code: e.code, message: e.message });
      continue;
    }
    schedules.push({
      name: s.name,
      config,
      trigger: s.cron !== undefined ? { kind: 'cron', cron: s.cron, timezone: s.timezone ?? RUNNER_DEFAULTS.timezone } : { kind: 'interval', seconds: s.interval_seconds as number },
      enabled: s.enabled ?? true,
      tags: { ...(s.tags ?? {}) },
      ...(s.description !== undefined ? { description: s.description } : {}),
      retry: retryPolicyOf(s.retry_policy, fromJob, defaults),
      timeoutSeconds: s.timeout_seconds ?? defaultTimeout,
      job,
      at: atText,
    });
  }
  const runLog = setting('run_log').value;
  return {
    file,
    schedules,
    skipped,
    concurrencyPerTenant: setting('concurrency_per_tenant').value ?? RUNNER_DEFAULTS.concurrencyPerTenant,
    maxConcurrentRuns: setting('max_concurrent_runs').value ?? RUNNER_DEFAULTS.maxConcurrentRuns,
    shutdownGraceSeconds: setting('shutdown_grace_seconds').value ?? RUNNER_DEFAULTS.shutdownGraceSeconds,
    killGraceSeconds: setting('kill_grace_seconds').value ?? RUNNER_DEFAULTS.killGraceSeconds,
    ...(runLog !== undefined ? { runLog: { kind: 'file' as const, path: path.resolve(runnerDir, runLog.path) } } : {}),
    warnings,
  };
}

/**
 * The keys a job file's `retry_config` sets, as a `retry_policy` layer (the
 * Python tool kept run retries there): `max_retries` (or `max_attempts`),
 * `initial_delay_seconds`, `max_delay_seconds`, `backoff_multiplier`. Only
 * set keys count (`plan.retry.request` holds exactly those); its
 * `retryable_exit_codes` is not read, exit codes mean what DESIGN.md says.
 */
function jobRetryLayer(r: RetryConfig): RetryPolicyInput {
  const q = r.request ?? {};
  return {
    ...(q.maxAttempts !== undefined ? { max_retries: q.maxAttempts - 1 } : {}),
    ...(q.minDelayMs !== undefined ? { delay_seconds: q.minDelayMs / 1000 } : {}),
    ...(q.maxDelayMs !== undefined ? { max_delay_seconds: q.maxDelayMs / 1000 } : {}),
    ...(q.factor !== undefined ? { backoff_factor: q.factor } : {}),
  };
}

function checkRetry(r: RetryPolicyInput | undefined, at: KeyPath, add: (p: KeyPath, m: string) => void): void {
  if (r?.delay_seconds !== undefined && r.max_delay_seconds !== undefined && r.delay_seconds > r.max_delay_seconds) {
    add([...at, 'delay_seconds'], `${r.delay_seconds} is above max_delay_seconds (${r.max_delay_seconds})`);
  }
}
