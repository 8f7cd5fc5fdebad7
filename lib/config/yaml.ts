/**
 * Reading YAML config files: syntax errors become problems with the line and
 * column, and a parsed file can tell on which line a key path sits, so that
 * schema problems point into the file.
 */
import { readFile, stat } from 'node:fs/promises';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { KeyPath, Problems } from './problems.js';

/** Config files (job, recipe, asset, runner) larger than this are refused unread: 10 MiB. */
export const MAX_CONFIG_BYTES = 10 * 1024 * 1024;

/** Alias references a config file may expand (the yaml package's guard against alias bombs). */
export const MAX_ALIAS_COUNT = 1000;

const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

/** A parsed YAML file. */
export interface YamlFile {
  /** Absolute path. */
  file: string;
  /** The plain JS value (undefined for an empty file). */
  data: unknown;
  /** The 1-based line of the key at `path`; undefined when the path is not in the file. */
  lineOf(path: KeyPath): number | undefined;
}

/**
 * Read and parse one YAML file. A missing/unreadable file or a syntax error is
 * added to `problems` (file, no key, message with line and column) and
 * undefined is returned. Duplicate keys are syntax errors.
 */
export async function readYamlFile(file: string, problems: Problems, what = 'file'): Promise<YamlFile | undefined> {
  let text: string;
  try {
    // Refused before reading: a config file this big is a mistake, and parsing it costs minutes and gigabytes.
    const { size } = await stat(file);
    if (size > MAX_CONFIG_BYTES) {
      problems.add(file, '', `${what} is ${mib(size)}, over the ${mib(MAX_CONFIG_BYTES)} limit for a config file (not parsed)`);
      return undefined;
    }
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.add(file, '', code === 'ENOENT' ? `${what} not found` : `cannot read ${what}: ${(err as Error).message}`);
    return undefined;
  }
  return parseYamlText(text, file, problems);
}

/** Parse YAML text that came from `file` (see {@link readYamlFile}). */
export function parseYamlText(text: string, file: string, problems: Problems): YamlFile | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      // prettyErrors appends a code excerpt after the first line; the first line already says where.
      const head = (e.message.split('\n')[0] ?? e.message).replace(/:\s*$/, '');
      problems.add(file, '', `YAML syntax error: ${head}`);
    }
    return undefined;
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml package refuses aliases that expand past the count ("billion laughs").
    problems.add(file, '', `YAML aliases expand too far (over ${MAX_ALIAS_COUNT} alias references): ${(err as Error).message}`);
    return undefined;
  }
  return {
    file,
    data: data ?? undefined,
    lineOf: (path) => lineOf(doc, lineCounter, path),
  };
}

function lineOf(doc: Document, lc: LineCounter, path: KeyPath): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = rangeStart(node);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) return undefined;
      offset = rangeStart(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) return undefined;
      offset = rangeStart(item) ?? offset;
      node = item;
    } else {
      return undefined;
    }
  }
  return offset === undefined ? undefined : lc.linePos(offset).line;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range?.[0];
}
