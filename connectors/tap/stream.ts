/**
 * A tap's read as a SourceStream, written once for both protocols: the
 * child's stdout split into lines (bounded), each line decoded by the
 * protocol, records of this object pushed with backpressure (the child's
 * stdout is paused while the pipeline is, so the tap blocks on its pipe),
 * and the tap's last STATE kept for `checkpoint()`.
 *
 * One read = one tap process for ONE stream (the object): the catalog it
 * gets selects only that stream, and the state it gets is the one
 * committed with this object. That is how several streams of one job stay
 * exactly once with one commit each (docs/connectors/singer.md, "Several
 * streams"). A STATE is kept only if the tap ends cleanly: a tap that
 * fails, is killed, hangs or prints garbage fails the read, and nothing of
 * the run is committed (the object keeps the state committed last).
 */
import { Readable } from 'node:stream';
import { parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';
import type { ReadContext, SourceStream } from '../../lib/connector.js';
import { DativoError, isDativoError } from '../../lib/errors.js';
import { parseJsonExact } from '../../lib/json.js';
import { scrub } from '../../lib/log.js';
import { LineSplitter, streamNamedIn, typeNamedIn, type Line } from './lines.js';
import type { TapSettings } from './options.js';
import { TapFiles, TapProcess, tapExitError, type CommandOrigin, type TapExit } from './process.js';
import { schemaProblems } from './schema.js';

/** One decoded protocol message, as the stream acts on it. */
export type TapMessage =
  | { kind: 'record'; stream: string; data: unknown }
  | { kind: 'schema'; stream: string; schema: unknown }
  /** `text`: the JSON handed back as the state file if this is the last state; `stream` set for a per-stream state. */
  | { kind: 'state'; text: string; stream?: string }
  | { kind: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string }
  | { kind: 'error'; error: DativoError }
  | { kind: 'ignore'; type: string };

/** What differs between Singer and Airbyte on stdout. */
export interface TapProtocol {
  /** `singer` or `airbyte`: connector name in messages. */
  readonly name: string;
  /** Decode one line (`value` parsed exactly, `line` its text); throws TAP_PROTOCOL for a malformed message. */
  decode(value: unknown, line: string): TapMessage;
}

/**
 * The exact JSON text of a part of a line: numbers kept digit for digit
 * (a tap's state may hold a 64-bit log position), so the state handed back
 * is the state the tap emitted.
 */
export function exactJsonPart(line: string, pick: (message: Record<string, unknown>) => unknown): string {
  const whole = parseLossless(line) as Record<string, unknown>;
  return stringifyLossless(pick(whole)) ?? 'null';
}

/** A TAP_PROTOCOL error for line `n` of a tap's stdout. */
export function protocolError(protocol: string, message: string, context: Record<string, unknown> = {}): DativoError {
  return new DativoError('TAP_PROTOCOL', message, { context: { connector: protocol, ...context } });
}

/** Options of {@link tapStream}. */
export interface TapStreamOptions {
  ctx: ReadContext;
  protocol: TapProtocol;
  settings: TapSettings;
  origin: CommandOrigin;
  /**
   * Write the tap's files (config, catalog, state) into `files` and return
   * the argv of the read. May run other tap commands first (Airbyte `spec`
   * and `discover`). Called when the stream is constructed.
   */
  prepare(files: TapFiles, signal: AbortSignal): Promise<string[]>;
  /** The stream's schema is known before the read (Airbyte's catalog): checked against the asset up front. */
  knownSchema?: () => unknown;
}

const abortError = (reason: unknown): DativoError =>
  isDativoError(reason) ? reason : new DativoError('ABORTED', 'the read was aborted', reason instanceof Error ? { cause: reason } : {});

/** The stream of a tap's records of one object. */
export class TapStream extends Readable implements SourceStream {
  /** Records of this object pushed. */
  records = 0;
  /** Records of the job's other streams that the tap sent anyway (each object's own run reads them). */
  otherStreams = 0;
  readonly #o: TapStreamOptions;
  readonly #declared: Set<string>;
  readonly #splitter: LineSplitter;
  #files: TapFiles | undefined;
  #proc: TapProcess | undefined;
  #state: string | undefined;
  #line = 0;
  #paused = false;
  #onAbort: (() => void) | undefined;

  constructor(o: TapStreamOptions) {
    super({ objectMode: true, highWaterMark: 64 });
    this.#o = o;
    this.#declared = new Set(o.ctx.plan.source.objects.map((x) => x.name));
    this.#splitter = new LineSplitter(o.settings.maxRecordBytes);
  }

  /** The tap's last STATE of this object, committed with every record read before it. */
  checkpoint(): { tap?: { state: string } } {
    return this.#state !== undefined ? { tap: { state: this.#state } } : {};
  }

  override _construct(cb: (err?: Error | null) => void): void {
    const { ctx } = this.#o;
    const run = async (): Promise<void> => {
      if (ctx.signal.aborted) throw abortError(ctx.signal.reason);
      this.#onAbort = () => this.destroy(abortError(ctx.signal.reason));
      ctx.signal.addEventListener('abort', this.#onAbort, { once: true });
      this.#files = await TapFiles.create();
      const argv = await this.#o.prepare(this.#files, ctx.signal);
      const schema = this.#o.knownSchema?.();
      if (schema !== undefined) this.#checkSchema(schema);
      if (this.destroyed) return;
      const proc = await TapProcess.start(
        { argv, cwd: this.#o.settings.cwd, env: this.#o.settings.env, log: ctx.log, timeoutMs: this.#o.settings.timeoutMs, secrets: ctx.plan.secrets, origin: this.#o.origin },
        () => this.destroy(tapExitError(this.#what(), { code: null, signal: null, killedBy: 'timeout' }, proc, this.#o.settings.timeoutMs, this.#context())),
      );
      this.#proc = proc;
      if (this.destroyed) {
        proc.kill();
        return;
      }
      proc.stdout.on('data', (chunk: Buffer) => this.#onChunk(chunk));
      void proc.exited.then((exit) => this.#onExit(exit));
      ctx.log.info({ event_type: 'tap_started', protocol: this.#o.protocol.name, stream: ctx.object.name, state: this.#o.ctx.state?.tap !== undefined }, `${this.#what()} started`);
    };
    run().then(
      () => cb(),
      (err: unknown) => cb(err as Error),
    );
  }

  override _read(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#proc?.stdout.resume();
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#onAbort) this.#o.ctx.signal.removeEventListener('abort', this.#onAbort);
    const proc = this.#proc;
    proc?.kill();
    const files = this.#files;
    void (async () => {
      await proc?.exited;
      await files?.remove().catch(() => undefined);
    })().then(() => cb(err));
  }

  #what(): string {
    return `${this.#o.protocol.name} tap ${JSON.stringify(this.#o.settings.argv[0] ?? '')} (stream ${this.#o.ctx.object.name})`;
  }

  #context(): Record<string, unknown> {
    return { connector: this.#o.protocol.name, object: this.#o.ctx.object.name, command: this.#o.settings.argv[0] };
  }

  #onChunk(chunk: Buffer): void {
    if (this.destroyed) return;
    try {
      let more = true;
      for (const line of this.#splitter.push(chunk)) more = this.#onLine(line) && more;
      if (!more && !this.destroyed) {
        this.#paused = true;
        this.#proc?.stdout.pause();
      }
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  #onExit(exit: TapExit): void {
    if (this.destroyed) return;
    if (exit.killedBy !== undefined || exit.code !== 0) {
      this.destroy(tapExitError(this.#what(), exit, this.#proc!, this.#o.settings.timeoutMs, this.#context()));
      return;
    }
    try {
      for (const line of this.#splitter.end()) this.#onLine(line);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    if (this.#state === undefined && this.records > 0 && !this.#o.ctx.fullRefresh && this.#o.ctx.plan.syncMode === 'incremental_append') {
      this.#o.ctx.log.warn(
        { event_type: 'tap_no_state', records: this.records },
        `${this.#what()} sent ${this.records} record(s) and no STATE: the next run starts from ${this.#o.ctx.state?.tap ? 'the same state' : 'the beginning'} again and writes them again`,
      );
    }
    if (this.otherStreams > 0) {
      this.#o.ctx.log.info(
        { event_type: 'tap_other_streams', records: this.otherStreams },
        `the tap also sent ${this.otherStreams} record(s) of the job's other streams: not written here (each stream's own run writes them)`,
      );
    }
    this.#o.ctx.log.info({ event_type: 'tap_finished', records: this.records, state: this.#state !== undefined }, `${this.#what()} finished: ${this.records} record(s)`);
    this.push(null);
  }

  /** Act on one line; returns push()'s answer (false: pause the tap). */
  #onLine(line: Line): boolean {
    this.#line++;
    const { ctx, protocol } = this.#o;
    if ('oversized' in line) {
      const type = typeNamedIn(line.head);
      const stream = streamNamedIn(line.head);
      if (type === 'RECORD' && stream !== undefined) {
        ctx.rejects.reject({
          reason: `a RECORD of stream "${stream}" is ${line.bytes} bytes, over source.max_record_bytes (${this.#o.settings.maxRecordBytes})`,
          code: 'record_too_large',
          location: { stream, line: this.#line, bytes: line.bytes },
        });
        return true;
      }
      throw protocolError(protocol.name, `${this.#what()} printed a ${type ?? 'line'} of ${line.bytes} bytes on stdout line ${this.#line}, over source.max_record_bytes (${this.#o.settings.maxRecordBytes})`, { line: this.#line });
    }
    const text = line.text;
    if (text.trim() === '') return true;
    let value: unknown;
    try {
      value = parseJsonExact(text);
    } catch {
      const shown = scrub(text.length > 200 ? `${text.slice(0, 200)}…` : text, ctx.plan.secrets);
      const what = typeNamedIn(text) === 'STATE' ? 'a STATE message that is not JSON' : 'a line that is not JSON';
      throw protocolError(protocol.name, `${this.#what()} printed ${what} on stdout line ${this.#line}: ${shown}; nothing past the last committed state is written`, { line: this.#line });
    }
    const msg = protocol.decode(value, text);
    switch (msg.kind) {
      case 'record':
        return this.#onRecord(msg.stream, msg.data);
      case 'schema':
        if (msg.stream === ctx.object.name) this.#checkSchema(msg.schema);
        return true;
      case 'state':
        if (msg.stream === undefined || msg.stream === ctx.object.name) this.#state = msg.text;
        return true;
      case 'log':
        ctx.log[msg.level]({ event_type: 'tap_log', protocol: protocol.name }, msg.message);
        return true;
      case 'error':
        throw msg.error;
      case 'ignore':
        return true;
    }
  }

  #onRecord(stream: string, data: unknown): boolean {
    const { ctx } = this.#o;
    if (stream !== ctx.object.name) {
      if (this.#declared.has(stream)) {
        this.otherStreams++;
        return true;
      }
      ctx.rejects.reject({
        reason: `a record of stream "${stream}", which the job does not declare (its streams: ${[...this.#declared].join(', ')})`,
        code: 'undeclared_stream',
        record: data,
        location: { stream, line: this.#line },
      });
      return true;
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      ctx.rejects.reject({ reason: 'the record is not a JSON object', code: 'record_not_object', record: data, location: { stream, line: this.#line } });
      return true;
    }
    this.records++;
    return this.push(data);
  }

  #checkSchema(schema: unknown): void {
    const { ctx } = this.#o;
    const problems = schemaProblems(schema, ctx.plan.asset);
    if (problems.length === 0) return;
    throw new DativoError(
      'SCHEMA_INCOMPATIBLE',
      `the schema of stream ${ctx.object.name} contradicts asset ${ctx.plan.asset.name} (${ctx.plan.asset.file}): ${problems.join('; ')}`,
      { context: { ...this.#context(), file: ctx.plan.asset.file, problems } },
    );
  }
}

/** Open a tap's read of one object. */
export function tapStream(o: TapStreamOptions): TapStream {
  return new TapStream(o);
}

/**
 * Run a tap command to its end (Singer `--discover`, Airbyte `spec`,
 * `check`, `discover`) and return its stdout (at most `maxBytes`).
 * @throws TAP_FAILED when it fails, with its stderr's last lines.
 */
export async function runTapToEnd(o: {
  argv: string[];
  settings: TapSettings;
  origin: CommandOrigin;
  log: ReadContext['log'];
  secrets: readonly string[];
  signal: AbortSignal;
  what: string;
  maxBytes?: number;
}): Promise<string> {
  if (o.signal.aborted) throw abortError(o.signal.reason);
  const proc = await TapProcess.start({ argv: o.argv, cwd: o.settings.cwd, env: o.settings.env, log: o.log, timeoutMs: o.settings.timeoutMs, secrets: o.secrets, origin: o.origin });
  const max = o.maxBytes ?? 256 * 1024 * 1024;
  const parts: Buffer[] = [];
  let bytes = 0;
  let tooBig = false;
  proc.stdout.on('data', (c: Buffer) => {
    bytes += c.length;
    if (bytes > max) {
      tooBig = true;
      proc.kill();
    } else parts.push(c);
  });
  const onAbort = (): void => proc.kill();
  o.signal.addEventListener('abort', onAbort, { once: true });
  const exit = await proc.exited.finally(() => o.signal.removeEventListener('abort', onAbort));
  if (o.signal.aborted) throw abortError(o.signal.reason);
  if (tooBig) throw protocolError(o.origin.connector, `${o.what} printed more than ${max} bytes`);
  if (exit.killedBy !== undefined || exit.code !== 0) throw tapExitError(o.what, exit, proc, o.settings.timeoutMs, { connector: o.origin.connector, command: o.argv[0] });
  return Buffer.concat(parts).toString('utf8');
}
