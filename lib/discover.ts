/**
 * `dativo discover`: turn a connector's view of its objects into an asset
 * YAML (flat ODCS) that a job can use as is.
 */
import { stringify } from 'yaml';
import type { Connector } from './connector.js';
import { DativoError } from './errors.js';
import { silentLogger } from './log.js';
import type { JobPlan } from './plan.js';

export async function discoverAssetYaml(plan: JobPlan, connector: Connector, signal: AbortSignal): Promise<string> {
  if (!connector.discover) {
    throw new DativoError('CONFIG_INVALID', `connector "${connector.descriptor.name}" cannot discover its objects`, {
      context: { connector: connector.descriptor.name },
    });
  }
  const objects = await connector.discover(plan, { signal, log: silentLogger() });
  const docs = objects.map((o) => {
    const asset: Record<string, unknown> = {
      apiVersion: 'v3.0.2',
      kind: 'DataContract',
      name: o.name,
      version: '1.0',
      source_type: connector.descriptor.name,
      object: o.name,
      ...(plan.asset.domain ? { domain: plan.asset.domain } : {}),
      ...(plan.asset.dataProduct ? { dataProduct: plan.asset.dataProduct } : {}),
      schema: o.columns.map((c) => ({ name: c.name, type: c.type, required: c.required, ...(c.sourceType ? { description: `source type ${c.sourceType}` } : {}) })),
      ...(o.primaryKey.length > 0 ? { primary_key: o.primaryKey } : {}),
      team: { owner: (plan.asset.raw['team'] as { owner?: string } | undefined)?.owner ?? 'unknown@example.com' },
    };
    return stringify(asset);
  });
  return docs.join('---\n');
}
