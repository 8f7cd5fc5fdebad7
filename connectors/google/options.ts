/**
 * The `source.connection` and `source.credentials` keys every Google
 * connector (gdrive_csv, google_sheets) shares, checked once: where the API
 * is (`base_url`, for tests and proxies), how to authenticate (a
 * service-account key file, an OAuth refresh token, or an API key for public
 * files). See docs/connectors/gdrive_csv.md, "Authentication".
 */
import path from 'node:path';
import { z } from 'zod';
import { sourceOptionsError, sourceProblems } from '../../lib/config/source-options.js';
import { numLike } from '../../lib/config/zod-util.js';
import type { ConfigProblem } from '../../lib/errors.js';
import type { JobPlan } from '../../lib/plan.js';

/** Google's OAuth 2.0 token endpoint (service-account JWTs and refresh tokens alike). */
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

const httpUrl = z.url({ protocol: /^https?$/ });

/** `source.connection` of a Google job. */
export const GoogleConnectionSchema = z.looseObject({
  /**
   * API root instead of `https://www.googleapis.com/` (Drive) /
   * `https://sheets.googleapis.com/` (Sheets): a proxy or a fake. The token
   * endpoint then defaults to `<base_url>/token` (not for a `*.googleapis.com` root).
   */
  base_url: httpUrl.optional(),
  /** OAuth token endpoint. Default: the key file's `token_uri`, else `<base_url>/token`, else Google's. */
  token_url: httpUrl.optional(),
  /** An API key: reads files shared as "anyone with the link" only. */
  api_key: z.string().min(1).optional(),
  /** Timeout of one request (headers; a download's body streams on), in seconds. Default 120. */
  timeout_seconds: numLike.pipe(z.number().positive().max(3600)).optional(),
});

/** `source.credentials` of a Google job (the Python tool's keys included). */
export const GoogleCredentialsSchema = z.looseObject({
  type: z.enum(['service_account', 'oauth2', 'oauth', 'refresh_token', 'api_key']).optional(),
  /** Path of the service-account JSON key (relative to the job folder). Aliases as the Python tool read them. */
  service_account_file: z.string().min(1).optional(),
  credentials_path: z.string().min(1).optional(),
  file: z.string().min(1).optional(),
  path: z.string().min(1).optional(),
  /** `/secrets/{tenant}/gdrive.json`: `{tenant}` is the job's tenant (the Python tool's recipes). */
  file_template: z.string().min(1).optional(),
  /** Domain-wide delegation: the user the service account acts as. */
  subject: z.email().optional(),
  client_id: z.string().min(1).optional(),
  client_secret: z.string().min(1).optional(),
  refresh_token: z.string().min(1).optional(),
});

/** The keys of `source` the shared Google module reads; a connector extends it with its own. */
export const googleSourceOptions = z.looseObject({
  connection: GoogleConnectionSchema.optional(),
  credentials: GoogleCredentialsSchema.optional(),
});

/** How a job authenticates, before any file is read. */
export type GoogleCredentialSpec =
  | { kind: 'service_account'; file: string; key: string; subject?: string }
  | { kind: 'oauth2'; clientId: string; clientSecret: string; refreshToken: string }
  | { kind: 'api_key'; apiKey: string };

/** Parsed connection settings. */
export interface GoogleSettings {
  /** API root override, with a trailing slash; undefined: the library's own. */
  baseUrl?: string;
  /** `connection.token_url`, else `<base_url>/token` (a root outside googleapis.com); undefined: the key file's `token_uri`, else Google's. */
  tokenUrl?: string;
  timeoutMs: number;
  credentials: GoogleCredentialSpec;
}

/**
 * The connection settings of a plan. `secret` names the key file the Python
 * tool kept in the secrets folder (`gdrive` → `<secrets-dir>/<tenant>/gdrive.json`).
 *
 * Which credential: `credentials.type` when given; else a `refresh_token`
 * means OAuth, an explicit key file a service account, a
 * `connection.api_key` an API key, and otherwise the service-account key in
 * the secrets folder.
 * @throws DativoError CONFIG_INVALID naming every bad key (never a value).
 */
