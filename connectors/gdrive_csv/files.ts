/**
 * The files of one gdrive_csv object as a {@link CsvFileSource}: listed from
 * Drive (explicit ids with files.get, folders and queries with files.list,
 * paginated, shared drives included), each opened as a download whose mark
 * is the listing's `size` and `modifiedTime` — so the CSV connector's
 * planning (`planFileRead`), resume (`continueAt`, `ByteTrail`) and parser
 * apply unchanged.
 *
 * Content: `files.get?alt=media` streamed into the parser (its backpressure
 * reaches the socket: memory does not grow with the file), with `Range`
 * requests for a prefix to verify, the header of a resumed file, and the
 * bytes after the prefix. A native Google Sheet (with `native_sheets:
 * export`) is `files.export` as text/csv — Drive caps an export at 10 MB,
 * so it is held in memory whole; its mark is the export's length and the
 * sheet's modifiedTime, and an unchanged modifiedTime skips it without a
 * download.
 */
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { drive_v3 } from '@googleapis/drive';
import type { ReadContext } from '../../lib/connector.js';
import { DativoError, isDativoError } from '../../lib/errors.js';
import { sdkError } from '../../lib/http.js';
import { Paginator } from '../../lib/paginate.js';
import type { FileMark } from '../../lib/types.js';
import { ByteTrail } from '../csv/resume.js';
import type { CsvFile, CsvFileSource, OpenCsvFile } from '../csv/stream.js';
import { googleCall, type GoogleResource } from '../google/call.js';
import type { GoogleSession } from '../google/session.js';
import type { DriveObjectConfig, GdriveSettings } from './options.js';

export const CONNECTOR = 'gdrive_csv';
export const FOLDER_MIME = 'application/vnd.google-apps.folder';
export const SHEET_MIME = 'application/vnd.google-apps.spreadsheet';
const LIST_FIELDS = 'nextPageToken,incompleteSearch,files(id,name,mimeType,modifiedTime,size,driveId,trashed)';
const FILE_FIELDS = 'id,name,mimeType,modifiedTime,size,driveId,trashed';

/** One Drive file of an object. */
export interface DriveCsvFile extends CsvFile {
  id: string;
  name: string;
  mimeType: string;
  modifiedTime: string;
  /** Bytes (binary files); undefined for a native Sheet. */
  size: number | undefined;
  /** A native Google Sheet read through files.export. */
  exported: boolean;
}

/** `file_<id>`: the state key, as the Python tool named it. */
export function driveStateKey(id: string): string {
  return `file_${id}`;
}

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The files.list `q` of a folder or a query: the CSV MIME types (and Sheets when exported), not trashed. */
export function listQuery(settings: GdriveSettings, where: { folder?: string; query?: string }): string {
  const types = [...settings.mimeTypes, ...(settings.nativeSheets === 'export' ? [SHEET_MIME] : [])];
  const parts = [`(${types.map((t) => `mimeType = ${quote(t)}`).join(' or ')})`, 'trashed = false'];
  if (where.folder !== undefined) parts.unshift(`${quote(where.folder)} in parents`);
  if (where.query !== undefined) parts.push(`(${where.query})`);
  return parts.join(' and ');
}

/** What one read needs. */
export interface DriveSourceDeps {
  ctx: ReadContext;
  /** Opens the credentials and clients: called once, by {@link DriveCsvFiles.list}. */
  session: () => Promise<GoogleSession>;
  settings: GdriveSettings;
  config: DriveObjectConfig;
  /** The run skips unchanged files (incremental, no lookback, not a full refresh). */
  incremental: boolean;
}

/** The Drive files of one object; see the module comment. */
export class DriveCsvFiles implements CsvFileSource<DriveCsvFile> {
  readonly connector = CONNECTOR;
  private gone: Record<string, FileMark> = {};
  private opened: GoogleSession | undefined;

  constructor(private readonly deps: DriveSourceDeps) {}

  private get session(): GoogleSession {
    if (!this.opened) throw new DativoError('INTERNAL', `${CONNECTOR}: a file opened before the listing`);
    return this.opened;
  }

  private get object(): string {
    return this.deps.ctx.object.name;
  }

