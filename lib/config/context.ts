/**
 * The state of one `loadJob` call that every part of the loading shares: the
 * job file and its folder, the problems found so far (with YAML lines), the
 * `${VAR}` lookup, and the secret values met along the way.
 */
import path from 'node:path';
// Keys whose values are secrets under connection/credentials blocks: the same test the logs mask by.
import { SECRET_KEY_RE } from '../log.js';
import { Problems, type KeyPath } from './problems.js';
import { isPlainObject, type MissingVar, type VarLookup } from './vars.js';
import type { YamlFile } from './yaml.js';

export class JobContext {
  readonly problems = new Problems();
  readonly jobDir: string;
  readonly name: string;
  yaml: YamlFile | undefined;
  lookup: VarLookup = () => undefined;
  private readonly secrets = new Set<string>();

  constructor(
    readonly file: string,
    readonly cwd: string,
    readonly env: NodeJS.ProcessEnv,
  ) {
    this.jobDir = path.dirname(file);
    this.name = path.basename(file).replace(/\.(ya?ml)$/i, '');
  }

  /** Secret values met so far (from the secrets folder, or under secret-looking keys). */
  secretValues(): string[] {
    return [...this.secrets];
  }

  addSecret(v: unknown): void {
    if (typeof v === 'string' && v !== '') this.secrets.add(v);
  }

  /** Every string under a secret-looking key of `v` is a secret. */
  collectSecrets(v: unknown, sensitive = false): void {
    if (typeof v === 'string') {
      if (sensitive) this.addSecret(v);
    } else if (Array.isArray(v)) {
      for (const item of v) this.collectSecrets(item, sensitive);
    } else if (isPlainObject(v)) {
      for (const [k, item] of Object.entries(v)) this.collectSecrets(item, sensitive || SECRET_KEY_RE.test(k));
    }
  }

  /** A problem of the job file at `key`, with its YAML line when the key is a path. */
  problem(key: string | KeyPath, message: string): void {
    const line = this.yaml?.lineOf(typeof key === 'string' ? [] : key);
    const withLine = typeof key !== 'string' && line !== undefined && key.length > 0 ? `${message} (line ${line})` : message;
    this.problems.add(this.file, key, withLine);
  }

  missingVar(file: string, m: MissingVar, y: YamlFile | undefined): void {
    this.problems.missingVar(file, m.path, m.name, y?.lineOf(m.path));
  }
}
