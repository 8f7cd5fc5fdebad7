/**
 * `dativo` — a thin CLI over the same functions a library user calls.
 *
 *   dativo run <job.yaml...> [--json] [--log-level L] [--secrets-dir D] [--mode self_hosted|cloud]
 *   dativo validate <job.yaml...> [--secrets-dir D]
 *   dativo discover <job.yaml> [--write] [--secrets-dir D]
 *   dativo state show <job.yaml>
 *   dativo state reset <job.yaml> [--object NAME]
 *   dativo tables list [<job.yaml> | --warehouse DIR]
 *   dativo tables show <namespace.table> [<job.yaml> | --warehouse DIR]
 *   dativo rejects replay <job.yaml> [--run ID] [--object NAME] [--json]
 *   dativo tables files <namespace.table> [<job.yaml> | --warehouse DIR] [--sql]
 *   dativo tables gc <namespace.table> [<job.yaml> | --warehouse DIR] [--older-than 1d] [--dry-run]
 *                    [--expire-snapshots-older-than 7d] [--retain-last N]
 *   dativo schedule <runner.yaml> [--redis URL [--prefix P] [--redis-wait-seconds N]] [--log-level L] [--secrets-dir D] [--mode M]
 *   dativo worker --redis URL [--tenants a,b] [--concurrency N] [--lock-seconds N] [--grace-seconds N] [--prefix P]
 *   dativo runs [<runner.yaml>] [--tenant T] [--job J] [--limit N] [--run-log FILE | --redis URL] [--json]
 *   dativo dagster export <runner.yaml> [-o definitions.py]
 *
 * Exit codes: 0 ok, 1 partial, 2 failed (retryable), 3 failed (permanent).
 */
import { parseArgs } from 'node:util';
import { commands } from './commands.js';
import type { CliIO } from './io.js';
import { ExitCode } from '../errors.js';
import { LOG_LEVELS } from '../config/schema.js';

const USAGE = `usage:
  dativo run <job.yaml...> [--json] [--log-level L] [--secrets-dir D] [--mode self_hosted|cloud]
  dativo validate <job.yaml...> [--json] [--secrets-dir D] [--mode M]
  dativo discover <job.yaml> [--write] [--secrets-dir D]
  dativo state show <job.yaml> [--secrets-dir D]
  dativo state reset <job.yaml> [--object NAME] [--secrets-dir D]
  dativo tables list [<job.yaml>] [--warehouse DIR] [--json]
  dativo tables show <namespace.table> [<job.yaml>] [--warehouse DIR] [--json]
  dativo rejects replay <job.yaml> [--run ID] [--object NAME] [--json] [--secrets-dir D]
  dativo tables files <namespace.table> [<job.yaml>] [--warehouse DIR] [--json | --sql]
  dativo tables gc <namespace.table> [<job.yaml>] [--warehouse DIR] [--older-than 1d] [--dry-run]
                   [--expire-snapshots-older-than 7d] [--retain-last N] [--json]
  dativo schedule <runner.yaml> [--redis URL] [--log-level L] [--secrets-dir D] [--mode M]
  dativo worker --redis URL [--tenants a,b] [--concurrency N] [--lock-seconds N] [--grace-seconds N]
                [--log-level L] [--secrets-dir D] [--mode M]
  dativo runs [<runner.yaml>] [--tenant T] [--job J] [--limit N] [--run-log FILE | --redis URL] [--json]
  (with --redis: [--prefix P] [--redis-wait-seconds N])
  dativo dagster export <runner.yaml> [-o definitions.py] [--secrets-dir D]

exit codes: 0 ok, 1 partial (rejects in warn mode, some objects failed),
            2 failed and retryable, 3 failed permanently (config, auth, strict validation)
`;

export async function main(argv: string[], io: CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        'log-level': { type: 'string' },
        'secrets-dir': { type: 'string' },
        mode: { type: 'string', default: 'self_hosted' },
        object: { type: 'string' },
        warehouse: { type: 'string' },
        write: { type: 'boolean', default: false },
        run: { type: 'string' },
        'older-than': { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        'expire-snapshots-older-than': { type: 'string' },
        'retain-last': { type: 'string' },
        sql: { type: 'boolean', default: false },
        tenant: { type: 'string' },
        job: { type: 'string' },
        limit: { type: 'string' },
        'run-log': { type: 'string' },
        output: { type: 'string', short: 'o' },
        redis: { type: 'string' },
        prefix: { type: 'string' },
        'redis-wait-seconds': { type: 'string' },
        tenants: { type: 'string' },
        concurrency: { type: 'string' },
        'lock-seconds': { type: 'string' },
        'grace-seconds': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return ExitCode.PERMANENT;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    io.stdout.write(USAGE);
    return ExitCode.OK;
  }
  if (command === undefined) {
    // A mistake, not a request for help: usage goes where errors go.
    io.stderr.write(USAGE);
    return ExitCode.PERMANENT;
  }
  if (values.mode !== 'self_hosted' && values.mode !== 'cloud') {
    io.stderr.write(`--mode must be self_hosted or cloud, got "${values.mode}"\n`);
    return ExitCode.PERMANENT;
  }
  let logLevel = values['log-level'];
  if (logLevel !== undefined) {
    // Same names (and aliases) as a job's `logging.level`.
    const level = LOG_LEVELS[logLevel.toLowerCase()];
    if (level === undefined) {
      io.stderr.write(`--log-level must be one of ${Object.keys(LOG_LEVELS).join(', ')}, got "${logLevel}"\n`);
      return ExitCode.PERMANENT;
    }
    logLevel = level;
  }
  const handler = commands[command];
  if (!handler) {
    io.stderr.write(`unknown command "${command}"\n${USAGE}`);
    return ExitCode.PERMANENT;
  }
  return handler(rest, {
    json: values.json ?? false,
    logLevel,
    secretsDir: values['secrets-dir'],
    mode: values.mode,
    object: values.object,
    warehouse: values.warehouse,
    write: values.write ?? false,
    run: values.run,
    tables: {
      ...(values['older-than'] !== undefined ? { olderThan: values['older-than'] } : {}),
      dryRun: values['dry-run'] ?? false,
      ...(values['expire-snapshots-older-than'] !== undefined ? { expireSnapshotsOlderThan: values['expire-snapshots-older-than'] } : {}),
      ...(values['retain-last'] !== undefined ? { retainLast: values['retain-last'] } : {}),
      sql: values.sql ?? false,
    },
    schedule: {
      ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
      ...(values.job !== undefined ? { job: values.job } : {}),
      ...(values.limit !== undefined ? { limit: values.limit } : {}),
      ...(values['run-log'] !== undefined ? { runLog: values['run-log'] } : {}),
      ...(values.output !== undefined ? { output: values.output } : {}),
      ...(values.redis !== undefined ? { redis: values.redis } : {}),
      ...(values.prefix !== undefined ? { prefix: values.prefix } : {}),
      ...(values['redis-wait-seconds'] !== undefined ? { redisWaitSeconds: values['redis-wait-seconds'] } : {}),
      ...(values.tenants !== undefined ? { tenants: values.tenants } : {}),
      ...(values.concurrency !== undefined ? { concurrency: values.concurrency } : {}),
      ...(values['lock-seconds'] !== undefined ? { lockSeconds: values['lock-seconds'] } : {}),
      ...(values['grace-seconds'] !== undefined ? { graceSeconds: values['grace-seconds'] } : {}),
    },
  }, io);
}
