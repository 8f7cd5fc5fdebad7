/**
 * A tap stream's JSON Schema (Singer `SCHEMA` / catalog `schema`, Airbyte
 * `json_schema`) against our asset types: the columns `dativo discover`
 * writes, and the contradictions that stop a run before it writes a row.
 * Plain functions, shared by both protocols.
 */
import type { DiscoveredColumn } from '../../lib/connector.js';
import type { Asset, FieldKind } from '../../lib/types.js';

/** The part of a JSON Schema this module reads. */
export interface JsonSchemaLike {
  type?: string | string[];
  format?: string;
  properties?: Record<string, JsonSchemaLike>;
  required?: string[];
  anyOf?: JsonSchemaLike[];
  oneOf?: JsonSchemaLike[];
  /** Airbyte's refinement of `type` (`integer`, `timestamp_with_timezone`, …). */
  airbyte_type?: string;
}

const isSchema = (v: unknown): v is JsonSchemaLike => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The JSON types a schema allows (without `null`), its format, and whether null is allowed. */
export function jsonTypesOf(s: JsonSchemaLike): { types: Set<string>; nullable: boolean; format: string | undefined } {
  const types = new Set<string>();
  let nullable = false;
  let format = typeof s.format === 'string' ? s.format : undefined;
  const add = (t: unknown): void => {
    if (t === 'null') nullable = true;
    else if (typeof t === 'string') types.add(t);
  };
  if (Array.isArray(s.type)) s.type.forEach(add);
  else add(s.type);
  if (s.airbyte_type === 'integer') {
    types.delete('number');
    types.add('integer');
  }
  for (const member of [...(s.anyOf ?? []), ...(s.oneOf ?? [])]) {
    if (!isSchema(member)) continue;
    const inner = jsonTypesOf(member);
    inner.types.forEach((t) => types.add(t));
    nullable ||= inner.nullable;
    format ??= inner.format;
  }
  return { types, nullable, format };
}

/**
 * The asset type of one property: `integer` → long, `number` → double,
 * `string` with format `date-time` → timestamp, `date` → date, `boolean`,
 * `object`/`array` → json, other strings → string; a property of several
 * types (or none) → json.
 */
export function assetTypeOf(s: JsonSchemaLike): string {
  const { types, format } = jsonTypesOf(s);
  if (types.size === 1) {
    const [t] = types;
    if (t === 'integer') return 'long';
    if (t === 'number') return 'double';
    if (t === 'boolean') return 'boolean';
    if (t === 'object' || t === 'array') return 'json';
    if (t === 'string') {
      if (format === 'date-time' || s.airbyte_type === 'timestamp_with_timezone' || s.airbyte_type === 'timestamp_without_timezone') return 'timestamp';
      if (format === 'date' || s.airbyte_type === 'date') return 'date';
      return 'string';
    }
  }
  if (types.size === 2 && types.has('integer') && types.has('number')) return 'double';
  return 'json';
}

/** How a property's type reads in a column description: `["null","string"] (date-time)`. */
function sourceTypeOf(s: JsonSchemaLike): string {
  const { types, nullable, format } = jsonTypesOf(s);
  const list = [...(nullable ? ['null'] : []), ...types];
  return `${list.length === 1 ? list[0] : JSON.stringify(list)}${format ? ` (${format})` : ''}${s.airbyte_type ? ` airbyte_type ${s.airbyte_type}` : ''}`;
}

/**
 * The columns of a stream: one per top-level property, required when it is
 * a key property, or listed in `required` and not nullable.
 */
export function discoveredColumns(schema: unknown, keyProperties: readonly string[], protocol: string): DiscoveredColumn[] {
  if (!isSchema(schema) || !isSchema(schema.properties)) return [];
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  return Object.entries(schema.properties).map(([name, prop]) => {
    const p = isSchema(prop) ? prop : {};
    const st = sourceTypeOf(p);
    return {
      name,
      type: assetTypeOf(p),
      required: keyProperties.includes(name) || (required.has(name) && !jsonTypesOf(p).nullable),
      sourceType: st,
      description: `${protocol} schema type: ${st}.`,
    };
  });
}

/** JSON types a value of each asset kind may arrive as (validate coerces between them). */
const ACCEPTS: Record<FieldKind, readonly string[]> = {
  string: ['string', 'integer', 'number', 'boolean'],
  long: ['integer', 'number', 'string'],
  int: ['integer', 'number', 'string'],
  float: ['number', 'integer', 'string'],
  double: ['number', 'integer', 'string'],
  decimal: ['number', 'integer', 'string'],
  boolean: ['boolean', 'string'],
  date: ['string', 'integer', 'number'],
  timestamp: ['string', 'integer', 'number'],
  json: ['object', 'array', 'string', 'integer', 'number', 'boolean'],
  binary: ['string'],
};

/**
 * What contradicts the asset in a stream's schema: a required asset column
 * the schema has no property for, or a column whose JSON types cannot be
 * coerced to its asset type (a boolean for a timestamp). A schema without
 * `properties`, or a property without types, says nothing. System columns
 * (`_dativo_*`) are ours, not the tap's.
 */
export function schemaProblems(schema: unknown, asset: Asset): string[] {
  if (!isSchema(schema) || !isSchema(schema.properties)) return [];
  const props = schema.properties;
  const problems: string[] = [];
  for (const f of asset.fields) {
    if (f.name.startsWith('_dativo_')) continue;
    const p = Object.hasOwn(props, f.name) ? props[f.name] : undefined;
    if (p === undefined || !isSchema(p)) {
      if (f.required) problems.push(`column "${f.name}" is required by the asset but the stream's schema has no property "${f.name}"`);
      continue;
    }
    const { types } = jsonTypesOf(p);
    if (types.size === 0) continue;
    const ok = ACCEPTS[f.type.kind];
    if (![...types].some((t) => ok.includes(t))) {
      problems.push(`column "${f.name}" is ${f.typeName} in the asset but ${sourceTypeOf(p)} in the stream's schema`);
    }
  }
  return problems;
}
