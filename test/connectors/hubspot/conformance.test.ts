/**
 * The shared conformance suite (test/conformance.ts) on the HubSpot source:
 * the real SDK against the HubSpot-like fake, plans loaded from a job file.
 * Resources: the read's keep-alive connections to the fake.
 */
import { getConnector } from '../../../connectors/index.js';
import { loadJob } from '../../../lib/config/index.js';
import type { Row } from '../../../lib/types.js';
import { describeConnectorConformance } from '../../conformance.js';
import { HubSpotFake, type CrmObject } from '../../fakes/hubspot.js';
import { hubspotProject, type HubSpotProject } from './helpers.js';

const fake = new HubSpotFake();
let p: HubSpotProject;
let seeded: CrmObject[] = [];
let more: string[] = [];

const asRow = (o: CrmObject): Row => ({ id: o.id, email: o.properties['email'] ?? null, lastmodifieddate: o.properties['lastmodifieddate'] ?? null, _dativo_deleted: false });

describeConnectorConformance('hubspot', {
  before: async () => {
    await fake.start();
    p = await hubspotProject(fake, 'hubspot-conf');
    await p.job();
  },
  after: async () => {
    await fake.close();
    await p?.cleanup();
  },
  connector: () => getConnector('hubspot'),
  makePlan: async () => {
    await p.job();
    return loadJob(p.p('job.yaml'), { cwd: p.dir });
  },
  seed: async () => {
    fake.reset();
    // 23 contacts per modified millisecond: ties straddle every 200-result search page.
    seeded = fake.seed('contacts', 460, { perStamp: 23 });
    more = [];
  },
  get expectedRows(): Row[] {
    return seeded.map(asRow);
  },
  seedMore: async () => {
    fake.advance(10_000);
    more = [fake.create('contacts').id, fake.create('contacts').id];
    fake.update('contacts', seeded[3]!.id, { email: 'changed@example.com' });
    more.push(seeded[3]!.id);
    fake.advance(5_000);
  },
  get moreRows(): Row[] {
    return more.map((id) => ({ id }));
  },
  seedMany: async () => {
    fake.reset();
    fake.seed('contacts', 1000);
  },
  badCheck: {
    makePlan: async () => {
      await p.job({ token: 'pat-na1-unknown-9999' });
      return loadJob(p.p('job.yaml'), { cwd: p.dir });
    },
    code: 'AUTH_FAILED',
  },
  incremental: { kind: 'cursor', field: 'lastmodifieddate', cursorKind: 'timestamp', primaryKey: ['id'] },
  // Rows carry every asset property; the suite compares what identifies them.
  normalize: (row: Row) => ({
    id: row['id'],
    email: row['email'],
    lastmodifieddate: row['lastmodifieddate'] instanceof Date ? row['lastmodifieddate'].toISOString() : row['lastmodifieddate'],
    _dativo_deleted: row['_dativo_deleted'],
  }),
  // Sockets an earlier read closed reach the server's 'close' a moment later: let them.
  resourcesOpen: async () => {
    await new Promise((r) => setTimeout(r, 50));
    return fake.openConnections();
  },
});
