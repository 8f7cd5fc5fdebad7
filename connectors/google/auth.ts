/**
 * Google authentication shared by the Google connectors: a service-account
 * key (a JWT signed with its private key, exchanged for an access token), an
 * OAuth refresh token, or an API key (public files only).
 *
 * Why not google-auth-library's `JWT` client: its token exchange (gtoken)
 * posts to a hard-coded `https://oauth2.googleapis.com/token`, so neither
 * `source.connection.base_url` nor a key file's `token_uri` could point it
 * elsewhere (a proxy, a fake), and its requests would bypass our retry
 * policy. The JWT bearer grant (RFC 7523, as Google documents it for
 * service accounts) is a signed JSON object and one form POST; both flows
 * here go through the job's HTTP layer (lib/http.ts): one retry policy, and
 * the refusals mapped to AUTH_FAILED (exit 3) naming the credential.
 *
 * Secrets: the private key, the client secret, the refresh token, the API
 * key and every access token are never logged and are scrubbed from every
 * error message ({@link GoogleAuth.secrets}).
 */
import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DativoError, isDativoError } from '../../lib/errors.js';
import { apiErrorMessage, HttpClient, type HttpFactory } from '../../lib/http.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import { requestPolicy } from '../../lib/run/network.js';
import { GOOGLE_TOKEN_URL, type GoogleCredentialSpec, type GoogleSettings } from './options.js';

/** Lifetime asked for a service-account token (Google's maximum), in seconds. */
const JWT_LIFETIME_S = 3600;
/** A token is renewed this long before it expires (a request started just before would fail). */
const RENEW_BEFORE_MS = 5 * 60_000;

/** The fields of a service-account JSON key we use. */
export interface ServiceAccountKey {
  clientEmail: string;
  privateKey: KeyObject;
  privateKeyId?: string;
  tokenUri?: string;
  /** The PEM text, to scrub from messages. */
  pem: string;
}

function keyFileError(file: string, configKey: string, message: string): DativoError {
  return new DativoError('CONFIG_INVALID', `${file}: ${message}`, {
    problems: [{ file, key: configKey, message }],
    context: { file, key: configKey },
  });
}

/**
 * Read and check a service-account JSON key. Its text never reaches a
 * message: a JSON syntax error reports the position only.
 * @throws DativoError CONFIG_INVALID naming the file (and `configKey`, where it was configured).
 */
export async function readServiceAccountKey(file: string, configKey: string): Promise<ServiceAccountKey> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw keyFileError(file, configKey, `cannot read the service-account key file (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw keyFileError(file, configKey, `the service-account key file is not valid JSON${at !== undefined ? ` (at character ${at})` : ''}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw keyFileError(file, configKey, 'the service-account key file is not a JSON object');
  const o = json as Record<string, unknown>;
  if (o['type'] !== undefined && o['type'] !== 'service_account') {
    throw keyFileError(file, configKey, `not a service-account key (its "type" is ${JSON.stringify(String(o['type']).slice(0, 40))}; download a JSON key of a service account)`);
  }
  const missing = ['client_email', 'private_key'].filter((k) => typeof o[k] !== 'string' || (o[k] as string).trim() === '');
  if (missing.length > 0) throw keyFileError(file, configKey, `the service-account key file has no ${missing.join(' and no ')}`);
  const pem = o['private_key'] as string;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw keyFileError(file, configKey, 'the private_key of the service-account key file is not a PEM private key');
  }
  if (privateKey.asymmetricKeyType !== 'rsa') throw keyFileError(file, configKey, 'the private_key of the service-account key file is not an RSA key');
  return {
    clientEmail: o['client_email'] as string,
    privateKey,
    pem,
    ...(typeof o['private_key_id'] === 'string' ? { privateKeyId: o['private_key_id'] } : {}),
    ...(typeof o['token_uri'] === 'string' ? { tokenUri: o['token_uri'] } : {}),
  };
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** The signed JWT of the bearer grant (header, claims, RS256 signature). */
export function serviceAccountAssertion(key: ServiceAccountKey, opts: { scopes: readonly string[]; audience: string; nowMs: number; subject?: string }): string {
  const iat = Math.floor(opts.nowMs / 1000);
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', ...(key.privateKeyId !== undefined ? { kid: key.privateKeyId } : {}) }));
  const claims = b64url(
    JSON.stringify({ iss: key.clientEmail, scope: opts.scopes.join(' '), aud: opts.audience, iat, exp: iat + JWT_LIFETIME_S, ...(opts.subject !== undefined ? { sub: opts.subject } : {}) }),
  );
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key.privateKey);
  return `${header}.${claims}.${b64url(signature)}`;
}

