/**
 * `dativo dagster export`: a runner file as a Dagster code location
 * (`definitions.py`, loaded with `dagster dev -f definitions.py`).
 *
 * - one asset per job, or per object where a job has several (one
 *   `multi_asset` per job: a job's objects run together), keys
 *   `[dativo, <tenant>, <name>]`, grouped by tenant;
 * - an asset job and a `ScheduleDefinition` per schedule (an interval
 *   becomes the cron it equals, or the nearest one, said in a comment);
 * - the retry policy as `RetryPolicy(max_retries, delay, Backoff.EXPONENTIAL)`;
 * - each run calls `dativo run <job> --json` and maps the exit code as the
 *   in-process scheduler does (lib/schedule/policy.ts): 3 → `Failure(allow_retries=False)`,
 *   2, a timeout or a crash → `Failure` (retried by the policy), 1 →
 *   materialised with a warning and the rejected count (or retried with
 *   `retry_on_partial`), 0 → materialised; rows, snapshot id and run id are
 *   materialisation metadata.
 *
 * The text is Python built from the runner's data; every value goes in as a
 * literal ({@link py}), never spliced into code.
 */
import type { RunnerConfig, Schedule } from './config.js';

/** What the export could not say exactly (also written into the file as comments). */
export interface ExportResult {
  python: string;
  warnings: string[];
}

