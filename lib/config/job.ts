/**
 * loadJob: a job file, its recipes and its asset → a fully resolved JobPlan.
 * Every problem in any of the files is collected and reported at once.
 */
import path from 'node:path';
import { getConnector } from '../../connectors/index.js';
import type { Connector } from '../connector.js';
import type { IncrementalStrategy, JobPlan, LockSpec, RetryConfig, StateSpec } from '../plan.js';
import { jobLockPath } from '../lock.js';
import { DEFAULT_STATE_TABLE } from '../../state/postgres.js';
import type { Asset } from '../types.js';
import { scrub } from '../log.js';
import { readAsset } from './asset.js';
import { applyOverrides, assetForDiscover, resolveAssetPath } from './asset-lookup.js';
import { JobContext } from './context.js';
import { incrementalBlock, incrementalSpec, namedStrategy } from './incremental.js';
import { connectorName, recipeFor, recipeMissing, sourceDefaults } from './job-recipes.js';
import { deepMerge } from './merge.js';
import { sourceObjects } from './objects.js';
import { checkSourceOptions } from './source-options.js';
import type { Problems } from './problems.js';
import { JobSchema, LOG_LEVELS, type JobInput } from './schema.js';
import { loadSecretsDir } from './secrets.js';
import { targetPlan } from './target.js';
import { expandTree, expandVars, isPlainObject, type VarLookup } from './vars.js';
import { readYamlFile } from './yaml.js';
import { addZodProblems } from './zod-util.js';
import { retryOverrides } from '../retry.js';

export { DEFAULT_TARGET } from './job-recipes.js';

/** Options of {@link loadJob}. */
export interface LoadOptions {
  /** Root of the secrets folder; `<secretsDir>/<tenant_id>/` is read. Default: none (variables come from `env` only). */
  secretsDir?: string;
  /** Deployment mode recorded in the plan. Default `self_hosted`. */
  mode?: 'self_hosted' | 'cloud';
  /** Environment for `${VAR}` expansion and defaults. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Folder for cwd-relative fallbacks and default locations. Default `process.cwd()`. */
  cwd?: string;
  /**
   * `run` (default): the asset must exist and load. `discover`: only the
   * source part is needed; a missing or unloadable asset becomes a
   * placeholder with no columns (see `assetForDiscover`).
   */
  purpose?: 'run' | 'discover';
}

/**
 * Load a job file and everything it refers to, and return the resolved plan.
 *
 * Steps: parse the job YAML; read `<secretsDir>/<tenant_id>/`; expand
 * `${VAR}`/`${VAR:-default}` in every string of the job and the recipes;
 * validate against the (closed) job schema; load the source and target recipes
 * (`*_connector_path` relative to the job folder, then `cwd`; or the built-in
 * `connectors/<name>/recipe.yaml`; target default `parquet`); deep-merge recipe
 * defaults under the job's `source`/`target`; load the asset; resolve paths,
 * sync mode, incremental spec, objects, warehouse, catalog, state and reject
 * locations.
 *
 * @throws DativoError `CONFIG_INVALID` whose `problems` list every problem
 *   found in any file (`{file, key, message}`), one per message line.
 */
