/**
 * JSON text for values that `JSON.stringify` gets wrong: bigint (it throws)
 * and Uint8Array (it writes `{"0":1,"1":2}`). Used for reject files, `json`
 * columns built from objects, and `--json` CLI output, so the same value is
 * always written the same way; {@link parseJsonExact} reads it back.
 */
import { isInteger, isSafeNumber, parse } from 'lossless-json';

/** A JSON number's text as a value: integers beyond 2^53 - 1 as `bigint` (exact), everything else as `number`. */
export function exactNumber(text: string): number | bigint {
  if (isInteger(text)) return isSafeNumber(text) ? Number(text) : BigInt(text);
  return Number(text);
}

/** Parse JSON text as {@link stringifyJson} writes it: big integers come back as `bigint`, not rounded. Throws SyntaxError on bad text. */
export function parseJsonExact(text: string): unknown {
  return parse(text, null, exactNumber);
}

/**
 * Serialise `value` as JSON text.
 *
 * Differences from `JSON.stringify`:
 * - a bigint is written as a JSON number with all its digits (`12345678901234567890`),
 *   not quoted and not rounded;
 * - a Uint8Array (including Buffer) is written as a standard base64 string.
 *
 * Everything else follows `JSON.stringify`: `toJSON()` is honoured (so a Date
 * becomes its ISO string), non-finite numbers become `null`, `undefined`,
 * functions and symbols are skipped in objects and become `null` in arrays,
 * and a cycle (or nesting deeper than 512 levels) throws a TypeError. A top-level value that JSON cannot hold
 * (`undefined`, a function) yields the string `"null"` rather than
 * `undefined`, so the result is always valid JSON text.
 *
 * @param value any value
 * @param indent spaces of indentation per level; default 0 (compact, one line)
 */
export function stringifyJson(value: unknown, indent = 0): string {
  const out = write(value, '', indent > 0 ? ' '.repeat(Math.min(indent, 10)) : '', 0);
  return out ?? 'null';
}

// Cycles are caught by depth rather than a Set of visited objects: no
// allocation per call on the hot path (json columns), same TypeError.
const MAX_DEPTH = 512;

function write(value: unknown, prefix: string, step: string, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (obj instanceof Uint8Array) return `"${Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('base64')}"`;
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
    return write((obj as { toJSON: (k: string) => unknown }).toJSON(''), prefix, step, depth);
  }
  if (depth >= MAX_DEPTH) throw new TypeError(`stringifyJson: cyclic structure or nesting deeper than ${MAX_DEPTH}`);
  const inner = prefix + step;
  const sep = step === '' ? ',' : `,\n${inner}`;
  const open = step === '' ? '' : `\n${inner}`;
  const close = step === '' ? '' : `\n${prefix}`;
  // Plain string concatenation: V8 builds ropes, cheaper than parts + join.
  let text: string;
  if (Array.isArray(obj)) {
    text = '[';
    for (let i = 0; i < obj.length; i++) text += (i === 0 ? open : sep) + (write(obj[i], inner, step, depth + 1) ?? 'null');
    text += obj.length === 0 ? ']' : close + ']';
  } else {
    const colon = step === '' ? ':' : ': ';
    text = '{';
    let first = true;
    for (const key in obj) {
      if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
      const v = write((obj as Record<string, unknown>)[key], inner, step, depth + 1);
      if (v === undefined) continue;
      text += (first ? open : sep) + JSON.stringify(key) + colon + v;
      first = false;
    }
    text += first ? '}' : close + '}';
  }
  return text;
}