  private asFile(f: drive_v3.Schema$File, where: GoogleResource): DriveCsvFile {
    if (typeof f.id !== 'string' || typeof f.modifiedTime !== 'string') {
      throw new DativoError('SOURCE_ERROR', `${CONNECTOR}: Drive listed a file of ${where.kind} ${where.id} without id or modifiedTime`, { context: { connector: CONNECTOR }, disposition: 'fatal' });
    }
    const exported = f.mimeType === SHEET_MIME;
    const size = f.size !== undefined && f.size !== null ? Number(f.size) : undefined;
    const name = f.name ?? f.id;
    return { id: f.id, name, mimeType: f.mimeType ?? '', modifiedTime: f.modifiedTime, size, exported, key: driveStateKey(f.id), label: `gdrive:${f.id}/${name}` };
  }

  /** Every file of the object, in order: the explicit ones, then each folder's and query's by name. Files gone since the last run are noted. */
  async list(): Promise<DriveCsvFile[]> {
    const { config, settings, ctx } = this.deps;
    this.opened = await this.deps.session();
    const session = this.opened;
    const out = new Map<string, DriveCsvFile>();
    for (const e of config.files) {
      const resource: GoogleResource = { kind: 'file', id: e.id, ...(e.name !== undefined ? { name: e.name } : {}) };
      const res = await googleCall(session.http, session.auth, { connector: CONNECTOR, what: 'files.get', resource, object: this.object }, (o) =>
        session.drive.files.get({ fileId: e.id, supportsAllDrives: settings.sharedDrives, fields: FILE_FIELDS }, o),
      );
      const f = res.data;
      if (f.mimeType === FOLDER_MIME) throw notCsv(e.id, 'is a folder: list it under source.folders (or folder_id), not files');
      if (f.mimeType === SHEET_MIME && settings.nativeSheets !== 'export') {
        throw notCsv(e.id, 'is a native Google Sheet: set source.native_sheets: export to read it as CSV (or use the google_sheets connector)');
      }
      if (f.trashed === true) ctx.log.warn({ file: e.id }, `${CONNECTOR}: file ${e.id} is in the trash; reading it anyway (it is named in source.files)`);
      out.set(e.id, this.asFile(f, resource));
    }
    const listed: DriveCsvFile[] = [];
    for (const folder of config.folders) {
      const resource: GoogleResource = { kind: 'folder', id: folder.id };
      const meta = await googleCall(session.http, session.auth, { connector: CONNECTOR, what: 'files.get', resource, object: this.object }, (o) =>
        session.drive.files.get({ fileId: folder.id, supportsAllDrives: settings.sharedDrives, fields: 'id,name,mimeType' }, o),
      );
      if (meta.data.mimeType !== FOLDER_MIME) throw notCsv(folder.id, `is not a folder (it is ${meta.data.mimeType ?? 'unknown'}); name files under source.files`);
      listed.push(...(await this.listQuery(listQuery(settings, { folder: folder.id, ...(folder.query !== undefined ? { query: folder.query } : {}) }), { kind: 'folder', id: folder.id, ...(meta.data.name ? { name: meta.data.name } : {}) })));
    }
    for (const q of config.queries) listed.push(...(await this.listQuery(listQuery(settings, { query: q }), { kind: 'query', id: q })));
    listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const f of listed) if (!out.has(f.id)) out.set(f.id, f);
    if (config.folders.length + config.queries.length > 0) this.noteGone(new Set([...out.values()].map((f) => f.key)));
    return [...out.values()];
  }

  /** One files.list query, every page (pages may be short or empty before the last token). */
  private async listQuery(q: string, where: GoogleResource): Promise<DriveCsvFile[]> {
    const { settings } = this.deps;
    const session = this.session;
    const files: DriveCsvFile[] = [];
    const pager = new Paginator<drive_v3.Schema$FileList>({ next: (p) => p.nextPageToken ?? undefined, what: `${CONNECTOR} files.list of ${where.kind} ${where.id}` });
    let pages = 0;
    while (pager.hasMore) {
      const token = pager.token;
      const res = await googleCall(session.http, session.auth, { connector: CONNECTOR, what: 'files.list', resource: where, object: this.object }, (o) =>
        session.drive.files.list(
          {
            q,
            pageSize: settings.pageSize,
            fields: LIST_FIELDS,
            ...(settings.sharedDrives ? { supportsAllDrives: true, includeItemsFromAllDrives: true, corpora: 'allDrives' } : {}),
            ...(token !== undefined ? { pageToken: String(token) } : {}),
          },
          o,
        ),
      );
      pages++;
      if (res.data.incompleteSearch === true) {
        this.deps.ctx.log.warn({ where: where.id }, `${CONNECTOR}: Drive says the search of ${where.kind} ${where.id} was incomplete (not every drive could be searched); files may be missing this run`);
      }
      for (const f of res.data.files ?? []) files.push(this.asFile(f, where));
      pager.advance(res.data);
    }
    this.deps.ctx.log.debug({ where: where.id, files: files.length, pages }, `${CONNECTOR}: listed ${where.kind}`);
    return files;
  }

  /** Files of the last run no longer listed (deleted, trashed, moved, unshared): logged, counted, their marks kept. */
  private noteGone(listed: Set<string>): void {
    const saved = this.deps.ctx.state?.files ?? {};
    const gone = Object.keys(saved).filter((k) => k.startsWith('file_') && !listed.has(k));
    this.gone = Object.fromEntries(gone.map((k) => [k, saved[k]!]));
    if (gone.length === 0) return;
    this.deps.ctx.log.info(
      { event_type: 'gdrive_files_gone', object: this.object, deleted_files: gone.length, files: gone.slice(0, 20).map((k) => k.slice(5)) },
      `${CONNECTOR}: ${gone.length} file(s) read before are no longer listed (deleted, trashed, moved or unshared); their rows stay, and they are not read again should they come back unchanged`,
    );
  }

  /** Files gone since the last run, in the state still (a restored file is then not read twice). */
  retained(): Record<string, FileMark> {
    return { ...this.gone };
  }

  /** How many files of the last run were not listed this run. */
  get goneCount(): number {
    return Object.keys(this.gone).length;
  }

  async open(file: DriveCsvFile, saved: FileMark | undefined): Promise<OpenCsvFile> {
    if (!file.exported) return new DriveDownload(this.deps, this.session, file, { size: file.size ?? 0, modifiedAt: file.modifiedTime });
    // A Sheet's export has no size before it is made: unchanged modifiedTime = unchanged export.
    if (this.deps.incremental && saved !== undefined && saved.modifiedAt === file.modifiedTime && saved.size !== undefined) return new HeldBytes(Buffer.alloc(0), { ...saved });
    const session = this.session;
    const resource: GoogleResource = { kind: 'spreadsheet', id: file.id, name: file.name };
    const res = await googleCall(session.http, session.auth, { connector: CONNECTOR, what: 'files.export', resource, object: this.object }, (o) =>
      session.drive.files.export({ fileId: file.id, mimeType: 'text/csv' }, { ...o, responseType: 'arraybuffer' }),
    );
    const bytes = Buffer.from(res.data as ArrayBuffer);
    return new HeldBytes(bytes, { size: bytes.length, modifiedAt: file.modifiedTime });
  }

  error(err: unknown, file: DriveCsvFile | undefined): DativoError {
    if (isDativoError(err)) return err;
    const context = { object: this.object, ...(file ? { file: file.label } : {}) };
    const e = sdkError(err, CONNECTOR, { context });
    // A download cut off in the middle (premature close, `terminated` from undici): the network's, retried by the scheduler.
    if (e.code === 'INTERNAL' && ((err as { code?: unknown }).code === 'ERR_STREAM_PREMATURE_CLOSE' || /terminated|premature close|other side closed/i.test(e.message))) {
      return new DativoError('SOURCE_UNAVAILABLE', `${CONNECTOR}: the download of ${file?.label ?? 'a file'} was cut off: ${e.message}`, { cause: err, context: { connector: CONNECTOR, ...context } });
    }
    return e;
  }
}

