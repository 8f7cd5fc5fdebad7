/**
 * The contract between the engine and a source connector. A connector is one
 * folder `connectors/<name>/` whose `index.ts` default-exports a {@link Connector}.
 * The engine in `lib/` knows no particular connector; `connectors/index.ts`
 * maps names to modules.
 */
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { HttpFactory } from './http.js';
import type { Limiter } from './limiter.js';
import type { Logger } from './log.js';
import type { JobPlan, SourceObjectSpec } from './plan.js';
import type { ColumnarText } from './records/columnar.js';
import type { CursorWindow } from './records/cursor.js';
import type { PackedRecords } from './records/packed.js';
import type { Asset, ObjectState, Row } from './types.js';

export type { CursorWindow } from './records/cursor.js';

export interface ConnectorDescriptor {
  /** Stable name used in recipes and state keys. Never derived from a class name. */
  readonly name: string;
  readonly roles: readonly ('source' | 'target')[];
  /** Databases reach into private networks: refused in `--mode cloud`. */
  readonly allowedInCloud: boolean;
  /** Strategies this connector supports; the first is the default. */
  readonly incrementalStrategies: readonly string[];
  /** True when records come out ordered by the cursor field. */
  readonly sortedByCursor: boolean;
  readonly description: string;
}

/**
 * Keys of the `source` block that every connector has, whatever its options
 * schema: the engine reads or passes them on (`objects`/`object` name API
 * streams, `incremental` the sync, the rest are recipe defaults).
 */
export const COMMON_SOURCE_KEYS: readonly string[] = Object.freeze([
  'type',
  'description',
  'object',
  'objects',
  'incremental',
  'connection',
  'credentials',
  'engine',
  'rate_limits',
  'parallel_objects',
  'custom_reader',
  'dsn',
  'wal',
]);

/** An object a connector declares from its options (see {@link Connector.objects}). */
export interface DeclaredObject extends SourceObjectSpec {
  /** Where it is declared, e.g. `['source', 'tables', 0]`: messages (a name read twice) point there. */
  key: readonly (string | number)[];
  /** The cursor column the declaration names (a table's `cursor_field`): it beats the asset's. */
  cursorField?: string;
}

/** What {@link Connector.objects} gets besides the options. */
export interface ObjectsContext {
  /** Absolute path of the job file. */
  file: string;
  /** The job's folder: relative paths in options resolve against it, then against `cwd`. */
  jobDir: string;
  cwd: string;
  /** Record a config problem at `key` (e.g. `['source', 'tables', 2]`); the file and YAML line are added. */
  problem(key: readonly (string | number)[], message: string): void;
}

/** A rejected input, written as one NDJSON line to the reject file. */
export interface Reject {
  /** Why it was rejected (human readable). */
  reason: string;
  /** Machine-readable reason code, e.g. `type`, `required`, `csv_quote`, `column_count`. */
  code: string;
  /** The record or raw text as read. */
  record?: unknown;
  /** Where it was found: file, line, page, ... */
  location?: Record<string, unknown>;
  /** The column(s) at fault, if known. */
  fields?: string[];
}

/** Receives rejects; counts them and appends them to the run's reject file. */
export interface RejectSink {
  reject(r: Reject): void;
  readonly count: number;
}

/** Everything a connector gets when asked to read one object. */
export interface ReadContext {
  plan: JobPlan;
  object: SourceObjectSpec;
  /** Saved state of this object (undefined on the first run or after a reset). */
  state: ObjectState | undefined;
  /** Full refresh ignores the saved cursor. */
  fullRefresh: boolean;
  runId: string;
  runStartedAt: Date;
  signal: AbortSignal;
  log: Logger;
  rejects: RejectSink;
  /**
   * The rate limiter of this job's (connector, account), from `rate_limits`.
   * Requests made through {@link http} already use it; an SDK call runs under
   * it with `http(endpoint).withPolicy(fn)`. Set by `runJob`; a context built
   * by hand may leave it out: connectors read both through `networkOf(ctx)`
   * (lib/run/network.ts), which falls back to a process-wide limiter.
   */
  limiter?: Limiter;
  /**
   * HTTP clients bound to the job's retry policy, the limiter, this object's
   * API call count (the summary's `api_calls`), `signal` and `log`; the
   * connector adds base URL, auth headers and the credential's config key.
   * Set by `runJob`; see {@link limiter} for hand-built contexts.
   */
  http?: HttpFactory;
  /**
   * A source that bounds its read at both ends (`from <= cursor < watermark`,
   * the watermark from the source's own clock or data) reports the window
   * here, once, before its first record: the engine then saves the
   * watermark as the next cursor and keeps no tie keys. A source that does
   * not call it gets the tie-key protocol (lib/records/cursor.ts). Absent
   * when the engine tracks no cursor (full refresh, file-based incremental).
   */
  reportWindow?: (window: CursorWindow) => void;
  /**
   * Set when the stages after the source coerce in worker threads: a source
   * that splits text into string records may then emit batches of up to
   * `batchRows` records as {@link PackedRecords} (lib/records/packed.ts)
   * instead of one object per record, in order with the rest, with one
   * file and header per batch. A batch ends before any record the source
   * itself rejects is reported. Sources that do not split text ignore it.
   */
  packedRecords?: { batchRows: number };
  /**
   * Set when nothing between the source and a Parquet sink needs records
   * (the columnar path, lib/stages/columnar.ts): a source that splits UTF-8
   * text may then emit its well-formed records as {@link ColumnarText}
   * batches (lib/records/columnar.ts: bytes and field offsets), in order with
   * the rest, one file and header per batch, each batch ending before any
   * record the source itself rejects. Sources that cannot ignore it.
   */
  columnarText?: boolean;
}