export async function loadJob(jobPath: string, opts: LoadOptions = {}): Promise<JobPlan> {
  const env = opts.env ?? process.env;
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const file = path.resolve(cwd, jobPath);
  const ctx = new JobContext(file, cwd, env);
  const problems = ctx.problems;

  const y = await readYamlFile(file, problems, 'job file');
  if (y === undefined) throw problemsError(problems);
  if (!isPlainObject(y.data)) {
    problems.add(file, '', y.data === undefined ? 'job file is empty' : 'expected a mapping at the top level');
    throw problemsError(problems);
  }
  ctx.yaml = y;

  // The tenant picks the secrets folder, so it can only use the environment.
  const rawTenant = y.data['tenant_id'];
  const tenant = typeof rawTenant === 'string' ? expandVars(rawTenant, (n) => env[n], () => {}) : typeof rawTenant === 'number' ? String(rawTenant) : undefined;
  const secretValues = new Map<string, string>();
  if (opts.secretsDir !== undefined && tenant !== undefined && /^(?!\.\.?$)[^/\\]+$/.test(tenant)) {
    for (const [k, v] of await loadSecretsDir(path.resolve(cwd, opts.secretsDir), tenant, problems)) secretValues.set(k, v);
  }
  const lookup: VarLookup = (name) => {
    const s = secretValues.get(name);
    if (s !== undefined) {
      ctx.addSecret(s);
      return s;
    }
    return env[name];
  };
  ctx.lookup = lookup;

  const expanded = expandTree(y.data, lookup);
  for (const m of expanded.missing) ctx.missingVar(file, m, y);
  const jobData = expanded.value as Record<string, unknown>;

  const parsed = JobSchema.safeParse(jobData);
  if (!parsed.success) {
    addZodProblems(parsed.error, problems, file, jobData, { yaml: y, schema: JobSchema });
    // Still look at the files it names, so that their problems are listed too.
    await probeFiles(ctx, jobData);
    throw problemsError(problems, ctx.secretValues());
  }
  const plan = await buildPlan(ctx, parsed.data, opts.mode ?? 'self_hosted', opts.purpose ?? 'run');
  if (problems.size > 0 || plan === undefined) throw problemsError(problems, ctx.secretValues());
  if (opts.secretsDir !== undefined) plan.secretsDir = path.resolve(cwd, opts.secretsDir);
  return plan;
}

/** The CONFIG_INVALID error; a message that quotes a secret value (`got string "…"`) gets it masked. */
function problemsError(problems: Problems, secrets: readonly string[] = []): Error {
  if (secrets.length > 0) for (const p of problems.list) p.message = scrub(p.message, secrets);
  try {
    problems.throwIfAny();
  } catch (e) {
    return e as Error;
  }
  return new Error('internal: no problems to report');
}

/** The connector of `type` from the registry, or undefined when there is none (yet). */
async function connectorOf(type: string | undefined, cwd: string): Promise<Connector | undefined> {
  if (type === undefined) return undefined;
  try {
    return await getConnector(type, { cwd });
  } catch {
    return undefined;
  }
}

/** After a schema failure: still load the recipes and asset named by valid-looking keys. */
async function probeFiles(ctx: JobContext, job: Record<string, unknown>): Promise<void> {
  const pick = (k: string) => (typeof job[k] === 'string' ? (job[k] as string) : undefined);
  const partial: Partial<JobInput> = {};
  for (const k of ['source_connector_path', 'target_connector_path', 'source_connector', 'target_connector', 'asset_path', 'asset'] as const) {
    const v = pick(k);
    if (v !== undefined) partial[k] = v;
  }
  const src = await recipeFor(ctx, 'source', partial);
  if (src !== undefined) recipeMissing(ctx, src, job['source'], true);
  // The connector's options are checked too, so that their problems are listed with the rest.
  const connector = await connectorOf(src?.recipe.type ?? connectorName(ctx, partial.source_connector), ctx.cwd);
  if (connector !== undefined && isPlainObject(job['source'])) {
    const { incremental: _incremental, ...jobSource } = job['source'];
    checkSourceOptions(ctx, connector, deepMerge<Record<string, unknown>>(sourceDefaults(src?.recipe), jobSource));
  }
  const jobInc = isPlainObject(job['source']) ? job['source']['incremental'] : undefined;
  if (isPlainObject(jobInc)) namedStrategy(ctx, jobInc);
  const tgt = await recipeFor(ctx, 'target', partial);
  if (tgt !== undefined) recipeMissing(ctx, tgt, job['target'], false);
  if (partial.asset_path !== undefined || partial.asset !== undefined) {
    const p = await resolveAssetPath(ctx, partial, src?.recipe.type);
    if (p !== undefined) await readAsset(p, ctx.problems);
  }
}

