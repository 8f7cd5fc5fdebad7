/**
 * Asset columns → Iceberg schema, and schema evolution against an existing
 * table. Field ids follow the reference implementations: a new table gets
 * fresh ids 1..n in column order; an existing table keeps its ids (columns are
 * matched by name) and new columns get ids above `last-column-id`.
 */
import { DativoError } from '../errors.js';
import { INGESTED_AT_COLUMN, RUN_ID_COLUMN, type AssetField, type FieldType } from '../types.js';
import type { TableMetadata } from './catalog.js';
import { stringifyJson } from './json.js';

/** An Iceberg type: a primitive type string, or a nested type object (list/map/struct, from other engines). */
export type IcebergType = string | ({ type: string } & Record<string, unknown>);

/** One field of an Iceberg struct/schema. Unknown keys (e.g. v3 defaults) are preserved. */
export interface IcebergField {
  id: number;
  name: string;
  required: boolean;
  type: IcebergType;
  doc?: string;
  [key: string]: unknown;
}

/** An Iceberg schema (Appendix C). */
export interface IcebergSchema {
  type: 'struct';
  'schema-id': number;
  fields: IcebergField[];
  'identifier-field-ids'?: number[];
  [key: string]: unknown;
}

/** The Iceberg primitive type of an asset field type (json → string, timestamp → timestamptz). */
export function icebergTypeOf(type: FieldType): string {
  switch (type.kind) {
    case 'string':
    case 'json':
      return 'string';
    case 'long':
      return 'long';
    case 'int':
      return 'int';
    case 'float':
      return 'float';
    case 'double':
      return 'double';
    case 'decimal':
      return `decimal(${type.precision},${type.scale})`;
    case 'boolean':
      return 'boolean';
    case 'date':
      return 'date';
    case 'timestamp':
      return 'timestamptz';
    case 'binary':
      return 'binary';
  }
}

/** `decimal(P, S)` (spaces allowed) → precision and scale; undefined for other types. */
export function parseDecimal(type: IcebergType): { precision: number; scale: number } | undefined {
  if (typeof type !== 'string') return undefined;
  const m = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(type);
  if (!m) return undefined;
  return { precision: Number(m[1]), scale: Number(m[2]) };
}

/** Canonical spelling of a primitive type string (decimal without spaces), or the JSON text of a nested type. */
export function typeKey(type: IcebergType): string {
  const d = parseDecimal(type);
  if (d) return `decimal(${d.precision},${d.scale})`;
  return typeof type === 'string' ? type : stringifyJson(type);
}

function fieldOf(f: AssetField, id: number): IcebergField {
  const field: IcebergField = { id, name: f.name, required: f.required, type: icebergTypeOf(f.type) };
  if (f.description !== undefined && f.description !== '') field.doc = f.description;
  return field;
}

/** Result of {@link buildSchema}. */
export interface FreshSchema {
  schema: IcebergSchema;
  lastColumnId: number;
  /** The input fields with `fieldId` set to the assigned ids. */
  fields: AssetField[];
}

/**
 * Schema of a new table: fresh ids 1..n in column order (Java
 * `TypeUtil.assignFreshIds`, PyIceberg `assign_fresh_schema_ids`; our columns
 * are all primitive, so there are no nested ids). `schemaId` defaults to 0.
 */
export function buildSchema(fields: AssetField[], schemaId = 0): FreshSchema {
  checkUniqueNames(fields);
  const out = fields.map((f, i) => ({ ...f, fieldId: i + 1 }));
  return {
    schema: { type: 'struct', 'schema-id': schemaId, fields: out.map((f) => fieldOf(f, f.fieldId)) },
    lastColumnId: fields.length,
    fields: out,
  };
}

function checkUniqueNames(fields: AssetField[]): void {
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) {
      throw new DativoError('SCHEMA_INCOMPATIBLE', `column "${f.name}" is declared twice`, { context: { columns: [f.name] } });
    }
    seen.add(f.name);
  }
}

