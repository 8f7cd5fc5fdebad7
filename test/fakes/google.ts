/**
 * A Google API fake on loopback, written from the Drive v3 discovery
 * document (reference/specs/drive-v3-discovery-trimmed.json), Google's OAuth
 * 2.0 docs for service accounts (the JWT bearer grant) and installed apps
 * (refresh tokens), and reference/specs/rate-limits-and-errors.md. Driven
 * through the real `@googleapis/drive` client; the Sheets fake adds its
 * routes with {@link GoogleFake.route} and checks access with
 * {@link GoogleFake.principalOf} / {@link GoogleFake.canRead}.
 *
 * - `POST /token`: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
 *   with an `assertion` whose shape is checked (three base64url parts;
 *   header `alg: RS256`, `typ: JWT`, the key's `kid`; claims `iss` a known
 *   service account, `scope`, `aud` this endpoint, `iat` within 5 minutes of
 *   now, `exp - iat` ≤ 3600) and whose signature is verified with the
 *   account's public key; or `grant_type=refresh_token` with client id,
 *   secret and token. Refusals are 400 `invalid_grant` / 401
 *   `invalid_client` as Google answers them. Access tokens expire after
 *   `tokenLifetimeS`.
 * - Auth on the API: `Authorization: Bearer <token>` (unknown or expired:
 *   401 with Google's error body), or `?key=` (an API key sees only files
 *   shared with anyone with the link).
 * - `GET /drive/v3/files`: `q` (`'<id>' in parents`, `mimeType =|!=`,
 *   `trashed = true|false`, `name = | contains`, `modifiedTime >|>=|<|<=`,
 *   joined by `and`, `or` inside parentheses; anything else is 400
 *   `invalid`), `pageSize` 1..1000 (default 100), `pageToken`, `orderBy`
 *   (ignored: the fake's order is by id), `fields` (partial response: only
 *   `kind,id,name,mimeType` per file by default, as Drive v3 does), shared-drive
 *   files only with `supportsAllDrives` and `includeItemsFromAllDrives`.
 *   {@link GoogleFake.pageSizes} makes pages short or empty before the last
 *   token, as the real API may.
 * - `GET /drive/v3/files/{id}`: metadata (with `fields`), or `alt=media`
 *   content with `Range: bytes=a-b` / `a-` (206 + `Content-Range`); a
 *   generated file is produced as it is sent, with backpressure, so its size
 *   costs no memory. Docs Editors files answer 403 `fileNotDownloadable`.
 * - `GET /drive/v3/files/{id}/export?mimeType=text/csv`: a native
 *   spreadsheet's CSV; over 10 MB is 403 `exportSizeLimitExceeded`.
 * - Not found or not shared with the caller: 404 `notFound` ("File not
 *   found: <id>."), as Drive answers both.
 * - Faults: {@link GoogleFake.fail} queues answers (429 with `Retry-After`,
 *   403 `userRateLimitExceeded`, 5xx, …).
 */
import { createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import type http from 'node:http';
import { FaultQueue, type Fault } from '../helpers/api-fake.js';
import { fakeApi, sendJson, type FakeApi, type SeenRequest } from '../helpers/http-server.js';

/** Drive's folder and spreadsheet MIME types. */
export const FOLDER_MIME = 'application/vnd.google-apps.folder';
export const SHEET_MIME = 'application/vnd.google-apps.spreadsheet';
export const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** files.export's documented cap. */
export const EXPORT_LIMIT_BYTES = 10 * 1024 * 1024;

/** Content generated as it is sent: `chunk(offset, length)` returns those bytes of the file. */
export interface GeneratedContent {
  size: number;
  chunk(offset: number, length: number): Buffer;
}

/** A Drive file as stored. */
export interface FakeFile {
  id: string;
  name: string;
  mimeType: string;
  parents: string[];
  /** ISO-8601 with milliseconds, as Drive writes it. */
  modifiedTime: string;
  createdTime: string;
  /** Shared drive id, when the file lives in one. */
  driveId?: string;
  trashed: boolean;
  /** Bytes (binary files), a generator (large files), or the CSV a native spreadsheet exports as. */
  content?: Buffer | GeneratedContent;
  /** Principals (service-account e-mails, OAuth users) it is shared with. */
  sharedWith: Set<string>;
  /** "Anyone with the link": readable with an API key. */
  public: boolean;
  version: number;
}

/** A service account of the fake: its JSON key as Google issues it, and its public key. */
export interface FakeServiceAccount {
  email: string;
  /** The JSON key file's content (write it to `<secrets>/<tenant>/gdrive.json`). */
  key: Record<string, string>;
  publicKey: KeyObject;
  revoked: boolean;
}

/**
 * A queued fault (test/helpers/api-fake.ts): path prefix (e.g.
 * `/drive/v3/files`; default every path but `/token`), query values (e.g.
 * `{alt: 'media'}`), status, times, headers, body (default Google's error body).
 */
export type GoogleFault = Fault;

/** The caller of an API request: who it acts as. */
export type Principal = { kind: 'user'; email: string } | { kind: 'api_key' };

/** An extra route (the Sheets fake's): answer, or return false to fall through. */
export type RouteHandler = (req: SeenRequest, res: http.ServerResponse, who: Principal) => void | boolean | Promise<void | boolean>;

interface Route {
  method: string;
  path: RegExp;
  handler: RouteHandler;
}

/** Google's error body. */
export function googleErrorBody(code: number, message: string, reason: string, extra: Record<string, unknown> = {}): unknown {
  return { error: { code, message, errors: [{ domain: code === 403 && /RateLimit/.test(reason) ? 'usageLimits' : 'global', reason, message, ...extra }] } };
}

/** The 403 Drive sends when a user's quota is spent. */
export const USER_RATE_LIMIT_403 = googleErrorBody(403, 'User Rate Limit Exceeded', 'userRateLimitExceeded');

let sharedKeyPair: { privateKey: string; publicKey: KeyObject } | undefined;
/** One RSA key pair per process: generating one costs ~100 ms. */
function keyPair(): { privateKey: string; publicKey: KeyObject } {
  if (!sharedKeyPair) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    sharedKeyPair = { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey };
  }
  return sharedKeyPair;
}

