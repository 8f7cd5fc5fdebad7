/**
 * Iceberg REST catalog client (the `rest` catalog type): the {@link Catalog}
 * contract over the Iceberg REST catalog protocol (open-api
 * `rest-catalog-open-api.yaml`), with the global `fetch`.
 *
 * The server owns table metadata: `commit()` sends the writer's requirements
 * and updates and the server builds, writes and swaps the metadata file.
 * Bodies go through a lossless JSON codec because snapshot ids are 63-bit.
 *
 * Status mapping (gotcha 6: a 409 and a 5xx are different things):
 * - 409 on commit → COMMIT_CONFLICT: definitely not committed, reload and retry.
 * - 500/502/503/504, any other 5xx, a network error or a timeout on commit →
 *   CATALOG_UNAVAILABLE with `context.outcome = 'unknown'`: the change may have
 *   landed; the caller reloads and looks for its snapshot before retrying.
 * - 401/403 → AUTH_FAILED; 404 on commit → CATALOG_INVALID (table dropped).
 * - reads: 5xx, network errors, timeouts → CATALOG_UNAVAILABLE.
 *
 * Nessie serves this API under `<nessie>/iceberg`; its `/v1/config` answers
 * the branch as the `prefix` default and its own base URI as the `uri`
 * override, which is how `…/iceberg/<branch>` URIs select a branch.
 */
import { randomBytes } from 'node:crypto';
import { DativoError, isDativoError, transientCodeOf, type ErrorContext } from '../errors.js';
import { displayUri, type Logger } from '../log.js';
import { Paginator } from '../paginate.js';
import { definePolicy, parseRetryAfter, retry, type RetryPolicy } from '../retry.js';
import type { CatalogSpec } from '../plan.js';
import type { Storage } from '../storage/types.js';
import type {
  Catalog,
  CommitRequest,
  CreateTableRequest,
  LoadedTable,
  TableIdent,
  TableMetadata,
} from './catalog.js';
import { parseJson, stringifyJson } from './json.js';

/** The `rest` member of the job's catalog spec. */
export type RestCatalogSpec = Extract<CatalogSpec, { type: 'rest' }>;

/** Options of {@link createRestCatalog} that are not part of the job file. */
export interface RestCatalogOptions {
  /** Timeout of each HTTP request (headers and body), in ms. Default 30 000. */
  timeoutMs?: number;
  /** Debug log of each request: method, path, status, duration. Never headers. Default: no logging. */
  log?: Logger;
  /** The fetch implementation. Default: the global `fetch` (undici). */
  fetch?: typeof fetch;
  /**
   * When the server advertises `idempotency-key-lifetime`, a commit whose
   * outcome is unknown (5xx, network error, timeout) is re-sent with the same
   * `Idempotency-Key` under this policy; the server replays the original
   * answer if it had finished it. Default {@link REST_IDEMPOTENT_RETRY}
   * (3 attempts, backoff up to 250 ms then up to 1 s).
   */
  idempotentRetry?: Partial<RetryPolicy>;
}

/** Re-sends of a commit with an unknown outcome under its Idempotency-Key. */
export const REST_IDEMPOTENT_RETRY: RetryPolicy = definePolicy({ maxAttempts: 3, minDelayMs: 250, maxDelayMs: 1000, factor: 4, maxElapsedMs: 30_000 });

/** Default per-request timeout. */
export const DEFAULT_REST_TIMEOUT_MS = 30_000;

/** Iceberg REST namespace separator in paths (0x1F, the unit separator). */
const NAMESPACE_SEPARATOR = '\u001f';

/**
 * Connect to an Iceberg REST catalog: fetches `GET /v1/config?warehouse=`,
 * merges `defaults` → the job's settings → `overrides` (so an explicit
 * `prefix` beats the server default and loses to a server override, as in the
 * Java and Python clients) and returns a ready {@link Catalog}.
 *
 * `storage` is accepted so every catalog factory has the same signature; a
 * REST catalog does not need it, because the server writes metadata files.
 *
 * Throws AUTH_FAILED (401/403), CATALOG_UNAVAILABLE (unreachable, 5xx,
 * timeout) or CATALOG_INVALID (no REST catalog at `uri`).
 */