function notCsv(id: string, why: string): DativoError {
  return new DativoError('CONFIG_INVALID', `${CONNECTOR}: ${id} ${why}`, { problems: [{ file: '', key: 'source.files', message: `${id} ${why}` }], context: { connector: CONNECTOR, file: id } });
}

/** A Drive file's bytes over `files.get?alt=media`, ranges on request; every download closed with the file. */
class DriveDownload implements OpenCsvFile {
  private readonly aborts = new Set<AbortController>();
  private readonly streams = new Set<Readable>();
  private closed = false;

  constructor(
    private readonly deps: DriveSourceDeps,
    private readonly session: GoogleSession,
    private readonly file: DriveCsvFile,
    readonly mark: FileMark,
  ) {}

  /** Bytes [start, end) as a Node stream, once the answer's headers are in. */
  private async download(start: number, end: number): Promise<Readable> {
    const { ctx } = this.deps;
    const session = this.session;
    const size = this.mark.size ?? 0;
    const ranged = start > 0 || end < size;
    const ac = new AbortController();
    this.aborts.add(ac);
    const resource: GoogleResource = { kind: 'file', id: this.file.id, name: this.file.name };
    const timeoutMs = session.settings.timeoutMs;
    const res = await googleCall(session.http, session.auth, { connector: CONNECTOR, what: 'files.get alt=media', resource, object: ctx.object.name }, async (o) => {
      // The client's own timeout would cut the body too: ours covers the headers only.
      const timer = setTimeout(() => ac.abort(new DativoError('SOURCE_UNAVAILABLE', `${CONNECTOR}: no answer to the download of ${this.file.label} within ${timeoutMs} ms`, { context: { connector: CONNECTOR, timeoutMs } })), timeoutMs);
      try {
        return await session.drive.files.get(
          { fileId: this.file.id, alt: 'media', supportsAllDrives: this.deps.settings.sharedDrives },
          {
            responseType: 'stream',
            timeout: 0,
            signal: o.signal ? AbortSignal.any([o.signal, ac.signal]) : ac.signal,
            headers: { ...o.headers, ...(ranged ? { range: `bytes=${start}-${end - 1}` } : {}) },
          },
        );
      } finally {
        clearTimeout(timer);
      }
    });
    if (ranged && res.status !== 206 && start > 0) {
      throw new DativoError('SOURCE_ERROR', `${CONNECTOR}: Drive ignored the Range of ${this.file.label} (HTTP ${res.status}); cannot resume after byte ${start}`, { context: { connector: CONNECTOR, file: this.file.label, status: res.status }, disposition: 'fatal' });
    }
    const data = res.data as unknown;
    const body = data instanceof Readable ? data : Readable.fromWeb(data as import('node:stream/web').ReadableStream<Uint8Array>);
    this.streams.add(body);
    body.once('close', () => {
      this.streams.delete(body);
      this.aborts.delete(ac);
    });
    if (this.closed) body.destroy();
    return body;
  }

