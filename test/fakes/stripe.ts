/**
 * A stateful Stripe-like API on loopback, written from Stripe's public API
 * description (reference/specs/stripe-openapi-trimmed.json, the fixtures in
 * stripe-fixtures3-trimmed.json) and docs.stripe.com: enough of `/v1` for the
 * real `stripe` SDK to list every object the connector syncs.
 *
 * - Lists (`GET /v1/<resource>`): envelope `{object: 'list', data, has_more,
 *   url}`, newest first (created descending, later-created first among equal
 *   `created`), `limit` 1..100 (default 10, else 400 `parameter_invalid_integer`),
 *   `starting_after` / `ending_before` object ids (unknown id: 400
 *   `resource_missing`), `created` as an integer or `created[gt|gte|lt|lte]`.
 * - Events (`GET /v1/events`): every create, update and delete made through
 *   {@link StripeFake.create} / `update` / `remove` becomes an event
 *   (`customer.created`, `customer.updated`, `customer.deleted`,
 *   `customer.subscription.*` for subscriptions, ...) whose `data.object` is the
 *   object as it was then; `type` / `types[]` and `created` filters; events
 *   older than 30 days (by the fake's clock) are gone, as on Stripe.
 * - Auth: `Authorization: Bearer <key>`; an unknown or revoked key is 401 with
 *   Stripe's error body (`invalid_request_error`, `api_key_expired` for a
 *   revoked one; the message names the key's last 4 characters only, as
 *   Stripe does).
 * - Faults: {@link StripeFake.fail} queues answers (429 with `Retry-After` and
 *   `Stripe-Should-Retry`, 5xx, ...); {@link StripeFake.loopCursor} makes
 *   lists ignore `starting_after` (a broken server repeating a page);
 *   {@link StripeFake.omit} drops fields from the objects served.
 * - The fake's clock (`now`, unix seconds) stamps `created` and the `Date`
 *   header; tests move it with {@link StripeFake.advance}.
 */
import type http from 'node:http';
import { FaultQueue, latency, LoopbackFake, WindowCounter, type Fault } from '../helpers/api-fake.js';
import { sendJson, type SeenRequest } from '../helpers/http-server.js';

/** The list resources served, with their object type and id prefix. */
export const STRIPE_RESOURCES = {
  customers: { type: 'customer', prefix: 'cus', events: 'customer' },
  charges: { type: 'charge', prefix: 'ch', events: 'charge' },
  invoices: { type: 'invoice', prefix: 'in', events: 'invoice' },
  subscriptions: { type: 'subscription', prefix: 'sub', events: 'customer.subscription' },
  payment_intents: { type: 'payment_intent', prefix: 'pi', events: 'payment_intent' },
  products: { type: 'product', prefix: 'prod', events: 'product' },
  prices: { type: 'price', prefix: 'price', events: 'price' },
  refunds: { type: 'refund', prefix: 're', events: 'refund' },
  balance_transactions: { type: 'balance_transaction', prefix: 'txn', events: 'balance_transaction' },
} as const;
export type StripeResourceName = keyof typeof STRIPE_RESOURCES;

/** A Stripe object as stored and served. */
export type StripeObject = Record<string, unknown> & { id: string; object: string; created: number };

interface Stored {
  seq: number;
  obj: StripeObject;
}

/** A queued fault (test/helpers/api-fake.ts): path prefix, status, times, headers, body (default Stripe's error body). */
export type StripeFault = Fault;

export interface StripeFakeOptions {
  /** Accepted secret keys. Default `['sk_test_fake_4242']`. */
  keys?: string[];
  /** The fake's clock at start, unix seconds. Default 1_780_000_000 (2026-05-28). */
  now?: number;
  /** Delay before every answer, ms. Default 0. */
  latencyMs?: number;
  /** Requests per second answered; more in one wall-clock second get 429 (`Retry-After: 1`). Default: no limit. */
  rateLimit?: number;
}

const DEFAULT_NOW = 1_780_000_000;
const RETENTION_SECONDS = 30 * 86_400;

function stripeError(type: string, message: string, extra: Record<string, unknown> = {}): unknown {
  return { error: { type, message, ...extra } };
}

/** Base-36 id part of a sequence number, 14 characters as Stripe's look. */
function idPart(seq: number): string {
  return seq.toString(36).padStart(14, '0');
}

