/**
 * Asset definitions (data contracts): the flat ODCS-style YAML and the legacy
 * `asset:` wrapper, normalised into an {@link Asset}.
 */
import path from 'node:path';
import { z } from 'zod';
import type { Asset, AssetField, FieldType } from '../types.js';
import { DELETED_COLUMN, INGESTED_AT_COLUMN, RUN_ID_COLUMN } from '../types.js';
import { unsafeNamespace, unsafePathName } from './paths.js';
import { Problems, type KeyPath } from './problems.js';
import { isPlainObject } from './vars.js';
import { readYamlFile, type YamlFile } from './yaml.js';
import { addZodProblems, anyRecord, boolLike, stringLike } from './zod-util.js';

const SIMPLE_TYPES: Record<string, FieldType> = {
  string: { kind: 'string' },
  integer: { kind: 'long' },
  long: { kind: 'long' },
  bigint: { kind: 'long' },
  int: { kind: 'int' },
  int32: { kind: 'int' },
  float: { kind: 'float' },
  double: { kind: 'double' },
  number: { kind: 'double' },
  boolean: { kind: 'boolean' },
  bool: { kind: 'boolean' },
  date: { kind: 'date' },
  timestamp: { kind: 'timestamp' },
  datetime: { kind: 'timestamp' },
  timestamptz: { kind: 'timestamp' },
  json: { kind: 'json' },
  object: { kind: 'json' },
  array: { kind: 'json' },
  binary: { kind: 'binary' },
  bytes: { kind: 'binary' },
};

/** Every accepted type spelling, for messages and docs. */
export const TYPE_NAMES: readonly string[] = [...Object.keys(SIMPLE_TYPES), 'decimal(p,s)', 'numeric(p,s)'];

/**
 * Parse an asset `type` string (case-insensitive, surrounding space ignored).
 * `integer`/`long`/`bigint` → long; `int`/`int32` → int; `number` → double;
 * `datetime`/`timestamptz` → timestamp; `object`/`array` → json; `bytes` → binary;
 * `decimal(p,s)`/`numeric(p,s)` with 1 <= p <= 38 and 0 <= s <= p (`decimal(p)` means scale 0).
 */
