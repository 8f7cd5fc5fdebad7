/**
 * A job's connector recipes: which recipe file each role uses, the recipe
 * defaults the job's `source` block is merged over, and the recipe variables
 * that must be set (only those the job does not override).
 */
import { existsSync } from 'node:fs';
import type { JobContext } from './context.js';
import { deepMerge } from './merge.js';
import { builtinRecipePath, resolveJobPath } from './paths.js';
import { readRecipe, type ReadRecipe, type Recipe } from './recipe.js';
import type { JobInput } from './schema.js';
import { isPlainObject } from './vars.js';

/** Default target connector when the job names none. */
export const DEFAULT_TARGET = 'parquet';

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

/** Find a recipe for one role: explicit path, else built-in by name, else (target) the default. */
export async function recipeFor(ctx: JobContext, role: 'source' | 'target', job: Partial<JobInput>): Promise<ReadRecipe | undefined> {
  const pathKey = `${role}_connector_path` as const;
  const nameKey = `${role}_connector` as const;
  const explicit = job[pathKey];
  if (typeof explicit === 'string') {
    const r = resolveJobPath(explicit, ctx.jobDir, ctx.cwd);
    if (!r.exists) {
      ctx.problem([pathKey], `recipe file not found: ${explicit} (looked for ${r.tried.join(' and ')})`);
      return undefined;
    }
    return readRecipeChecked(ctx, r.path, role, pathKey);
  }
  const name = job[nameKey] ?? (role === 'target' ? DEFAULT_TARGET : undefined);
  if (typeof name !== 'string') return undefined;
  const builtin = builtinRecipePath(name);
  // An unknown name is the connector registry's to report, not ours.
  if (builtin === undefined || !existsSync(builtin)) return undefined;
  return readRecipeChecked(ctx, builtin, role, nameKey);
}

async function readRecipeChecked(ctx: JobContext, recipeFile: string, role: 'source' | 'target', key: string): Promise<ReadRecipe | undefined> {
  const r = await readRecipe(recipeFile, ctx.problems, ctx.lookup);
  if (r !== undefined && r.recipe.roles !== undefined && !r.recipe.roles.includes(role)) {
    ctx.problem([key], `connector "${r.recipe.name}" (${recipeFile}) does not have the ${role} role (roles: ${r.recipe.roles.join(', ') || 'none'})`);
  }
  return r;
}

/**
 * A connector named by `*_connector` without a recipe: a registry name as is,
 * or a third-party module path (`./x.js`, `/abs/x.js`, `*.mjs`...) made absolute
 * against the job folder, then cwd.
 */
export function connectorName(ctx: JobContext, name: string | undefined): string | undefined {
  if (name === undefined || !/^\.{1,2}[/\\]|^[/\\]|\.(m|c)?[jt]s$/.test(name)) return name;
  const r = resolveJobPath(name, ctx.jobDir, ctx.cwd);
  return r.path;
}

/** Report a recipe's missing variables, except where the job overrides the key that used them. */
export function recipeMissing(ctx: JobContext, r: ReadRecipe, jobBlock: unknown, incrementalOn: boolean): void {
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
    ctx.missingVar(r.recipe.file, m, r.yaml);
  }
}

/** The source recipe's defaults as a `source` block, for the job's block to be deep-merged over. */
export function sourceDefaults(recipe: Recipe | undefined): Record<string, unknown> {
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
  return base;
}