export function googleSettings(plan: JobPlan, connector: string, secret: string): GoogleSettings {
  const parsed = googleSourceOptions.safeParse(plan.source.options);
  if (!parsed.success) throw sourceOptionsError(sourceProblems(parsed.error, plan.file), plan.file, connector);
  const conn = parsed.data.connection ?? {};
  const cred = parsed.data.credentials ?? {};
  const problems: ConfigProblem[] = [];
  const bad = (key: string, message: string): void => {
    problems.push({ file: plan.file, key, message });
  };
  const explicitFile = cred.service_account_file ?? cred.credentials_path ?? cred.file ?? cred.path;
  const type = cred.type === 'oauth' || cred.type === 'refresh_token' ? 'oauth2' : cred.type;
  const kind = type ?? (cred.refresh_token !== undefined ? 'oauth2' : explicitFile !== undefined || cred.file_template !== undefined ? 'service_account' : conn.api_key !== undefined ? 'api_key' : 'service_account');
  let credentials: GoogleCredentialSpec | undefined;
  if (kind === 'oauth2') {
    if (cred.client_id === undefined) bad('source.credentials.client_id', 'an OAuth refresh token needs the client id it was issued to');
    if (cred.client_secret === undefined) bad('source.credentials.client_secret', 'an OAuth refresh token needs its client secret');
    if (cred.refresh_token === undefined) bad('source.credentials.refresh_token', 'required for OAuth (e.g. "${GOOGLE_REFRESH_TOKEN}")');
    if (cred.client_id !== undefined && cred.client_secret !== undefined && cred.refresh_token !== undefined) {
      credentials = { kind, clientId: cred.client_id, clientSecret: cred.client_secret, refreshToken: cred.refresh_token };
    }
  } else if (kind === 'api_key') {
    if (conn.api_key === undefined) bad('source.connection.api_key', 'required with credentials.type: api_key');
    else credentials = { kind, apiKey: conn.api_key };
  } else {
    const located = keyFileOf(plan, explicitFile, cred.file_template, secret);
    if ('problem' in located) bad(located.key, located.problem);
    else credentials = { kind: 'service_account', file: located.file, key: located.key, ...(cred.subject !== undefined ? { subject: cred.subject } : {}) };
  }
  if (problems.length > 0 || credentials === undefined) throw sourceOptionsError(problems, plan.file, connector);
  const baseUrl = conn.base_url === undefined ? undefined : conn.base_url.endsWith('/') ? conn.base_url : `${conn.base_url}/`;
  // A proxy or fake answers the token endpoint too; Google's own API hosts do not.
  const tokenUrl = conn.token_url ?? (baseUrl !== undefined && !/(^|\.)googleapis\.com$/i.test(new URL(baseUrl).hostname) ? new URL('token', baseUrl).href : undefined);
  return {
    ...(baseUrl !== undefined ? { baseUrl } : {}),
    ...(tokenUrl !== undefined ? { tokenUrl } : {}),
    timeoutMs: Math.round((conn.timeout_seconds ?? 120) * 1000),
    credentials,
  };
}

/** Where the service-account key is: an explicit path, the template, or `<secrets-dir>/<tenant>/<secret>.json`. */
function keyFileOf(plan: JobPlan, explicit: string | undefined, template: string | undefined, secret: string): { file: string; key: string } | { problem: string; key: string } {
  const jobDir = plan.file ? path.dirname(plan.file) : process.cwd();
  if (explicit !== undefined) return { file: path.resolve(jobDir, explicit), key: 'source.credentials.service_account_file' };
  if (template !== undefined) {
    return { file: path.resolve(jobDir, template.replaceAll('{tenant}', plan.tenantId).replaceAll('{tenant_id}', plan.tenantId)), key: 'source.credentials.file_template' };
  }
  if (plan.secretsDir === undefined) {
    return {
      key: 'source.credentials',
      problem: `no Google credentials: give --secrets-dir (the service-account key is <secrets-dir>/${plan.tenantId}/${secret}.json), source.credentials.service_account_file, source.credentials.refresh_token (with client_id and client_secret) or source.connection.api_key`,
    };
  }
  return { file: path.join(plan.secretsDir, plan.tenantId, `${secret}.json`), key: `secrets ${plan.tenantId}/${secret}.json` };
}
