/**
 * The `source` keys both tap connectors share (command, config, catalog,
 * timeout, record size limit, environment) and their parsed form.
 */
import path from 'node:path';
import { z } from 'zod';
import type { JobPlan } from '../../lib/plan.js';

/** Default `source.max_record_bytes`: a message line longer than this is rejected, never buffered. */
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** Default `source.timeout_seconds` of one tap process. */
export const DEFAULT_TIMEOUT_SECONDS = 3600;

const numLike = z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v), z.number());

/** Keys of `source` that Singer and Airbyte jobs both have. */
export const tapSourceKeys = {
  /** The tap: an argv array (`[tap-stripe]`, `[node, ./tap.mjs]`), or one executable (a name on PATH or a path). */
  command: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** The tap's own config, written to its config file (`${VAR}`s expanded; never logged). */
  config: z.record(z.string(), z.unknown()).optional(),
  /** A catalog file to use instead of asking the tap (`--discover` / `discover`), relative to the job. */
  catalog: z.string().min(1).optional(),
  timeout_seconds: numLike.pipe(z.number().positive()).optional(),
  max_record_bytes: numLike.pipe(z.number().int().positive()).optional(),
  /** Extra environment variables for the tap process. */
  env: z.record(z.string(), z.string()).optional(),
};

/** Parsed shared settings. */
export interface TapSettings {
  argv: string[];
  config: Record<string, unknown>;
  /** Absolute path of `source.catalog`, if given. */
  catalogFile?: string;
  timeoutMs: number;
  maxRecordBytes: number;
  env: NodeJS.ProcessEnv;
  /** The job's folder: the tap runs there, relative paths resolve against it. */
  cwd: string;
  file: string;
}

/** The shared settings of a plan, `argv` given by the connector (Airbyte may build it from an image). */
export function tapSettings(plan: JobPlan, o: { config?: Record<string, unknown> | undefined; catalog?: string | undefined; timeout_seconds?: number | undefined; max_record_bytes?: number | undefined; env?: Record<string, string> | undefined }, argv: string[]): TapSettings {
  const cwd = plan.file ? path.dirname(plan.file) : process.cwd();
  return {
    argv,
    config: o.config ?? {},
    ...(o.catalog !== undefined ? { catalogFile: path.resolve(cwd, o.catalog) } : {}),
    timeoutMs: Math.round((o.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000),
    maxRecordBytes: o.max_record_bytes ?? DEFAULT_MAX_RECORD_BYTES,
    env: { ...process.env, ...(o.env ?? {}) },
    cwd,
    file: plan.file,
  };
}

/** `source.command` as an argv (a string is one executable, never split on spaces). */
export function commandArgv(command: string | string[]): string[] {
  return typeof command === 'string' ? [command] : [...command];
}
