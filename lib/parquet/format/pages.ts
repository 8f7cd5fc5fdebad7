/**
 * What every column chunk encoder shares: the scratch buffers of one file
 * (page body, page header, dictionary scratch of the fixed-width columns),
 * and writing a page (compress the body, Thrift header in front) into its
 * column chunk.
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
  /** The row group's column chunks as they are placed (views into each column's pages), in file order. */
  pieces: Uint8Array[] = [];
  /** File offset of the next byte written. */
  offset = 4;
  /** Open-addressing table of dictionary entry numbers (-1 = empty). */
  table = new Int32Array(0);
  /** Dictionary index of each non-null value of a chunk. */
  indices = new Int32Array(0);
  /** Row of the first occurrence of each dictionary entry. */
  entries = new Int32Array(0);
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
    if (this.entries.length < n) this.entries = new Int32Array(Math.max(n, 1024));
    return size - 1;
  }
}

/**
 * The pages of one column chunk, kept compressed until its row group is
 * written: a column writes pages while rows arrive (a byte-array column
 * once ~pageBytes of values are pending), so a row group is held as
 * compressed pages, not as its rows. Offsets are relative to the chunk's
 * start until {@link finish} places it in the file.
 */
export class ChunkOut {
  /** Page headers and compressed bodies, in file order; reused across row groups. */
  private readonly pages = new ByteSink(16 * 1024);
  private uncompressed = 0;
  private dataPages = 0;
  private dataPageAt = -1;
  private dictionaryPageAt: number | undefined;

  constructor(
    private readonly ctx: PageContext,
    readonly spec: ColumnSpec,
  ) {}

  /** Start a data page body: the definition levels of rows [from, to) of `defs` if the column is optional. */
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

  /** Compress the body written since `begin…` and append the page to the chunk. */
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
    const at = this.pages.pos;
    if (type === PAGE.DATA_PAGE) {
      h.begin(5);
      h.i32(1, numValues);
      h.i32(2, encoding);
      h.i32(3, ENCODING.RLE);
      h.i32(4, ENCODING.RLE);
      h.end();
      if (this.dataPageAt < 0) this.dataPageAt = at;
      this.dataPages++;
    } else {
      h.begin(7);
      h.i32(1, numValues);
      h.i32(2, ENCODING.PLAIN);
      h.end();
      this.dictionaryPageAt = at;
    }
    h.end();
    const head = h.bytes();
    this.pages.append(head);
    this.pages.append(data);
    this.uncompressed += head.length + raw.length;
  }

  /**
   * Place the chunk at the context's offset: its bytes join the row group's
   * pieces (a view, valid until this column writes its next page) and the
   * chunk starts empty again.
   */
  finish(stats: ChunkStats | undefined, numValues: number): ChunkMeta {
    const ctx = this.ctx;
    const base = ctx.offset;
    const size = this.pages.pos;
    ctx.pieces.push(this.pages.bytes());
    ctx.offset += size;
    const meta: ChunkMeta = {
      spec: this.spec,
      codec: ctx.codec,
      numValues,
      uncompressed: this.uncompressed,
      compressed: size,
      dataPageOffset: base + Math.max(0, this.dataPageAt),
      dictionaryPageOffset: this.dictionaryPageAt === undefined ? undefined : base + this.dictionaryPageAt,
      dataPages: this.dataPages,
      stats,
    };
    this.pages.pos = 0;
    this.uncompressed = 0;
    this.dataPages = 0;
    this.dataPageAt = -1;
    this.dictionaryPageAt = undefined;
    return meta;
  }
}
