/**
 * loadJob: a job file, its recipes and its asset → a fully resolved JobPlan.
 * Every problem in any of the files is collected and reported at once.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { glob } from 'tinyglobby';
import type {
  CatalogSpec,
  IncrementalSpec,
  IncrementalStrategy,
  JobPlan,
  RetryConfig,
  S3Settings,
  SourceObjectSpec,
  SyncMode,
  TargetPlan,
} from '../plan.js';
import type { Asset } from '../types.js';
import { scrub } from '../log.js';
import { readAsset } from './asset.js';
import { deepMerge } from './merge.js';
import { builtinRecipePath, hasScheme, resolveJobPath } from './paths.js';
import { Problems, type KeyPath } from './problems.js';
import { readRecipe, recipeIncrementalDefaults, type ReadRecipe, type Recipe } from './recipe.js';
import { CatalogSchema, JobSchema, LOG_LEVELS, type CatalogInput, type JobInput } from './schema.js';
import { loadSecretsDir } from './secrets.js';
import { expandTree, expandVars, isPlainObject, type MissingVar, type VarLookup } from './vars.js';
import { readYamlFile, type YamlFile } from './yaml.js';
import { addZodProblems } from './zod-util.js';

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
}

/** Default target connector when the job names none. */
export const DEFAULT_TARGET = 'parquet';

const STRATEGIES: Record<string, IncrementalStrategy> = {
  created: 'created',
  updated: 'updated',
  updated_at: 'updated',
  updated_after: 'updated',
  cursor_field: 'updated',
  incremental: 'updated',
  id: 'id',
  append: 'id',
  incremental_id: 'id',
  file_modified: 'file_modified',
  file_modified_time: 'file_modified',
  spreadsheet_modified_time: 'file_modified',
  modified: 'file_modified',
};

/** Keys whose values are secrets wherever they appear under connection/credentials blocks. */
const SECRET_KEY_RE = /password|secret|token|api_key|private_key|access_key/i;

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
    await ctx.probeFiles(jobData);
    throw problemsError(problems, ctx.secretValues());
  }
  const plan = await ctx.build(parsed.data, opts.mode ?? 'self_hosted');
  if (problems.size > 0 || plan === undefined) throw problemsError(problems, ctx.secretValues());
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

/** Where a recipe key lands in the merged block (`connection_template.x` → `connection.x`). */
const RECIPE_KEY_MAP: Record<string, string> = {
  connection_template: 'connection',
  default_engine: 'engine',
  partitioning_default: 'partitioning',
};
const RECIPE_INCREMENTAL_MAP: Record<string, string> = { cursor_field_default: 'cursor_field', lookback_days_default: 'lookback_days' };

/** True when the job block sets a value at `p` (or replaces a parent of it with a non-mapping). */
function overridden(jobBlock: unknown, p: readonly (string | number)[]): boolean {
  let cur: unknown = jobBlock;
  for (const seg of p) {
    if (!isPlainObject(cur)) return false;
    cur = cur[String(seg)];
    if (cur === undefined) return false;
    if (!isPlainObject(cur)) return true;
  }
  return cur !== undefined;
}

class JobContext {
  readonly problems = new Problems();
  readonly jobDir: string;
  readonly name: string;
  yaml: YamlFile | undefined;
  lookup: VarLookup = () => undefined;
  private readonly secrets = new Set<string>();

  constructor(
    readonly file: string,
    readonly cwd: string,
    readonly env: NodeJS.ProcessEnv,
  ) {
    this.jobDir = path.dirname(file);
    this.name = path.basename(file).replace(/\.(ya?ml)$/i, '');
  }

  /** Secret values met so far (from the secrets folder, or under secret-looking keys). */
  secretValues(): string[] {
    return [...this.secrets];
  }

  addSecret(v: unknown): void {
    if (typeof v === 'string' && v !== '') this.secrets.add(v);
  }

  problem(key: string | KeyPath, message: string): void {
    const line = this.yaml?.lineOf(typeof key === 'string' ? [] : key);
    const withLine = typeof key !== 'string' && line !== undefined && key.length > 0 ? `${message} (line ${line})` : message;
    this.problems.add(this.file, key, withLine);
  }