/** The body of an object of `resource` with `fields` over plausible defaults (fields as in the fixtures). */
function defaults(resource: StripeResourceName, seq: number, created: number): Record<string, unknown> {
  const base = { livemode: false, metadata: {} };
  switch (resource) {
    case 'customers':
      return { ...base, email: `c${seq}@example.com`, name: `Customer ${seq}`, balance: 0, currency: 'usd', delinquent: false, description: null, phone: null, address: { city: 'Berlin', country: 'DE', line1: null, line2: null, postal_code: null, state: null }, invoice_prefix: `P${idPart(seq).slice(-6).toUpperCase()}`, preferred_locales: [], tax_exempt: 'none', shipping: null, discount: null };
    case 'charges':
      return { ...base, amount: 1000 + seq, amount_captured: 1000 + seq, amount_refunded: 0, currency: 'eur', captured: true, paid: true, refunded: false, disputed: false, status: 'succeeded', customer: null, description: `charge ${seq}`, payment_intent: null, billing_details: { address: null, email: null, name: null, phone: null }, outcome: { type: 'authorized', risk_level: 'normal' }, failure_code: null, failure_message: null, receipt_url: null, balance_transaction: null };
    case 'invoices':
      return { ...base, customer: `cus_${idPart(seq)}`, amount_due: 2000, amount_paid: 2000, amount_remaining: 0, currency: 'usd', status: 'paid', total: 2000, subtotal: 2000, number: `INV-${seq}`, collection_method: 'charge_automatically', billing_reason: 'manual', period_start: created, period_end: created, due_date: null, lines: { object: 'list', data: [], has_more: false, url: '/v1/invoices/x/lines' } };
    case 'subscriptions':
      return { ...base, customer: `cus_${idPart(seq)}`, status: 'active', currency: 'usd', collection_method: 'charge_automatically', start_date: created, current_period_start: created, cancel_at_period_end: false, canceled_at: null, ended_at: null, trial_end: null, items: { object: 'list', data: [], has_more: false, url: '/v1/subscription_items' } };
    case 'payment_intents':
      return { ...base, amount: 5000 + seq, amount_received: 5000 + seq, amount_capturable: 0, currency: 'gbp', status: 'succeeded', capture_method: 'automatic', confirmation_method: 'automatic', customer: null, description: null, payment_method_types: ['card'], canceled_at: null, cancellation_reason: null, client_secret: `pi_${idPart(seq)}_secret_x` };
    case 'products':
      return { ...base, name: `Product ${seq}`, active: true, description: null, default_price: null, images: [], type: 'service', unit_label: null, url: null, updated: created };
    case 'prices':
      return { ...base, product: `prod_${idPart(seq)}`, active: true, currency: 'usd', unit_amount: 999, unit_amount_decimal: '999', billing_scheme: 'per_unit', type: 'one_time', recurring: null, nickname: null, lookup_key: null, tax_behavior: 'unspecified' };
    case 'refunds':
      return { ...base, amount: 100 + seq, charge: `ch_${idPart(seq)}`, currency: 'eur', status: 'succeeded', reason: null, payment_intent: null, balance_transaction: null };
    case 'balance_transactions':
      return { ...base, amount: 1000 + seq, fee: 59, net: 941 + seq, currency: 'eur', type: 'charge', status: 'available', available_on: created + 86_400 * 2, description: null, reporting_category: 'charge', source: `ch_${idPart(seq)}`, fee_details: [{ amount: 59, currency: 'eur', description: 'Stripe processing fees', type: 'stripe_fee' }], exchange_rate: null };
  }
}

/** The Stripe-like fake server. */
export class StripeFake extends LoopbackFake {
  /** The fake's clock, unix seconds. */
  now: number;
  latencyMs: number;
  readonly rateLimit: number | undefined;
  /** 429s answered by the rate limit. */
  rateLimited = 0;
  private readonly limit: WindowCounter | undefined;
  /** When true, lists ignore `starting_after` and answer the first page again. */
  loopCursor = false;
  readonly keys: Set<string>;
  readonly revoked = new Set<string>();
  private seq = 0;
  private readonly store = new Map<StripeResourceName, Stored[]>();
  /** Each resource's objects newest first, until the set changes (see list). */
  private readonly sorted = new Map<StripeResourceName, readonly Stored[]>();
  private readonly events: Stored[] = [];
  private readonly faults = new FaultQueue<StripeFault>();
  readonly omitted = new Map<StripeResourceName, { fields: string[]; ids?: Set<string> }>();

