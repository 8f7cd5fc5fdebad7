/**
 * Value constraints declared in the asset (`enum`, `pattern`, `minimum`, ...),
 * checked on the coerced (canonical) row. Compiled once per asset.
 *
 * Split by what can check them exactly:
 * - ajv (compiled JSON Schema) for columns whose canonical value is a plain
 *   JSON value: string, json (its text), int, float, double, boolean;
 * - our own comparator for long (bigint), decimal (digit text), date and
 *   timestamp, where a JSON Schema `minimum` would either not apply (ajv skips
 *   bigints) or compare through a float. Their bounds are written as the
 *   column's own values (`minimum: "2020-01-01"` on a timestamp, `"0.00"` on a
 *   decimal) and go through the same coercer as the data.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { DativoError, type ConfigProblem } from '../errors.js';
import type { AssetField, FieldKind, Row } from '../types.js';
import { compareCanonical } from './compare.js';
import { Bad, fieldCoercer, type FieldErrorCode } from './fields.js';

/** Constraint keywords understood in an asset field entry (or its ODCS `logicalTypeOptions`). */
export const CONSTRAINT_KEYWORDS = [
  'enum',
  'const',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
] as const;

type Keyword = (typeof CONSTRAINT_KEYWORDS)[number];

const AJV_KEYWORDS: Partial<Record<FieldKind, readonly Keyword[]>> = {
  string: ['enum', 'const', 'pattern', 'minLength', 'maxLength'],
  json: ['enum', 'const', 'pattern', 'minLength', 'maxLength'],
  int: ['enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  float: ['enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  double: ['enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  boolean: ['enum', 'const'],
};

const EXACT_KEYWORDS: Partial<Record<FieldKind, readonly Keyword[]>> = {
  long: ['enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  decimal: ['enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  date: ['enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  timestamp: ['enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
};

/** A constraint failure, in the shape of the coercer's field errors. */
export interface ConstraintError {
  field: string;
  code: Extract<FieldErrorCode, 'constraint'>;
  message: string;
}

/** Checks a canonical row; undefined when every constraint holds. */
export type ConstraintCheck = (row: Row) => ConstraintError[] | undefined;

/**
 * The declared constraints of each field entry of `rawSchema` (by name):
 * keywords from `logicalTypeOptions` first, then the entry's own keys. ODCS's
 * boolean `exclusiveMinimum: true` (meaning "`minimum` is exclusive") is
 * turned into the JSON Schema form.
 */
export function readConstraints(rawSchema: unknown): Map<string, { index: number; decl: Partial<Record<Keyword, unknown>> }> {
  const out = new Map<string, { index: number; decl: Partial<Record<Keyword, unknown>> }>();
  if (!Array.isArray(rawSchema)) return out;
  rawSchema.forEach((entry: unknown, index) => {
    if (entry === null || typeof entry !== 'object') return;
    const e = entry as Record<string, unknown>;
    if (typeof e.name !== 'string') return;
    const decl: Partial<Record<Keyword, unknown>> = {};
    const sources = [e.logicalTypeOptions, e];
    for (const src of sources) {
      if (src === null || typeof src !== 'object') continue;
      for (const k of CONSTRAINT_KEYWORDS) {
        const v = (src as Record<string, unknown>)[k];
        if (v !== undefined) decl[k] = v;
      }
    }
    for (const [ex, base] of [
      ['exclusiveMinimum', 'minimum'],
      ['exclusiveMaximum', 'maximum'],
    ] as const) {
      if (typeof decl[ex] === 'boolean') {
        if (decl[ex] === true && decl[base] !== undefined) {
          decl[ex] = decl[base];
          delete decl[base];
        } else delete decl[ex];
      }
    }
    if (Object.keys(decl).length > 0) out.set(e.name, { index, decl });
  });
  return out;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function ajvMessage(e: ErrorObject): string {
  const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues;
  if (e.keyword === 'enum' && allowed !== undefined) {
    return `must be one of ${allowed.filter((v) => v !== null).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `${e.message ?? 'is invalid'} (${e.keyword})`;
}

/**
 * Compile the constraint check of an asset, or undefined when it declares no
 * constraints (so the hot path pays nothing). Null values are never checked
 * here: nullability is the `required` flag's business.
 *
 * @throws DativoError CONFIG_INVALID when a keyword does not apply to the
 *   column type, a bound is not a value of the column, or a pattern does not compile.
 */
export function compileConstraints(fields: AssetField[], rawSchema: unknown, file = ''): ConstraintCheck | undefined {
  const declared = readConstraints(rawSchema);
  if (declared.size === 0) return undefined;
  const problems: ConfigProblem[] = [];
  const ajvProps: Record<string, Record<string, unknown>> = {};
  const exact: ((row: Row, errors: ConstraintError[]) => void)[] = [];

  for (const field of fields) {
    const d = declared.get(field.name);
    if (d === undefined) continue;
    const kind = field.type.kind;
    const ajvOk = AJV_KEYWORDS[kind] ?? [];
    const exactOk = EXACT_KEYWORDS[kind] ?? [];
    const keyOf = (k: string): string => `schema[${d.index}].${k}`;
    const misplaced = (Object.keys(d.decl) as Keyword[]).filter((k) => !ajvOk.includes(k) && !exactOk.includes(k));
    for (const k of misplaced) problems.push({ file, key: keyOf(k), message: `${k} does not apply to a ${field.typeName} column` });
    if (misplaced.length > 0) continue;

    if (ajvOk.length > 0) {
      const schema: Record<string, unknown> = { ...d.decl };
      // null passes: nullability is checked by `required`, not here.
      if (schema.const !== undefined) {
        schema.enum = [schema.const];
        delete schema.const;
      }
      if (Array.isArray(schema.enum)) schema.enum = [...schema.enum, null];
      ajvProps[field.name] = schema;
      continue;
    }

    const coerce = fieldCoercer(field.type);
    const canon = (k: Keyword, v: unknown): unknown => {
      const c = v === null || v === '' ? new Bad('type', 'empty') : coerce(v);
      if (c instanceof Bad) {
        problems.push({ file, key: keyOf(k), message: `${JSON.stringify(v)} is not a ${field.typeName} value: ${c.message}` });
        return undefined;
      }
      return c;
    };
    const name = field.name;
    const enumRaw = d.decl.const !== undefined ? [d.decl.const] : d.decl.enum;
    if (enumRaw !== undefined) {
      if (!Array.isArray(enumRaw)) problems.push({ file, key: keyOf('enum'), message: 'enum must be a list' });
      else {
        const allowed = enumRaw.map((v) => canon('enum', v));
        const shown = enumRaw.map((v) => JSON.stringify(v)).join(', ');
        exact.push((row, errors) => {
          const v = row[name];
          if (v === null || v === undefined) return;
          if (!allowed.some((a) => a !== undefined && compareCanonical(kind, v, a) === 0)) {
            errors.push({ field: name, code: 'constraint', message: `must be one of ${shown} (enum)` });
          }
        });
      }
    }
    const bounds: [Keyword, (c: number) => boolean, string][] = [
      ['minimum', (c) => c >= 0, '>='],
      ['maximum', (c) => c <= 0, '<='],
      ['exclusiveMinimum', (c) => c > 0, '>'],
      ['exclusiveMaximum', (c) => c < 0, '<'],
    ];
    for (const [k, holds, op] of bounds) {
      const raw = d.decl[k];
      if (raw === undefined) continue;
      const bound = canon(k, raw);
      if (bound === undefined) continue;
      exact.push((row, errors) => {
        const v = row[name];
        if (v === null || v === undefined) return;
        if (!holds(compareCanonical(kind, v, bound))) {
          errors.push({ field: name, code: 'constraint', message: `must be ${op} ${String(raw)} (${k})` });
        }
      });
    }
  }

  let ajvCheck: ValidateFunction | undefined;
  if (problems.length === 0 && Object.keys(ajvProps).length > 0) {
    try {
      const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
      ajvCheck = ajv.compile({ type: 'object', properties: ajvProps });
    } catch (err) {
      problems.push({ file, key: 'schema', message: `invalid constraint: ${(err as Error).message}` });
    }
  }
  if (problems.length > 0) {
    throw new DativoError('CONFIG_INVALID', `asset constraints are invalid: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, {
      context: { file },
      problems,
    });
  }

  return (row) => {
    let errors: ConstraintError[] | undefined;
    if (ajvCheck !== undefined && !ajvCheck(row)) {
      errors = (ajvCheck.errors ?? []).map((e) => ({
        field: unescapePointer(e.instancePath.slice(1)),
        code: 'constraint' as const,
        message: ajvMessage(e),
      }));
    }
    if (exact.length > 0) {
      const found: ConstraintError[] = [];
      for (const check of exact) check(row, found);
      if (found.length > 0) errors = errors === undefined ? found : errors.concat(found);
    }
    return errors;
  };
}
