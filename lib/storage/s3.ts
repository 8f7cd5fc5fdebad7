/**
 * {@link Storage} on S3 and S3-compatible stores (MinIO, s3rver, R2, ...).
 *
 * Data files are streamed with a multipart upload (`@aws-sdk/lib-storage`):
 * memory stays at about `PART_SIZE × (QUEUE_SIZE + 3)` whatever the file size
 * (parts in flight, the part being gathered, lib-storage's concatenation copy;
 * measured: about 45 MiB live for a 100 MiB file), and nothing is visible at
 * the key until `done()` completes the upload (S3 only shows an object once
 * CompleteMultipartUpload or PutObject succeeded).
 * Small objects (metadata, state) are written with one PutObject.
 *
 * Retries: the SDK's retry loop runs, but every decision and every wait is
 * the engine's retry policy ({@link S3_RETRY_POLICY}, lib/retry.ts) through
 * {@link s3RetryStrategy}: statuses, network codes along the cause chain,
 * backoff with full jitter, `Retry-After`, attempts and time cap. The loop
 * stays inside the SDK because a failed part can only be retried inside the
 * upload (an outer loop would have to re-run the whole file). What survives
 * becomes a retryable STORAGE_IO.
 */
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import {
  S3Client,
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { RetryStrategyV2, RetryToken } from '@smithy/types';
import { DativoError, isDativoError, toDativoError, transientCodeOf, type ErrorContext } from '../errors.js';
import type { S3Settings } from '../plan.js';
import { classifyFailure, definePolicy, DEFAULT_RETRY_POLICY, RetryBudget, type RetryPolicy } from '../retry.js';
import type { Asset } from '../types.js';
import type { Storage, StoredObject, WriteHandle, WriteOptions } from './types.js';

/** Multipart part size: 8 MiB (S3's minimum is 5 MiB; 10,000 parts → files up to ~78 GiB). */
export const PART_SIZE = 8 * 1024 * 1024;
/** Parts uploaded concurrently per file: 2. */
export const QUEUE_SIZE = 2;
/** Attempts per S3 request, first try included: 3. */
export const S3_MAX_ATTEMPTS = 3;

/**
 * The retry policy of every S3 request: {@link S3_MAX_ATTEMPTS} attempts,
 * waits from up to 100 ms doubling to at most 20 s (the SDK's own base and
 * cap), 409 (ConditionalRequestConflict) retried besides the usual statuses.
 */
export const S3_RETRY_POLICY: RetryPolicy = definePolicy({
  maxAttempts: S3_MAX_ATTEMPTS,
  minDelayMs: 100,
  maxDelayMs: 20_000,
  maxElapsedMs: 120_000,
  statuses: [...DEFAULT_RETRY_POLICY.statuses, 409],
});

interface PolicyToken extends RetryToken {
  readonly budget: RetryBudget;
  readonly delay: number;
}

/**
 * An AWS SDK v3 `retryStrategy` that applies `policy`: the SDK keeps its
 * loop (and sleeps the delay we return, abort-aware) but asks us whether and
 * when to retry. A failure is retried when the SDK calls it throttling or
 * transient, or when {@link classifyFailure} does (status, network code
 * anywhere along the cause chain); `Retry-After` comes from the SDK's hint.
 */
export function s3RetryStrategy(policy: RetryPolicy = S3_RETRY_POLICY): RetryStrategyV2 {
  const token = (budget: RetryBudget, delay: number): PolicyToken => ({
    budget,
    delay,
    getRetryCount: () => budget.attempts - 1,
    getRetryDelay: () => delay,
  });
  return {
    acquireInitialRetryToken: async () => token(new RetryBudget(policy), 0),
    refreshRetryTokenForRetry: async (previous, info) => {
      const budget = (previous as PolicyToken).budget;
      const decision = classifyFailure(policy, info.error);
      if (!(info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT' || decision.retry)) throw new Error('not retryable');
      const hint = info.retryAfterHint instanceof Date ? Math.max(0, info.retryAfterHint.getTime() - Date.now()) : decision.retryAfterMs;
      const delay = budget.nextDelay(hint);
      if (delay === undefined) throw new Error(`retry policy spent (${budget.exhausted ?? 'attempts'})`);
      budget.attempts++;
      return token(budget, delay);
    },
    recordSuccess: () => undefined,
  };
}

/** Bucket and key prefix of an `s3://bucket/prefix` (or `s3a://`) URI. Prefix has no leading/trailing slash. */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3a?:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (m === null || m[1] === undefined || m[1] === '') {
    throw new DativoError('CONFIG_INVALID', `not an s3:// URI: ${uri}`, { context: { key: 'target.warehouse', warehouse: uri } });
  }
  return { bucket: m[1], prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/**
 * Open S3 storage rooted at `warehouse` (`s3://bucket/prefix`).
 *
 * The URI decides bucket and prefix; `settings.bucket`/`settings.prefix`, when
 * non-empty, must agree with it (CONFIG_INVALID otherwise, rather than silently
 * ignoring one of them). Without `settings`: region from `AWS_REGION` /
 * `AWS_DEFAULT_REGION` (default `us-east-1`), virtual-host style, default
 * credential chain. Credentials are used only when both key id and secret are
 * given; otherwise the SDK's default chain (env, profile, IMDS, ...) applies.
 */
export function createS3Storage(warehouse: string, settings?: S3Settings): S3Storage {
  const { bucket, prefix } = parseS3Uri(warehouse);
  if (settings !== undefined) {
    if (settings.bucket !== '' && settings.bucket !== bucket) {
      throw new DativoError('CONFIG_INVALID', `the warehouse bucket (${bucket}) differs from target.connection.s3.bucket (${settings.bucket})`, {
        context: { key: 'target.connection.s3.bucket', warehouse },
        problems: [{ file: '', key: 'target.connection.s3.bucket', message: `differs from the warehouse bucket ${bucket}` }],
      });
    }
    const sp = (settings.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (sp !== '' && sp !== prefix) {
      throw new DativoError('CONFIG_INVALID', `the warehouse prefix (${prefix || '<none>'}) differs from target.connection.s3.prefix (${sp})`, {
        context: { key: 'target.connection.s3.prefix', warehouse },
        problems: [{ file: '', key: 'target.connection.s3.prefix', message: `differs from the warehouse prefix ${prefix || '<none>'}` }],
      });
    }
    if ((settings.accessKeyId === undefined) !== (settings.secretAccessKey === undefined)) {
      throw new DativoError('CONFIG_INVALID', 'S3 credentials need both an access key id and a secret access key', {
        context: { key: 'target.connection.s3' },
        problems: [{ file: '', key: 'target.connection.s3', message: 'give both access_key_id and secret_access_key, or neither' }],
      });
    }
  }
  const config: S3ClientConfig = {
    region: settings?.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: settings?.forcePathStyle ?? false,
    // The SDK default (WHEN_SUPPORTED) sends streamed bodies aws-chunked with a
    // trailing checksum; s3rver and some S3-compatible stores store the chunk
    // framing as data (measured: 1,048,630 bytes stored for 1,048,576 sent).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: S3_MAX_ATTEMPTS,
    retryStrategy: s3RetryStrategy(),
    // A black-holed endpoint must fail, not hang; requestTimeout is a socket idle timeout.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  };
  if (settings?.endpoint !== undefined && settings.endpoint !== '') config.endpoint = settings.endpoint;
  if (settings?.accessKeyId !== undefined && settings.secretAccessKey !== undefined) {
    config.credentials = {
      accessKeyId: settings.accessKeyId,
      secretAccessKey: settings.secretAccessKey,
      ...(settings.sessionToken !== undefined ? { sessionToken: settings.sessionToken } : {}),
    };
  }
  return new S3Storage(bucket, prefix, quietClient(config));
}

const NODE_NOTICE_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * `new S3Client(config)` without the SDK's Node-version notice. On Node < 22
 * the SDK warns, once per process, that its releases published after the
 * first week of January 2027 will require Node 22. The releases we lock
 * (engines `>=20.0.0`, like every runtime dependency: see
 * test/lib/cli/quiet.test.ts) support Node 20 fully, so on every run the
 * notice is noise; it cannot be avoided by pinning (each client release
 * takes the newest `@aws-sdk/core`, which carries it). docs/cli.md states the
 * requirement. A user who sets the SDK's own switch decides.
 */
function quietClient(config: S3ClientConfig): S3Client {
  if (process.env[NODE_NOTICE_SWITCH] !== undefined) return new S3Client(config);
  process.env[NODE_NOTICE_SWITCH] = 'true';
  try {
    return new S3Client(config);
  } finally {
    delete process.env[NODE_NOTICE_SWITCH];
  }
}

// ---------------------------------------------------------------------------
// Error mapping

/** Which command failed, and for UploadPart which part: recorded by a client middleware. */
const commandOf = new WeakMap<object, { command: string; partNumber?: number }>();

const AUTH_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AuthorizationHeaderMalformed',
  'CredentialsProviderError',
]);


interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

/**
 * Turn anything an S3 call threw into a DativoError:
 * - 401/403, InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied, expired or
 *   missing credentials → AUTH_FAILED (fatal);
 * - NoSuchBucket, or 404 on HeadBucket → STORAGE_NOT_WRITABLE (fatal), context `bucket`;
 * - NoSuchKey, or 404 on an object → SOURCE_NOT_FOUND (fatal);
 * - 412 PreconditionFailed → STORAGE_IO (fatal), context `exists: true`;
 * - 5xx, 409 ConditionalRequestConflict, timeouts, connection errors → STORAGE_IO (retryable);
 * - other 4xx → STORAGE_IO (fatal); AbortError → ABORTED; anything else → {@link toDativoError}.
 * Context: `bucket`, `key`, `operation` (SDK command), `partNumber` (UploadPart), `status`, `s3Code`, `requestId`.
 */
export function mapS3Error(err: unknown, where: { bucket: string; key?: string; operation?: string }): DativoError {
  const seen = err !== null && typeof err === 'object' ? commandOf.get(err) : undefined;
  const context: ErrorContext = { bucket: where.bucket };
  if (where.key !== undefined) context.key = where.key;
  const operation = seen?.command.replace(/Command$/, '') ?? where.operation;
  if (operation !== undefined) context.operation = operation;
  if (seen?.partNumber !== undefined) context.partNumber = seen.partNumber;
  if (isDativoError(err)) return toDativoError(err, context);

  const e = (err ?? {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const s3Code = e.Code ?? (e.name !== undefined && e.name !== 'Error' && e.name !== 'Unknown' ? e.name : undefined);
  if (status !== undefined) context.status = status;
  if (s3Code !== undefined) context.s3Code = s3Code;
  if (e.$metadata?.requestId !== undefined) context.requestId = e.$metadata.requestId;
  const target = `s3://${where.bucket}${where.key !== undefined ? `/${where.key}` : ''}`;
  const what = `${s3Code ?? e.code ?? 'error'}${status !== undefined ? ` (HTTP ${status})` : ''}`;
  const detail = e.message !== undefined && e.message !== '' && e.message !== 'UnknownError' && e.message !== s3Code ? `: ${e.message}` : '';
  const opText = operation ?? 'request';
  const syscallCode = transientCodeOf(err);

  if (e.name === 'AbortError') return new DativoError('ABORTED', `S3 ${opText} of ${target} was aborted`, { cause: err, context });
  if (status === 401 || status === 403 || (s3Code !== undefined && AUTH_CODES.has(s3Code))) {
    return new DativoError(
      'AUTH_FAILED',
      `S3 refused the credentials for ${target} (${what}${detail}): check the access key id and secret key, or the bucket policy`,
      { cause: err, context },
    );
  }
  if (s3Code === 'NoSuchBucket' || (status === 404 && operation === 'HeadBucket')) {
    return new DativoError('STORAGE_NOT_WRITABLE', `S3 bucket "${where.bucket}" does not exist (${what})`, { cause: err, context });
  }
  if (s3Code === 'NoSuchKey' || s3Code === 'NotFound' || status === 404) {
    return new DativoError('SOURCE_NOT_FOUND', `no such object: ${target} (${what})`, { cause: err, context });
  }
  if (status === 412 || s3Code === 'PreconditionFailed') {
    context.exists = true;
    return new DativoError('STORAGE_IO', `object already exists: ${target}`, { cause: err, disposition: 'fatal', context });
  }
  if (
    (status !== undefined && status >= 500) ||
    status === 409 ||
    status === 408 ||
    status === 429 ||
    e.$fault === 'server' ||
    e.name === 'TimeoutError' ||
    s3Code === 'RequestTimeout' ||
    syscallCode !== undefined
  ) {
    if (syscallCode !== undefined) context.syscallCode = syscallCode;
    return new DativoError('STORAGE_IO', `S3 ${opText} of ${target} failed: ${what}${detail}`, {
      cause: err,
      disposition: 'retryable',
      context,
    });
  }
  if (status !== undefined && status >= 400) {
    return new DativoError('STORAGE_IO', `S3 ${opText} of ${target} failed: ${what}${detail}`, { cause: err, disposition: 'fatal', context });
  }
  return toDativoError(err, context);
}

// ---------------------------------------------------------------------------
// Metadata

/**
 * An S3 user-metadata value made US-ASCII-safe: printable ASCII is kept as is;
 * a value with any other character is percent-encoded as a whole
 * (`encodeURIComponent`), since S3 metadata travels in HTTP headers.
 */
export function asciiSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

/** Lower-cased keys and ASCII-safe values (S3 user metadata). */
function cleanMetadata(metadata: Record<string, string> | undefined): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) out[k.toLowerCase()] = asciiSafe(v);
  return out;
}

/** Content type from the file extension; default `application/octet-stream`. */
export function contentTypeFor(path: string): string {
  if (path.endsWith('.parquet')) return 'application/x-parquet';
  if (path.endsWith('.json')) return 'application/json';
  if (path.endsWith('.avro')) return 'avro/binary';
  if (path.endsWith('.ndjson')) return 'application/x-ndjson';
  return 'application/octet-stream';
}

export interface ObjectMetadataInput {
  asset: Asset;
  /** The job's tenant (the Python tool took the asset's `tenant` field; they normally agree). */
  tenantId: string;
  runId: string;
  /**
   * Rows in the file. Omit for streamed data files: lib-storage sends the
   * metadata with CreateMultipartUpload, before the rows are known, and S3
   * metadata cannot be changed afterwards without copying the object.
   * The row count lives in the Iceberg manifest (and DataFile) instead.
   */
  recordCount?: number;
  /** File size in bytes; same caveat as `recordCount`. */
  fileSizeBytes?: number;
  /** Hive-style partition path, e.g. `ingest_date=2025-11-30`. */
  partition: string;
  /** Iceberg branch; default `main`. */
  branch?: string;
  /** Default `zstd`. */
  compression?: string;
  /** Ingest timestamp; default now. */
  now?: Date;
}

function pick(raw: Record<string, unknown>, ...path: string[]): unknown {
  let v: unknown = raw;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function textOf(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(String).join(',');
  return String(v);
}

/**
 * S3 user metadata (`x-amz-meta-*`, keys without the prefix) as the Python
 * dativo-ingest wrote it: `asset-name`, `asset-version`, `asset-domain`,
 * `data-product`, `tenant-id`, `branch`, `owner`, `retention-days`,
 * `classification` (comma-joined), `record-count`, `file-size-bytes`,
 * `partition`, `ingest-timestamp` (UTC ISO-8601 with `Z`), `file-format=parquet`,
 * `compression` (here `zstd`), plus `run-id`. Keys whose value is unknown are
 * left out; values are made ASCII-safe with {@link asciiSafe}.
 * Owner comes from `team.owner` (or legacy `governance.owner`), retention from
 * `compliance.retention_days` (or `governance.retention_days`), classification
 * from `compliance.classification` (or `governance.classification`).
 */
export function s3ObjectMetadata(input: ObjectMetadataInput): Record<string, string> {
  const { asset } = input;
  const raw = asset.raw;
  const legacy = (k: string): unknown => pick(raw, 'governance', k) ?? pick(raw, 'asset', 'governance', k);
  const entries: [string, unknown][] = [
    ['asset-name', asset.name],
    ['asset-version', asset.version],
    ['asset-domain', asset.domain],
    ['data-product', asset.dataProduct],
    ['tenant-id', input.tenantId],
    ['branch', input.branch ?? 'main'],
    ['owner', pick(raw, 'team', 'owner') ?? legacy('owner')],
    ['retention-days', pick(raw, 'compliance', 'retention_days') ?? legacy('retention_days')],
    ['classification', pick(raw, 'compliance', 'classification') ?? legacy('classification')],
    ['record-count', input.recordCount],
    ['file-size-bytes', input.fileSizeBytes],
    ['partition', input.partition],
    ['ingest-timestamp', (input.now ?? new Date()).toISOString()],
    ['file-format', 'parquet'],
    ['compression', input.compression ?? 'zstd'],
    ['run-id', input.runId],
  ];
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    const t = textOf(v);
    if (t !== undefined) out[k] = asciiSafe(t);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Tracking of in-flight requests per key

/**
 * The requests in flight for one key being streamed. An abort must wait for
 * them: lib-storage does not pass its abort signal to requests already sent,
 * so a part, a PutObject or a CompleteMultipartUpload may still land after it.
 */
class KeyTracker {
  readonly inFlight = new Set<Promise<unknown>>();
  uploadId: string | undefined;
  /** An object-creating request (PutObject, CompleteMultipartUpload) succeeded. */
  created = false;

  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}

// ---------------------------------------------------------------------------
// Storage

/** {@link Storage} on one S3 bucket and key prefix, with one S3Client. */
export class S3Storage implements Storage {
  readonly root: string;
  readonly bucket: string;
  /** Key prefix without leading or trailing slash ('' for the bucket root). */
  readonly prefix: string;
  readonly client: S3Client;
  /** @internal */
  readonly trackers = new Map<string, KeyTracker>();

  constructor(bucket: string, prefix: string, client: S3Client) {
    this.bucket = bucket;
    this.prefix = prefix;
    this.client = client;
    this.root = `s3://${bucket}${prefix !== '' ? `/${prefix}` : ''}`;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: unknown; PartNumber?: unknown };
        const command = context.commandName ?? 'request';
        const tracker = typeof input.Key === 'string' ? this.trackers.get(input.Key) : undefined;
        const pending = next(args);
        tracker?.inFlight.add(pending);
        try {
          const result = await pending;
          if (tracker !== undefined) {
            if (command === 'CreateMultipartUploadCommand') {
              const id = (result.output as { UploadId?: unknown }).UploadId;
              if (typeof id === 'string') tracker.uploadId = id;
            }
            if (command === 'PutObjectCommand' || command === 'CompleteMultipartUploadCommand') tracker.created = true;
          }
          return result;
        } catch (err) {
          if (err !== null && typeof err === 'object' && !commandOf.has(err)) {
            commandOf.set(err, { command, ...(typeof input.PartNumber === 'number' ? { partNumber: input.PartNumber } : {}) });
          }
          throw err;
        } finally {
          tracker?.inFlight.delete(pending);
        }
      },
      { step: 'initialize', name: 'dativoRequestTracking' },
    );
  }

  /** The S3 key of a path relative to the root. Refuses empty, absolute and `.`/`..` paths (INTERNAL: a bug). */
  key(relativePath: string): string {
    const segments = relativePath.split('/');
    if (relativePath === '' || relativePath.startsWith('/') || segments.some((s) => s === '.' || s === '..' || s === '')) {
      throw new DativoError('INTERNAL', `invalid storage path: ${JSON.stringify(relativePath)}`, {
        context: { path: relativePath, root: this.root },
      });
    }
    return this.prefix === '' ? relativePath : `${this.prefix}/${relativePath}`;
  }

  uri(relativePath: string): string {
    return `s3://${this.bucket}/${this.key(relativePath)}`;
  }

  /**
   * Stream an object with a multipart upload (parts of {@link PART_SIZE},
   * {@link QUEUE_SIZE} in flight). The upload is completed only by `done()`;
   * a handle must end with `done()` or `abort()`. Content type defaults from
   * the extension ({@link contentTypeFor}); metadata values are made ASCII-safe.
   */
  createWriteStream(relativePath: string, options: WriteOptions = {}): WriteHandle {
    const key = this.key(relativePath);
    if (this.trackers.has(key)) {
      throw new DativoError('INTERNAL', `an upload to ${this.uri(relativePath)} is already open`, { context: { bucket: this.bucket, key } });
    }
    const tracker = new KeyTracker();
    this.trackers.set(key, tracker);
    return new S3WriteHandle(this, key, tracker, options, () => {
      if (this.trackers.get(key) === tracker) this.trackers.delete(key);
    });
  }

  /**
   * One PutObject (atomic in S3: readers see the old object or the new one).
   * With `ifNotExists`: HeadObject first, then PutObject with `If-None-Match: *`.
   * On S3 (and stores with conditional writes) the condition makes it a true
   * create-if-absent: of two racing writers exactly one wins, the other gets
   * STORAGE_IO with `context.exists`. On stores that ignore the header
   * (s3rver 3.7.1, older S3-compatibles) only the HeadObject check remains, and
   * two writers racing between their HeadObject and PutObject can both succeed,
   * the later overwriting the earlier.
   */
  async writeAtomic(relativePath: string, data: Uint8Array | string, options: WriteOptions & { ifNotExists?: boolean } = {}): Promise<void> {
    const key = this.key(relativePath);
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const signal = options.signal;
    try {
      signal?.throwIfAborted();
      if (options.ifNotExists === true && (await this.headObject(key, signal))) {
        throw new DativoError('STORAGE_IO', `object already exists: s3://${this.bucket}/${key}`, {
          disposition: 'fatal',
          context: { bucket: this.bucket, key, exists: true },
        });
      }
      const metadata = cleanMetadata(options.metadata);
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: body.byteLength,
          ContentType: options.contentType ?? contentTypeFor(key),
          ...(metadata !== undefined ? { Metadata: metadata } : {}),
          ...(options.ifNotExists === true ? { IfNoneMatch: '*' } : {}),
        }),
        signal !== undefined ? { abortSignal: signal } : {},
      );
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, key, operation: 'PutObject' });
    }
  }

  /** The whole object. Missing → SOURCE_NOT_FOUND. */
  async read(relativePath: string): Promise<Buffer> {
    const key = this.key(relativePath);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (out.Body === undefined) return Buffer.alloc(0);
      const bytes = await out.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, key, operation: 'GetObject' });
    }
  }

  /** HeadObject; 404 → false. */
  async exists(relativePath: string): Promise<boolean> {
    const key = this.key(relativePath);
    try {
      return await this.headObject(key);
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, key, operation: 'HeadObject' });
    }
  }

  private async headObject(key: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), signal !== undefined ? { abortSignal: signal } : {});
      return true;
    } catch (err) {
      const e = err as SdkErrorShape;
      if (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket') return false;
      throw err;
    }
  }

  /**
   * Relative paths of every object whose path starts with `prefix` (S3
   * semantics: `a/b` matches `a/b/c` and `a/bc`), in S3's (UTF-8 byte) order.
   * Follows ListObjectsV2 continuation tokens; a repeated token is an error.
   */
  async list(prefix: string): Promise<string[]> {
    return (await this.listDetailed(prefix)).map((o) => o.path);
  }

  /** {@link Storage.listDetailed}: ListObjectsV2 with Size and LastModified (there are no in-progress objects on S3). */
  async listDetailed(prefix: string): Promise<StoredObject[]> {
    const base = this.prefix === '' ? '' : `${this.prefix}/`;
    const fullPrefix = base + prefix.replace(/^\/+/, '');
    const out: StoredObject[] = [];
    const seen = new Set<string>();
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: fullPrefix, ...(token !== undefined ? { ContinuationToken: token } : {}) }),
        );
        for (const o of page.Contents ?? []) {
          if (o.Key !== undefined && o.Key.startsWith(base)) out.push({ path: o.Key.slice(base.length), size: o.Size ?? 0, modifiedAt: o.LastModified ?? new Date(0) });
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
        if (token !== undefined) {
          if (seen.has(token)) {
            throw new DativoError('STORAGE_IO', `S3 listing of s3://${this.bucket}/${fullPrefix} returned the same continuation token twice`, {
              disposition: 'fatal',
              context: { bucket: this.bucket, key: fullPrefix, page: token },
            });
          }
          seen.add(token);
        }
      } while (token !== undefined);
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, key: fullPrefix, operation: 'ListObjectsV2' });
    }
    return out;
  }

  /** DeleteObject (no error when absent). */
  async delete(relativePath: string): Promise<void> {
    const key = this.key(relativePath);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, key, operation: 'DeleteObject' });
    }
  }

  /**
   * HeadBucket, then put and delete a probe object under the prefix.
   * Refused credentials → AUTH_FAILED; missing bucket → STORAGE_NOT_WRITABLE
   * (context `bucket`); endpoint down or 5xx → STORAGE_IO (retryable).
   */
  async checkWritable(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, operation: 'HeadBucket' });
    }
    const probe = this.key(`.dativo-probe-${randomUUID()}`);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: Buffer.alloc(0), ContentLength: 0 }));
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: probe }));
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket, key: probe });
    }
  }

  /** Release the client's sockets. The storage is unusable afterwards. */
  close(): void {
    this.client.destroy();
  }
}