  missingVar(file: string, m: MissingVar, y: YamlFile | undefined): void {
    const line = y?.lineOf(m.path);
    this.problems.add(file, m.path, `variable \${${m.name}} is not set${line === undefined ? '' : ` (line ${line})`}`);
  }

  /** Find a recipe for one role: explicit path, else built-in by name, else (target) the default. */
  async recipeFor(role: 'source' | 'target', job: Partial<JobInput>): Promise<ReadRecipe | undefined> {
    const pathKey = `${role}_connector_path` as const;
    const nameKey = `${role}_connector` as const;
    const explicit = job[pathKey];
    if (typeof explicit === 'string') {
      const r = resolveJobPath(explicit, this.jobDir, this.cwd);
      if (!r.exists) {
        this.problem([pathKey], `recipe file not found: ${explicit} (looked for ${r.tried.join(' and ')})`);
        return undefined;
      }
      return this.readRecipeChecked(r.path, role, pathKey);
    }
    const name = job[nameKey] ?? (role === 'target' ? DEFAULT_TARGET : undefined);
    if (typeof name !== 'string') return undefined;
    const builtin = builtinRecipePath(name);
    // An unknown name is the connector registry's to report, not ours.
    if (builtin === undefined || !existsSync(builtin)) return undefined;
    return this.readRecipeChecked(builtin, role, nameKey);
  }

  private async readRecipeChecked(recipeFile: string, role: 'source' | 'target', key: string): Promise<ReadRecipe | undefined> {
    const r = await readRecipe(recipeFile, this.problems, this.lookup);
    if (r !== undefined && r.recipe.roles !== undefined && !r.recipe.roles.includes(role)) {
      this.problem([key], `connector "${r.recipe.name}" (${recipeFile}) does not have the ${role} role (roles: ${r.recipe.roles.join(', ') || 'none'})`);
    }
    return r;
  }

  /**
   * A connector named by `*_connector` without a recipe: a registry name as is,
   * or a third-party module path (`./x.js`, `/abs/x.js`, `*.mjs`...) made absolute
   * against the job folder, then cwd.
   */
  connectorName(name: string | undefined): string | undefined {
    if (name === undefined || !/^\.{1,2}[/\\]|^[/\\]|\.(m|c)?[jt]s$/.test(name)) return name;
    const r = resolveJobPath(name, this.jobDir, this.cwd);
    return r.path;
  }

  /** Report a recipe's missing variables, except where the job overrides the key that used them. */
  recipeMissing(r: ReadRecipe, jobBlock: unknown, incrementalOn: boolean): void {
    for (const m of r.missing) {
      const [head, ...rest] = m.path;
      const top = String(head);
      let mapped: (string | number)[];
      if (top === 'incremental') {
        if (!incrementalOn) continue;
        const [k, ...more] = rest;
        mapped = ['incremental', RECIPE_INCREMENTAL_MAP[String(k)] ?? String(k), ...more];
      } else {
        mapped = [RECIPE_KEY_MAP[top] ?? top, ...rest];
      }
      if (overridden(jobBlock, mapped)) continue;
      this.missingVar(r.recipe.file, m, r.yaml);
    }
  }

