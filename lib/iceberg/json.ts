/**
 * Lossless JSON for Iceberg metadata files and REST bodies.
 *
 * `JSON.parse` turns a 63-bit snapshot id such as 8123456789012345678 into the
 * nearest double, silently. Here the rule is:
 * - every integer literal that is not a safe JS number (|n| > 2^53 - 1) becomes a `bigint`;
 * - the values of known Iceberg `long` keys (snapshot ids, sequence numbers,
 *   `*-ms` timestamps, sizes) are always `bigint` after parsing, whatever their
 *   magnitude, so code never has to handle `number | bigint` for them;
 * - every other number stays a `number`.
 * `stringify` writes bigints as plain JSON integers.
 */
import { parse, stringify } from 'lossless-json';
import { exactNumber as parseNumber } from '../json.js';
import { DativoError } from '../errors.js';

/**
 * Keys whose values are Iceberg `long`s (table metadata, snapshots, refs,
 * logs, statistics, REST commit requirements/updates).
 */
export const LONG_KEYS: ReadonlySet<string> = new Set([
  'snapshot-id',
  'parent-snapshot-id',
  'current-snapshot-id',
  'sequence-number',
  'last-sequence-number',
  'timestamp-ms',
  'last-updated-ms',
  'max-snapshot-age-ms',
  'max-ref-age-ms',
  'file-size-in-bytes',
  'file-footer-size-in-bytes',
  'next-row-id',
  'first-row-id',
  'added-rows',
  'source-snapshot-id',
]);

function reviveLongs(key: string, value: unknown): unknown {
  if (typeof value === 'number' && LONG_KEYS.has(key) && Number.isInteger(value)) return BigInt(value);
  return value;
}

/**
 * Parse JSON text losslessly (see module doc for the bigint rule).
 * Throws CATALOG_INVALID on malformed text; `what` names the document in the message.
 */
export function parseJson(text: string, what = 'JSON document'): unknown {
  try {
    return parse(text, reviveLongs, parseNumber);
  } catch (err) {
    throw new DativoError('CATALOG_INVALID', `cannot parse ${what}: ${(err as Error).message}`, {
      cause: err,
      context: { file: what },
    });
  }
}

/** Serialise to JSON text; bigints become JSON integers. `space` as in JSON.stringify (default none). */
export function stringifyJson(value: unknown, space?: number | string): string {
  const out = stringify(value, null, space);
  if (out === undefined) throw new DativoError('INTERNAL', 'value cannot be serialised to JSON');
  return out;
}

/** A `long` field read from parsed JSON as bigint (accepts number for hand-built objects). */
export function asLong(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  return undefined;
}
