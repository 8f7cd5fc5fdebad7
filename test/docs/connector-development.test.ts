/**
 * docs/CONNECTOR_DEVELOPMENT.md stays true to the code it teaches from:
 * every excerpt marked `<!-- from: file -->` is verbatim in that file, every
 * repository path it names in backticks exists, and every relative link
 * resolves.
 */
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { repo } from '../lib/cli/helpers.js';

const DOC = 'docs/CONNECTOR_DEVELOPMENT.md';
const ROOTS = ['lib/', 'connectors/', 'test/', 'schemas/', 'bench/', 'pipelines/', 'docs/', 'state/'];

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/** Repository paths named in backticks: a known top folder, no placeholder (`<name>`) or glob. */
function namedPaths(doc: string): string[] {
  const out = new Set<string>();
  for (const m of doc.matchAll(/`([^`\s]+)`/g)) {
    const t = m[1]!;
    if (!ROOTS.some((r) => t.startsWith(r)) || /[<>*{}]/.test(t)) continue;
    out.add(t.replace(/[.,:;]+$/, ''));
  }
  return [...out].sort();
}

it('every code excerpt is verbatim in the file it quotes', async () => {
  const doc = await readFile(path.join(repo, DOC), 'utf8');
  const blocks = [...doc.matchAll(/<!-- from: (\S+) -->\n```[a-z]*\n([\s\S]*?)```/g)];
  assert.ok(blocks.length >= 10, `excerpts found: ${blocks.length}`);
  for (const [, source, code] of blocks) {
    const text = await readFile(path.join(repo, source!), 'utf8');
    assert.ok(text.includes(code!), `${DOC} excerpt not found in ${source}:\n${code}`);
  }
});

it('every repository path it names exists', async () => {
  const doc = await readFile(path.join(repo, DOC), 'utf8');
  const paths = namedPaths(doc);
  assert.ok(paths.includes('connectors/stripe/read.ts') && paths.includes('test/fakes/hubspot.ts'), paths.join(', '));
  const missing: string[] = [];
  for (const p of paths) if (!(await exists(path.join(repo, p)))) missing.push(p);
  assert.deepEqual(missing, []);
});

it('every relative link resolves', async () => {
  const doc = await readFile(path.join(repo, DOC), 'utf8');
  const missing: string[] = [];
  for (const m of doc.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
    const target = m[1]!;
    if (/^[a-z]+:/.test(target)) continue;
    if (!(await exists(path.join(repo, 'docs', target)))) missing.push(target);
  }
  assert.deepEqual(missing, []);
});

it('the placeholder check catches a path that does not exist', () => {
  assert.deepEqual(namedPaths('see `lib/nope.ts`, `connectors/<name>/index.ts` and `test/connectors/*.ts`.'), ['lib/nope.ts']);
});
