import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Field, Int64, Schema, Utf8 } from 'apache-arrow';
import { readFooter } from '../../../../lib/parquet/footer.js';
import { columnSpecs, decimalLength, encodeFooter, type ChunkMeta, type RowGroupMeta } from '../../../../lib/parquet/format/metadata.js';
import { CompactWriter } from '../../../../lib/parquet/format/thrift.js';

/** The footer bytes as they end a file: metadata, its length, PAR1. */
function fileTail(meta: Uint8Array): Uint8Array {
  const out = new Uint8Array(meta.length + 8);
  out.set(meta);
  new DataView(out.buffer).setUint32(meta.length, meta.length, true);
  out.set([0x50, 0x41, 0x52, 0x31], meta.length + 4);
  return out;
}

describe('Thrift compact writer', () => {
  it('encodes field headers, zigzag varints, long field-id jumps and nested structs', () => {
    const w = new CompactWriter(2);
    w.beginElement();
    w.i32(1, -1);
    w.i64(2, 2 ** 40 + 1);
    w.string(20, 'é');
    w.begin(21);
    w.bool(1, true);
    w.end();
    w.end();
    assert.deepEqual(
      [...w.bytes()],
      [
        0x15, 0x01, // field 1 i32, zigzag(-1) = 1
        0x16, 0x82, 0x80, 0x80, 0x80, 0x80, 0x40, // field 2 i64, zigzag(2^40 + 1) = 2^41 + 2
        0x08, 0x28, 0x02, 0xc3, 0xa9, // field 20 binary: delta 18 > 15, so type then zigzag(20)
        0x1c, // field 21 struct (delta 1)
        0x11, // bool field 1 = true
        0x00, 0x00,
      ],
    );
  });
});

describe('encodeFooter', () => {
  it('writes a footer that lib/parquet/footer.ts reads back (row groups, sizes, offsets, key/value)', () => {
    const schema = new Schema([new Field('id', new Int64(), false), new Field('name', new Utf8(), true)]);
    const specs = columnSpecs(schema, (n) => n === 'name', () => true);
    const chunk = (i: number, offset: number, size: number, dict: boolean): ChunkMeta => ({
      spec: specs[i]!,
      codec: 6,
      numValues: 2 ** 33,
      uncompressed: size * 3,
      compressed: size,
      dataPageOffset: dict ? offset + 10 : offset,
      dictionaryPageOffset: dict ? offset : undefined,
      dataPages: 2,
      stats: { nullCount: 3, min: Uint8Array.of(1), max: Uint8Array.of(2) },
    });
    const big = 2 ** 33;
    const groups: RowGroupMeta[] = [
      { numRows: big, fileOffset: 4, columns: [chunk(0, 4, 100, false), chunk(1, 104, 50, true)] },
      { numRows: 7, fileOffset: 154, columns: [chunk(0, 154, 2 ** 32, false), chunk(1, 154 + 2 ** 32, 1, true)] },
    ];
    const tail = fileTail(encodeFooter(specs, groups, { 'dativo.asset': 'orders', 'ü': '' }, 'dativo-ingest test'));
    const info = readFooter(tail, 10 * 2 ** 32);
    assert.deepEqual(info, {
      numRows: big + 7,
      rowGroups: [
        { numRows: big, offset: 4, compressedBytes: 150 },
        { numRows: 7, offset: 154, compressedBytes: 2 ** 32 + 1 },
      ],
      splitOffsets: [4, 154],
      columnSizes: { id: 100 + 2 ** 32, name: 51 },
      keyValue: { 'dativo.asset': 'orders', 'ü': '' },
    });
  });

  it('decimal FIXED_LEN_BYTE_ARRAY lengths follow parquet-rs (precision 19..38)', () => {
    assert.deepEqual([19, 20, 28, 38].map(decimalLength), [9, 9, 12, 16]);
  });
});
