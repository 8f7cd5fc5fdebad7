/**
 * The shared conformance suite (test/conformance.ts) on the Airbyte
 * connector, driving the fake tap (test/fakes/airbyte-tap.mjs) as a real
 * child process. State comes from the stream's checkpoint() (the source's own
 * STATE); the resources probed are the tap processes and their private
 * temp folders.
 */
import { getConnector } from '../../../connectors/index.js';
import { describeConnectorConformance } from '../../conformance.js';
import { fakeRecord, range, tapProject, type TapProject } from '../tap/helpers.js';

let p: TapProject;
let count = 5;
const job = async (objects = ['customers']): Promise<string> => p.job('conf', { protocol: 'airbyte', config: { streams: { customers: count, orders: 3 }, batch: count > 1000 ? 500 : 2 }, objects });

describeConnectorConformance('airbyte', {
  before: async () => {
    p = await tapProject('airbyte-conf');
  },
  after: () => p.cleanup(),
  connector: () => getConnector('airbyte'),
  makePlan: async () => p.plan(await job()),
  seed: async () => {
    count = 5;
  },
  expectedRows: range(1, 5).map((id) => fakeRecord('customers', id)),
  seedMore: async () => {
    count = 7;
  },
  moreRows: range(6, 7).map((id) => fakeRecord('customers', id)),
  seedMany: async () => {
    count = 200_000;
  },
  badCheck: {
    makePlan: async () => p.plan(await p.job('conf-bad', { protocol: 'airbyte', config: { api_key: 'bad', streams: { customers: 5 } } })),
    code: 'CONFIG_INVALID',
  },
  incremental: { kind: 'files' },
  resourcesOpen: () => p.resourcesOpen(),
});
