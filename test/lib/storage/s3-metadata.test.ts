import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asciiSafe, contentTypeFor, s3ObjectMetadata } from '../../../lib/storage/s3.js';
import type { Asset } from '../../../lib/types.js';

function asset(raw: Record<string, unknown>, extra: Partial<Asset> = {}): Asset {
  return { name: 'pg_invoices', version: '1.0', fields: [], primaryKey: [], file: '/x.yaml', raw, ...extra };
}

const now = new Date('2025-11-30T12:34:56.789Z');

test('s3ObjectMetadata writes the Python tool’s keys from a flat ODCS asset', () => {
  const a = asset(
    { team: { owner: 'fin-data@globex.example' }, compliance: { classification: ['PII', 'SENSITIVE'], retention_days: 365 } },
    { domain: 'finance', dataProduct: 'billing', tenant: 'globex' },
  );
  assert.deepEqual(s3ObjectMetadata({ asset: a, tenantId: 'globex', runId: 'r-1', recordCount: 10_000, fileSizeBytes: 1234, partition: 'ingest_date=2025-11-30', now }), {
    'asset-name': 'pg_invoices',
    'asset-version': '1.0',
    'asset-domain': 'finance',
    'data-product': 'billing',
    'tenant-id': 'globex',
    branch: 'main',
    owner: 'fin-data@globex.example',
    'retention-days': '365',
    classification: 'PII,SENSITIVE',
    'record-count': '10000',
    'file-size-bytes': '1234',
    partition: 'ingest_date=2025-11-30',
    'ingest-timestamp': '2025-11-30T12:34:56.789Z',
    'file-format': 'parquet',
    compression: 'zstd',
    'run-id': 'r-1',
  });
});

test('streamed files: record count and size unknown → keys left out, never faked; legacy governance block is read', () => {
  const a = asset({ asset: { governance: { owner: 'ops', retention_days: 30, classification: 'internal' } } });
  const m = s3ObjectMetadata({ asset: a, tenantId: 'acme', runId: 'r-2', partition: 'ingest_date=2025-12-01', branch: 'dev', now });
  assert.equal('record-count' in m, false);
  assert.equal('file-size-bytes' in m, false);
  assert.equal('asset-domain' in m, false);
  assert.equal(m.owner, 'ops');
  assert.equal(m['retention-days'], '30');
  assert.equal(m.classification, 'internal');
  assert.equal(m.branch, 'dev');
});

test('values are US-ASCII: non-ASCII or control characters are percent-encoded, printable ASCII kept', () => {
  assert.equal(asciiSafe('plain value, with: punctuation/=+'), 'plain value, with: punctuation/=+');
  assert.equal(asciiSafe('Zoë Müller'), 'Zo%C3%AB%20M%C3%BCller');
  assert.equal(decodeURIComponent(asciiSafe('Zoë Müller')), 'Zoë Müller');
  assert.equal(asciiSafe('a\nb'), 'a%0Ab');
  const m = s3ObjectMetadata({ asset: asset({ team: { owner: 'Åsa Ström' } }), tenantId: 't', runId: 'r', partition: 'city=zürich', now });
  for (const v of Object.values(m)) assert.match(v, /^[\x20-\x7e]*$/);
  assert.equal(m.partition, 'city%3Dz%C3%BCrich');
});

test('content type from the extension', () => {
  assert.equal(contentTypeFor('a/b.parquet'), 'application/x-parquet');
  assert.equal(contentTypeFor('m/v1.metadata.json'), 'application/json');
  assert.equal(contentTypeFor('m/snap-1.avro'), 'avro/binary');
  assert.equal(contentTypeFor('x.bin'), 'application/octet-stream');
});
