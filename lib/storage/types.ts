/**
 * Storage: where data files, metadata and state live. `file://` and `s3://`
 * implement the same interface, so nothing above this layer knows which.
 */
import type { Writable } from 'node:stream';

/** A file being written. Nothing is visible at its final path until `done()` resolves. */
export interface WriteHandle {
  /** Byte sink. Respects backpressure. */
  readonly stream: Writable;
  /** End the stream and make the object durable and visible. Resolves with its final size. */
  done(): Promise<{ uri: string; size: number }>;
  /** Drop everything written so far (temp file removed, multipart upload aborted). Idempotent. */
  abort(reason?: unknown): Promise<void>;
  /**
   * True when the stream reads a chunk only until that chunk's write callback
   * has run (whatever it keeps longer, it copies), so the writer may free the
   * chunk's memory then. Local files: true; S3: absent (a chunk waits in the
   * part being gathered after its callback).
   */
  readonly chunkDoneAtCallback?: boolean;
}

export interface WriteOptions {
  /** User metadata (S3 `x-amz-meta-*`); ignored on local disk. */
  metadata?: Record<string, string>;
  contentType?: string;
  signal?: AbortSignal;
}

/** An object found by {@link Storage.listDetailed}. */
export interface StoredObject {
  /** Path relative to the storage root. */
  path: string;
  size: number;
  /** Last modification (local mtime, S3 LastModified). */
  modifiedAt: Date;
}

export interface Storage {
  /** Root URI, e.g. `file:///abs/warehouse` or `s3://bucket/prefix`. */
  readonly root: string;
  /** Full URI of a path relative to the root. */
  uri(relativePath: string): string;
  /** Stream a new object to `relativePath`. */
  createWriteStream(relativePath: string, options?: WriteOptions): WriteHandle;
  /** Write a whole small object atomically. With `ifNotExists`, fail (STORAGE_IO, context.exists) if present. */
  writeAtomic(relativePath: string, data: Uint8Array | string, options?: WriteOptions & { ifNotExists?: boolean }): Promise<void>;
  read(relativePath: string): Promise<Buffer>;
  exists(relativePath: string): Promise<boolean>;
  /** Relative paths of every object under `prefix`. */
  list(prefix: string): Promise<string[]>;
  /**
   * Every object under `prefix` with size and modification time. With
   * `inProgress`, local temp files of unfinished writes (`.inprogress`) are
   * listed too (S3 has none: an unfinished multipart upload is no object).
   */
  listDetailed(prefix: string, options?: { inProgress?: boolean }): Promise<StoredObject[]>;
  delete(relativePath: string): Promise<void>;
  /** Check that the root can be written (creates and removes a probe). Throws STORAGE_NOT_WRITABLE / AUTH_FAILED. */
  checkWritable(): Promise<void>;
}
