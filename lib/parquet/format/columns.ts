/**
 * Column chunk encoders, one class per physical type family: fixed-width
 * values (INT32, INT64, FLOAT, DOUBLE, FIXED_LEN_BYTE_ARRAY decimals),
 * byte arrays (strings, JSON, binary) and booleans. Each gathers the rows
 * of one row group from Arrow batches (copied, so the batches can go back
 * at once), then writes the chunk: an optional PLAIN dictionary page with
 * RLE_DICTIONARY data pages, or PLAIN data pages, and its statistics.
 */
import type { Data } from 'apache-arrow';
import { DativoError } from '../../errors.js';
import { ENCODING, PAGE, PHYSICAL, type ChunkMeta, type ChunkStats, type ColumnSpec } from './metadata.js';
import { ChunkOut, type PageContext } from './pages.js';
import { bitWidth, encodeHybrid } from './rle.js';

/** Raw bytes of a typed array. */
const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function nullInRequired(spec: ColumnSpec): DativoError {
  return new DativoError('INTERNAL', `parquet encoding: null in required column ${spec.name}`, { context: { column: spec.name } });
}

/**
 * Copy the validity of rows [from, to) of `data` into `defs` at `at` as
 * definition levels (1 value, 0 null); returns the nulls among them.
 */
function addDefs(spec: ColumnSpec, defs: Uint8Array | undefined, at: number, data: Data, from: number, to: number): number {
  if (data.nullCount <= 0) {
    defs?.fill(1, at, at + to - from);
    return 0;
  }
  const bm = data.nullBitmap;
  if (bm === undefined || bm.length === 0) {
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

function grownBuffer(a: Buffer, n: number, keep: number): Buffer {
  let cap = Math.max(a.length, 1024);
  while (cap < n) cap *= 2;
  const out = Buffer.allocUnsafe(cap);
  a.copy(out, 0, 0, keep);
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

  constructor(readonly spec: ColumnSpec) {
    this.defs = spec.optional ? new Uint8Array(1024) : undefined;
  }

  /** Append rows [from, to) of one Arrow column. */
  abstract add(data: Data, from: number, to: number): void;
  /** Write the chunk's pages into the context's pieces; the column is empty afterwards. */
  abstract write(ctx: PageContext): ChunkMeta;

  protected addLevels(data: Data, from: number, to: number): void {
    const n = this.rows + to - from;
    if (this.defs !== undefined && this.defs.length < n) this.defs = grownBytes(this.defs, n, this.rows);
    this.nulls += addDefs(this.spec, this.defs, this.rows, data, from, to);
  }

  /** Pages of RLE_DICTIONARY indices (ctx.indices[0..count)), `width` bits each. */
  protected writeIndexPages(ctx: PageContext, out: ChunkOut, width: number): void {
    const rows = this.rows;
    const hasNulls = this.nulls > 0;
    const perPage = Math.max(8, Math.floor((ctx.pageBytes * 8) / width));
    let k = 0;
    for (let r = 0; r < rows; r += perPage) {
      const end = Math.min(rows, r + perPage);
      const body = out.beginDataPage(this.defs, hasNulls, r, end);
      const values = valuesIn(this.defs, hasNulls, r, end);
      body.u8(width);
      encodeHybrid(ctx.indices, k, k + values, width, body);
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

  constructor(spec: ColumnSpec) {
    super(spec);
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

  write(ctx: PageContext): ChunkMeta {
    const spec = this.spec;
    const out = new ChunkOut(ctx, spec, this.rows);
    const stats = (spec.dictionary && this.writeDictionary(ctx, out)) || this.writePlain(ctx, out);
    this.reset();
    return out.finish(stats);
  }

  private stats(buf: Uint8Array, count: number, defs: Uint8Array | undefined): ChunkStats {
    const b = this.spec.statistics ? fixedBounds(this.spec, buf, count, defs) : undefined;
    return { nullCount: this.nulls, min: b?.min, max: b?.max };
  }

  /** Dictionary pages, or undefined (nothing written) when the dictionary would pass the limit. */
  private writeDictionary(ctx: PageContext, out: ChunkOut): ChunkStats | undefined {
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
    this.writeIndexPages(ctx, out, bitWidth(Math.max(0, n - 1)));
    return stats;
  }

  private writePlain(ctx: PageContext, out: ChunkOut): ChunkStats {
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

/** Unsigned byte-wise comparison of buf[a0..a1) and buf[b0..b1). */
function compareBytes(buf: Uint8Array, a0: number, a1: number, b0: number, b1: number): number {
  const n = Math.min(a1 - a0, b1 - b0);
  for (let k = 0; k < n; k++) {
    const d = buf[a0 + k]! - buf[b0 + k]!;
    if (d !== 0) return d;
  }
  return a1 - a0 - (b1 - b0);
}

/** BYTE_ARRAY columns: UTF-8 strings, JSON text, binary. */
export class BytesChunk extends ColumnChunk {
  /** Row r's bytes are data[offsets[r]..offsets[r + 1]). */
  offsets = new Int32Array(1025);
  data: Buffer = Buffer.allocUnsafe(64 * 1024);

  add(data: Data, from: number, to: number): void {
    this.addLevels(data, from, to);
    const so = data.valueOffsets as Int32Array;
    const src = data.values as Uint8Array;
    const n = this.rows + to - from;
    if (this.offsets.length < n + 1) {
      let cap = this.offsets.length;
      while (cap < n + 1) cap *= 2;
      const grown = new Int32Array(cap);
      grown.set(this.offsets.subarray(0, this.rows + 1));
      this.offsets = grown;
    }
    const start = so[from]!;
    const end = so[to]!;
    const at = this.offsets[this.rows]!;
    if (this.data.length < at + end - start) this.data = grownBuffer(this.data, at + end - start, at);
    this.data.set(src.subarray(start, end), at);
    const offsets = this.offsets;
    const shift = at - start;
    let o = this.rows + 1;
    for (let i = from + 1; i <= to; i++) offsets[o++] = so[i]! + shift;
    this.rows = n;
  }

  write(ctx: PageContext): ChunkMeta {
    const out = new ChunkOut(ctx, this.spec, this.rows);
    const stats = (this.spec.dictionary && this.writeDictionary(ctx, out)) || this.writePlain(ctx, out);
    this.reset();
    return out.finish(stats);
  }

  /** Min and max of rows `list[0..count)` (or of every non-null row when `list` is undefined). */
  private bounds(list: Int32Array | undefined, count: number): { min: Uint8Array; max: Uint8Array } | undefined {
    const offsets = this.offsets;
    const data = this.data;
    const defs = this.nulls > 0 ? this.defs : undefined;
    let lo = -1;
    let hi = -1;
    for (let i = 0; i < count; i++) {
      const r = list === undefined ? i : list[i]!;
      if (list === undefined && defs !== undefined && defs[r] === 0) continue;
      const s = offsets[r]!;
      const e = offsets[r + 1]!;
      if (lo < 0 || compareBytes(data, s, e, offsets[lo]!, offsets[lo + 1]!) < 0) lo = r;
      if (hi < 0 || compareBytes(data, s, e, offsets[hi]!, offsets[hi + 1]!) > 0) hi = r;
    }
    if (lo < 0) return undefined;
    // Copies (Buffer#slice would be a view into a buffer the next row group overwrites).
    return { min: new Uint8Array(data.subarray(offsets[lo]!, offsets[lo + 1]!)), max: new Uint8Array(data.subarray(offsets[hi]!, offsets[hi + 1]!)) };
  }

  private stats(list: Int32Array | undefined, count: number): ChunkStats {
    const b = this.spec.statistics ? this.bounds(list, count) : undefined;
    return { nullCount: this.nulls, min: b?.min, max: b?.max };
  }

  private writeDictionary(ctx: PageContext, out: ChunkOut): ChunkStats | undefined {
    const rows = this.rows;
    const defs = this.nulls > 0 ? this.defs : undefined;
    const offsets = this.offsets;
    const data = this.data;
    const limit = ctx.dictionaryPageBytes;
    const mask = ctx.dictionaryScratch(Math.floor(limit / 4) + 1, rows);
    const table = ctx.table;
    const entries = ctx.entries;
    const hashes = ctx.hashes;
    const indices = ctx.indices;
    let n = 0;
    let k = 0;
    let bytes = 0;
    // The previous value: runs (constant columns, sorted or clustered data) skip the hash.
    let ps = 0;
    let pe = -1;
    let px = 0;
    for (let r = 0; r < rows; r++) {
      if (defs !== undefined && defs[r] === 0) continue;
      const s = offsets[r]!;
      const e = offsets[r + 1]!;
      if (e - s === pe - ps) {
        let p = 0;
        while (s + p < e && data[s + p] === data[ps + p]) p++;
        if (s + p === e) {
          indices[k++] = px;
          continue;
        }
      }
      ps = s;
      pe = e;
      let h = 0x811c9dc5 ^ (e - s);
      for (let p = s; p < e; p++) h = Math.imul(h ^ data[p]!, 0x01000193);
      h ^= h >>> 15;
      let slot = h & mask;
      for (;;) {
        const x = table[slot]!;
        if (x < 0) {
          bytes += 4 + e - s;
          if (bytes > limit) return undefined;
          entries[n] = r;
          hashes[n] = h;
          table[slot] = n;
          px = n;
          indices[k++] = n++;
          break;
        }
        if (hashes[x] === h) {
          const er = entries[x]!;
          const t = offsets[er]!;
          if (offsets[er + 1]! - t === e - s) {
            let p = 0;
            while (s + p < e && data[s + p] === data[t + p]) p++;
            if (s + p === e) {
              px = x;
              indices[k++] = x;
              break;
            }
          }
        }
        slot = (slot + 1) & mask;
      }
    }
    const body = out.beginDictionaryPage();
    body.room(bytes);
    for (let x = 0; x < n; x++) {
      const r = entries[x]!;
      const s = offsets[r]!;
      const e = offsets[r + 1]!;
      body.u32le(e - s);
      data.copy(body.buf, body.pos, s, e);
      body.pos += e - s;
    }
    out.endPage(PAGE.DICTIONARY_PAGE, n, ENCODING.PLAIN);
    const stats = this.stats(entries, n);
    this.writeIndexPages(ctx, out, bitWidth(Math.max(0, n - 1)));
    return stats;
  }

  private writePlain(ctx: PageContext, out: ChunkOut): ChunkStats {
    const rows = this.rows;
    const hasNulls = this.nulls > 0;
    const defs = this.defs;
    const offsets = this.offsets;
    const data = this.data;
    const limit = ctx.pageBytes;
    let r = 0;
    while (r < rows) {
      // Rows of this page: until ~pageBytes of values (at least one row).
      let end = r;
      let size = 0;
      while (end < rows && (size < limit || end === r)) {
        if (!hasNulls || defs![end] !== 0) size += 4 + offsets[end + 1]! - offsets[end]!;
        end++;
      }
      const body = out.beginDataPage(defs, hasNulls, r, end);
      body.room(size);
      const buf = body.buf;
      let p = body.pos;
      for (let i = r; i < end; i++) {
        if (hasNulls && defs![i] === 0) continue;
        const s = offsets[i]!;
        const len = offsets[i + 1]! - s;
        buf[p] = len & 0xff;
        buf[p + 1] = (len >>> 8) & 0xff;
        buf[p + 2] = (len >>> 16) & 0xff;
        buf[p + 3] = len >>> 24;
        p += 4;
        if (len < 32) for (let b = 0; b < len; b++) buf[p + b] = data[s + b]!;
        else data.copy(buf, p, s, s + len);
        p += len;
      }
      body.pos = p;
      out.endPage(PAGE.DATA_PAGE, end - r, ENCODING.PLAIN);
      r = end;
    }
    return this.stats(undefined, rows);
  }

  protected override reset(): void {
    super.reset();
    this.offsets[0] = 0;
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

  write(ctx: PageContext): ChunkMeta {
    const out = new ChunkOut(ctx, this.spec, this.rows);
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
    return out.finish(stats);
  }
}

/** The chunk encoder of a column. */
export function columnChunk(spec: ColumnSpec): ColumnChunk {
  switch (spec.source) {
    case 'bool':
      return new BoolChunk(spec);
    case 'bytes':
      return new BytesChunk(spec);
    default:
      return new FixedChunk(spec);
  }
}

export type { ColumnChunk };