/** What {@link openGoogleAuth} needs besides the settings. */
export interface GoogleAuthOptions {
  /** Connector name, for messages and the call counter. */
  connector: string;
  /** OAuth scopes, e.g. `https://www.googleapis.com/auth/drive.readonly`. */
  scopes: readonly string[];
  /** The read's HTTP factory (`networkOf(ctx).http`); default: a client on the plan's policy, no limiter. */
  http?: HttpFactory;
  signal?: AbortSignal;
  log?: Logger;
  /** Default `Date.now`. */
  now?: () => number;
}

/**
 * The credentials of one read: request headers with a fresh access token
 * (or the API key for the client), who files must be shared with, and the
 * secrets to scrub.
 */
export interface GoogleAuth {
  readonly kind: GoogleCredentialSpec['kind'];
  /** The service account's e-mail (what a file or folder must be shared with); undefined for OAuth and API keys. */
  readonly email: string | undefined;
  /** Config key of the credential, for AUTH_FAILED messages (never its value). */
  readonly credentialKey: string;
  /** Whom a file must be shared with, as a sentence part: `share it with x@y.iam.gserviceaccount.com (Viewer is enough)`. */
  readonly shareHint: string;
  /** The API key, for the client's `auth` option (API-key auth only). */
  readonly apiKey: string | undefined;
  /** Values to scrub from messages. */
  readonly secrets: readonly string[];
  /** Headers of the next request (`authorization: Bearer …`; none with an API key). Renews the token when it is close to expiring. */
  headers(): Promise<Record<string, string>>;
  /** Forget the token (after a 401: the next {@link headers} asks for a new one). */
  invalidate(): void;
}

/**
 * Clients on the plan's request policy (retries, timeouts, secrets redacted)
 * without a limiter: what `check` and the token exchange use when the read
 * gives no factory of its own.
 */
export function planHttpFactory(plan: JobPlan, o: { connector: string; signal?: AbortSignal | undefined; log?: Logger | undefined }): HttpFactory {
  return (endpoint) =>
    new HttpClient({
      ...endpoint,
      connector: o.connector,
      policy: requestPolicy(plan),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.log ? { log: o.log } : {}),
      secrets: plan.secrets,
    });
}

/**
 * Open the credentials of `settings`: read and check the key file (service
 * account), nothing over the network yet; the first {@link GoogleAuth.headers}
 * asks for a token.
 * @throws DativoError CONFIG_INVALID for a malformed key file (naming it).
 */
export async function openGoogleAuth(plan: JobPlan, settings: GoogleSettings, opts: GoogleAuthOptions): Promise<GoogleAuth> {
  const c = settings.credentials;
  const now = opts.now ?? Date.now;
  const http = opts.http ?? planHttpFactory(plan, opts);
  if (c.kind === 'api_key') {
    return {
      kind: c.kind,
      email: undefined,
      credentialKey: 'source.connection.api_key',
      shareHint: 'an API key reads only files shared as "anyone with the link": share it so, or use a service account',
      apiKey: c.apiKey,
      secrets: [...plan.secrets, c.apiKey],
      headers: async () => ({}),
      invalidate: () => undefined,
    };
  }
  if (c.kind === 'oauth2') {
    const tokenUrl = settings.tokenUrl ?? GOOGLE_TOKEN_URL;
    const secrets = [...plan.secrets, c.clientSecret, c.refreshToken];
    return new TokenAuth(
      'oauth2',
      undefined,
      'source.credentials.refresh_token',
      'share it with the Google account that granted the refresh token',
      secrets,
      now,
      () =>
        exchange(http, opts.connector, tokenUrl, { grant_type: 'refresh_token', client_id: c.clientId, client_secret: c.clientSecret, refresh_token: c.refreshToken }, {
          credentialKey: 'source.credentials.refresh_token',
          who: `the OAuth refresh token of client ${c.clientId}`,
          hint: 'the refresh token is expired, revoked or not of this client: grant access again and update source.credentials.refresh_token',
          secrets,
        }),
    );
  }
  const key = await readServiceAccountKey(c.file, c.key);
  const tokenUrl = settings.tokenUrl ?? key.tokenUri ?? GOOGLE_TOKEN_URL;
  const secrets = [...plan.secrets, key.pem];
  return new TokenAuth(
    'service_account',
    key.clientEmail,
    c.key,
    `share it with ${key.clientEmail} (Viewer is enough)`,
    secrets,
    now,
    () =>
      exchange(
        http,
        opts.connector,
        tokenUrl,
        {
          grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
          assertion: serviceAccountAssertion(key, { scopes: opts.scopes, audience: tokenUrl, nowMs: now(), ...(c.subject !== undefined ? { subject: c.subject } : {}) }),
        },
        {
          credentialKey: c.key,
          who: `service account ${key.clientEmail} (key ${c.file})`,
          hint: 'the key may be deleted or disabled: create a new JSON key for the service account',
          secrets,
        },
      ),
  );
}