export async function createRestCatalog(
  spec: RestCatalogSpec,
  storage?: Storage,
  options: RestCatalogOptions = {},
): Promise<Catalog & RestCatalogInfo> {
  void storage;
  const catalog = new RestCatalog(spec, options);
  await catalog.init();
  return catalog;
}

/** What the client learned from `/v1/config`; exposed for diagnostics and tests. */
export interface RestCatalogInfo {
  /** Base URI used for requests (the server's `uri` override, else the job's). No trailing slash. */
  readonly baseUri: string;
  /** Effective path prefix (already URL-encoded), or undefined when none. */
  readonly prefix: string | undefined;
  /** Merged configuration: defaults, then the job's settings, then overrides. */
  readonly config: Readonly<Record<string, string>>;
  /** The server's `idempotency-key-lifetime` (ISO-8601 duration), when it supports Idempotency-Key. */
  readonly idempotencyKeyLifetime: string | undefined;
}

interface HttpResult {
  status: number;
  text: string;
  headers: Headers;
}

/** Why an HTTP exchange produced no status. */
type TransportFailure = { kind: 'timeout' | 'network' | 'aborted'; cause: unknown; syscallCode?: string };

class TransportError extends Error {
  constructor(readonly failure: TransportFailure) {
    super(describeTransport(failure));
  }
}

function describeTransport(f: TransportFailure): string {
  if (f.kind === 'timeout') return 'request timed out';
  if (f.kind === 'aborted') return 'request aborted (catalog closed)';
  const c = f.cause as { message?: string; cause?: { message?: string } } | undefined;
  const inner = c?.cause?.message ?? c?.message ?? String(f.cause);
  return `network error: ${f.syscallCode ? `${f.syscallCode} ` : ''}${inner}`;
}

class RestCatalog implements Catalog, RestCatalogInfo {
  readonly type = 'rest';
  readonly name: string;
  baseUri: string;
  prefix: string | undefined;
  config: Readonly<Record<string, string>> = {};
  idempotencyKeyLifetime: string | undefined;

  private readonly spec: RestCatalogSpec;
  private readonly timeoutMs: number;
  private readonly log: Logger | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly idempotentRetry: RetryPolicy;
  private readonly closer = new AbortController();
  private closed = false;

  constructor(spec: RestCatalogSpec, options: RestCatalogOptions) {
    this.spec = spec;
    this.name = spec.name;
    this.baseUri = stripSlash(spec.uri);
    this.prefix = undefined;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REST_TIMEOUT_MS;
    this.log = options.log;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.idempotentRetry = definePolicy(options.idempotentRetry ?? {}, REST_IDEMPOTENT_RETRY);
  }

  async init(): Promise<void> {
    const query = this.spec.warehouse ? `?warehouse=${encodeURIComponent(this.spec.warehouse)}` : '';
    const ctx: ErrorContext = { operation: 'config' };
    const res = await this.send('GET', `${this.baseUri}/v1/config${query}`, undefined, ctx);
    if (res.status !== 200) {
      if (res.status === 404) {
        throw new DativoError('CATALOG_INVALID', `${this.who()}: no Iceberg REST catalog at ${displayUri(this.spec.uri)} (GET /v1/config answered 404)`, {
          context: this.ctx(ctx, res),
        });
      }
      throw this.readError('config', res, ctx);
    }
    const body = this.parseBody(res, ctx);
    const defaults = stringMap(getField(body, 'defaults'));
    const overrides = stringMap(getField(body, 'overrides'));
    const client: Record<string, string> = { uri: this.spec.uri };
    if (this.spec.prefix !== undefined) client.prefix = this.spec.prefix;
    if (this.spec.warehouse !== undefined) client.warehouse = this.spec.warehouse;
    const merged = { ...defaults, ...client, ...overrides };
    this.config = Object.freeze(merged);
    const lifetime = getField(body, 'idempotency-key-lifetime');
    this.idempotencyKeyLifetime = typeof lifetime === 'string' && lifetime !== '' ? lifetime : undefined;
    // Nessie answers its Iceberg base URI as an override; following it is what
    // makes a `…/iceberg/<branch>` URI work (the branch comes back as prefix).
    this.baseUri = stripSlash(new URL(merged.uri ?? this.spec.uri, `${this.spec.uri}/`).toString());
    let prefix = merged.prefix?.replace(/^\/+|\/+$/g, '');
    // Nessie decodes the prefix as `<ref>|<warehouse>`. A job that names both a
    // branch (as prefix) and a warehouse means both; a bare branch would make
    // Nessie fall back to its default warehouse.
    if (
      merged['nessie.is-nessie-catalog'] === 'true' &&
      this.spec.prefix !== undefined &&
      this.spec.warehouse !== undefined &&
      prefix === this.spec.prefix &&
      !/\||%7C/i.test(prefix)
    ) {
      prefix = `${prefix}|${this.spec.warehouse}`;
    }
    this.prefix = prefix ? encodePrefix(prefix) : undefined;
    this.log?.debug({ catalog: this.name, baseUri: this.baseUri, prefix: this.prefix }, 'rest catalog configured');
  }