/** A schema-valid job → its plan, or undefined when a problem (recorded in `ctx`) prevents one. */
async function buildPlan(ctx: JobContext, job: JobInput, mode: 'self_hosted' | 'cloud', purpose: 'run' | 'discover'): Promise<JobPlan | undefined> {
  if (job.source_connector === undefined && job.source_connector_path === undefined) {
    ctx.problem('source_connector_path', 'required (or source_connector: <name> for a built-in connector)');
  }
  const src = await recipeFor(ctx, 'source', job);
  const tgt = await recipeFor(ctx, 'target', job);
  const sourceType = src?.recipe.type ?? connectorName(ctx, job.source_connector) ?? job.source?.type;
  let asset: Asset | undefined;
  // A discover placeholder has no columns to check a cursor or an object against.
  let checkedAsset: Asset | undefined;
  if (purpose === 'discover') {
    const d = await assetForDiscover(ctx, job, sourceType);
    asset = d.asset;
    checkedAsset = d.placeholder ? undefined : d.asset;
  } else {
    const assetPath = await resolveAssetPath(ctx, job, sourceType);
    asset = assetPath === undefined ? undefined : await readAsset(assetPath, ctx.problems);
    checkedAsset = asset;
  }

  // ---- source: recipe defaults deep-merged under the job's block
  const jobSource: Record<string, unknown> = { ...(job.source ?? {}) };
  const jobInc = jobSource['incremental'];
  delete jobSource['incremental'];
  const options = deepMerge<Record<string, unknown>>(sourceDefaults(src?.recipe), jobSource);
  if (sourceType !== undefined) options['type'] = sourceType;

  const inc = incrementalBlock(job, jobInc, src?.recipe);
  const syncMode = inc.syncMode;
  if (src !== undefined) recipeMissing(ctx, src, job.source, syncMode === 'incremental_append');

  // The connector checks its own options and declares its objects. An
  // unknown connector is the registry's to report (when the job runs).
  const connector = await connectorOf(sourceType, ctx.cwd);
  const optionsOk = connector === undefined || checkSourceOptions(ctx, connector, options);
  const { objects, cursorField: declaredCursor } = await sourceObjects(ctx, options, asset, optionsOk ? connector : undefined);
  const defaultStrategy = connector?.descriptor.incrementalStrategies[0] as IncrementalStrategy | undefined;
  const incremental =
    syncMode === 'incremental_append'
      ? incrementalSpec(ctx, inc.merged ?? {}, checkedAsset, { job: inc.jobCursorField, declared: declaredCursor }, defaultStrategy)
      : undefined;
  if (syncMode === 'incremental_append') options['incremental'] = inc.merged ?? {};
  if (job.source?.object !== undefined && checkedAsset?.object !== undefined && job.source.object !== checkedAsset.object) {
    ctx.problem(['source', 'object'], `"${job.source.object}" is not the asset's object "${checkedAsset.object}"`);
  }

  // ---- target
  const target = targetPlan(ctx, job, tgt, asset);

  // ---- secrets under sensitive keys
  ctx.collectSecrets(options['connection']);
  ctx.collectSecrets(options['credentials']);

  const tenantId = job.tenant_id;
  const state = stateSpec(ctx, job, jobInc, tenantId);
  const lock = lockSpec(ctx, job, state);
  const rejectDir =
    job.reject_dir !== undefined
      ? path.resolve(ctx.jobDir, job.reject_dir)
      : path.resolve(ctx.cwd, ctx.env['DATIVO_REJECT_DIR'] || '.local/rejects', tenantId, ctx.name);

  if (ctx.problems.size > 0 || asset === undefined || target === undefined || sourceType === undefined) return undefined;

  const plan: JobPlan = {
    file: ctx.file,
    name: ctx.name,
    tenantId,
    mode,
    source: { type: sourceType, options, objects },
    target,
    asset: applyOverrides(asset, job),
    syncMode,
    validationMode: job.schema_validation_mode ?? 'strict',
    rejectDir,
    state,
    lock,
    retry: retryConfig(job),
    logging: {
      level: LOG_LEVELS[(job.logging?.level ?? 'info').toLowerCase()] ?? 'info',
      redaction: job.logging?.redaction ?? true,
    },
    secrets: ctx.secretValues(),
  };
  if (job.environment !== undefined) plan.environment = job.environment;
  if (incremental !== undefined) plan.source.incremental = incremental;
  const rl = options['rate_limits'];
  if (isPlainObject(rl)) plan.source.rateLimits = rl;
  if (job.source?.parallel_objects !== undefined) plan.source.parallelObjects = job.source.parallel_objects;
  return plan;
}

