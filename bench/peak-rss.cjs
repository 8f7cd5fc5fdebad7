/**
 * Preloaded into a measured process (`node --require bench/peak-rss.cjs …`):
 * when it exits, write its peak resident set size (the kernel's VmHWM) and
 * CPU time as JSON to the file named by DATIVO_BENCH_STATS. Plain CommonJS so
 * that it loads before, and independently of, the program measured.
 */
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');

const out = process.env.DATIVO_BENCH_STATS;
if (out) {
  process.on('exit', () => {
    let peak = process.memoryUsage().rss / 1048576;
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
      if (m) peak = Number(m[1]) / 1024;
    } catch {
      // not Linux: the current RSS is the best we have
    }
    const cpu = process.cpuUsage();
    writeFileSync(out, JSON.stringify({ peak_rss_mb: Math.round(peak), cpu_seconds: (cpu.user + cpu.system) / 1e6 }));
  });
}
