/**
 * s3rver on loopback for tests, with a small HTTP proxy in front of it.
 *
 * Clients talk to the proxy (`endpoint`); it forwards everything to s3rver
 * unchanged and records each request. A test can install a fault hook that
 * answers a request itself (an S3 error body, a 500, a dropped connection)
 * instead of forwarding it, and can switch on an emulation of S3 conditional
 * writes (`If-None-Match: *` on PUT), which s3rver 3.7.1 ignores.
 *
 * What s3rver 3.7.1 does and does not do (measured, see the s3 storage tests):
 * - it rejects an unknown access key id with 403 InvalidAccessKeyId, but does
 *   not verify SigV4 signatures: a wrong secret key is accepted;
 * - HeadBucket on a missing bucket → 404 without body; PutObject → NoSuchBucket;
 * - AbortMultipartUpload (DELETE ?uploadId) → 405 MethodNotAllowed, so parts of
 *   an aborted upload stay in `<bucket>/._S3rver_uploads/` (never visible as an object);
 * - `If-None-Match: *` on PUT is ignored (the second PUT overwrites);
 * - ListObjectsV2 answers 500 whenever a listing is truncated (more than
 *   max-keys): it encrypts its continuation token with DES, which OpenSSL 3
 *   (Node >= 17) refuses without `--openssl-legacy-provider`. The proxy
 *   therefore serves ListObjectsV2 from s3rver's ListObjects (V1, paged by
 *   marker), with the last key of a page, base64-encoded, as continuation token.
 */
