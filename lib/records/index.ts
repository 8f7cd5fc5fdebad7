/**
 * Record-level logic, free of streams: coercion to canonical values, asset
 * constraints, exact decimals, calendar math, cursor tracking, locations.
 */
export { compileCoercer, compileAssetCoercer, type Coercer, type CoercerOptions, type CoerceResult, type FieldError } from './coerce.js';
export { Bad, fieldCoercer, type FieldCoercer, type FieldErrorCode } from './fields.js';
export { compileConstraints, readConstraints, CONSTRAINT_KEYWORDS, type ConstraintCheck, type ConstraintError } from './constraints.js';
export { compareCanonical, compareCodePoints } from './compare.js';
export { parseDecimal, formatDecimal, scaledFloor, compareDecimalText, compareDecimalParts, type DecimalParts, type DecimalFitError } from './decimal.js';
export {
  daysFromCivil,
  civilFromDays,
  isLeapYear,
  daysInMonth,
  parseDateDays,
  parseTimestampMicros,
  formatDateDays,
  formatTimestampMicros,
  MIN_DATE_DAYS,
  MAX_DATE_DAYS,
  MIN_TIMESTAMP_MICROS,
  MAX_TIMESTAMP_MICROS,
} from './time.js';
export {
  CursorTracker,
  cursorToString,
  cursorFromString,
  compareCursor,
  rowIdentity,
  CURSOR_KINDS,
  IDENTITY_SEPARATOR,
  type CursorTrackerOptions,
  type CursorWindow,
  MAX_TIE_KEYS,
} from './cursor.js';
export { LOCATION, locationOf, withLocation, type RecordLocation } from './location.js';
