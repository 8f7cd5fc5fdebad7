/**
 * Avro Object Container Files for Iceberg manifests and manifest lists.
 *
 * avsc encodes the records, but the container is written here, for two
 * reasons measured in reference/parquet-lab.md §5: avsc's file encoder
 * re-exports the schema from its parsed Type (dropping every Iceberg
 * `field-id`/`element-id`/`logicalType:map` attribute) unless given the raw
 * JSON, and it ignores a type registry, so 64-bit longs cannot be bigints.
 * Writing the header ourselves puts the RAW schema text in `avro.schema`
 * verbatim, and records are encoded with a Type built with a BigInt `long`.
 * The container format is small (magic, metadata map, sync marker, blocks of
 * `count, size, data, sync`), so this is less code than working around avsc.
 */
import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import avro from 'avsc';
import { DativoError } from '../errors.js';

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // "Obj\x01"

/** A JSON Avro schema as written into the file header (kept verbatim). */
export type AvroSchema = Record<string, unknown>;

/** An Avro `long` type whose JS value is always a bigint (exact beyond 2^53). */
export function bigintLongType(): avro.types.LongType {
  return avro.types.LongType.__with({
    fromBuffer: (buf: Buffer) => buf.readBigInt64LE(0),
    toBuffer: (n: bigint | number) => {
      const buf = Buffer.alloc(8);
      buf.writeBigInt64LE(BigInt(n), 0);
      return buf;
    },
    fromJSON: (v: unknown) => BigInt(v as string | number | bigint),
    toJSON: (n: bigint) => (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString()),
    isValid: (v: unknown) => typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v)),
    compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
  }) as avro.types.LongType;
}

/** An avsc Type for `schema` whose longs are bigints. A fresh registry each time: avsc mutates it with named types. */
export function avroType(schema: AvroSchema): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, { registry: { long: bigintLongType() } as never });
}

const META_TYPE = avro.Type.forSchema({ type: 'map', values: 'bytes' });
const LONG_TYPE = avro.Type.forSchema('long');

/** Codecs we write and read. Iceberg's default manifest codec (`gzip`) is Avro `deflate`. */
export type AvroCodec = 'null' | 'deflate';

export interface AvroWriteOptions {
  /** Extra header key-values (Iceberg's `schema`, `snapshot-id`, ...), UTF-8. */
  metadata?: Record<string, string>;
  /** Default `deflate`. */
  codec?: AvroCodec;
  /** Records per block. Default 4096. */
  blockRecords?: number;
}

function encodeBlock(type: avro.Type, records: readonly unknown[], codec: AvroCodec, sync: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const errors: string[] = [];
    if (!type.isValid(r, { errorHook: (path) => errors.push(path.join('.')) })) {
      throw new DativoError('INTERNAL', `record does not match the Avro schema at ${errors.join(', ')}`, { context: { paths: errors } });
    }
    parts.push(type.toBuffer(r));
  }
  const raw = Buffer.concat(parts);
  const data = codec === 'deflate' ? deflateRawSync(raw) : raw;
  return Buffer.concat([LONG_TYPE.toBuffer(records.length), LONG_TYPE.toBuffer(data.length), data, sync]);
}

/**
 * Encode `records` as a complete Avro container file. `schema` is written to
 * the header exactly as given (JSON.stringify: Avro schemas hold no longs).
 */
export function writeAvroFile(schema: AvroSchema, records: readonly unknown[], options: AvroWriteOptions = {}): Buffer {
  const codec = options.codec ?? 'deflate';
  const blockRecords = options.blockRecords ?? 4096;
  const type = avroType(schema);
  const sync = randomBytes(16);
  const meta: Record<string, Buffer> = {
    'avro.schema': Buffer.from(JSON.stringify(schema), 'utf8'),
    'avro.codec': Buffer.from(codec, 'utf8'),
  };
  for (const [k, v] of Object.entries(options.metadata ?? {})) meta[k] = Buffer.from(v, 'utf8');
  const out: Buffer[] = [MAGIC, META_TYPE.toBuffer(meta), sync];
  for (let i = 0; i < records.length; i += blockRecords) {
    out.push(encodeBlock(type, records.slice(i, i + blockRecords), codec, sync));
  }
  return Buffer.concat(out);
}

/** A decoded Avro container file. */
export interface AvroFile {
  /** Header metadata as UTF-8 strings (including `avro.schema` and `avro.codec`). */
  metadata: Record<string, string>;
  /** The writer schema, parsed from the header. */
  schema: AvroSchema;
  /** Records decoded with the writer schema; longs are bigints. */
  records: unknown[];
}

function invalid(what: string, message: string): DativoError {
  return new DativoError('CATALOG_INVALID', `${what}: ${message}`, { context: { file: what } });
}

/** Decode a whole Avro container file (codecs `null` and `deflate`). `what` names it in errors. */
export function readAvroFile(buf: Buffer, what = 'Avro file'): AvroFile {
  if (buf.length < 4 || !buf.subarray(0, 4).equals(MAGIC)) throw invalid(what, 'not an Avro container file');
  const head = META_TYPE.decode(buf, 4);
  if (head.offset < 0) throw invalid(what, 'truncated header');
  const metaBytes = head.value as Record<string, Buffer>;
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(metaBytes)) metadata[k] = Buffer.from(v).toString('utf8');
  let pos = head.offset;
  const sync = buf.subarray(pos, pos + 16);
  pos += 16;
  const schemaText = metadata['avro.schema'];
  if (schemaText === undefined) throw invalid(what, 'no avro.schema in header');
  const schema = JSON.parse(schemaText) as AvroSchema;
  const codec = metadata['avro.codec'] ?? 'null';
  if (codec !== 'null' && codec !== 'deflate') throw invalid(what, `unsupported Avro codec ${codec} (supported: null, deflate)`);
  const type = avroType(schema);
  const records: unknown[] = [];
  while (pos < buf.length) {
    const count = LONG_TYPE.decode(buf, pos);
    if (count.offset < 0) throw invalid(what, 'truncated block');
    const size = LONG_TYPE.decode(buf, count.offset);
    if (size.offset < 0) throw invalid(what, 'truncated block');
    const start = size.offset;
    const end = start + (size.value as number);
    if (end + 16 > buf.length) throw invalid(what, 'truncated block');
    const data = codec === 'deflate' ? inflateRawSync(buf.subarray(start, end)) : buf.subarray(start, end);
    if (!buf.subarray(end, end + 16).equals(sync)) throw invalid(what, 'sync marker mismatch');
    let p = 0;
    for (let i = 0; i < (count.value as number); i++) {
      const r = type.decode(data, p);
      if (r.offset < 0) throw invalid(what, 'truncated record');
      records.push(r.value);
      p = r.offset;
    }
    pos = end + 16;
  }
  return { metadata, schema, records };
}
