/**
 * Connector recipes: tenant-agnostic defaults of a connector. Both historical
 * shapes load: the v1.2 `connectors/{sources,targets}/x.yaml` files (no
 * `roles`) and the unified `connectors/x.yaml` with `roles`.
 */
import path from 'node:path';
import { z } from 'zod';
import { Problems } from './problems.js';
import { CatalogSchema, nonNegInt, nonNegNumber, RateLimitsSchema } from './schema.js';
import { expandTree, type MissingVar, type VarLookup } from './vars.js';
import { readYamlFile, type YamlFile } from './yaml.js';
import { addZodProblems, anyRecord } from './zod-util.js';

/** Recipe `incremental` (the `*_default` spellings of the Python recipes included). */
const RecipeIncrementalSchema = z.strictObject({
  strategy: z.string().optional(),
  cursor_field: z.string().nullable().optional(),
  cursor_field_default: z.string().nullable().optional(),
  lookback_days: nonNegInt.nullable().optional(),
  lookback_days_default: nonNegInt.nullable().optional(),
  lag_seconds: nonNegNumber.optional(),
});

/** A recipe file. Closed at the top level. */
export const RecipeSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().min(1).optional(),
  type: z.string().min(1),
  version: z.unknown().optional(),
  roles: z.array(z.enum(['source', 'target'])).optional(),
  description: z.string().optional(),
  default_engine: anyRecord.nullable().optional(),
  credentials: anyRecord.nullable().optional(),
  connection_template: anyRecord.nullable().optional(),
  connection: anyRecord.nullable().optional(),
  incremental: RecipeIncrementalSchema.nullable().optional(),
  rate_limits: RateLimitsSchema.nullable().optional(),
  catalog: CatalogSchema.nullable().optional(),
  file_format: z.string().optional(),
  partitioning_default: z.array(z.string()).nullable().optional(),
});

/** A loaded recipe (variables expanded). */
export type Recipe = z.infer<typeof RecipeSchema> & {
  /** Absolute path of the recipe file. */
  file: string;
  /** `name`, defaulting to `type`. */
  name: string;
};

/** A recipe read during loadJob: missing variables are kept aside, since the job may override the keys that use them. */
export interface ReadRecipe {
  recipe: Recipe;
  missing: MissingVar[];
  yaml: YamlFile;
}

/** Read, expand and validate one recipe, adding problems (except missing variables, returned). */
export async function readRecipe(file: string, problems: Problems, lookup: VarLookup): Promise<ReadRecipe | undefined> {
  const y = await readYamlFile(file, problems, 'recipe file');
  if (y === undefined) return undefined;
  if (y.data === null || typeof y.data !== 'object' || Array.isArray(y.data)) {
    problems.add(file, '', y.data === undefined ? 'recipe file is empty' : 'expected a mapping at the top level');
    return undefined;
  }
  const { value, missing } = expandTree(y.data, lookup);
  const parsed = RecipeSchema.safeParse(value);
  if (!parsed.success) {
    addZodProblems(parsed.error, problems, file, value, { yaml: y, schema: RecipeSchema });
    return undefined;
  }
  return { recipe: { ...parsed.data, name: parsed.data.name ?? parsed.data.type, file }, missing, yaml: y };
}

/**
 * The recipe's `incremental` block with the Python `*_default` keys mapped on
 * purpose: `cursor_field_default` → `cursor_field` (an explicit non-default
 * key wins). The Python tool kept the `_default` keys verbatim, so its
 * validator then found no `cursor_field`.
 *
 * A recipe's `lookback_days` / `lookback_days_default` is NOT carried into
 * the job: a first run reads the source's whole history unless the job
 * itself sets `lookback_days` (a recipe default silently narrowing the
 * first run made a job copied from an example read nothing).
 */
export function recipeIncrementalDefaults(recipe: Recipe | undefined): Record<string, unknown> {
  const inc = recipe?.incremental;
  if (inc === undefined || inc === null) return {};
  const out: Record<string, unknown> = {};
  if (inc.strategy !== undefined) out['strategy'] = inc.strategy;
  const cursor = inc.cursor_field ?? inc.cursor_field_default;
  if (cursor !== undefined && cursor !== null) out['cursor_field'] = cursor;
  if (inc.lag_seconds !== undefined) out['lag_seconds'] = inc.lag_seconds;
  return out;
}

/**
 * Load one recipe file on its own. A relative path resolves against
 * `process.cwd()`; `${VAR}`s expand from `env` (default `process.env`).
 * Throws CONFIG_INVALID listing every problem, missing variables included.
 */
export async function loadRecipe(recipePath: string, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Recipe> {
  const env = opts.env ?? process.env;
  const problems = new Problems();
  const file = path.resolve(recipePath);
  const r = await readRecipe(file, problems, (n) => env[n]);
  for (const m of r?.missing ?? []) {
    problems.missingVar(file, m.path, m.name, r?.yaml.lineOf(m.path));
  }
  problems.throwIfAny();
  return r!.recipe;
}
