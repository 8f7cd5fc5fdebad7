/**
 * A stateful HubSpot-like API on loopback, written from HubSpot's public CRM
 * v3 reference (developers.hubspot.com: objects, search, properties, owners,
 * associations v4) and the documented limits in
 * reference/specs/rate-limits-and-errors.md: enough for the real
 * `@hubspot/api-client` SDK to read every object the connector syncs.
 *
 * - Objects list (`GET /crm/v3/objects/{type}`): `limit` 1..100 (default 10,
 *   else 400 VALIDATION_ERROR), `after` (the next object's id, as HubSpot's
 *   list cursor), `properties` (comma-separated; unknown names ignored, as
 *   HubSpot does; default: the type's default properties), `associations`,
 *   `archived=true` (only archived objects). Ordered by id.
 * - Search (`POST /crm/v3/objects/{type}/search`): `filterGroups` (OR of
 *   groups, AND inside one; at most 5 groups of 6 filters), operators EQ, NEQ,
 *   LT, LTE, GT, GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY;
 *   datetime values as epoch ms or ISO text, number properties compared as
 *   numbers; at most one sort `{propertyName, direction}`; `limit` 1..200;
 *   `after` an offset; **a query is capped at 10,000 results**: an `after`
 *   reaching past it answers 400, as the real API. Archived objects are not
 *   searchable. HubSpot documents no order among equal sort values, so the
 *   fake orders ties by a hash of the id: a client counting on id order
 *   among ties loses records here.
 * - Properties (`GET /crm/v3/properties/{type}`), owners (`GET
 *   /crm/v3/owners`, `after`, `archived`), associations
 *   (`POST /crm/v4/associations/{from}/{to}/batch/read`).
 * - Auth: `Authorization: Bearer <token>`; unknown token 401
 *   INVALID_AUTHENTICATION, revoked 401 EXPIRED_AUTHENTICATION (HubSpot's
 *   error body: status, message, correlationId, category).
 * - Limits: `searchPerSecond` search requests per token per second and
 *   `tenSecondly` other requests per rolling 10 s answer 429 with
 *   `Retry-After` and HubSpot's policy names; {@link HubSpotFake.fail}
 *   queues faults (429, 5xx, 401 …); {@link HubSpotFake.loopCursor} makes
 *   lists ignore `after`; {@link HubSpotFake.ignoreSearchFilters} makes
 *   search ignore filters; {@link HubSpotFake.omit} drops properties or
 *   fields from what is served.
 * - The fake's clock (`now`, epoch ms) stamps created/modified dates and the
 *   `Date` header; tests move it with {@link HubSpotFake.advance}.
 */
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { FaultQueue, latency, LoopbackFake, WindowCounter, type Fault } from '../helpers/api-fake.js';
import { sendJson, type SeenRequest } from '../helpers/http-server.js';

/** The CRM object types served. */
export const CRM_TYPES = ['contacts', 'companies', 'deals', 'tickets'] as const;
export type CrmType = (typeof CRM_TYPES)[number];

/** A property definition, as the properties API answers it. */
export interface PropertyDef {
  name: string;
  label: string;
  type: 'string' | 'number' | 'date' | 'datetime' | 'enumeration' | 'bool';
  fieldType: string;
  calculated?: boolean;
  hidden?: boolean;
}

const p = (name: string, label: string, type: PropertyDef['type'], fieldType: string): PropertyDef => ({ name, label, type, fieldType });

