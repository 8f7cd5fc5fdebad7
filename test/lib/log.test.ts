/**
 * Where redaction masks a secret, and where it leaves text alone: the value
 * of a secret key, a URI's password, `password=` pairs and `Bearer`
 * credentials are masked whatever their length; the same letters inside a
 * name or a path are not; a long known secret is masked anywhere.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, prettyLine, redactDeep, scrub } from '../../lib/log.js';

const SECRETS = ['ties', 'pw', 'Zx9-long-api-token-8c1d'];

describe('scrub', () => {
  const cases: [string, string][] = [
    ['file:///w/rt/ties/data/part-1.parquet', 'file:///w/rt/ties/data/part-1.parquet'],
    ['reading parties', 'reading parties'],
    ['postgres://app:pw@db:5432/x', 'postgres://app:[REDACTED]@db:5432/x'],
    ['postgres://app:unknown-one@db/x', 'postgres://app:[REDACTED]@db/x'],
    ['host=db password=pw user=app', 'host=db password=[REDACTED] user=app'],
    ['https://api/x?access_token=abc&page=2', 'https://api/x?access_token=[REDACTED]&page=2'],
    ['{"password":"ties","table":"ties"}', '{"password":"[REDACTED]","table":"ties"}'],
    ['db_password: ties (line 4)', 'db_password: [REDACTED] (line 4)'],
    ['Authorization: Bearer eyJhbGciOi.x', 'Authorization: Bearer [REDACTED]'],
    ['token: expected string, got number', 'token: expected string, got number'],
    ['path data/Zx9-long-api-token-8c1d.csv not found', 'path data/[REDACTED].csv not found'],
  ];
  for (const [input, want] of cases) it(JSON.stringify(input), () => assert.equal(scrub(input, SECRETS), want));
});

describe('redactDeep', () => {
  it('masks the values of secret keys, scrubs strings, keeps names true, does not touch the input', () => {
    const input = { name: 'ties', files: ['file:///rt/ties/a.parquet'], connection: { password: 'x', host: 'h' }, err: { message: 'postgres://u:pw@h/' } };
    const out = redactDeep(input, SECRETS);
    assert.deepEqual(out, { name: 'ties', files: ['file:///rt/ties/a.parquet'], connection: { password: '[REDACTED]', host: 'h' }, err: { message: 'postgres://u:[REDACTED]@h/' } });
    assert.equal(input.connection.password, 'x');
  });
});

describe('createLogger', () => {
  const capture = (): { lines: string[]; out: Writable } => {
    const lines: string[] = [];
    const out = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) });
    return { lines, out };
  };

  it('json: an error whose message carries a URI password is masked in msg and err, names are not', () => {
    const { lines, out } = capture();
    const log = createLogger({ secrets: SECRETS, destination: out });
    log.error({ object: 'ties', err: new Error('connect postgres://u:pw@h/ failed') }, 'ties: postgres://u:pw@h/ failed');
    const line = JSON.parse(lines.join('')) as { object: string; msg: string; err: { message: string } };
    assert.equal(line.object, 'ties');
    assert.equal(line.msg, 'ties: postgres://u:[REDACTED]@h/ failed');
    assert.equal(line.err.message, 'connect postgres://u:[REDACTED]@h/ failed');
  });

  it('json: an error with a cause keeps its own message and the cause apart, the cause masked too', () => {
    const { lines, out } = capture();
    const log = createLogger({ secrets: SECRETS, destination: out });
    const cause = new Error('connect ECONNREFUSED postgres://u:pw@h/');
    log.error({ err: new Error('source unreachable: connect ECONNREFUSED postgres://u:pw@h/', { cause }) }, 'run failed');
    const line = JSON.parse(lines.join('')) as { err: { message: string; cause: { message: string } } };
    assert.equal(line.err.message, 'source unreachable: connect ECONNREFUSED postgres://u:[REDACTED]@h/');
    assert.equal(line.err.cause.message, 'connect ECONNREFUSED postgres://u:[REDACTED]@h/');
  });

  it('json: of a cause only its type, message and code are logged, not its other properties', () => {
    const { lines, out } = capture();
    const log = createLogger({ destination: out });
    const cause = Object.assign(new Error('Requested entity was not found.'), { code: 404, config: { params: { key: 'AIzaSyNOTLOGGED' } } });
    log.error({ err: new Error('spreadsheet not found', { cause }) }, 'run failed');
    assert.ok(!lines.join('').includes('AIzaSyNOTLOGGED'));
    const line = JSON.parse(lines.join('')) as { err: { cause: unknown } };
    assert.deepEqual(line.err.cause, { type: 'Error', message: 'Requested entity was not found.', code: 404 });
  });

  it('pretty: a cause is named once, and only when the message does not already say it', () => {
    const { lines, out } = capture();
    const log = createLogger({ destination: out, format: 'pretty' });
    const inner = new Error('socket hang up');
    log.error({ err: new Error('request failed: socket hang up', { cause: inner }) }, 'a');
    log.error({ err: new Error('request failed', { cause: inner }) }, 'b');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, / ERROR a err="Error: request failed: socket hang up"\n$/);
    assert.match(lines[1]!, / ERROR b err="Error: request failed \(cause: socket hang up\)"\n$/);
  });

  it('pretty: one human line per entry, without the bound ids', () => {
    const { lines, out } = capture();
    const log = createLogger({ destination: out, format: 'pretty', bindings: { tenant: 't', job: 'j', run_id: 'r' } });
    log.warn({ event_type: 'unknown_column', object: 'orders', column: 'extra note' }, 'column not in the asset');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^\d\d:\d\d:\d\d WARN {2}column not in the asset object=orders column="extra note"\n$/);
  });

  it('prettyLine passes a line that is not JSON through', () => {
    assert.equal(prettyLine('plain'), 'plain');
  });
});
