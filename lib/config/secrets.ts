/**
 * The file-system secrets directory: `<secretsDir>/<tenant>/`, one file per
 * secret or per bundle, as in the Python tool's `filesystem` secret manager.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Problems } from './problems.js';

/**
 * Parse a `.env` text: `KEY=VALUE` lines, optional `export `, blank lines and
 * `#` comments skipped, one pair of surrounding quotes stripped. In unquoted
 * values a ` #` starts a comment. Escapes inside quotes are not interpreted.
 */
export function parseDotEnv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (m === null) continue;
    let value = m[2] ?? '';
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
    } else {
      const hash = value.search(/\s#/);
      if (hash >= 0) value = value.slice(0, hash);
      value = value.trim();
    }
    out.set(m[1]!, value);
  }
  return out;
}

/**
 * Load every secret of one tenant. Files are read in name order (a later file
 * wins on a clash); hidden files and sub-folders are skipped.
 *
 * - `*.env`: each `KEY=VALUE` becomes variable KEY;
 * - `*.json`: each top-level string/number/boolean value becomes a variable
 *   named by its key, and the whole file text a variable named by the file stem;
 * - any other file: its trimmed text, named by the file stem (`db_password.txt` → `db_password`).
 *
 * A missing tenant folder yields no secrets (a `${VAR}` that needed one is
 * reported as missing). Unparseable JSON is a problem.
 */
export async function loadSecretsDir(secretsDir: string, tenant: string, problems: Problems): Promise<Map<string, string>> {
  const dir = path.resolve(secretsDir, tenant);
  const out = new Map<string, string>();
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries.filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return out;
    problems.add(dir, '', `cannot read secrets folder: ${(err as Error).message}`);
    return out;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    const ext = path.extname(name).toLowerCase();
    const stem = ext === '' ? name : name.slice(0, -ext.length);
    const text = await readFile(file, 'utf8');
    if (ext === '.env') {
      for (const [k, v] of parseDotEnv(text)) out.set(k, v);
    } else if (ext === '.json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        // V8's message quotes the text around the error: never a secret's bytes, only where.
        const at = /position (\d+)/.exec((err as Error).message)?.[1];
        problems.add(file, '', `invalid JSON${at !== undefined ? ` at character ${at}` : ''}`);
        continue;
      }
      out.set(stem, text.trim());
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
          if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out.set(k, String(v));
        }
      }
    } else {
      out.set(stem, text.trim());
    }
  }
  return out;
}
