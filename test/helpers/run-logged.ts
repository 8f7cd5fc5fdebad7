/**
 * Run a job file in-process as the CLI does (`runJobFile`), with a debug
 * logger whose JSON lines the test reads back.
 */
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/log.js';
import { runJobFile, type RunFileOptions } from '../../lib/run/file.js';
import type { RunSummary } from '../../lib/run/types.js';

/** The run's summary and every log line it wrote (parsed). */
export async function runLogged(file: string, opts: Omit<RunFileOptions, 'log'>): Promise<{ summary: RunSummary; logs: Record<string, unknown>[] }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const summary = await runJobFile(file, { ...opts, log: (plan) => createLogger({ level: 'debug', secrets: plan.secrets, destination: out }) });
  await new Promise((r) => setImmediate(r));
  const logs = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { summary, logs };
}
