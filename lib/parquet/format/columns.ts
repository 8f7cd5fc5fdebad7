/**
 * Column chunk encoders, one class per physical type family: fixed-width
 * values (INT32, INT64, FLOAT, DOUBLE, FIXED_LEN_BYTE_ARRAY decimals),
 * byte arrays (strings, JSON, binary) and booleans. Each takes the rows of
 * one row group from Arrow batches (copied, so the batches can go back at
 * once) and writes the chunk: an optional PLAIN dictionary page with
 * RLE_DICTIONARY data pages, or PLAIN data pages, and its statistics.
 *
 * Byte-array columns, the bulk of most row groups, write their pages while
 * rows arrive: PLAIN pages as soon as ~pageBytes of values are pending, and
 * a dictionary as it grows (its index pages when the row group is done). A
 * row group of them is held as compressed pages plus at most one page of
 * values each, not as its rows (the 2M-row Postgres bench: 227–238 →
 * 189–208 MB peak, docs/benchmarks.md). Fixed-width and boolean columns, at most 8 bytes a row, are
 * gathered whole and written when the row group is.
 */
import type { Data } from 'apache-arrow';
import { DativoError } from '../../errors.js';
import { ENCODING, PAGE, PHYSICAL, type ChunkMeta, type ChunkStats, type ColumnSpec } from './metadata.js';
import { ByteSink } from './bytes.js';
import { ChunkOut, type PageContext } from './pages.js';
import { bitWidth, encodeHybrid } from './rle.js';

/** Raw bytes of a typed array. */
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function nullInRequired(spec: ColumnSpec): DativoError {
  return new DativoError('INTERNAL', `parquet encoding: null in required column ${spec.name}`, { context: { column: spec.name } });
}

/** The validity bitmap of `data` if it has nulls. */
function nullBitmap(data: Data): Uint8Array | undefined {
  const bm = data.nullCount > 0 ? data.nullBitmap : undefined;
  return bm === undefined || bm.length === 0 ? undefined : bm;
}

/**
 * Copy the validity of rows [from, to) of `data` into `defs` at `at` as
 * definition levels (1 value, 0 null); returns the nulls among them.
 */
function addDefs(spec: ColumnSpec, defs: Uint8Array | undefined, at: number, data: Data, from: number, to: number): number {
  const bm = nullBitmap(data);
  if (bm === undefined) {
    defs?.fill(1, at, at + to - from);
    return 0;
  }
  const off = data.offset;
  let nulls = 0;
  if (defs === undefined) {
    for (let i = from; i < to; i++) {
      const j = off + i;
      if (((bm[j >> 3]! >> (j & 7)) & 1) === 0) throw nullInRequired(spec);
    }
    return 0;
  }
  for (let i = from; i < to; i++) {
    const j = off + i;
    const b = (bm[j >> 3]! >> (j & 7)) & 1;
    defs[at + i - from] = b;
    nulls += 1 - b;
  }
  return nulls;
}

function grownBytes(a: Uint8Array, n: number, keep: number): Uint8Array {
  let cap = Math.max(a.length, 1024);
  while (cap < n) cap *= 2;
  const out = new Uint8Array(cap);
  out.set(a.subarray(0, keep));
  return out;
}

function grownInt32(a: Int32Array, n: number, keep: number): Int32Array<ArrayBuffer> {
  let cap = Math.max(a.length, 1024);
  while (cap < n) cap *= 2;
  const out = new Int32Array(cap);
  out.set(a.subarray(0, keep));
  return out;
}

/** Non-null values among rows [from, to). */
function valuesIn(defs: Uint8Array | undefined, hasNulls: boolean, from: number, to: number): number {
  if (!hasNulls || defs === undefined) return to - from;
  let n = 0;
  for (let i = from; i < to; i++) n += defs[i]!;
  return n;
}

/** The rows a column chunk holds, and what all families do with them. */
abstract class ColumnChunk {
  rows = 0;
  nulls = 0;
  defs: Uint8Array | undefined;

  protected readonly out: ChunkOut;

  constructor(
    readonly spec: ColumnSpec,
    protected readonly ctx: PageContext,
  ) {
    this.defs = spec.optional ? new Uint8Array(1024) : undefined;
    this.out = new ChunkOut(ctx, spec);
  }

  /** Append rows [from, to) of one Arrow column. */
  abstract add(data: Data, from: number, to: number): void;
  /** Write the rest of the chunk's pages and place it in the context's pieces; the column is empty afterwards. */
  abstract write(): ChunkMeta;

