/**
 * When a schedule fires next: croner for cron expressions in their time
 * zone, and intervals on multiples of `interval_seconds` since the Unix epoch
 * (a restart, or a second scheduler, keeps the same rhythm). Plain functions
 * of a time, so tests need no clock.
 */
import { Cron } from 'croner';
import type { Trigger } from './config.js';

const crons = new Map<string, Cron>();

function cronOf(cron: string, timezone: string): Cron {
  const key = `${timezone}\u0000${cron}`;
  let c = crons.get(key);
  if (c === undefined) {
    // Paused: croner only computes dates here, our scheduler owns the timers.
    c = new Cron(cron, { timezone, paused: true });
    crons.set(key, c);
  }
  return c;
}

/** The first fire time strictly after `afterMs` (ms since the epoch); undefined when a cron never fires again. */
export function nextFire(trigger: Trigger, afterMs: number): number | undefined {
  if (trigger.kind === 'interval') {
    const every = Math.round(trigger.seconds * 1000);
    return (Math.floor(afterMs / every) + 1) * every;
  }
  return cronOf(trigger.cron, trigger.timezone).nextRun(new Date(afterMs))?.getTime();
}

/** A human description for logs: `cron "0 * * * *" (Europe/Berlin)` or `every 300 s`. */
export function describeTrigger(trigger: Trigger): string {
  return trigger.kind === 'interval' ? `every ${trigger.seconds} s` : `cron "${trigger.cron}" (${trigger.timezone})`;
}
