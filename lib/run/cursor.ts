/**
 * The cursor side of one object's run: the tracker (tie-key protocol, or
 * the window a source reports), what a run says about its window, and the
 * warnings of the cursor protocol (docs/configuration.md "Incremental sync").
 */
import type { Connector, CursorWindow } from '../connector.js';
import { DativoError } from '../errors.js';
import type { Logger } from '../log.js';
import { CURSORLESS_STRATEGIES, type JobPlan, type SourceObjectSpec } from '../plan.js';
import { MAX_TIE_KEYS, type CursorTracker } from '../records/cursor.js';
import { track, type TrackStream } from '../stages/track.js';
import type { CursorState } from '../types.js';

const DAY_MICROS = 86_400_000_000n;

/**
 * The cursor tracker of an incremental object, or undefined when the job
 * tracks no cursor (full refresh, file-based incremental). Timestamp and
 * date cursors are capped at run start minus the lag (CursorTrackerOptions.cap).
 */
export function cursorTracker(plan: JobPlan, connector: Connector, object: SourceObjectSpec, saved: CursorState | undefined, started: Date, log: Logger): TrackStream | undefined {
  const incremental = plan.source.incremental;
  const cursorField = incremental?.cursorField;
  if (!incremental || !cursorField || CURSORLESS_STRATEGIES.has(incremental.strategy)) return undefined;
  const field = plan.asset.fields.find((f) => f.name === cursorField);
  if (!field) {
    throw new DativoError('CONFIG_INVALID', `cursor field "${cursorField}" is not a column of asset ${plan.asset.name}`, {
      context: { file: plan.file, key: 'source.incremental.cursor_field', object: object.name },
    });
  }
  const primaryKey = connector.primaryKey?.(object, plan) ?? plan.asset.primaryKey;
  const capMicros = BigInt(started.getTime()) * 1000n - BigInt(Math.round(incremental.lagSeconds * 1e6));
  const kind = field.type.kind;
  const cap = kind === 'timestamp' ? capMicros : kind === 'date' ? Number((capMicros - (((capMicros % DAY_MICROS) + DAY_MICROS) % DAY_MICROS)) / DAY_MICROS) : undefined;
  const keyFields = plan.asset.fields.filter((f) => f.name === cursorField || primaryKey.includes(f.name));
  if (saved?.overflow !== undefined) {
    log.warn(
      { event_type: 'cursor_ties_rewritten', cursor_field: cursorField, value: saved.value, count: saved.overflow },
      `${saved.overflow} row(s) shared cursor value ${saved.value}, more than the ${MAX_TIE_KEYS} tie keys kept: this run writes the rows at that value again (never lost; possibly duplicated)`,
    );
  }
  return track({ field: cursorField, kind, primaryKey, keyFields, ...(saved ? { saved } : {}), ...(cap !== undefined ? { cap } : {}) });
}

/** A window source reported what it reads: hand it to the tracker and say it in the log. */
export function windowReported(tracker: CursorTracker, w: CursorWindow, saved: CursorState | undefined, log: Logger): void {
  tracker.window(w);
  const first = saved === undefined;
  const from = w.from === undefined ? 'the beginning' : `${w.from} (${w.fromInclusive === false ? 'exclusive' : 'inclusive'})`;
  const to = w.to === undefined ? 'nothing new' : `${w.to} (${w.upper})`;
  log.info(
    { event_type: 'cursor_window', first_run: first, cursor_field: w.field, from: w.from ?? null, to: w.to ?? null, upper: w.upper, basis: w.basis },
    `${first ? 'first run: ' : ''}reading ${w.field} from ${from} to ${to}: ${w.basis}`,
  );
  // Rows behind the saved cursor that were not there last time: moved backwards, or committed later than the lag.
  if (saved?.below !== undefined && w.behind !== undefined && w.behind > saved.below) {
    const n = w.behind - saved.below;
    log.warn(
      { event_type: 'cursor_moved_backwards', cursor_field: w.field, count: n, value: saved.value },
      `${n} more row(s) have ${w.field} ${saved.upper === 'inclusive' ? 'at or ' : ''}below the saved cursor ${saved.value} than the last run counted: their cursor moved backwards, or they were committed later than lag_seconds allows; incremental runs do not read them (a full refresh does)`,
    );
  }
}

/**
 * After the read: a tie-key source's first run says what it read (a window
 * source said so when it started), and a first run that read nothing from a
 * non-empty source says why.
 */
export function explainWindow(tracker: CursorTracker, saved: CursorState | undefined, cursor: CursorState | undefined, rowsRead: number, plan: JobPlan, log: Logger): void {
  if (saved !== undefined) return;
  const w = tracker.reportedWindow;
  const lookback = plan.source.incremental?.lookbackDays ?? 0;
  if (w === undefined) {
    log.info(
      { event_type: 'cursor_window', first_run: true, cursor_field: tracker.field, from: null, to: cursor?.value ?? null, lookback_days: lookback },
      `first run: read ${tracker.field} from the ${lookback > 0 ? `last ${lookback} day(s)` : 'beginning'} to ${cursor?.value ?? 'the end (no row had a cursor)'}`,
    );
    return;
  }
  if (rowsRead > 0 || w.rows === undefined || w.rows === 0) return;
  const reasons: string[] = [];
  if ((w.behind ?? 0) > 0) reasons.push(`${w.behind} are older than ${w.from} (lookback_days: ${lookback})`);
  if ((w.ahead ?? 0) > 0) reasons.push(`${w.ahead} are at or after the watermark ${w.to ?? w.from ?? ''} (${w.basis})`);
  log.warn(
    { event_type: 'first_run_empty', cursor_field: w.field, source_rows: w.rows, behind: w.behind ?? null, ahead: w.ahead ?? null, from: w.from ?? null, to: w.to ?? null },
    `first run read 0 of the ${w.rows} row(s) with a ${w.field}: ${reasons.join('; ') || 'none falls in the window'}${(w.behind ?? 0) > 0 ? '; remove lookback_days from the job to read the whole history' : ''}${(w.ahead ?? 0) > 0 ? '; rows newer than the watermark are read by a later run' : ''}`,
  );
}
