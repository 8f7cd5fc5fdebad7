/**
 * What a gdrive_csv job's `source` block says: the options schema (checked
 * by `loadJob` with every other config problem) and the objects its
 * `files`, `folders`, `folder_id` and `query` declare.
 */
import { z } from 'zod';
import { boolLike, intLike, stringLike } from '../../lib/config/zod-util.js';
import type { DeclaredObject, ObjectsContext } from '../../lib/connector.js';
import { DativoError } from '../../lib/errors.js';
import type { JobPlan, SourceObjectSpec } from '../../lib/plan.js';
import type { Asset } from '../../lib/types.js';
import { refineCsvOptions } from '../csv/options.js';
import { GoogleConnectionSchema, GoogleCredentialsSchema } from '../google/options.js';

/** Drive ids: letters, digits, `-` and `_`. */
const driveId = stringLike.pipe(z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be a Drive file or folder id (letters, digits, - and _), e.g. from the URL …/folders/<id>'));

const FileEntry = z.strictObject({ id: driveId, object: stringLike.optional(), name: z.string().optional() });
const FolderEntry = z.strictObject({ id: driveId, object: stringLike.optional(), query: z.string().min(1).optional() });

/** The gdrive_csv connector's keys of the `source` block. */
export const gdriveSourceOptions = z
  .looseObject({
    connection: GoogleConnectionSchema.optional(),
    credentials: GoogleCredentialsSchema.optional(),
    /** Explicit files: `[{id, object}]` as the Python tool. */
    files: z.array(FileEntry).optional(),
    /** Folders, each its CSV files (`query` narrows it). */
    folders: z.array(FolderEntry).optional(),
    /** One folder of the asset's object. */
    folder_id: driveId.optional(),
    /** A Drive query (`name contains 'orders'`): alone, or narrowing `folder_id`. */
    query: z.string().min(1).optional(),
    /** Native Google Sheets in a folder: `export` (files.export as CSV; 10 MB at most) or `skip` (default). */
    native_sheets: z.enum(['export', 'skip']).optional(),
    /** MIME types read as CSV in folders and queries. Default `[text/csv]`. */
    mime_types: z.array(z.string().min(1)).min(1).optional(),
    /** Files of shared drives too (supportsAllDrives / includeItemsFromAllDrives). Default true. */
    include_shared_drives: boolLike.optional(),
    /** files.list page size, 1..1000. Default 1000. */
    page_size: intLike.pipe(z.number().int().min(1).max(1000)).optional(),
    settle_seconds: z.unknown().optional(),
  })
  .superRefine(refineCsvOptions);

/** What one object reads: explicit files, folders and queries. */
export interface DriveObjectConfig {
  files: { id: string; name?: string }[];
  folders: { id: string; query?: string }[];
  queries: string[];
}

/** Reading settings of a plan (beyond the CSV parser's and the connection's). */
export interface GdriveSettings {
  nativeSheets: 'export' | 'skip';
  mimeTypes: string[];
  sharedDrives: boolean;
  pageSize: number;
}

/** The reading settings; the schema has checked them. */
export function gdriveSettings(plan: JobPlan): GdriveSettings {
  const o = gdriveSourceOptions.safeParse(plan.source.options);
  if (!o.success) {
    const problems = o.error.issues.map((i) => ({ file: plan.file, key: ['source', ...i.path.map(String)].join('.'), message: i.message }));
    throw new DativoError('CONFIG_INVALID', `invalid gdrive_csv options: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, { problems, context: { connector: 'gdrive_csv', file: plan.file } });
  }
  return {
    nativeSheets: o.data.native_sheets ?? 'skip',
    mimeTypes: o.data.mime_types ?? ['text/csv'],
    sharedDrives: o.data.include_shared_drives ?? true,
    pageSize: o.data.page_size ?? 1000,
  };
}

/** The object's config as `objects()` declared it. */
export function driveObjectConfig(object: SourceObjectSpec): DriveObjectConfig {
  const c = object.config as Partial<DriveObjectConfig>;
  return { files: c.files ?? [], folders: c.folders ?? [], queries: c.queries ?? [] };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
}

/**
 * The objects of a job: `files` and `folders` entries grouped by their
 * `object` (default the asset's), plus `folder_id` / `query` for the
 * asset's object. A job naming none of them is a problem.
 */
export function gdriveObjects(options: Record<string, unknown>, asset: Asset | undefined, ctx: ObjectsContext): DeclaredObject[] {
  const defaultObject = asset?.object ?? asset?.name ?? 'default';
  const groups = new Map<string, { config: DriveObjectConfig; key: (string | number)[] }>();
  const group = (name: string, key: (string | number)[]): DriveObjectConfig => {
    let g = groups.get(name);
    if (!g) groups.set(name, (g = { config: { files: [], folders: [], queries: [] }, key }));
    return g.config;
  };
  const files = Array.isArray(options['files']) ? (options['files'] as unknown[]) : [];
  files.forEach((e, i) => {
    if (!isRecord(e) || str(e['id']) === undefined) return;
    const name = str(e['name']);
    group(str(e['object']) ?? defaultObject, ['source', 'files', i]).files.push({ id: str(e['id'])!, ...(name !== undefined ? { name } : {}) });
  });
  const folders = Array.isArray(options['folders']) ? (options['folders'] as unknown[]) : [];
  folders.forEach((e, i) => {
    if (!isRecord(e) || str(e['id']) === undefined) return;
    const query = str(e['query']);
    group(str(e['object']) ?? defaultObject, ['source', 'folders', i]).folders.push({ id: str(e['id'])!, ...(query !== undefined ? { query } : {}) });
  });
  const folderId = str(options['folder_id']);
  const query = str(options['query']);
  if (folderId !== undefined) group(defaultObject, ['source', 'folder_id']).folders.push({ id: folderId, ...(query !== undefined ? { query } : {}) });
  else if (query !== undefined) group(defaultObject, ['source', 'query']).queries.push(query);
  if (groups.size === 0 && files.length === 0 && folders.length === 0) {
    ctx.problem(['source'], 'gdrive_csv needs what to read: files: [{id, object}], folder_id (with an optional query), folders: [{id, object, query}] or query');
  }
  return [...groups].map(([name, g]) => ({ name, config: { ...g.config }, key: g.key }));
}