  async resolveAssetPath(job: Partial<JobInput>, sourceType: string | undefined): Promise<string | undefined> {
    if (typeof job.asset_path === 'string') {
      const r = resolveJobPath(job.asset_path, this.jobDir, this.cwd);
      if (!r.exists) {
        this.problem(['asset_path'], `asset file not found: ${job.asset_path} (looked for ${r.tried.join(' and ')})`);
        return undefined;
      }
      return r.path;
    }
    const name = job.asset;
    if (typeof name !== 'string') {
      this.problem('asset_path', 'required (the path of the asset definition)');
      return undefined;
    }
    if (/\.ya?ml$/i.test(name)) {
      const r = resolveJobPath(name, this.jobDir, this.cwd);
      if (r.exists) return r.path;
    }
    // `asset: <name>` without a path: a single `<name>.yaml` next to the job or under <cwd>/schemas/.
    const base = name.replace(/\.ya?ml$/i, '');
    const candidates = new Set<string>();
    for (const ext of ['yaml', 'yml']) {
      const p = path.join(this.jobDir, `${base}.${ext}`);
      if (existsSync(p)) candidates.add(p);
    }
    if (candidates.size === 0 && !/[*?{}[\]]/.test(base)) {
      const under = sourceType !== undefined && existsSync(path.join(this.cwd, 'schemas', sourceType)) ? `schemas/${sourceType}` : 'schemas';
      for (const p of await glob([`${under}/**/${base}.yaml`, `${under}/**/${base}.yml`], { cwd: this.cwd, absolute: true })) candidates.add(p);
    }
    if (candidates.size === 1) return [...candidates][0];
    if (candidates.size === 0) this.problem(['asset'], `no asset_path given and no ${base}.yaml found next to the job or under ${path.join(this.cwd, 'schemas')}`);
    else this.problem(['asset'], `no asset_path given and "${base}" is ambiguous: ${[...candidates].sort().join(', ')}`);
    return undefined;
  }

  /** After a schema failure: still load the recipes and asset named by valid-looking keys. */
  async probeFiles(job: Record<string, unknown>): Promise<void> {
    const pick = (k: string) => (typeof job[k] === 'string' ? (job[k] as string) : undefined);
    const partial: Partial<JobInput> = {};
    for (const k of ['source_connector_path', 'target_connector_path', 'source_connector', 'target_connector', 'asset_path', 'asset'] as const) {
      const v = pick(k);
      if (v !== undefined) partial[k] = v;
    }
    const src = await this.recipeFor('source', partial);
    if (src !== undefined) this.recipeMissing(src, job['source'], true);
    const tgt = await this.recipeFor('target', partial);
    if (tgt !== undefined) this.recipeMissing(tgt, job['target'], false);
    if (partial.asset_path !== undefined || partial.asset !== undefined) {
      const p = await this.resolveAssetPath(partial, src?.recipe.type);
      if (p !== undefined) await readAsset(p, this.problems);
    }
  }

