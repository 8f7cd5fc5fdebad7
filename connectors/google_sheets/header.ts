/**
 * The header row matched to the asset by name, never by position: a moved
 * column is read from where it is now, a missing or renamed one is reported.
 * Names compare with surrounding spaces trimmed and case folded (Unicode NFC,
 * lower case): ` Amount ` in the sheet is the asset's `amount`.
 */
import type { AssetField } from '../../lib/types.js';

/** How a header cell compares with an asset column name. */
export function headerKey(name: string): string {
  return name.normalize('NFC').trim().toLowerCase();
}

/** What the header says, column by column. */
export interface HeaderMatch {
  /** For each column of the range (0-based), the asset field it fills, or undefined. */
  fields: (string | undefined)[];
  /** Asset fields the header lacks that are optional (their values are null). */
  missingOptional: string[];
  /** Asset fields the header lacks that are required: the read cannot go on. */
  missingRequired: string[];
  /** Header names the asset does not declare (their columns are not read). */
  extra: string[];
  /** Header names found more than once (after trimming and case folding), as first written. */
  duplicates: string[];
  /** True when the asset's columns appear in another order than the asset declares them. */
  moved: boolean;
}

/** The text of a header cell (numbers and booleans as written: `2026` → "2026"). */
export function headerText(cell: unknown): string {
  if (cell === null || cell === undefined) return '';
  return typeof cell === 'string' ? cell : String(cell);
}

/** Match a header row (the cells as read; trailing blanks may be absent) to the asset's fields. */
export function matchHeader(cells: readonly unknown[], assetFields: readonly AssetField[]): HeaderMatch {
  const byKey = new Map<string, AssetField>();
  for (const f of assetFields) if (!byKey.has(headerKey(f.name))) byKey.set(headerKey(f.name), f);
  const seen = new Map<string, string>();
  const duplicates: string[] = [];
  const extra: string[] = [];
  const fields: (string | undefined)[] = [];
  const order: number[] = [];
  for (const cell of cells) {
    const text = headerText(cell);
    const key = headerKey(text);
    if (key === '') {
      fields.push(undefined);
      continue;
    }
    if (seen.has(key)) {
      if (!duplicates.includes(seen.get(key)!)) duplicates.push(seen.get(key)!);
      fields.push(undefined);
      continue;
    }
    seen.set(key, text.trim());
    const f = byKey.get(key);
    if (f === undefined) extra.push(text.trim());
    else order.push(assetFields.indexOf(f));
    fields.push(f?.name);
  }
  const found = new Set(fields.filter((f): f is string => f !== undefined));
  const missing = assetFields.filter((f) => !found.has(f.name));
  return {
    fields,
    missingOptional: missing.filter((f) => !f.required).map((f) => f.name),
    missingRequired: missing.filter((f) => f.required).map((f) => f.name),
    extra,
    duplicates,
    moved: order.some((v, i) => i > 0 && v < order[i - 1]!),
  };
}
