/**
 * A job's `source` block checked against its connector's options schema
 * (`Connector.options`), with every other config problem: an
 * unknown key names the valid ones, every other issue its key and YAML line.
 */
import { COMMON_SOURCE_KEYS, type Connector } from '../connector.js';
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
