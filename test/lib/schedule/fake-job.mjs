// A stand-in for `dativo run <job> --json` in scheduler tests, fast to start (plain JS).
//   node fake-job.mjs <dir> <name> <step,step,...>
// Attempt n (0-based, counted in <dir>/<name>.count) does step n (the last repeats):
//   0|1|2|3   print a summary with that exit_code (rows_written 10 × (n+1)) and exit with it
//   crash     exit 1 without a summary (an uncaught error)
//   wait      exit 0 once <dir>/<name>.<n>.release exists
//   hang      never end; SIGTERM → summary ABORTED, exit 2
//   stubborn  never end, ignore SIGTERM (only SIGKILL ends it)
//   sleepMS   exit 0 after MS milliseconds (sleep300)
// Before its step it writes <dir>/<name>.<n>.started (its pid) and appends "start <name> <n>" to <dir>/events.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, name, stepsArg] = process.argv.slice(2);
const steps = stepsArg.split(',');
const countFile = join(dir, `${name}.count`);
const n = existsSync(countFile) ? Number(readFileSync(countFile, 'utf8')) : 0;
writeFileSync(countFile, String(n + 1));
const step = steps[Math.min(n, steps.length - 1)];
const summary = (code, extra = {}) => process.stdout.write(`${JSON.stringify({ run_id: `fake-${name}-${n}`, exit_code: code, objects: [{ name: 'o', rows_written: 10 * (n + 1), rows_rejected: code === 1 ? 1 : 0 }], ...extra })}\n`);
const end = (code) => {
  appendFileSync(join(dir, 'events'), `end ${name} ${n}\n`);
  process.exit(code);
};
process.stderr.write(`${JSON.stringify({ level: 30, msg: 'fake job started', job: name, attempt: n })}\n`);

if (step === 'hang') {
  process.on('SIGTERM', () => {
    summary(2, { error: { code: 'ABORTED', message: 'received SIGTERM' } });
    end(2);
  });
} else if (step === 'stubborn') {
  process.on('SIGTERM', () => appendFileSync(join(dir, 'events'), `ignored SIGTERM ${name} ${n}\n`));
}
writeFileSync(join(dir, `${name}.${n}.started`), String(process.pid));
appendFileSync(join(dir, 'events'), `start ${name} ${n}\n`);

if (/^[0-3]$/.test(step)) {
  const code = Number(step);
  summary(code, code >= 2 ? { error: { code: code === 2 ? 'SOURCE_UNAVAILABLE' : 'AUTH_FAILED', message: `fake failure ${code}` } } : {});
  end(code);
} else if (step === 'crash') {
  appendFileSync(join(dir, 'events'), `end ${name} ${n}\n`);
  throw new Error('fake crash');
} else if (/^sleep\d+$/.test(step)) {
  setTimeout(() => {
    summary(0);
    end(0);
  }, Number(step.slice(5)));
} else if (step === 'wait') {
  const release = join(dir, `${name}.${n}.release`);
  setInterval(() => {
    if (existsSync(release)) {
      summary(0);
      end(0);
    }
  }, 10);
} else {
  setInterval(() => {}, 1000);
}
