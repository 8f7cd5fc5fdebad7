/**
 * Postgres wire text → canonical values (lib/types.ts), one parser per type
 * OID. The read stream asks pg for rows of raw text (a per-query
 * `getTypeParser` that keeps the text, so the global pg-types registry is
 * never touched and other pg users in the process keep their behaviour) and
 * applies these parsers in its compiled record builder.
 *
 * Choices (documented in docs/connectors/postgres.md):
 * - int2/int4/oid → number; int8 → bigint; float4/float8 → number.
 * - numeric → the server's text as is (exact digits; `NaN` is left for validate to refuse).
 * - date → days since epoch; timestamp/timestamptz → bigint µs since epoch.
 *   The session runs in UTC; `timestamp without time zone` is taken as UTC.
 *   `infinity` stays text (validate refuses it: no silent change).
 * - json/jsonb → the server's JSON text, never parsed (big numbers stay exact).
 * - bytea → Uint8Array (hex output format is forced on the session).
 * - bool → boolean; uuid, text, enums, time, interval, inet, ... → text.
 * - Arrays of built-in element types → JSON text: numbers for int2/int4/
 *   float, exact digits for int8/numeric, true/false, embedded JSON for
 *   json/jsonb, strings otherwise, null for NULL. Arrays of user types (e.g.
 *   enums) → JSON arrays of strings.
 */
import { parseDateText, parseTimestampText } from '../sql/time.js';

/** A text parser of one column. */
export type TextParser = (text: string) => unknown;

/** Built-in type OIDs we parse (pg_type.oid is stable for built-ins). */
export const OID = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

const identity: TextParser = (s) => s;
const parseBool: TextParser = (s) => s === 't';
const parseInt32: TextParser = (s) => +s;
const parseInt64: TextParser = (s) => BigInt(s);
const parseFloat64: TextParser = (s) => parseFloat(s);

/** bytea in hex output format: `\x0a0b…`. Copied into its own buffer (not Buffer's shared pool). */
export const parseBytea: TextParser = (s) => {
  if (s.charCodeAt(0) !== 92 || s.charCodeAt(1) !== 120) return s;
  const n = (s.length - 2) >>> 1;
  const out = Buffer.allocUnsafeSlow(n);
  out.write(s.slice(2), 'hex');
  return new Uint8Array(out.buffer, out.byteOffset, n);
};

/** Scalar parsers by OID. */
const SCALAR: ReadonlyMap<number, TextParser> = new Map<number, TextParser>([
  [OID.bool, parseBool],
  [OID.bytea, parseBytea],
  [OID.int8, parseInt64],
  [OID.int2, parseInt32],
  [OID.int4, parseInt32],
  [OID.oid, parseInt32],
  [OID.float4, parseFloat64],
  [OID.float8, parseFloat64],
  [OID.numeric, identity],
  [OID.date, parseDateText],
  [OID.timestamp, parseTimestampText],
  [OID.timestamptz, parseTimestampText],
  [OID.json, identity],
  [OID.jsonb, identity],
]);

/** How an array element is written into JSON text. */
type ElementJson = 'number' | 'digits' | 'bool' | 'json' | 'string';

/** Array OID → element handling, for the built-in array types. */
const ARRAYS: ReadonlyMap<number, ElementJson> = new Map<number, ElementJson>([
  [1000, 'bool'],
  [1005, 'number'], // int2[]
  [1007, 'number'], // int4[]
  [1028, 'number'], // oid[]
  [1016, 'digits'], // int8[]
  [1021, 'number'], // float4[]
  [1022, 'number'], // float8[]
  [1231, 'digits'], // numeric[]
  [199, 'json'], // json[]
  [3807, 'json'], // jsonb[]
  [1009, 'string'], // text[]
  [1015, 'string'], // varchar[]
  [1014, 'string'], // bpchar[]
  [1002, 'string'], // char[]
  [1003, 'string'], // name[]
  [2951, 'string'], // uuid[]
  [1182, 'string'], // date[]
  [1115, 'string'], // timestamp[]
  [1185, 'string'], // timestamptz[]
  [1001, 'string'], // bytea[] (hex text)
  [1183, 'string'], // time[]
  [1187, 'string'], // interval[]
]);

/** True when the OID is a built-in type we know how to parse (else: a lookup in pg_type is worth it). */
export function isKnownOid(oid: number): boolean {
  return SCALAR.has(oid) || ARRAYS.has(oid) || oid < 16384; // FirstNormalObjectId
}

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

function elementJson(text: string, how: ElementJson): string {
  switch (how) {
    case 'number':
    case 'digits':
      // NaN / Infinity are not JSON numbers: keep them as strings.
      return JSON_NUMBER.test(text) ? text : JSON.stringify(text);
    case 'bool':
      return text === 't' ? 'true' : 'false';
    case 'json':
      return text;
    case 'string':
      return JSON.stringify(text);
  }
}

