/**
 * What a job's `source` block says to the CSV connector: the schema of its
 * options (checked by `loadJob` with every other config problem) and the
 * objects its `files` declare.
 */
import path from 'node:path';
import { glob } from 'tinyglobby';
import { z } from 'zod';
import { hasScheme, resolveJobPath } from '../../lib/config/paths.js';
import { stringLike } from '../../lib/config/zod-util.js';
import type { DeclaredObject, ObjectsContext } from '../../lib/connector.js';
import type { Asset } from '../../lib/types.js';
import { refineCsvOptions } from './options.js';

/** One `source.files` entry: a path or glob, or `{path|file, object?, id?}`. */
const FileEntrySchema = z.preprocess(
  (v) => (typeof v === 'string' ? { path: v } : v),
  z.strictObject({ path: z.string().min(1).optional(), file: z.string().min(1).optional(), object: stringLike.optional(), id: stringLike.optional() }),
);

/**
 * The CSV connector's keys of the `source` block: `files`, `settle_seconds`,
 * and the parser options under `engine.options.native` (see options.ts).
 */
export const csvSourceOptions = z
  .looseObject({
    files: z.array(FileEntrySchema).optional(),
    settle_seconds: z.unknown().optional(),
  })
  .superRefine(refineCsvOptions);

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A relative file path or glob: job folder if it matches there, else cwd if it matches there, else the job folder. */
async function resolveLocalGlob(ctx: ObjectsContext, p: string): Promise<string> {
  if (path.isAbsolute(p)) return p;
  if (!/[*?{}[\]]/.test(p)) return resolveJobPath(p, ctx.jobDir, ctx.cwd).path;
  const inJob = path.resolve(ctx.jobDir, p);
  if ((await glob(p, { cwd: ctx.jobDir })).length > 0) return inJob;
  if ((await glob(p, { cwd: ctx.cwd })).length > 0) return path.resolve(ctx.cwd, p);
  return inJob;
}

/**
 * The objects of `source.files`: entries grouped by their `object` (default
 * the asset's object), each local path or glob made absolute in place (job
 * folder first, then the working directory). A plain string entry becomes
 * `{path}`.
 */
export async function csvObjects(options: Record<string, unknown>, asset: Asset | undefined, ctx: ObjectsContext): Promise<DeclaredObject[]> {
  const files = Array.isArray(options['files']) ? (options['files'] as unknown[]) : [];
  const groups = new Map<string, { entries: Record<string, unknown>[]; index: number }>();
  const defaultObject = asset?.object ?? asset?.name ?? 'default';
  for (let i = 0; i < files.length; i++) {
    const raw = files[i];
    const e = typeof raw === 'string' ? { path: raw } : raw;
    if (!isRecord(e)) continue;
    files[i] = e;
    for (const pk of ['path', 'file'] as const) {
      const v = e[pk];
      if (typeof v === 'string' && v !== '' && !hasScheme(v)) e[pk] = await resolveLocalGlob(ctx, v);
    }
    const named = typeof e['object'] === 'number' ? String(e['object']) : e['object'];
    const obj = typeof named === 'string' && named !== '' ? named : defaultObject;
    const g = groups.get(obj) ?? { entries: [], index: i };
    g.entries.push(e);
    groups.set(obj, g);
  }
  return [...groups].map(([name, g]) => ({ name, config: { files: g.entries }, key: ['source', 'files', g.index] }));
}
