/**
 * A job's incremental sync: the job's `source.incremental` block merged over
 * the recipe's defaults, the sync mode it implies, and the resolved
 * {@link IncrementalSpec} (strategy, cursor column, lookback, lag).
 */
import { CURSORLESS_STRATEGIES, type IncrementalSpec, type IncrementalStrategy, type SyncMode } from '../plan.js';
import type { Asset } from '../types.js';
import type { JobContext } from './context.js';
import { deepMerge } from './merge.js';
import { recipeIncrementalDefaults, type Recipe } from './recipe.js';
import type { JobInput } from './schema.js';
import { isPlainObject } from './vars.js';

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
  source_state: 'source_state',
  tap_state: 'source_state',
};

/** The merged incremental block, the cursor column the job itself names, and the sync mode. */
export interface IncrementalBlock {
  /** Undefined: incremental is off. */
  merged: Record<string, unknown> | undefined;
  /** The cursor column the job itself names: it beats a table's or the asset's, which in turn beat the recipe's default. */
  jobCursorField: string | undefined;
  syncMode: SyncMode;
}

/** Merge the job's `source.incremental` block (`jobInc`) over the recipe's defaults. */
export function incrementalBlock(job: JobInput, jobInc: unknown, recipe: Recipe | undefined): IncrementalBlock {
  // Incremental is opt-in (as in the Python tool since 30 Nov): a non-empty job block turns it on.
  const jobIncOn = isPlainObject(jobInc) && Object.keys(jobInc).length > 0 && jobInc['enabled'] !== false;
  let merged: Record<string, unknown> | undefined;
  let jobCursorField: string | undefined;
  if (jobIncOn) {
    const { enabled: _enabled, cursor_field_default, lookback_days_default, ...rest } = jobInc;
    if (rest['cursor_field'] === undefined && cursor_field_default != null) rest['cursor_field'] = cursor_field_default;
    if (typeof rest['cursor_field'] === 'string' && rest['cursor_field'] !== '') jobCursorField = rest['cursor_field'];
    if (rest['lookback_days'] === undefined && lookback_days_default != null) rest['lookback_days'] = lookback_days_default;
    merged = deepMerge(recipeIncrementalDefaults(recipe), rest);
  } else if (job.sync_mode === 'incremental_append' && jobInc !== null) {
    merged = recipeIncrementalDefaults(recipe);
  }
  let syncMode: SyncMode;
  if (job.sync_mode !== undefined) syncMode = job.sync_mode;
  else syncMode = merged !== undefined && Object.keys(merged).length > 0 && merged['strategy'] !== 'full_refresh' ? 'incremental_append' : 'full_refresh';
  return { merged, jobCursorField, syncMode };
}

/**
 * The strategy `inc.strategy` names, or undefined when it names none or an
 * unknown one (a problem at `source.incremental.strategy` listing the valid
 * ones). Also run when the job fails its schema, so that this problem is
 * listed with the others.
 */
export function namedStrategy(ctx: JobContext, inc: Record<string, unknown>): IncrementalStrategy | undefined {
  const raw = inc['strategy'];
  if (typeof raw !== 'string') return undefined;
  const strategy = Object.hasOwn(STRATEGIES, raw) ? STRATEGIES[raw] : undefined;
  if (strategy === undefined) ctx.problem(['source', 'incremental', 'strategy'], `unknown strategy "${raw}" (expected one of: ${Object.keys(STRATEGIES).join(', ')})`);
  return strategy;
}

/**
 * The resolved incremental spec, or undefined when a problem (recorded)
 * prevents one. The cursor column: the job's own, else one an object
 * declaration names (a table's), else the asset's, else the recipe's
 * default. Without a strategy or a cursor column, `defaultStrategy` (the
 * connector's first) applies when it needs no cursor (`file_modified`).
 */
export function incrementalSpec(
  ctx: JobContext,
  inc: Record<string, unknown>,
  asset: Asset | undefined,
  cursors: { job: string | undefined; declared: string | undefined },
  defaultStrategy: IncrementalStrategy | undefined,
): IncrementalSpec | undefined {
  const key = ['source', 'incremental'];
  const rawStrategy = inc['strategy'];
  const recipeCursor = typeof inc['cursor_field'] === 'string' && inc['cursor_field'] !== '' ? inc['cursor_field'] : undefined;
  const cursorField = cursors.job ?? cursors.declared ?? asset?.cursorField ?? recipeCursor;
  let strategy: IncrementalStrategy | undefined;
  if (typeof rawStrategy === 'string') {
    strategy = namedStrategy(ctx, inc);
    if (strategy === undefined) return undefined;
  } else if (defaultStrategy === 'source_state') {
    // A Singer tap / Airbyte source keeps its own state; an asset's cursor column is only a column.
    strategy = 'source_state';
  } else if (cursorField !== undefined) {
    strategy = 'updated';
  } else if (defaultStrategy === 'file_modified') {
    // A file connector needs no cursor column.
    strategy = 'file_modified';
  } else {
    ctx.problem([...key, 'strategy'], 'incremental sync needs a strategy (created, updated, id, file_modified or source_state) or a cursor_field');
    return undefined;
  }
  const spec: IncrementalSpec = {
    strategy,
    lookbackDays: typeof inc['lookback_days'] === 'number' ? inc['lookback_days'] : 0,
    lagSeconds: typeof inc['lag_seconds'] === 'number' ? inc['lag_seconds'] : 60,
  };
  if (!CURSORLESS_STRATEGIES.has(strategy)) {
    if (cursorField === undefined) {
      ctx.problem([...key, 'cursor_field'], `strategy "${String(rawStrategy ?? strategy)}" needs a cursor column: set source.incremental.cursor_field, a table's cursor_field or the asset's cursor_field`);
      return undefined;
    }
    if (asset !== undefined && !asset.fields.some((f) => f.name === cursorField)) {
      ctx.problem([...key, 'cursor_field'], `cursor column "${cursorField}" is not in the asset schema (${asset.file})`);
    }
    spec.cursorField = cursorField;
  }
  return spec;
}
