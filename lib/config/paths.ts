/**
 * Where config paths point: the package root (for built-in recipes) and the
 * "job folder first, then cwd" rule for relative paths.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/**
 * The folder of this package's `package.json` (name `dativo-ingest`), found by
 * walking up from this module. Works from `lib/config/*.ts` under tsx and from
 * the compiled `dist/lib/config/*.js`.
 */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const name = (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name;
        if (name === 'dativo-ingest') return (cachedRoot = dir);
      } catch {
        // a broken package.json further down is not ours; keep walking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('dativo-ingest package root not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** Path of the built-in recipe of connector `name` (`<packageRoot>/connectors/<name>/recipe.yaml`), or undefined for names that are not plain identifiers. */
export function builtinRecipePath(name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) return undefined;
  return path.join(packageRoot(), 'connectors', name, 'recipe.yaml');
}

/** True for `s3://…`, `file://…`, `https://…` and other URIs (not Windows drive letters). */
export function hasScheme(p: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]+:\/\//.test(p);
}

/**
 * Resolve a relative path written in a job: against the job file's folder if
 * something exists there, else against `cwd` if something exists there (jobs
 * written for the Python tool used cwd-relative paths), else the job-folder
 * candidate. Returns the absolute path and whether it exists.
 */
export function resolveJobPath(p: string, jobDir: string, cwd: string): { path: string; exists: boolean; tried: string[] } {
  if (path.isAbsolute(p)) return { path: p, exists: existsSync(p), tried: [p] };
  const inJob = path.resolve(jobDir, p);
  if (existsSync(inJob)) return { path: inJob, exists: true, tried: [inJob] };
  const inCwd = path.resolve(cwd, p);
  if (inCwd !== inJob && existsSync(inCwd)) return { path: inCwd, exists: true, tried: [inJob, inCwd] };
  return { path: inJob, exists: false, tried: inCwd === inJob ? [inJob] : [inJob, inCwd] };
}

/**
 * Why `value` cannot name one folder of a table's location (`<domain>/<dataProduct>/<table>`
 * under the warehouse), or undefined when it can: a path separator, `.`/`..`
 * or a control character would put the data somewhere else.
 */
export function unsafePathName(value: string): string | undefined {
  if (value.trim() === '') return 'must not be empty';
  if (/[/\\]/.test(value) || value === '.' || value === '..') return `"${value}" would put the table's files outside its place in the warehouse (no "/", "\\", "." or "..")`;
  if (/[\u0000-\u001f\u007f]/.test(value)) return `"${value}" contains a control character`;
  return undefined;
}

/** As {@link unsafePathName}, for a dotted namespace (`sales`, `sales.eu`): every level must be a safe, non-empty name. */
export function unsafeNamespace(value: string): string | undefined {
  if (value.split('.').some((level) => level === '')) {
    return /^\.+$/.test(value) || value.includes('..') || /[/\\]/.test(value)
      ? `"${value}" would put the table's files outside its place in the warehouse (no "/", "\\", "." or "..")`
      : `"${value}" has an empty level (a namespace is dotted names, e.g. sales.eu)`;
  }
  for (const level of value.split('.')) {
    const why = unsafePathName(level);
    if (why !== undefined) return why;
  }
  return undefined;
}