  async prefix(size: number, cancelled: () => boolean): ReturnType<OpenCsvFile['prefix']> {
    const trail = new ByteTrail();
    let next: number | undefined;
    const body = await this.download(0, Math.min(size + 1, this.mark.size ?? size + 1));
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (cancelled()) return undefined;
        const take = Math.min(chunk.length, size - trail.bytes);
        if (take > 0) trail.feedCommitted(chunk.subarray(0, take));
        if (take < chunk.length) next ??= chunk[take];
      }
    } finally {
      body.destroy();
    }
    return trail.bytes === size ? { trail, next } : undefined;
  }

  async *head(end: number): AsyncGenerator<Buffer> {
    if (end <= 0) return;
    const body = await this.download(0, end);
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) yield chunk;
    } finally {
      body.destroy();
    }
  }

  body(start: number, end: number): Readable {
    const out = new PassThrough({ highWaterMark: 64 * 1024 });
    this.streams.add(out);
    this.download(start, end).then(
      (body) => pipeline(body, out).catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err)))),
      (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))),
    );
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const ac of this.aborts) ac.abort(new DativoError('ABORTED', `${CONNECTOR}: download closed`));
    const open = [...this.streams];
    await Promise.all(
      open.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.closed || s.destroyed) return resolve();
            s.once('close', () => resolve());
            s.destroy();
          }),
      ),
    );
  }
}

/** Bytes held in memory (a Sheet's export, at most 10 MB), read like a file. */
class HeldBytes implements OpenCsvFile {
  constructor(
    private readonly bytes: Buffer,
    readonly mark: FileMark,
  ) {}

  async prefix(size: number): ReturnType<OpenCsvFile['prefix']> {
    if (this.bytes.length < size) return undefined;
    const trail = new ByteTrail();
    trail.feedCommitted(this.bytes.subarray(0, size));
    return { trail, next: this.bytes[size] };
  }

  async *head(end: number): AsyncGenerator<Buffer> {
    yield this.bytes.subarray(0, end);
  }

  body(start: number, end: number): Readable {
    return Readable.from([this.bytes.subarray(start, end)], { objectMode: false });
  }

  async close(): Promise<void> {}
}
