/**
 * MySQL/MariaDB values → canonical values (lib/types.ts).
 *
 * mysql2 runs with `supportBigNumbers + bigNumberStrings` (BIGINT as exact
 * text), `dateStrings` (DATE/DATETIME/TIMESTAMP as text, never a local-time
 * Date), `jsonStrings` (JSON as the server's text; MariaDB's JSON is a
 * LONGTEXT flagged as json) and `decimalNumbers: false` (DECIMAL as text).
 * Rows come as arrays; a per-query compiled builder then makes the record:
 * - BIGINT → bigint (exact text when the asset says decimal, as for BIGINT
 *   UNSIGNED, discovered as decimal(20,0)); TINYINT/SMALLINT/MEDIUMINT/INT/YEAR → number;
 * - DECIMAL → exact text; FLOAT/DOUBLE → number;
 * - DATE → days; DATETIME/TIMESTAMP → bigint µs (the session is UTC, so
 *   TIMESTAMP is converted by the server; DATETIME has no zone and is taken
 *   as UTC). Zero dates (`0000-00-00`) stay text and validate refuses them.
 * - BINARY/VARBINARY/BLOB → Uint8Array (copied out of the packet buffer);
 * - BIT(1), and TINYINT(1) when the asset says boolean → boolean;
 * - CHAR/VARCHAR/TEXT/ENUM/SET/TIME/JSON → text (utf8mb4 on the wire).
 */
import { parseDateText, parseTimestampText } from '../sql/time.js';
import type { FieldKind } from '../../lib/types.js';
import type { Converter } from '../sql/rows.js';

export { compileRowBuilder, type Converter } from '../sql/rows.js';

/** mysql2 column metadata we use. */
export interface MysqlField {
  name: string;
  columnType: number;
  columnLength: number;
  flags: number;
  decimals: number;
  characterSet: number;
  extendedFormat?: string;
  extendedTypeName?: string;
}

/** MySQL protocol column type codes (mysql2's `columnType`). */
export const T = {
  DECIMAL: 0x00,
  TINY: 0x01,
  SHORT: 0x02,
  LONG: 0x03,
  FLOAT: 0x04,
  DOUBLE: 0x05,
  TIMESTAMP: 0x07,
  LONGLONG: 0x08,
  INT24: 0x09,
  DATE: 0x0a,
  TIME: 0x0b,
  DATETIME: 0x0c,
  YEAR: 0x0d,
  NEWDATE: 0x0e,
  BIT: 0x10,
  JSON: 0xf5,
  NEWDECIMAL: 0xf6,
  TINY_BLOB: 0xf9,
  MEDIUM_BLOB: 0xfa,
  LONG_BLOB: 0xfb,
  BLOB: 0xfc,
  VAR_STRING: 0xfd,
  STRING: 0xfe,
} as const;

const FLAG_NOT_NULL = 1;
const FLAG_UNSIGNED = 32;
const BINARY_CHARSET = 63;



const toBigInt: Converter = (v) => (typeof v === 'string' ? BigInt(v) : typeof v === 'number' ? BigInt(v) : v);
const toMicros: Converter = (v) => (typeof v === 'string' ? parseTimestampText(v) : v);
const toDays: Converter = (v) => (typeof v === 'string' ? parseDateText(v) : v);
const toBytes: Converter = (v) => (v instanceof Uint8Array ? new Uint8Array(v) : v);
const bitToBool: Converter = (v) => (v instanceof Uint8Array && v.length === 1 ? v[0] === 1 : v);
const tinyToBool: Converter = (v) => (v === 1 ? true : v === 0 ? false : v);

function isBinaryString(f: MysqlField): boolean {
  return f.characterSet === BINARY_CHARSET && f.extendedFormat !== 'json';
}

/** The converter of a column (undefined = the driver's value is already canonical). */
export function converterFor(f: MysqlField, assetKind?: FieldKind): Converter | undefined {
  switch (f.columnType) {
    case T.LONGLONG:
      // BIGINT UNSIGNED into decimal(20,0): the driver's exact digits are the canonical decimal text.
      return assetKind === 'decimal' || assetKind === 'string' ? undefined : toBigInt;
    case T.DATETIME:
    case T.TIMESTAMP:
      return toMicros;
    case T.DATE:
    case T.NEWDATE:
      return toDays;
    case T.TINY:
      return assetKind === 'boolean' ? tinyToBool : assetKind === 'long' ? toBigInt : undefined;
    case T.SHORT:
    case T.LONG:
    case T.INT24:
    case T.YEAR:
      // INT UNSIGNED exceeds int32: such columns are assets' `long`, canonical as bigint.
      return assetKind === 'long' ? toBigInt : undefined;
    case T.BIT:
      return f.columnLength === 1 && assetKind !== 'binary' ? bitToBool : toBytes;
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB:
    case T.VAR_STRING:
    case T.STRING:
      return isBinaryString(f) ? toBytes : undefined;
    default:
      return undefined;
  }
}

/** Facts from information_schema.COLUMNS used by discover. */
export interface ColumnInfo {
  name: string;
  dataType: string;
  columnType: string;
  nullable: boolean;
  precision: number | null;
  scale: number | null;
}

/** Asset type string of a column, from the catalog when known, else from the result metadata. */
export function assetTypeOf(f: MysqlField, info?: ColumnInfo): string {
  const unsigned = (f.flags & FLAG_UNSIGNED) !== 0;
  if (f.extendedFormat === 'json' || f.columnType === T.JSON) return 'json';
  switch (f.columnType) {
    case T.TINY:
      // TINYINT(1) holds -128..127 (0..255 unsigned). BOOL/BOOLEAN are only its
      // alias: MySQL and MariaDB store and report both as `tinyint(1)`
      // (COLUMN_TYPE, SHOW CREATE TABLE, result metadata), so they cannot be
      // told apart and every TINYINT is an `int`; an asset that says
      // `boolean` reads 0/1 as false/true (docs/connectors/mysql.md).
      return 'int';
    case T.SHORT:
    case T.INT24:
    case T.YEAR:
      return 'int';
    case T.LONG:
      return unsigned ? 'long' : 'int';
    case T.LONGLONG:
      // BIGINT UNSIGNED reaches 18446744073709551615 (20 digits), beyond a long.
      return unsigned ? 'decimal(20,0)' : 'long';
    case T.FLOAT:
      return 'float';
    case T.DOUBLE:
      return 'double';
    case T.DECIMAL:
    case T.NEWDECIMAL: {
      const p = info?.precision ?? f.columnLength - (f.decimals > 0 ? 1 : 0) - (unsigned ? 0 : 1);
      const s = info?.scale ?? f.decimals;
      return p >= 1 && p <= 38 && s <= p ? `decimal(${p},${s})` : 'string';
    }
    case T.DATE:
    case T.NEWDATE:
      return 'date';
    case T.DATETIME:
    case T.TIMESTAMP:
      return 'timestamp';
    case T.BIT:
      return f.columnLength === 1 ? 'boolean' : 'binary';
    default:
      if (info !== undefined && /json/i.test(info.dataType)) return 'json';
      return isBinaryString(f) ? 'binary' : 'string';
  }
}

/** True when the result metadata says NOT NULL. */
export function isNotNull(f: MysqlField): boolean {
  return (f.flags & FLAG_NOT_NULL) !== 0;
}
