/**
 * Run a job file through `runJobFile` (the CLI's entry point) with a debug
 * logger whose JSON lines the test reads back.
 */
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/log.js';
import { runJobFile } from '../../lib/run/file.js';
import type { RunSummary } from '../../lib/run/types.js';

export async function runWithLogs(file: string, cwd: string): Promise<{ summary: RunSummary; logs: Record<string, unknown>[] }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const summary = await runJobFile(file, { cwd, log: (plan) => createLogger({ level: 'debug', secrets: plan.secrets, destination: out }) });
  await new Promise((r) => setImmediate(r));
  const logs = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { summary, logs };
}