/** The properties each type has (the ones HubSpot creates in every portal, trimmed). */
export const PROPERTY_DEFS: Readonly<Record<CrmType, readonly PropertyDef[]>> = {
  contacts: [
    p('email', 'Email', 'string', 'text'),
    p('firstname', 'First Name', 'string', 'text'),
    p('lastname', 'Last Name', 'string', 'text'),
    p('phone', 'Phone Number', 'string', 'phonenumber'),
    p('company', 'Company Name', 'string', 'text'),
    p('lifecyclestage', 'Lifecycle Stage', 'enumeration', 'radio'),
    p('hs_email_optout', 'Unsubscribed from all email', 'bool', 'booleancheckbox'),
    p('date_of_birth', 'Date of birth', 'date', 'date'),
    p('hs_analytics_num_visits', 'Number of Sessions', 'number', 'number'),
    p('createdate', 'Create Date', 'datetime', 'date'),
    p('lastmodifieddate', 'Last Modified Date', 'datetime', 'date'),
    p('hs_lastmodifieddate', 'Object last modified date/time', 'datetime', 'date'),
    p('hs_object_id', 'Record ID', 'number', 'number'),
  ],
  companies: [
    p('name', 'Company name', 'string', 'text'),
    p('domain', 'Company Domain Name', 'string', 'text'),
    p('industry', 'Industry', 'enumeration', 'select'),
    p('numberofemployees', 'Number of Employees', 'number', 'number'),
    p('annualrevenue', 'Annual Revenue', 'number', 'number'),
    p('is_public', 'Is Public', 'bool', 'booleancheckbox'),
    p('createdate', 'Create Date', 'datetime', 'date'),
    p('hs_lastmodifieddate', 'Last Modified Date', 'datetime', 'date'),
    p('hs_object_id', 'Record ID', 'number', 'number'),
  ],
  deals: [
    p('dealname', 'Deal Name', 'string', 'text'),
    p('amount', 'Amount', 'number', 'number'),
    p('dealstage', 'Deal Stage', 'enumeration', 'radio'),
    p('pipeline', 'Pipeline', 'enumeration', 'select'),
    p('closedate', 'Close Date', 'datetime', 'date'),
    p('hubspot_owner_id', 'Deal owner', 'enumeration', 'select'),
    p('createdate', 'Create Date', 'datetime', 'date'),
    p('hs_lastmodifieddate', 'Last Modified Date', 'datetime', 'date'),
    p('hs_object_id', 'Record ID', 'number', 'number'),
  ],
  tickets: [
    p('subject', 'Ticket name', 'string', 'text'),
    p('content', 'Ticket description', 'string', 'textarea'),
    p('hs_pipeline', 'Pipeline', 'enumeration', 'select'),
    p('hs_pipeline_stage', 'Ticket status', 'enumeration', 'select'),
    p('hs_ticket_priority', 'Priority', 'enumeration', 'select'),
    p('createdate', 'Create date', 'datetime', 'date'),
    p('hs_lastmodifieddate', 'Last modified date', 'datetime', 'date'),
    p('hs_object_id', 'Ticket ID', 'number', 'number'),
  ],
};

/** Properties a read returns when it names none (HubSpot's defaults, trimmed). */
const DEFAULT_PROPERTIES: Readonly<Record<CrmType, readonly string[]>> = {
  contacts: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
  companies: ['createdate', 'domain', 'hs_lastmodifieddate', 'hs_object_id', 'name'],
  deals: ['amount', 'closedate', 'createdate', 'dealname', 'dealstage', 'hs_lastmodifieddate', 'hs_object_id', 'pipeline'],
  tickets: ['content', 'createdate', 'hs_lastmodifieddate', 'hs_object_id', 'hs_pipeline', 'hs_pipeline_stage', 'hs_ticket_category', 'hs_ticket_priority', 'subject'],
};

/** The modified-date properties the fake stamps on every change. */
const MODIFIED = ['hs_lastmodifieddate', 'lastmodifieddate'];

/** A CRM object as stored. */
export interface CrmObject {
  id: string;
  properties: Record<string, string | null>;
  createdAt: number;
  updatedAt: number;
  archived: boolean;
  archivedAt?: number;
}

/** An owner as stored. */
export interface Owner {
  id: string;
  email: string;
  firstName: string;
  lastName: string;
  userId: number;
  createdAt: number;
  updatedAt: number;
  archived: boolean;
  teams: { id: string; name: string; primary: boolean }[];
}

/** A queued fault (test/helpers/api-fake.ts): path prefix (e.g. `/crm/v3/objects/contacts/search`), status, times, headers, body (default HubSpot's error body). */
export type HubSpotFault = Fault;

export interface HubSpotFakeOptions {
  /** Accepted access tokens. Default `['pat-na1-fake-0000']`. */
  tokens?: string[];
  /** The fake's clock at start, epoch ms. Default 1_780_000_000_000 (2026-05-28). */
  now?: number;
  /** Delay before every answer, ms. Default 0. */
  latencyMs?: number;
  /** Search requests per token per wall-clock second; more get 429 (policy SECONDLY). Default: no limit. */
  searchPerSecond?: number;
  /** Other requests per token per rolling 10 s; more get 429 (policy TEN_SECONDLY_ROLLING). Default: no limit. */
  tenSecondly?: number;
}

/** HubSpot's cap of one search query's results. */
export const SEARCH_RESULT_CAP = 10_000;
/** Characters of path and query past which a request is answered 414 URI Too Long (HubSpot's front end: about 8,000). */
export const MAX_URL_CHARS = 8000;
const DEFAULT_NOW = 1_780_000_000_000;
const iso = (ms: number): string => new Date(ms).toISOString();

function hubspotError(status: number, category: string, message: string, extra: Record<string, unknown> = {}): unknown {
  return { status: 'error', message, correlationId: `c0ffee00-0000-4000-8000-${String(status).padStart(12, '0')}`, category, ...extra };
}