  async build(job: JobInput, mode: 'self_hosted' | 'cloud'): Promise<JobPlan | undefined> {
    if (job.source_connector === undefined && job.source_connector_path === undefined) {
      this.problem('source_connector_path', 'required (or source_connector: <name> for a built-in connector)');
    }
    const src = await this.recipeFor('source', job);
    const tgt = await this.recipeFor('target', job);
    const sourceType = src?.recipe.type ?? this.connectorName(job.source_connector) ?? job.source?.type;
    const assetPath = await this.resolveAssetPath(job, sourceType);
    const asset = assetPath === undefined ? undefined : await readAsset(assetPath, this.problems);

    // ---- source: recipe defaults deep-merged under the job's block
    const jobSource: Record<string, unknown> = { ...(job.source ?? {}) };
    const jobInc = jobSource['incremental'];
    delete jobSource['incremental'];
    const recipe = src?.recipe;
    const base: Record<string, unknown> = {};
    if (recipe !== undefined) {
      base['type'] = recipe.type;
      if (recipe.description !== undefined) base['description'] = recipe.description;
      if (recipe.default_engine != null) base['engine'] = recipe.default_engine;
      if (recipe.credentials != null) base['credentials'] = recipe.credentials;
      const conn = deepMerge<Record<string, unknown> | undefined>(recipe.connection_template ?? undefined, recipe.connection ?? undefined);
      if (conn !== undefined) base['connection'] = conn;
      if (recipe.rate_limits != null) base['rate_limits'] = recipe.rate_limits;
    }
    const options = deepMerge<Record<string, unknown>>(base, jobSource);
    if (sourceType !== undefined) options['type'] = sourceType;

    // Incremental is opt-in (as in the Python tool since 30 Nov): a non-empty job block turns it on.
    const jobIncOn = isPlainObject(jobInc) && Object.keys(jobInc).length > 0 && jobInc['enabled'] !== false;
    let mergedInc: Record<string, unknown> | undefined;
    // The cursor column the job itself names: it beats a table's or the
    // asset's, which in turn beat the recipe's default.
    let jobCursorField: string | undefined;
    if (jobIncOn) {
      const { enabled: _enabled, cursor_field_default, lookback_days_default, ...rest } = jobInc;
      if (rest['cursor_field'] === undefined && cursor_field_default != null) rest['cursor_field'] = cursor_field_default;
      if (typeof rest['cursor_field'] === 'string' && rest['cursor_field'] !== '') jobCursorField = rest['cursor_field'];
      if (rest['lookback_days'] === undefined && lookback_days_default != null) rest['lookback_days'] = lookback_days_default;
      mergedInc = deepMerge(recipeIncrementalDefaults(recipe), rest);
    } else if (job.sync_mode === 'incremental_append' && jobInc !== null) {
      mergedInc = recipeIncrementalDefaults(recipe);
    }
    let syncMode: SyncMode;
    if (job.sync_mode !== undefined) syncMode = job.sync_mode;
    else syncMode = mergedInc !== undefined && Object.keys(mergedInc).length > 0 && mergedInc['strategy'] !== 'full_refresh' ? 'incremental_append' : 'full_refresh';
    if (src !== undefined) this.recipeMissing(src, job.source, syncMode === 'incremental_append');

    const objects = await this.objects(options, asset);
    let incremental: IncrementalSpec | undefined;
    if (syncMode === 'incremental_append') {
      incremental = this.incremental(mergedInc ?? {}, options, asset, jobCursorField);
      options['incremental'] = mergedInc ?? {};
    }
    if (job.source?.object !== undefined && asset?.object !== undefined && job.source.object !== asset.object) {
      this.problem(['source', 'object'], `"${job.source.object}" is not the asset's object "${asset.object}"`);
    }

    // ---- target
    const target = this.target(job, tgt, asset);

    // ---- secrets under sensitive keys
    this.collectSecrets(options['connection']);
    this.collectSecrets(options['credentials']);

    const tenantId = job.tenant_id;
    const statePathRaw = job.state?.path ?? (isPlainObject(jobInc) && typeof jobInc['state_path'] === 'string' ? jobInc['state_path'] : undefined);
    const statePath =
      statePathRaw !== undefined
        ? path.resolve(this.jobDir, statePathRaw)
        : path.resolve(this.cwd, this.env['DATIVO_STATE_DIR'] || this.env['STATE_DIR'] || '.local/state', tenantId, `${this.name}.json`);
    const rejectDir =
      job.reject_dir !== undefined
        ? path.resolve(this.jobDir, job.reject_dir)
        : path.resolve(this.cwd, this.env['DATIVO_REJECT_DIR'] || '.local/rejects', tenantId, this.name);

    if (this.problems.size > 0 || asset === undefined || target === undefined || sourceType === undefined) return undefined;

    const plan: JobPlan = {
      file: this.file,
      name: this.name,
      tenantId,
      mode,
      source: { type: sourceType, options, objects },
      target,
      asset: applyOverrides(asset, job),
      syncMode,
      validationMode: job.schema_validation_mode ?? 'strict',
      rejectDir,
      state: { kind: 'file', path: statePath },
      retry: retryConfig(job),
      logging: {
        level: LOG_LEVELS[(job.logging?.level ?? 'info').toLowerCase()] ?? 'info',
        redaction: job.logging?.redaction ?? true,
      },
      secrets: [...this.secrets],
    };
    if (job.environment !== undefined) plan.environment = job.environment;
    if (incremental !== undefined) plan.source.incremental = incremental;
    const rl = options['rate_limits'];
    if (isPlainObject(rl)) plan.source.rateLimits = rl;
    return plan;
  }

