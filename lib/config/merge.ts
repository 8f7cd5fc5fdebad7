/**
 * Deep merge of recipe defaults and job values.
 */
import { isPlainObject } from './vars.js';

/**
 * Merge `override` over `base`, recursively for plain objects. Arrays and
 * scalars in `override` replace the base value; an explicit `null` replaces it
 * too (so a job can switch a recipe default off); `undefined` keeps the base.
 * Neither input is modified.
 *
 * Unlike the Python tool, which merged one level deep and so dropped e.g. the
 * recipe's `connection.s3.endpoint` when the job gave `connection.s3.bucket`,
 * nested keys on both sides survive.
 */
export function deepMerge<T = unknown>(base: unknown, override: unknown): T {
  if (override === undefined) return clone(base) as T;
  if (isPlainObject(base) && isPlainObject(override)) {
    const out: Record<string, unknown> = clone(base) as Record<string, unknown>;
    for (const [k, v] of Object.entries(override)) {
      out[k] = deepMerge(base[k], v);
    }
    return out as T;
  }
  return clone(override) as T;
}

function clone(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clone);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) out[k] = clone(item);
    return out;
  }
  return v;
}