function b64json(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** One term of a `q`, or a group. */
type Term = (f: FakeFile) => boolean;

function unquote(s: string): string {
  return s.replace(/^'|'$/g, '').replace(/\\'/g, "'").replace(/\\\\/g, '\\');
}

/**
 * Parse the subset of Drive's query language the fake supports; throws on
 * anything else (the API answers 400 `invalid`).
 */
export function parseQuery(q: string): Term {
  const tokens = q.match(/'(?:[^'\\]|\\.)*'|\(|\)|[<>!=]=?|[A-Za-z_]+/g) ?? [];
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const next = (): string => {
    const t = tokens[i++];
    if (t === undefined) throw new Error('unexpected end of query');
    return t;
  };
  const primary = (): Term => {
    const t = next();
    if (t === '(') {
      const inner = orExpr();
      if (next() !== ')') throw new Error('missing )');
      return inner;
    }
    if (t === 'not') {
      const inner = primary();
      return (f) => !inner(f);
    }
    if (t.startsWith("'")) {
      const value = unquote(t);
      if (next() !== 'in') throw new Error(`expected "in" after ${t}`);
      const field = next();
      if (field !== 'parents') throw new Error(`unsupported: in ${field}`);
      return (f) => f.parents.includes(value);
    }
    const field = t;
    const op = next();
    const raw = next();
    if (!raw.startsWith("'") && raw !== 'true' && raw !== 'false') throw new Error(`bad value ${raw}`);
    const value = unquote(raw);
    switch (field) {
      case 'mimeType':
        if (op === '=') return (f) => f.mimeType === value;
        if (op === '!=') return (f) => f.mimeType !== value;
        break;
      case 'name':
        if (op === '=') return (f) => f.name === value;
        if (op === 'contains') return (f) => f.name.includes(value);
        if (op === '!=') return (f) => f.name !== value;
        break;
      case 'trashed':
        if (op === '=') return (f) => f.trashed === (value === 'true');
        if (op === '!=') return (f) => f.trashed !== (value === 'true');
        break;
      case 'modifiedTime': {
        const t0 = Date.parse(value);
        if (!Number.isFinite(t0)) throw new Error(`bad time ${value}`);
        const cmp = { '>': (a: number) => a > t0, '>=': (a: number) => a >= t0, '<': (a: number) => a < t0, '<=': (a: number) => a <= t0, '=': (a: number) => a === t0 }[op];
        if (cmp) return (f) => cmp(Date.parse(f.modifiedTime));
        break;
      }
    }
    throw new Error(`unsupported term: ${field} ${op} ${raw}`);
  };
  const andExpr = (): Term => {
    let left = primary();
    while (peek() === 'and') {
      next();
      const l = left;
      const r = primary();
      left = (f) => l(f) && r(f);
    }
    return left;
  };
  const orExpr = (): Term => {
    let left = andExpr();
    while (peek() === 'or') {
      next();
      const l = left;
      const r = andExpr();
      left = (f) => l(f) || r(f);
    }
    return left;
  };
  // `contains` is a word: the tokenizer keeps it as one.
  const term = orExpr();
  if (i !== tokens.length) throw new Error(`unexpected ${tokens[i]}`);
  return term;
}

/** Partial response (`fields`): `nextPageToken,files(id,name)` → a picker per level. */
export function parseFields(fields: string | null): Map<string, Set<string> | true> | undefined {
  if (fields === null || fields.trim() === '' || fields.trim() === '*') return undefined;
  const out = new Map<string, Set<string> | true>();
  let depth = 0;
  let cur = '';
  const parts: string[] = [];
  for (const ch of fields) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  for (const p of parts.map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^([A-Za-z]+)\((.*)\)$/.exec(p);
    if (m) out.set(m[1]!, new Set(m[2]!.split(',').map((s) => s.trim().split('/')[0]!)));
    else out.set(p.split('/')[0]!, true);
  }
  return out;
}

const DEFAULT_FILE_FIELDS = new Set(['kind', 'id', 'name', 'mimeType']);

export interface GoogleFakeOptions {
  /** Access-token lifetime, seconds. Default 3599 (Google's). */
  tokenLifetimeS?: number;
  /** Delay before every answer, ms. Default 0. */
  latencyMs?: number;
}

/** The Google fake; see the module comment. */
export class GoogleFake {
  api: FakeApi | undefined;
  readonly files = new Map<string, FakeFile>();
  readonly accounts = new Map<string, FakeServiceAccount>();
  /** OAuth clients: id → {secret, refresh tokens → user}. */
  readonly oauthClients = new Map<string, { secret: string; tokens: Map<string, string> }>();
  readonly apiKeys = new Set<string>();
  /** Access token → {principal, expiry ms}. */
  private readonly tokens = new Map<string, { email: string; expiresAt: number }>();
  private readonly faults = new FaultQueue<GoogleFault>();
  private readonly routes: Route[] = [];
  /** Page sizes served in turn (each capped by `pageSize`); 0 = an empty page with a next token. Default: full pages. */
  pageSizes: number[] | undefined;
  /** The fake's clock, ms; default the wall clock. */
  now: () => number = () => Date.now();
  private seq = 0;
  /** Bytes of file content sent so far (downloads and exports). */
  bytesSent = 0;
  /** Content answers (downloads, exports) still being sent. */
  private readonly sending = new Set<http.ServerResponse>();

  constructor(private readonly opts: GoogleFakeOptions = {}) {}

  get url(): string {
    if (!this.api) throw new Error('GoogleFake not started');
    return this.api.url;
  }

  get tokenUrl(): string {
    return `${this.url}/token`;
  }

  get requests(): SeenRequest[] {
    return this.api?.requests ?? [];
  }

  async start(): Promise<void> {
    this.api = await fakeApi((req, res) => this.handle(req, res));
  }

  async close(): Promise<void> {
    await this.api?.close();
    this.api = undefined;
  }

  openConnections(): number {
    return this.api?.openConnections() ?? 0;
  }

  /** Downloads and exports whose answer is still being sent (the client has not finished or closed them). */
  activeDownloads(): number {
    return this.sending.size;
  }

  /** Forget files, faults and page shapes (accounts, clients and keys stay). */
  reset(): void {
    this.files.clear();
    this.faults.clear();
    this.pageSizes = undefined;
    this.bytesSent = 0;
    if (this.api) this.api.requests.length = 0;
  }

  /** A service account with a fresh key id (one RSA key pair per process). */
  serviceAccount(email = `dativo-${this.accounts.size + 1}@acme-data.iam.gserviceaccount.com`): FakeServiceAccount {
    const { privateKey, publicKey } = keyPair();
    const keyId = randomBytes(20).toString('hex');
    const account: FakeServiceAccount = {
      email,
      publicKey: createPublicKey(publicKey.export({ type: 'spki', format: 'pem' })),
      revoked: false,
      key: {
        type: 'service_account',
        project_id: 'acme-data',
        private_key_id: keyId,
        private_key: privateKey,
        client_email: email,
        client_id: String(100000000000000000000n + BigInt(this.accounts.size)),
        auth_uri: 'https://accounts.google.com/o/oauth2/auth',
        token_uri: this.api ? this.tokenUrl : 'https://oauth2.googleapis.com/token',
        auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
        universe_domain: 'googleapis.com',
      },
    };
    this.accounts.set(email, account);
    return account;
  }

  /** An OAuth client with one refresh token granted by `user`. */
  oauthClient(user: string, clientId = `client-${this.oauthClients.size + 1}.apps.googleusercontent.com`): { clientId: string; clientSecret: string; refreshToken: string } {
    const clientSecret = `GOCSPX-${randomBytes(12).toString('hex')}`;
    const refreshToken = `1//0${randomBytes(24).toString('base64url')}`;
    this.oauthClients.set(clientId, { secret: clientSecret, tokens: new Map([[refreshToken, user]]) });
    return { clientId, clientSecret, refreshToken };
  }

  /** Revoke a refresh token (the user withdrew access). */
  revokeRefreshToken(refreshToken: string): void {
    for (const c of this.oauthClients.values()) c.tokens.delete(refreshToken);
  }

  /** Expire every access token issued so far. */
  expireAccessTokens(): void {
    this.tokens.clear();
  }

  apiKey(): string {
    const k = `AIza${randomBytes(18).toString('base64url')}`;
    this.apiKeys.add(k);
    return k;
  }

  private stamp(): string {
    return new Date(this.now()).toISOString();
  }

  /** Add a file (or folder); returns it. Shared with nobody unless `sharedWith` says so. */
  addFile(f: Partial<FakeFile> & { name: string }, sharedWith: string[] = []): FakeFile {
    const id = f.id ?? `1${String(++this.seq).padStart(5, '0')}${randomBytes(10).toString('base64url').replace(/[-_]/g, 'x')}`;
    const file: FakeFile = {
      id,
      name: f.name,
      mimeType: f.mimeType ?? 'text/csv',
      parents: f.parents ?? [],
      modifiedTime: f.modifiedTime ?? this.stamp(),
      createdTime: f.createdTime ?? f.modifiedTime ?? this.stamp(),
      trashed: f.trashed ?? false,
      sharedWith: new Set([...(f.sharedWith ?? []), ...sharedWith]),
      public: f.public ?? false,
      version: 1,
      ...(f.driveId !== undefined ? { driveId: f.driveId } : {}),
      ...(f.content !== undefined ? { content: f.content } : {}),
    };
    this.files.set(id, file);
    return file;
  }

  addFolder(name: string, sharedWith: string[] = [], extra: Partial<FakeFile> = {}): FakeFile {
    return this.addFile({ ...extra, name, mimeType: FOLDER_MIME }, sharedWith);
  }

  /** Replace or append to a file's content; a new version with a new modifiedTime. */
  setContent(id: string, content: Buffer | GeneratedContent, modifiedTime?: string): FakeFile {
    const f = this.files.get(id);
    if (!f) throw new Error(`no file ${id}`);
    f.content = content;
    f.version++;
    // Drive's modifiedTime has millisecond precision: make each version's distinct.
    const next = modifiedTime ?? this.stamp();
    f.modifiedTime = next <= f.modifiedTime && modifiedTime === undefined ? new Date(Date.parse(f.modifiedTime) + 1).toISOString() : next;
    return f;
  }

  appendContent(id: string, more: string | Buffer): FakeFile {
    const f = this.files.get(id);
    if (!f || !Buffer.isBuffer(f.content)) throw new Error(`no byte content on ${id}`);
    return this.setContent(id, Buffer.concat([f.content, Buffer.from(more)]));
  }

  /** Queue a fault for the next matching request(s). */
  fail(fault: GoogleFault): void {
    this.faults.push(fault);
  }

  /** Add a route before the Drive ones (the Sheets fake). */
  route(method: string, path: RegExp, handler: RouteHandler): void {
    this.routes.push({ method, path, handler });
  }

  /** Who a request acts as (undefined: no or bad credentials; the 401 is already sent when `res` is given). */
  principalOf(req: SeenRequest, res?: http.ServerResponse): Principal | undefined {
    const auth = req.headers['authorization'];
    if (typeof auth === 'string' && auth.startsWith('Bearer ')) {
      const t = this.tokens.get(auth.slice(7));
      if (t && t.expiresAt > this.now()) return { kind: 'user', email: t.email };
      if (res) sendJson(res, 401, googleErrorBody(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'authError', { location: 'Authorization', locationType: 'header' }), { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' });
      return undefined;
    }
    const key = req.query.get('key');
    if (key !== null) {
      if (this.apiKeys.has(key)) return { kind: 'api_key' };
      if (res) sendJson(res, 400, googleErrorBody(400, 'API key not valid. Please pass a valid API key.', 'badRequest'));
      return undefined;
    }
    if (res) sendJson(res, 403, googleErrorBody(403, 'Method doesn\'t allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.', 'forbidden'));
    return undefined;
  }

  /** `who` may read `f`: shared with them, or with any folder above it, or public. */
  canRead(who: Principal, f: FakeFile, depth = 0): boolean {
    if (f.public) return true;
    if (who.kind === 'user' && f.sharedWith.has(who.email)) return true;
    if (depth > 20) return false;
    return f.parents.some((p) => {
      const parent = this.files.get(p);
      return parent !== undefined && this.canRead(who, parent, depth + 1);
    });
  }

  private async handle(req: SeenRequest, res: http.ServerResponse): Promise<void> {
    if (this.opts.latencyMs) await new Promise((r) => setTimeout(r, this.opts.latencyMs));
    if (req.method === 'POST' && req.path === '/token') return this.token(req, res);
    const fault = this.faults.take(req);
    if (fault) {
      sendJson(res, fault.status, fault.body ?? googleErrorBody(fault.status, `fault ${fault.status}`, 'backendError'), fault.headers ?? {});
      return;
    }
    const who = this.principalOf(req, res);
    if (who === undefined) return;
    for (const r of this.routes) {
      if (r.method === req.method && r.path.test(req.path)) {
        const handled = await r.handler(req, res, who);
        if (handled !== false) return;
      }
    }
    if (req.method === 'GET' && req.path === '/drive/v3/files') return this.list(req, res, who);
    const m = /^\/drive\/v3\/files\/([^/]+)(\/export)?$/.exec(req.path);
    if (req.method === 'GET' && m) {
      const f = this.files.get(decodeURIComponent(m[1]!));
      const allDrives = req.query.get('supportsAllDrives') === 'true';
      if (!f || !this.canRead(who, f) || (f.driveId !== undefined && !allDrives)) {
        sendJson(res, 404, googleErrorBody(404, `File not found: ${m[1]}.`, 'notFound', { locationType: 'parameter', location: 'fileId' }));
        return;
      }
      if (m[2]) return this.export(req, res, f);
      if (req.query.get('alt') === 'media') return this.media(req, res, f);
      sendJson(res, 200, this.project(f, fileFields(parseFields(req.query.get('fields')))));
      return;
    }
    sendJson(res, 404, googleErrorBody(404, `Not Found: ${req.method} ${req.path}`, 'notFound'));
  }

  private token(req: SeenRequest, res: http.ServerResponse): void {
    const form = new URLSearchParams(req.body);
    const grant = form.get('grant_type');
    const lifetime = this.opts.tokenLifetimeS ?? 3599;
    const issue = (email: string): void => {
      const token = `ya29.${randomBytes(24).toString('base64url')}`;
      this.tokens.set(token, { email, expiresAt: this.now() + lifetime * 1000 });
      sendJson(res, 200, { access_token: token, expires_in: lifetime, token_type: 'Bearer' });
    };
    const refuse = (status: number, error: string, description: string): void => sendJson(res, status, { error, error_description: description });
    if (grant === JWT_GRANT) {
      const parts = (form.get('assertion') ?? '').split('.');
      if (parts.length !== 3) return refuse(400, 'invalid_request', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
      const header = b64json(parts[0]!);
      const claims = b64json(parts[1]!);
      if (!header || header['alg'] !== 'RS256' || header['typ'] !== 'JWT') return refuse(400, 'invalid_grant', 'Invalid JWT header: alg must be RS256, typ JWT.');
      if (!claims) return refuse(400, 'invalid_grant', 'Invalid JWT claims.');
      const account = typeof claims['iss'] === 'string' ? this.accounts.get(claims['iss']) : undefined;
      if (!account) return refuse(400, 'invalid_grant', 'Invalid grant: account not found');
      if (header['kid'] !== undefined && header['kid'] !== account.key['private_key_id']) return refuse(400, 'invalid_grant', 'Invalid JWT Signature.');
      const okSig = verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), account.publicKey, Buffer.from(parts[2]!, 'base64url'));
      if (!okSig || account.revoked) return refuse(400, 'invalid_grant', 'Invalid JWT Signature.');
      if (claims['aud'] !== this.tokenUrl) return refuse(400, 'invalid_grant', `Invalid JWT: aud must be ${this.tokenUrl}.`);
      const iat = claims['iat'];
      const exp = claims['exp'];
      const nowS = this.now() / 1000;
      if (typeof iat !== 'number' || typeof exp !== 'number' || Math.abs(iat - nowS) > 300 || exp <= iat || exp - iat > 3600) {
        return refuse(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
      }
      if (typeof claims['scope'] !== 'string' || claims['scope'].trim() === '') return refuse(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
      return issue(typeof claims['sub'] === 'string' ? claims['sub'] : account.email);
    }
    if (grant === 'refresh_token') {
      const client = this.oauthClients.get(form.get('client_id') ?? '');
      if (!client || client.secret !== form.get('client_secret')) return refuse(401, 'invalid_client', 'The OAuth client was not found.');
      const user = client.tokens.get(form.get('refresh_token') ?? '');
      if (user === undefined) return refuse(400, 'invalid_grant', 'Token has been expired or revoked.');
      return issue(user);
    }
    refuse(400, 'unsupported_grant_type', `Invalid grant_type: ${grant ?? ''}`);
  }

  /** A file's JSON with the fields asked (Drive v3's default when none). */
  project(f: FakeFile, fields: Set<string> | true): Record<string, unknown> {
    const size = f.content === undefined || f.mimeType.startsWith('application/vnd.google-apps.') ? undefined : Buffer.isBuffer(f.content) ? f.content.length : f.content.size;
    const all: Record<string, unknown> = {
      kind: 'drive#file',
      id: f.id,
      name: f.name,
      mimeType: f.mimeType,
      parents: f.parents,
      modifiedTime: f.modifiedTime,
      createdTime: f.createdTime,
      trashed: f.trashed,
      version: String(f.version),
      ...(size !== undefined ? { size: String(size), headRevisionId: `rev${f.version}` } : {}),
      ...(f.driveId !== undefined ? { driveId: f.driveId } : {}),
    };
    const pick = fields === true ? DEFAULT_FILE_FIELDS : fields;
    if (pick.has('*')) return all;
    return Object.fromEntries(Object.entries(all).filter(([k]) => pick.has(k)));
  }

  private list(req: SeenRequest, res: http.ServerResponse, who: Principal): void {
    const sizeParam = req.query.get('pageSize');
    const pageSize = sizeParam === null ? 100 : Number(sizeParam);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      sendJson(res, 400, googleErrorBody(400, `Invalid value '${sizeParam}'. Values must be within the range: [1, 1000]`, 'invalid', { locationType: 'parameter', location: 'pageSize' }));
      return;
    }
    let term: Term = () => true;
    const q = req.query.get('q');
    if (q !== null && q.trim() !== '') {
      try {
        term = parseQuery(q);
      } catch (err) {
        sendJson(res, 400, googleErrorBody(400, `Invalid Value: ${(err as Error).message}`, 'invalid', { locationType: 'parameter', location: 'q' }));
        return;
      }
    }
    const allDrives = req.query.get('supportsAllDrives') === 'true' && req.query.get('includeItemsFromAllDrives') === 'true';
    const matching = [...this.files.values()]
      .filter((f) => (allDrives || f.driveId === undefined) && this.canRead(who, f) && term(f))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const token = req.query.get('pageToken');
    let start = 0;
    let pageIndex = 0;
    if (token !== null) {
      const m = /^p(\d+)\.(\d+)$/.exec(token);
      if (!m) {
        sendJson(res, 400, googleErrorBody(400, 'Invalid Value', 'invalid', { locationType: 'parameter', location: 'pageToken' }));
        return;
      }
      start = Number(m[1]);
      pageIndex = Number(m[2]);
    }
    const shape = this.pageSizes;
    const count = shape && shape.length > 0 ? Math.min(pageSize, shape[pageIndex % shape.length]!) : pageSize;
    const page = matching.slice(start, start + count);
    const end = start + page.length;
    const fields = parseFields(req.query.get('fields'));
    const fileFieldSet = fields === undefined ? true : (fields.get('files') ?? true);
    const body: Record<string, unknown> = { kind: 'drive#fileList', incompleteSearch: false, files: page.map((f) => this.project(f, fileFieldSet)) };
    if (end < matching.length) body['nextPageToken'] = `p${end}.${pageIndex + 1}`;
    if (fields !== undefined) for (const k of Object.keys(body)) if (!fields.has(k)) delete body[k];
    sendJson(res, 200, body);
  }

  private async media(req: SeenRequest, res: http.ServerResponse, f: FakeFile): Promise<void> {
    if (f.mimeType.startsWith('application/vnd.google-apps.') || f.content === undefined) {
      sendJson(res, 403, googleErrorBody(403, 'Only files with binary content can be downloaded. Use Export with Docs Editors files.', 'fileNotDownloadable', { locationType: 'parameter', location: 'alt' }));
      return;
    }
    const content = f.content;
    const size = Buffer.isBuffer(content) ? content.length : content.size;
    let start = 0;
    let end = size - 1;
    const range = req.headers['range'];
    if (typeof range === 'string') {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
      if (!m || Number(m[1]) >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      start = Number(m[1]);
      if (m[2] !== '') end = Math.min(size - 1, Number(m[2]));
    }
    const length = end - start + 1;
    res.writeHead(range ? 206 : 200, {
      'content-type': f.mimeType,
      'content-length': String(length),
      ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      'accept-ranges': 'bytes',
    });
    await this.send(res, content, start, length);
  }

  /** Write `length` bytes from `start`, waiting for 'drain' (a generated file is made as it goes). */
  private async send(res: http.ServerResponse, content: Buffer | GeneratedContent, start: number, length: number): Promise<void> {
    this.sending.add(res);
    res.once('close', () => this.sending.delete(res));
    const CHUNK = 64 * 1024;
    for (let pos = start; pos < start + length; ) {
      if (res.destroyed) return;
      const n = Math.min(CHUNK, start + length - pos);
      const buf = Buffer.isBuffer(content) ? content.subarray(pos, pos + n) : content.chunk(pos, n);
      pos += n;
      this.bytesSent += n;
      if (!res.write(buf)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    res.end();
  }

  private async export(req: SeenRequest, res: http.ServerResponse, f: FakeFile): Promise<void> {
    const mime = req.query.get('mimeType');
    if (mime === null) {
      sendJson(res, 400, googleErrorBody(400, "Required parameter: mimeType", 'required', { locationType: 'parameter', location: 'mimeType' }));
      return;
    }
    if (!f.mimeType.startsWith('application/vnd.google-apps.') || f.content === undefined) {
      sendJson(res, 403, googleErrorBody(403, 'Export only supports Docs Editors files.', 'fileNotExportable'));
      return;
    }
    if (mime !== 'text/csv' || f.mimeType !== SHEET_MIME) {
      sendJson(res, 400, googleErrorBody(400, `The requested conversion is not supported.`, 'badRequest'));
      return;
    }
    const content = f.content;
    const size = Buffer.isBuffer(content) ? content.length : content.size;
    if (size > EXPORT_LIMIT_BYTES) {
      sendJson(res, 403, googleErrorBody(403, 'This file is too large to be exported.', 'exportSizeLimitExceeded'));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/csv' });
    await this.send(res, content, 0, size);
  }
}

function fileFields(fields: Map<string, Set<string> | true> | undefined): Set<string> | true {
  if (fields === undefined) return true;
  return new Set(fields.keys());
}

/**
 * A CSV generated as it is sent: a header, then rows of fixed width, so any
 * byte range is computed without holding the file. Row i is
 * `<i padded to 10>,name-<i padded to 10>,<i%1000>.<i%100 padded to 2>` and,
 * with `pad`, a fourth column of `pad` letters (wide rows: many MB, few rows).
 * `shape` replaces header and rows (every row as long as row 0, ASCII: a
 * row of another length is an error).
 */
export function generatedCsv(
  rows: number,
  opts: { pad?: number; shape?: { header: string; rowAt(i: number): string } } = {},
): GeneratedContent & { header: string; rowAt(i: number): string } {
  const pad = opts.pad ?? 0;
  const filler = pad > 0 ? `,${'x'.repeat(pad)}` : '';
  const header = opts.shape?.header ?? (pad > 0 ? 'id,name,amount,pad\n' : 'id,name,amount\n');
  const own = (i: number): string => `${String(i).padStart(10, '0')},name-${String(i).padStart(10, '0')},${String(i % 1000).padStart(3, '0')}.${String(i % 100).padStart(2, '0')}${filler}\n`;
  const shaped = opts.shape?.rowAt;
  const rowLen = (shaped ?? own)(0).length;
  const rowAt =
    shaped === undefined
      ? own
      : (i: number): string => {
          const r = shaped(i);
          if (r.length !== rowLen) throw new Error(`generatedCsv: row ${i} is ${r.length} characters, row 0 ${rowLen}`);
          return r;
        };
  const size = header.length + rows * rowLen;
  return {
    header,
    rowAt,
    size,
    chunk(offset: number, length: number): Buffer {
      const out = Buffer.allocUnsafe(length);
      let written = 0;
      let pos = offset;
      if (pos < header.length) {
        const part = header.slice(pos, Math.min(header.length, pos + length));
        written += out.write(part, 0, 'latin1');
        pos += part.length;
      }
      while (written < length) {
        const i = Math.floor((pos - header.length) / rowLen);
        const within = (pos - header.length) % rowLen;
        const part = rowAt(i).slice(within, within + (length - written));
        out.write(part, written, 'latin1');
        written += part.length;
        pos += part.length;
      }
      return out;
    },
  };
}