export function parseFieldType(typeName: string): { type: FieldType } | { error: string } {
  const s = typeName.trim().toLowerCase();
  const simple = SIMPLE_TYPES[s];
  if (simple !== undefined) return { type: { ...simple } };
  if (s === 'decimal' || s === 'numeric') {
    return { error: `"${typeName}" needs a precision and scale, e.g. decimal(18,2)` };
  }
  const m = /^(?:decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$/.exec(s);
  if (m !== null) {
    const precision = Number(m[1]);
    const scale = m[2] === undefined ? 0 : Number(m[2]);
    if (precision < 1 || precision > 38) return { error: `decimal precision must be 1..38, got ${precision}` };
    if (scale > precision) return { error: `decimal scale must be 0..${precision} (the precision), got ${scale}` };
    return { type: { kind: 'decimal', precision, scale } };
  }
  if (/^(decimal|numeric)\s*\(\s*\d+\s*$/.test(s)) {
    // `{type: decimal(12,2)}` in a YAML flow mapping splits at the comma.
    return { error: `unknown type "${typeName}": in a {...} mapping quote it, e.g. type: "decimal(12,2)"` };
  }
  return { error: `unknown type "${typeName}" (expected one of: ${TYPE_NAMES.join(', ')})` };
}

const FieldSchema = z.looseObject({
  name: z.string().min(1),
  type: z.string().min(1),
  required: boolLike.optional(),
  classification: stringLike.optional(),
  description: stringLike.optional(),
  primaryKey: boolLike.optional(),
  primary_key: boolLike.optional(),
});

const keyList = z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(z.string()));

/** The flat (ODCS-style) asset. Closed: unknown top-level keys are problems. */
export const AssetSchema = z.strictObject({
  $schema: z.string().optional(),
  apiVersion: stringLike.optional(),
  kind: z.string().optional(),
  id: stringLike.optional(),
  name: stringLike.pipe(z.string().min(1)),
  version: stringLike,
  status: z.string().optional(),
  domain: stringLike.optional(),
  dataProduct: stringLike.optional(),
  tenant: stringLike.optional(),
  source_type: z.string().optional(),
  object: stringLike.optional(),
  description: z.unknown().optional(),
  tags: z.array(stringLike).optional(),
  schema: z.array(FieldSchema).min(1, 'must list at least one column'),
  team: anyRecord.optional(),
  compliance: anyRecord.optional(),
  finops: anyRecord.optional(),
  target: anyRecord.optional(),
  data_quality: anyRecord.optional(),
  change_management: anyRecord.optional(),
  primary_key: keyList.optional(),
  primaryKey: keyList.optional(),
  cursor_field: z.string().optional(),
  incremental: z.looseObject({ cursor_field: z.string().optional() }).optional(),
  // Other ODCS v3 top-level sections: accepted and kept in `raw`.
  servers: z.unknown().optional(),
  roles: z.unknown().optional(),
  slaProperties: z.unknown().optional(),
  slaDefaultElement: z.unknown().optional(),
  support: z.unknown().optional(),
  price: z.unknown().optional(),
  customProperties: z.unknown().optional(),
  contractCreatedTs: z.unknown().optional(),
  authoritativeDefinitions: z.unknown().optional(),
  quality: z.unknown().optional(),
});

/**
 * Migrate the legacy `asset: {..., governance: {owner, tags, classification,
 * retention_days}}` shape to the flat one, as the Python loader did:
 * `governance.owner` → `team.owner`, `governance.tags` → `tags`,
 * classification/retention → `compliance`.
 */
function migrateLegacy(inner: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...inner };
  const gov = out['governance'];
  if (isPlainObject(gov)) {
    delete out['governance'];
    if (gov['owner'] !== undefined) out['team'] = { ...(isPlainObject(out['team']) ? out['team'] : {}), owner: gov['owner'] };
    if (gov['tags'] !== undefined && out['tags'] === undefined) out['tags'] = gov['tags'];
    const compliance: Record<string, unknown> = isPlainObject(out['compliance']) ? { ...out['compliance'] } : {};
    if (gov['classification'] !== undefined) compliance['classification'] ??= gov['classification'];
    if (gov['retention_days'] !== undefined) compliance['retention_days'] ??= gov['retention_days'];
    if (Object.keys(compliance).length > 0) out['compliance'] = compliance;
  }
  return out;
}

/**
 * Normalise parsed asset YAML into an Asset, adding every problem found.
 * Returns undefined when the asset cannot be built.
 */
