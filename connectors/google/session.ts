/**
 * What a Google connector opens for a read or a check: the settings, the
 * credentials, the HTTP client its calls run under (the job's policy,
 * limiter, call counter and signal) and a Drive v3 client; plus the limiter
 * budget of a Google job (Connector.rateLimits).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { drive, type drive_v3 } from '@googleapis/drive';
import type { HttpClient, HttpFactory } from '../../lib/http.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import { openGoogleAuth, planHttpFactory, type GoogleAuth } from './auth.js';
import { GOOGLE_CLIENT_OPTIONS, googleCall, type GoogleResource } from './call.js';
import { googleSettings, type GoogleSettings } from './options.js';

/** Read-only Drive scope (file metadata and content). */
export const DRIVE_READONLY_SCOPE = 'https://www.googleapis.com/auth/drive.readonly';

/** What {@link openGoogleSession} opens. */
export interface GoogleSession {
  readonly settings: GoogleSettings;
  readonly auth: GoogleAuth;
  /** Every googleapis call runs under this client (`googleCall(session.http, …)`). */
  readonly http: HttpClient;
  /** A Drive v3 client on `base_url`, its own retries off, with the API key when that is the credential. */
  readonly drive: drive_v3.Drive;
}

export interface GoogleSessionOptions {
  /** Connector name (messages, call counts). */
  connector: string;
  /** Secrets-folder key file stem: `gdrive` or `gsheets`. */
  secret: string;
  scopes: readonly string[];
  /** The read's factory (`networkOf(ctx).http`); default for `check`: a client on the plan's policy, no limiter. */
  http?: HttpFactory;
  signal?: AbortSignal;
  log?: Logger;
}

/**
 * Parse the settings, read the credentials (a key file is checked now: a
 * malformed one is CONFIG_INVALID naming it) and build the clients. No
 * request is made yet.
 */
export async function openGoogleSession(plan: JobPlan, opts: GoogleSessionOptions): Promise<GoogleSession> {
  const settings = googleSettings(plan, opts.connector, opts.secret);
  const factory: HttpFactory = opts.http ?? planHttpFactory(plan, opts);
  const auth = await openGoogleAuth(plan, settings, {
    connector: opts.connector,
    scopes: opts.scopes,
    http: factory,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  const http = factory({ credentialKey: auth.credentialKey, timeoutMs: settings.timeoutMs, ...(settings.baseUrl !== undefined ? { baseUrl: settings.baseUrl } : {}) });
  return { settings, auth, http, drive: driveClient(settings, auth) };
}

/** A Drive v3 client for `settings` (no retries of its own; see GOOGLE_CLIENT_OPTIONS). */
export function driveClient(settings: GoogleSettings, auth: GoogleAuth): drive_v3.Drive {
  return drive({
    version: 'v3',
    ...GOOGLE_CLIENT_OPTIONS,
    timeout: settings.timeoutMs,
    ...(settings.baseUrl !== undefined ? { rootUrl: settings.baseUrl } : {}),
    ...(auth.apiKey !== undefined ? { auth: auth.apiKey } : {}),
  });
}

/**
 * One file's Drive metadata (`fields`, default id, name, mimeType,
 * modifiedTime, size), shared drives included; a file that does not exist or
 * is not shared is SOURCE_NOT_FOUND naming it and whom to share it with.
 */
export async function driveFile(s: GoogleSession, fileId: string, opts: { connector: string; kind?: string; fields?: string; object?: string }): Promise<drive_v3.Schema$File> {
  const resource: GoogleResource = { kind: opts.kind ?? 'file', id: fileId };
  const res = await googleCall(s.http, s.auth, { connector: opts.connector, what: 'files.get', resource, ...(opts.object !== undefined ? { object: opts.object } : {}) }, (o) =>
    s.drive.files.get({ fileId, supportsAllDrives: true, fields: opts.fields ?? 'id,name,mimeType,modifiedTime,size,trashed,driveId' }, o),
  );
  return res.data;
}

/**
 * The limiter budget of a Google job: the merged `rate_limits`, keyed by
 * the credential's principal (the service account's e-mail, the OAuth
 * client and token, the API key; hashed) unless `rate_limits.account` names
 * it — Google's quotas are per user and project, whichever tenant's job
 * spends them.
 */
export function googleRateLimits(plan: JobPlan, connector: string, secret: string): Record<string, unknown> | undefined {
  const base: Record<string, unknown> = { ...(plan.source.rateLimits ?? {}) };
  if (base['account'] !== undefined) return base;
  let principal: string;
  try {
    const c = googleSettings(plan, connector, secret).credentials;
    if (c.kind === 'service_account') {
      const email = (JSON.parse(readFileSync(c.file, 'utf8')) as { client_email?: unknown }).client_email;
      principal = typeof email === 'string' ? email : c.file;
    } else if (c.kind === 'oauth2') principal = `${c.clientId}\u0000${c.refreshToken}`;
    else principal = c.apiKey;
  } catch {
    // Reported by the read with file and key; the plan's budget meanwhile.
    return plan.source.rateLimits;
  }
  base['account'] = `google.${createHash('sha256').update(principal).digest('hex').slice(0, 12)}`;
  return base;
}
