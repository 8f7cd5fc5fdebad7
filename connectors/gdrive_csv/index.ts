/**
 * The `gdrive_csv` connector: CSV files on Google Drive — in folders, by a
 * Drive query, or by explicit ids (`source.files: [{id, object}]` as the
 * Python tool) — through the real `@googleapis/drive` client under the
 * job's retry policy and limiter. Each file's content is streamed into the
 * CSV connector's parser (one parser, one reject path: connectors/csv), so
 * memory does not grow with the file; incremental by the file id and its
 * `modifiedTime` + `size` with the CSV connector's resume logic (unchanged:
 * skipped; appended: only the new records; otherwise rewritten:
 * SOURCE_REWRITTEN); files gone since the last run are logged and counted.
 * Native Google Sheets are exported as CSV or skipped (`native_sheets`).
 * See docs/connectors/gdrive_csv.md.
 */
import type { Connector, ConnectorDescriptor, ReadContext, SourceStream } from '../../lib/connector.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import { networkOf } from '../../lib/run/network.js';
import { parseCsvOptions } from '../csv/options.js';
import { CsvSourceStream } from '../csv/stream.js';
import { googleCall } from '../google/call.js';
import { DRIVE_READONLY_SCOPE, googleRateLimits, openGoogleSession, type GoogleSession } from '../google/session.js';
import { CONNECTOR, DriveCsvFiles, FOLDER_MIME, listQuery } from './files.js';
import { driveObjectConfig, gdriveObjects, gdriveSettings, gdriveSourceOptions } from './options.js';

/** The connector's descriptor (frozen). */
export const descriptor: ConnectorDescriptor = Object.freeze({
  name: CONNECTOR,
  roles: Object.freeze(['source'] as const),
  allowedInCloud: true,
  incrementalStrategies: Object.freeze(['file_modified']),
  sortedByCursor: false,
  description: 'CSV files on Google Drive (folders, queries or ids; shared drives included); streamed, incremental by modifiedTime with appended rows resumed',
});

/** Secrets-folder key file: `<secrets-dir>/<tenant>/gdrive.json`. */
const SECRET = 'gdrive';

function open(plan: JobPlan, opts: { signal: AbortSignal; log: Logger; ctx?: ReadContext }): Promise<GoogleSession> {
  return openGoogleSession(plan, {
    connector: CONNECTOR,
    secret: SECRET,
    scopes: [DRIVE_READONLY_SCOPE],
    signal: opts.signal,
    log: opts.log,
    ...(opts.ctx ? { http: networkOf(opts.ctx, CONNECTOR).http } : {}),
  });
}

/** The `gdrive_csv` connector. */
const gdriveCsv: Connector = Object.freeze({
  descriptor,
  options: gdriveSourceOptions,
  objects: gdriveObjects,

  /** Credentials accepted, and every folder and file of every object readable by them (one metadata call each). */
  async check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
    parseCsvOptions(plan.source.options, plan.file);
    const settings = gdriveSettings(plan);
    const s = await open(plan, opts);
    for (const object of plan.source.objects) {
      const c = driveObjectConfig(object);
      for (const f of c.files) {
        await googleCall(s.http, s.auth, { connector: CONNECTOR, what: 'files.get', resource: { kind: 'file', id: f.id }, object: object.name }, (o) =>
          s.drive.files.get({ fileId: f.id, supportsAllDrives: settings.sharedDrives, fields: 'id' }, o),
        );
      }
      for (const folder of c.folders) {
        const meta = await googleCall(s.http, s.auth, { connector: CONNECTOR, what: 'files.get', resource: { kind: 'folder', id: folder.id }, object: object.name }, (o) =>
          s.drive.files.get({ fileId: folder.id, supportsAllDrives: settings.sharedDrives, fields: 'id,mimeType' }, o),
        );
        if (meta.data.mimeType !== FOLDER_MIME) opts.log.warn({ folder: folder.id }, `${CONNECTOR}: ${folder.id} is not a folder`);
      }
      for (const q of c.queries) {
        await googleCall(s.http, s.auth, { connector: CONNECTOR, what: 'files.list', resource: { kind: 'query', id: q }, object: object.name }, (o) =>
          s.drive.files.list({ q: listQuery(settings, { query: q }), pageSize: 1, fields: 'files(id)', ...(settings.sharedDrives ? { supportsAllDrives: true, includeItemsFromAllDrives: true } : {}) }, o),
        );
      }
    }
  },

  /** A stream of the object's records (string values, `{file, line}` locations), as the CSV connector's. */
  read(ctx: ReadContext): SourceStream {
    const inc = ctx.plan.source.incremental;
    const incremental = !ctx.fullRefresh && inc !== undefined && inc.lookbackDays === 0;
    const options = parseCsvOptions(ctx.plan.source.options, ctx.plan.file);
    const files = new DriveCsvFiles({
      ctx,
      session: () => open(ctx.plan, { signal: ctx.signal, log: ctx.log, ctx }),
      settings: gdriveSettings(ctx.plan),
      config: driveObjectConfig(ctx.object),
      incremental,
    });
    return new CsvSourceStream(ctx, { options, skipUnchanged: incremental }, files);
  },

  /** The recipe's Drive budget, keyed by the credential's principal (connectors/google/session.ts). */
  rateLimits(plan: JobPlan): Record<string, unknown> | undefined {
    return googleRateLimits(plan, CONNECTOR, SECRET);
  },
});

export default gdriveCsv;
