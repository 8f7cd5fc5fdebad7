import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteSink } from '../../../../lib/parquet/format/bytes.js';
import { bitWidth, encodeHybrid, encodeLevels } from '../../../../lib/parquet/format/rle.js';

const hybrid = (values: number[], width: number): number[] => {
  const out = new ByteSink(4);
  encodeHybrid(Int32Array.from(values), 0, values.length, width, out);
  return [...out.bytes()];
};

describe('RLE / bit-packed hybrid', () => {
  it('writes a run of 8 or more equal values as one RLE run', () => {
    // header varint(10 << 1), then the value in ceil(width / 8) bytes
    assert.deepEqual(hybrid(Array(10).fill(1), 1), [0x14, 0x01]);
    assert.deepEqual(hybrid(Array(300).fill(0x1234), 13), [0xd8, 0x04, 0x34, 0x12]);
  });

  it('bit-packs LSB first (the Parquet spec\'s example: 0..7 in 3 bits)', () => {
    assert.deepEqual(hybrid([0, 1, 2, 3, 4, 5, 6, 7], 3), [0x03, 0x88, 0xc6, 0xfa]);
  });

  it('pads the last bit-packed group with zeros and switches to RLE for a long run', () => {
    // 8 × 5 as a run, then 0,1,0 in one padded group of 8
    assert.deepEqual(hybrid([5, 5, 5, 5, 5, 5, 5, 5, 0, 1, 0], 3), [0x10, 0x05, 0x03, 0x08, 0x00, 0x00]);
    // two groups (16 values) of alternating bits, width 1: header (2 << 1) | 1
    assert.deepEqual(hybrid(Array.from({ length: 16 }, (_, i) => i & 1), 1), [0x05, 0xaa, 0xaa]);
  });

  it('packs wide values across bytes (width 20 and 31)', () => {
    const v = [0xfffff, 1, 0x80000, 0, 0x12345, 0xabcde, 7, 0xfffff];
    const bytes = hybrid(v, 20);
    assert.equal(bytes[0], 0x03);
    assert.equal(bytes.length, 1 + 20);
    // Decode the LSB-first bit stream back.
    const read = (b: number[], width: number, n: number): number[] => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        let x = 0;
        for (let k = 0; k < width; k++) {
          const bit = i * width + k;
          x += ((b[1 + (bit >> 3)]! >> (bit & 7)) & 1) * 2 ** k;
        }
        out.push(x);
      }
      return out;
    };
    assert.deepEqual(read(bytes, 20, 8), v);
    const w31 = [2 ** 31 - 1, 0, 1, 2 ** 30, 5, 2 ** 31 - 2, 3, 0];
    assert.deepEqual(read(hybrid(w31, 31), 31, 8), w31);
  });

  it('encodes definition levels with the v1 4-byte length prefix', () => {
    const out = new ByteSink(4);
    encodeLevels(undefined, 0, 5, out);
    assert.deepEqual([...out.bytes()], [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01]);
    const out2 = new ByteSink(4);
    encodeLevels(Uint8Array.from([1, 0, 1, 1, 1, 1, 1, 1, 1, 1]), 2, 10, out2);
    assert.deepEqual([...out2.bytes()], [0x02, 0x00, 0x00, 0x00, 0x10, 0x01]);
  });

  it('bitWidth: at least 1, else the bits of the largest index', () => {
    assert.deepEqual([0, 1, 2, 3, 255, 256, 2 ** 31 - 1].map(bitWidth), [1, 1, 2, 2, 8, 9, 31]);
  });
});
