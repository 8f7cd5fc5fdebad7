/**
 * `dativo discover` for Stripe: the shipped asset of each of the job's
 * objects (schemas/stripe/v1.0/<object>.yaml: money as integer minor units,
 * timestamps, nested objects as JSON, PII classified), the way Airbyte ships
 * static Stripe schemas; then one sample page of the object's list, whose
 * fields the shipped asset does not declare (a newer API version, an
 * account's own shape) are added with a type guessed from the sample and
 * say so in their description. The sample call also proves the key.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiscoveredColumn, DiscoveredObject } from '../../lib/connector.js';
import { loadAsset } from '../../lib/config/asset.js';
import { DELETED_COLUMN } from '../../lib/types.js';
import type { StripeObjectSpec } from './objects.js';

/** Where the shipped Stripe assets are: `schemas/stripe/v1.0/`. */
export const STRIPE_ASSET_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../schemas/stripe/v1.0');

/** Objects sampled per list call of discover (Stripe's page maximum). */
export const DISCOVER_SAMPLE = 100;

/**
 * The asset type of a field Stripe sends but the shipped asset does not
 * declare, from the sampled values: integers `long` (Stripe's money and unix
 * seconds are integers; a timestamp read this way stays its seconds),
 * other numbers `double`, `boolean`, `string`, and objects, lists and
 * fields only ever null `json` (JSON text holds whatever comes later).
 */
export function sampledType(values: readonly unknown[]): string {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return 'json';
  if (present.every((v) => typeof v === 'boolean')) return 'boolean';
  if (present.every((v) => typeof v === 'number' && Number.isInteger(v))) return 'long';
  if (present.every((v) => typeof v === 'number')) return 'double';
  if (present.every((v) => typeof v === 'string')) return 'string';
  return 'json';
}

/** One object's discovered asset: the shipped columns, then the fields of `sample` they miss. */
export async function discoverObject(spec: StripeObjectSpec, sample: readonly Record<string, unknown>[]): Promise<DiscoveredObject> {
  const asset = await loadAsset(path.join(STRIPE_ASSET_DIR, `${spec.name}.yaml`));
  const columns: DiscoveredColumn[] = asset.fields.map((f) => ({
    name: f.name,
    type: f.typeName,
    required: f.required,
    ...(f.description !== undefined ? { description: f.description } : {}),
    ...(f.classification !== undefined ? { classification: f.classification } : {}),
  }));
  const known = new Set(columns.map((c) => c.name));
  const extra = new Map<string, unknown[]>();
  for (const obj of sample) {
    for (const [k, v] of Object.entries(obj)) {
      // `deleted` is how Stripe marks a deleted object; it lands as _dativo_deleted.
      if (known.has(k) || k === 'deleted' || k === DELETED_COLUMN) continue;
      let vs = extra.get(k);
      if (!vs) extra.set(k, (vs = []));
      vs.push(v);
    }
  }
  for (const [name, values] of [...extra].sort(([a], [b]) => (a < b ? -1 : 1))) {
    columns.push({
      name,
      type: sampledType(values),
      required: false,
      description: `not in the shipped asset (schemas/stripe/v1.0/${spec.name}.yaml): seen in a sample of ${sample.length} ${spec.name}, type guessed from it`,
    });
  }
  return { name: spec.name, columns, primaryKey: asset.primaryKey.length > 0 ? asset.primaryKey : ['id'] };
}
