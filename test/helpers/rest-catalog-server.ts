/**
 * A real Iceberg REST catalog server on loopback, for tests (node:http on
 * 127.0.0.1, port 0). Namespaces and tables live in memory; every create and
 * commit writes a metadata file `NNNNN-<uuid>.metadata.json` under
 * `<table location>/metadata/` in the warehouse storage, as a real server does.
 *
 * Commits are handled like the reference server (`CatalogHandlers` +
 * `TableMetadata.Builder`): every requirement is checked (mismatch → 409
 * CommitFailedException), unknown requirement/update types → 400, then the
 * updates are applied (add-snapshot rejects a stale sequence number, the main
 * ref drives `current-snapshot-id` and `snapshot-log`), `metadata-log` grows,
 * and the new file is written. Commits to one table are serialised, so a
 * requirement check and its swap are atomic as in a real catalog.
 *
 * `nessieStyle` emulates Nessie's Iceberg REST endpoint (`/iceberg/...`):
 * `/iceberg/v1/config` and `/iceberg/<ref>/v1/config` answer the branch as the
 * `prefix` default (URL-encoded, `<ref>|<warehouse>` when a warehouse is asked
 * for) and the Iceberg base URI as the `uri` override; data routes are
 * `/iceberg/v1/<prefix>/...`; each branch has its own tables; the server picks
 * table locations (`<warehouse>/<ns>/<name>_<uuid>`), sets `gc.enabled=false`,
 * requires parent namespaces, and table metadata carries only the current
 * snapshot (history lives in Nessie commits).
 *
 * Faults: a test arms {@link Fault}s that answer a status, drop the
 * connection or delay, before or after the change is applied (the latter is a
 * lost response: the commit landed but the client never hears it).
 *
 * Not implemented: staged creates (`stage-create: true` and commits with
 * `assert-create` against a missing table), views, rename, register,
 * multi-table transactions, OAuth token exchange.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CommitRequest, TableMetadata } from '../../lib/iceberg/catalog.js';
import { asLong, parseJson, stringifyJson } from '../../lib/iceberg/json.js';
import { LocalStorage } from '../../lib/storage/local.js';
import type { Storage } from '../../lib/storage/types.js';

/** The operations a fault can target. */
export type RestOp =
  | 'config'
  | 'list-namespaces'
  | 'create-namespace'
  | 'load-namespace'
  | 'list-tables'
  | 'create-table'
  | 'load-table'
  | 'commit'
  | 'drop-table';

/** What an armed fault does. */
export type FaultAction =
  /** Answer this status with a REST error body. */
  | { status: number; type?: string; message?: string }
  /** Destroy the socket without answering. */
  | { close: true }
  /** Wait, then carry on normally. */
  | { delayMs: number }
  /** Await this (e.g. let another writer commit in between), then carry on normally. */
  | { call: () => Promise<void> | void };

export interface Fault {
  op: RestOp;
  /** Which request of `op`, counted from when the fault is armed: 1 = the next one (default 1). */
  nth?: number;
  /**
   * `before`: act before the change is applied (it is not applied unless the
   * action is a delay). `after`: apply the change, then act (a lost response).
   * Default `before`.
   */
  when?: 'before' | 'after';
  /** One action, or several carried out in order (e.g. `[{call}, {close: true}]`). */
  action: FaultAction | FaultAction[];
}

export interface RestCatalogServerOptions {
  /** Warehouse root: a `file://` directory URI, or a Storage. Metadata files are written there. */
  warehouse: string | Storage;
  /** Path prefix the server hands out as `overrides.prefix` and requires on every data route. */
  prefix?: string;
  /** When set, `/v1/config` requires `?warehouse=<this>` (Polaris/Lakekeeper style) and answers 404 otherwise. */
  warehouseName?: string;
  /** Emulate Nessie's Iceberg REST endpoint (see module doc). */
  nessieStyle?: boolean;
  /** Nessie style: branches besides `main` that exist from the start (empty). */
  branches?: string[];
  /** When set, every request must carry `Authorization: Bearer <token>` (else 401). */
  token?: string;
  /** When set, list endpoints page with this many items per page (`next-page-token`). */
  pageSize?: number;
  /** Faults armed at start. */
  faults?: Fault[];
  /**
   * Advertise Idempotency-Key support with this lifetime (e.g. `PT30M`) in
   * `/v1/config`. Mutating requests carrying a key already finished (200 or a
   * 4xx) get the stored answer replayed without being applied again; 5xx are
   * not finished (a retry runs). Default: not supported, the header is ignored.
   */
  idempotencyKeyLifetime?: string;
}

/** A request as the server saw it. */
export interface RecordedRequest {
  method: string;
  /** Raw request target (path and query, still URL-encoded). */
  url: string;
  op: RestOp | undefined;
  headers: Record<string, string | string[] | undefined>;
  /** Raw request body text ('' when none). */
  body: string;
  /** Status answered, or 'closed' when the socket was dropped. */
  status?: number | 'closed';
  /** True when the answer was replayed for an Idempotency-Key. */
  replayed?: boolean;
}

/** A table as the catalog holds it. */
export interface StoredTable {
  namespace: string[];
  name: string;
  metadata: Record<string, unknown>;
  metadataLocation: string;
  /** Every metadata file written for this table, oldest first. */
  metadataFiles: string[];
}

interface BranchState {
  namespaces: Map<string, { namespace: string[]; properties: Record<string, string> }>;
  tables: Map<string, StoredTable>;
}

/** The catalog's state; tests read it to check what actually happened. */
export class CatalogState {
  /** Branch name → state. A plain (non-Nessie) server has one branch, `main`. */
  readonly branches = new Map<string, BranchState>();
  /** Number of commits that were applied (not counting rejected ones). */
  appliedCommits = 0;

