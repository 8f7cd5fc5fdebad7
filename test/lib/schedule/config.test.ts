import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadRunner } from '../../../lib/schedule/config.js';
import { DativoError } from '../../../lib/errors.js';
import { ORDERS_ASSET, ordersJob, project, type Project } from '../cli/helpers.js';

let pr: Project;

before(async () => {
  pr = await project('runner-config');
  await pr.write('jobs/asset.yaml', ORDERS_ASSET);
  await pr.write('jobs/a.yaml', ordersJob());
  await pr.write('jobs/b.yaml', ordersJob().replace('tenant_id: t1', 'tenant_id: t2').replace('state/job.json', 'state/b.json'));
  // Valid YAML, invalid job: unknown key and a bad mode.
  await pr.write('jobs/broken.yaml', ordersJob({ mode: 'warn' }).replace('schema_validation_mode: warn', 'schema_validation_mode: loose\nsourse: {}'));
});
after(() => pr.cleanup());

async function problemsOf(text: string): Promise<{ key: string; message: string }[]> {
  const f = await pr.write(`r-${Math.random().toString(36).slice(2)}.yaml`, text);
  const err = await loadRunner(f, { cwd: pr.dir, env: {} }).then(
    () => assert.fail('expected CONFIG_INVALID'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DativoError);
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.exitCode, 3);
  for (const p of err.problems) assert.equal(p.file, f);
  return err.problems.map(({ key, message }) => ({ key, message }));
}