/**
 * An object-mode Readable of raw records. A file-based source also reports
 * what it read, through `checkpoint()`, called once after the stream ended
 * without error; its result is merged into the object's state.
 */
export type SourceStream = Readable & {
  checkpoint?: () => Partial<ObjectState>;
  /**
   * True when this read is the object's whole content again although the job
   * is incremental (Stripe: the events cursor fell past the API's event
   * retention, so updates and deletions since then cannot be read): the
   * commit then replaces the table's rows, as a full refresh does. Asked
   * once, after the stream ended. Default false.
   */
  replacesTable?: () => boolean;
  /**
   * Set when the source stopped early on a failure at a clean point: the
   * stream ended normally, every row it emitted belongs to what the source
   * completed (a contiguous prefix of its cursor window, plus what
   * `checkpoint()` records as done above it), and the engine commits those
   * rows with `cursor` (exclusive; undefined: the cursor stays where it was)
   * and the checkpoint, then fails the object with `error`. A source that
   * emitted nothing returns undefined and throws instead. Asked once, after
   * the stream ended. Default: never.
   */
  incomplete?: () => { error: unknown; cursor?: string } | undefined;
};

/** A column discovered in a source (for `dativo discover`). */
export interface DiscoveredColumn {
  name: string;
  /** Asset type string, e.g. `long`, `decimal(12,2)`, `timestamp`. */
  type: string;
  required: boolean;
  /** The column's type in the source's own words, e.g. `bigint(20) unsigned`. */
  sourceType?: string;
  /** A sentence for the asset's `description` (default: one built from `sourceType`). */
  description?: string;
  /** The column's `classification` in the asset, e.g. `PII`. Default: none. */
  classification?: string;
}

export interface DiscoveredObject {
  name: string;
  columns: DiscoveredColumn[];
  primaryKey: string[];
}

export interface Connector {
  readonly descriptor: ConnectorDescriptor;
  /**
   * zod object schema of the connector's own keys of the `source` block (as
   * merged: recipe defaults, then the job), e.g. `files` or `tables`.
   * `loadJob` (and so `dativo validate`) checks the block against it together
   * with every other config problem, with file, key and YAML line, before
   * anything runs. Besides the keys every source has
   * ({@link COMMON_SOURCE_KEYS}), a key the schema does not name is an unknown
   * option, reported with the valid ones. Default: none (the block is not
   * checked). Not on the descriptor, which stays plain JSON data.
   */
  readonly options?: z.ZodObject;
  /**
   * Check connectivity and credentials without reading data. Throws a
   * DativoError (AUTH_FAILED, SOURCE_UNAVAILABLE, SOURCE_NOT_FOUND, ...).
   */
  check?(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void>;
  /** Open a stream of records of one object. Resources open in `_construct` and close in `_destroy`. */
  read(ctx: ReadContext): SourceStream;
  /** Describe the job's objects from the source's own metadata. */
  discover?(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<DiscoveredObject[]>;
  /** Primary key of an object, if the connector knows it better than the asset. */
  primaryKey?(object: SourceObjectSpec, plan: JobPlan): string[] | undefined;
  /**
   * The objects (streams) the connector's own options declare (`tables`,
   * `files`, ...), called by `loadJob` once the options passed their schema.
   * `asset` is undefined when the asset did not load (its problems are
   * reported anyway). Problems go to `ctx.problem`. The engine adds the
   * generic `objects`/`object` entries and, when nothing declares an object,
   * the asset's. Default: none of its own.
   */
  objects?(options: Record<string, unknown>, asset: Asset | undefined, ctx: ObjectsContext): DeclaredObject[] | Promise<DeclaredObject[]>;
  /**
   * The `rate_limits` block the run's limiter uses, from the merged one
   * (`plan.source.rateLimits`, recipe then job) and what the connector knows
   * of its credentials: e.g. Stripe's test-mode keys get the test budget and
   * the budget is keyed by the API key's account. Default: the merged block.
   */
  rateLimits?(plan: JobPlan): Record<string, unknown> | undefined;
}

export type { Row };
