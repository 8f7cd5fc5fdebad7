/**
 * Which files an object reads, and whether a file changed since the last run.
 * Plain functions: the stream only calls them.
 */
import type { BigIntStats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { DativoError } from '../../lib/errors.js';
import type { SourceObjectSpec } from '../../lib/plan.js';
import type { FileMark } from '../../lib/types.js';

/** One `source.files` entry of a job. */
export interface FileEntry {
  /** File path or glob, as written in the job (relative to the job folder). */
  path: string;
  /** Stable id for the state key; default the path as written. */
  id?: string;
  /** Object the file belongs to; entries of other objects are ignored. */
  object?: string;
}

/** A concrete file to read. */
export interface ResolvedFile {
  /** State key: `file_<id>` (the Python tool's naming). */
  key: string;
  /** Absolute path. */
  path: string;
  /** The path as written in the job (for a glob match: relative to the job folder, see {@link keyPath}). */
  written: string;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string' && v.trim() !== '') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/**
 * The file entries of one object: `config.files` (a list of `{path|file, id?, object?}`
 * or plain strings), or the object config itself when it has `path`/`file`.
 * Entries naming another object are dropped.
 * @throws DativoError `CONFIG_INVALID` when the object has no usable entry.
 */
export function fileEntries(object: SourceObjectSpec): FileEntry[] {
  const cfg = object.config;
  const list: unknown[] = Array.isArray(cfg.files) ? cfg.files : cfg.path !== undefined || cfg.file !== undefined ? [cfg] : [];
  const out: FileEntry[] = [];
  const problems: string[] = [];
  list.forEach((item, i) => {
    const e = typeof item === 'string' ? { path: item } : (item as Record<string, unknown> | null);
    const path = str(e?.path) ?? str(e?.file);
    if (path === undefined) {
      problems.push(`files[${i}]: needs a "path" (or "file")`);
      return;
    }
    const entryObject = str(e?.object);
    if (entryObject !== undefined && entryObject !== object.name) return;
    const id = str(e?.id);
    out.push({ path, ...(id !== undefined ? { id } : {}), ...(entryObject !== undefined ? { object: entryObject } : {}) });
  });
  if (problems.length > 0 || out.length === 0) {
    const message =
      problems.length > 0 ? problems.join('; ') : `object "${object.name}" has no source.files entry (need [{path: ...}])`;
    throw new DativoError('CONFIG_INVALID', `csv: ${message}`, {
      context: { connector: 'csv', object: object.name },
      problems: (problems.length > 0 ? problems : [message]).map((m) => ({ file: '', key: 'source.files', message: m })),
    });
  }
  return out;
}

/** `file_<id>`: the state key of a file, as the Python tool named it. */
export function stateKey(id: string): string {
  return `file_${id}`;
}

function toPosix(p: string): string {
  return sep === '/' ? p : p.split(sep).join('/');
}

/**
 * The path for a state key: relative to the job folder when the file is
 * inside it, else absolute. The config loader makes paths absolute; this
 * gives back what the user wrote (`data/orders.csv`), so keys match the
 * Python tool's and survive moving the whole project.
 */
export function keyPath(abs: string, baseDir: string): string {
  const rel = relative(baseDir, abs);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? toPosix(rel) : toPosix(abs);
}

function notFound(message: string, context: Record<string, unknown>): DativoError {
  return new DativoError('SOURCE_NOT_FOUND', message, { context: { connector: 'csv', ...context } });
}

/**
 * Expand globs (sorted; a glob matching nothing is an error naming the
 * pattern) and check that plain files exist. Relative paths resolve against
 * `baseDir`. A file named twice is read once.
 * @throws DativoError `SOURCE_NOT_FOUND`.
 */
export async function resolveFiles(entries: readonly FileEntry[], baseDir: string): Promise<ResolvedFile[]> {
  const out: ResolvedFile[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (isDynamicPattern(entry.path)) {
      const matches = await glob(entry.path, { cwd: baseDir, absolute: true, onlyFiles: true, expandDirectories: false });
      if (matches.length === 0) {
        throw notFound(`csv: no file matches ${JSON.stringify(entry.path)} (in ${baseDir})`, { file: entry.path, pattern: entry.path });
      }
      for (const abs of matches.map((m) => resolve(m)).sort()) {
        if (seen.has(abs)) continue;
        seen.add(abs);
        const written = keyPath(abs, baseDir);
        out.push({ path: abs, written, key: stateKey(entry.id !== undefined ? `${entry.id}/${written}` : written) });
      }
      continue;
    }
    const abs = resolve(baseDir, entry.path);
    let st;
    try {
      st = await stat(abs);
    } catch (err) {
      throw notFound(`csv: file ${entry.path} not found (${(err as NodeJS.ErrnoException).code ?? 'error'} at ${abs})`, {
        file: abs,
      });
    }
    if (!st.isFile()) throw notFound(`csv: ${entry.path} is not a regular file (${abs})`, { file: abs });
    if (seen.has(abs)) continue;
    seen.add(abs);
    out.push({ path: abs, written: entry.path, key: stateKey(entry.id ?? keyPath(abs, baseDir)) });
  }
  return out;
}

/** ISO-8601 UTC with nanoseconds: a rewrite within the same millisecond still differs. */
export function isoFromNs(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(Number(ms)).toISOString().slice(0, 19)}.${frac}Z`;
}

/** What the state records about a file. */
export function fileMark(st: BigIntStats): FileMark {
  return { size: Number(st.size), modifiedAt: isoFromNs(st.mtimeNs) };
}