// ---------------------------------------------------------------------------
// Streaming writes

type Outcome = { ok: true } | { ok: false; error: DativoError };

/**
 * A multipart upload fed by a Writable. `stream` counts bytes and passes them
 * to the upload's body (a Readable that asks for more only when lib-storage
 * reads), so a slow S3 slows the writer down instead of filling memory. The
 * body is ended only by `done()`, so nothing is completed before that.
 */
class S3WriteHandle implements WriteHandle {
  readonly stream: Writable;
  private readonly body: Readable;
  private readonly upload: Upload;
  private readonly outcome: Promise<Outcome>;
  private pendingWrite: ((error?: Error | null) => void) | undefined;
  private bytes = 0;
  private finalled = false;
  private state: 'open' | 'done' | 'aborted' | 'failed' = 'open';
  private failure: DativoError | undefined;
  private donePromise: Promise<{ uri: string; size: number }> | undefined;
  private abortPromise: Promise<void> | undefined;
  private readonly onAbort: (() => void) | undefined;
  private readonly uri: string;

  constructor(
    private readonly storage: S3Storage,
    private readonly key: string,
    private readonly tracker: KeyTracker,
    private readonly options: WriteOptions,
    private readonly release: () => void,
  ) {
    this.uri = `s3://${storage.bucket}/${key}`;
    this.body = new Readable({
      read: () => {
        const cb = this.pendingWrite;
        this.pendingWrite = undefined;
        cb?.();
      },
    });
    this.stream = new Writable({
      write: (chunk: Buffer, _encoding, cb) => this.write(chunk, cb),
      final: (cb) => {
        this.finalled = true;
        cb();
      },
      destroy: (error, cb) => {
        // Destroyed before done(): the writer gave up (or failed); never complete a truncated object.
        if (!this.finalled && this.state === 'open') this.body.destroy(error ?? abortError('write stream destroyed before it was ended'));
        cb(error);
      },
    });
    // Nobody may be listening yet; the error is surfaced through done().
    this.stream.on('error', () => {});
    const metadata = cleanMetadata(options.metadata);
    this.upload = new Upload({
      client: storage.client,
      params: {
        Bucket: storage.bucket,
        Key: key,
        Body: this.body,
        ContentType: options.contentType ?? contentTypeFor(key),
        ...(metadata !== undefined ? { Metadata: metadata } : {}),
      },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      // We abort the multipart upload ourselves (see cleanup): lib-storage's own
      // abort replaces the real error with the abort's when that fails (s3rver
      // answers 405), and it does not wait for parts still in flight.
      leavePartsOnError: true,
    });
    this.outcome = this.upload.done().then(
      (): Outcome => {
        this.state = 'done';
        this.finish();
        return { ok: true };
      },
      async (err: unknown): Promise<Outcome> => {
        const error =
          this.state === 'aborted' && this.failure !== undefined ? this.failure : mapS3Error(err, { bucket: storage.bucket, key });
        if (this.state === 'open') this.state = 'failed';
        this.failure ??= error;
        const cb = this.pendingWrite;
        this.pendingWrite = undefined;
        cb?.(error);
        this.stream.destroy(error);
        await this.cleanup(error);
        this.finish();
        return { ok: false, error };
      },
    );
    const signal = options.signal;
    if (signal !== undefined) {
      this.onAbort = () => void this.abort(signal.reason);
      if (signal.aborted) queueMicrotask(this.onAbort);
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  private write(chunk: Buffer, cb: (error?: Error | null) => void): void {
    if (this.failure !== undefined) {
      cb(this.failure);
      return;
    }
    this.bytes += chunk.byteLength;
    if (this.body.push(chunk)) cb();
    else this.pendingWrite = cb;
  }

  /** After a failure or an abort: let in-flight requests land, then abort the multipart upload and remove anything completed. */
  private async cleanup(error: DativoError): Promise<void> {
    const { client, bucket } = this.storage;
    await this.tracker.settled();
    const problems: string[] = [];
    if (this.tracker.uploadId !== undefined) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: this.key, UploadId: this.tracker.uploadId }));
      } catch (err) {
        // Parts left behind are invisible and billed until a lifecycle rule
        // (AbortIncompleteMultipartUpload) removes them; not worth failing over.
        problems.push(`AbortMultipartUpload: ${mapS3Error(err, { bucket, key: this.key }).message}`);
      }
    }
    if (this.tracker.created) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.key }));
      } catch (err) {
        problems.push(`DeleteObject: ${mapS3Error(err, { bucket, key: this.key }).message}`);
      }
    }
    if (problems.length > 0) error.context.cleanup = problems;
  }

  private finish(): void {
    if (this.onAbort !== undefined) this.options.signal?.removeEventListener('abort', this.onAbort);
    this.release();
  }

  done(): Promise<{ uri: string; size: number }> {
    this.donePromise ??= this.complete();
    return this.donePromise;
  }

  private async complete(): Promise<{ uri: string; size: number }> {
    if (this.state === 'aborted' || this.state === 'failed') {
      const o = await this.outcome;
      throw o.ok ? abortDativo(this.key, this.storage.bucket) : o.error;
    }
    if (!this.stream.writableEnded) this.stream.end();
    try {
      await finished(this.stream);
    } catch {
      // The outcome below says why (the stream's error is the upload's, or it was destroyed → aborted).
    }
    if (this.finalled && this.state === 'open') this.body.push(null);
    const o = await this.outcome;
    if (!o.ok) throw o.error;
    return { uri: this.uri, size: this.bytes };
  }

  abort(reason?: unknown): Promise<void> {
    if (this.state === 'done') return Promise.resolve();
    this.abortPromise ??= (async () => {
      if (this.state === 'open') {
        this.state = 'aborted';
        this.failure = abortDativo(this.key, this.storage.bucket, reason);
        void this.upload.abort();
        this.body.destroy();
        this.stream.destroy(this.failure);
      }
      await this.outcome;
    })();
    return this.abortPromise;
  }
}

function abortError(message: string): Error {
  const e = new Error(message);
  e.name = 'AbortError';
  return e;
}

function abortDativo(key: string, bucket: string, reason?: unknown): DativoError {
  return new DativoError('ABORTED', `upload to s3://${bucket}/${key} was aborted`, {
    ...(reason !== undefined ? { cause: reason } : {}),
    context: { bucket, key },
  });
}