/** A Python literal for a JSON-like value (a JSON string literal is a valid Python one). */
export function py(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`not a finite number: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(py).join(', ')}]`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `${JSON.stringify(k)}: ${py(x)}`)
    .join(', ')}}`;
}

/** A Dagster name (asset key part, group, job, schedule): letters, digits and `_`. */
export function dagsterName(s: string): string {
  const n = s.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(n) ? `_${n}` : n;
}

/**
 * The 5-field cron of a schedule's trigger, and whether it fires at exactly
 * the same times. Intervals run on multiples since the epoch (UTC), which
 * `*\/m` minutes (m divides 60) and `0 *\/h` hours (h divides 24) match.
 */
export function dagsterCron(s: Schedule): { cron: string; timezone: string; exact: boolean } {
  const t = s.trigger;
  if (t.kind === 'cron') {
    const fields = t.cron.trim().split(/\s+/);
    if (fields.length === 5 || t.cron.trim().startsWith('@')) return { cron: t.cron.trim(), timezone: t.timezone, exact: true };
    // croner's 6-field form starts with seconds; a 7th field is the year.
    const five = fields.slice(1, 6).join(' ');
    return { cron: five, timezone: t.timezone, exact: fields[0] === '0' && fields.length === 6 };
  }
  const minutes = t.seconds / 60;
  if (Number.isInteger(minutes) && minutes >= 1) {
    if (minutes < 60 && 60 % minutes === 0) return { cron: minutes === 1 ? '* * * * *' : `*/${minutes} * * * *`, timezone: 'UTC', exact: true };
    const hours = minutes / 60;
    if (Number.isInteger(hours) && hours < 24 && 24 % hours === 0) return { cron: hours === 1 ? '0 * * * *' : `0 */${hours} * * *`, timezone: 'UTC', exact: true };
    if (hours === 24) return { cron: '0 0 * * *', timezone: 'UTC', exact: true };
  }
  // The nearest cron Dagster can take: minutes (at least 1) below an hour, else hours, else days.
  const m = Math.max(1, Math.round(t.seconds / 60));
  if (m < 60) return { cron: `*/${m} * * * *`, timezone: 'UTC', exact: false };
  const h = Math.round(m / 60);
  if (h < 24) return { cron: `0 */${h} * * *`, timezone: 'UTC', exact: false };
  return { cron: `0 0 */${Math.max(1, Math.round(h / 24))} * *`, timezone: 'UTC', exact: false };
}

interface ExportJob {
  id: string;
  tenant: string;
  group: string;
  name: string;
  config: string;
  assets: { key: string[]; object: string }[];
  retry: { max_retries: number; delay_seconds: number; backoff_factor: number; max_delay_seconds: number; retry_on_partial: boolean };
  timeout_seconds: number;
  kill_grace_seconds: number;
}

/** The Python text of the code location for `runner`. */
export function renderDefinitions(runner: RunnerConfig, opts: { cli?: string } = {}): ExportResult {
  const warnings: string[] = [];
  const jobs = new Map<string, ExportJob>();
  const scheduleRows: Record<string, unknown>[] = [];
  for (const s of runner.schedules) {
    let job = jobs.get(s.job.key);
    if (job === undefined) {
      const base = dagsterName(s.job.name);
      const several = s.job.objects.length > 1;
      job = {
        id: dagsterName(`${s.job.tenant}__${s.job.name}`),
        tenant: s.job.tenant,
        group: dagsterName(s.job.tenant),
        name: s.job.name,
        config: s.config,
        assets: s.job.objects.map((o) => ({ key: ['dativo', dagsterName(s.job.tenant), several ? `${base}__${dagsterName(o)}` : base], object: o })),
        retry: {
          max_retries: s.retry.maxRetries,
          delay_seconds: s.retry.delaySeconds,
          backoff_factor: s.retry.backoffFactor,
          max_delay_seconds: s.retry.maxDelaySeconds,
          retry_on_partial: s.retry.retryOnPartial,
        },
        timeout_seconds: s.timeoutSeconds,
        kill_grace_seconds: runner.killGraceSeconds,
      };
      jobs.set(s.job.key, job);
      if (s.retry.maxRetries >= 2) {
        const n = Array.from({ length: Math.min(s.retry.maxRetries, 5) }, (_, i) => i + 1);
        const ours = n.map((k) => Math.min(s.retry.maxDelaySeconds, s.retry.delaySeconds * s.retry.backoffFactor ** (k - 1)));
        const theirs = n.map((k) => s.retry.delaySeconds * (2 ** k - 1));
        warnings.push(
          `schedule ${s.name}: Dagster's Backoff.EXPONENTIAL waits delay × (2^n − 1) with no cap (${theirs.join(', ')} s), dativo schedule delay × backoff_factor^(n−1) capped at max_delay_seconds (${ours.join(', ')} s)`,
        );
      }
    } else if (job.retry.max_retries !== s.retry.maxRetries || job.retry.delay_seconds !== s.retry.delaySeconds) {
      warnings.push(`schedule ${s.name}: its job is the asset of an earlier schedule; that schedule's retry policy applies in Dagster`);
    }
    const c = dagsterCron(s);
    if (!c.exact) {
      warnings.push(
        `schedule ${s.name}: ${s.trigger.kind === 'interval' ? `interval_seconds ${s.trigger.seconds}` : `cron "${s.trigger.cron}"`} has no exact 5-field cron; exported as "${c.cron}"`,
      );
    }
    scheduleRows.push({
      name: dagsterName(s.name),
      job: job.id,
      cron: c.cron,
      timezone: c.timezone,
      enabled: s.enabled,
      tags: { ...s.tags, 'dativo/tenant': s.job.tenant, 'dativo/schedule': s.name },
      description: s.description ?? `dativo schedule ${s.name}: ${s.job.tenant}/${s.job.name}`,
    });
  }
  for (const sk of runner.skipped) warnings.push(`schedule ${sk.name}: not exported, its job file ${sk.config} does not load (${sk.code})`);

  const jobRows = [...jobs.values()];
  const lines = [
    // A raw docstring: a path with a backslash must not become an escape.
    `r"""Dagster code location for ${runner.file.replace(/"""|[\\\r\n]/g, '_')}.`,
    '',
    'Generated by `dativo dagster export`; regenerate it when runner.yaml changes, do not edit.',
    'Load it:  dagster dev -f definitions.py',
    '',
    'Each asset run calls `dativo run <job> --json` (DATIVO_CLI overrides the command, e.g.',
    '"npx dativo") and maps its exit code: 0 materialised; 1 materialised with a warning and',
    'the rejected count (retried first when retry_on_partial); 2, a timeout or a crash: a',
    'Failure the RetryPolicy retries; 3: Failure(allow_retries=False).',
    '',
    `Tenants: at most ${runner.concurrencyPerTenant} run(s) of one tenant at a time (concurrency_per_tenant) and ${runner.maxConcurrentRuns}`,
    'in all (max_concurrent_runs) hold when dagster.yaml limits the run queue by the dativo/tenant tag:',
    '',
    '    run_coordinator:',
    '      module: dagster.core.run_coordinator',
    '      class: QueuedRunCoordinator',
    '      config:',
    `        max_concurrent_runs: ${runner.maxConcurrentRuns}`,
    '        tag_concurrency_limits:',
    '          - key: "dativo/tenant"',
    '            value: {applyLimitPerUniqueValue: true}',
    `            limit: ${runner.concurrencyPerTenant}`,
    '"""',
    ...(warnings.length > 0 ? ['', '# Not exact in Dagster:', ...warnings.map((w) => `#   ${w.replace(/\n/g, ' ')}`)] : []),
    '',
    'import json',
    'import os',
    'import shlex',
    'import signal',
    'import subprocess',
    '',
    'from dagster import (',
    '    AssetKey,',
    '    AssetSelection,',
    '    AssetSpec,',
    '    Backoff,',
    '    DefaultScheduleStatus,',
    '    Definitions,',
    '    Failure,',
    '    MaterializeResult,',
    '    MetadataValue,',
    '    RetryPolicy,',
    '    ScheduleDefinition,',
    '    define_asset_job,',
    '    multi_asset,',
    ')',
    '',
    `DATIVO_CLI = shlex.split(os.environ.get("DATIVO_CLI", ${py(opts.cli ?? 'dativo')}))`,
    '',
    `JOBS = ${pyBlock(jobRows)}`,
    '',
    `SCHEDULES = ${pyBlock(scheduleRows)}`,
    '',
    PY_RUNTIME,
  ];
  return { python: `${lines.join('\n').replace(/\n{3,}/g, '\n\n\n')}\n`, warnings };
}

