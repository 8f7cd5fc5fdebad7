/**
 * The record coercer: raw source values → canonical values (the table in
 * lib/types.ts). Compiled once per asset into an array of per-field closures;
 * coercing a record allocates only the output row and its result wrapper.
 */
import type { Asset, AssetField, Row } from '../types.js';
import { compileConstraints } from './constraints.js';
import { Bad, fieldCoercer, type FieldErrorCode } from './fields.js';

export { Bad, fieldCoercer, type FieldCoercer, type FieldErrorCode } from './fields.js';

/** One refused value of a record. */
export interface FieldError {
  field: string;
  code: FieldErrorCode;
  message: string;
}

/** What a compiled coercer returns for one record. */
export type CoerceResult = { ok: true; row: Row } | { ok: false; errors: FieldError[] };

/** A compiled coercer. */
export type Coercer = (raw: Row) => CoerceResult;

export interface CoercerOptions {
  /**
   * Called once per column name found in records but not declared by the
   * asset (such columns are never written). Default: no check at all, which
   * also skips the per-record key scan.
   */
  onUnknownField?: (name: string) => void;
  /**
   * The asset's `schema` list as written in YAML (`Asset.raw.schema`): field
   * entries may declare constraints (`enum`, `pattern`, `minLength`,
   * `maxLength`, `minimum`, `maximum`, `exclusiveMinimum`,
   * `exclusiveMaximum`, `multipleOf`), directly or under ODCS
   * `logicalTypeOptions`. Default: none.
   */
  rawSchema?: unknown;
  /** Asset file, for the error raised when a constraint itself is invalid. */
  file?: string;
}

/**
 * Compile the coercer of an asset's fields, once per asset.
 *
 * Per record it:
 * - writes exactly the asset's columns, in asset order; raw columns the asset
 *   does not declare are dropped (reported once each via `onUnknownField`);
 * - maps null and undefined to `null`, and the empty string to `null` for
 *   every type except `string` (CSV has no other way to say NULL; a `string`
 *   column keeps `''`); a required column that ends up null is a `required`
 *   error;
 * - converts each value to its canonical form (lib/types.ts), refusing rather
 *   than truncating or rounding: see {@link FieldErrorCode};
 * - then checks the constraints declared in the asset (`opts.rawSchema`), if any.
 *
 * All refused values of a record are reported together.
 */
export function compileCoercer(fields: AssetField[], opts: CoercerOptions = {}): Coercer {
  const n = fields.length;
  const names = fields.map((f) => f.name);
  const coercers = fields.map((f) => fieldCoercer(f.type));
  const required = fields.map((f) => f.required);
  const emptyIsValue = fields.map((f) => f.type.kind === 'string');
  const known = new Set(names);
  const reported = new Set<string>();
  const onUnknown = opts.onUnknownField;
  const constraints = compileConstraints(fields, opts.rawSchema, opts.file);

  function reportUnknown(raw: Row): void {
    for (const k in raw) {
      if (!known.has(k) && !reported.has(k)) {
        reported.add(k);
        onUnknown!(k);
      }
    }
  }

  return function coerce(raw: Row): CoerceResult {
    const out: Row = {};
    let errors: FieldError[] | undefined;
    let present = 0;
    for (let i = 0; i < n; i++) {
      const name = names[i]!;
      const v = raw[name];
      if (v !== undefined) present++;
      if (v === null || v === undefined || (v === '' && !emptyIsValue[i])) {
        if (required[i]) (errors ??= []).push({ field: name, code: 'required', message: `${name} is required` });
        out[name] = null;
        continue;
      }
      const c = coercers[i]!(v);
      if (c instanceof Bad) {
        (errors ??= []).push({ field: name, code: c.code, message: c.message });
        out[name] = null;
      } else out[name] = c;
    }
    if (onUnknown !== undefined) {
      // Counting keys costs no allocation; the name-by-name scan runs only
      // when the record has more defined keys than the asset columns it filled.
      let keys = 0;
      for (const _ in raw) keys++;
      if (keys > present) reportUnknown(raw);
    }
    if (errors !== undefined) return { ok: false, errors };
    if (constraints !== undefined) {
      const bad = constraints(out);
      if (bad !== undefined) return { ok: false, errors: bad };
    }
    return { ok: true, row: out };
  };
}

/**
 * {@link compileCoercer} for a whole asset: its fields, and the constraints
 * declared in its YAML `schema` list (`asset.raw.schema`).
 */
export function compileAssetCoercer(asset: Asset, opts: Pick<CoercerOptions, 'onUnknownField'> = {}): Coercer {
  return compileCoercer(asset.fields, { ...opts, rawSchema: asset.raw.schema, file: asset.file });
}