  constructor(options: StripeFakeOptions = {}) {
    super();
    this.keys = new Set(options.keys ?? ['sk_test_fake_4242']);
    this.now = options.now ?? DEFAULT_NOW;
    this.latencyMs = options.latencyMs ?? 0;
    this.rateLimit = options.rateLimit;
    this.limit = options.rateLimit !== undefined ? new WindowCounter(options.rateLimit) : undefined;
    for (const r of Object.keys(STRIPE_RESOURCES) as StripeResourceName[]) this.store.set(r, []);
  }

  /** Forget every object, event, fault and omission (the clock and the keys stay). */
  reset(): void {
    for (const list of this.store.values()) list.length = 0;
    this.sorted.clear();
    this.events.length = 0;
    this.faults.clear();
    this.omitted.clear();
    this.loopCursor = false;
  }

  /** Move the clock forward. */
  advance(seconds: number): void {
    this.now += seconds;
  }

  /** Objects of `resource` currently live (not deleted), oldest first. */
  objects(resource: StripeResourceName): StripeObject[] {
    return this.list(resource).map((s) => s.obj).reverse();
  }

  /**
   * Create `count` objects of `resource`, `perSecond` sharing each `created`
   * second (many equal values across page boundaries), the last one at
   * `now` minus `ageSeconds` at most. No events (seeded history, as if older
   * than the event retention unless `events` is set).
   */
  seed(resource: StripeResourceName, count: number, opts: { perSecond?: number; startAt?: number; events?: boolean } = {}): StripeObject[] {
    const per = opts.perSecond ?? 1;
    const span = Math.ceil(count / per);
    const start = opts.startAt ?? this.now - span - 60;
    const out: StripeObject[] = [];
    for (let i = 0; i < count; i++) out.push(this.insert(resource, {}, start + Math.floor(i / per), opts.events ?? false));
    return out;
  }

  /** Create one object now (a `<type>.created` event). */
  create(resource: StripeResourceName, fields: Record<string, unknown> = {}): StripeObject {
    return this.insert(resource, fields, this.now, true);
  }

  /** Update an object (a `<type>.updated` event with the new state). */
  update(resource: StripeResourceName, id: string, patch: Record<string, unknown>): StripeObject {
    const s = this.find(resource, id);
    s.obj = { ...s.obj, ...patch, id: s.obj.id, object: s.obj.object, created: s.obj.created };
    this.event(`${STRIPE_RESOURCES[resource].events}.updated`, s.obj);
    return s.obj;
  }

  /** Delete an object (a `<type>.deleted` event holding its last state). */
  remove(resource: StripeResourceName, id: string): void {
    const list = this.store.get(resource)!;
    const at = list.findIndex((s) => s.obj.id === id);
    if (at < 0) throw new Error(`no ${resource} ${id}`);
    const [s] = list.splice(at, 1);
    this.sorted.delete(resource);
    this.event(`${STRIPE_RESOURCES[resource].events}.deleted`, s!.obj);
  }

  /** An event about an object type of no list here (e.g. `coupon.created`). */
  otherEvent(type: string, object: Record<string, unknown>): void {
    this.event(type, { created: this.now, ...object } as StripeObject);
  }

  /** Queue a fault. */
  fail(fault: StripeFault): void {
    this.faults.push(fault);
  }

  /** Clear queued faults. */
  clearFaults(): void {
    this.faults.clear();
  }

  /** Serve objects of `resource` without `fields` (all objects, or only `ids`). */
  omit(resource: StripeResourceName, fields: string[], ids?: string[]): void {
    this.omitted.set(resource, { fields, ...(ids ? { ids: new Set(ids) } : {}) });
  }

  private insert(resource: StripeResourceName, fields: Record<string, unknown>, created: number, withEvent: boolean): StripeObject {
    const seq = ++this.seq;
    const meta = STRIPE_RESOURCES[resource];
    const obj = { id: `${meta.prefix}_${idPart(seq)}`, object: meta.type, created, ...defaults(resource, seq, created), ...fields } as StripeObject;
    this.store.get(resource)!.push({ seq, obj });
    this.sorted.delete(resource);
    if (withEvent) this.event(`${meta.events}.created`, obj);
    return obj;
  }

