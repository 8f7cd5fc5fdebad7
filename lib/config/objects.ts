/**
 * The objects (streams) a job reads, from its merged `source` block:
 * `tables[]`, `sheets[]`, `files[]` (grouped by `object`, local paths and
 * globs made absolute), `objects[]` or `object`, else the asset's object.
 */
import path from 'node:path';
import { glob } from 'tinyglobby';
import type { SourceObjectSpec } from '../plan.js';
import type { Asset } from '../types.js';
import type { JobContext } from './context.js';
import { hasScheme, resolveJobPath } from './paths.js';
import type { KeyPath } from './problems.js';
import { isPlainObject } from './vars.js';

/** The job's objects; a name read twice is a problem (recorded). */
export async function sourceObjects(ctx: JobContext, options: Record<string, unknown>, asset: Asset | undefined): Promise<SourceObjectSpec[]> {
  const out: SourceObjectSpec[] = [];
  const seen = new Map<string, string>();
  const add = (name: string, config: Record<string, unknown>, key: KeyPath) => {
    const prev = seen.get(name);
    if (prev !== undefined) ctx.problem(key, `object "${name}" is already read by ${prev}`);
    else seen.set(name, key.map((s) => (typeof s === 'number' ? `[${s}]` : s)).join('.').replace(/\.\[/g, '['));
    out.push({ name, config });
  };
  const entries = (k: string) => (Array.isArray(options[k]) ? (options[k] as unknown[]) : []);
  for (const k of ['tables', 'sheets'] as const) {
    entries(k).forEach((e, i) => {
      if (!isPlainObject(e)) return;
      const name = e['object'] ?? e['name'] ?? e['spreadsheet_id'] ?? e['id'];
      if (typeof name !== 'string' || name === '') {
        ctx.problem(['source', k, i], 'needs an object or name');
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
        if (typeof v === 'string' && v !== '' && !hasScheme(v)) e[pk] = await resolveLocalGlob(ctx, v);
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
async function resolveLocalGlob(ctx: JobContext, p: string): Promise<string> {
  if (path.isAbsolute(p)) return p;
  if (!/[*?{}[\]]/.test(p)) return resolveJobPath(p, ctx.jobDir, ctx.cwd).path;
  const inJob = path.resolve(ctx.jobDir, p);
  if ((await glob(p, { cwd: ctx.jobDir })).length > 0) return inJob;
  if ((await glob(p, { cwd: ctx.cwd })).length > 0) return path.resolve(ctx.cwd, p);
  return inJob;
}
