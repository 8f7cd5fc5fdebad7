/**
 * The state store: what a job remembers between runs (cursors, files seen),
 * one versioned JSON document per job.
 *
 * Design (STYLE.md 7): the document is versioned, written atomically (temp file
 * in the same directory, fsync, rename, fsync of the directory) and a file that
 * cannot be read back exactly — not JSON, cut short, wrong shape, unknown
 * version, another job's state — is a `STATE_CORRUPT` error naming the file
 * and the problem. It is never silently replaced by an empty state: an empty
 * state means "read everything again", which for an append-only target means
 * duplicates. (The Python tool treated a corrupt file as `{}`.)
 *
 * The same rules hold for the Postgres store (state/postgres.ts): one row per
 * job holding the same document, written in a transaction. The store does no
 * locking: one run per job at a time is the job lock's guarantee (lib/lock.ts).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { z } from 'zod';
import { DativoError } from '../lib/errors.js';
import type { StateSpec } from '../lib/plan.js';
import { displayUri } from '../lib/log.js';
import { makeDirs } from '../lib/storage/local.js';
import type { ObjectState } from '../lib/types.js';
import { postgresStateStore } from './postgres.js';

/** The version this code reads and writes. */
export const STATE_VERSION = 1;

/** Everything saved for one job: object name → its state. */
export interface JobState {
  version: 1;
  tenant: string;
  job: string;
  /** Object (stream/table/file set) name → saved state. */
  objects: Record<string, ObjectState>;
  /** ISO time of the last save; `''` for a state that was never saved. */
  updatedAt: string;
}

/** Reads and writes the state of one job. */
export interface StateStore {
  /** Where the state lives, for messages: the absolute path of the state file, or the Postgres table and row (password redacted). */
  readonly path: string;
  /**
   * Load the state. A missing file is a first run: an empty state.
   * @throws DativoError `STATE_CORRUPT` when the file exists but cannot be trusted.
   */
  load(): Promise<JobState>;
  /**
   * Save atomically. `tenant`, `job` and `version` are forced to this store's
   * values; `updatedAt` is set to now.
   * @throws DativoError `STORAGE_NOT_WRITABLE` (permissions, read-only fs) or `STORAGE_IO`.
   */
  save(state: JobState): Promise<void>;
  /**
   * Make sure a save can succeed before a run writes any data: create the
   * state folder if needed and a probe file in it (removed again).
   * @throws DativoError `STORAGE_NOT_WRITABLE` (permissions, read-only fs, a file in the way) or `STORAGE_IO`.
   */
  checkWritable(): Promise<void>;
  /**
   * Forget one object's state, or (without `object`) the whole job's. Resetting
   * the whole job does not read the old file, so it is also the way out of a
   * `STATE_CORRUPT` error.
   */
  reset(object?: string): Promise<void>;
}

/** Tenant and job a state belongs to; a file holding another pair is refused. */
export interface StateIds {
  tenant: string;
  job: string;
}

const fileMarkSchema = z.looseObject({
  size: z.number().int().nonnegative().optional(),
  modifiedAt: z.string(),
});

const cursorSchema = z.looseObject({
  field: z.string(),
  // A string, never a number: JSON numbers lose precision beyond 2^53.
  value: z.string(),
  written: z.array(z.string()),
});

// Loose objects: a field added to ObjectState later (optional, by another
// module) must survive a load/save round trip instead of being stripped.
const objectStateSchema = z.looseObject({
  cursor: cursorSchema.optional(),
  files: z.record(z.string(), fileMarkSchema).optional(),
  runId: z.string().optional(),
  updatedAt: z.string().optional(),
});

const jobStateSchema = z.object({
  version: z.literal(STATE_VERSION),
  tenant: z.string(),
  job: z.string(),
  objects: z.record(z.string(), objectStateSchema),
  updatedAt: z.string(),
});

/** A fresh state for a first run. */
export function emptyState(ids: StateIds): JobState {
  return { version: STATE_VERSION, tenant: ids.tenant, job: ids.job, objects: {}, updatedAt: '' };
}

function corruptError(file: string, problem: string, cause?: unknown, noun = 'state file'): DativoError {
  return new DativoError('STATE_CORRUPT', `${noun} ${file} cannot be used: ${problem}`, {
    ...(cause === undefined ? {} : { cause }),
    context: { file, problem },
  });
}

/**
 * Parse and check the text of a state document. Pure: used by every
 * {@link StateStore.load} and by tools that inspect state. `noun` names what
 * `file` is in the message (default `state file`; the Postgres store says
 * `state row`).
 * @throws DativoError `STATE_CORRUPT` naming `file` and what is wrong.
 */