/** The schemas of a table's metadata, and the current one. */
export function currentSchema(metadata: TableMetadata): IcebergSchema {
  const schemas = (metadata.schemas ?? []) as IcebergSchema[];
  const id = metadata['current-schema-id'];
  const found = schemas.find((s) => s['schema-id'] === id);
  if (found) return found;
  // v1 tables may carry only `schema`.
  const legacy = metadata.schema as IcebergSchema | undefined;
  if (legacy && Array.isArray(legacy.fields)) return { ...legacy, 'schema-id': legacy['schema-id'] ?? 0 };
  throw new DativoError('CATALOG_INVALID', `table metadata has no current schema (current-schema-id ${String(id)})`);
}

/** How the asset's columns relate to an existing table (see {@link planSchema}). */
export interface SchemaPlan {
  /** The schema to write under: the current one, or the evolved one. */
  schema: IcebergSchema;
  /** True when `schema` is not the table's current schema (a commit must add and/or select it). */
  changed: boolean;
  /** True when `schema` is new (needs `add-schema`); false when an identical older schema is reused. */
  isNewSchema: boolean;
  /** `last-column-id` after the change. */
  lastColumnId: number;
  /** The asset fields with `fieldId` = the table's id for that column. */
  fields: AssetField[];
  /** Columns added to the table (optional, new ids). */
  added: string[];
  /** Columns whose type is widened (int→long, float→double, decimal precision). */
  promoted: string[];
  /** Columns made optional because the asset allows nulls. */
  relaxed: string[];
  /** Table columns the asset does not have: written as null (they are optional). */
  absent: string[];
}

/**
 * Columns dativo fills on every row itself. They are required in tables
 * dativo creates, but may be added to (or be optional in) a table made by
 * another engine: a value is always written, so required-ness is not a
 * contract to enforce there.
 */
const SYSTEM_COLUMNS: ReadonlySet<string> = new Set([INGESTED_AT_COLUMN, RUN_ID_COLUMN]);

type TypeRelation = 'same' | 'promote' | 'narrower' | 'incompatible';

/** How asset type `to` relates to table type `from` (Iceberg v2 promotions only). */
function relate(from: IcebergType, to: string): TypeRelation {
  if (typeKey(from) === typeKey(to)) return 'same';
  if (typeof from !== 'string') return 'incompatible';
  if (from === 'int' && to === 'long') return 'promote';
  if (from === 'float' && to === 'double') return 'promote';
  if (from === 'long' && to === 'int') return 'narrower';
  if (from === 'double' && to === 'float') return 'narrower';
  const a = parseDecimal(from);
  const b = parseDecimal(to);
  if (a && b && a.scale === b.scale) {
    if (b.precision > a.precision) return 'promote';
    if (b.precision < a.precision) return 'narrower';
  }
  return 'incompatible';
}

function sameFields(a: IcebergSchema, b: IcebergSchema): boolean {
  const norm = (s: IcebergSchema) =>
    stringifyJson({
      ids: s['identifier-field-ids'] ?? [],
      f: s.fields.map((f) => [f.id, f.name, f.required, typeKey(f.type)]),
    });
  return norm(a) === norm(b);
}

/**
 * Match the asset's columns (asset fields plus system columns) against the
 * table's current schema by name and decide what must change:
 * - same name, same type → the table's id is reused;
 * - int→long, float→double, decimal precision widening → the column is promoted
 *   (a narrower asset type under a wider table type is accepted as is);
 * - asset optional, table required → the column is made optional;
 * - a new optional column → added with id `last-column-id + 1`, ...;
 * - the system columns (`_dativo_ingested_at`, `_dativo_run_id`) are always
 *   written, so a foreign table gets them as optional columns, and an
 *   optional one is accepted as is;
 * - a table column the asset lacks → kept, written as null (it must be optional).
 * Anything else — another type change, optional→required, a new required
 * column, a missing required column, a column of a type we cannot write
 * — throws SCHEMA_INCOMPATIBLE naming every offending column (context.columns).
 * The table's own columns are copied verbatim (nested types of other engines
 * included), so evolution never rewrites what it does not understand.
 */
