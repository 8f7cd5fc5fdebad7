/**
 * `${VAR}` / `${VAR:-default}` expansion in config values.
 */
import { DativoError } from '../errors.js';
import type { KeyPath } from './problems.js';

/** Looks a variable up; undefined means "not set". */
export type VarLookup = (name: string) => string | undefined;

// `$${...}` is the escape; names may hold dots and dashes because secret file stems do.
const VAR_RE = /(\$?)\$\{([A-Za-z_][A-Za-z0-9_.-]*)(?::-([^}]*))?\}/g;

/**
 * Expand `${NAME}` and `${NAME:-default}` in `value`.
 *
 * - `${NAME:-default}` uses `default` when NAME is unset **or empty** (as in sh).
 * - `$${NAME}` is an escape and yields the literal text `${NAME}`.
 * - A `${NAME}` without default whose NAME is unset is reported to `onMissing`
 *   and replaced by the empty string; without `onMissing` it throws
 *   `CONFIG_MISSING_VAR`.
 * Defaults are taken literally (no nested expansion).
 */
export function expandVars(value: string, lookup: VarLookup, onMissing?: (name: string) => void): string {
  if (!value.includes('${')) return value;
  return value.replace(VAR_RE, (whole, escape: string, name: string, def: string | undefined) => {
    if (escape === '$') return whole.slice(1);
    const v = lookup(name);
    if (def !== undefined) return v === undefined || v === '' ? def : v;
    if (v !== undefined) return v;
    if (onMissing === undefined) {
      throw new DativoError('CONFIG_MISSING_VAR', `variable \${${name}} is not set`, { context: { variable: name } });
    }
    onMissing(name);
    return '';
  });
}

/** A variable that was not set, and where it was used. */
export interface MissingVar {
  path: (string | number)[];
  name: string;
}

/**
 * Expand variables in every string of a parsed YAML tree (keys are left
 * alone). Returns a new tree; missing variables are collected with their key
 * path, in document order.
 */
export function expandTree(value: unknown, lookup: VarLookup, basePath: KeyPath = []): { value: unknown; missing: MissingVar[] } {
  const missing: MissingVar[] = [];
  const walk = (v: unknown, path: (string | number)[]): unknown => {
    if (typeof v === 'string') return expandVars(v, lookup, (name) => missing.push({ path, name }));
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, [...path, k]);
      return out;
    }
    return v;
  };
  return { value: walk(value, [...basePath]), missing };
}

/** True for `{...}` objects (not arrays, dates, null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}