describe('runner.yaml', () => {
  it('loads schedules with their jobs, triggers, retry policies and defaults', async () => {
    const f = await pr.write(
      'runner.yaml',
      `concurrency_per_tenant: 2
max_concurrent_runs: 3
retry_policy: {max_retries: 4, delay_seconds: 1}
timeout_seconds: 600
schedules:
  - name: a_hourly
    config: jobs/a.yaml
    cron: "0 * * * *"
    timezone: Europe/Berlin
    tags: {tier: gold}
    retry_policy: {delay_seconds: 2, backoff_factor: 3, max_delay_seconds: 60, retry_on_partial: true}
  - name: b_every_5m
    config: jobs/b.yaml
    interval_seconds: 300
    enabled: false
    timeout_seconds: 30
`,
    );
    const r = await loadRunner(f, { cwd: pr.dir, env: {} });
    assert.deepEqual(r.skipped, []);
    assert.equal(r.concurrencyPerTenant, 2);
    assert.equal(r.maxConcurrentRuns, 3);
    const [a, b] = r.schedules;
    assert.equal(a?.name, 'a_hourly');
    assert.equal(a?.config, pr.p('jobs/a.yaml'));
    assert.deepEqual(a?.trigger, { kind: 'cron', cron: '0 * * * *', timezone: 'Europe/Berlin' });
    assert.deepEqual(a?.tags, { tier: 'gold' });
    assert.equal(a?.job.tenant, 't1');
    assert.equal(a?.job.name, 'a');
    assert.deepEqual(a?.job.objects, ['orders']);
    assert.equal(a?.job.key, pr.p('jobs/state/job.json'));
    // Schedule keys over the top-level default over the built-in defaults.
    assert.deepEqual(a?.retry, { maxRetries: 4, delaySeconds: 2, backoffFactor: 3, maxDelaySeconds: 60, retryOnPartial: true });
    assert.equal(a?.timeoutSeconds, 600);
    assert.deepEqual(b?.trigger, { kind: 'interval', seconds: 300 });
    assert.equal(b?.enabled, false);
    assert.equal(b?.timeoutSeconds, 30);
    assert.deepEqual(b?.retry, { maxRetries: 4, delaySeconds: 1, backoffFactor: 2, maxDelaySeconds: 300, retryOnPartial: false });
  });

  it("a job file's retry_config sets the keys it gives, between the schedule's and the runner's", async () => {
    await pr.write('jobs/c.yaml', ordersJob({ lines: ['retry_config: {max_retries: 7, initial_delay_seconds: 11}'] }).replace('state/job.json', 'state/c.json'));
    const f = await pr.write(
      'layers.yaml',
      'retry_policy: {delay_seconds: 1, backoff_factor: 4, max_delay_seconds: 99}\nschedules:\n  - {name: c, config: jobs/c.yaml, interval_seconds: 60}\n  - {name: c2, config: jobs/c.yaml, interval_seconds: 60, retry_policy: {max_retries: 1}}\n',
    );
    const r = await loadRunner(f, { cwd: pr.dir, env: {} });
    assert.deepEqual(r.schedules[0]?.retry, { maxRetries: 7, delaySeconds: 11, backoffFactor: 4, maxDelaySeconds: 99, retryOnPartial: false });
    assert.deepEqual(r.schedules[1]?.retry, { maxRetries: 1, delaySeconds: 11, backoffFactor: 4, maxDelaySeconds: 99, retryOnPartial: false });
    // Both schedules run the one job: the same key, so never at once.
    assert.equal(r.schedules[0]?.job.key, r.schedules[1]?.job.key);
  });

  it("reads the Python tool's layout, also wrapped in runner:", async () => {
    for (const text of [
      `mode: orchestrated\norchestrator:\n  type: dagster\n  concurrency_per_tenant: 2\n  schedules:\n    - {name: a, config: jobs/a.yaml, cron: "*/15 * * * *", max_concurrent_runs: 1}\n`,
      `runner:\n  mode: orchestrated\n  orchestrator:\n    type: dagster\n    concurrency_per_tenant: 2\n    schedules:\n      - {name: a, config: jobs/a.yaml, cron: "*/15 * * * *", max_concurrent_runs: 3}\n`,
    ]) {
      const r = await loadRunner(await pr.write('py.yaml', text), { cwd: pr.dir, env: {} });
      assert.equal(r.concurrencyPerTenant, 2);
      assert.equal(r.schedules.length, 1);
      assert.equal(r.schedules[0]?.trigger.kind, 'cron');
      assert.deepEqual(r.schedules[0]?.trigger, { kind: 'cron', cron: '*/15 * * * *', timezone: 'UTC' });
    }
    const r = await loadRunner(pr.p('py.yaml'), { cwd: pr.dir, env: {} });
    assert.deepEqual(
      r.warnings.map((w) => w.key),
      ['runner.orchestrator.schedules[0].max_concurrent_runs'],
    );
  });

  it('lists every problem at once, each with its key and line: exit 3', async () => {
    const problems = await problemsOf(`schedules:
  - {name: bad_cron, config: jobs/a.yaml, cron: "61 * * * *"}
  - {name: bad_tz, config: jobs/a.yaml, cron: "0 * * * *", timezone: Mars/Olympus}
  - {name: dup, config: jobs/a.yaml, interval_seconds: 60}
  - {name: dup, config: jobs/b.yaml, interval_seconds: 60}
  - {name: gone, config: jobs/missing.yaml, interval_seconds: 60}
  - {name: both, config: jobs/a.yaml, interval_seconds: 60, cron: "0 * * * *"}
  - {name: neither, config: jobs/a.yaml}
  - {name: typo, config: jobs/a.yaml, interval_seconds: 60, retry_polcy: {}}
  - {name: slow, config: jobs/a.yaml, interval_seconds: 60, retry_policy: {delay_seconds: 90, max_delay_seconds: 30}}
  - {name: "has space", config: jobs/a.yaml, interval_seconds: -1}
  - {name: flat, config: jobs/a.yaml, interval_seconds: 60, retry_policy: {backoff_factor: 0.5}}
`);
    const byKey = new Map(problems.map((p) => [p.key, p.message]));
    assert.match(byKey.get('schedules[0].cron') ?? '', /invalid cron expression "61 \* \* \* \*": Invalid value for minute: 61 \(line 2\)/);
    assert.match(byKey.get('schedules[1].timezone') ?? '', /unknown time zone "Mars\/Olympus".*\(line 3\)/);
    assert.match(byKey.get('schedules[3].name') ?? '', /duplicate schedule name "dup" \(also at schedules\[2\]\) \(line 5\)/);
    assert.match(byKey.get('schedules[4].config') ?? '', /job file not found: .*jobs\/missing\.yaml \(line 6\)/);
    assert.match(byKey.get('schedules[5].cron') ?? '', /either cron or interval_seconds, not both/);
    assert.match(byKey.get('schedules[6].name') ?? '', /needs cron or interval_seconds/);
    assert.match(byKey.get('schedules[7].retry_polcy') ?? '', /unknown key \(did you mean "retry_policy"\?\)/);
    assert.match(byKey.get('schedules[8].retry_policy.delay_seconds') ?? '', /90 is above max_delay_seconds \(30\)/);
    assert.match(byKey.get('schedules[10].retry_policy.backoff_factor') ?? '', /must be >= 1/);
    assert.ok(byKey.has('schedules[9].name'), JSON.stringify(problems));
    assert.ok(byKey.has('schedules[9].interval_seconds'), JSON.stringify(problems));
    assert.equal(problems.length, 11, JSON.stringify(problems, null, 1));
  });

  it('an empty file, a missing list, unknown top-level keys and unset variables are problems', async () => {
    assert.deepEqual(await problemsOf(''), [{ key: '', message: 'runner file is empty' }]);
    const p = await problemsOf('concurency_per_tenant: 2\n');
    assert.ok(p.some((x) => x.key === 'concurency_per_tenant' && /did you mean "concurrency_per_tenant"/.test(x.message)), JSON.stringify(p));
    const v = await problemsOf('schedules:\n  - {name: a, config: "${JOBS}/a.yaml", interval_seconds: 60}\n');
    assert.ok(v.some((x) => x.key === 'schedules[0].config' && /\$\{JOBS\} is not set/.test(x.message)), JSON.stringify(v));
  });

  it('a job file that does not load is reported and its schedule skipped; the others load', async () => {
    const f = await pr.write(
      'mixed.yaml',
      'schedules:\n  - {name: ok, config: jobs/a.yaml, interval_seconds: 60}\n  - {name: broken, config: jobs/broken.yaml, interval_seconds: 60}\n',
    );
    const r = await loadRunner(f, { cwd: pr.dir, env: {} });
    assert.deepEqual(r.schedules.map((s) => s.name), ['ok']);
    assert.equal(r.skipped.length, 1);
    const s = r.skipped[0]!;
    assert.equal(s.name, 'broken');
    assert.equal(s.code, 'CONFIG_INVALID');
    assert.equal(s.at, 'schedules[1]');
    const keys = s.problems.map((p) => p.key).sort();
    assert.deepEqual(keys, ['schema_validation_mode', 'sourse']);
    for (const p of s.problems) assert.equal(p.file, pr.p('jobs/broken.yaml'));
  });

  it('${VAR} expands from the environment; job paths resolve against the runner folder', async () => {
    const f = await pr.write('sub/vars.yaml', 'schedules:\n  - {name: a, config: "${JOBS:-../jobs}/a.yaml", interval_seconds: 60}\n');
    const r = await loadRunner(f, { cwd: '/', env: {} });
    assert.equal(r.schedules[0]?.config, pr.p('jobs/a.yaml'));
  });
});
