/**
 * Parquet's RLE / bit-packed hybrid encoding (definition levels, dictionary
 * indices): runs of 8 or more equal values as RLE runs, the rest in
 * bit-packed groups of 8 (LSB first). The last group may be padded with
 * zeros; readers stop at the page's value count.
 */
import type { ByteSink } from './bytes.js';

/** Bits needed for values 0..max (at least 1: every reader takes a width of 1, not all take 0). */
export function bitWidth(max: number): number {
  let w = 1;
  while (w < 32 && max >>> w !== 0) w++;
  return w;
}

/** Length of the run of values equal to `values[i]` starting at `i`, up to `n`. */
function runLength(values: ArrayLike<number>, i: number, n: number): number {
  const v = values[i];
  let j = i + 1;
  while (j < n && values[j] === v) j++;
  return j - i;
}

/**
 * Append `values[from..to)` (each below 2^width) to `out` in the hybrid
 * encoding, without a length prefix.
 */
export function encodeHybrid(values: Uint8Array | Int32Array, from: number, to: number, width: number, out: ByteSink): void {
  const valueBytes = (width + 7) >> 3;
  let i = from;
  while (i < to) {
    const run = runLength(values, i, to);
    if (run >= 8) {
      out.varint(run << 1);
      out.room(valueBytes);
      let v = values[i]!;
      for (let k = 0; k < valueBytes; k++) {
        out.buf[out.pos++] = v & 0xff;
        v >>>= 8;
      }
      i += run;
      continue;
    }
    // Bit-packed groups of 8 until a run of 8 starts at a group boundary (or the end).
    let groups = 1;
    let next = i + 8;
    while (next < to && groups < 63 && runLength(values, next, Math.min(to, next + 8)) < 8) {
      groups++;
      next += 8;
    }
    out.varint((groups << 1) | 1);
    const bytes = groups * width;
    out.room(bytes);
    const buf = out.buf;
    let p = out.pos;
    const end = i + groups * 8;
    let acc = 0;
    let bits = 0;
    for (let k = i; k < end; k++) {
      const v = k < to ? values[k]! : 0;
      // acc holds fewer than 8 pending bits; add width bits, flush whole bytes.
      if (width <= 24) {
        acc |= v << bits;
        bits += width;
        while (bits >= 8) {
          buf[p++] = acc & 0xff;
          acc >>>= 8;
          bits -= 8;
        }
      } else {
        // Wide indices: split so the accumulator never exceeds 32 bits.
        let rest = v;
        let left = width;
        while (left > 0) {
          const take = Math.min(8 - bits, left);
          acc |= (rest & ((1 << take) - 1)) << bits;
          rest >>>= take;
          left -= take;
          bits += take;
          if (bits === 8) {
            buf[p++] = acc & 0xff;
            acc = 0;
            bits = 0;
          }
        }
      }
    }
    out.pos = p;
    i = end;
  }
}

/**
 * Definition levels of a page as the v1 data page stores them: a 4-byte
 * little-endian length, then the hybrid encoding of `defs[from..to)`
 * (0 = null, 1 = value; width 1). `defs` undefined means no nulls.
 */
export function encodeLevels(defs: Uint8Array | undefined, from: number, to: number, out: ByteSink): void {
  const at = out.pos;
  out.u32le(0);
  if (defs === undefined) {
    // One RLE run of 1s.
    out.varint((to - from) << 1);
    out.u8(1);
  } else encodeHybrid(defs, from, to, 1, out);
  out.patchU32le(at, out.pos - at - 4);
}
