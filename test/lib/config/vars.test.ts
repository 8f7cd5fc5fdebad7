import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deepMerge, expandTree, expandVars, parseDotEnv } from '../../../lib/config/index.js';
import { isDativoError } from '../../../lib/errors.js';

const env: Record<string, string> = { A: 'alpha', EMPTY: '', 'db.pw': 'dotted' };
const lookup = (n: string) => env[n];

test('expandVars: plain, default, empty-uses-default, escape, dotted names, several per string', () => {
  assert.equal(expandVars('x-${A}-y', lookup), 'x-alpha-y');
  assert.equal(expandVars('${B:-fallback}', lookup), 'fallback');
  assert.equal(expandVars('${A:-fallback}', lookup), 'alpha');
  assert.equal(expandVars('${EMPTY:-fallback}', lookup), 'fallback');
  assert.equal(expandVars('${EMPTY}', lookup), '');
  assert.equal(expandVars('${B:-}', lookup), '');
  assert.equal(expandVars('$${A} and $${B:-x}', lookup), '${A} and ${B:-x}');
  assert.equal(expandVars('${db.pw}', lookup), 'dotted');
  assert.equal(expandVars('${A}${A}:${B:-2}', lookup), 'alphaalpha:2');
  assert.equal(expandVars('$A and {A} stay', lookup), '$A and {A} stay');
});

test('expandVars: a missing variable is reported, or throws CONFIG_MISSING_VAR without a handler', () => {
  const missing: string[] = [];
  assert.equal(expandVars('a${NOPE}b${ALSO}', lookup, (n) => missing.push(n)), 'ab');
  assert.deepEqual(missing, ['NOPE', 'ALSO']);
  assert.throws(
    () => expandVars('${NOPE}', lookup),
    (e: unknown) => isDativoError(e) && e.code === 'CONFIG_MISSING_VAR' && e.context['variable'] === 'NOPE',
  );
});

test('expandTree expands every string (not keys) and reports missing ones with their path', () => {
  const { value, missing } = expandTree({ '${A}': ['${A}', 1, { x: '${B}' }], n: null, b: true }, lookup);
  assert.deepEqual(value, { '${A}': ['alpha', 1, { x: '' }], n: null, b: true });
  assert.deepEqual(missing, [{ path: ['${A}', 2, 'x'], name: 'B' }]);
});

test('deepMerge merges nested mappings, replaces arrays and scalars, null overrides, undefined keeps, inputs untouched', () => {
  const base = { a: { b: 1, c: { d: 2, e: [1, 2] } }, f: 'x', g: { h: 1 } };
  const over = { a: { c: { e: [3], i: 4 } }, f: undefined, g: null, j: 5 };
  const snapshot = JSON.stringify([base, over]);
  assert.deepEqual(deepMerge(base, over), { a: { b: 1, c: { d: 2, e: [3], i: 4 } }, f: 'x', g: null, j: 5 });
  assert.equal(JSON.stringify([base, over]), snapshot);
  assert.deepEqual(deepMerge({ a: 1 }, 'scalar'), 'scalar');
  assert.deepEqual(deepMerge(undefined, { a: 1 }), { a: 1 });
});

test('parseDotEnv: comments, export, quotes, inline comments, = in values', () => {
  const m = parseDotEnv('# c\n\nexport A=1\nB="two words"\nC=\'x # y\'\nD=plain # note\nE=a=b\nnot a pair\n');
  assert.deepEqual(Object.fromEntries(m), { A: '1', B: 'two words', C: 'x # y', D: 'plain', E: 'a=b' });
});
