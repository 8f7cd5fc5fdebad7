/**
 * The Stripe objects the connector syncs: each one's list endpoint (through
 * the SDK's typed resource), its object type (`data.object.object` of its
 * events) and whether the Events API reports its updates and deletions.
 */
import type Stripe from 'stripe';

/** One page of a Stripe list, as every SDK list method answers. */
export interface StripePage {
  data: Record<string, unknown>[];
  has_more: boolean;
  /** Set by the SDK (non-enumerable): status and headers of the answer. */
  lastResponse?: { headers?: Record<string, string | undefined>; statusCode?: number; requestId?: string };
}

/** Parameters of one list call. */
export interface ListParams {
  limit: number;
  starting_after?: string;
  created?: { gte?: number; gt?: number; lt?: number };
  types?: string[];
}

type ListFn = (s: Stripe, params: ListParams, options: Stripe.RequestOptions) => Promise<StripePage>;

/** What the connector knows of one object. */
export interface StripeObjectSpec {
  /** Name in `source.objects` and in state, e.g. `payment_intents`. */
  name: string;
  /** The API's object type, e.g. `payment_intent` (`data.object.object` of its events). */
  type: string;
  /** Path of its list, for messages, e.g. `/v1/payment_intents`. */
  path: string;
  /** False when no event reports a change (balance transactions never change). */
  events: boolean;
  list: ListFn;
}

const asPage = (p: unknown): Promise<StripePage> => p as Promise<StripePage>;

/** Every object, by name. Adding one: an entry here and an asset under schemas/stripe/v1.0/. */
export const STRIPE_OBJECTS: Readonly<Record<string, StripeObjectSpec>> = Object.freeze({
  customers: { name: 'customers', type: 'customer', path: '/v1/customers', events: true, list: (s, p, o) => asPage(s.customers.list(p as Stripe.CustomerListParams, o)) },
  charges: { name: 'charges', type: 'charge', path: '/v1/charges', events: true, list: (s, p, o) => asPage(s.charges.list(p as Stripe.ChargeListParams, o)) },
  invoices: { name: 'invoices', type: 'invoice', path: '/v1/invoices', events: true, list: (s, p, o) => asPage(s.invoices.list(p as Stripe.InvoiceListParams, o)) },
  subscriptions: {
    name: 'subscriptions',
    type: 'subscription',
    path: '/v1/subscriptions',
    events: true,
    // Canceled subscriptions are left out of the list unless asked for.
    list: (s, p, o) => asPage(s.subscriptions.list({ ...(p as Stripe.SubscriptionListParams), status: 'all' }, o)),
  },
  payment_intents: { name: 'payment_intents', type: 'payment_intent', path: '/v1/payment_intents', events: true, list: (s, p, o) => asPage(s.paymentIntents.list(p as Stripe.PaymentIntentListParams, o)) },
  products: { name: 'products', type: 'product', path: '/v1/products', events: true, list: (s, p, o) => asPage(s.products.list(p as Stripe.ProductListParams, o)) },
  prices: { name: 'prices', type: 'price', path: '/v1/prices', events: true, list: (s, p, o) => asPage(s.prices.list(p as Stripe.PriceListParams, o)) },
  refunds: { name: 'refunds', type: 'refund', path: '/v1/refunds', events: true, list: (s, p, o) => asPage(s.refunds.list(p as Stripe.RefundListParams, o)) },
  balance_transactions: {
    name: 'balance_transactions',
    type: 'balance_transaction',
    path: '/v1/balance_transactions',
    events: false,
    list: (s, p, o) => asPage(s.balanceTransactions.list(p as Stripe.BalanceTransactionListParams, o)),
  },
});

/** Names of every object, sorted. */
export const STRIPE_OBJECT_NAMES: readonly string[] = Object.freeze(Object.keys(STRIPE_OBJECTS).sort());

/** Object names by API object type (`customer` → `customers`). */
export const OBJECT_BY_TYPE: ReadonlyMap<string, string> = new Map(Object.values(STRIPE_OBJECTS).map((o) => [o.type, o.name]));

/** The events list (`/v1/events`). */
export const listEvents: ListFn = (s, p, o) => asPage(s.events.list(p as Stripe.EventListParams, o));