  private event(type: string, obj: StripeObject): void {
    const seq = ++this.seq;
    const evt = {
      id: `evt_${idPart(seq)}`,
      object: 'event',
      api_version: '2026-10-28.endive',
      created: this.now,
      data: { object: structuredClone(obj) },
      livemode: false,
      pending_webhooks: 0,
      request: { id: null, idempotency_key: null },
      type,
    } as unknown as StripeObject;
    this.events.push({ seq, obj: evt });
  }

  private find(resource: StripeResourceName, id: string): Stored {
    const s = this.store.get(resource)!.find((x) => x.obj.id === id);
    if (!s) throw new Error(`no ${resource} ${id}`);
    return s;
  }

  /**
   * Newest first, as Stripe lists; sorted once per change of the set of
   * objects (an update keeps `created` and the entry), not per request: a
   * sort of 60,000 objects per page took the bench's CPU from the run it
   * measures. Callers read it, never change it.
   */
  private list(resource: StripeResourceName): readonly Stored[] {
    let sorted = this.sorted.get(resource);
    if (sorted === undefined) {
      sorted = [...this.store.get(resource)!].sort((a, b) => b.obj.created - a.obj.created || b.seq - a.seq);
      this.sorted.set(resource, sorted);
    }
    return sorted;
  }