export function planSchema(metadata: TableMetadata, fields: AssetField[]): SchemaPlan {
  checkUniqueNames(fields);
  const current = currentSchema(metadata);
  const byName = new Map(current.fields.map((f) => [f.name, f]));
  const schemas = (metadata.schemas ?? []) as IcebergSchema[];
  let lastColumnId = Number(metadata['last-column-id'] ?? 0);
  for (const f of current.fields) lastColumnId = Math.max(lastColumnId, f.id);

  const problems: string[] = [];
  const columns: string[] = [];
  const added: string[] = [];
  const promoted: string[] = [];
  const relaxed: string[] = [];
  const newFields = current.fields.map((f) => ({ ...f }));
  const newById = new Map(newFields.map((f) => [f.id, f]));
  const appended: IcebergField[] = [];
  const mapped: AssetField[] = [];

  for (const f of fields) {
    const want = icebergTypeOf(f.type);
    const have = byName.get(f.name);
    const system = SYSTEM_COLUMNS.has(f.name);
    if (!have) {
      if (f.required && !system) {
        problems.push(`"${f.name}": new column is required (a new column must be optional; existing rows have no value)`);
        columns.push(f.name);
        continue;
      }
      lastColumnId += 1;
      // Existing rows have no value, so a column added to a table is optional.
      appended.push({ ...fieldOf(f, lastColumnId), required: false });
      added.push(f.name);
      mapped.push({ ...f, fieldId: lastColumnId });
      continue;
    }
    const rel = relate(have.type, want);
    if (rel === 'incompatible') {
      problems.push(`"${f.name}": table type ${typeKey(have.type)} cannot change to ${want} (asset type ${f.typeName})`);
      columns.push(f.name);
      continue;
    }
    if (f.required && !have.required && !system) {
      problems.push(`"${f.name}": asset declares it required but the table column is optional (optional→required is not allowed)`);
      columns.push(f.name);
      continue;
    }
    const target = newById.get(have.id)!;
    if (rel === 'promote') {
      target.type = want;
      promoted.push(f.name);
    }
    if (!f.required && have.required) {
      target.required = false;
      relaxed.push(f.name);
    }
    mapped.push({ ...f, fieldId: have.id });
  }

  const assetNames = new Set(fields.map((f) => f.name));
  const absent: string[] = [];
  for (const t of current.fields) {
    if (assetNames.has(t.name)) continue;
    if (t.required) {
      problems.push(`"${t.name}": required table column is missing from the asset (it would be written as null)`);
      columns.push(t.name);
    } else {
      absent.push(t.name);
    }
  }
  if (problems.length > 0) {
    throw new DativoError('SCHEMA_INCOMPATIBLE', `asset schema is incompatible with the table: ${problems.join('; ')}`, {
      context: { columns },
    });
  }

  const changed = added.length + promoted.length + relaxed.length > 0;
  if (!changed) {
    return { schema: current, changed: false, isNewSchema: false, lastColumnId, fields: mapped, added, promoted, relaxed, absent };
  }
  const candidate: IcebergSchema = { ...current, fields: [...newFields, ...appended] };
  const existing = schemas.find((s) => sameFields(s, candidate));
  if (existing) {
    return { schema: existing, changed: true, isNewSchema: false, lastColumnId, fields: mapped, added, promoted, relaxed, absent };
  }
  const nextId = Math.max(-1, ...schemas.map((s) => s['schema-id'])) + 1;
  candidate['schema-id'] = nextId;
  return { schema: candidate, changed: true, isNewSchema: true, lastColumnId, fields: mapped, added, promoted, relaxed, absent };
}
