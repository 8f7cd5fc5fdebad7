/**
 * The HubSpot objects the connector syncs: the CRM object types (contacts,
 * companies, deals, tickets) read through the objects and search APIs, and
 * the owners list; the columns a row carries besides the properties; and the
 * asset type of a HubSpot property type.
 */
import { DELETED_COLUMN } from '../../lib/types.js';

/** What the connector knows of one object. */
export interface HubSpotObjectSpec {
  /** Name in `source.objects` and in state, e.g. `contacts`. */
  name: string;
  /** `crm`: the objects, search and properties APIs; `owners`: the owners list only. */
  kind: 'crm' | 'owners';
  /** Path of its list, for messages. */
  path: string;
  /**
   * The cursor column: for CRM objects the modified-date property that
   * search filters and sorts on (contacts: `lastmodifieddate`, since
   * HubSpot's contacts search ignores filters on `hs_lastmodifieddate`;
   * the others `hs_lastmodifieddate`); for owners `updatedAt`.
   */
  modified: string;
}

const crm = (name: string, modified = 'hs_lastmodifieddate'): HubSpotObjectSpec => ({ name, kind: 'crm', path: `/crm/v3/objects/${name}`, modified });

/** Every object, by name. Adding a CRM type: an entry here and an asset under schemas/hubspot/v1.0/. */
export const HUBSPOT_OBJECTS: Readonly<Record<string, HubSpotObjectSpec>> = Object.freeze({
  contacts: crm('contacts', 'lastmodifieddate'),
  companies: crm('companies'),
  deals: crm('deals'),
  tickets: crm('tickets'),
  owners: { name: 'owners', kind: 'owners', path: '/crm/v3/owners', modified: 'updatedAt' },
});

/** Names of every object, sorted. */
export const HUBSPOT_OBJECT_NAMES: readonly string[] = Object.freeze(Object.keys(HUBSPOT_OBJECTS).sort());

/**
 * Columns of a CRM row that are not properties (HubSpot's top-level fields,
 * camelCase, so they never clash with a property's lower-case internal name).
 */
export const CRM_FIELDS: readonly string[] = Object.freeze(['id', 'createdAt', 'updatedAt', 'archived', 'archivedAt', 'associations', DELETED_COLUMN]);

/** The columns of an owner row. */
export const OWNER_FIELDS: readonly { name: string; type: string; required: boolean; description: string }[] = Object.freeze([
  { name: 'id', type: 'string', required: true, description: 'owner id' },
  { name: 'email', type: 'string', required: false, description: 'owner email' },
  { name: 'firstName', type: 'string', required: false, description: 'first name' },
  { name: 'lastName', type: 'string', required: false, description: 'last name' },
  { name: 'type', type: 'string', required: false, description: 'PERSON or QUEUE' },
  { name: 'userId', type: 'long', required: false, description: 'the owner’s user id' },
  { name: 'userIdIncludingInactive', type: 'long', required: false, description: 'user id, also of deactivated users' },
  { name: 'teams', type: 'json', required: false, description: 'teams as JSON text' },
  { name: 'createdAt', type: 'timestamp', required: true, description: 'creation time' },
  { name: 'updatedAt', type: 'timestamp', required: true, description: 'last update; the incremental cursor' },
  { name: 'archived', type: 'boolean', required: true, description: 'true for a deactivated owner' },
  { name: DELETED_COLUMN, type: 'boolean', required: true, description: 'true on the row of an archived owner (source.archived)' },
]);

/** A property definition as the properties API answers it (the fields used here). */
export interface PropertyDefinition {
  name: string;
  type: string;
  fieldType?: string;
  label?: string;
}

/**
 * The asset type of a property: `datetime` → timestamp, `date` → date,
 * `bool` → boolean, `number` → `decimal(38,18)` (HubSpot sends numbers as
 * decimal text: exact, never a float; `hs_object_id` → long), everything
 * else (string, enumeration, phone_number, …) → string.
 */
export function assetTypeOf(p: PropertyDefinition): string {
  switch (p.type) {
    case 'datetime':
      return 'timestamp';
    case 'date':
      return 'date';
    case 'bool':
      return 'boolean';
    case 'number':
      return p.name === 'hs_object_id' ? 'long' : 'decimal(38,18)';
    default:
      return 'string';
  }
}
