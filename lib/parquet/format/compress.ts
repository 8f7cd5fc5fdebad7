/**
 * Page compression codecs: native zstd (zstd-napi), snappy (snappyjs, pure
 * JS), gzip (node:zlib). Each returns a fresh buffer the caller may keep.
 */
import { gzipSync } from 'node:zlib';
import snappy from 'snappyjs';
import { Compressor } from 'zstd-napi';

/** Compression codecs offered to users. */
export type ParquetCompression = 'zstd' | 'snappy' | 'gzip' | 'uncompressed';

/** Parquet's CompressionCodec enum values. */
export const CODEC_ID: Record<ParquetCompression, number> = { uncompressed: 0, snappy: 1, gzip: 2, zstd: 6 };

export type Compress = (page: Uint8Array) => Uint8Array;

/** A compressor for `codec`; zstd at level 1 (parquet-rs's default level). */
export function compressorFor(codec: ParquetCompression): Compress {
  switch (codec) {
    case 'zstd': {
      const z = new Compressor();
      z.setParameters({ compressionLevel: 1 });
      return (page) => z.compress(page);
    }
    case 'snappy':
      return (page) => snappy.compress(page);
    case 'gzip':
      return (page) => gzipSync(page);
    case 'uncompressed':
      return (page) => page.slice();
  }
}
