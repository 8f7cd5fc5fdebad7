/**
 * The shared conformance suite (test/conformance.ts) on the Stripe source:
 * the real SDK against the Stripe-like fake, plans loaded from a job file.
 * Resources: the read's keep-alive connections to the fake.
 */
import { getConnector } from '../../../connectors/index.js';
import { loadJob } from '../../../lib/config/index.js';
import type { Row } from '../../../lib/types.js';
import { describeConnectorConformance } from '../../conformance.js';
import { StripeFake, type StripeObject } from '../../fakes/stripe.js';
import { stripeProject, type StripeProject } from './helpers.js';

const fake = new StripeFake();
let p: StripeProject;
let seeded: StripeObject[] = [];
let more: string[] = [];

const asRow = (o: StripeObject, deleted = false): Row => ({ ...o, _dativo_deleted: deleted });

describeConnectorConformance('stripe', {
  before: async () => {
    await fake.start();
    p = await stripeProject(fake, 'stripe-conf');
    await p.job();
  },
  after: async () => {
    await fake.close();
    await p?.cleanup();
  },
  connector: () => getConnector('stripe'),
  makePlan: async () => {
    await p.job();
    return loadJob(p.p('job.yaml'), { cwd: p.dir });
  },
  seed: async () => {
    fake.reset();
    seeded = fake.seed('customers', 230, { perSecond: 23 });
    more = [];
  },
  get expectedRows(): Row[] {
    return seeded.map((o) => asRow(o));
  },
  seedMore: async () => {
    fake.advance(10);
    more = [fake.create('customers').id, fake.create('customers').id];
    fake.update('customers', seeded[3]!.id, { email: 'changed@example.com' });
    more.push(seeded[3]!.id);
    fake.advance(5);
  },
  get moreRows(): Row[] {
    return more.map((id) => ({ id }));
  },
  seedMany: async () => {
    fake.reset();
    fake.seed('customers', 1000);
  },
  badCheck: {
    makePlan: async () => {
      await p.job({ key: 'sk_test_unknown_key_0000' });
      return loadJob(p.p('job.yaml'), { cwd: p.dir });
    },
    code: 'AUTH_FAILED',
  },
  incremental: { kind: 'cursor', field: 'created', cursorKind: 'timestamp', primaryKey: ['id'] },
  // Sockets an earlier read closed reach the server's 'close' a moment later: let them.
  resourcesOpen: async () => {
    await new Promise((r) => setTimeout(r, 50));
    return fake.openConnections();
  },
});
