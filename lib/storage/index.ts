/**
 * Storage entry point: pick the implementation from the warehouse URI.
 */
import { DativoError } from '../errors.js';
import type { S3Settings } from '../plan.js';
import { LocalStorage } from './local.js';
import type { Storage } from './types.js';

export type { Storage, WriteHandle, WriteOptions } from './types.js';
export { LocalStorage } from './local.js';

/**
 * Open the storage for a warehouse URI: `file:///abs/path` → {@link LocalStorage};
 * `s3://bucket/prefix` → the S3 implementation (loaded on demand so that the
 * AWS SDK is only imported when needed; `s3` settings are required then).
 * Throws CONFIG_INVALID for any other scheme.
 */
export async function openStorage(warehouse: string, s3?: S3Settings): Promise<Storage> {
  if (warehouse.startsWith('file://')) return new LocalStorage(warehouse);
  if (warehouse.startsWith('s3://') || warehouse.startsWith('s3a://')) {
    const { createS3Storage } = await import('./s3.js');
    return await createS3Storage(warehouse, s3);
  }
  throw new DativoError('CONFIG_INVALID', `unsupported warehouse URI (expected file:// or s3://): ${warehouse}`, {
    context: { key: 'target.warehouse', warehouse },
  });
}
