/**
 * The Google clients of a Sheets read: `@googleapis/sheets` v4 and the
 * Drive v3 client (for `modifiedTime`), on the job's API root, with the
 * client's own retries off (one retry policy, ours) and the read's agent.
 */
import type http from 'node:http';
import { drive, type drive_v3 } from '@googleapis/drive';
import { sheets, type sheets_v4 } from '@googleapis/sheets';
import { DativoError } from '../../lib/errors.js';
import type { JobPlan } from '../../lib/plan.js';
import type { SheetsSettings } from './options.js';

export interface GoogleClients {
  sheets: sheets_v4.Sheets;
  drive: drive_v3.Drive;
  /** Config key of the credential, named by AUTH_FAILED. */
  credentialKey: string;
  /** Who reads: a service account's email, or "an API key". */
  principal: string;
  /** How to give that principal access, for not-shared errors. */
  shareHint: string;
  /** Secret values scrubbed from messages. */
  secrets: string[];
}

/** The clients of a plan. @throws DativoError CONFIG_INVALID when the job names no credential. */
export function googleClients(plan: JobPlan, settings: SheetsSettings, agent: http.Agent): GoogleClients {
  if (settings.apiKey === undefined) {
    const key = 'source.connection.api_key';
    throw new DativoError('CONFIG_INVALID', `google_sheets: no credential: set ${key}`, { problems: [{ file: plan.file, key, message: 'needs an API key' }], context: { connector: 'google_sheets', key, file: plan.file } });
  }
  const options = {
    auth: settings.apiKey,
    retry: false,
    timeout: settings.timeoutMs,
    agent,
    ...(settings.baseUrl !== undefined ? { rootUrl: settings.baseUrl.endsWith('/') ? settings.baseUrl : `${settings.baseUrl}/` } : {}),
  };
  return {
    sheets: sheets({ version: 'v4', ...options }),
    drive: drive({ version: 'v3', ...options }),
    credentialKey: 'source.connection.api_key',
    principal: 'an API key',
    shareHint: 'an API key reads only spreadsheets shared as "Anyone with the link" (Viewer); share it so, or use a service account and share it with the account\'s email',
    secrets: [settings.apiKey],
  };
}
