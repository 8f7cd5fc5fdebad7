/**
 * Collects every problem found while loading config files, so that one
 * CONFIG_INVALID error can list them all at once instead of stopping at the
 * first.
 */
import { DativoError, type ConfigProblem } from '../errors.js';

/** A key path as zod and our walkers produce it. */
export type KeyPath = readonly (string | number)[];

/**
 * Render a key path the way users write it: `source.tables[0].name`.
 * Keys that are not plain identifiers are quoted: `a["b.c"]`.
 */
export function formatKey(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** One line of the CONFIG_INVALID summary: `<file>: <key>: <message>` (key left out when empty). */
export function formatProblem(p: ConfigProblem): string {
  return p.key === '' ? `${p.file}: ${p.message}` : `${p.file}: ${p.key}: ${p.message}`;
}

/** An ordered list of config problems. */
export class Problems {
  readonly list: ConfigProblem[] = [];
  /** The problems that are unset `${VAR}`s. */
  private readonly unsetVars = new Set<ConfigProblem>();

  /** Record one problem. `key` may be a dotted string or a path array. */
  add(file: string, key: string | KeyPath, message: string): void {
    this.list.push({ file, key: typeof key === 'string' ? key : formatKey(key), message });
  }

  /** Record an unset `${name}` at `key` (its YAML line when known). */
  missingVar(file: string, key: string | KeyPath, name: string, line: number | undefined): void {
    this.add(file, key, `variable \${${name}} is not set${line === undefined ? '' : ` (line ${line})`}`);
    this.unsetVars.add(this.list[this.list.length - 1]!);
  }

  get size(): number {
    return this.list.length;
  }

  /**
   * Throw, if there is at least one problem, the error listing them all:
   * CONFIG_MISSING_VAR when every problem is an unset variable (the config is
   * fine, the environment is not), else CONFIG_INVALID.
   */
  throwIfAny(): void {
    if (this.list.length === 0) return;
    const onlyVars = this.list.every((p) => this.unsetVars.has(p));
    throw configError(this.list, onlyVars ? 'CONFIG_MISSING_VAR' : 'CONFIG_INVALID');
  }
}

/** The config error for a list of problems (CONFIG_INVALID unless told); the message has one line per problem. */
export function configError(problems: ConfigProblem[], code: 'CONFIG_INVALID' | 'CONFIG_MISSING_VAR' = 'CONFIG_INVALID'): DativoError {
  const first = problems[0];
  return new DativoError(code, problems.map(formatProblem).join('\n'), {
    problems: [...problems],
    context: first === undefined ? {} : { file: first.file, key: first.key },
  });
}

/** Levenshtein distance, for "did you mean" hints on unknown keys. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The closest known key to `key` when it is plausibly a typo (distance <= 2 or a third of its length). */
export function suggest(key: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}