/**
 * `state`: a file (the job's `state.path`, the Python `incremental.state_path`,
 * else `<DATIVO_STATE_DIR>/<tenant>/<job>.json`) or a Postgres table (`kind:
 * postgres`, or every job without a `state` block when `DATIVO_STATE_URL` is
 * set). The URL's password is a secret: redacted from every log line.
 */
function stateSpec(ctx: JobContext, job: JobInput, jobInc: unknown, tenantId: string): StateSpec {
  const envUrl = ctx.env['DATIVO_STATE_URL'];
  if (job.state?.kind === 'postgres' || (job.state === undefined && envUrl)) {
    const url = job.state?.url ?? (envUrl as string);
    addUrlSecret(ctx, url);
    return { kind: 'postgres', url, table: job.state?.table ?? DEFAULT_STATE_TABLE };
  }
  const statePathRaw = job.state?.path ?? (isPlainObject(jobInc) && typeof jobInc['state_path'] === 'string' ? jobInc['state_path'] : undefined);
  const statePath =
    statePathRaw !== undefined
      ? path.resolve(ctx.jobDir, statePathRaw)
      : path.resolve(ctx.cwd, ctx.env['DATIVO_STATE_DIR'] || ctx.env['STATE_DIR'] || '.local/state', tenantId, `${ctx.name}.json`);
  return { kind: 'file', path: statePath };
}

/** `lock`: explicit, else the default of the state store (a file lock beside a file state, an advisory lock in a Postgres state's database). */
function lockSpec(ctx: JobContext, job: JobInput, state: StateSpec): LockSpec {
  if (job.lock?.kind === 'postgres') {
    const url = job.lock.url ?? (state.kind === 'postgres' ? state.url : undefined);
    if (url === undefined) {
      ctx.problem(['lock', 'url'], 'is required when the state is not in Postgres');
      return { kind: 'file', path: '' };
    }
    addUrlSecret(ctx, url);
    return { kind: 'postgres', url };
  }
  if (job.lock?.kind === 'file' || state.kind === 'file') {
    if (state.kind !== 'file') {
      ctx.problem(['lock', 'kind'], 'a file lock only holds on one machine; with a Postgres state use kind: postgres (the default)');
      return { kind: 'file', path: '' };
    }
    return { kind: 'file', path: jobLockPath(state.path) };
  }
  return { kind: 'postgres', url: state.url };
}

/** The password in a connection URL's userinfo is a secret. */
function addUrlSecret(ctx: JobContext, url: string): void {
  try {
    const u = new URL(url);
    if (u.password !== '') {
      ctx.addSecret(u.password);
      ctx.addSecret(decodeURIComponent(u.password));
    }
  } catch {
    // An unparsable URL fails when it is used, with the URL redacted by displayUri.
  }
}

function retryConfig(job: JobInput): RetryConfig {
  const r = job.retry_config ?? {};
  return {
    maxRetries: r.max_retries ?? (r.max_attempts !== undefined ? r.max_attempts - 1 : 3),
    initialDelaySeconds: r.initial_delay_seconds ?? r.retry_delay_seconds ?? 5,
    maxDelaySeconds: r.max_delay_seconds ?? 300,
    backoffMultiplier: r.backoff_multiplier ?? 2,
    retryableExitCodes: r.retryable_exit_codes ?? [1, 2],
    request: retryOverrides(r),
  };
}