  protected addLevels(data: Data, from: number, to: number): void {
    const n = this.rows + to - from;
    if (this.defs !== undefined && this.defs.length < n) this.defs = grownBytes(this.defs, n, this.rows);
    this.nulls += addDefs(this.spec, this.defs, this.rows, data, from, to);
  }

  /** Pages of RLE_DICTIONARY indices (`indices`, one per non-null row of the chunk), `width` bits each. */
  protected writeIndexPages(indices: Int32Array, width: number): void {
    const ctx = this.ctx;
    const out = this.out;
    const rows = this.rows;
    const hasNulls = this.nulls > 0;
    const perPage = Math.max(8, Math.floor((ctx.pageBytes * 8) / width));
    let k = 0;
    for (let r = 0; r < rows; r += perPage) {
      const end = Math.min(rows, r + perPage);
      const body = out.beginDataPage(this.defs, hasNulls, r, end);
      const values = valuesIn(this.defs, hasNulls, r, end);
      body.u8(width);
      encodeHybrid(indices, k, k + values, width, body);
      k += values;
      out.endPage(PAGE.DATA_PAGE, end - r, ENCODING.RLE_DICTIONARY);
    }
  }

  protected reset(): void {
    this.rows = 0;
    this.nulls = 0;
  }
}

/** Signed big-endian comparison of two FLBA values (two's complement decimals). */
function compareSignedBE(buf: Uint8Array, a: number, b: number, w: number): number {
  const x = buf[a]! ^ 0x80;
  const y = buf[b]! ^ 0x80;
  if (x !== y) return x - y;
  for (let k = 1; k < w; k++) {
    const d = buf[a + k]! - buf[b + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Float bound as stored: -0 for a zero minimum, +0 for a zero maximum (the Parquet spec's rule). */
function floatBytes(v: number, double: boolean, isMin: boolean): Uint8Array {
  const x = v === 0 ? (isMin ? -0 : 0) : v;
  return double ? bytesOf(new Float64Array([x])) : bytesOf(new Float32Array([x]));
}

/**
 * Min and max of `count` fixed-width values in `buf` (skipping rows whose
 * level is 0; floats skip NaN, and have no bounds if only NaN remain).
 * `buf` must start at offset 0 of its ArrayBuffer (aligned views).
 */
function fixedBounds(spec: ColumnSpec, buf: Uint8Array, count: number, defs: Uint8Array | undefined): { min: Uint8Array; max: Uint8Array } | undefined {
  const w = spec.width;
  let lo = -1;
  let hi = -1;
  switch (spec.physical) {
    case PHYSICAL.INT32: {
      const v = new Int32Array(buf.buffer, buf.byteOffset, count);
      let mn = 0;
      let mx = 0;
      for (let r = 0; r < count; r++) {
        if (defs !== undefined && defs[r] === 0) continue;
        const x = v[r]!;
        if (lo < 0 || x < mn) {
          mn = x;
          lo = r;
        }
        if (hi < 0 || x > mx) {
          mx = x;
          hi = r;
        }
      }
      break;
    }
    case PHYSICAL.INT64: {
      const v = new Int32Array(buf.buffer, buf.byteOffset, count * 2);
      let mnH = 0;
      let mnL = 0;
      let mxH = 0;
      let mxL = 0;
      for (let r = 0; r < count; r++) {
        if (defs !== undefined && defs[r] === 0) continue;
        const h = v[2 * r + 1]!;
        const l = v[2 * r]! >>> 0;
        if (lo < 0 || h < mnH || (h === mnH && l < mnL)) {
          mnH = h;
          mnL = l;
          lo = r;
        }
        if (hi < 0 || h > mxH || (h === mxH && l > mxL)) {
          mxH = h;
          mxL = l;
          hi = r;
        }
      }
      break;
    }
    case PHYSICAL.FLOAT:
    case PHYSICAL.DOUBLE: {
      const double = spec.physical === PHYSICAL.DOUBLE;
      const v = double ? new Float64Array(buf.buffer, buf.byteOffset, count) : new Float32Array(buf.buffer, buf.byteOffset, count);
      let mn = Number.POSITIVE_INFINITY;
      let mx = Number.NEGATIVE_INFINITY;
      let seen = false;
      for (let r = 0; r < count; r++) {
        if (defs !== undefined && defs[r] === 0) continue;
        const x = v[r]!;
        if (x !== x) continue;
        seen = true;
        if (x < mn) mn = x;
        if (x > mx) mx = x;
      }
      return seen ? { min: floatBytes(mn, double, true), max: floatBytes(mx, double, false) } : undefined;
    }
    case PHYSICAL.FIXED_LEN_BYTE_ARRAY: {
      for (let r = 0; r < count; r++) {
        if (defs !== undefined && defs[r] === 0) continue;
        if (lo < 0 || compareSignedBE(buf, r * w, lo * w, w) < 0) lo = r;
        if (hi < 0 || compareSignedBE(buf, r * w, hi * w, w) > 0) hi = r;
      }
      break;
    }
  }
  if (lo < 0) return undefined;
  return { min: buf.slice(lo * w, lo * w + w), max: buf.slice(hi * w, hi * w + w) };
}

/** INT32, INT64, FLOAT, DOUBLE and FIXED_LEN_BYTE_ARRAY (decimal) columns. */
export class FixedChunk extends ColumnChunk {
  /** `rows × width` bytes: row r's value at r × width (null rows hold zeros or whatever Arrow had). */
  vals: Uint8Array;

  constructor(spec: ColumnSpec, ctx: PageContext) {
    super(spec, ctx);
    this.vals = new Uint8Array(1024 * spec.width);
  }

  add(data: Data, from: number, to: number): void {
    this.addLevels(data, from, to);
    const w = this.spec.width;
    const n = this.rows + to - from;
    if (this.vals.length < n * w) this.vals = grownBytes(this.vals, n * w, this.rows * w);
    const src = bytesOf(data.values as ArrayBufferView);
    const vals = this.vals;
    if (this.spec.source === 'decimal') {
      // Arrow decimal128: 16 bytes little-endian per value. INT32/INT64 take
      // the low 4/8 bytes; FLBA the low w bytes, big-endian.
      if (this.spec.physical === PHYSICAL.FIXED_LEN_BYTE_ARRAY) {
        let p = this.rows * w;
        for (let i = from; i < to; i++) {
          const s = i * 16 + w - 1;
          for (let k = 0; k < w; k++) vals[p + k] = src[s - k]!;
          p += w;
        }
      } else {
        // Whole 32-bit words: the low one (INT32) or two (INT64) of each value's four.
        const words = new Int32Array(src.buffer, src.byteOffset, src.byteLength >> 2);
        const dst = new Int32Array(vals.buffer, 0, vals.byteLength >> 2);
        if (w === 4) for (let i = from, o = this.rows; i < to; i++) dst[o++] = words[i * 4]!;
        else
          for (let i = from, o = this.rows * 2; i < to; i++) {
            dst[o++] = words[i * 4]!;
            dst[o++] = words[i * 4 + 1]!;
          }
      }
    } else {
      vals.set(src.subarray(from * w, to * w), this.rows * w);
    }
    this.rows = n;
  }

  write(): ChunkMeta {
    const stats = (this.spec.dictionary && this.writeDictionary()) || this.writePlain();
    const rows = this.rows;
    this.reset();
    return this.out.finish(stats, rows);
  }

  private stats(buf: Uint8Array, count: number, defs: Uint8Array | undefined): ChunkStats {
    const b = this.spec.statistics ? fixedBounds(this.spec, buf, count, defs) : undefined;
    return { nullCount: this.nulls, min: b?.min, max: b?.max };
  }

  /** Dictionary pages, or undefined (nothing written) when the dictionary would pass the limit. */
  private writeDictionary(): ChunkStats | undefined {
    const { ctx, out } = this;
    const w = this.spec.width;
    const words = w >> 2;
    const rows = this.rows;
    const defs = this.nulls > 0 ? this.defs : undefined;
    const maxEntries = Math.floor(ctx.dictionaryPageBytes / w);
    const mask = ctx.dictionaryScratch(maxEntries + 1, rows);
    const table = ctx.table;
    const entries = ctx.entries;
    const indices = ctx.indices;
    const v = new Int32Array(this.vals.buffer, 0, rows * words);
    let n = 0;
    let k = 0;
    let pa = 0;
    let pb = 0;
    let px = -1;
    for (let r = 0; r < rows; r++) {
      if (defs !== undefined && defs[r] === 0) continue;
      const a = v[r * words]!;
      const b = words === 2 ? v[r * words + 1]! : 0;
      // A run of the previous value (constant columns) skips the hash.
      if (a === pa && b === pb && px >= 0) {
        indices[k++] = px;
        continue;
      }
      pa = a;
      pb = b;
      let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1), 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
      let slot = h & mask;
      for (;;) {
        const e = table[slot]!;
        if (e < 0) {
          if (n === maxEntries) return undefined;
          entries[n] = r;
          table[slot] = n;
          px = n;
          indices[k++] = n++;
          break;
        }
        const er = entries[e]! * words;
        if (v[er] === a && (words === 1 || v[er + 1] === b)) {
          px = e;
          indices[k++] = e;
          break;
        }
        slot = (slot + 1) & mask;
      }
    }
    const body = out.beginDictionaryPage();
    body.room(n * w);
    const vals = this.vals;
    for (let e = 0; e < n; e++) {
      const s = entries[e]! * w;
      body.buf.set(vals.subarray(s, s + w), body.pos);
      body.pos += w;
    }
    // The dictionary holds every distinct value: bounds come from it alone.
    const stats = this.stats(body.buf, n, undefined);
    out.endPage(PAGE.DICTIONARY_PAGE, n, ENCODING.PLAIN);
    this.writeIndexPages(indices, bitWidth(Math.max(0, n - 1)));
    return stats;
  }

  private writePlain(): ChunkStats {
    const { ctx, out } = this;
    const w = this.spec.width;
    const rows = this.rows;
    const hasNulls = this.nulls > 0;
    const defs = this.defs;
    const vals = this.vals;
    const perPage = Math.max(1, Math.floor(ctx.pageBytes / w));
    for (let r = 0; r < rows; r += perPage) {
      const end = Math.min(rows, r + perPage);
      const body = out.beginDataPage(defs, hasNulls, r, end);
      if (!hasNulls) body.append(vals.subarray(r * w, end * w));
      else {
        body.room((end - r) * w);
        const buf = body.buf;
        let p = body.pos;
        for (let i = r; i < end; i++) {
          if (defs![i] === 0) continue;
          const s = i * w;
          for (let b = 0; b < w; b++) buf[p + b] = vals[s + b]!;
          p += w;
        }
        body.pos = p;
      }
      out.endPage(PAGE.DATA_PAGE, end - r, ENCODING.PLAIN);
    }
    return this.stats(vals, rows, hasNulls ? defs : undefined);
  }
}

/** Unsigned byte-wise comparison of a[a0..a1) and b[b0..b1). */
function compareBytes(a: Uint8Array, a0: number, a1: number, b: Uint8Array, b0: number, b1: number): number {
  const n = Math.min(a1 - a0, b1 - b0);
  for (let k = 0; k < n; k++) {
    const d = a[a0 + k]! - b[b0 + k]!;
    if (d !== 0) return d;
  }
  return a1 - a0 - (b1 - b0);
}

/** Byte-wise equality of a[a0..a0 + n) and b[b0..b0 + n). */
function sameBytes(a: Uint8Array, a0: number, b: Uint8Array, b0: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[a0 + k] !== b[b0 + k]) return false;
  return true;
}

/** 4-byte little-endian length at `p`. */
const u32At = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;

/** Write `len` as 4 bytes little-endian at `p`. */
function putU32(b: Uint8Array, p: number, len: number): void {
  b[p] = len & 0xff;
  b[p + 1] = (len >>> 8) & 0xff;
  b[p + 2] = (len >>> 16) & 0xff;
  b[p + 3] = len >>> 24;
}

/** Value hash of the dictionary (FNV-1a over the bytes, seeded with the length). */
function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5 ^ (e - s);
  for (let p = s; p < e; p++) h = Math.imul(h ^ b[p]!, 0x01000193);
  return h ^ (h >>> 15);
}

/**
 * BYTE_ARRAY columns: UTF-8 strings, JSON text, binary. Values go straight
 * into PLAIN layout (4-byte length, bytes): the pending page's (`page`), or
 * the dictionary's when the column has one. A dictionary column keeps its
 * entries, one index per value and the definition levels of the row group;
 * once the dictionary would pass `dictionaryPageBytes`, the rows so far are
 * written out as PLAIN pages from it and the rest of the row group follows
 * as PLAIN (the next row group tries the dictionary again).
 */
export class BytesChunk extends ColumnChunk {
  /** The row group is dictionary-encoded (so far). */
  private dict: boolean;
  /** Rows whose levels are in `defs` and not yet written: since the last PLAIN page, or the whole row group with a dictionary. */
  private pend = 0;
  private pendNulls = 0;
  /** PLAIN values of the pending page. */
  private page = new ByteSink(64 * 1024);
  /** Bounds of the pages written so far (copies), when the column has statistics. */
  private lo: Uint8Array | undefined;
  private hi: Uint8Array | undefined;
  /** The dictionary page body: entries in PLAIN layout; entry e starts (its length) at `starts[e]`. */
  private dictionary = new ByteSink(16 * 1024);
  private starts = new Int32Array(1024);
  private hashes = new Int32Array(1024);
  private entries = 0;
  /** Open-addressing table of entry numbers (-1 = empty), grown at half full. */
  private table = new Int32Array(1024).fill(-1);
  /** Dictionary index of each non-null value of the row group. */
  private indices = new Int32Array(1024);
  private count = 0;

  constructor(spec: ColumnSpec, ctx: PageContext) {
    super(spec, ctx);
    this.dict = spec.dictionary;
  }

  add(data: Data, from: number, to: number): void {
    const defs = this.defs;
    if (defs !== undefined && defs.length < this.pend + to - from) this.defs = grownBytes(defs, this.pend + to - from, this.pend);
    const next = this.dict ? this.addDictionary(data, from, to) : from;
    if (next < to) this.addPlain(data, next, to);
  }

  /** Pending row `at` is null. */
  private nullAt(defs: Uint8Array | undefined, at: number): void {
    if (defs === undefined) throw nullInRequired(this.spec);
    defs[at] = 0;
    this.nulls++;
    this.pendNulls++;
  }

  /** Rows [from, to) into the dictionary; returns the first row not taken (to, or where the dictionary overflowed). */
  private addDictionary(data: Data, from: number, to: number): number {
    const so = data.valueOffsets as Int32Array;
    const src = data.values as Uint8Array;
    const bm = nullBitmap(data);
    const off = data.offset;
    const defs = this.defs;
    if (this.indices.length < this.count + to - from) this.indices = grownInt32(this.indices, this.count + to - from, this.count);
    const indices = this.indices;
    const limit = this.ctx.dictionaryPageBytes;
    const dict = this.dictionary;
    let pend = this.pend;
    let k = this.count;
    // The previous value's entry: runs (constant columns, sorted or clustered data) skip the hash.
    let px = k > 0 ? indices[k - 1]! : -1;
    for (let i = from; i < to; i++) {
      if (bm !== undefined && ((bm[(off + i) >> 3]! >> ((off + i) & 7)) & 1) === 0) {
        this.nullAt(defs, pend++);
        continue;
      }
      const s = so[i]!;
      const e = so[i + 1]!;
      const len = e - s;
      if (px >= 0) {
        const t = this.starts[px]!;
        if (u32At(dict.buf, t) === len && sameBytes(src, s, dict.buf, t + 4, len)) {
          if (defs !== undefined) defs[pend] = 1;
          pend++;
          indices[k++] = px;
          continue;
        }
      }
      const h = hashBytes(src, s, e);
      let mask = this.table.length - 1;
      let slot = h & mask;
      let x: number;
      for (;;) {
        x = this.table[slot]!;
        if (x < 0) break;
        if (this.hashes[x] === h) {
          const t = this.starts[x]!;
          if (u32At(dict.buf, t) === len && sameBytes(src, s, dict.buf, t + 4, len)) break;
        }
        slot = (slot + 1) & mask;
      }
      if (x < 0) {
        if (dict.pos + 4 + len > limit) {
          this.pend = pend;
          this.count = k;
          this.rows += i - from;
          this.fallBack();
          return i;
        }
        x = this.entries++;
        if (this.starts.length <= x) {
          this.starts = grownInt32(this.starts, x + 1, x);
          this.hashes = grownInt32(this.hashes, x + 1, x);
        }
        this.starts[x] = dict.pos;
        this.hashes[x] = h;
        dict.room(4 + len);
        putU32(dict.buf, dict.pos, len);
        dict.buf.set(src.subarray(s, e), dict.pos + 4);
        dict.pos += 4 + len;
        this.table[slot] = x;
        if (2 * this.entries > this.table.length) mask = this.rehash();
      }
      if (defs !== undefined) defs[pend] = 1;
      pend++;
      px = x;
      indices[k++] = x;
    }
    this.pend = pend;
    this.count = k;
    this.rows += to - from;
    return to;
  }

  /** Double the table; returns its new mask. */
  private rehash(): number {
    const table = new Int32Array(this.table.length * 2).fill(-1);
    const mask = table.length - 1;
    for (let x = 0; x < this.entries; x++) {
      let slot = this.hashes[x]! & mask;
      while (table[slot]! >= 0) slot = (slot + 1) & mask;
      table[slot] = x;
    }
    this.table = table;
    return mask;
  }

  /**
   * The dictionary passed the limit: the rows so far become PLAIN pages
   * (their values taken from the dictionary), and the row group goes on
   * in PLAIN.
   */
  private fallBack(): void {
    this.dict = false;
    const defs = this.defs;
    const rows = this.pend;
    const dict = this.dictionary.buf;
    const starts = this.starts;
    const indices = this.indices;
    const limit = this.ctx.pageBytes;
    const page = this.page;
    let first = 0;
    let nulls = 0;
    let k = 0;
    for (let r = 0; r < rows; r++) {
      if (defs !== undefined && defs[r] === 0) nulls++;
      else {
        const t = starts[indices[k++]!]!;
        const n = 4 + u32At(dict, t);
        page.room(n);
        page.buf.set(dict.subarray(t, t + n), page.pos);
        page.pos += n;
      }
      if (page.pos >= limit) {
        this.plainPage(first, r + 1, nulls > 0);
        first = r + 1;
        nulls = 0;
      }
    }
    if (defs !== undefined && first > 0) defs.copyWithin(0, first, rows);
    this.pend = rows - first;
    this.pendNulls = nulls;
    this.clearDictionary();
  }

  /** Rows [from, to) as PLAIN values of the pending page, a page written whenever it reaches pageBytes. */
  private addPlain(data: Data, from: number, to: number): void {
    const so = data.valueOffsets as Int32Array;
    const src = data.values as Uint8Array;
    const bm = nullBitmap(data);
    const off = data.offset;
    const limit = this.ctx.pageBytes;
    const page = this.page;
    let defs = this.defs;
    let pend = this.pend;
    for (let i = from; i < to; i++) {
      if (bm !== undefined && ((bm[(off + i) >> 3]! >> ((off + i) & 7)) & 1) === 0) {
        this.nullAt(defs, pend++);
        continue;
      }
      if (defs !== undefined) defs[pend] = 1;
      pend++;
      const s = so[i]!;
      const len = so[i + 1]! - s;
      page.room(4 + len);
      const buf = page.buf;
      let p = page.pos;
      putU32(buf, p, len);
      p += 4;
      if (len < 32) for (let b = 0; b < len; b++) buf[p + b] = src[s + b]!;
      else buf.set(src.subarray(s, s + len), p);
      page.pos = p + len;
      if (page.pos >= limit) {
        this.pend = pend;
        this.plainPage(0, pend, this.pendNulls > 0);
        pend = 0;
        this.pendNulls = 0;
        defs = this.defs;
      }
    }
    this.pend = pend;
    this.rows += to - from;
  }

  /** Write the pending PLAIN values as one page of rows [from, to) of `defs`; the page starts empty again. */
  private plainPage(from: number, to: number, hasNulls: boolean): void {
    const page = this.page;
    if (this.spec.statistics) this.pageBounds(page.buf, page.pos);
    const body = this.out.beginDataPage(this.defs, hasNulls, from, to);
    body.append(page.bytes());
    this.out.endPage(PAGE.DATA_PAGE, to - from, ENCODING.PLAIN);
    page.pos = 0;
  }

  /** Merge the bounds of PLAIN values `buf[0..end)` into `lo`/`hi`. */
  private pageBounds(buf: Uint8Array, end: number): void {
    let lo = -1;
    let hi = -1;
    for (let p = 0; p < end; ) {
      const e = p + 4 + u32At(buf, p);
      if (lo < 0 || compareBytes(buf, p + 4, e, buf, lo + 4, lo + 4 + u32At(buf, lo)) < 0) lo = p;
      if (hi < 0 || compareBytes(buf, p + 4, e, buf, hi + 4, hi + 4 + u32At(buf, hi)) > 0) hi = p;
      p = e;
    }
    if (lo < 0) return;
    const lv = buf.subarray(lo + 4, lo + 4 + u32At(buf, lo));
    const hv = buf.subarray(hi + 4, hi + 4 + u32At(buf, hi));
    // Copies: the page buffer is overwritten by the next page.
    if (this.lo === undefined || compareBytes(lv, 0, lv.length, this.lo, 0, this.lo.length) < 0) this.lo = lv.slice();
    if (this.hi === undefined || compareBytes(hv, 0, hv.length, this.hi, 0, this.hi.length) > 0) this.hi = hv.slice();
  }

  write(): ChunkMeta {
    const out = this.out;
    if (this.dict) {
      const n = this.entries;
      const body = out.beginDictionaryPage();
      body.append(this.dictionary.bytes());
      out.endPage(PAGE.DICTIONARY_PAGE, n, ENCODING.PLAIN);
      // The dictionary holds every distinct value: bounds come from it alone.
      if (this.spec.statistics) this.pageBounds(this.dictionary.buf, this.dictionary.pos);
      this.writeIndexPages(this.indices, bitWidth(Math.max(0, n - 1)));
      this.clearDictionary();
    } else if (this.pend > 0) this.plainPage(0, this.pend, this.pendNulls > 0);
    const stats: ChunkStats = { nullCount: this.nulls, min: this.lo, max: this.hi };
    const rows = this.rows;
    this.reset();
    return out.finish(stats, rows);
  }

  private clearDictionary(): void {
    if (this.entries > 0) this.table.fill(-1);
    this.entries = 0;
    this.dictionary.pos = 0;
    this.count = 0;
  }

  protected override reset(): void {
    super.reset();
    this.pend = 0;
    this.pendNulls = 0;
    this.lo = this.hi = undefined;
    this.dict = this.spec.dictionary;
  }
}

/** BOOLEAN columns: PLAIN bit-packed, never a dictionary. */
export class BoolChunk extends ColumnChunk {
  /** 0 or 1 per row. */
  vals: Uint8Array = new Uint8Array(1024);

  add(data: Data, from: number, to: number): void {
    this.addLevels(data, from, to);
    const n = this.rows + to - from;
    if (this.vals.length < n) this.vals = grownBytes(this.vals, n, this.rows);
    const bits = data.values as Uint8Array;
    const off = data.offset;
    const vals = this.vals;
    let o = this.rows;
    for (let i = from; i < to; i++) {
      const j = off + i;
      vals[o++] = (bits[j >> 3]! >> (j & 7)) & 1;
    }
    this.rows = n;
  }

  write(): ChunkMeta {
    const { ctx, out } = this;
    const rows = this.rows;
    const hasNulls = this.nulls > 0;
    const defs = this.defs;
    const vals = this.vals;
    const perPage = Math.max(8, ctx.pageBytes * 8);
    let anyFalse = false;
    let anyTrue = false;
    for (let r = 0; r < rows; r += perPage) {
      const end = Math.min(rows, r + perPage);
      const body = out.beginDataPage(defs, hasNulls, r, end);
      body.room(((end - r) >> 3) + 1);
      const buf = body.buf;
      let p = body.pos;
      let acc = 0;
      let bit = 0;
      for (let i = r; i < end; i++) {
        if (hasNulls && defs![i] === 0) continue;
        const v = vals[i]!;
        if (v === 0) anyFalse = true;
        else anyTrue = true;
        acc |= v << bit;
        if (++bit === 8) {
          buf[p++] = acc;
          acc = 0;
          bit = 0;
        }
      }
      if (bit > 0) buf[p++] = acc;
      body.pos = p;
      out.endPage(PAGE.DATA_PAGE, end - r, ENCODING.PLAIN);
    }
    const some = anyFalse || anyTrue;
    const stats: ChunkStats = {
      nullCount: this.nulls,
      min: this.spec.statistics && some ? Uint8Array.of(anyFalse ? 0 : 1) : undefined,
      max: this.spec.statistics && some ? Uint8Array.of(anyTrue ? 1 : 0) : undefined,
    };
    this.reset();
    return out.finish(stats, rows);
  }
}

/** The chunk encoder of a column, writing its pages through `ctx`. */
export function columnChunk(spec: ColumnSpec, ctx: PageContext): ColumnChunk {
  switch (spec.source) {
    case 'bool':
      return new BoolChunk(spec, ctx);
    case 'bytes':
      return new BytesChunk(spec, ctx);
    default:
      return new FixedChunk(spec, ctx);
  }
}

export type { ColumnChunk };
