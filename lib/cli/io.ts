/** What every CLI command gets: its streams and the parsed global options. */

export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Show a live progress line on stderr. */
  isTTY: boolean;
  signal?: AbortSignal;
  /**
   * Register what a second SIGINT/SIGTERM does. Without a handler the
   * process exits at once (2); `dativo schedule` stops its runs instead.
   */
  onForce?: (handler: () => void) => void;
}

export interface CliOptions {
  json: boolean;
  logLevel: string | undefined;
  secretsDir: string | undefined;
  mode: 'self_hosted' | 'cloud';
  object: string | undefined;
  warehouse: string | undefined;
  /** `discover --write`: also write the asset to the job's asset file (never over an existing one). */
  write: boolean;
  /** `rejects replay --run ID`: replay only the reject files of that run. */
  run?: string | undefined;
  /** `tables gc` / `tables files` options (raw text; parsed by lib/cli/tables.ts). */
  tables?: { olderThan?: string; dryRun?: boolean; expireSnapshotsOlderThan?: string; retainLast?: string; sql?: boolean };
  /** `runs` filters, `dagster export -o`, the `--redis` options of schedule/worker/runs (raw text; checked by lib/cli/schedule.ts). */
  schedule?: {
    tenant?: string;
    job?: string;
    limit?: string;
    runLog?: string;
    output?: string;
    redis?: string;
    prefix?: string;
    redisWaitSeconds?: string;
    tenants?: string;
    concurrency?: string;
    lockSeconds?: string;
    graceSeconds?: string;
  };
}
