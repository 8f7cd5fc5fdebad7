/**
 * zod helpers shared by the job, recipe and asset schemas: lenient scalars
 * (a `${VAR}` always expands to a string, so `port: "${PGPORT:-5432}"` must
 * still be a number) and the translation of zod issues into problems.
 */
import { z } from 'zod';
import { suggest, type KeyPath, type Problems } from './problems.js';
import type { YamlFile } from './yaml.js';

const NUMBER_RE = /^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;

/** A number, or a string holding one. */
export const numLike = z.preprocess((v) => (typeof v === 'string' && NUMBER_RE.test(v) ? Number(v) : v), z.number());
/** An integer, or a string holding one. */
export const intLike = z.preprocess((v) => (typeof v === 'string' && NUMBER_RE.test(v) ? Number(v) : v), z.number().int());
/** A boolean, or `true/false/yes/no/1/0` as a string. */
export const boolLike = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(s)) return true;
  if (['false', 'no', 'off', '0'].includes(s)) return false;
  return v;
}, z.boolean());
/** A string; numbers and booleans are accepted and stringified (YAML reads `version: 1.0` as a number). */
export const stringLike = z.preprocess((v) => (typeof v === 'number' || typeof v === 'boolean' ? String(v) : v), z.string());
/** Any mapping (open). */
export const anyRecord = z.record(z.string(), z.unknown());

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function getIn(data: unknown, path: KeyPath): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** Keys a strict object schema knows, for "did you mean" hints. */
function knownKeys(schema: z.ZodType | undefined, path: KeyPath): string[] {
  let s: unknown = schema;
  for (const seg of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, unknown>)[String(seg)];
    else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s.valueType;
    else return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : [];
}

function unwrap(s: unknown): unknown {
  for (let i = 0; i < 10; i++) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault) s = s.unwrap();
    else if (s instanceof z.ZodPipe) s = s.out;
    else break;
  }
  return s;
}

/**
 * Turn the issues of a failed `safeParse` into problems: one per unknown key
 * (with a "did you mean" hint), "required" for missing keys, and the line in
 * the YAML file when known. `basePath` prefixes every key (e.g. `asset` for a
 * legacy wrapped asset). `listKnown` appends the keys the schema knows to an
 * unknown key's message.
 */
export function addZodProblems(
  error: z.ZodError,
  problems: Problems,
  file: string,
  data: unknown,
  opts: { yaml?: YamlFile | undefined; schema?: z.ZodType; basePath?: KeyPath; listKnown?: boolean } = {},
): void {
  const base = opts.basePath ?? [];
  const at = (path: KeyPath) => {
    const line = opts.yaml?.lineOf([...base, ...path]);
    return line === undefined ? '' : ` (line ${line})`;
  };
  const add = (path: KeyPath, message: string) => problems.add(file, [...base, ...path], message + at(path));
  const visit = (issues: readonly z.core.$ZodIssue[], prefix: KeyPath) => {
    for (const issue of issues) {
      const path = [...prefix, ...(issue.path as (string | number)[])];
      if (issue.code === 'unrecognized_keys') {
        const known = knownKeys(opts.schema, path);
        for (const k of issue.keys) {
          const hint = suggest(k, known);
          const listed = opts.listKnown && known.length > 0 ? `; valid keys: ${[...known].sort().join(', ')}` : '';
          add([...path, k], `${hint === undefined ? 'unknown key' : `unknown key (did you mean "${hint}"?)`}${listed}`);
        }
      } else if (issue.code === 'invalid_union') {
        // Report the branch that got furthest (fewest issues).
        const best = [...issue.errors].sort((a, b) => a.length - b.length)[0];
        if (best === undefined) add(path, issue.message);
        else visit(best, path);
      } else if (issue.code === 'invalid_type') {
        const actual = getIn(data, path);
        if (actual === undefined) add(path, 'required');
        else add(path, `expected ${issue.expected}, got ${typeName(actual)}`);
      } else {
        add(path, issue.message);
      }
    }
  };
  visit(error.issues, []);
}