  async createNamespaceIfMissing(namespace: string[]): Promise<void> {
    if (namespace.length === 0) return;
    const ctx: ErrorContext = { operation: 'load-namespace', namespace: namespace.join('.') };
    const probe = await this.send('GET', this.url(`/namespaces/${encodeNamespace(namespace)}`), undefined, ctx);
    if (probe.status === 200) return;
    if (probe.status !== 404) throw this.readError('load-namespace', probe, ctx);
    // Some servers (Nessie) need every parent level to exist; creating a level
    // that exists answers 409, which is fine.
    for (let i = 1; i <= namespace.length; i++) {
      const level = namespace.slice(0, i);
      const cctx: ErrorContext = { operation: 'create-namespace', namespace: level.join('.') };
      const res = await this.send('POST', this.url('/namespaces'), { namespace: level, properties: {} }, cctx);
      if (res.status === 200 || res.status === 204 || res.status === 409) continue;
      throw this.readError('create-namespace', res, cctx);
    }
  }

  async listTables(namespace?: string[]): Promise<TableIdent[]> {
    if (namespace !== undefined) return this.listTablesIn(namespace);
    const out: TableIdent[] = [];
    for (const ns of await this.listNamespacesUnder(undefined)) out.push(...(await this.listTablesIn(ns)));
    return out;
  }

  async loadTable(ident: TableIdent): Promise<LoadedTable | undefined> {
    const ctx: ErrorContext = { operation: 'load-table', table: identName(ident) };
    const res = await this.send('GET', this.url(tablePath(ident)), undefined, ctx);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.readError('load-table', res, ctx);
    return this.loadResult(ident, res, ctx);
  }

  async createTable(ident: TableIdent, request: CreateTableRequest): Promise<LoadedTable> {
    const ctx: ErrorContext = { operation: 'create-table', table: identName(ident) };
    const body = createTableBody(ident, request);
    const key = this.idempotencyKeyLifetime ? uuidv7() : undefined;
    const res = await this.send('POST', this.url(`/namespaces/${encodeNamespace(ident.namespace)}/tables`), body, ctx, key);
    if (res.status === 200) return this.loadResult(ident, res, ctx);
    if (res.status === 409) {
      throw new DativoError('COMMIT_CONFLICT', `${this.who()}: table ${identName(ident)} already exists${detail(res)}`, {
        context: this.ctx({ ...ctx, exists: true }, res),
      });
    }
    if (res.status === 404) {
      throw new DativoError('CATALOG_INVALID', `${this.who()}: cannot create ${identName(ident)}: namespace does not exist${detail(res)}`, {
        context: this.ctx(ctx, res),
      });
    }
    if (res.status >= 500) {
      throw new DativoError('CATALOG_UNAVAILABLE', `${this.who()}: create table ${identName(ident)} failed, outcome unknown: HTTP ${res.status}${detail(res)}`, {
        context: this.ctx({ ...ctx, outcome: 'unknown' }, res),
      });
    }
    throw this.readError('create-table', res, ctx);
  }