/** A stable scramble of an id, the fake's order among equal sort values. */
function tieRank(id: string): string {
  return createHash('md5').update(id).digest('hex');
}

const parsedMs = new Map<string, number>();

/** A datetime filter or property value as epoch ms: digits are ms, else ISO text (memoised: searches compare the same values again and again). */
function asMs(v: string): number {
  let ms = parsedMs.get(v);
  if (ms === undefined) {
    ms = /^-?\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (parsedMs.size > 1_000_000) parsedMs.clear();
    parsedMs.set(v, ms);
  }
  return ms;
}

/** The HubSpot-like fake server. */
export class HubSpotFake extends LoopbackFake {
  /** The fake's clock, epoch ms. */
  now: number;
  latencyMs: number;
  readonly searchPerSecond: number | undefined;
  readonly tenSecondly: number | undefined;
  /** 429s answered by the limits. */
  rateLimited = 0;
  /** When true, lists ignore `after` and answer the first page again. */
  loopCursor = false;
  /** When true, search ignores `filterGroups` (a broken server answering the same page). */
  ignoreSearchFilters = false;
  /** Called before each request is answered (e.g. to change data while a read goes on). */
  beforeAnswer: ((req: SeenRequest) => void) | undefined;
  readonly tokens: Set<string>;
  readonly revoked = new Set<string>();
  private seq = 100;
  private readonly store = new Map<CrmType, Map<string, CrmObject>>();
  private readonly links = new Map<string, Set<string>>();
  private readonly owners = new Map<string, Owner>();
  private readonly faults = new FaultQueue<HubSpotFault>();
  /** Properties (or top-level fields) left out of what is served: per type, optionally only for some ids. */
  readonly omitted = new Map<CrmType, { fields: string[]; ids?: Set<string> }>();
  /** Each object's place among equal sort values (a scramble of its id), computed once. */
  private readonly ranks = new Map<string, string>();
  private readonly searchSeconds: WindowCounter | undefined;
  private readonly recent = new Map<string, number[]>();

  constructor(options: HubSpotFakeOptions = {}) {
    super();
    this.tokens = new Set(options.tokens ?? ['pat-na1-fake-0000']);
    this.now = options.now ?? DEFAULT_NOW;
    this.latencyMs = options.latencyMs ?? 0;
    this.searchPerSecond = options.searchPerSecond;
    this.searchSeconds = options.searchPerSecond !== undefined ? new WindowCounter(options.searchPerSecond) : undefined;
    this.tenSecondly = options.tenSecondly;
    for (const t of CRM_TYPES) this.store.set(t, new Map());
  }

  /** Forget every object, owner, association, fault and omission (the clock and the tokens stay). */
  reset(): void {
    for (const m of this.store.values()) m.clear();
    this.links.clear();
    this.owners.clear();
    this.faults.clear();
    this.omitted.clear();
    this.loopCursor = false;
    this.ignoreSearchFilters = false;
    this.beforeAnswer = undefined;
  }

  advance(ms: number): void {
    this.now += ms;
  }

  /** Live (not archived) objects of `type`, by id. */
  objects(type: CrmType): CrmObject[] {
    return this.sorted(type).filter((o) => !o.archived);
  }

  /** One object. */
  get(type: CrmType, id: string): CrmObject {
    const o = this.store.get(type)!.get(id);
    if (!o) throw new Error(`no ${type} ${id}`);
    return o;
  }

  /**
   * Create `count` objects of `type` modified in the past, `perStamp` sharing
   * each modified millisecond (many equal values across page boundaries),
   * `stepMs` apart, ending at least a minute before `now`.
   */
  seed(type: CrmType, count: number, opts: { perStamp?: number; stepMs?: number } = {}): CrmObject[] {
    const per = opts.perStamp ?? 1;
    const step = opts.stepMs ?? 7;
    const stamps = Math.ceil(count / per);
    const start = this.now - 60_000 - stamps * step;
    const out: CrmObject[] = [];
    for (let i = 0; i < count; i++) out.push(this.insert(type, {}, start + Math.floor(i / per) * step));
    return out;
  }

  /** Create one object now. */
  create(type: CrmType, properties: Record<string, string | null> = {}): CrmObject {
    return this.insert(type, properties, this.now);
  }

  /** Update an object now: its modified dates move to `now`. */
  update(type: CrmType, id: string, properties: Record<string, string | null>): CrmObject {
    const o = this.get(type, id);
    Object.assign(o.properties, properties);
    this.touch(o);
    return o;
  }

  /** Archive an object now (HubSpot's delete: it leaves lists and search, and shows with `archived=true`). */
  archive(type: CrmType, id: string): CrmObject {
    const o = this.get(type, id);
    o.archived = true;
    o.archivedAt = this.now;
    this.touch(o);
    return o;
  }

