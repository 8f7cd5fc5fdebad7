/**
 * What every column chunk encoder shares: the scratch buffers of one file
 * (page body, page header, dictionary hash table), and writing a page
 * (compress the body, Thrift header in front) into the row group's output.
 */
import { ByteSink } from './bytes.js';
import type { Compress } from './compress.js';
import { ENCODING, PAGE, type ChunkMeta, type ChunkStats, type ColumnSpec } from './metadata.js';
import { encodeLevels } from './rle.js';
import { CompactWriter } from './thrift.js';

/** parquet-rs's defaults: data pages of ~1 MiB uncompressed, dictionary pages up to 1 MiB (else PLAIN). */
export const DEFAULT_PAGE_BYTES = 1024 * 1024;
export const DEFAULT_DICTIONARY_PAGE_BYTES = 1024 * 1024;

/** Page sizes, for tests that need many pages or a dictionary fallback on little data. */
export interface PageLimits {
  /** Uncompressed bytes of values per data page, about; default 1 MiB. */
  pageBytes?: number;
  /** Largest dictionary page (PLAIN bytes) before a chunk falls back to PLAIN; default 1 MiB. */
  dictionaryPageBytes?: number;
}

/** Scratch and output of one file's encoding, reused across pages and row groups. */
export class PageContext {
  readonly body = new ByteSink();
  readonly header = new CompactWriter(256);
  /** Compressed pages and their headers of the row group being encoded, in file order. */
  pieces: Uint8Array[] = [];
  /** File offset of the next byte written. */
  offset = 4;
  /** Open-addressing table of dictionary entry numbers (-1 = empty). */
  table = new Int32Array(0);
  /** Dictionary index of each non-null value of a chunk. */
  indices = new Int32Array(0);
  /** Row of the first occurrence of each dictionary entry. */
  entries = new Int32Array(0);
  /** Hash of each dictionary entry (byte arrays: compared before the bytes). */
  hashes = new Int32Array(0);
  readonly pageBytes: number;
  readonly dictionaryPageBytes: number;

  constructor(
    readonly compress: Compress,
    readonly codec: number,
    limits: PageLimits = {},
  ) {
    this.pageBytes = Math.max(1, limits.pageBytes ?? DEFAULT_PAGE_BYTES);
    this.dictionaryPageBytes = limits.dictionaryPageBytes ?? DEFAULT_DICTIONARY_PAGE_BYTES;
  }

  /**
   * Scratch for a dictionary of up to `entries` entries over `n` values: a
   * cleared table of at least twice as many slots as entries. Returns its mask.
   */
  dictionaryScratch(entries: number, n: number): number {
    let size = 1024;
    while (size < 2 * Math.min(entries, n)) size *= 2;
    if (this.table.length < size) this.table = new Int32Array(size);
    this.table.fill(-1, 0, size);
    if (this.indices.length < n) this.indices = new Int32Array(Math.max(n, 1024));
    if (this.entries.length < n) {
      this.entries = new Int32Array(Math.max(n, 1024));
      this.hashes = new Int32Array(Math.max(n, 1024));
    }
    return size - 1;
  }
}

/** One column chunk being written: its pages go into the context's pieces. */
export class ChunkOut {
  private readonly start: number;
  uncompressed = 0;
  compressed = 0;
  dataPages = 0;
  dataPageOffset = -1;
  dictionaryPageOffset: number | undefined;

  constructor(
    private readonly ctx: PageContext,
    readonly spec: ColumnSpec,
    private readonly numValues: number,
  ) {
    this.start = ctx.offset;
  }

  /** Start a data page body: the definition levels of rows [from, to) if the column is optional. */
  beginDataPage(defs: Uint8Array | undefined, hasNulls: boolean, from: number, to: number): ByteSink {
    const body = this.ctx.body;
    body.pos = 0;
    if (this.spec.optional) encodeLevels(hasNulls ? defs : undefined, from, to, body);
    return body;
  }

  /** Start the dictionary page body. */
  beginDictionaryPage(): ByteSink {
    const body = this.ctx.body;
    body.pos = 0;
    return body;
  }

  /** Compress the body written since `begin…` and append the page. */
  endPage(type: number, numValues: number, encoding: number): void {
    const ctx = this.ctx;
    const raw = ctx.body.bytes();
    const data = ctx.compress(raw);
    const h = ctx.header;
    h.reset();
    h.beginElement();
    h.i32(1, type);
    h.i32(2, raw.length);
    h.i32(3, data.length);
    if (type === PAGE.DATA_PAGE) {
      h.begin(5);
      h.i32(1, numValues);
      h.i32(2, encoding);
      h.i32(3, ENCODING.RLE);
      h.i32(4, ENCODING.RLE);
      h.end();
      if (this.dataPageOffset < 0) this.dataPageOffset = ctx.offset;
      this.dataPages++;
    } else {
      h.begin(7);
      h.i32(1, numValues);
      h.i32(2, ENCODING.PLAIN);
      h.end();
      this.dictionaryPageOffset = ctx.offset;
    }
    h.end();
    const head = h.bytes().slice();
    ctx.pieces.push(head, data);
    ctx.offset += head.length + data.length;
    this.uncompressed += head.length + raw.length;
    this.compressed += head.length + data.length;
  }

  finish(stats: ChunkStats | undefined): ChunkMeta {
    return {
      spec: this.spec,
      codec: this.ctx.codec,
      numValues: this.numValues,
      uncompressed: this.uncompressed,
      compressed: this.compressed,
      dataPageOffset: this.dataPageOffset < 0 ? this.start : this.dataPageOffset,
      dictionaryPageOffset: this.dictionaryPageOffset,
      dataPages: this.dataPages,
      stats,
    };
  }
}
