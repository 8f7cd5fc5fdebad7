/**
 * Just enough of the Parquet footer (Thrift compact protocol) to describe a
 * file we wrote ourselves: row-group offsets (Iceberg `split_offsets`) and
 * compressed bytes per column (Iceberg `column_sizes`). Reading our own
 * output's last bytes avoids a second read of the file.
 */

/** Facts read from a Parquet footer. */
export interface FooterInfo {
  numRows: number;
  rowGroups: Array<{ numRows: number; offset: number; compressedBytes: number }>;
  /** Byte offset of each row group's first page, ascending. */
  splitOffsets: number[];
  /** Compressed bytes per top-level column, summed over row groups. */
  columnSizes: Record<string, number>;
  /** Footer key/value metadata. */
  keyValue: Record<string, string>;
}

type ThriftValue = number | boolean | Uint8Array | ThriftValue[] | ThriftStruct;
type ThriftStruct = Map<number, ThriftValue>;

class CompactReader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  private byte(): number {
    if (this.pos >= this.buf.length) throw new Error('truncated footer');
    return this.buf[this.pos++]!;
  }

  /** Unsigned varint as a JS number (exact below 2^53, which covers offsets and counts). */
  private varint(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
  }

  private zigzag(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }

  private value(type: number): ThriftValue {
    switch (type) {
      case 1:
        return true;
      case 2:
        return false;
      case 3:
        return this.byte();
      case 4:
      case 5:
      case 6:
        return this.zigzag();
      case 7:
        this.pos += 8;
        return 0;
      case 8: {
        const len = this.varint();
        const out = this.buf.subarray(this.pos, this.pos + len);
        this.pos += len;
        return out;
      }
      case 9:
      case 10: {
        const header = this.byte();
        let size = header >> 4;
        const elem = header & 0x0f;
        if (size === 15) size = this.varint();
        const out: ThriftValue[] = [];
        for (let i = 0; i < size; i++) out.push(elem === 1 || elem === 2 ? this.byte() === 1 : this.value(elem));
        return out;
      }
      case 11: {
        const size = this.varint();
        const types = size > 0 ? this.byte() : 0;
        const out: ThriftValue[] = [];
        for (let i = 0; i < size; i++) out.push([this.value(types >> 4), this.value(types & 0x0f)]);
        return out;
      }
      case 12:
        return this.struct();
      default:
        throw new Error(`unknown thrift type ${type}`);
    }
  }

  struct(): ThriftStruct {
    const out: ThriftStruct = new Map();
    let last = 0;
    for (;;) {
      const header = this.byte();
      if (header === 0) return out;
      const delta = header >> 4;
      const id = delta === 0 ? this.zigzag() : last + delta;
      last = id;
      out.set(id, this.value(header & 0x0f));
    }
  }
}

const utf8 = new TextDecoder();

function num(s: ThriftStruct | undefined, id: number): number | undefined {
  const v = s?.get(id);
  return typeof v === 'number' ? v : undefined;
}

function list(s: ThriftStruct | undefined, id: number): ThriftValue[] {
  const v = s?.get(id);
  return Array.isArray(v) ? v : [];
}

/**
 * Parse the footer from the last bytes of a Parquet file. `tail` must end
 * where the file ends; `fileSize` is the whole file's size. Returns
 * undefined when `tail` does not hold the whole footer or is not Parquet.
 */
export function readFooter(tail: Uint8Array, fileSize: number): FooterInfo | undefined {
  const n = tail.byteLength;
  if (n < 12 || fileSize < n) return undefined;
  if (tail[n - 4] !== 0x50 || tail[n - 3] !== 0x41 || tail[n - 2] !== 0x52 || tail[n - 1] !== 0x31) return undefined;
  const len = new DataView(tail.buffer, tail.byteOffset + n - 8, 4).getUint32(0, true);
  if (len + 8 > n) return undefined;
  let meta: ThriftStruct;
  try {
    meta = new CompactReader(tail.subarray(n - 8 - len, n - 8)).struct();
  } catch {
    return undefined;
  }
  const info: FooterInfo = { numRows: num(meta, 3) ?? 0, rowGroups: [], splitOffsets: [], columnSizes: {}, keyValue: {} };
  for (const rg of list(meta, 4) as ThriftStruct[]) {
    let offset = Number.POSITIVE_INFINITY;
    let compressed = 0;
    for (const cc of list(rg, 1) as ThriftStruct[]) {
      const md = cc.get(3) as ThriftStruct | undefined;
      const size = num(md, 7) ?? 0;
      compressed += size;
      const start = num(md, 11) ?? num(md, 9);
      if (start !== undefined && start < offset) offset = start;
      const path = list(md, 3);
      if (path[0] instanceof Uint8Array) {
        const name = utf8.decode(path[0]);
        info.columnSizes[name] = (info.columnSizes[name] ?? 0) + size;
      }
    }
    if (!Number.isFinite(offset)) offset = num(rg, 5) ?? 4;
    info.rowGroups.push({ numRows: num(rg, 3) ?? 0, offset, compressedBytes: num(rg, 6) ?? compressed });
  }
  info.splitOffsets = info.rowGroups.map((g) => g.offset).sort((a, b) => a - b);
  for (const kv of list(meta, 5) as ThriftStruct[]) {
    const k = kv.get(1);
    const v = kv.get(2);
    if (k instanceof Uint8Array) info.keyValue[utf8.decode(k)] = v instanceof Uint8Array ? utf8.decode(v) : '';
  }
  return info;
}