  /** Associate two objects (both directions, as HubSpot's default associations). */
  associate(from: CrmType, fromId: string, to: CrmType, toId: string): void {
    const add = (a: string, b: string): void => {
      let s = this.links.get(a);
      if (!s) this.links.set(a, (s = new Set()));
      s.add(b);
    };
    add(`${from}:${fromId}:${to}`, toId);
    add(`${to}:${toId}:${from}`, fromId);
  }

  /** Ids of `to` objects associated with one object, sorted. */
  associated(from: CrmType, id: string, to: string): string[] {
    return [...(this.links.get(`${from}:${id}:${to}`) ?? [])].sort((a, b) => Number(a) - Number(b));
  }

  /** Create `count` owners. */
  seedOwners(count: number): Owner[] {
    const out: Owner[] = [];
    for (let i = 0; i < count; i++) out.push(this.createOwner());
    return out;
  }

  createOwner(fields: Partial<Owner> = {}): Owner {
    const n = ++this.seq;
    const o: Owner = { id: String(n), email: `owner${n}@example.com`, firstName: `Owner`, lastName: `Nr ${n}`, userId: 9_000_000 + n, createdAt: this.now - 1000, updatedAt: this.now - 1000, archived: false, teams: [{ id: '77', name: 'Sales', primary: true }], ...fields };
    this.owners.set(o.id, o);
    return o;
  }

  updateOwner(id: string, fields: Partial<Owner>): Owner {
    const o = this.owners.get(id);
    if (!o) throw new Error(`no owner ${id}`);
    Object.assign(o, fields, { updatedAt: this.now });
    return o;
  }

  /** Owners, live and archived, by id. */
  allOwners(): Owner[] {
    return [...this.owners.values()].sort((a, b) => Number(a.id) - Number(b.id));
  }

  /** Queue a fault. */
  fail(fault: HubSpotFault): void {
    this.faults.push(fault);
  }

  /** Clear queued faults. */
  clearFaults(): void {
    this.faults.clear();
  }

  /** Serve objects of `type` without `fields` (property names or `createdAt`/`updatedAt`/`id`), all or only `ids`. */
  omit(type: CrmType, fields: string[], ids?: string[]): void {
    this.omitted.set(type, { fields, ...(ids ? { ids: new Set(ids) } : {}) });
  }

  private insert(type: CrmType, properties: Record<string, string | null>, at: number): CrmObject {
    const n = ++this.seq;
    const id = String(n);
    const o: CrmObject = { id, properties: { ...this.defaults(type, n, at), ...properties, hs_object_id: id }, createdAt: at, updatedAt: at, archived: false };
    for (const m of MODIFIED) o.properties[m] = iso(at);
    this.store.get(type)!.set(id, o);
    return o;
  }

  private touch(o: CrmObject): void {
    o.updatedAt = this.now;
    for (const m of MODIFIED) o.properties[m] = iso(this.now);
  }

  private defaults(type: CrmType, n: number, at: number): Record<string, string | null> {
    const created = { createdate: iso(at) };
    switch (type) {
      case 'contacts':
        return { ...created, email: `c${n}@example.com`, firstname: n % 5 === 0 ? 'Zoë' : 'Ada', lastname: `Nr ${n}`, phone: n % 3 === 0 ? null : `+49 30 ${n}`, company: n % 4 === 0 ? '' : `Acme ${n % 17}`, lifecyclestage: 'lead', hs_email_optout: n % 2 === 0 ? 'true' : 'false', date_of_birth: '1990-02-28', hs_analytics_num_visits: String(n % 40) };
      case 'companies':
        return { ...created, name: `Company ${n}`, domain: `c${n}.example.com`, industry: 'COMPUTER_SOFTWARE', numberofemployees: String(10 + (n % 90)), annualrevenue: `${n}123456789.25`, is_public: 'false' };
      case 'deals':
        return { ...created, dealname: `Deal ${n}`, amount: `${1000 + n}.50`, dealstage: 'appointmentscheduled', pipeline: 'default', closedate: iso(at + 86_400_000), hubspot_owner_id: null };
      case 'tickets':
        return { ...created, subject: `Ticket ${n}`, content: 'Printer on fire', hs_pipeline: '0', hs_pipeline_stage: '1', hs_ticket_priority: 'HIGH' };
    }
  }

  private sorted(type: CrmType): CrmObject[] {
    return [...this.store.get(type)!.values()].sort((a, b) => Number(a.id) - Number(b.id));
  }

