/**
 * Google Sheets source connector through `@googleapis/sheets`: ranges of
 * spreadsheets (`source.sheets`), the header row matched to the asset by
 * name, values read unformatted in windows of rows and converted per the
 * asset (serial dates and times included); incremental by the spreadsheet's
 * Drive `modifiedTime`, a changed object replacing its table (an overwrite
 * snapshot). Every request under the job's retry policy and limiter (the
 * client's own retries off). See docs/connectors/google_sheets.md.
 */
import type { Connector, ConnectorDescriptor, DeclaredObject, ObjectsContext, ReadContext, SourceStream } from '../../lib/connector.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import type { Asset } from '../../lib/types.js';
import { sheetSpecs, sheetsObjects, sheetsSettings, sheetsSourceOptions } from './options.js';
import { googleRateLimits } from '../google/session.js';
import { readSheets, SHEETS_SECRET } from './read.js';

export { sheetsSettings, sheetsSourceOptions } from './options.js';

/** What the registry and the engine know about this connector. */
export const descriptor: ConnectorDescriptor = Object.freeze({
  name: 'google_sheets',
  roles: Object.freeze(['source'] as const),
  allowedInCloud: true,
  incrementalStrategies: Object.freeze(['file_modified']),
  sortedByCursor: false,
  description: 'Google Sheets ranges through the official client: header matched by name, typed values, incremental by Drive modifiedTime (a changed sheet replaces its table)',
});

/**
 * Options valid and every range readable: its spreadsheet's modifiedTime,
 * grid and header row, as a read starts (SOURCE_NOT_FOUND / AUTH_FAILED
 * naming the spreadsheet and whom to share it with; SOURCE_FORMAT for a
 * header that lacks a required column). Reads no data rows.
 */
export async function check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
  const settings = sheetsSettings(plan);
  for (const object of plan.source.objects) {
    const specs = sheetSpecs(plan, object);
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(opts.signal.reason);
    opts.signal.addEventListener('abort', onAbort, { once: true });
    const stream = readSheets(
      {
        plan,
        object,
        state: undefined,
        fullRefresh: true,
        runId: 'check',
        runStartedAt: new Date(),
        signal: ac.signal,
        log: opts.log,
        rejects: { reject: () => undefined, count: 0 },
      },
      { ...settings, windowRows: 1 },
      specs,
    );
    try {
      // The header is matched before the first row comes: one row is enough.
      await stream[Symbol.asyncIterator]().next();
    } finally {
      stream.destroy();
      opts.signal.removeEventListener('abort', onAbort);
    }
  }
}

/** Open the record stream of one object. */
export function read(ctx: ReadContext): SourceStream {
  const settings = sheetsSettings(ctx.plan);
  return readSheets(ctx, settings, sheetSpecs(ctx.plan, ctx.object));
}

/**
 * The limiter's budget: the merged `rate_limits` (recipe: Sheets' 60 read
 * requests per minute per user), keyed by the credential's principal (the
 * shared Google module's, hashed: the service account's e-mail, the OAuth
 * client and token, the API key) unless `rate_limits.account` names the
 * budget (e.g. a project shared by several credentials, at 300/min).
 */
export function rateLimits(plan: JobPlan): Record<string, unknown> | undefined {
  return googleRateLimits(plan, 'google_sheets', SHEETS_SECRET);
}

/** The object `source.sheets` declares (see sheetsObjects). */
export function objects(options: Record<string, unknown>, asset: Asset | undefined, ctx: ObjectsContext): DeclaredObject[] {
  return sheetsObjects(options, asset, ctx);
}

const connector: Connector = Object.freeze({ descriptor, options: sheetsSourceOptions, objects, check, read, rateLimits });
export default connector;
