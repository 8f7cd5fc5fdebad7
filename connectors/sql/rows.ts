/**
 * Records from row arrays: SQL drivers hand rows over as arrays (one
 * allocation, no per-row key writes) and a builder compiled once per query
 * turns each into a record.
 */

/**
 * Rows a SQL source stream buffers (its object-mode high-water mark). Small on
 * purpose: N buffered rows of 1 MB documents are N MB, and in flowing mode
 * rows pass straight through, so a larger buffer bought no speed.
 */
export const SOURCE_BUFFER_ROWS = 16;

/** Converts one non-null driver value into its canonical form. */
export type Converter = (v: unknown) => unknown;

/**
 * A function building one record from a row array: an object literal with
 * the column names as constant keys (one hidden class for every row, no
 * per-row key lookups), converters applied to non-null values.
 */
export function compileRowBuilder(names: readonly string[], converters: readonly (Converter | undefined)[]): (a: unknown[]) => Record<string, unknown> {
  const props = names.map((n, i) => {
    const c = converters[i];
    const v = `a[${i}]`;
    return `${JSON.stringify(n)}: ${c === undefined ? v : `(${v} === null ? null : c${i}(${v}))`}`;
  });
  const params = converters.map((_, i) => `c${i}`);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function(...params, `return function build(a) { return { ${props.join(', ')} }; };`) as (
    ...c: (Converter | undefined)[]
  ) => (a: unknown[]) => Record<string, unknown>;
  return factory(...converters);
}
