import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { isDativoError, type ConfigProblem } from '../../../lib/errors.js';

/** A temp folder with a `write(rel, text)` helper; `cleanup()` removes it. */
export async function tempTree(): Promise<{ dir: string; write: (rel: string, text: string) => Promise<string>; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dativo-config-'));
  return {
    dir,
    write: async (rel, text) => {
      const p = path.join(dir, rel);
      await mkdir(path.dirname(p), { recursive: true });
      await writeFile(p, text);
      return p;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Await `p`, expect a config error, and return its problems: CONFIG_MISSING_VAR
 * when every problem is an unset `${VAR}`, else CONFIG_INVALID.
 */
export async function problemsOf(p: Promise<unknown>): Promise<ConfigProblem[]> {
  try {
    await p;
  } catch (err) {
    assert.ok(isDativoError(err), `expected a DativoError, got ${String(err)}`);
    const onlyVars = err.problems.length > 0 && err.problems.every((q) => /^variable \$\{[^}]+\} is not set/.test(q.message));
    assert.equal(err.code, onlyVars ? 'CONFIG_MISSING_VAR' : 'CONFIG_INVALID');
    // The message lists each problem on its own line.
    assert.equal(
      err.message,
      err.problems.map((q) => (q.key === '' ? `${q.file}: ${q.message}` : `${q.file}: ${q.key}: ${q.message}`)).join('\n'),
    );
    return err.problems;
  }
  assert.fail('expected CONFIG_INVALID');
}

/** A minimal valid flat asset. */
export const ORDERS_ASSET = `
apiVersion: v3.0.2
kind: DataContract
name: Orders-Main
version: "1.0"
domain: sales
source_type: csv
object: orders
schema:
  - {name: id, type: integer, required: true}
  - {name: amount, type: "decimal(12,2)"}
  - {name: updated_at, type: timestamp}
primary_key: [id]
team: {owner: data@example.com}
`;