/** A list of rows, one per line. */
function pyBlock(rows: unknown[]): string {
  return rows.length === 0 ? '[]' : `[\n${rows.map((r) => `    ${py(r)},`).join('\n')}\n]`;
}

/** The fixed part: running the CLI and building the definitions from JOBS and SCHEDULES. */
const PY_RUNTIME = String.raw`
def _summary(stdout):
    """The last line of stdout that is a JSON object (the run summary), else None."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _run_cli(context, job):
    """Run the job's CLI process under its timeout: (exit code, summary, stderr), or a Failure."""
    argv = [*DATIVO_CLI, "run", job["config"], "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=job["timeout_seconds"])
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.communicate(timeout=job["kill_grace_seconds"])
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.communicate()
        raise Failure(
            description=f"dativo run {job['name']} passed its timeout of {job['timeout_seconds']} s and was killed (RUN_TIMEOUT)",
            metadata={"dativo/error_code": "RUN_TIMEOUT", "dativo/exit_code": 2},
        )
    for line in err.splitlines():
        context.log.debug(line)
    return proc.returncode, _summary(out), err


def _metadata(summary, obj):
    meta = {
        "dativo/run_id": MetadataValue.text(summary.get("run_id") or ""),
        "dativo/exit_code": MetadataValue.int(int(summary.get("exit_code", 0))),
        "dativo/rows_read": MetadataValue.int(int(obj.get("rows_read", 0))),
        "dativo/rows_written": MetadataValue.int(int(obj.get("rows_written", 0))),
        "dativo/rows_rejected": MetadataValue.int(int(obj.get("rows_rejected", 0))),
        "dativo/files": MetadataValue.int(len(obj.get("files") or [])),
    }
    if obj.get("snapshot_id"):
        meta["dativo/snapshot_id"] = MetadataValue.text(str(obj["snapshot_id"]))
    if obj.get("reject_file"):
        meta["dativo/reject_file"] = MetadataValue.path(obj["reject_file"])
    return meta


def run_job(context, job):
    """One attempt of a job: the exit-code mapping of docs/scheduling.md, then one result per asset."""
    code, summary, err = _run_cli(context, job)
    if summary is None or summary.get("exit_code") != code:
        tail = err.strip().splitlines()[-1:] if err.strip() else []
        raise Failure(
            description=f"dativo run {job['name']} ended with exit code {code} and no matching run summary (RUN_CRASHED) {' '.join(tail)}",
            metadata={"dativo/error_code": "RUN_CRASHED", "dativo/exit_code": 2},
        )
    error = summary.get("error") or {}
    failure_meta = {"dativo/exit_code": code, "dativo/error_code": error.get("code", ""), "dativo/run_id": summary.get("run_id") or ""}
    if code == 3:
        raise Failure(description=f"dativo run {job['name']} failed permanently: [{error.get('code')}] {error.get('message')}", metadata=failure_meta, allow_retries=False)
    if code == 2:
        raise Failure(description=f"dativo run {job['name']} failed (retryable): [{error.get('code')}] {error.get('message')}", metadata=failure_meta)
    objects = {o.get("name"): o for o in summary.get("objects") or []}
    rejected = sum(int(o.get("rows_rejected", 0)) for o in objects.values())
    if code == 1:
        if job["retry"]["retry_on_partial"] and context.retry_number < job["retry"]["max_retries"]:
            raise Failure(description=f"dativo run {job['name']} was partial ({rejected} rejected); retry_on_partial", metadata={**failure_meta, "dativo/rows_rejected": rejected})
        context.log.warning(f"dativo run {job['name']} was partial: {rejected} record(s) rejected{'; ' + str(error.get('message')) if error else ''}")
    for asset in job["assets"]:
        obj = objects.get(asset["object"])
        if obj is None or obj.get("error"):
            context.log.warning(f"object {asset['object']} of {job['name']} did not commit: {(obj or {}).get('error')}")
            continue
        yield MaterializeResult(asset_key=AssetKey(asset["key"]), metadata=_metadata(summary, obj))


def _assets_of(job):
    several = len(job["assets"]) > 1

    @multi_asset(
        name=job["id"],
        specs=[
            AssetSpec(
                key=AssetKey(a["key"]),
                group_name=job["group"],
                description=f"dativo job {job['name']} ({job['config']}), object {a['object']}",
                tags={"dativo/tenant": job["tenant"]},
                skippable=several,
            )
            for a in job["assets"]
        ],
        retry_policy=RetryPolicy(
            max_retries=job["retry"]["max_retries"],
            delay=job["retry"]["delay_seconds"],
            backoff=Backoff.EXPONENTIAL,
        ),
        op_tags={"dativo/tenant": job["tenant"]},
        can_subset=False,
    )
    def _assets(context):
        yield from run_job(context, job)

    return _assets


ASSETS = {job["id"]: _assets_of(job) for job in JOBS}
_JOBS_BY_ID = {job["id"]: job for job in JOBS}

ASSET_JOBS = {
    s["name"]: define_asset_job(
        name=f"{s['name']}_job",
        selection=AssetSelection.assets(*[AssetKey(a["key"]) for a in _JOBS_BY_ID[s["job"]]["assets"]]),
        tags=s["tags"],
        description=s["description"],
    )
    for s in SCHEDULES
}

SCHEDULE_DEFINITIONS = [
    ScheduleDefinition(
        name=s["name"],
        job=ASSET_JOBS[s["name"]],
        cron_schedule=s["cron"],
        execution_timezone=s["timezone"],
        default_status=DefaultScheduleStatus.RUNNING if s["enabled"] else DefaultScheduleStatus.STOPPED,
        tags=s["tags"],
        description=s["description"],
    )
    for s in SCHEDULES
]

defs = Definitions(assets=list(ASSETS.values()), jobs=list(ASSET_JOBS.values()), schedules=SCHEDULE_DEFINITIONS)
`;
