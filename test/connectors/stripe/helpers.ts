/**
 * Stripe test setup: a project folder with a job reading one object of the
 * Stripe-like fake (test/fakes/stripe.ts) into an Iceberg table of the
 * embedded catalog, run through `runJobFile` (the CLI's entry point) with a
 * logger whose lines the test reads back (test/connectors/api-helpers.ts).
 */
import type { StripeFake, StripeResourceName } from '../../fakes/stripe.js';
import { apiProject, type ApiJob, type ApiProject } from '../api-helpers.js';

export const TEST_KEY = 'sk_test_fake_4242';

export interface StripeJob extends ApiJob {
  object?: StripeResourceName | string;
  key?: string;
}

/** A project with the Stripe assets copied in and a job writer. */
export type StripeProject = ApiProject<StripeJob>;

export async function stripeProject(fake: StripeFake, prefix = 'stripe'): Promise<StripeProject> {
  return apiProject<StripeJob>({
    connector: 'stripe',
    assets: ['customers', 'charges', 'products', 'balance_transactions', 'subscriptions'],
    defaultObject: 'customers',
    url: fake.url,
    prefix,
    parts: (spec) => ({
      incremental: `{strategy: created, cursor_field: created, lag_seconds: ${spec.lag ?? 0}}`,
      credential: [`api_key: "${spec.key ?? TEST_KEY}"`],
    }),
  });
}
