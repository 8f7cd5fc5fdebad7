/** The part of snappyjs (pure JS, no types of its own) that we use. */
declare module 'snappyjs' {
  /** Snappy raw block compression (what Parquet's SNAPPY codec stores). */
  export function compress(input: Uint8Array): Uint8Array;
  export function uncompress(input: Uint8Array): Uint8Array;
  const snappy: { compress: typeof compress; uncompress: typeof uncompress };
  export default snappy;
}
