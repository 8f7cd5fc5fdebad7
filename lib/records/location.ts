/**
 * Where a raw record came from. A source may attach it to a record under this
 * symbol (e.g. `{ file, line }` for CSV, `{ page }` for an API); symbol keys
 * are not enumerated, so the location is never written as a column, but
 * `validate()` copies it into rejects and error context.
 */
export const LOCATION: unique symbol = Symbol.for('dativo.location') as never;

/** A record's location: any JSON-safe fields (`file`, `line`, `page`, ...). */
export type RecordLocation = Record<string, unknown>;

/** The location attached to `record` under {@link LOCATION}, if any. */
export function locationOf(record: unknown): RecordLocation | undefined {
  if (record === null || typeof record !== 'object') return undefined;
  const loc = (record as { [LOCATION]?: unknown })[LOCATION];
  return loc !== null && typeof loc === 'object' ? (loc as RecordLocation) : undefined;
}

/**
 * Attach `location` to `record` as a non-enumerable symbol property and
 * return the record (for sources).
 */
export function withLocation<T extends object>(record: T, location: RecordLocation): T {
  Object.defineProperty(record, LOCATION, { value: location, enumerable: false, configurable: true, writable: true });
  return record;
}
