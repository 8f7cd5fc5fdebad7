/**
 * A job's `source` block checked against its connector's options schema
 * (`Connector.options`), with every other config problem: an
 * unknown key names the valid ones, every other issue its key and YAML line.
 * And the same schema parsed again where a connector reads its settings
 * ({@link parseSourceOptions}).
 */
import type { z } from 'zod';
import { COMMON_SOURCE_KEYS, type Connector } from '../connector.js';
import { DativoError, type ConfigProblem } from '../errors.js';
import type { JobPlan } from '../plan.js';
import type { JobContext } from './context.js';
import { suggest } from './problems.js';
import { addZodProblems } from './zod-util.js';

/** True when the options pass (or the connector declares no schema); problems are recorded in `ctx`. */
export function checkSourceOptions(ctx: JobContext, connector: Connector, options: Record<string, unknown>): boolean {
  const schema = connector.options;
  if (schema === undefined) return true;
  const valid = [...new Set([...COMMON_SOURCE_KEYS, ...Object.keys(schema.shape)])].sort();
  let ok = true;
  for (const key of Object.keys(options)) {
    if (valid.includes(key)) continue;
    ok = false;
    const hint = suggest(key, valid);
    ctx.problem(['source', key], `unknown option of connector "${connector.descriptor.name}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; valid options: ${valid.join(', ')}`);
  }
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    ok = false;
    addZodProblems(parsed.error, ctx.problems, ctx.file, options, { yaml: ctx.yaml, schema, basePath: ['source'], listKnown: true });
  }
  return ok;
}

/** zod issues of a `source` block as problems of `file`, keyed `source.<path>` (messages name keys, never values). */
export function sourceProblems(err: z.ZodError, file: string): ConfigProblem[] {
  return err.issues.map((i) => ({ file, key: ['source', ...i.path.map(String)].join('.'), message: i.message }));
}

/** The CONFIG_INVALID of a connector's bad options: `invalid <label> options: <key>: <message>; …`, every problem listed. */
export function sourceOptionsError(problems: ConfigProblem[], file: string, connector: string, label: string = connector): DativoError {
  return new DativoError('CONFIG_INVALID', `invalid ${label} options: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, {
    problems,
    context: { connector, file },
  });
}

/**
 * A connector's options (`plan.source.options`) parsed with its schema, for
 * its settings at read time (`loadJob` already reported the problems of a
 * plan it loaded; a plan built by hand meets them here). `label` names the
 * connector in the message (default `connector`, e.g. `Google Sheets`).
 * @throws DativoError CONFIG_INVALID listing every bad key (never a value).
 */
export function parseSourceOptions<S extends z.ZodType>(plan: JobPlan, schema: S, connector: string, label: string = connector): z.infer<S> {
  const parsed = schema.safeParse(plan.source.options);
  if (!parsed.success) throw sourceOptionsError(sourceProblems(parsed.error, plan.file), plan.file, connector, label);
  return parsed.data;
}
