/**
 * dativo-ingest public API. Everything the CLI does goes through these
 * exports, so a library user can do the same — or compose the stages by hand
 * with their own Transforms in `stream.pipeline`.
 */
export { loadJob, loadAsset } from './config/index.js';
export { runJob, newRunId, tableFields, type RunOptions, type RunSummary, type ObjectSummary, type Progress } from './run.js';
export { runJobFile, type RunFileOptions } from './run/file.js';
export { fileJobLock, jobLockPath, type JobLock, type HeldLock, type LockHolder } from './lock.js';
export { replayRejects, type ReplayOptions, type ReplaySummary, type ReplayObjectSummary } from './replay.js';

// Stages
export { validate } from './stages/validate.js';
export { track } from './stages/track.js';
export { batch } from './stages/batch.js';
export { parquetSink } from './stages/parquet-sink.js';
export { createRejectWriter } from './stages/rejects.js';

// Storage
export { openStorage } from './storage/index.js';
export type { Storage, WriteHandle, WriteOptions } from './storage/types.js';

// State
export { openStateStore, type JobState, type StateStore } from '../state/index.js';

// Connectors
export { getConnector, listConnectors } from '../connectors/index.js';
export { COMMON_SOURCE_KEYS } from './connector.js';
export type {
  Connector,
  ConnectorDescriptor,
  DeclaredObject,
  ObjectsContext,
  ReadContext,
  Reject,
  RejectSink,
  SourceStream,
  DiscoveredObject,
  DiscoveredColumn,
} from './connector.js';

// Network: retry policy, rate limiter, HTTP layer, pagination
export { DEFAULT_RETRY_POLICY, definePolicy, backoffDelay, parseRetryAfter, classifyFailure, failureInfo, retry, RetryBudget, retryOverrides, systemClock } from './retry.js';
export type { RetryPolicy, RetryDecision, RetryOptions, RetryRunOptions, RetryAfter, Clock, Jitter, FailureInfo } from './retry.js';
export { createLimiter, acquireLimiter, rateLimitsFrom, DEFAULT_CONCURRENCY, type Limiter, type RateLimits, type LimiterOptions } from './limiter.js';
export { HttpClient, ApiCallCounter, withPolicy, httpError, sdkError, apiErrorMessage, DEFAULT_HTTP_TIMEOUT_MS } from './http.js';
export type { HttpClientOptions, HttpEndpoint, HttpFactory, HttpResponse, RequestOptions, WithPolicyOptions } from './http.js';
export { networkOf, requestPolicy } from './run/network.js';
export { Paginator, pages, type PaginatorOptions, type PageToken } from './paginate.js';

// Schedules: runner.yaml, the exit-code retry policy, the in-process scheduler, the run log
export { loadRunner, RUNNER_DEFAULTS, type RunnerConfig, type Schedule, type ScheduleJob, type SkippedSchedule, type Trigger, type RunnerLoadOptions } from './schedule/config.js';
export { decideRetry, retryDelayMs, outcomeOf, DEFAULT_RUN_RETRY, type RunRetryPolicy, type RunOutcome, type RunDecision } from './schedule/policy.js';
export { Scheduler, type SchedulerOptions, type SchedulerConfig } from './schedule/scheduler.js';
export { fileRunLog, defaultRunLogPath, type RunLog, type RunRecord, type RunStatus, type RunLogFilter } from './schedule/run-log.js';
export { dativoRunCommand, type ChildCommand } from './schedule/child.js';
export { renderDefinitions } from './schedule/dagster.js';

// Model, errors, logging
export * from './types.js';
export type * from './plan.js';
export { DativoError, ERROR_CODES, ExitCode, toDativoError, isDativoError, exitCodeOf, TRANSIENT_NETWORK_CODES, errorChain, transientCodeOf } from './errors.js';
export type { ErrorCode, Disposition, ConfigProblem, ErrorContext } from './errors.js';
export { createLogger, silentLogger, redactDeep, type Logger } from './log.js';
export { stringifyJson } from './json.js';

// Iceberg
export { openCatalog, ensureTable, commitFiles, findDativoSnapshot, latestSummary } from './iceberg/index.js';
export type { Catalog, LoadedTable, TableIdent, TableMetadata, CommitResult, CommitFilesOptions } from './iceberg/index.js';
