/**
 * The objects (streams) a job reads: those its connector declares from its
 * own options (`tables`, `files`, ... through `Connector.objects`), then the
 * generic `objects[]` and `object` keys, else the asset's object. The engine
 * knows no connector's shape; a name read twice is a problem.
 */
import type { Connector, DeclaredObject } from '../connector.js';
import type { SourceObjectSpec } from '../plan.js';
import type { Asset } from '../types.js';
import type { JobContext } from './context.js';
import type { KeyPath } from './problems.js';
import { isPlainObject } from './vars.js';

/** The job's objects, and the first cursor column a declaration names. */
export interface SourceObjects {
  objects: SourceObjectSpec[];
  cursorField?: string;
}

/** The job's objects; problems are recorded in `ctx`. */
export async function sourceObjects(
  ctx: JobContext,
  options: Record<string, unknown>,
  asset: Asset | undefined,
  connector: Connector | undefined,
): Promise<SourceObjects> {
  const out: SourceObjectSpec[] = [];
  const seen = new Map<string, string>();
  const add = (name: string, config: Record<string, unknown>, key: KeyPath) => {
    const prev = seen.get(name);
    if (prev !== undefined) ctx.problem(key, `object "${name}" is already read by ${prev}`);
    else seen.set(name, key.map((s) => (typeof s === 'number' ? `[${s}]` : s)).join('.').replace(/\.\[/g, '['));
    out.push({ name, config });
  };
  const declared: DeclaredObject[] = connector?.objects
    ? await connector.objects(options, asset, { file: ctx.file, jobDir: ctx.jobDir, cwd: ctx.cwd, problem: (key, message) => ctx.problem(key, message) })
    : [];
  for (const d of declared) add(d.name, d.config, d.key);
  const entries = Array.isArray(options['objects']) ? (options['objects'] as unknown[]) : [];
  entries.forEach((e, i) => {
    if (isPlainObject(e) && typeof e['name'] === 'string') add(e['name'], e, ['source', 'objects', i]);
  });
  const single = options['object'];
  if (typeof single === 'string' && single !== '') add(single, { name: single }, ['source', 'object']);
  if (out.length === 0) {
    // One asset per job: the asset's object is the default object.
    const name = asset?.object ?? asset?.name;
    if (name !== undefined) out.push({ name, config: {} });
  }
  const cursorField = declared.map((d) => d.cursorField).find((c) => c !== undefined);
  return { objects: out, ...(cursorField !== undefined ? { cursorField } : {}) };
}