  async commit(base: LoadedTable, change: CommitRequest): Promise<LoadedTable> {
    const ident = base.ident;
    const ctx: ErrorContext = { operation: 'commit', table: identName(ident) };
    const snapshotId = addedSnapshotId(change);
    if (snapshotId !== undefined) ctx.snapshotId = snapshotId;
    const body = { identifier: { namespace: ident.namespace, name: ident.name }, requirements: change.requirements, updates: change.updates };
    // With Idempotency-Key support an unknown outcome can be resolved by
    // re-sending the same request under the same key: a finished commit is
    // replayed (200, or its 409), an unfinished one runs now.
    const key = this.idempotencyKeyLifetime ? uuidv7() : undefined;
    const policy = key ? this.idempotentRetry : definePolicy({ maxAttempts: 1 }, this.idempotentRetry);
    /** Thrown inside the retry to re-send an answer whose outcome is unknown. */
    class UnknownOutcome extends Error {
      constructor(readonly res: HttpResult) {
        super(`HTTP ${res.status}`);
      }
    }
    let res: HttpResult | undefined;
    try {
      res = await retry(
        async (attempt) => {
          if (attempt > 1) {
            this.log?.debug({ catalog: this.name, table: ctx.table, attempt }, 'commit outcome unknown; re-sending with the same Idempotency-Key');
          }
          let r: HttpResult;
          try {
            r = await this.send('POST', this.url(tablePath(ident)), body, ctx, key);
          } catch (err) {
            if (!isDativoError(err) || err.code !== 'CATALOG_UNAVAILABLE') throw err;
            err.context.outcome = 'unknown';
            if (attempt > 1) err.context.idempotentRetries = attempt - 1;
            throw err;
          }
          if (isUnknownOutcome(r.status)) throw new UnknownOutcome(r);
          return r;
        },
        policy,
        {
          signal: this.closer.signal,
          classify: (err) => ({ retry: err instanceof UnknownOutcome || (isDativoError(err) && err.code === 'CATALOG_UNAVAILABLE'), reason: 'outcome unknown' }),
        },
      );
    } catch (err) {
      if (err instanceof UnknownOutcome) res = err.res;
      else if (isDativoError(err) && err.code === 'ABORTED' && this.closed) {
        throw new DativoError('ABORTED', `${this.who()}: closed while resolving an unknown commit outcome`, {
          cause: err,
          context: this.ctx({ ...ctx, outcome: 'unknown' }),
        });
      } else throw err;
    }
    if (res === undefined) throw new DativoError('INTERNAL', `${this.who()}: commit produced no response`, { context: ctx });
    if (key && res.status !== 200) ctx.idempotencyKey = key;
    if (res.status === 200) return this.loadResult(ident, res, ctx);
    const what = `${this.who()}: commit to ${identName(ident)}`;
    if (res.status === 409) {
      throw new DativoError('COMMIT_CONFLICT', `${what} rejected, the table changed${detail(res)}`, {
        context: this.ctx({ ...ctx, outcome: 'not-committed' }, res),
      });
    }
    if (res.status === 401 || res.status === 403) {
      throw new DativoError('AUTH_FAILED', `${what} refused: HTTP ${res.status}${detail(res)}`, { context: this.ctx(ctx, res) });
    }
    if (res.status === 404) {
      throw new DativoError('CATALOG_INVALID', `${what} failed: the table was dropped${detail(res)}`, {
        context: this.ctx({ ...ctx, outcome: 'not-committed' }, res),
      });
    }
    if (isUnknownOutcome(res.status)) {
      throw new DativoError('CATALOG_UNAVAILABLE', `${what}: outcome unknown, HTTP ${res.status}${detail(res)}`, {
        context: this.ctx({ ...ctx, outcome: 'unknown', ...retryAfter(res) }, res),
      });
    }
    throw new DativoError('CATALOG_INVALID', `${what} rejected: HTTP ${res.status}${detail(res)}`, {
      context: this.ctx({ ...ctx, outcome: 'not-committed' }, res),
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closer.abort(new Error('catalog closed'));
  }

  // ---- helpers ----

  private async listTablesIn(namespace: string[]): Promise<TableIdent[]> {
    const ctx: ErrorContext = { operation: 'list-tables', namespace: namespace.join('.') };
    const out: TableIdent[] = [];
    const found = await this.paged(`/namespaces/${encodeNamespace(namespace)}/tables`, ctx, 'identifiers');
    if (found === undefined) return out;
    for (const item of found) {
      const ns = getField(item, 'namespace');
      const name = getField(item, 'name');
      if (Array.isArray(ns) && typeof name === 'string') out.push({ namespace: ns.map(String), name });
    }
    return out;
  }

  private async listNamespacesUnder(parent: string[] | undefined): Promise<string[][]> {
    const ctx: ErrorContext = { operation: 'list-namespaces', namespace: parent?.join('.') ?? '' };
    const query = parent ? `parent=${encodeNamespace(parent)}` : '';
    const found = (await this.paged('/namespaces', ctx, 'namespaces', query)) ?? [];
    const out: string[][] = [];
    for (const item of found) {
      if (!Array.isArray(item)) continue;
      const ns = item.map(String);
      // Servers that ignore `parent` answer the top level again: do not loop.
      if (parent && (ns.length <= parent.length || !parent.every((p, i) => ns[i] === p))) continue;
      out.push(ns, ...(await this.listNamespacesUnder(ns)));
    }
    return out;
  }

  /** GET a list endpoint, following `next-page-token`. Undefined on 404. */
  private async paged(path: string, ctx: ErrorContext, field: string, query = ''): Promise<unknown[] | undefined> {
    const items: unknown[] = [];
    const pager = new Paginator<unknown>({
      next: (body) => {
        const next = getField(body, 'next-page-token');
        return typeof next === 'string' ? next : undefined;
      },
      what: `${this.who()}: ${String(ctx.operation)}`,
      code: 'CATALOG_INVALID',
      context: { ...ctx, catalog: this.name },
    });
    while (pager.hasMore) {
      const token = pager.token;
      const q = [query, token !== undefined ? `pageToken=${encodeURIComponent(token)}` : ''].filter(Boolean).join('&');
      const res = await this.send('GET', this.url(path) + (q ? `?${q}` : ''), undefined, ctx);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw this.readError(String(ctx.operation), res, ctx);
      const body = this.parseBody(res, ctx);
      const list = getField(body, field);
      if (Array.isArray(list)) items.push(...list);
      pager.advance(body);
    }
    return items;
  }

  private url(path: string): string {
    return `${this.baseUri}/v1${this.prefix ? `/${this.prefix}` : ''}${path}`;
  }

  private who(): string {
    return `REST catalog ${this.name}`;
  }

  private ctx(ctx: ErrorContext, res?: HttpResult): ErrorContext {
    const out: ErrorContext = { catalog: this.name, ...ctx };
    if (res) {
      out.status = res.status;
      const type = restError(res)?.type;
      if (type) out.restErrorType = type;
    }
    return out;
  }

  /** Error for a non-success status on a read-type call. */
  private readError(op: string, res: HttpResult, ctx: ErrorContext): DativoError {
    const msg = `${this.who()}: ${op} failed: HTTP ${res.status}${detail(res)}`;
    if (res.status === 401 || res.status === 403) return new DativoError('AUTH_FAILED', msg, { context: this.ctx(ctx, res) });
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      return new DativoError('CATALOG_UNAVAILABLE', msg, { context: this.ctx({ ...ctx, ...retryAfter(res) }, res) });
    }
    return new DativoError('CATALOG_INVALID', msg, { context: this.ctx(ctx, res) });
  }

  private parseBody(res: HttpResult, ctx: ErrorContext): unknown {
    try {
      return parseJson(res.text);
    } catch (err) {
      throw new DativoError('CATALOG_INVALID', `${this.who()}: ${String(ctx.operation)} answered invalid JSON (HTTP ${res.status})`, {
        cause: err,
        context: this.ctx(ctx, res),
      });
    }
  }

  private loadResult(ident: TableIdent, res: HttpResult, ctx: ErrorContext): LoadedTable {
    const body = this.parseBody(res, ctx);
    const metadata = getField(body, 'metadata');
    const location = getField(body, 'metadata-location');
    if (
      !isRecord(metadata) ||
      typeof metadata['format-version'] !== 'number' ||
      typeof metadata['table-uuid'] !== 'string' ||
      typeof metadata.location !== 'string'
    ) {
      throw new DativoError('CATALOG_INVALID', `${this.who()}: ${String(ctx.operation)} answered no usable table metadata`, { context: this.ctx(ctx, res) });
    }
    // A staged create has no metadata file yet; we never stage, so this is a server fault.
    if (typeof location !== 'string' || location === '') {
      throw new DativoError('CATALOG_INVALID', `${this.who()}: ${String(ctx.operation)} answered no metadata-location`, { context: this.ctx(ctx, res) });
    }
    return { ident: { namespace: [...ident.namespace], name: ident.name }, metadata: metadata as TableMetadata, metadataLocation: location };
  }

  /**
   * One HTTP exchange. Transport failures become CATALOG_UNAVAILABLE (or
   * ABORTED after close); statuses are left to the caller.
   */
  private async send(method: string, url: string, body: unknown, ctx: ErrorContext, idempotencyKey?: string): Promise<HttpResult> {
    if (this.closed) throw new DativoError('INTERNAL', `${this.who()} is closed`, { context: { ...ctx, catalog: this.name } });
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'dativo-ingest', 'x-client-version': 'dativo-ingest' };
    for (const [k, v] of Object.entries(this.spec.headers ?? {})) headers[k.toLowerCase()] = v;
    if (this.spec.token) headers.authorization = `Bearer ${this.spec.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
    const started = Date.now();
    const path = new URL(url).pathname;
    try {
      const res = await this.exchange(method, url, headers, body);
      this.log?.debug({ catalog: this.name, method, path, status: res.status, ms: Date.now() - started }, 'rest catalog request');
      return res;
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      const f = err.failure;
      this.log?.debug({ catalog: this.name, method, path, failure: f.kind, ms: Date.now() - started }, 'rest catalog request failed');
      const context: ErrorContext = { ...ctx, catalog: this.name, transport: f.kind };
      if (f.syscallCode) context.syscallCode = f.syscallCode;
      if (f.kind === 'timeout') context.timeoutMs = this.timeoutMs;
      const code = f.kind === 'aborted' ? 'ABORTED' : 'CATALOG_UNAVAILABLE';
      throw new DativoError(code, `${this.who()}: ${method} ${path}: ${err.message}`, { cause: f.cause, context });
    }
  }

  private async exchange(method: string, url: string, headers: Record<string, string>, body: unknown): Promise<HttpResult> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.closer.signal]);
    try {
      const init: RequestInit = { method, headers, signal, redirect: 'follow' };
      if (body !== undefined) init.body = stringifyJson(body);
      const res = await this.fetchImpl(url, init);
      // The body is part of the exchange: a connection dropped after the
      // status line is just as much an unknown outcome as one dropped before.
      const text = await res.text();
      return { status: res.status, text, headers: res.headers };
    } catch (err) {
      throw new TransportError(classifyTransport(err, this.closer.signal));
    }
  }
}

/** Statuses after which a commit may or may not have been applied (Java maps these to CommitStateUnknown). */
function isUnknownOutcome(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** A UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, version 7, random rest; what the spec asks for Idempotency-Key. */
export function uuidv7(nowMs = Date.now()): string {
  const b = randomBytes(16);
  let ts = BigInt(nowMs);
  for (let i = 5; i >= 0; i--) {
    b[i] = Number(ts & 0xffn);
    ts >>= 8n;
  }
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function classifyTransport(err: unknown, closer: AbortSignal): TransportFailure {
  const name = (err as { name?: string } | undefined)?.name;
  if (closer.aborted) return { kind: 'aborted', cause: err };
  if (name === 'TimeoutError') return { kind: 'timeout', cause: err };
  if (name === 'AbortError') return { kind: 'timeout', cause: err };
  const syscallCode = transientCodeOf(err);
  return syscallCode ? { kind: 'network', cause: err, syscallCode } : { kind: 'network', cause: err };
}

function createTableBody(ident: TableIdent, request: CreateTableRequest): Record<string, unknown> {
  const md = request.metadata;
  const schema = pickById(md.schemas, 'schema-id', md['current-schema-id']) ?? md.schema;
  if (!isRecord(schema)) {
    throw new DativoError('INTERNAL', `create table ${identName(ident)}: the initial metadata has no current schema`, { context: { table: identName(ident) } });
  }
  const body: Record<string, unknown> = { name: ident.name, location: request.location, schema };
  const spec = pickById(md['partition-specs'], 'spec-id', md['default-spec-id']);
  if (spec) body['partition-spec'] = spec;
  const order = pickById(md['sort-orders'], 'order-id', md['default-sort-order-id']);
  if (order) body['write-order'] = order;
  const properties: Record<string, string> = { ...stringMap(md.properties) };
  // REST servers create v2 tables unless told otherwise by this reserved property.
  if (md['format-version'] !== 2) properties['format-version'] = String(md['format-version']);
  body.properties = properties;
  body['stage-create'] = false;
  return body;
}

function pickById(list: unknown, idKey: string, id: unknown): Record<string, unknown> | undefined {
  if (!Array.isArray(list)) return undefined;
  const want = id === undefined || id === null ? undefined : String(id);
  const found = list.find((x) => isRecord(x) && want !== undefined && String(x[idKey]) === want);
  return isRecord(found) ? found : undefined;
}

function addedSnapshotId(change: CommitRequest): string | undefined {
  for (const u of change.updates) {
    if (u.action === 'add-snapshot' && isRecord(u.snapshot)) {
      const id = u.snapshot['snapshot-id'];
      if (typeof id === 'bigint' || typeof id === 'number' || typeof id === 'string') return String(id);
    }
  }
  return undefined;
}

function restError(res: HttpResult): { message?: string; type?: string } | undefined {
  if (res.text === '') return undefined;
  try {
    const body = parseJson(res.text);
    const e = getField(body, 'error');
    if (!isRecord(e)) return undefined;
    const out: { message?: string; type?: string } = {};
    if (typeof e.message === 'string') out.message = e.message;
    if (typeof e.type === 'string') out.type = e.type;
    return out;
  } catch {
    return undefined;
  }
}

/** `: <type>: <message>` from the REST error body, else a short excerpt of the body. */
function detail(res: HttpResult): string {
  const e = restError(res);
  if (e && (e.message || e.type)) return `: ${[e.type, e.message].filter(Boolean).join(': ')}`;
  const text = res.text.trim();
  return text ? `: ${text.slice(0, 200)}` : '';
}

function retryAfter(res: HttpResult): ErrorContext {
  const ra = parseRetryAfter(res.headers.get('retry-after'));
  return ra.kind === 'delay' ? { retryAfterMs: ra.ms } : {};
}

/** Path of a table below the prefix. */
function tablePath(ident: TableIdent): string {
  return `/namespaces/${encodeNamespace(ident.namespace)}/tables/${encodeURIComponent(ident.name)}`;
}

/** Multi-level namespaces are joined with 0x1F, which every server must accept (as `%1F`). */
export function encodeNamespace(namespace: readonly string[]): string {
  return encodeURIComponent(namespace.join(NAMESPACE_SEPARATOR));
}

/**
 * Encode a prefix for the path. Segments that already carry `%XX` escapes
 * (Nessie answers its prefix URL-encoded, e.g. `main%7Cwarehouse`) are kept;
 * `/` separates segments (Unity-style `catalogs/<name>`).
 */
export function encodePrefix(prefix: string): string {
  return prefix
    .split('/')
    .map((seg) => (/%[0-9A-Fa-f]{2}/.test(seg) ? seg : encodeURIComponent(seg)))
    .join('/');
}

function identName(ident: TableIdent): string {
  return [...ident.namespace, ident.name].join('.');
}

function stripSlash(uri: string): string {
  return uri.replace(/\/+$/, '');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function getField(v: unknown, key: string): unknown {
  return isRecord(v) ? v[key] : undefined;
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(v)) return out;
  for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = String(x);
  return out;
}