export function parseState(text: string, file: string, ids: StateIds, noun = 'state file'): JobState {
  const corrupt = (where: string, problem: string, cause?: unknown) => corruptError(where, problem, cause, noun);
  if (text.trim() === '') throw corrupt(file, 'the file is empty (an interrupted write?)');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw corrupt(file, `not valid JSON (${(err as Error).message}); the file may be truncated`, err);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw corrupt(file, 'the top level is not a JSON object');
  }
  const version = (data as Record<string, unknown>).version;
  if (version === undefined) {
    throw corrupt(
      file,
      'it has no "version" field (a state file of the Python dativo-ingest?); move it away or reset the job state',
    );
  }
  if (version !== STATE_VERSION) {
    throw corrupt(file, `unknown state version ${JSON.stringify(version)} (this build reads version ${STATE_VERSION})`);
  }
  const parsed = jobStateSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw corrupt(file, `wrong shape: ${issues.join('; ')}`, parsed.error);
  }
  const state = parsed.data as JobState;
  if (state.tenant !== ids.tenant || state.job !== ids.job) {
    throw corrupt(
      file,
      `it belongs to tenant "${state.tenant}" job "${state.job}", not tenant "${ids.tenant}" job "${ids.job}" (two jobs sharing one state path?)`,
    );
  }
  return state;
}

/**
 * The text to save for `state`: `tenant`, `job` and `version` forced to
 * `ids`, `updatedAt` now, validated with the schema loads use, so a value
 * that would make the next load fail (a number cursor, say) fails now,
 * before the good state is replaced.
 * @throws DativoError `INTERNAL` for a state that does not validate.
 */
export function stateDocument(state: JobState, ids: StateIds, where: string): string {
  const doc: JobState = {
    version: STATE_VERSION,
    tenant: ids.tenant,
    job: ids.job,
    objects: state.objects,
    updatedAt: new Date().toISOString(),
  };
  const checked = jobStateSchema.safeParse(doc);
  if (!checked.success) {
    const issues = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new DativoError('INTERNAL', `refusing to save an invalid state to ${where}: ${issues}`, {
      context: { file: where },
    });
  }
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function writeError(err: unknown, file: string): DativoError {
  const code = (err as NodeJS.ErrnoException).code;
  const context = { file, syscallCode: code };
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR' || code === 'EEXIST') {
    return new DativoError('STORAGE_NOT_WRITABLE', `cannot write state file ${file}: ${(err as Error).message}`, {
      cause: err,
      context,
    });
  }
  return new DativoError('STORAGE_IO', `writing state file ${file} failed: ${(err as Error).message}`, {
    cause: err,
    context,
  });
}

/**
 * Write `text` to `file` atomically: readers see the old or the new content,
 * never a mix, and after return the new content survives a power cut.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  try {
    await makeDirs(dir);
  } catch (err) {
    throw writeError(err, file);
  }
  const tmp = `${dir}/.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw writeError(err, file);
  }
  // The rename is only durable once the directory entry is.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Some file systems cannot fsync a directory; the data itself is synced.
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EACCES') throw writeError(err, file);
  }
}

class FileStateStore implements StateStore {
  constructor(
    readonly path: string,
    private readonly ids: StateIds,
  ) {}

  async load(): Promise<JobState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return emptyState(this.ids);
      if (code === 'EISDIR') throw corruptError(this.path, 'it is a directory', err);
      if (code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') {
        throw new DativoError('STORAGE_NOT_WRITABLE', `cannot use state location ${this.path}: ${(err as Error).message}`, {
          cause: err,
          context: { file: this.path, syscallCode: code },
        });
      }
      throw new DativoError('STORAGE_IO', `reading state file ${this.path} failed: ${(err as Error).message}`, {
        cause: err,
        context: { file: this.path, syscallCode: code },
      });
    }
    return parseState(text, this.path, this.ids);
  }

  async checkWritable(): Promise<void> {
    const dir = dirname(this.path);
    const probe = `${dir}/.${basename(this.path)}.${process.pid}.${randomBytes(6).toString('hex')}.probe`;
    try {
      await makeDirs(dir);
      await (await open(probe, 'wx', 0o644)).close();
    } catch (err) {
      throw writeError(err, this.path);
    } finally {
      await unlink(probe).catch(() => undefined);
    }
  }

  async save(state: JobState): Promise<void> {
    await writeFileAtomic(this.path, stateDocument(state, this.ids, this.path));
  }

  async reset(object?: string): Promise<void> {
    if (object === undefined) {
      await this.save(emptyState(this.ids));
      return;
    }
    const state = await this.load();
    if (!(object in state.objects)) return;
    delete state.objects[object];
    await this.save(state);
  }
}

/**
 * Where the state of one job lives, as {@link StateStore.path} says it: the
 * state file, or the Postgres location (password masked), table and row. Two
 * jobs with the same location share state (and so are the same job).
 */
export function stateLocation(spec: StateSpec, ids: StateIds): string {
  if (spec.kind === 'file') return spec.path;
  return `${displayUri(spec.url)} table ${spec.table} (tenant "${ids.tenant}", job "${ids.job}")`;
}

/**
 * Open the state store of one job. Nothing is read or written until
 * {@link StateStore.load} / {@link StateStore.save}.
 */
export function openStateStore(spec: StateSpec, ids: StateIds): StateStore {
  if (spec.kind === 'postgres') return postgresStateStore(spec, ids);
  if (spec.kind !== 'file') {
    throw new DativoError('CONFIG_INVALID', `unknown state store kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
  }
  return new FileStateStore(spec.path, ids);
}
