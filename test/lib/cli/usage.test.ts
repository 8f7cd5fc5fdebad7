/**
 * Argument handling of `main()` (in-process: no job is run): help on stdout
 * with exit 0, every mistake on stderr with exit 3.
 */
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../../lib/cli/main.js';

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Sink();
  const stderr = new Sink();
  const code = await main(argv, { stdout, stderr, isTTY: false });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('dativo arguments', () => {
  it('--help and help: usage with every command and the exit codes on stdout, exit 0', async () => {
    for (const argv of [['--help'], ['-h'], ['help'], ['run', '--help']]) {
      const r = await cli(...argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.equal(r.stderr, '');
      for (const c of ['run', 'validate', 'discover', 'state show', 'state reset', 'tables list', 'tables show']) assert.ok(r.stdout.includes(`dativo ${c} `), c);
      assert.match(r.stdout, /exit codes: 0 ok, 1 partial/);
    }
  });

  it('no command, an unknown command or an unknown option: usage on stderr, exit 3, nothing on stdout', async () => {
    for (const [argv, message] of [
      [[], /^usage:/],
      [['bogus'], /^unknown command "bogus"\nusage:/],
      [['run', 'job.yaml', '--nope'], /Unknown option '--nope'/],
      [['run', '--mode', 'moon', 'job.yaml'], /--mode must be self_hosted or cloud, got "moon"/],
      [['run', '--log-level', 'loud', 'job.yaml'], /--log-level must be one of trace, debug, info, warn, warning, error, critical, fatal, silent, got "loud"/],
    ] as const) {
      const r = await cli(...argv);
      assert.equal(r.code, 3, argv.join(' '));
      assert.equal(r.stdout, '', argv.join(' '));
      assert.match(r.stderr, message);
    }
  });

  it('a command without its job file, or a wrong state subcommand: exit 3 with the usage line', async () => {
    for (const [argv, message] of [
      [['run'], /missing argument: <job\.yaml>/],
      [['validate'], /missing argument: <job\.yaml>/],
      [['state', 'show'], /missing argument: <job\.yaml>/],
      [['state', 'wipe', 'job.yaml'], /usage: dativo state show\|reset/],
      [['tables', 'drop'], /usage: dativo tables list\|show/],
    ] as const) {
      const r = await cli(...argv);
      assert.equal(r.code, 3, argv.join(' '));
      assert.match(r.stderr, message, argv.join(' '));
    }
  });

  it('a job file that does not exist names it (exit 3)', async () => {
    const r = await cli('run', '/nonexistent/dativo/job.yaml');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /\/nonexistent\/dativo\/job\.yaml/);
  });
});