  private incremental(
    inc: Record<string, unknown>,
    options: Record<string, unknown>,
    asset: Asset | undefined,
    jobCursorField: string | undefined,
  ): IncrementalSpec | undefined {
    const key = ['source', 'incremental'];
    const rawStrategy = inc['strategy'];
    const tables = Array.isArray(options['tables']) ? (options['tables'] as Record<string, unknown>[]) : [];
    const tableCursor = tables.map((t) => t['cursor_field']).find((c): c is string => typeof c === 'string');
    const recipeCursor = typeof inc['cursor_field'] === 'string' && inc['cursor_field'] !== '' ? inc['cursor_field'] : undefined;
    const cursorField = jobCursorField ?? tableCursor ?? asset?.cursorField ?? recipeCursor;
    let strategy: IncrementalStrategy | undefined;
    if (typeof rawStrategy === 'string') {
      strategy = STRATEGIES[rawStrategy];
      if (strategy === undefined) {
        this.problem([...key, 'strategy'], `unknown strategy "${rawStrategy}" (expected one of: ${Object.keys(STRATEGIES).join(', ')})`);
        return undefined;
      }
    } else if (cursorField !== undefined) {
      strategy = 'updated';
    } else if (Array.isArray(options['files']) || Array.isArray(options['sheets'])) {
      strategy = 'file_modified';
    } else {
      this.problem([...key, 'strategy'], 'incremental sync needs a strategy (created, updated, id or file_modified) or a cursor_field');
      return undefined;
    }
    const spec: IncrementalSpec = {
      strategy,
      lookbackDays: typeof inc['lookback_days'] === 'number' ? inc['lookback_days'] : 0,
      lagSeconds: typeof inc['lag_seconds'] === 'number' ? inc['lag_seconds'] : 60,
    };
    if (strategy !== 'file_modified') {
      if (cursorField === undefined) {
        this.problem([...key, 'cursor_field'], `strategy "${String(rawStrategy ?? strategy)}" needs a cursor column: set source.incremental.cursor_field, a table's cursor_field or the asset's cursor_field`);
        return undefined;
      }
      if (asset !== undefined && !asset.fields.some((f) => f.name === cursorField)) {
        this.problem([...key, 'cursor_field'], `cursor column "${cursorField}" is not in the asset schema (${asset.file})`);
      }
      spec.cursorField = cursorField;
    }
    return spec;
  }