  /** True when this request is over a limit of its token (counted on arrival). */
  private overLimit(token: string, search: boolean): string | undefined {
    const t = Date.now();
    if (search && this.searchSeconds?.over(token, t)) return 'SECONDLY';
    if (!search && this.tenSecondly !== undefined) {
      const list = (this.recent.get(token) ?? []).filter((x) => x > t - 10_000);
      list.push(t);
      this.recent.set(token, list);
      if (list.length > this.tenSecondly) return 'TEN_SECONDLY_ROLLING';
    }
    return undefined;
  }

  protected async handle(req: SeenRequest, res: http.ServerResponse): Promise<void> {
    await latency(this.latencyMs);
    const headers = { date: new Date(this.now).toUTCString() };
    const send = (status: number, body: unknown, extra: Record<string, string> = {}): void => sendJson(res, status, body, { ...headers, ...extra });
    const token = /^Bearer (.+)$/.exec(req.headers['authorization'] ?? '')?.[1] ?? '';
    if (token === '' || !this.tokens.has(token)) {
      send(401, hubspotError(401, 'INVALID_AUTHENTICATION', 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview'));
      return;
    }
    if (this.revoked.has(token)) {
      send(401, hubspotError(401, 'EXPIRED_AUTHENTICATION', 'The OAuth token used to make this call expired 3 day(s) ago.'));
      return;
    }
    const search = req.method === 'POST' && req.path.endsWith('/search');
    const policy = this.overLimit(token, search);
    if (policy !== undefined) {
      this.rateLimited++;
      const message = policy === 'SECONDLY' ? 'You have reached your secondly limit.' : 'You have reached your ten_secondly_rolling limit.';
      send(429, { ...(hubspotError(429, 'RATE_LIMITS', message) as object), errorType: 'RATE_LIMIT', policyName: policy }, { 'retry-after': '1' });
      return;
    }
    const fault = this.faults.take(req);
    if (fault) {
      const body = fault.body ?? (fault.status === 429 ? { ...(hubspotError(429, 'RATE_LIMITS', 'You have reached your secondly limit.') as object), errorType: 'RATE_LIMIT', policyName: 'SECONDLY' } : hubspotError(fault.status, 'INTERNAL_ERROR', 'internal error'));
      send(fault.status, body, fault.headers ?? {});
      return;
    }
    this.beforeAnswer?.(req);
    const query = req.query.toString();
    if (req.path.length + (query === '' ? 0 : query.length + 1) > MAX_URL_CHARS) {
      // What HubSpot's front end answers for an over-long request line (not a JSON error).
      send(414, { status: 'error', message: 'URI Too Long' });
      return;
    }
    let m: RegExpExecArray | null;
    if (req.method === 'GET' && (m = /^\/crm\/v3\/objects\/([a-z_]+)$/.exec(req.path))) return this.list(req, m[1]!, send);
    if (req.method === 'POST' && (m = /^\/crm\/v3\/objects\/([a-z_]+)\/search$/.exec(req.path))) return this.search(req, m[1]!, send);
    if (req.method === 'POST' && (m = /^\/crm\/v3\/objects\/([a-z_]+)\/batch\/read$/.exec(req.path))) return this.batchRead(req, m[1]!, send);
    if (req.method === 'GET' && (m = /^\/crm\/v3\/properties\/([a-z_]+)$/.exec(req.path))) return this.properties(m[1]!, send);
    if (req.method === 'GET' && (req.path === '/crm/v3/owners' || req.path === '/crm/v3/owners/')) return this.ownersPage(req, send);
    if (req.method === 'POST' && (m = /^\/crm\/v4\/associations\/([a-z_]+)\/([a-z_]+)\/batch\/read$/.exec(req.path))) return this.associations(req, m[1]!, m[2]!, send);
    send(404, hubspotError(404, 'OBJECT_NOT_FOUND', `resource not found: ${req.method} ${req.path}`));
  }

  private type(name: string, send: (s: number, b: unknown) => void): CrmType | undefined {
    if ((CRM_TYPES as readonly string[]).includes(name)) return name as CrmType;
    send(400, hubspotError(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${name}`));
    return undefined;
  }

  /** An object as served: the requested properties (null when unset), ISO dates, omissions applied. */
  private render(type: CrmType, o: CrmObject, props: readonly string[], associations: readonly string[] = []): Record<string, unknown> {
    const om = this.omitted.get(type);
    const drop = om && (!om.ids || om.ids.has(o.id)) ? new Set(om.fields) : new Set<string>();
    const known = new Set(PROPERTY_DEFS[type].map((d) => d.name));
    const properties: Record<string, string | null> = {};
    for (const name of props) if ((known.has(name) || name in o.properties) && !drop.has(name)) properties[name] = o.properties[name] ?? null;
    const out: Record<string, unknown> = { id: o.id, properties, createdAt: iso(o.createdAt), updatedAt: iso(o.updatedAt), archived: o.archived };
    if (o.archivedAt !== undefined) out['archivedAt'] = iso(o.archivedAt);
    for (const f of ['id', 'createdAt', 'updatedAt']) if (drop.has(f)) delete out[f];
    if (associations.length > 0) {
      const a: Record<string, unknown> = {};
      for (const to of associations) {
        const ids = this.associated(type, o.id, to);
        if (ids.length > 0) a[to] = { results: ids.map((id) => ({ id, type: `${type.replace(/s$/, '')}_to_${to.replace(/s$/, '')}` })) };
      }
      if (Object.keys(a).length > 0) out['associations'] = a;
    }
    return out;
  }

  private requestedProperties(type: CrmType, raw: readonly string[]): string[] {
    const names = raw.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
    return names.length > 0 ? names : [...DEFAULT_PROPERTIES[type]];
  }

  private limitOf(text: string | null | undefined, max: number, send: (s: number, b: unknown) => void): number | undefined {
    const limit = text === null || text === undefined ? 10 : Number(text);
    if (!Number.isInteger(limit) || limit < 1 || limit > max) {
      send(400, hubspotError(400, 'VALIDATION_ERROR', `limit must be between 1 and ${max}, got ${String(text)}`));
      return undefined;
    }
    return limit;
  }

  private list(req: SeenRequest, name: string, send: (s: number, b: unknown) => void): void {
    const type = this.type(name, send);
    if (!type) return;
    const q = req.query;
    const limit = this.limitOf(q.get('limit'), 100, send);
    if (limit === undefined) return;
    const archived = q.get('archived') === 'true';
    let rows = this.sorted(type).filter((o) => o.archived === archived);
    const after = q.get('after');
    if (after !== null && after !== '' && !this.loopCursor) {
      if (!/^\d+$/.test(after)) return send(400, hubspotError(400, 'VALIDATION_ERROR', `Invalid after: ${after}`));
      rows = rows.filter((o) => Number(o.id) >= Number(after));
    }
    const page = rows.slice(0, limit);
    const props = this.requestedProperties(type, q.getAll('properties'));
    const assoc = q.getAll('associations').flatMap((s) => s.split(',')).filter((s) => s !== '');
    const next = rows[limit];
    send(200, {
      results: page.map((o) => this.render(type, o, props, assoc)),
      ...(next ? { paging: { next: { after: next.id, link: `${this.url}/crm/v3/objects/${type}?after=${next.id}` } } } : {}),
    });
  }

  /**
   * `POST /crm/v3/objects/{type}/batch/read`: `{inputs: [{id}], properties}`
   * (at most 100 inputs), `?archived=true` for archived objects. Ids not
   * found are left out of `results` and listed in `errors` with status 207,
   * as HubSpot does.
   */
  private batchRead(req: SeenRequest, name: string, send: (s: number, b: unknown) => void): void {
    const type = this.type(name, send);
    if (!type) return;
    let body: { inputs?: { id?: unknown }[]; properties?: unknown };
    try {
      body = JSON.parse(req.body === '' ? '{}' : req.body) as typeof body;
    } catch {
      return send(400, hubspotError(400, 'VALIDATION_ERROR', 'Invalid input JSON'));
    }
    const inputs = Array.isArray(body.inputs) ? body.inputs : [];
    if (inputs.length > 100) return send(400, hubspotError(400, 'VALIDATION_ERROR', `Batch input of ${inputs.length} exceeds the limit of 100`));
    const archived = req.query.get('archived') === 'true';
    const props = this.requestedProperties(type, Array.isArray(body.properties) ? (body.properties as unknown[]).map(String) : []);
    const byId = this.store.get(type) ?? new Map<string, CrmObject>();
    const results: Record<string, unknown>[] = [];
    const missing: string[] = [];
    for (const i of inputs) {
      const o = byId.get(String(i.id));
      if (o === undefined || o.archived !== archived) missing.push(String(i.id));
      else results.push(this.render(type, o, props));
    }
    const now = new Date(this.now).toISOString();
    const answer = { status: 'COMPLETE', results, startedAt: now, completedAt: now };
    if (missing.length === 0) return send(200, answer);
    send(207, { ...answer, numErrors: 1, errors: [{ status: 'error', category: 'OBJECT_NOT_FOUND', message: 'Could not get some objects, they may be deleted or not exist.', context: { ids: missing } }] });
  }

  private search(req: SeenRequest, name: string, send: (s: number, b: unknown) => void): void {
    const type = this.type(name, send);
    if (!type) return;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(req.body === '' ? '{}' : req.body) as Record<string, unknown>;
    } catch {
      return send(400, hubspotError(400, 'VALIDATION_ERROR', 'Invalid input JSON'));
    }
    const limit = this.limitOf(body['limit'] === undefined ? undefined : String(body['limit']), 200, send);
    if (limit === undefined) return;
    const groups = (Array.isArray(body['filterGroups']) ? body['filterGroups'] : []) as { filters?: Record<string, unknown>[] }[];
    if (groups.length > 5 || groups.some((g) => (g.filters ?? []).length > 6)) {
      return send(400, hubspotError(400, 'VALIDATION_ERROR', 'There was a problem with the request: at most 5 filterGroups of at most 6 filters'));
    }
    const sorts = (Array.isArray(body['sorts']) ? body['sorts'] : []) as unknown[];
    if (sorts.length > 1) return send(400, hubspotError(400, 'VALIDATION_ERROR', 'There was a problem with the request: only one sort is allowed'));
    const sort = sorts[0] as { propertyName?: unknown; direction?: unknown } | undefined;
    if (sort !== undefined && (typeof sort !== 'object' || sort === null || typeof sort.propertyName !== 'string')) {
      return send(400, hubspotError(400, 'VALIDATION_ERROR', 'sorts: each sort needs a propertyName'));
    }
    const offset = body['after'] === undefined || body['after'] === null ? 0 : Number(body['after']);
    if (!Number.isInteger(offset) || offset < 0) return send(400, hubspotError(400, 'VALIDATION_ERROR', `Invalid after: ${String(body['after'])}`));
    if (offset + limit > SEARCH_RESULT_CAP) {
      // The documented-by-others cap of one query (reference/specs/rate-limits-and-errors.md).
      return send(400, hubspotError(400, 'VALIDATION_ERROR', `There was a problem with the request. The search result limit of ${SEARCH_RESULT_CAP} was reached: narrow the query`));
    }
    const kinds = new Map(PROPERTY_DEFS[type].map((d) => [d.name, d.type]));
    const filters = this.ignoreSearchFilters ? [] : groups;
    let bad: string | undefined;
    const match = (o: CrmObject): boolean =>
      filters.length === 0 ||
      filters.some((g) =>
        (g.filters ?? []).every((f) => {
          const r = this.test(o, f, kinds);
          if (typeof r === 'string') bad ??= r;
          return r === true;
        }),
      );
    let rows = [...this.store.get(type)!.values()].filter((o) => !o.archived && match(o));
    if (bad !== undefined) return send(400, hubspotError(400, 'VALIDATION_ERROR', bad));
    const prop = sort?.propertyName as string | undefined;
    const desc = sort?.direction === 'DESCENDING';
    if (prop === undefined) rows.sort((a, b) => Number(a.id) - Number(b.id));
    else {
      const kind = kinds.get(prop);
      const keyed = rows.map((o) => ({ o, v: o.properties[prop] ?? null, r: this.rankOf(o.id) }));
      keyed.sort((a, b) => {
        const c = this.compare(a.v, b.v, kind);
        if (c !== 0) return desc ? -c : c;
        return a.r < b.r ? -1 : a.r > b.r ? 1 : 0;
      });
      rows = keyed.map((k) => k.o);
    }
    const props = Array.isArray(body['properties']) && body['properties'].length > 0 ? (body['properties'] as string[]) : [...DEFAULT_PROPERTIES[type]];
    const page = rows.slice(offset, offset + limit);
    const next = offset + limit < rows.length ? String(offset + limit) : undefined;
    send(200, {
      total: rows.length,
      results: page.map((o) => this.render(type, o, props)),
      ...(next !== undefined ? { paging: { next: { after: next } } } : {}),
    });
  }

  private rankOf(id: string): string {
    let r = this.ranks.get(id);
    if (r === undefined) this.ranks.set(id, (r = tieRank(id)));
    return r;
  }

  /** One filter on one object: true/false, or the text of a 400 for a bad filter. */
  private test(o: CrmObject, f: Record<string, unknown>, kinds: Map<string, PropertyDef['type']>): boolean | string {
    const name = f['propertyName'];
    const op = f['operator'];
    if (typeof name !== 'string' || typeof op !== 'string') return 'filters need propertyName and operator';
    const v = o.properties[name] ?? null;
    const kind = kinds.get(name);
    const value = f['value'] === undefined ? undefined : String(f['value']);
    const cmp = (x: string): number => this.compare(v, x, kind);
    switch (op) {
      case 'HAS_PROPERTY':
        return v !== null && v !== '';
      case 'NOT_HAS_PROPERTY':
        return v === null || v === '';
      case 'IN':
      case 'NOT_IN': {
        const values = Array.isArray(f['values']) ? (f['values'] as unknown[]).map(String) : [];
        const inside = v !== null && values.some((x) => cmp(x) === 0);
        return op === 'IN' ? inside : !inside;
      }
      case 'BETWEEN': {
        const hi = f['highValue'];
        if (value === undefined || hi === undefined) return 'BETWEEN needs value and highValue';
        return v !== null && cmp(value) >= 0 && cmp(String(hi)) <= 0;
      }
    }
    if (value === undefined) return `operator ${op} needs a value`;
    if (v === null) return op === 'NEQ';
    const c = cmp(value);
    switch (op) {
      case 'EQ':
        return c === 0;
      case 'NEQ':
        return c !== 0;
      case 'LT':
        return c < 0;
      case 'LTE':
        return c <= 0;
      case 'GT':
        return c > 0;
      case 'GTE':
        return c >= 0;
      default:
        return `unknown operator ${op}`;
    }
  }

  /** Compare two property values by the property's type (nulls first). */
  private compare(a: string | null, b: string | null, kind: PropertyDef['type'] | undefined): number {
    if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
    if (kind === 'datetime' || kind === 'date') return asMs(a) - asMs(b);
    if (kind === 'number') {
      if (/^-?\d+$/.test(a) && /^-?\d+$/.test(b)) {
        const x = BigInt(a);
        const y = BigInt(b);
        return x < y ? -1 : x > y ? 1 : 0;
      }
      return Number(a) - Number(b);
    }
    return a < b ? -1 : a > b ? 1 : 0;
  }

  private properties(name: string, send: (s: number, b: unknown) => void): void {
    const type = this.type(name, send);
    if (!type) return;
    send(200, {
      results: PROPERTY_DEFS[type].map((d) => ({
        updatedAt: iso(DEFAULT_NOW - 86_400_000),
        createdAt: iso(DEFAULT_NOW - 86_400_000 * 30),
        name: d.name,
        label: d.label,
        type: d.type,
        fieldType: d.fieldType,
        description: '',
        groupName: `${type.replace(/s$/, '')}information`,
        options: [],
        displayOrder: -1,
        calculated: d.calculated ?? false,
        externalOptions: false,
        hasUniqueValue: d.name === 'hs_object_id',
        hidden: d.hidden ?? false,
        hubspotDefined: true,
        modificationMetadata: { archivable: true, readOnlyDefinition: true, readOnlyValue: false },
        formField: true,
      })),
    });
  }

  private ownersPage(req: SeenRequest, send: (s: number, b: unknown) => void): void {
    const q = req.query;
    const limit = this.limitOf(q.get('limit'), 500, send);
    if (limit === undefined) return;
    const archived = q.get('archived') === 'true';
    let rows = this.allOwners().filter((o) => o.archived === archived);
    const after = q.get('after');
    if (after !== null && after !== '' && !this.loopCursor) rows = rows.filter((o) => Number(o.id) >= Number(after));
    const page = rows.slice(0, limit);
    const next = rows[limit];
    send(200, {
      results: page.map((o) => ({ ...o, createdAt: iso(o.createdAt), updatedAt: iso(o.updatedAt) })),
      ...(next ? { paging: { next: { after: next.id } } } : {}),
    });
  }

  private associations(req: SeenRequest, from: string, to: string, send: (s: number, b: unknown) => void): void {
    const type = this.type(from, send);
    if (!type) return;
    const inputs = ((JSON.parse(req.body || '{}') as { inputs?: { id?: unknown }[] }).inputs ?? []).map((i) => String(i.id));
    if (inputs.length > 1000) return send(400, hubspotError(400, 'VALIDATION_ERROR', 'at most 1000 inputs'));
    const found = inputs.map((id) => ({ id, to: this.associated(type, id, to) }));
    const results = found
      .filter((r) => r.to.length > 0)
      .map((r) => ({ from: { id: r.id }, to: r.to.map((t) => ({ toObjectId: Number(t), associationTypes: [{ category: 'HUBSPOT_DEFINED', typeId: 1, label: null }] })) }));
    // Ids without associations are errors of a 207 multi-status answer, as HubSpot reports them.
    const errors = found
      .filter((r) => r.to.length === 0)
      .map((r) => ({ status: 'error', category: 'OBJECT_NOT_FOUND', subCategory: 'crm.associations.NO_ASSOCIATIONS_FOUND', message: `No ${to} is associated with ${type} ${r.id}.`, context: { fromObjectId: [r.id] } }));
    const body = { status: 'COMPLETE', results, ...(errors.length > 0 ? { numErrors: errors.length, errors } : {}), startedAt: iso(this.now), completedAt: iso(this.now) };
    send(errors.length > 0 ? 207 : 200, body);
  }
}

/** Start a fake (see {@link HubSpotFake}). */
export async function startHubSpotFake(options: HubSpotFakeOptions = {}): Promise<HubSpotFake> {
  return new HubSpotFake(options).start();
}
