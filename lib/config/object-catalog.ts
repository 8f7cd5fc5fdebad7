/**
 * The objects an API connector knows by name (Stripe's lists, HubSpot's CRM
 * objects): the message for a name it does not know, the lookup of a job's
 * object that throws it, and the `Connector.objects` declaration of the
 * names a job gives in `source.objects`.
 */
import type { DeclaredObject, ObjectsContext } from '../connector.js';
import { DativoError } from '../errors.js';
import type { JobPlan, SourceObjectSpec } from '../plan.js';

/** A connector's objects by name. */
export interface ObjectCatalog<T> {
  /** The connector's name (error context). */
  connector: string;
  /** How messages name the API, e.g. `Stripe`. */
  label: string;
  objects: Readonly<Record<string, T>>;
}

/** The problem of an object name the catalog does not have, listing the valid ones. */
export function unknownObjectMessage(catalog: ObjectCatalog<unknown>, name: string): string {
  return `unknown ${catalog.label} object "${name}"; valid objects: ${Object.keys(catalog.objects).sort().join(', ')}`;
}

/**
 * The catalog entry of one of the job's objects.
 * @throws DativoError CONFIG_INVALID naming the object, its key and the valid ones.
 */
export function catalogEntryOf<T>(catalog: ObjectCatalog<T>, plan: JobPlan, object: SourceObjectSpec): T {
  if (Object.hasOwn(catalog.objects, object.name)) return catalog.objects[object.name]!;
  const i = plan.source.objects.findIndex((o) => o.name === object.name);
  const key = i >= 0 && Array.isArray(plan.source.options['objects']) ? `source.objects[${i}]` : 'source.objects';
  const message = unknownObjectMessage(catalog, object.name);
  throw new DativoError('CONFIG_INVALID', message, {
    problems: [{ file: plan.file, key, message }],
    context: { connector: catalog.connector, object: object.name, file: plan.file, key, valid: Object.keys(catalog.objects).sort() },
  });
}

/**
 * `Connector.objects` over a catalog: each name of `source.objects` (plain or
 * `{name: …}`) and `source.object` must be in it (else a problem listing the
 * valid ones); the plain names are declared, with what `declare` adds for
 * their entry (e.g. a cursor column).
 */
export function declareCatalogObjects<T>(
  catalog: ObjectCatalog<T>,
  options: Record<string, unknown>,
  ctx: ObjectsContext,
  declare: (entry: T) => Partial<Pick<DeclaredObject, 'cursorField'>> = () => ({}),
): DeclaredObject[] {
  const entries = Array.isArray(options['objects']) ? (options['objects'] as unknown[]) : [];
  const out: DeclaredObject[] = [];
  entries.forEach((e, i) => {
    const name = typeof e === 'string' ? e : e !== null && typeof e === 'object' ? (e as Record<string, unknown>)['name'] : undefined;
    if (typeof name !== 'string') return;
    if (!Object.hasOwn(catalog.objects, name)) ctx.problem(['source', 'objects', i], unknownObjectMessage(catalog, name));
    else if (typeof e === 'string') out.push({ name, config: { name }, key: ['source', 'objects', i], ...declare(catalog.objects[name]!) });
  });
  const single = options['object'];
  if (typeof single === 'string' && single !== '' && !Object.hasOwn(catalog.objects, single)) ctx.problem(['source', 'object'], unknownObjectMessage(catalog, single));
  return out;
}
