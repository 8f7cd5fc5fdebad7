/**
 * The configuration layer: job, recipe and asset files → a resolved JobPlan.
 * See docs/configuration.md for every key and its default.
 */
export { loadJob, DEFAULT_TARGET, type LoadOptions } from './job.js';
export { loadAsset, parseFieldType, TYPE_NAMES } from './asset.js';
export { loadRecipe, recipeIncrementalDefaults, type Recipe } from './recipe.js';
export { expandVars, expandTree, type VarLookup, type MissingVar } from './vars.js';
export { deepMerge } from './merge.js';
export { parseDotEnv, loadSecretsDir } from './secrets.js';
export { packageRoot, builtinRecipePath } from './paths.js';
export { formatKey, formatProblem } from './problems.js';