import { createServer, request as httpRequest, Agent, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The slice of s3rver's (untyped) API that we use. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: {
  port: number;
  address: string;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

const require = createRequire(import.meta.url);

/** A request as the proxy saw it. */
export interface ProxiedRequest {
  method: string;
  /** Path without the query, e.g. `/bucket/a/b.parquet` (still URL-encoded). */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

/** A request the proxy has answered, with the status it sent. */
export interface RecordedRequest extends ProxiedRequest {
  status: number;
  /** True when a fault hook (or the conditional-write emulation) answered instead of s3rver. */
  injected: boolean;
}

/** What a fault hook answers instead of forwarding. */
export type Fault =
  | { status: number; body?: string; headers?: Record<string, string> }
  /** Close the socket without an answer (a network error for the client). */
  | { drop: true }
  /** Forward to s3rver, but only after this many milliseconds. */
  | { delayMs: number };

/** Called for every request before it is forwarded; return a Fault to answer it instead. */
export type FaultHook = (req: ProxiedRequest) => Fault | undefined;

export interface S3rverOptions {
  /** Buckets to create at start. */
  buckets: string[];
  /** Initial fault hook (may be replaced with `setFaults`). */
  faults?: FaultHook;
  /**
   * Emulate S3 conditional writes in the proxy: a PUT (not a part upload)
   * with `If-None-Match: *` is serialised per key, and answered 412
   * PreconditionFailed (S3's body) if the key exists in s3rver. Default false.
   */
  conditionalWrites?: boolean;
}

export interface S3rverHandle {
  /** `http://127.0.0.1:<port>` of the proxy. */
  endpoint: string;
  port: number;
  /** s3rver's data directory (removed on close). */
  directory: string;
  /** Every request answered so far, in order of answer. */
  requests: RecordedRequest[];
  setFaults(hook: FaultHook | undefined): void;
  /**
   * Create objects by writing s3rver's on-disk layout directly (POSIX only):
   * thousands of objects in well under a second, where PUTs take seconds.
   * For test setup only; the objects are then served by s3rver as usual.
   */
  seed(bucket: string, objects: Record<string, string | Buffer>): Promise<void>;
  close(): Promise<void>;
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** An S3 error response body, as S3 sends it. */
export function s3ErrorXml(code: string, message: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message>` +
    '<RequestId>4442587FB7D0A2F9</RequestId><HostId>dGVzdA==</HostId></Error>'
  );
}

/** A Fault carrying an S3 error body. */
export function s3Error(status: number, code: string, message: string): Extract<Fault, { status: number }> {
  return { status, body: s3ErrorXml(code, message), headers: { 'content-type': 'application/xml' } };
}

/**
 * A hook that answers 500 InternalError to the first `times` attempts of
 * UploadPart number `partNumber` (default: every attempt), for any upload.
 */
export function failUploadPart(partNumber: number, times = Number.POSITIVE_INFINITY): FaultHook {
  let failed = 0;
  return (req) => {
    if (req.method !== 'PUT' || req.query.get('partNumber') !== String(partNumber)) return undefined;
    if (failed >= times) return undefined;
    failed += 1;
    return s3Error(500, 'InternalError', 'We encountered an internal error. Please try again.');
  };
}

/** Start s3rver and its proxy on free loopback ports, silently, in a fresh temp directory. */
export async function startS3rver(options: S3rverOptions): Promise<S3rverHandle> {
  const S3rver = require('s3rver') as S3rverCtor;
  const directory = await mkdtemp(join(tmpdir(), 'dativo-s3rver-'));
  const s3rver = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  const upstream = await s3rver.run();
  const agent = new Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];
  let faults = options.faults;
  const keyLocks = new Map<string, Promise<void>>();

  const forward = (req: IncomingMessage, res: ServerResponse, info: ProxiedRequest): Promise<void> =>
    new Promise((resolve) => {
      const up = httpRequest(
        { host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
          upRes.on('end', () => {
            requests.push({ ...info, status: upRes.statusCode ?? 502, injected: false });
            resolve();
          });
          upRes.on('error', () => {
            res.destroy();
            resolve();
          });
        },
      );
      up.on('error', () => {
        res.destroy();
        resolve();
      });
      req.pipe(up);
    });

  const answer = async (
    req: IncomingMessage,
    res: ServerResponse,
    info: ProxiedRequest,
    fault: Exclude<Fault, { delayMs: number }>,
  ): Promise<void> => {
    // Read the request body first, so the client sees the answer, not a reset.
    for await (const _ of req) void _;
    if ('drop' in fault) {
      req.socket.destroy();
    } else {
      res.writeHead(fault.status, { connection: 'close', ...(fault.headers ?? {}) });
      res.end(fault.body ?? '');
    }
    requests.push({ ...info, status: 'drop' in fault ? 0 : fault.status, injected: true });
  };

  const headUpstream = (path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const r = httpRequest({ host: '127.0.0.1', port: upstream.port, method: 'HEAD', path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      r.on('error', reject);
      r.end();
    });

  /** ListObjectsV2 through s3rver's V1 listing (see the module comment). */
  const listV2 = (req: IncomingMessage, res: ServerResponse, info: ProxiedRequest): void => {
    const q = info.query;
    const v1 = new URLSearchParams();
    for (const name of ['prefix', 'delimiter', 'max-keys']) {
      const v = q.get(name);
      if (v !== null) v1.set(name, v);
    }
    const token = q.get('continuation-token');
    const marker = token !== null ? Buffer.from(token, 'base64').toString('utf8') : q.get('start-after');
    if (marker !== null && marker !== '') v1.set('marker', marker);
    const up = httpRequest(
      { host: '127.0.0.1', port: upstream.port, method: 'GET', path: `${info.path}?${v1.toString()}`, headers: req.headers, agent },
      (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          let body = Buffer.concat(chunks).toString('utf8');
          const status = upRes.statusCode ?? 502;
          if (status === 200) {
            const keys = [...body.matchAll(/<Contents><Key>([^<]*)<\/Key>/g)].map((m) => unescapeXml(m[1] ?? ''));
            const truncated = body.includes('<IsTruncated>true</IsTruncated>');
            const last = keys[keys.length - 1];
            const extra =
              `<KeyCount>${keys.length}</KeyCount>` +
              (token !== null ? `<ContinuationToken>${token}</ContinuationToken>` : '') +
              (truncated && last !== undefined ? `<NextContinuationToken>${Buffer.from(last, 'utf8').toString('base64')}</NextContinuationToken>` : '');
            body = body.replace(/<Marker>[^<]*<\/Marker>/, '').replace('<IsTruncated>', `${extra}<IsTruncated>`);
          }
          const headers = { ...upRes.headers, 'content-length': String(Buffer.byteLength(body)) };
          res.writeHead(status, headers);
          res.end(body);
          requests.push({ ...info, status, injected: false });
        });
      },
    );
    up.on('error', () => res.destroy());
    up.end();
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const info: ProxiedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers };
    const fault = faults?.(info);
    if (fault !== undefined && 'delayMs' in fault) {
      setTimeout(() => void forward(req, res, info), fault.delayMs);
      return;
    }
    if (fault !== undefined) {
      void answer(req, res, info, fault);
      return;
    }
    if (info.method === 'GET' && info.query.get('list-type') === '2' && /^\/[^/]+\/?$/.test(info.path)) {
      req.resume();
      listV2(req, res, info);
      return;
    }
    const conditional =
      options.conditionalWrites === true &&
      info.method === 'PUT' &&
      req.headers['if-none-match'] === '*' &&
      !info.query.has('partNumber') &&
      !info.query.has('uploadId');
    if (!conditional) {
      void forward(req, res, info);
      return;
    }
    // One conditional PUT per key at a time: check, then write, then let the next one check.
    const prev = keyLocks.get(info.path) ?? Promise.resolve();
    const mine = prev.then(async () => {
      const status = await headUpstream(info.path);
      if (status === 200) {
        await answer(req, res, info, s3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'));
      } else {
        await forward(req, res, info);
      }
    });
    keyLocks.set(
      info.path,
      mine.catch(() => undefined),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  let closed = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    directory,
    requests,
    setFaults(hook) {
      faults = hook;
    },
    async seed(bucket, objects) {
      for (const [key, content] of Object.entries(objects)) {
        // s3rver stores key `a/b/c` as `<dir>/<bucket>/a/b/c._S3rver_object`, its MD5 next to it.
        const objectPath = join(directory, bucket, `${key}._S3rver_object`);
        await mkdir(dirname(objectPath), { recursive: true });
        await writeFile(objectPath, content);
        await writeFile(`${objectPath}.md5`, createHash('md5').update(content).digest('hex'));
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      agent.destroy();
      await s3rver.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
