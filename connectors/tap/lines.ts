/**
 * Lines of a tap's stdout, bounded: a plain class (no streams) that takes
 * the pipe's chunks and gives back whole lines. A line longer than the
 * limit is never held in memory: its first bytes are kept (to name its
 * stream in the reject) and the rest is counted and dropped.
 */

/** A whole line (without its `\n` or `\r\n`), or one that was over the limit. */
export type Line = { text: string } | { oversized: true; bytes: number; head: string };

/** Bytes of an oversized line kept to tell what it was (its `type` and `stream`). */
const HEAD_BYTES = 4096;

export class LineSplitter {
  readonly #max: number;
  #parts: Buffer[] = [];
  #pending = 0;
  /** Inside an oversized line: its head and its length so far. */
  #skipping: { head: Buffer; bytes: number } | undefined;

  /** @param maxLineBytes longest line returned whole (default 16 MiB). */
  constructor(maxLineBytes = 16 * 1024 * 1024) {
    this.#max = maxLineBytes;
  }

  /** Feed one chunk; returns the lines it completed. */
  push(chunk: Buffer): Line[] {
    const out: Line[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      this.#take(chunk.subarray(start, end));
      if (nl === -1) break;
      out.push(this.#finish());
      start = nl + 1;
    }
    return out;
  }

  /** The last line, when the input did not end with a line break. */
  end(): Line[] {
    if (this.#skipping === undefined && this.#pending === 0) return [];
    return [this.#finish()];
  }

  #take(part: Buffer): void {
    if (part.length === 0) return;
    if (this.#skipping !== undefined) {
      this.#skipping.bytes += part.length;
      return;
    }
    if (this.#pending + part.length > this.#max) {
      const head = Buffer.concat([...this.#parts, part]).subarray(0, HEAD_BYTES);
      this.#skipping = { head: Buffer.from(head), bytes: this.#pending + part.length };
      this.#parts = [];
      this.#pending = 0;
      return;
    }
    // Copied: the pipe reuses its buffers.
    this.#parts.push(Buffer.from(part));
    this.#pending += part.length;
  }

  #finish(): Line {
    if (this.#skipping !== undefined) {
      const s = this.#skipping;
      this.#skipping = undefined;
      return { oversized: true, bytes: s.bytes, head: s.head.toString('utf8') };
    }
    let text = (this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts)).toString('utf8');
    this.#parts = [];
    this.#pending = 0;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    return { text };
  }
}

/** The `"stream": "…"` of a message's first bytes (an oversized line), if it names one. */
export function streamNamedIn(head: string): string | undefined {
  return /"stream"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(head)?.[1];
}

/** The `"type": "…"` of a message's first bytes, if it names one. */
export function typeNamedIn(head: string): string | undefined {
  return /^\s*\{\s*"type"\s*:\s*"([A-Z_]+)"/.exec(head)?.[1];
}
