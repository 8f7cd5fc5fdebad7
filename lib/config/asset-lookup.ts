/**
 * A job's asset: where its definition file is (`asset_path`, or `asset:
 * <name>` looked up next to the job and under `schemas/`), and the job's
 * governance overrides applied to it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { glob } from 'tinyglobby';
import type { Asset } from '../types.js';
import type { JobContext } from './context.js';
import { readAsset } from './asset.js';
import { deepMerge } from './merge.js';
import { Problems } from './problems.js';
import { resolveJobPath } from './paths.js';
import type { JobInput } from './schema.js';

/** The asset file of the job, or undefined (with the problem recorded, unless `report` is false). */
export async function resolveAssetPath(ctx: JobContext, job: Partial<JobInput>, sourceType: string | undefined, report = true): Promise<string | undefined> {
  const problem = (key: string | string[], message: string): void => {
    if (report) ctx.problem(key, message);
  };
  if (typeof job.asset_path === 'string') {
    const r = resolveJobPath(job.asset_path, ctx.jobDir, ctx.cwd);
    if (!r.exists) {
      problem(['asset_path'], `asset file not found: ${job.asset_path} (looked for ${r.tried.join(' and ')})`);
      return undefined;
    }
    return r.path;
  }
  const name = job.asset;
  if (typeof name !== 'string') {
    problem('asset_path', 'required (the path of the asset definition)');
    return undefined;
  }
  if (/\.ya?ml$/i.test(name)) {
    const r = resolveJobPath(name, ctx.jobDir, ctx.cwd);
    if (r.exists) return r.path;
  }
  // `asset: <name>` without a path: a single `<name>.yaml` next to the job or under <cwd>/schemas/.
  const base = name.replace(/\.ya?ml$/i, '');
  const candidates = new Set<string>();
  for (const ext of ['yaml', 'yml']) {
    const p = path.join(ctx.jobDir, `${base}.${ext}`);
    if (existsSync(p)) candidates.add(p);
  }
  if (candidates.size === 0 && !/[*?{}[\]]/.test(base)) {
    const under = sourceType !== undefined && existsSync(path.join(ctx.cwd, 'schemas', sourceType)) ? `schemas/${sourceType}` : 'schemas';
    for (const p of await glob([`${under}/**/${base}.yaml`, `${under}/**/${base}.yml`], { cwd: ctx.cwd, absolute: true })) candidates.add(p);
  }
  if (candidates.size === 1) return [...candidates][0];
  if (candidates.size === 0) problem(['asset'], `no asset_path given and no ${base}.yaml found next to the job or under ${path.join(ctx.cwd, 'schemas')}`);
  else problem(['asset'], `no asset_path given and "${base}" is ambiguous: ${[...candidates].sort().join(', ')}`);
  return undefined;
}

/**
 * The asset for `dativo discover`, which needs only the source: the job's
 * asset when its file exists and loads (its domain, data product and team
 * carry over into what discover writes), else a placeholder with no columns
 * whose `file` is where the asset would be (`asset_path` against the job
 * folder, or `<asset>.yaml` next to the job; `''` when the job names none).
 * Never records a problem. `placeholder` tells which.
 */
export async function assetForDiscover(ctx: JobContext, job: Partial<JobInput>, sourceType: string | undefined): Promise<{ asset: Asset; placeholder: boolean }> {
  const found = await resolveAssetPath(ctx, job, sourceType, false);
  if (found !== undefined) {
    const asset = await readAsset(found, new Problems());
    if (asset !== undefined) return { asset, placeholder: false };
  }
  const file =
    found ??
    (typeof job.asset_path === 'string'
      ? resolveJobPath(job.asset_path, ctx.jobDir, ctx.cwd).path
      : typeof job.asset === 'string'
        ? path.join(ctx.jobDir, `${job.asset.replace(/\.ya?ml$/i, '')}.yaml`)
        : '');
  const stem = file === '' ? ctx.name : path.basename(file).replace(/\.ya?ml$/i, '');
  const name = stem.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'asset';
  return { asset: { name, version: '0', fields: [], primaryKey: [], file, raw: {} }, placeholder: true };
}

/**
 * Apply the job's governance overrides to the asset: `classification_overrides`
 * (column → classification; `default` → table level, kept in
 * `raw.compliance.classification`), `finops` (merged over the asset's),
 * `governance_overrides.owner` → `raw.team.owner`, `.retention_days` →
 * `raw.compliance.retention_days`.
 */
export function applyOverrides(asset: Asset, job: JobInput): Asset {
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
