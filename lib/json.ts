/**
 * JSON text for values that `JSON.stringify` gets wrong: bigint (it throws)
 * and Uint8Array (it writes `{"0":1,"1":2}`). Used for reject files, `json`
 * columns built from objects, and `--json` CLI output, so the same value is
 * always written the same way.
 */

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
 * and a cycle throws a TypeError. A top-level value that JSON cannot hold
 * (`undefined`, a function) yields the string `"null"` rather than
 * `undefined`, so the result is always valid JSON text.
 *
 * @param value any value
 * @param indent spaces of indentation per level; default 0 (compact, one line)
 */
export function stringifyJson(value: unknown, indent = 0): string {
  const out = write(value, '', indent > 0 ? ' '.repeat(Math.min(indent, 10)) : '', new Set());
  return out ?? 'null';
}

function write(value: unknown, prefix: string, step: string, seen: Set<object>): string | undefined {
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
    return write((obj as { toJSON: (k: string) => unknown }).toJSON(''), prefix, step, seen);
  }
  if (seen.has(obj)) throw new TypeError('stringifyJson: cyclic structure');
  seen.add(obj);
  const inner = prefix + step;
  const sep = step === '' ? ',' : `,\n${inner}`;
  const open = step === '' ? '' : `\n${inner}`;
  const close = step === '' ? '' : `\n${prefix}`;
  let text: string;
  if (Array.isArray(obj)) {
    if (obj.length === 0) text = '[]';
    else {
      const parts = new Array<string>(obj.length);
      for (let i = 0; i < obj.length; i++) parts[i] = write(obj[i], inner, step, seen) ?? 'null';
      text = `[${open}${parts.join(sep)}${close}]`;
    }
  } else {
    const parts: string[] = [];
    const colon = step === '' ? ':' : ': ';
    for (const key of Object.keys(obj)) {
      const v = write((obj as Record<string, unknown>)[key], inner, step, seen);
      if (v !== undefined) parts.push(JSON.stringify(key) + colon + v);
    }
    text = parts.length === 0 ? '{}' : `{${open}${parts.join(sep)}${close}}`;
  }
  seen.delete(obj);
  return text;
}