  constructor(branchNames: string[]) {
    for (const b of branchNames) this.branches.set(b, { namespaces: new Map(), tables: new Map() });
  }

  /** The stored table, or undefined. */
  getTable(namespace: string[], name: string, branch = 'main'): StoredTable | undefined {
    return this.branches.get(branch)?.tables.get(tableKey(namespace, name));
  }

  /** Every namespace of a branch. */
  namespaces(branch = 'main'): string[][] {
    return [...(this.branches.get(branch)?.namespaces.values() ?? [])].map((n) => n.namespace);
  }
}

export interface RestCatalogServer {
  /** What a client passes as `uri`: `http://127.0.0.1:<port>`, or `…/iceberg` in Nessie style. */
  readonly uri: string;
  readonly port: number;
  readonly state: CatalogState;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Arm a fault; `nth` counts from now. */
  addFault(fault: Fault): void;
  /** Nessie style: create `name` as a copy of branch `from` (default `main`). */
  createBranch(name: string, from?: string): void;
  /** Stop listening and drop open connections. */
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

interface ArmedFault {
  fault: Fault;
  /** The op count at which it fires. */
  at: number;
}

const NS_SEP = '\u001f';

function tableKey(namespace: string[], name: string): string {
  return `${namespace.join(NS_SEP)}${NS_SEP}${NS_SEP}${name}`;
}

/** Start a REST catalog on 127.0.0.1 (free port). */
export async function startRestCatalog(options: RestCatalogServerOptions): Promise<RestCatalogServer> {
  const storage = typeof options.warehouse === 'string' ? new LocalStorage(options.warehouse) : options.warehouse;
  const nessie = options.nessieStyle === true;
  const state = new CatalogState(['main', ...(nessie ? (options.branches ?? []) : [])]);
  const requests: RecordedRequest[] = [];
  const counts = new Map<RestOp, number>();
  const armed: ArmedFault[] = [];
  const tableLocks = new Map<string, Promise<unknown>>();
  const finished = new Map<string, { status: number; body?: unknown }>();
  let baseUrl = '';

  const addFault = (fault: Fault): void => {
    armed.push({ fault, at: (counts.get(fault.op) ?? 0) + (fault.nth ?? 1) });
  };
  for (const f of options.faults ?? []) addFault(f);

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const record: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', op: undefined, headers: { ...req.headers }, body };
      requests.push(record);
      handle(req, res, record).catch((err: unknown) => {
        const e = err instanceof HttpError ? err : new HttpError(500, 'ServerError', (err as Error)?.message ?? String(err));
        if (!res.headersSent && !res.destroyed) reply(res, record, e.status, errorBody(e));
      });
    });
  });

  /** Serialise work on one table so check-and-swap is atomic. */
  async function withTableLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = tableLocks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    tableLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (tableLocks.get(key) === tail) tableLocks.delete(key);
    }
  }

  function takeFault(op: RestOp): Fault | undefined {
    const n = (counts.get(op) ?? 0) + 1;
    counts.set(op, n);
    const i = armed.findIndex((a) => a.fault.op === op && a.at === n);
    if (i < 0) return undefined;
    const [hit] = armed.splice(i, 1);
    return hit?.fault;
  }

  /** Carry out a fault at one stage. True when the request was finished (answered or dropped). */
  async function act(fault: Fault | undefined, stage: 'before' | 'after', res: ServerResponse, record: RecordedRequest): Promise<boolean> {
    if (!fault || (fault.when ?? 'before') !== stage) return false;
    for (const a of Array.isArray(fault.action) ? fault.action : [fault.action]) {
      if ('delayMs' in a) {
        await new Promise((r) => setTimeout(r, a.delayMs));
        continue;
      }
      if ('call' in a) {
        await a.call();
        continue;
      }
      if ('close' in a) {
        record.status = 'closed';
        res.socket?.destroy();
        return true;
      }
      reply(res, record, a.status, errorBody(new HttpError(a.status, a.type ?? defaultErrorType(a.status), a.message ?? `injected ${a.status}`)));
      return true;
    }
    return false;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
      throw new HttpError(401, 'NotAuthorizedException', 'Not authorized: missing or invalid bearer token');
    }
    const route = resolveRoute(url.pathname, method);
    record.op = route.op;
    const fault = route.op ? takeFault(route.op) : undefined;
    if (await act(fault, 'before', res, record)) return;

    const key = options.idempotencyKeyLifetime !== undefined && method !== 'GET' && method !== 'HEAD' ? req.headers['idempotency-key'] : undefined;
    const idemKey = typeof key === 'string' && key !== '' ? `${route.op}\u0000${url.pathname}\u0000${key}` : undefined;
    const stored = idemKey ? finished.get(idemKey) : undefined;
    if (stored) {
      record.replayed = true;
      reply(res, record, stored.status, stored.body);
      return;
    }
    let result: { status: number; body?: unknown };
    try {
      result = await dispatch(route, url, record.body);
    } catch (err) {
      if (idemKey && err instanceof HttpError && err.status >= 400 && err.status < 500) finished.set(idemKey, { status: err.status, body: errorBody(err) });
      throw err;
    }
    // Finished before any lost-response fault: a retry with the same key gets this answer.
    if (idemKey && result.status < 300) finished.set(idemKey, result);
    if (await act(fault, 'after', res, record)) return;
    reply(res, record, result.status, result.body);
  }

  interface Route {
    op: RestOp | undefined;
    kind: 'config' | 'namespaces' | 'namespace' | 'tables' | 'table';
    ref?: string;
    branch: string;
    namespace?: string[];
    table?: string;
    method: string;
  }

  function resolveRoute(pathname: string, method: string): Route {
    let rest: string;
    let branch = 'main';
    if (nessie) {
      const m = /^\/iceberg(?:\/([^/]+))?\/v1\/config$/.exec(pathname);
      if (m) return { op: 'config', kind: 'config', ...(m[1] ? { ref: decodeURIComponent(m[1]) } : {}), branch, method };
      const d = /^\/iceberg\/v1\/([^/]+)(\/.*)$/.exec(pathname);
      if (!d) throw new HttpError(404, 'NotFoundException', `no route for ${pathname}`);
      const [refPart = ''] = decodeURIComponent(d[1] ?? '').split('|');
      branch = refPart === '' || refPart === '-' ? 'main' : (refPart.split(/[@#]/)[0] ?? 'main');
      if (!state.branches.has(branch)) throw new HttpError(404, 'NoSuchReferenceException', `Named reference '${branch}' not found`);
      rest = d[2] ?? '';
    } else {
      if (pathname === '/v1/config') return { op: 'config', kind: 'config', branch, method };
      const want = options.prefix ? `/v1/${encodePrefixSegments(options.prefix)}/` : '/v1/';
      if (!pathname.startsWith(want)) throw new HttpError(404, 'NotFoundException', `no route for ${pathname}`);
      rest = pathname.slice(want.length - 1);
    }
    const seg = rest.split('/').slice(1);
    if (seg[0] !== 'namespaces') throw new HttpError(404, 'NotFoundException', `no route for ${pathname}`);
    if (seg.length === 1) return { op: method === 'POST' ? 'create-namespace' : 'list-namespaces', kind: 'namespaces', branch, method };
    const namespace = decodeURIComponent(seg[1] ?? '').split(NS_SEP);
    if (seg.length === 2) return { op: 'load-namespace', kind: 'namespace', branch, namespace, method };
    if (seg[2] !== 'tables') throw new HttpError(404, 'NotFoundException', `no route for ${pathname}`);
    if (seg.length === 3) return { op: method === 'POST' ? 'create-table' : 'list-tables', kind: 'tables', branch, namespace, method };
    if (seg.length === 4) {
      const op: RestOp = method === 'POST' ? 'commit' : method === 'DELETE' ? 'drop-table' : 'load-table';
      return { op, kind: 'table', branch, namespace, table: decodeURIComponent(seg[3] ?? ''), method };
    }
    throw new HttpError(404, 'NotFoundException', `no route for ${pathname}`);
  }

  async function dispatch(route: Route, url: URL, bodyText: string): Promise<{ status: number; body?: unknown }> {
    const b = state.branches.get(route.branch);
    if (!b) throw new HttpError(404, 'NoSuchReferenceException', `Named reference '${route.branch}' not found`);
    const ns = route.namespace ?? [];
    const nsKey = ns.join(NS_SEP);
    switch (route.kind) {
      case 'config':
        return { status: 200, body: configResponse(route, url) };
      case 'namespaces': {
        if (route.method === 'POST') {
          const body = parseBody(bodyText);
          const namespace = body.namespace;
          if (!Array.isArray(namespace) || namespace.length === 0 || !namespace.every((x) => typeof x === 'string')) {
            throw new HttpError(400, 'BadRequestException', 'namespace must be a non-empty array of strings');
          }
          const key = (namespace as string[]).join(NS_SEP);
          if (b.namespaces.has(key)) throw new HttpError(409, 'AlreadyExistsException', `Namespace already exists: ${namespace.join('.')}`);
          if (nessie && namespace.length > 1 && !b.namespaces.has(namespace.slice(0, -1).join(NS_SEP))) {
            throw new HttpError(404, 'NoSuchNamespaceException', `Namespace '${namespace.slice(0, -1).join('.')}' must exist.`);
          }
          const properties = (isRecord(body.properties) ? body.properties : {}) as Record<string, string>;
          b.namespaces.set(key, { namespace: namespace as string[], properties });
          return { status: 200, body: { namespace, properties } };
        }
        if (route.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `${route.method} not allowed`);
        const parentParam = url.searchParams.get('parent');
        const parent = parentParam ? parentParam.split(NS_SEP) : [];
        if (parent.length > 0 && !b.namespaces.has(parent.join(NS_SEP))) {
          throw new HttpError(404, 'NoSuchNamespaceException', `Namespace does not exist: ${parent.join('.')}`);
        }
        const children = [...b.namespaces.values()]
          .map((n) => n.namespace)
          .filter((n) => n.length === parent.length + 1 && parent.every((p, i) => n[i] === p));
        return { status: 200, body: page(children, 'namespaces', url) };
      }
      case 'namespace': {
        const entry = b.namespaces.get(nsKey);
        if (!entry) throw new HttpError(404, 'NoSuchNamespaceException', `Namespace does not exist: ${ns.join('.')}`);
        if (route.method === 'HEAD') return { status: 204 };
        if (route.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `${route.method} not allowed`);
        return { status: 200, body: { namespace: entry.namespace, properties: entry.properties } };
      }
      case 'tables': {
        if (!b.namespaces.has(nsKey)) throw new HttpError(404, 'NoSuchNamespaceException', `Namespace does not exist: ${ns.join('.')}`);
        if (route.method === 'POST') return createTable(b, ns, parseBody(bodyText));
        if (route.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `${route.method} not allowed`);
        const idents = [...b.tables.values()]
          .filter((t) => t.namespace.join(NS_SEP) === nsKey)
          .map((t) => ({ namespace: t.namespace, name: t.name }));
        return { status: 200, body: page(idents, 'identifiers', url) };
      }
      case 'table': {
        const name = route.table ?? '';
        const key = tableKey(ns, name);
        if (route.method === 'POST') {
          return withTableLock(`${route.branch}${NS_SEP}${key}`, () => commitTable(b, ns, name, parseBody(bodyText)));
        }
        const t = b.tables.get(key);
        if (!t) {
          const what = b.namespaces.has(nsKey) ? 'NoSuchTableException' : 'NoSuchNamespaceException';
          throw new HttpError(404, what, `Table does not exist: ${[...ns, name].join('.')}`);
        }
        if (route.method === 'HEAD') return { status: 204 };
        if (route.method === 'DELETE') {
          b.tables.delete(key);
          return { status: 204 };
        }
        if (route.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `${route.method} not allowed`);
        return { status: 200, body: { 'metadata-location': t.metadataLocation, metadata: t.metadata, config: {} } };
      }
    }
  }

  function configResponse(route: Route, url: URL): unknown {
    const wh = url.searchParams.get('warehouse') ?? undefined;
    if (options.warehouseName !== undefined && wh !== options.warehouseName) {
      throw new HttpError(404, 'NotFoundException', `Warehouse ${wh ?? '(none)'} not found`);
    }
    if (nessie) {
      const branch = route.ref && route.ref !== '-' ? route.ref : 'main';
      return {
        defaults: {
          'rest-metrics-reporting-enabled': 'false',
          warehouse: storage.root,
          'rest-page-size': '200',
          prefix: encodeURIComponent(wh ? `${branch}|${wh}` : branch),
        },
        overrides: {
          uri: `${baseUrl}/iceberg/`,
          'nessie.iceberg-base-uri': `${baseUrl}/iceberg/`,
          'nessie.is-nessie-catalog': 'true',
          'nessie.prefix-pattern': '{ref}|{warehouse}',
          'nessie.default-branch.name': branch,
        },
      };
    }
    return {
      ...(options.idempotencyKeyLifetime !== undefined ? { 'idempotency-key-lifetime': options.idempotencyKeyLifetime } : {}),
      defaults: { 'rest-page-size': String(options.pageSize ?? 100) },
      overrides: options.prefix ? { prefix: options.prefix } : {},
      endpoints: [
        'GET /v1/{prefix}/namespaces',
        'POST /v1/{prefix}/namespaces',
        'GET /v1/{prefix}/namespaces/{namespace}',
        'HEAD /v1/{prefix}/namespaces/{namespace}',
        'GET /v1/{prefix}/namespaces/{namespace}/tables',
        'POST /v1/{prefix}/namespaces/{namespace}/tables',
        'GET /v1/{prefix}/namespaces/{namespace}/tables/{table}',
        'HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}',
        'POST /v1/{prefix}/namespaces/{namespace}/tables/{table}',
        'DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}',
      ],
    };
  }

  /** Page a list when the server is configured to (`next-page-token` is the next offset). */
  function page(items: unknown[], field: string, url: URL): Record<string, unknown> {
    if (options.pageSize === undefined) return { [field]: items };
    const start = Number(url.searchParams.get('pageToken') || '0');
    const slice = items.slice(start, start + options.pageSize);
    const next = start + options.pageSize < items.length ? String(start + options.pageSize) : undefined;
    return next ? { [field]: slice, 'next-page-token': next } : { [field]: slice };
  }

  async function createTable(b: BranchState, ns: string[], body: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    const name = body.name;
    if (typeof name !== 'string' || name === '') throw new HttpError(400, 'BadRequestException', 'name is required');
    if (body['stage-create'] === true) throw new HttpError(400, 'BadRequestException', 'staged create is not supported by this test server');
    const key = tableKey(ns, name);
    return withTableLock(`create${NS_SEP}${key}`, async () => {
      if (b.tables.has(key)) throw new HttpError(409, 'AlreadyExistsException', `Table already exists: ${[...ns, name].join('.')}`);
      const uuid = randomUUID();
      let location: string;
      if (nessie) location = `${storage.root}/${[...ns].join('/')}/${name}_${uuid}`;
      else if (typeof body.location === 'string' && body.location !== '') location = body.location.replace(/\/+$/, '');
      else location = `${storage.root}/${[...ns, name].join('/')}`;
      const metadata = newTableMetadata(body, uuid, location);
      if (nessie) (metadata.properties as Record<string, string>)['gc.enabled'] ??= 'false';
      const file = await writeMetadata(location, undefined, metadata);
      const t: StoredTable = { namespace: ns, name, metadata, metadataLocation: file, metadataFiles: [file] };
      b.tables.set(key, t);
      return { status: 200, body: { 'metadata-location': file, metadata, config: {} } };
    });
  }

  async function commitTable(b: BranchState, ns: string[], name: string, body: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    const identifier = body.identifier;
    if (isRecord(identifier)) {
      const idNs = identifier.namespace;
      if (identifier.name !== name || !Array.isArray(idNs) || idNs.join(NS_SEP) !== ns.join(NS_SEP)) {
        throw new HttpError(400, 'BadRequestException', 'identifier does not match the request path');
      }
    }
    const requirements = Array.isArray(body.requirements) ? body.requirements : [];
    const updates = Array.isArray(body.updates) ? body.updates : [];
    if (!Array.isArray(body.updates)) throw new HttpError(400, 'BadRequestException', 'updates is required');
    const key = tableKey(ns, name);
    const t = b.tables.get(key);
    if (!t) {
      if (requirements.some((r) => isRecord(r) && r.type === 'assert-create')) {
        throw new HttpError(400, 'BadRequestException', 'staged create (assert-create on a missing table) is not supported by this test server');
      }
      throw new HttpError(404, 'NoSuchTableException', `Table does not exist: ${[...ns, name].join('.')}`);
    }
    for (const r of requirements) checkRequirement(t.metadata, r);
    const next = applyUpdates(t.metadata, updates);
    const logged = [...(asArray(next['metadata-log']))];
    logged.push({ 'timestamp-ms': t.metadata['last-updated-ms'], 'metadata-file': t.metadataLocation });
    const maxPrev = Number((next.properties as Record<string, string> | undefined)?.['write.metadata.previous-versions-max'] ?? '100');
    next['metadata-log'] = logged.slice(Math.max(0, logged.length - maxPrev));
    if (nessie) keepOnlyCurrentSnapshot(next);
    const location = String(next.location);
    const file = await writeMetadata(location, t.metadataLocation, next);
    t.metadata = next;
    t.metadataLocation = file;
    t.metadataFiles.push(file);
    state.appliedCommits++;
    return { status: 200, body: { 'metadata-location': file, metadata: next } };
  }

  async function writeMetadata(location: string, previous: string | undefined, metadata: Record<string, unknown>): Promise<string> {
    const version = previous === undefined ? 0 : metadataVersion(previous) + 1;
    const file = `${location}/metadata/${String(version).padStart(5, '0')}-${randomUUID()}.metadata.json`;
    const root = `${storage.root}/`;
    if (!file.startsWith(root)) throw new HttpError(400, 'BadRequestException', `table location ${location} is outside the warehouse ${storage.root}`);
    await storage.writeAtomic(file.slice(root.length), stringifyJson(metadata, 2), { ifNotExists: true, contentType: 'application/json' });
    return file;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://127.0.0.1:${port}`;

  return {
    uri: nessie ? `${baseUrl}/iceberg` : baseUrl,
    port,
    state,
    requests,
    addFault,
    createBranch(name: string, from = 'main') {
      const src = state.branches.get(from);
      if (!src) throw new Error(`no branch ${from}`);
      state.branches.set(name, {
        namespaces: new Map([...src.namespaces].map(([k, v]) => [k, structuredClone(v)])),
        tables: new Map([...src.tables].map(([k, v]) => [k, structuredClone(v)])),
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------- table metadata (what TableMetadata.Builder does) ----------

function reply(res: ServerResponse, record: RecordedRequest, status: number, body?: unknown): void {
  record.status = status;
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = stringifyJson(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function errorBody(e: HttpError): unknown {
  return { error: { message: e.message, type: e.type, code: e.status } };
}

function defaultErrorType(status: number): string {
  if (status === 409) return 'CommitFailedException';
  if (status === 401) return 'NotAuthorizedException';
  if (status === 403) return 'ForbiddenException';
  if (status === 404) return 'NoSuchTableException';
  if (status === 503) return 'ServiceUnavailableException';
  if (status >= 500) return 'ServerError';
  return 'BadRequestException';
}

function parseBody(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseJson(text, 'request body');
  } catch (err) {
    throw new HttpError(400, 'BadRequestException', `malformed JSON: ${(err as Error).message}`);
  }
  if (!isRecord(v)) throw new HttpError(400, 'BadRequestException', 'request body must be a JSON object');
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function encodePrefixSegments(prefix: string): string {
  return prefix
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/** Version number parsed from `NNNNN-<uuid>.metadata.json`; -1 when unparsable (then the next is 0). */
function metadataVersion(file: string): number {
  const base = file.slice(file.lastIndexOf('/') + 1);
  const v = Number.parseInt(base.slice(0, base.indexOf('-')), 10);
  return Number.isFinite(v) ? v : -1;
}

function sameLong(a: unknown, b: unknown): boolean {
  const x = asLong(a);
  const y = asLong(b);
  return x !== undefined && y !== undefined && x === y;
}

function bad(message: string): HttpError {
  return new HttpError(400, 'BadRequestException', message);
}

function conflict(message: string): HttpError {
  return new HttpError(409, 'CommitFailedException', `Requirement failed: ${message}`);
}

/** Highest field id in a schema/struct, including list element ids and map key/value ids. */
function maxFieldId(type: unknown): number {
  if (!isRecord(type)) return 0;
  let m = 0;
  if (type.type === 'struct' && Array.isArray(type.fields)) {
    for (const f of type.fields) {
      if (!isRecord(f)) continue;
      if (typeof f.id === 'number') m = Math.max(m, f.id);
      m = Math.max(m, maxFieldId(f.type));
    }
  } else if (type.type === 'list') {
    if (typeof type['element-id'] === 'number') m = Math.max(m, type['element-id']);
    m = Math.max(m, maxFieldId(type.element));
  } else if (type.type === 'map') {
    if (typeof type['key-id'] === 'number') m = Math.max(m, type['key-id']);
    if (typeof type['value-id'] === 'number') m = Math.max(m, type['value-id']);
    m = Math.max(m, maxFieldId(type.key), maxFieldId(type.value));
  }
  return m;
}

/** Partition spec with field ids assigned from `last` + 1 where missing. */
function freshSpec(spec: unknown, specId: number, lastPartitionId: number): { spec: Record<string, unknown>; last: number } {
  const fields = isRecord(spec) && Array.isArray(spec.fields) ? spec.fields : [];
  let last = lastPartitionId;
  const out = fields.map((f) => {
    if (!isRecord(f)) throw bad('partition field must be an object');
    if (typeof f['field-id'] === 'number') {
      last = Math.max(last, f['field-id']);
      return { ...f };
    }
    last += 1;
    return { ...f, 'field-id': last };
  });
  return { spec: { 'spec-id': specId, fields: out }, last };
}

function newTableMetadata(body: Record<string, unknown>, uuid: string, location: string): Record<string, unknown> {
  const schema = body.schema;
  if (!isRecord(schema) || schema.type !== 'struct' || !Array.isArray(schema.fields)) throw bad('schema is required and must be a struct');
  const properties: Record<string, string> = {};
  if (isRecord(body.properties)) for (const [k, v] of Object.entries(body.properties)) properties[k] = String(v);
  let formatVersion = 2;
  if (properties['format-version'] !== undefined) {
    formatVersion = Number(properties['format-version']);
    delete properties['format-version'];
    if (![1, 2, 3].includes(formatVersion)) throw bad(`unsupported format-version ${formatVersion}`);
  }
  const { spec, last } = freshSpec(body['partition-spec'], 0, 999);
  const orderFields = isRecord(body['write-order']) && Array.isArray(body['write-order'].fields) ? body['write-order'].fields : [];
  const orderId = orderFields.length === 0 ? 0 : 1;
  const now = BigInt(Date.now());
  return {
    'format-version': formatVersion,
    'table-uuid': uuid,
    location,
    'last-sequence-number': 0n,
    'last-updated-ms': now,
    'last-column-id': maxFieldId(schema),
    'current-schema-id': 0,
    schemas: [{ ...schema, 'schema-id': 0 }],
    'default-spec-id': 0,
    'partition-specs': [spec],
    'last-partition-id': last,
    'default-sort-order-id': orderId,
    'sort-orders': [{ 'order-id': orderId, fields: orderFields }],
    properties,
    'current-snapshot-id': -1n,
    refs: {},
    snapshots: [],
    statistics: [],
    'partition-statistics': [],
    'snapshot-log': [],
    'metadata-log': [],
  };
}

function checkRequirement(md: Record<string, unknown>, r: unknown): void {
  if (!isRecord(r) || typeof r.type !== 'string') throw bad('requirement without a type');
  switch (r.type) {
    case 'assert-create':
      throw conflict('table already exists');
    case 'assert-table-uuid':
      if (r.uuid !== md['table-uuid']) throw conflict(`UUID does not match: expected ${String(md['table-uuid'])} != ${String(r.uuid)}`);
      return;
    case 'assert-ref-snapshot-id': {
      const refName = r.ref;
      if (typeof refName !== 'string') throw bad('assert-ref-snapshot-id without ref');
      const refs = isRecord(md.refs) ? md.refs : {};
      const ref = refs[refName];
      const want = r['snapshot-id'];
      if (want === null || want === undefined) {
        if (ref !== undefined) throw conflict(`${refName} was created concurrently`);
        return;
      }
      if (!isRecord(ref)) throw conflict(`${refName} was removed`);
      if (!sameLong(ref['snapshot-id'], want)) {
        throw conflict(`${String(ref.type ?? 'branch')} ${refName} has changed: expected id ${String(want)} != ${String(ref['snapshot-id'])}`);
      }
      return;
    }
    case 'assert-current-schema-id':
      if (md['current-schema-id'] !== r['current-schema-id']) throw conflict(`current schema changed: expected id ${String(r['current-schema-id'])} != ${String(md['current-schema-id'])}`);
      return;
    case 'assert-last-assigned-field-id':
      if (md['last-column-id'] !== r['last-assigned-field-id']) throw conflict(`last assigned field id changed: expected id ${String(r['last-assigned-field-id'])} != ${String(md['last-column-id'])}`);
      return;
    case 'assert-last-assigned-partition-id':
      if (md['last-partition-id'] !== r['last-assigned-partition-id']) throw conflict(`last assigned partition id changed: expected id ${String(r['last-assigned-partition-id'])} != ${String(md['last-partition-id'])}`);
      return;
    case 'assert-default-spec-id':
      if (md['default-spec-id'] !== r['default-spec-id']) throw conflict(`default partition spec changed: expected id ${String(r['default-spec-id'])} != ${String(md['default-spec-id'])}`);
      return;
    case 'assert-default-sort-order-id':
      if (md['default-sort-order-id'] !== r['default-sort-order-id']) throw conflict(`default sort order changed: expected id ${String(r['default-sort-order-id'])} != ${String(md['default-sort-order-id'])}`);
      return;
    default:
      throw bad(`unknown requirement type: ${r.type}`);
  }
}

function applyUpdates(base: Record<string, unknown>, updates: unknown[]): Record<string, unknown> {
  const md = structuredClone(base);
  let lastUpdated: bigint | undefined;
  let lastAddedSchemaId: number | undefined;
  let lastAddedSpecId: number | undefined;
  let lastAddedOrderId: number | undefined;
  const addedSnapshots = new Set<bigint>();
  const schemas = () => asArray(md.schemas) as Record<string, unknown>[];
  const snapshots = () => asArray(md.snapshots) as Record<string, unknown>[];

  for (const u of updates) {
    if (!isRecord(u) || typeof u.action !== 'string') throw bad('update without an action');
    switch (u.action) {
      case 'assign-uuid':
        if (u.uuid !== md['table-uuid']) throw bad('Cannot reassign uuid');
        break;
      case 'upgrade-format-version': {
        const v = Number(u['format-version']);
        if (v < Number(md['format-version'])) throw bad(`Cannot downgrade v${String(md['format-version'])} table to v${v}`);
        if (v > 3) throw bad(`Unsupported format version: v${v}`);
        md['format-version'] = v;
        break;
      }
      case 'add-schema': {
        const schema = u.schema;
        if (!isRecord(schema) || schema.type !== 'struct') throw bad('add-schema needs a struct schema');
        const same = schemas().find((s) => stringifyJson(s.fields) === stringifyJson(schema.fields) && stringifyJson(s['identifier-field-ids'] ?? []) === stringifyJson(schema['identifier-field-ids'] ?? []));
        const id = same ? Number(same['schema-id']) : Math.max(-1, ...schemas().map((s) => Number(s['schema-id']))) + 1;
        if (!same) md.schemas = [...schemas(), { ...schema, 'schema-id': id }];
        const lastCol = Math.max(Number(md['last-column-id']), maxFieldId(schema), typeof u['last-column-id'] === 'number' ? u['last-column-id'] : 0);
        md['last-column-id'] = lastCol;
        lastAddedSchemaId = id;
        break;
      }
      case 'set-current-schema': {
        let id = Number(u['schema-id']);
        if (id === -1) {
          if (lastAddedSchemaId === undefined) throw bad('Cannot set last added schema: no schema has been added');
          id = lastAddedSchemaId;
        }
        if (!schemas().some((s) => Number(s['schema-id']) === id)) throw bad(`Cannot set current schema to unknown schema: ${id}`);
        md['current-schema-id'] = id;
        break;
      }
      case 'add-spec': {
        const specs = asArray(md['partition-specs']) as Record<string, unknown>[];
        const id = Math.max(-1, ...specs.map((s) => Number(s['spec-id']))) + 1;
        const { spec, last } = freshSpec(u.spec, id, Number(md['last-partition-id'] ?? 999));
        md['partition-specs'] = [...specs, spec];
        md['last-partition-id'] = last;
        lastAddedSpecId = id;
        break;
      }
      case 'set-default-spec': {
        let id = Number(u['spec-id']);
        if (id === -1) {
          if (lastAddedSpecId === undefined) throw bad('Cannot set last added spec: no spec has been added');
          id = lastAddedSpecId;
        }
        if (!(asArray(md['partition-specs']) as Record<string, unknown>[]).some((s) => Number(s['spec-id']) === id)) throw bad(`Cannot set default partition spec to unknown spec: ${id}`);
        md['default-spec-id'] = id;
        break;
      }
      case 'add-sort-order': {
        const order = u['sort-order'];
        const fields = isRecord(order) && Array.isArray(order.fields) ? order.fields : [];
        const orders = asArray(md['sort-orders']) as Record<string, unknown>[];
        const id = fields.length === 0 ? 0 : Math.max(0, ...orders.map((o) => Number(o['order-id']))) + 1;
        if (!orders.some((o) => Number(o['order-id']) === id)) md['sort-orders'] = [...orders, { 'order-id': id, fields }];
        lastAddedOrderId = id;
        break;
      }
      case 'set-default-sort-order': {
        let id = Number(u['sort-order-id']);
        if (id === -1) {
          if (lastAddedOrderId === undefined) throw bad('Cannot set last added sort order: no sort order has been added');
          id = lastAddedOrderId;
        }
        if (!(asArray(md['sort-orders']) as Record<string, unknown>[]).some((o) => Number(o['order-id']) === id)) throw bad(`Cannot set default sort order to unknown order: ${id}`);
        md['default-sort-order-id'] = id;
        break;
      }
      case 'add-snapshot': {
        const snap = u.snapshot;
        if (!isRecord(snap)) throw bad('add-snapshot needs a snapshot');
        const id = asLong(snap['snapshot-id']);
        if (id === undefined) throw bad('snapshot-id is required');
        if (snapshots().some((s) => asLong(s['snapshot-id']) === id)) throw bad(`Snapshot already exists for id: ${id}`);
        if (typeof snap['manifest-list'] !== 'string') throw bad('snapshot manifest-list is required');
        const seq = asLong(snap['sequence-number']) ?? 0n;
        const last = asLong(md['last-sequence-number']) ?? 0n;
        const hasParent = snap['parent-snapshot-id'] !== undefined && snap['parent-snapshot-id'] !== null;
        if (Number(md['format-version']) >= 2 && hasParent && seq <= last) {
          throw bad(`Cannot add snapshot with sequence number ${seq} older than last sequence number ${last}`);
        }
        md.snapshots = [...snapshots(), snap];
        if (seq > last) md['last-sequence-number'] = seq;
        lastUpdated = asLong(snap['timestamp-ms']) ?? BigInt(Date.now());
        addedSnapshots.add(id);
        break;
      }
      case 'set-snapshot-ref': {
        const refName = u['ref-name'];
        if (typeof refName !== 'string') throw bad('set-snapshot-ref needs ref-name');
        const id = asLong(u['snapshot-id']);
        if (id === undefined || !snapshots().some((s) => asLong(s['snapshot-id']) === id)) throw bad(`Cannot set ${refName} to unknown snapshot: ${String(u['snapshot-id'])}`);
        const type = u.type === 'tag' ? 'tag' : 'branch';
        if (refName === 'main' && type !== 'branch') throw bad('main must be a branch');
        const ref: Record<string, unknown> = { 'snapshot-id': id, type };
        for (const k of ['min-snapshots-to-keep', 'max-snapshot-age-ms', 'max-ref-age-ms']) if (u[k] !== undefined && u[k] !== null) ref[k] = u[k];
        const refs = isRecord(md.refs) ? md.refs : {};
        const prev = refs[refName];
        if (isRecord(prev) && asLong(prev['snapshot-id']) === id && prev.type === type) break;
        md.refs = { ...refs, [refName]: ref };
        if (refName === 'main') {
          md['current-snapshot-id'] = id;
          lastUpdated ??= BigInt(Date.now());
          md['snapshot-log'] = [...asArray(md['snapshot-log']), { 'timestamp-ms': lastUpdated, 'snapshot-id': id }];
        }
        break;
      }
      case 'remove-snapshot-ref': {
        const refName = String(u['ref-name']);
        const refs = { ...(isRecord(md.refs) ? md.refs : {}) };
        delete refs[refName];
        md.refs = refs;
        if (refName === 'main') md['current-snapshot-id'] = -1n;
        break;
      }
      case 'remove-snapshots': {
        const ids = new Set(asArray(u['snapshot-ids']).map((x) => asLong(x)));
        md.snapshots = snapshots().filter((s) => !ids.has(asLong(s['snapshot-id'])));
        const refs = { ...(isRecord(md.refs) ? md.refs : {}) };
        for (const [k, v] of Object.entries(refs)) if (isRecord(v) && ids.has(asLong(v['snapshot-id']))) delete refs[k];
        md.refs = refs;
        if (!isRecord(refs.main)) md['current-snapshot-id'] = -1n;
        break;
      }
      case 'set-location': {
        if (typeof u.location !== 'string' || u.location === '') throw bad('set-location needs a location');
        md.location = u.location.replace(/\/+$/, '');
        break;
      }
      case 'set-properties': {
        if (!isRecord(u.updates)) throw bad('set-properties needs updates');
        const props = { ...(isRecord(md.properties) ? md.properties : {}) };
        for (const [k, v] of Object.entries(u.updates)) props[k] = String(v);
        md.properties = props;
        break;
      }
      case 'remove-properties': {
        const props = { ...(isRecord(md.properties) ? md.properties : {}) };
        for (const k of asArray(u.removals)) delete props[String(k)];
        md.properties = props;
        break;
      }
      default:
        throw bad(`unknown update action: ${u.action}`);
    }
  }
  md['last-updated-ms'] = lastUpdated ?? BigInt(Date.now());
  const prevUpdated = asLong(base['last-updated-ms']) ?? 0n;
  // Java rejects metadata whose last-updated-ms runs backwards past the log by > 1 min (gotcha 12).
  if ((md['last-updated-ms'] as bigint) < prevUpdated - 60_000n) {
    throw bad(`last-updated-ms ${String(md['last-updated-ms'])} is more than a minute before the previous ${prevUpdated}`);
  }
  return md;
}

/** Nessie keeps one Iceberg snapshot per Nessie commit: metadata shows only the current one. */
function keepOnlyCurrentSnapshot(md: Record<string, unknown>): void {
  const current = asLong(md['current-snapshot-id']);
  md.snapshots = (asArray(md.snapshots) as Record<string, unknown>[]).filter((s) => asLong(s['snapshot-id']) === current);
  const log = asArray(md['snapshot-log']);
  md['snapshot-log'] = current === undefined || current < 0n ? [] : log.slice(-1);
}

// ---------- fixtures for tests that drive a Catalog by hand ----------

/**
 * Initial (snapshot-less) v2 metadata for a small table at `location`, as a
 * writer would compute it: schema ids 1..3, unpartitioned, unsorted.
 */
export function sampleTableMetadata(location: string): TableMetadata {
  return {
    'format-version': 2,
    'table-uuid': randomUUID(),
    location,
    'last-sequence-number': 0n,
    'last-updated-ms': BigInt(Date.now()),
    'last-column-id': 3,
    'current-schema-id': 0,
    schemas: [
      {
        type: 'struct',
        'schema-id': 0,
        fields: [
          { id: 1, name: 'id', required: true, type: 'long' },
          { id: 2, name: 'name', required: false, type: 'string' },
          { id: 3, name: '_dativo_ingested_at', required: false, type: 'timestamptz' },
        ],
      },
    ],
    'default-spec-id': 0,
    'partition-specs': [{ 'spec-id': 0, fields: [] }],
    'last-partition-id': 999,
    'default-sort-order-id': 0,
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    properties: { 'write.format.default': 'parquet' },
    'current-snapshot-id': -1n,
    refs: {},
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
  };
}

/**
 * The requirements/updates of an append of `snapshotId` on top of `base`
 * (what Java's UpdateRequirements attaches: table uuid + main ref), plus the
 * new metadata a writer would compute (a REST catalog ignores it).
 */
export function appendChange(
  base: { metadata: Record<string, unknown> },
  snapshotId: bigint,
  summary: Record<string, string> = {},
): CommitRequest {
  const md = base.metadata;
  const refs = isRecord(md.refs) ? md.refs : {};
  const main = refs.main;
  const parent = isRecord(main) ? (asLong(main['snapshot-id']) ?? null) : null;
  const seq = (asLong(md['last-sequence-number']) ?? 0n) + 1n;
  const ts = BigInt(Date.now());
  const snapshot: Record<string, unknown> = {
    'snapshot-id': snapshotId,
    ...(parent !== null ? { 'parent-snapshot-id': parent } : {}),
    'sequence-number': seq,
    'timestamp-ms': ts,
    'manifest-list': `${String(md.location)}/metadata/snap-${snapshotId}-1-${randomUUID()}.avro`,
    summary: { operation: 'append', ...summary },
    'schema-id': md['current-schema-id'],
  };
  const newMetadata = {
    ...structuredClone(md),
    'last-sequence-number': seq,
    'last-updated-ms': ts,
    'current-snapshot-id': snapshotId,
    refs: { ...refs, main: { 'snapshot-id': snapshotId, type: 'branch' } },
    snapshots: [...asArray(md.snapshots), snapshot],
    'snapshot-log': [...asArray(md['snapshot-log']), { 'timestamp-ms': ts, 'snapshot-id': snapshotId }],
  } as unknown as TableMetadata;
  return {
    requirements: [
      { type: 'assert-table-uuid', uuid: md['table-uuid'] },
      { type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': parent },
    ],
    updates: [
      { action: 'add-snapshot', snapshot },
      { action: 'set-snapshot-ref', 'ref-name': 'main', type: 'branch', 'snapshot-id': snapshotId },
    ],
    newMetadata,
  };
}
