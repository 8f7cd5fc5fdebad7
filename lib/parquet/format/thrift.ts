/**
 * Thrift compact protocol, the writing half: just what Parquet's footer and
 * page headers use (structs, i16/i32/i64, bool, binary, lists). The reading
 * half is in lib/parquet/footer.ts.
 */

/** Compact protocol type ids. */
export const T = { TRUE: 1, FALSE: 2, BYTE: 3, I16: 4, I32: 5, I64: 6, DOUBLE: 7, BINARY: 8, LIST: 9, STRUCT: 12 } as const;

const utf8 = new TextEncoder();

/**
 * Writes one Thrift value (a struct and its children) into a growable
 * buffer; reuse it with {@link reset}. Field ids must ascend within a struct
 * (deltas are encoded), as they do in Parquet's IDL order.
 */
export class CompactWriter {
  buf: Uint8Array;
  pos = 0;
  private last = 0;
  private readonly stack: number[] = [];

  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity);
  }

  reset(): void {
    this.pos = 0;
    this.last = 0;
    this.stack.length = 0;
  }

  /** The bytes written so far (a view: copy before the next reset). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
  }

  private byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned varint of a non-negative integer below 2^53. */
  varint(v: number): void {
    this.room(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /** Zigzag varint of an integer of magnitude below 2^52. */
  private zigzag(v: number): void {
    this.varint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  private header(id: number, type: number): void {
    const delta = id - this.last;
    if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
    else {
      this.byte(type);
      this.zigzag(id);
    }
    this.last = id;
  }

  i32(id: number, v: number): void {
    this.header(id, T.I32);
    this.zigzag(v);
  }

  i16(id: number, v: number): void {
    this.header(id, T.I16);
    this.zigzag(v);
  }

  /** An i64 field whose value is a safe integer (offsets, sizes, counts). */
  i64(id: number, v: number): void {
    this.header(id, T.I64);
    this.zigzag(v);
  }

  bool(id: number, v: boolean): void {
    this.header(id, v ? T.TRUE : T.FALSE);
  }

  binary(id: number, v: Uint8Array): void {
    this.header(id, T.BINARY);
    this.rawBinary(v);
  }

  string(id: number, v: string): void {
    this.binary(id, utf8.encode(v));
  }

  /** A length-prefixed binary value without a field header (a list element). */
  rawBinary(v: Uint8Array): void {
    this.varint(v.length);
    this.room(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  /** A list field header; the `size` elements follow (struct elements with {@link beginElement}). */
  list(id: number, elemType: number, size: number): void {
    this.header(id, T.LIST);
    if (size < 15) this.byte((size << 4) | elemType);
    else {
      this.byte(0xf0 | elemType);
      this.varint(size);
    }
  }

  /** An i32 list element. */
  rawI32(v: number): void {
    this.zigzag(v);
  }

  /** Open a struct field; close it with {@link end}. */
  begin(id: number): void {
    this.header(id, T.STRUCT);
    this.stack.push(this.last);
    this.last = 0;
  }

  /** Open a struct that is a list element (or the top-level value); close it with {@link end}. */
  beginElement(): void {
    this.stack.push(this.last);
    this.last = 0;
  }

  /** Close the innermost struct. */
  end(): void {
    this.byte(0);
    this.last = this.stack.pop() ?? 0;
  }
}
