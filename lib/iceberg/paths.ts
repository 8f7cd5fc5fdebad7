/**
 * Table URIs ↔ storage-relative paths. Iceberg metadata holds absolute URIs;
 * {@link Storage} works on paths relative to its root. Java writes local
 * paths as `file:/abs` and Spark often `s3a://`, so both spellings are
 * normalised before comparing.
 */
import { DativoError } from '../errors.js';
import type { Storage } from '../storage/types.js';

/** `file:/x`, `file://x`, `file:///x` → `file:///x`; `s3a://`, `s3n://` → `s3://`; no trailing slash. */
export function normalizeUri(uri: string): string {
  let u = uri;
  if (u.startsWith('file:')) u = 'file:///' + u.slice('file:'.length).replace(/^\/+/, '');
  else if (u.startsWith('s3a://') || u.startsWith('s3n://')) u = 's3://' + u.slice(6);
  return u.replace(/\/+$/, '');
}

/** Join URI parts with single slashes. */
export function joinUri(base: string, ...parts: string[]): string {
  return [base.replace(/\/+$/, ''), ...parts.map((p) => p.replace(/^\/+|\/+$/g, ''))].filter((p) => p !== '').join('/');
}

/**
 * The storage-relative path of `uri`. Throws CATALOG_INVALID when the URI is
 * outside the storage root (a table whose files live elsewhere cannot be
 * read or written through this storage).
 */
export function storageKey(storage: Storage, uri: string): string {
  const root = normalizeUri(storage.root);
  const u = normalizeUri(uri);
  if (u === root) return '';
  if (!u.startsWith(root + '/')) {
    throw new DativoError('CATALOG_INVALID', `${uri} is outside the warehouse ${storage.root}`, { context: { file: uri } });
  }
  return decodeURIComponent(u.slice(root.length + 1));
}

/** Last path segment of a URI. */
export function baseName(uri: string): string {
  const i = uri.lastIndexOf('/');
  return i < 0 ? uri : uri.slice(i + 1);
}

/** Metadata directory of a table: `write.metadata.path` or `<location>/metadata`. */
export function metadataDir(location: string, properties: Record<string, string> | undefined): string {
  const custom = properties?.['write.metadata.path'];
  return custom ? custom.replace(/\/+$/, '') : joinUri(location, 'metadata');
}