  private async objects(options: Record<string, unknown>, asset: Asset | undefined): Promise<SourceObjectSpec[]> {
    const out: SourceObjectSpec[] = [];
    const seen = new Map<string, string>();
    const add = (name: string, config: Record<string, unknown>, key: KeyPath) => {
      const prev = seen.get(name);
      if (prev !== undefined) this.problem(key, `object "${name}" is already read by ${prev}`);
      else seen.set(name, key.map((s) => (typeof s === 'number' ? `[${s}]` : s)).join('.').replace(/\.\[/g, '['));
      out.push({ name, config });
    };
    const entries = (k: string) => (Array.isArray(options[k]) ? (options[k] as unknown[]) : []);
    for (const k of ['tables', 'sheets'] as const) {
      entries(k).forEach((e, i) => {
        if (!isPlainObject(e)) return;
        const name = e['object'] ?? e['name'] ?? e['spreadsheet_id'] ?? e['id'];
        if (typeof name !== 'string' || name === '') {
          this.problem(['source', k, i], 'needs an object or name');
          return;
        }
        add(name, e, ['source', k, i]);
      });
    }
    const files = entries('files');
    if (files.length > 0) {
      const groups = new Map<string, { entries: Record<string, unknown>[]; index: number }>();
      const defaultObject = asset?.object ?? asset?.name ?? 'default';
      for (let i = 0; i < files.length; i++) {
        const e = files[i];
        if (!isPlainObject(e)) continue;
        for (const pk of ['path', 'file'] as const) {
          const v = e[pk];
          if (typeof v === 'string' && v !== '' && !hasScheme(v)) e[pk] = await this.resolveLocalGlob(v);
        }
        const obj = typeof e['object'] === 'string' && e['object'] !== '' ? e['object'] : defaultObject;
        const g = groups.get(obj) ?? { entries: [], index: i };
        g.entries.push(e);
        groups.set(obj, g);
      }
      for (const [obj, g] of groups) add(obj, { files: g.entries }, ['source', 'files', g.index]);
    }
    entries('objects').forEach((e, i) => {
      if (isPlainObject(e) && typeof e['name'] === 'string') add(e['name'], e, ['source', 'objects', i]);
    });
    const single = options['object'];
    if (typeof single === 'string' && single !== '') add(single, { name: single }, ['source', 'object']);
    if (out.length === 0) {
      // One asset per job: the asset's object is the default object.
      const name = asset?.object ?? asset?.name;
      if (name !== undefined) out.push({ name, config: {} });
    }
    return out;
  }

  /** A relative file path or glob: job folder if it matches there, else cwd if it matches there, else the job folder. */
  private async resolveLocalGlob(p: string): Promise<string> {
    if (path.isAbsolute(p)) return p;
    if (!/[*?{}[\]]/.test(p)) return resolveJobPath(p, this.jobDir, this.cwd).path;
    const inJob = path.resolve(this.jobDir, p);
    if ((await glob(p, { cwd: this.jobDir })).length > 0) return inJob;
    if ((await glob(p, { cwd: this.cwd })).length > 0) return path.resolve(this.cwd, p);
    return inJob;
  }

  private target(job: JobInput, tgt: ReadRecipe | undefined, asset: Asset | undefined): TargetPlan | undefined {
    const recipe: Recipe | undefined = tgt?.recipe;
    const base: Record<string, unknown> = {};
    if (recipe !== undefined) {
      if (recipe.catalog != null) base['catalog'] = recipe.catalog;
      if (recipe.file_format !== undefined) base['file_format'] = recipe.file_format;
      if (recipe.partitioning_default != null) base['partitioning'] = recipe.partitioning_default;
      if (recipe.default_engine != null) base['engine'] = recipe.default_engine;
      const conn = deepMerge<Record<string, unknown> | undefined>(recipe.connection_template ?? undefined, recipe.connection ?? undefined);
      if (conn !== undefined) base['connection'] = conn;
    }
    const jobTarget = job.target ?? {};
    const baseCatalog = base['catalog'] as { type?: string } | undefined;
    // A catalog of another type replaces the recipe's rather than inheriting its name/uri.
    if (baseCatalog !== undefined && jobTarget.catalog != null && jobTarget.catalog.type !== baseCatalog.type) delete base['catalog'];
    const merged = deepMerge<Record<string, unknown>>(base, jobTarget);
    if (tgt !== undefined) this.recipeMissing(tgt, job.target, false);
    const type = recipe?.type ?? this.connectorName(job.target_connector) ?? job.target?.type ?? DEFAULT_TARGET;
    const conn = isPlainObject(merged['connection']) ? merged['connection'] : {};
    this.collectSecrets(conn);

    // ---- warehouse and S3
    const key = (...p: (string | number)[]) => ['target', ...p];
    const s3Block = isPlainObject(conn['s3']) ? conn['s3'] : conn['bucket'] !== undefined ? conn : undefined;
    const s3Key = isPlainObject(conn['s3']) ? key('connection', 's3') : key('connection');
    let warehouse: string;
    let s3: S3Settings | undefined;
    let bucket: string | undefined;
    let prefix: string | undefined;
    const wh = merged['warehouse'];
    const explicitWarehouse = typeof wh === 'string' && wh !== '';
    if (!explicitWarehouse) {
      warehouse = pathToFileURL(path.resolve(this.cwd, 'warehouse')).href;
    } else if (/^s3a?:\/\//.test(wh)) {
      const [b, ...rest] = wh.replace(/^s3a?:\/\//, '').split('/');
      bucket = b;
      prefix = rest.join('/');
      warehouse = wh; // rewritten below from the parsed bucket and prefix
    } else if (wh.startsWith('file://')) {
      warehouse = wh;
    } else if (hasScheme(wh)) {
      this.problem(key('warehouse'), `unsupported warehouse "${wh}" (use a local path, file:// or s3://)`);
      warehouse = wh;
    } else {
      warehouse = pathToFileURL(path.resolve(this.jobDir, wh)).href;
    }
    // An explicit local warehouse wins over an S3 connection (e.g. one inherited from a recipe template).
    if (bucket !== undefined || (!explicitWarehouse && s3Block !== undefined)) {
      const b = s3Block ?? {};
      const str = (k: string) => (typeof b[k] === 'string' && b[k] !== '' ? (b[k] as string) : undefined);
      bucket ??= str('bucket');
      prefix ??= str('prefix');
      if (bucket === undefined || bucket === '') {
        this.problem([...s3Key, 'bucket'], 'required for an S3 warehouse');
      } else {
        prefix = (prefix ?? '').replace(/^\/+|\/+$/g, '');
        // The AWS SDK's own variables, so that a job behaves as the aws CLI would.
        const endpoint = str('endpoint') ?? (this.env['AWS_ENDPOINT_URL_S3'] || this.env['AWS_ENDPOINT_URL'] || undefined);
        const pathStyle = b['path_style_access'];
        s3 = {
          bucket,
          region: str('region') ?? (this.env['AWS_REGION'] || this.env['AWS_DEFAULT_REGION'] || 'us-east-1'),
          forcePathStyle: typeof pathStyle === 'boolean' ? pathStyle : endpoint !== undefined,
        };
        if (prefix !== '') s3.prefix = prefix;
        if (endpoint !== undefined) s3.endpoint = endpoint;
        const accessKeyId = str('access_key_id') ?? (this.env['AWS_ACCESS_KEY_ID'] || undefined);
        const secretAccessKey = str('secret_access_key') ?? (this.env['AWS_SECRET_ACCESS_KEY'] || undefined);
        const sessionToken = str('session_token') ?? (this.env['AWS_SESSION_TOKEN'] || undefined);
        if (accessKeyId !== undefined) s3.accessKeyId = accessKeyId;
        if (secretAccessKey !== undefined) s3.secretAccessKey = secretAccessKey;
        if (sessionToken !== undefined) s3.sessionToken = sessionToken;
        this.addSecret(secretAccessKey);
        this.addSecret(sessionToken);
        warehouse = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
      }
    }

    // ---- catalog
    const catalog = this.catalog(type, merged, conn, warehouse, s3 !== undefined);

    const num = (v: unknown, d: number) => (typeof v === 'number' ? v : d);
    const partitioning = Array.isArray(merged['partitioning']) ? (merged['partitioning'] as unknown[]).filter((p): p is string => typeof p === 'string') : [];
    if (catalog === undefined || asset === undefined) return undefined;
    const plan: TargetPlan = {
      type,
      warehouse,
      catalog,
      namespace: (merged['namespace'] as string | undefined) ?? asset.domain ?? 'default',
      table: (merged['table'] as string | undefined) ?? asset.name.toLowerCase().replace(/[-\s]+/g, '_'),
      partitioning,
      targetFileSizeBytes: Math.round(num(merged['parquet_target_size_mb'], 128) * 1024 * 1024),
      rowGroupRows: num(merged['row_group_rows'], 100_000),
      compression: (merged['compression'] as TargetPlan['compression'] | undefined) ?? 'zstd',
    };
    if (s3 !== undefined) plan.s3 = s3;
    return plan;
  }

  private catalog(type: string, merged: Record<string, unknown>, conn: Record<string, unknown>, warehouse: string, isS3: boolean): CatalogSpec | undefined {
    const key = ['target', 'catalog'];
    let c: CatalogInput | undefined;
    const raw = merged['catalog'];
    if (raw !== undefined && raw !== null) {
      // Recipe and job parts were each validated; the deep-merged whole is re-checked.
      const parsed = CatalogSchema.safeParse(raw);
      if (!parsed.success) {
        addZodProblems(parsed.error, this.problems, this.file, raw, { basePath: key, schema: CatalogSchema });
        return undefined;
      }
      c = parsed.data;
    } else if (type === 'iceberg') {
      c = { type: 'sql' };
    }
    if (c === undefined || c.type === 'none') return { type: 'none' };
    this.addSecret(c.token);
    switch (c.type) {
      case 'sql':
      case 'sqlite': {
        let uri = c.uri;
        if (uri === undefined) {
          if (isS3) {
            this.problem(key, 'an S3 warehouse needs a shared catalog: set target.catalog.uri (postgres://… or sqlite:/abs/path/catalog.db)');
            return undefined;
          }
          uri = `sqlite:${path.join(fileURLToPath(warehouse), 'catalog.db')}`;
        } else if (uri.startsWith('sqlite:') && !uri.startsWith('sqlite://')) {
          uri = `sqlite:${path.resolve(this.jobDir, uri.slice('sqlite:'.length))}`;
        }
        return { type: 'sql', name: c.name ?? 'dativo', uri };
      }
      case 'rest': {
        const restConn = isPlainObject(conn['rest']) ? conn['rest'] : {};
        const uri = c.uri ?? (typeof restConn['uri'] === 'string' ? restConn['uri'] : undefined);
        if (uri === undefined) {
          this.problem([...key, 'uri'], 'required for a REST catalog');
          return undefined;
        }
        const spec: CatalogSpec = { type: 'rest', name: c.name ?? 'rest', uri };
        const prefix = c.prefix ?? c.branch;
        if (prefix !== undefined) spec.prefix = prefix;
        if (c.warehouse !== undefined) spec.warehouse = c.warehouse;
        if (c.token !== undefined) spec.token = c.token;
        if (c.headers !== undefined) spec.headers = c.headers;
        return spec;
      }
      case 'nessie': {
        const nessie = isPlainObject(conn['nessie']) ? conn['nessie'] : {};
        const base = c.uri ?? (typeof nessie['uri'] === 'string' && nessie['uri'] !== '' ? nessie['uri'] : undefined) ?? (this.env['NESSIE_URI'] || undefined);
        if (base === undefined) {
          this.problem(['target', 'connection', 'nessie', 'uri'], 'required for the nessie catalog (e.g. http://nessie:19120)');
          return undefined;
        }
        // Nessie serves the Iceberg REST API at /iceberg; its own API at /api/v1|v2.
        const root = base.replace(/\/+$/, '').replace(/\/api\/v[12]$/, '');
        const uri = root.endsWith('/iceberg') ? root : `${root}/iceberg`;
        const branch = c.prefix ?? c.branch ?? (typeof merged['branch'] === 'string' ? merged['branch'] : undefined) ?? 'main';
        const spec: CatalogSpec = { type: 'rest', name: c.name ?? 'nessie', uri, prefix: branch };
        if (c.warehouse !== undefined) spec.warehouse = c.warehouse;
        if (c.token !== undefined) spec.token = c.token;
        if (c.headers !== undefined) spec.headers = c.headers;
        return spec;
      }
    }
  }

  private collectSecrets(v: unknown, sensitive = false): void {
    if (typeof v === 'string') {
      if (sensitive) this.addSecret(v);
    } else if (Array.isArray(v)) {
      for (const item of v) this.collectSecrets(item, sensitive);
    } else if (isPlainObject(v)) {
      for (const [k, item] of Object.entries(v)) this.collectSecrets(item, sensitive || SECRET_KEY_RE.test(k));
    }
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
  };
}

/**
 * Apply the job's governance overrides to the asset: `classification_overrides`
 * (column → classification; `default` → table level, kept in
 * `raw.compliance.classification`), `finops` (merged over the asset's),
 * `governance_overrides.owner` → `raw.team.owner`, `.retention_days` →
 * `raw.compliance.retention_days`.
 */
function applyOverrides(asset: Asset, job: JobInput): Asset {
  const co = job.classification_overrides ?? {};
  const fields = asset.fields.map((f) => (co[f.name] !== undefined ? { ...f, classification: co[f.name]! } : f));
  let raw = asset.raw;
  const patch: Record<string, unknown> = {};
  if (job.finops != null) patch['finops'] = job.finops;
  const gov = job.governance_overrides ?? {};
  if (gov['owner'] !== undefined) patch['team'] = { owner: gov['owner'] };
  const compliance: Record<string, unknown> = {};
  if (gov['retention_days'] !== undefined) compliance['retention_days'] = gov['retention_days'];
  if (co['default'] !== undefined) compliance['classification'] = [co['default']];
  if (Object.keys(compliance).length > 0) patch['compliance'] = compliance;
  if (Object.keys(patch).length > 0) raw = deepMerge(raw, patch);
  return { ...asset, fields, raw };
}