interface Token {
  value: string;
  expiresAt: number;
}

/** What the token endpoint granted. */
interface Grant {
  value: string;
  expiresInS: number;
}

class TokenAuth implements GoogleAuth {
  readonly apiKey = undefined;
  private token: Token | undefined;
  private pending: Promise<Grant> | undefined;
  private readonly tokenSecrets: string[];

  constructor(
    readonly kind: 'service_account' | 'oauth2',
    readonly email: string | undefined,
    readonly credentialKey: string,
    readonly shareHint: string,
    secrets: readonly string[],
    private readonly now: () => number,
    private readonly fetchToken: () => Promise<Grant>,
  ) {
    this.tokenSecrets = [...secrets];
  }

  get secrets(): readonly string[] {
    return this.tokenSecrets;
  }

  async headers(): Promise<Record<string, string>> {
    if (this.token === undefined || this.token.expiresAt - RENEW_BEFORE_MS <= this.now()) {
      // One exchange at a time, whatever the number of requests waiting for it.
      this.pending ??= this.fetchToken().finally(() => {
        this.pending = undefined;
      });
      const grant = await this.pending;
      this.token = { value: grant.value, expiresAt: this.now() + grant.expiresInS * 1000 };
      this.tokenSecrets.push(grant.value);
    }
    return { authorization: `Bearer ${this.token.value}` };
  }

  invalidate(): void {
    this.token = undefined;
  }
}

/** POST a grant to the token endpoint; a refusal is AUTH_FAILED naming the credential. */
async function exchange(
  http: HttpFactory,
  connector: string,
  tokenUrl: string,
  form: Record<string, string>,
  facts: { credentialKey: string; who: string; hint: string; secrets: readonly string[] },
): Promise<Grant> {
  const client = http({ credentialKey: facts.credentialKey, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  let res;
  try {
    res = await client.request<Record<string, unknown>>(tokenUrl, { method: 'POST', body: new URLSearchParams(form).toString(), accept: [400, 401, 403] });
  } catch (err) {
    if (isDativoError(err) && err.code === 'SOURCE_NOT_FOUND') {
      throw new DativoError('CONFIG_INVALID', `${connector}: the token endpoint ${tokenUrl} does not exist (HTTP 404); check source.connection.token_url / base_url`, {
        cause: err,
        problems: [{ file: '', key: 'source.connection.token_url', message: `${tokenUrl} answered 404` }],
        context: { connector, status: 404 },
      });
    }
    throw err;
  }
  if (res.status !== 200) {
    const body = res.body;
    const code = body !== null && typeof body === 'object' && typeof body['error'] === 'string' ? body['error'] : undefined;
    const detail = apiErrorMessage(body);
    let msg = `${connector}: Google refused ${facts.who} (HTTP ${res.status}${code !== undefined ? ` ${code}` : ''}${detail !== undefined && detail !== code ? `: ${detail}` : ''}); ${facts.hint}; check ${facts.credentialKey}`;
    for (const s of facts.secrets) if (s !== '') msg = msg.split(s).join('[REDACTED]');
    throw new DativoError('AUTH_FAILED', msg, { context: { connector, status: res.status, key: facts.credentialKey, ...(code !== undefined ? { oauthError: code } : {}) } });
  }
  const body = res.body ?? {};
  const value = body['access_token'];
  const expiresIn = typeof body['expires_in'] === 'number' ? body['expires_in'] : Number(body['expires_in'] ?? 3600);
  if (typeof value !== 'string' || value === '') {
    throw new DativoError('SOURCE_ERROR', `${connector}: the token endpoint ${tokenUrl} answered without an access_token`, { context: { connector }, disposition: 'fatal' });
  }
  return { value, expiresInS: Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 3600 };
}
