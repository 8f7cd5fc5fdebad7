/**
 * `dativo discover`: turn a connector's view of its objects into an asset
 * YAML (flat ODCS) that a job can use as is.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { Connector, DiscoveredColumn, DiscoveredObject } from './connector.js';
import { DativoError } from './errors.js';
import { silentLogger } from './log.js';
import { fsError, makeDirs } from './storage/local.js';
import type { JobPlan } from './plan.js';

/** Asset name of an object: lower case, `[a-z0-9_]` only. */
export function assetNameOf(object: string): string {
  return object.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'table';
}

/** `Source column type: bigint(20) unsigned (mysql).`, or the connector's own sentence. */
function describeColumn(c: DiscoveredColumn, sourceType: string): string | undefined {
  if (c.description !== undefined) return c.description;
  return c.sourceType === undefined ? undefined : `Source column type: ${c.sourceType} (${sourceType}).`;
}

/**
 * Render discovered objects as asset YAML documents (one per object,
 * separated by `---`): `apiVersion: v3.0.2`, `kind: DataContract`, name,
 * version `1.0`, `source_type`, `object`, `schema` (type, `required` from
 * NOT NULL, a description naming the source column type), `primary_key`, and
 * `cursor_field` when the job names one that the object has. Domain, data
 * product, tenant and team are taken from the job's current asset when set.
 */
export function renderAssetYaml(plan: JobPlan, sourceType: string, objects: readonly DiscoveredObject[]): string {
  const current = plan.asset;
  const team = current.raw['team'];
  const cursor = plan.source.incremental?.cursorField ?? current.cursorField;
  return objects
    .map((o) => {
      const doc: Record<string, unknown> = {
        apiVersion: 'v3.0.2',
        kind: 'DataContract',
        name: assetNameOf(o.name),
        version: '1.0',
        ...(current.domain !== undefined ? { domain: current.domain } : {}),
        ...(current.dataProduct !== undefined ? { dataProduct: current.dataProduct } : {}),
        tenant: current.tenant ?? plan.tenantId,
        source_type: sourceType,
        object: o.name,
        schema: o.columns.map((c) => ({
          name: c.name,
          type: c.type,
          required: c.required,
          ...(c.classification !== undefined ? { classification: c.classification } : {}),
          ...(describeColumn(c, sourceType) !== undefined ? { description: describeColumn(c, sourceType) } : {}),
        })),
        ...(o.primaryKey.length > 0 ? { primary_key: o.primaryKey } : {}),
        ...(cursor !== undefined && o.columns.some((c) => c.name === cursor) ? { cursor_field: cursor } : {}),
        team: typeof team === 'object' && team !== null ? team : { owner: 'data-team@example.com' },
      };
      return stringify(doc, { lineWidth: 0 });
    })
    .join('---\n');
}

/** Ask the job's connector for its objects (columns, types, primary key). */
export async function discoverAssets(plan: JobPlan, connector: Connector, signal: AbortSignal): Promise<DiscoveredObject[]> {
  if (!connector.discover) {
    throw new DativoError('CONFIG_INVALID', `connector "${connector.descriptor.name}" cannot discover its objects`, {
      context: { connector: connector.descriptor.name },
    });
  }
  return connector.discover(plan, { signal, log: silentLogger() });
}

/** Ask the job's connector for its objects and render them as asset YAML. */
export async function discoverAssetYaml(plan: JobPlan, connector: Connector, signal: AbortSignal): Promise<string> {
  return renderAssetYaml(plan, connector.descriptor.name, await discoverAssets(plan, connector, signal));
}

/**
 * Write a discovered asset to `file` (folders created), refusing to replace
 * an existing file: an asset may carry edits (descriptions, classification)
 * that a new discover would lose. Throws CONFIG_INVALID when it exists,
 * STORAGE_NOT_WRITABLE / STORAGE_IO when it cannot be written.
 */
export async function writeNewAsset(file: string, yaml: string): Promise<void> {
  try {
    await makeDirs(path.dirname(file));
    await writeFile(file, yaml, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new DativoError('CONFIG_INVALID', `${file} exists: discover --write never replaces an asset (remove it, or redirect stdout)`, { cause: err, context: { path: file } });
    }
    throw fsError(err, 'write', file);
  }
}