  protected async handle(req: SeenRequest, res: http.ServerResponse): Promise<void> {
    // Over the per-second limit: counted on arrival, fixed one-second windows.
    const limited = this.limit?.over() ?? false;
    await latency(this.latencyMs);
    const headers = { date: new Date(this.now * 1000).toUTCString(), 'request-id': `req_${this.requests.length}`, 'stripe-version': '2026-10-28.endive' };
    const send = (status: number, body: unknown, extra: Record<string, string> = {}): void => sendJson(res, status, body, { ...headers, ...extra });
    const auth = req.headers['authorization'] ?? '';
    const key = /^Bearer (.+)$/.exec(auth)?.[1] ?? '';
    if (key === '' || !this.keys.has(key) || this.revoked.has(key)) {
      const shown = key.length > 4 ? `${key.slice(0, 8)}${'*'.repeat(8)}${key.slice(-4)}` : '';
      const revoked = this.revoked.has(key);
      send(401, stripeError('invalid_request_error', key === '' ? 'You did not provide an API key.' : revoked ? `Expired API Key provided: ${shown}` : `Invalid API Key provided: ${shown}`, revoked ? { code: 'api_key_expired' } : {}));
      return;
    }
    if (limited) {
      this.rateLimited++;
      send(429, stripeError('invalid_request_error', 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.', { code: 'rate_limit' }), { 'retry-after': '1', 'stripe-should-retry': 'true' });
      return;
    }
    const fault = this.faults.take(req);
    if (fault) {
      const body = fault.body ?? (fault.status === 429 ? stripeError('invalid_request_error', 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.', { code: 'rate_limit' }) : stripeError('api_error', 'Something went wrong on our end.'));
      send(fault.status, body, fault.headers ?? {});
      return;
    }
    if (req.method !== 'GET') {
      send(405, stripeError('invalid_request_error', `Unrecognized request URL (${req.method}: ${req.path}).`));
      return;
    }
    const m = /^\/v1\/([a-z_]+)$/.exec(req.path);
    const name = m?.[1];
    if (name === 'events') {
      this.listAnswer(req, this.liveEvents(req.query), '/v1/events', send);
      return;
    }
    if (name === undefined || !Object.hasOwn(STRIPE_RESOURCES, name)) {
      send(404, stripeError('invalid_request_error', `Unrecognized request URL (GET: ${req.path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`));
      return;
    }
    const resource = name as StripeResourceName;
    const om = this.omitted.get(resource);
    // Filters see the stored object; the answer lacks the omitted fields.
    const shown = (o: StripeObject): StripeObject => {
      if (!om || (om.ids && !om.ids.has(o.id))) return o;
      const copy: Record<string, unknown> = { ...o };
      for (const f of om.fields) delete copy[f];
      return copy as StripeObject;
    };
    this.listAnswer(req, this.list(resource), `/v1/${resource}`, send, shown);
  }

  private liveEvents(q: URLSearchParams): Stored[] {
    const types = [...q.getAll('types[]'), ...q.getAll('type')];
    const match = (t: string): boolean => types.length === 0 || types.some((x) => (x.endsWith('.*') ? t.startsWith(x.slice(0, -1)) : t === x));
    return [...this.events]
      .filter((e) => e.obj.created >= this.now - RETENTION_SECONDS && match(String(e.obj['type'])))
      .sort((a, b) => b.obj.created - a.obj.created || b.seq - a.seq);
  }

  private listAnswer(req: SeenRequest, all: readonly Stored[], url: string, send: (status: number, body: unknown) => void, shown: (o: StripeObject) => StripeObject = (o) => o): void {
    const q = req.query;
    const limitText = q.get('limit');
    const limit = limitText === null ? 10 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      send(400, stripeError('invalid_request_error', `Invalid integer: ${limitText ?? ''}. This value must be between 1 and 100.`, { code: 'parameter_invalid_integer', param: 'limit' }));
      return;
    }
    // The created filters as one inclusive range; `all` is newest first, so
    // the objects in it are one run of the list, found by binary search.
    let min = -Infinity;
    let max = Infinity;
    const created = q.get('created');
    if (created !== null) {
      if (!/^\d+$/.test(created)) {
        send(400, stripeError('invalid_request_error', `Invalid integer: ${created}`, { code: 'parameter_invalid_integer', param: 'created' }));
        return;
      }
      min = max = Number(created);
    }
    for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
      const v = q.get(`created[${op}]`);
      if (v === null) continue;
      if (!/^\d+$/.test(v)) {
        send(400, stripeError('invalid_request_error', `Invalid integer: ${v}`, { code: 'parameter_invalid_integer', param: `created[${op}]` }));
        return;
      }
      const n = Number(v);
      if (op === 'gt') min = Math.max(min, n + 1);
      else if (op === 'gte') min = Math.max(min, n);
      else if (op === 'lt') max = Math.min(max, n - 1);
      else max = Math.min(max, n);
    }
    /** The first index whose object was created before `t` is reached (`created < t`); `all` is newest first. */
    const firstBelow = (t: number): number => {
      let lo = 0;
      let hi = all.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (all[mid]!.obj.created < t) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    const start = min > max ? 0 : firstBelow(max + 1);
    let rows = min > max ? [] : all.slice(start, firstBelow(min));
    /** Where object `id` stands in `rows` (-1: not there), through the list's id index. */
    const indexOf = (id: string): number => {
      const at = positions(all).get(id);
      return at === undefined || at < start || at >= start + rows.length ? -1 : at - start;
    };
    const after = q.get('starting_after');
    const before = q.get('ending_before');
    let hasMore: boolean;
    let page: Stored[];
    if (before !== null && before !== '') {
      const at = indexOf(before);
      if (at < 0) return this.missing(send, before, 'ending_before');
      const prior = rows.slice(0, at);
      page = prior.slice(Math.max(0, prior.length - limit));
      hasMore = prior.length > limit;
    } else {
      if (after !== null && after !== '' && !this.loopCursor) {
        const at = indexOf(after);
        if (at < 0) return this.missing(send, after, 'starting_after');
        rows = rows.slice(at + 1);
      }
      page = rows.slice(0, limit);
      hasMore = rows.length > limit;
    }
    send(200, { object: 'list', data: page.map((s) => shown(s.obj)), has_more: hasMore, url });
  }

  private missing(send: (status: number, body: unknown) => void, id: string, param: string): void {
    send(400, stripeError('invalid_request_error', `No such object: '${id}'`, { code: 'resource_missing', param }));
  }
}

const positionsOf = new WeakMap<readonly Stored[], Map<string, number>>();

/** Each object's index in a list (built once per list: the sorted lists are kept until the objects change). */
function positions(list: readonly Stored[]): Map<string, number> {
  let m = positionsOf.get(list);
  if (m === undefined) {
    m = new Map(list.map((s, i) => [s.obj.id, i]));
    positionsOf.set(list, m);
  }
  return m;
}

/** Start a fake (see {@link StripeFake}). */
export async function startStripeFake(options: StripeFakeOptions = {}): Promise<StripeFake> {
  return new StripeFake(options).start();
}
