/**
 * Page compression codecs: native zstd (zstd-napi), snappy (snappyjs, pure
 * JS), gzip (node:zlib). The bytes returned may be a view into a buffer
 * the next call overwrites (zstd, uncompressed): copy them before compressing
 * another page.
 */
import { gzipSync } from 'node:zlib';
import snappy from 'snappyjs';
import zstd from 'zstd-napi/binding.js';

/** Compression codecs offered to users. */
export type ParquetCompression = 'zstd' | 'snappy' | 'gzip' | 'uncompressed';

/** Parquet's CompressionCodec enum values. */
export const CODEC_ID: Record<ParquetCompression, number> = { uncompressed: 0, snappy: 1, gzip: 2, zstd: 6 };

export type Compress = (page: Uint8Array) => Uint8Array;

/** A compressor for `codec`; zstd at level 1 (parquet-rs's default level). */
export function compressorFor(codec: ParquetCompression): Compress {
  switch (codec) {
    case 'zstd': {
      // One context and one output buffer for every page: the high-level
      // Compressor allocated a compressBound-sized buffer per page and copied
      // the result out of it.
      const cctx = new zstd.CCtx();
      cctx.setParameter(zstd.CParameter.compressionLevel, 1);
      let dest = new Uint8Array(0);
      return (page) => {
        const bound = zstd.compressBound(page.length);
        if (dest.length < bound) dest = new Uint8Array(Math.max(bound, 2 * dest.length));
        return dest.subarray(0, cctx.compress2(dest, page));
      };
    }
    case 'snappy':
      return (page) => snappy.compress(page);
    case 'gzip':
      return (page) => gzipSync(page);
    case 'uncompressed':
      return (page) => page;
  }
}
