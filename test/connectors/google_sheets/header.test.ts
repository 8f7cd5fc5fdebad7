/** The header row matched to the asset by name (connectors/google_sheets/header.ts). */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { headerKey, matchHeader } from '../../../connectors/google_sheets/header.js';
import type { AssetField } from '../../../lib/types.js';

const field = (name: string, required = false): AssetField => ({ name, required, type: { kind: 'string' }, typeName: 'string', fieldId: 0 });
const asset = [field('id', true), field('amount', true), field('note'), field('Straße')];

it('compares names without surrounding spaces and case (Unicode NFC)', () => {
  assert.equal(headerKey('  Amount '), 'amount');
  assert.equal(headerKey('STRASSE'), 'strasse');
  assert.equal(headerKey('Cafe\u0301'), headerKey('Caf\u00e9'), 'decomposed and composed é are one name');
});

it('maps columns by name wherever they are; moved is noticed', () => {
  const m = matchHeader([' NOTE', 'Amount', 'ID', 'straße'], asset);
  assert.deepEqual(m.fields, ['note', 'amount', 'id', 'Straße']);
  assert.deepEqual([m.missingRequired, m.missingOptional, m.extra, m.duplicates], [[], [], [], []]);
  assert.equal(m.moved, true);
  assert.equal(matchHeader(['id', 'amount', 'note'], asset).moved, false);
});

it('reports missing required and optional columns, extras, blanks and duplicates', () => {
  const m = matchHeader(['id', '', 'Amount (EUR)', null, 'Extra', 'extra '], asset);
  assert.deepEqual(m.fields, ['id', undefined, undefined, undefined, undefined, undefined]);
  assert.deepEqual(m.missingRequired, ['amount']);
  assert.deepEqual(m.missingOptional, ['note', 'Straße']);
  assert.deepEqual(m.extra, ['Amount (EUR)', 'Extra']);
  assert.deepEqual(m.duplicates, ['Extra']);
});

it('reads numbers and booleans in the header as their text', () => {
  const m = matchHeader([2026, true, 'id'], [field('2026'), field('TRUE'), field('id')]);
  assert.deepEqual(m.fields, ['2026', 'TRUE', 'id']);
});
