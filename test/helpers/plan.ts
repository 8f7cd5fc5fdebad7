/**
 * A JobPlan as `loadJob` returns it, for tests that build one by hand: a
 * local target they never write to, no retries, strict validation, a state
 * file and reject folder that do not exist; the test gives the source and
 * asset and overrides the rest.
 */
import type { JobPlan } from '../../lib/plan.js';

export function testPlan(p: Pick<JobPlan, 'source' | 'asset'> & Partial<JobPlan>): JobPlan {
  return {
    file: '',
    name: 'test_job',
    tenantId: 'test',
    mode: 'self_hosted',
    target: {
      type: 'local',
      warehouse: 'file:///nonexistent',
      catalog: { type: 'none' },
      namespace: 'default',
      table: 'test',
      partitioning: [],
      targetFileSizeBytes: 128 * 1024 * 1024,
      rowGroupRows: 100_000,
      compression: 'zstd',
    },
    syncMode: 'full_refresh',
    validationMode: 'strict',
    rejectDir: '/nonexistent',
    state: { kind: 'file', path: '/nonexistent/state.json' },
    retry: { maxRetries: 0, initialDelaySeconds: 1, maxDelaySeconds: 1, backoffMultiplier: 2, retryableExitCodes: [2] },
    logging: { level: 'info', redaction: true },
    secrets: [],
    ...p,
  };
}
