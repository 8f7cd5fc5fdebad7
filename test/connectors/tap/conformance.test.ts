/**
 * The shared conformance suite (test/conformance.ts) on the Singer and the
 * Airbyte connectors, each driving its fake (test/fakes/singer-tap.mjs,
 * airbyte-source.mjs) as a real child process. State comes from the
 * stream's checkpoint() (the tap's own STATE); the resources probed are the
 * tap processes and their private temp folders.
 */
import { getConnector } from '../../../connectors/index.js';
import type { ErrorCode } from '../../../lib/errors.js';
import { describeConnectorConformance } from '../../conformance.js';
import { fakeRecord, range, tapProject, type Protocol, type TapProject } from './helpers.js';

function conformance(protocol: Protocol, bad: { config: Record<string, unknown>; objects: string[]; code: ErrorCode }): void {
  let p: TapProject;
  let count = 5;
  const job = (name: string, config: Record<string, unknown>, objects: string[]): Promise<string> => p.job(name, { protocol, config, objects });
  describeConnectorConformance(protocol, {
    before: async () => {
      p = await tapProject(`${protocol}-conf`);
    },
    after: () => p.cleanup(),
    connector: () => getConnector(protocol),
    makePlan: async () => p.plan(await job('conf', { streams: { customers: count, orders: 3 }, batch: count > 1000 ? 500 : 2 }, ['customers'])),
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
    badCheck: { makePlan: async () => p.plan(await job('conf-bad', bad.config, bad.objects)), code: bad.code },
    incremental: { kind: 'files' },
    resourcesOpen: () => p.resourcesOpen(),
  });
}

// Singer has no check command: check() discovers, and a stream missing from the catalog fails.
conformance('singer', { config: { streams: { customers: 5 } }, objects: ['no_such_stream'], code: 'SOURCE_NOT_FOUND' });
// Airbyte's check answers FAILED for this key.
conformance('airbyte', { config: { api_key: 'bad', streams: { customers: 5 } }, objects: ['customers'], code: 'CONFIG_INVALID' });
