/**
 * The connector registry: the one place that maps a connector's name to its
 * module. Built-ins load lazily (a job reading CSV never loads the Postgres
 * driver); a value that looks like a path loads a third-party connector.
 *
 * A connector module default-exports a {@link Connector} (or exports it as
 * `connector`): a frozen `descriptor` plus `read()`, optionally `check()`,
 * `discover()`, `primaryKey()`. See `lib/connector.ts`.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Connector, ConnectorDescriptor } from '../lib/connector.js';
import { DativoError } from '../lib/errors.js';

type ConnectorModule = { default?: unknown; connector?: unknown };

/**
 * Built-in connectors by name. The name is the recipe's `type` and part of
 * state keys: never rename an entry.
 */
const BUILTINS: Readonly<Record<string, () => Promise<ConnectorModule>>> = Object.freeze({
  csv: () => import('./csv/index.js'),
  postgres: () => import('./postgres/index.js'),
  mysql: () => import('./mysql/index.js'),
  stripe: () => import('./stripe/index.js'),
  gdrive_csv: () => import('./gdrive_csv/index.js'),
  google_sheets: () => import('./google_sheets/index.js'),
  singer: () => import('./singer/index.js'),
  airbyte: () => import('./airbyte/index.js'),
  hubspot: () => import('./hubspot/index.js'),
});

/** Names of the built-in connectors, sorted. */
export function builtinConnectorNames(): string[] {
  return Object.keys(BUILTINS).sort();
}

/**
 * True when `type` names a module by path rather than a built-in: it starts
 * with `.` or `/` (or a Windows drive), or ends with `.js`, `.mjs` or `.ts`.
 */
export function isConnectorPath(type: string): boolean {
  return /^(\.|\/|[A-Za-z]:[\\/])/.test(type) || /\.(m?js|ts)$/.test(type);
}

/**
 * Check that a loaded module is a connector: a descriptor with a name and
 * roles, and a `read` function.
 * @throws DativoError `CONNECTOR_UNKNOWN` saying what is missing.
 */
export function asConnector(mod: ConnectorModule, source: string): Connector {
  const candidate = (isConnectorLike(mod.default) ? mod.default : (mod.connector ?? mod.default)) as Partial<Connector> | undefined;
  const problems: string[] = [];
  if (candidate === null || typeof candidate !== 'object') {
    problems.push('the module has no default export and no `connector` export');
  } else {
    const d = candidate.descriptor as Partial<ConnectorDescriptor> | undefined;
    if (d === null || typeof d !== 'object') problems.push('`descriptor` is missing');
    else {
      if (typeof d.name !== 'string' || d.name === '') problems.push('`descriptor.name` must be a non-empty string');
      if (!Array.isArray(d.roles)) problems.push('`descriptor.roles` must be an array');
    }
    if (typeof candidate.read !== 'function') problems.push('`read()` is missing');
  }
  if (problems.length > 0) {
    throw new DativoError('CONNECTOR_UNKNOWN', `${source} is not a connector module: ${problems.join('; ')}`, {
      context: { connector: source, problems },
    });
  }
  return candidate as Connector;
}

function isConnectorLike(v: unknown): boolean {
  return v !== null && typeof v === 'object' && 'descriptor' in v && 'read' in v;
}

/**
 * The connector for a recipe `type`: a built-in by name, or a third-party
 * module by path (relative paths resolve against `opts.cwd`, default the
 * working directory).
 * @throws DativoError `CONNECTOR_UNKNOWN` for an unknown name (listing the
 *   known ones), a module that cannot be loaded, or one that is not a connector.
 */
export async function getConnector(type: string, opts: { cwd?: string } = {}): Promise<Connector> {
  const builtin = Object.hasOwn(BUILTINS, type) ? BUILTINS[type] : undefined;
  if (builtin !== undefined) return asConnector(await builtin(), type);
  if (!isConnectorPath(type)) {
    throw new DativoError(
      'CONNECTOR_UNKNOWN',
      `unknown connector ${JSON.stringify(type)}; known connectors: ${builtinConnectorNames().join(', ')} (or a path to a connector module)`,
      { context: { connector: type, known: builtinConnectorNames() } },
    );
  }
  const path = isAbsolute(type) ? type : resolve(opts.cwd ?? process.cwd(), type);
  let mod: ConnectorModule;
  try {
    mod = (await import(pathToFileURL(path).href)) as ConnectorModule;
  } catch (err) {
    throw new DativoError('CONNECTOR_UNKNOWN', `cannot load connector module ${path}: ${(err as Error).message}`, {
      cause: err,
      context: { connector: type, file: path },
    });
  }
  return asConnector(mod, path);
}

/** Descriptors of every built-in connector, sorted by name. */
export async function listConnectors(): Promise<ConnectorDescriptor[]> {
  const out: ConnectorDescriptor[] = [];
  for (const name of builtinConnectorNames()) out.push((await getConnector(name)).descriptor);
  return out;
}
