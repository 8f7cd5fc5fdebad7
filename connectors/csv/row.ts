/**
 * Records of one CSV header, built by a class compiled once per header: the
 * column names are constant keys (one hidden class for every record, no
 * per-record key lookups), and the `{file, line}` location lives in private
 * fields behind a `LOCATION` getter on the prototype — nothing for
 * `Object.keys`, spread or JSON to see, and no per-record `defineProperty`
 * (which cost more than parsing the record: ~0.4 s per million).
 */
import { LOCATION } from '../../lib/records/location.js';
import type { Row } from '../../lib/types.js';

/** Builds the record of one line: `fields` as parsed, `quoted` which empty fields were quoted. */
export type RowFactory = (fields: readonly string[], quoted: readonly boolean[], file: string, line: number) => Row;

/**
 * The factory for records of `header`. An unquoted empty field becomes
 * `null`, a quoted one `''` (the only way a CSV file tells NULL from the
 * empty string). A column named `__proto__` is defined as an ordinary
 * property, never as the prototype.
 */
export function csvRowFactory(header: readonly string[]): RowFactory {
  const assign = header.map((name, i) => {
    const v = `(f[${i}] === '' ? (q[${i}] === true ? '' : null) : f[${i}])`;
    return name === '__proto__'
      ? `Object.defineProperty(this, '__proto__', { value: ${v}, enumerable: true, writable: true, configurable: true });`
      : `this[${JSON.stringify(name)}] = ${v};`;
  });
  const source = `return class CsvRow {
    #file; #line;
    constructor(f, q, file, line) { ${assign.join(' ')} this.#file = file; this.#line = line; }
    get [LOCATION]() { return { file: this.#file, line: this.#line }; }
  }`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const CsvRow = new Function('LOCATION', source)(LOCATION) as new (f: readonly string[], q: readonly boolean[], file: string, line: number) => Row;
  return (fields, quoted, file, line) => new CsvRow(fields, quoted, file, line);
}
