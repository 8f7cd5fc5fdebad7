/**
 * Worker-thread side of lib/parquet/worker-encoder.ts: runs one
 * {@link inlineEncoder} per open file and relays messages. Output chunks are
 * sent one at a time, the next only after the main thread acknowledged the
 * previous one (its storage took it), so a slow storage stops the encoder
 * here just as it does in-thread.
 */
import { parentPort } from 'node:worker_threads';
import { inlineEncoder, transferable, type ParquetEncoder } from './encoder.js';
import type { FromEncoder, ToEncoder } from './worker-encoder.js';

interface Session {
  encoder: ParquetEncoder;
  /** Writes and the finish run one after another, in the order they came. */
  queue: Promise<void>;
  /** Resolves the wait for the main thread's ack of the last chunk sent. */
  ack: (() => void) | undefined;
  /** Rejects that wait when the file is aborted. */
  cancel: ((err: Error) => void) | undefined;
}

const port = parentPort!;
const sessions = new Map<number, Session>();

const send = (msg: FromEncoder, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function open(id: number, options: Extract<ToEncoder, { op: 'open' }>['options']): void {
  const session: Session = { encoder: undefined as unknown as ParquetEncoder, queue: Promise.resolve(), ack: undefined, cancel: undefined };
  session.encoder = inlineEncoder(options, (chunk) => {
    const bytes = transferable(chunk);
    send({ op: 'chunk', id, chunk: bytes }, [bytes.buffer]);
    return new Promise<void>((resolve, reject) => {
      session.ack = resolve;
      session.cancel = reject;
    });
  });
  sessions.set(id, session);
}

port.on('message', (msg: ToEncoder) => {
  const { id } = msg;
  if (msg.op === 'open') {
    open(id, msg.options);
    return;
  }
  const s = sessions.get(id);
  if (s === undefined) {
    // Already finished or failed: an abort still gets its answer.
    if (msg.op === 'abort') send({ op: 'aborted', id });
    return;
  }
  switch (msg.op) {
    case 'write': {
      const ipc = msg.ipc;
      s.queue = s.queue.then(() =>
        s.encoder.write(ipc).then(
          // The bytes go back: this thread rarely collects garbage, so a buffer
          // dropped here would hold its memory long after the encoder copied its rows.
          () => send({ op: 'taken', id, ipc }, [ipc.buffer as ArrayBuffer]),
          (err: unknown) => send({ op: 'error', id, message: message(err) }),
        ),
      );
      break;
    }
    case 'ack': {
      const ack = s.ack;
      s.ack = s.cancel = undefined;
      ack?.();
      break;
    }
    case 'finish':
      s.queue = s.queue.then(() =>
        s.encoder.finish().then(
          () => {
            sessions.delete(id);
            send({ op: 'finished', id });
          },
          (err: unknown) => {
            sessions.delete(id);
            send({ op: 'error', id, message: message(err) });
          },
        ),
      );
      break;
    case 'abort': {
      const cancel = s.cancel;
      s.ack = s.cancel = undefined;
      const reason = new Error('aborted');
      cancel?.(reason);
      void s.encoder.abort(reason).then(() => {
        sessions.delete(id);
        send({ op: 'aborted', id });
      });
      break;
    }
  }
});