export function buildAsset(data: unknown, file: string, problems: Problems, yaml?: YamlFile): Asset | undefined {
  let flat: unknown = data;
  let base: KeyPath = [];
  if (isPlainObject(data) && 'asset' in data) {
    for (const k of Object.keys(data)) if (k !== 'asset') problems.add(file, k, 'unknown key next to the legacy "asset:" wrapper');
    if (!isPlainObject(data['asset'])) {
      problems.add(file, 'asset', 'expected a mapping');
      return undefined;
    }
    flat = migrateLegacy(data['asset']);
    base = ['asset'];
  }
  if (!isPlainObject(flat)) {
    problems.add(file, '', flat === undefined ? 'asset file is empty' : 'expected a mapping at the top level');
    return undefined;
  }
  const parsed = AssetSchema.safeParse(flat);
  if (!parsed.success) {
    addZodProblems(parsed.error, problems, file, flat, { yaml, schema: AssetSchema, basePath: base });
    return undefined;
  }
  const a = parsed.data;
  const before = problems.size;
  const key = (...p: (string | number)[]) => [...base, ...p];
  // They name folders of the table's location: none may lead out of the warehouse.
  for (const [k, v, check] of [
    ['name', a.name, unsafePathName],
    ['domain', a.domain, unsafeNamespace],
    ['dataProduct', a.dataProduct, unsafePathName],
  ] as const) {
    const why = v === undefined ? undefined : check(v);
    const line = yaml?.lineOf(key(k));
    if (why !== undefined) problems.add(file, key(k), `${why}${line === undefined ? '' : ` (line ${line})`}`);
  }

  const fields: AssetField[] = [];
  const seen = new Map<string, number>();
  const fieldPk: string[] = [];
  a.schema.forEach((f, i) => {
    const prev = seen.get(f.name);
    if (prev !== undefined) problems.add(file, key('schema', i, 'name'), `duplicate column "${f.name}" (first at schema[${prev}])`);
    else seen.set(f.name, i);
    if (f.name === DELETED_COLUMN) {
      if (f.type !== 'boolean') problems.add(file, key('schema', i, 'type'), `${DELETED_COLUMN} is the soft-delete marker: its type is boolean`);
    } else if (f.name.startsWith('_dativo_')) {
      problems.add(file, key('schema', i, 'name'), `column names starting with "_dativo_" are reserved (${INGESTED_AT_COLUMN}, ${RUN_ID_COLUMN}, ...; only ${DELETED_COLUMN} may be declared)`);
    }
    const t = parseFieldType(f.type);
    if ('error' in t) {
      problems.add(file, key('schema', i, 'type'), t.error);
      return;
    }
    if (f.primaryKey === true || f.primary_key === true) fieldPk.push(f.name);
    const field: AssetField = { name: f.name, type: t.type, typeName: f.type, required: f.required ?? false, fieldId: i + 1 };
    if (f.classification !== undefined) field.classification = f.classification;
    if (f.description !== undefined) field.description = f.description;
    fields.push(field);
  });

  const pkKey = a.primary_key !== undefined ? 'primary_key' : 'primaryKey';
  const topPk = a.primary_key ?? a.primaryKey ?? [];
  topPk.forEach((c, i) => {
    if (!seen.has(c)) problems.add(file, key(pkKey, i), `primary key column "${c}" is not in the schema`);
  });
  const primaryKey = [...new Set([...topPk, ...fieldPk])];

  const cursorField = a.cursor_field ?? a.incremental?.cursor_field;
  if (cursorField !== undefined && !seen.has(cursorField)) {
    const ck = a.cursor_field !== undefined ? key('cursor_field') : key('incremental', 'cursor_field');
    problems.add(file, ck, `cursor column "${cursorField}" is not in the schema`);
  }
  if (problems.size > before) return undefined;

  const asset: Asset = {
    name: a.name,
    version: a.version,
    fields,
    primaryKey,
    file,
    raw: flat,
  };
  if (a.domain !== undefined) asset.domain = a.domain;
  if (a.dataProduct !== undefined) asset.dataProduct = a.dataProduct;
  if (a.tenant !== undefined) asset.tenant = a.tenant;
  if (a.source_type !== undefined) asset.sourceType = a.source_type;
  if (a.object !== undefined) asset.object = a.object;
  if (cursorField !== undefined) asset.cursorField = cursorField;
  return asset;
}

/** Read and normalise one asset file into `problems` (used by loadJob). */
export async function readAsset(file: string, problems: Problems): Promise<Asset | undefined> {
  const y = await readYamlFile(file, problems, 'asset file');
  if (y === undefined) return undefined;
  return buildAsset(y.data, file, problems, y);
}

/**
 * Load an asset definition (flat ODCS-style or legacy `asset:` wrapper).
 * A relative path resolves against `process.cwd()`. Throws CONFIG_INVALID
 * listing every problem (unknown keys, unknown types, duplicate or reserved
 * columns, primary key or cursor columns not in the schema).
 */
export async function loadAsset(assetPath: string): Promise<Asset> {
  const problems = new Problems();
  const asset = await readAsset(path.resolve(assetPath), problems);
  problems.throwIfAny();
  return asset!;
}