/**
 * Postgres array literal (`{a,"b c",NULL,{1,2}}`, optionally with a
 * `[l:u]=` dimension prefix) → JSON array text. Returns the input unchanged
 * when it is not a well-formed literal.
 */
export function arrayLiteralToJson(s: string, how: ElementJson): string {
  let i = 0;
  if (s.charCodeAt(0) === 91 /* [ */) {
    const eq = s.indexOf('=');
    if (eq === -1) return s;
    i = eq + 1;
  }
  let out = '';
  let depth = 0;
  const n = s.length;
  let expectValue = true;
  while (i < n) {
    const c = s[i]!;
    if (c === '{') {
      out += '[';
      depth++;
      i++;
      expectValue = true;
      continue;
    }
    if (c === '}') {
      out += ']';
      depth--;
      i++;
      expectValue = false;
      if (depth === 0) return i === n ? out : s;
      continue;
    }
    if (c === ',') {
      out += ',';
      i++;
      expectValue = true;
      continue;
    }
    if (!expectValue || depth === 0) return s;
    if (c === '"') {
      let v = '';
      i++;
      while (i < n && s[i] !== '"') {
        if (s[i] === '\\') i++;
        v += s[i++];
      }
      if (i >= n) return s;
      i++;
      out += elementJson(v, how);
    } else {
      let j = i;
      while (j < n && s[j] !== ',' && s[j] !== '}') j++;
      const v = s.slice(i, j).trim();
      out += v === 'NULL' ? 'null' : elementJson(v, how);
      i = j;
    }
    expectValue = false;
  }
  return s;
}

/** Facts about a non-built-in type, from pg_type. */
export interface UserType {
  oid: number;
  /** pg_type.typtype: `e` enum, `d` domain, `b` base, `c` composite, ... */
  typtype: string;
  /** pg_type.typcategory: `A` array, `E` enum, ... */
  typcategory: string;
  /** Element type of an array, else 0. */
  typelem: number;
}

/**
 * The parser of a column type. User-defined arrays become JSON arrays of
 * element text (or parsed by the element's built-in handling); everything
 * else unknown stays text.
 */
export function parserFor(oid: number, userTypes?: ReadonlyMap<number, UserType>): TextParser {
  const scalar = SCALAR.get(oid);
  if (scalar !== undefined) return scalar;
  const arr = ARRAYS.get(oid);
  if (arr !== undefined) return (s) => arrayLiteralToJson(s, arr);
  const u = userTypes?.get(oid);
  if (u !== undefined && u.typcategory === 'A') {
    const how = ARRAYS.get(u.typelem) === undefined && SCALAR.get(u.typelem) === undefined ? 'string' : elementHowOfScalar(u.typelem);
    return (s) => arrayLiteralToJson(s, how);
  }
  return identity;
}

function elementHowOfScalar(oid: number): ElementJson {
  switch (oid) {
    case OID.int2:
    case OID.int4:
    case OID.oid:
    case OID.float4:
    case OID.float8:
      return 'number';
    case OID.int8:
    case OID.numeric:
      return 'digits';
    case OID.bool:
      return 'bool';
    case OID.json:
    case OID.jsonb:
      return 'json';
    default:
      return 'string';
  }
}

/**
 * The converter of a column for row arrays read with identity type parsers:
 * undefined when the server's text is already the canonical value.
 */
export function converterForOid(oid: number, userTypes?: ReadonlyMap<number, UserType>): TextParser | undefined {
  const p = parserFor(oid, userTypes);
  return p === identity ? undefined : p;
}

/** The parser that keeps the server's text: what pg applies while converters run in the row builder. */
export const keepText: TextParser = identity;

/** Asset type string of a Postgres type (for `discover`). */
export function assetTypeOf(oid: number, typmod: number, userTypes?: ReadonlyMap<number, UserType>): string {
  switch (oid) {
    case OID.bool:
      return 'boolean';
    case OID.bytea:
      return 'binary';
    case OID.int8:
      return 'long';
    case OID.int2:
    case OID.int4:
      return 'int';
    case OID.oid:
      return 'long';
    case OID.float4:
      return 'float';
    case OID.float8:
      return 'double';
    case OID.numeric: {
      if (typmod < 4) return 'string'; // unconstrained numeric: any scale, keep the exact text
      const precision = ((typmod - 4) >> 16) & 0xffff;
      const scale = (typmod - 4) & 0xffff;
      return precision >= 1 && precision <= 38 && scale <= precision ? `decimal(${precision},${scale})` : 'string';
    }
    case OID.date:
      return 'date';
    case OID.timestamp:
    case OID.timestamptz:
      return 'timestamp';
    case OID.json:
    case OID.jsonb:
      return 'json';
    default:
      if (ARRAYS.has(oid)) return 'json';
      if (userTypes?.get(oid)?.typcategory === 'A') return 'json';
      return 'string';
  }
}
