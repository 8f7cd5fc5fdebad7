/**
 * The incremental read protocol over HubSpot's CRM search: every page is a
 * new query from the last modified date seen, so no query reaches the
 * 10,000-results cap of one search and no record is skipped or read twice.
 *
 * Search allows one sort, and HubSpot documents no order among records with
 * the same sort value, so the protocol never counts on one:
 *
 * - **date mode**: `modified >= D` (or `> D` once D's records are all read)
 *   and `modified < to`, sorted by the modified date ascending, `limit`
 *   records. Records at D already emitted (the ids of D seen so far) are
 *   skipped. A short page ends the read. A full page whose last date D' is
 *   past D holds every record before D', so the next query starts at D'
 *   (remembering the ids seen at D').
 * - **tie mode**: a full page entirely at one date D means D has at least a
 *   page of records: they are read by id instead (`modified = D` and
 *   `hs_object_id > last id`, sorted by `hs_object_id`), skipping the ids
 *   seen at D, until a short page; then date mode goes on with `modified > D`.
 *
 * Why not HubSpot's `after` offset: it pages through one query's result set
 * at positions 0, 200, 400 …; a record modified while the read runs leaves
 * the window (its new date is past `to`), every later record moves up one
 * position, and the record at the page boundary is never returned. A fresh
 * query per page cannot skip: a record either still matches it or was read
 * already. The cost is reading again the records of the last page's last
 * modified millisecond (one per page when dates are distinct).
 *
 * Plain logic, no I/O: {@link ModifiedKeyset.request} says what to ask,
 * {@link ModifiedKeyset.advance} takes the answer and says what to emit.
 */
import { DativoError } from '../../lib/errors.js';

/** One search filter (HubSpot's shape). */
export interface SearchFilter {
  propertyName: string;
  operator: 'EQ' | 'GT' | 'GTE' | 'LT';
  value: string;
}

/** What one page asks (the caller adds `properties`). */
export interface KeysetRequest {
  filterGroups: { filters: SearchFilter[] }[];
  sorts: { propertyName: string; direction: 'ASCENDING' }[];
  limit: number;
}

/** A search result as the protocol sees it: its id and its modified date (epoch ms; undefined when missing or unreadable). */
export interface Hit {
  id: string;
  modified: number | undefined;
}

/** Search page size (HubSpot's maximum). */
export const SEARCH_LIMIT = 200;

/** The id property search filters and sorts on in tie mode. */
export const ID_PROPERTY = 'hs_object_id';

/** Where a keyset read stands, as saved for a later run (see {@link ModifiedKeyset.snapshot}). */
export interface KeysetState {
  /** The lowest modified date not read to its end (epoch ms); absent: from the beginning. */
  at?: number;
  /** Every record at `at` was read. */
  strict?: boolean;
  /** Exclusive upper bound (epoch ms). */
  to: number;
  /** Ids at `at` already read (date mode, at most a page). */
  seen?: string[];
  /** Tie mode: `at` read by id, up to this id. */
  tieAfter?: string;
  tie?: boolean;
}

export class ModifiedKeyset {
  private mode: 'date' | 'tie' = 'date';
  /** The last modified date reached (D); undefined before the first full page of a read from the beginning. */
  private at: number | undefined;
  /** True once every record at `at` was read: the next query asks `> at`. */
  private strict = false;
  /** Ids emitted at `at` in date mode (at most a page). */
  private readonly seen = new Set<string>();
  private lastId: bigint | undefined;
  private finished = false;
  /** Pages answered, queries that switched to tie mode. */
  pages = 0;
  tieQueries = 0;

  /**
   * @param property the modified-date property (`hs_lastmodifieddate`, contacts' `lastmodifieddate`)
   * @param from inclusive lower bound, epoch ms (undefined: from the beginning)
   * @param to exclusive upper bound, epoch ms (undefined until {@link setUpper})
   */
  constructor(
    readonly property: string,
    from: number | undefined,
    private to: number | undefined,
    readonly limit: number = SEARCH_LIMIT,
  ) {
    this.at = from;
  }

  /** True when the window is read. */
  get done(): boolean {
    return this.finished;
  }

  /** The lowest modified date not read to its end; undefined before the first full page of a read from the beginning. */
  get position(): number | undefined {
    return this.at;
  }

  /** The exclusive upper bound, once known. */
  get upper(): number | undefined {
    return this.to;
  }

  /** In tie mode (reading one modified date by id). */
  get tying(): boolean {
    return this.mode === 'tie';
  }

  /**
   * Lower the upper bound to `to`, so that `[to, upper)` can go to another
   * read; false (nothing changed) in tie mode, before a position is known,
   * or when `to` is not strictly inside `(position, upper)`.
   */
  narrow(to: number): boolean {
    if (this.finished || this.mode === 'tie' || this.at === undefined || this.to === undefined || to <= this.at || to >= this.to) return false;
    this.to = to;
    return true;
  }

  /** Where this read stands, to go on from in a later run ({@link ModifiedKeyset.restore}). */
  snapshot(): KeysetState {
    return {
      ...(this.at !== undefined ? { at: this.at } : {}),
      ...(this.strict ? { strict: true } : {}),
      to: this.to ?? Number.MAX_SAFE_INTEGER,
      ...(this.seen.size > 0 ? { seen: [...this.seen] } : {}),
      ...(this.mode === 'tie' ? { tie: true, ...(this.lastId !== undefined ? { tieAfter: String(this.lastId) } : {}) } : {}),
    };
  }

  /** A keyset that goes on where {@link snapshot} stood. */
  static restore(property: string, s: KeysetState, limit: number = SEARCH_LIMIT): ModifiedKeyset {
    const k = new ModifiedKeyset(property, s.at, s.to, limit);
    k.strict = s.strict === true;
    for (const id of s.seen ?? []) k.seen.add(id);
    if (s.tie === true) {
      k.mode = 'tie';
      if (s.tieAfter !== undefined && /^\d+$/.test(s.tieAfter)) k.lastId = BigInt(s.tieAfter);
    }
    return k;
  }

  /** The upper bound learned from the first answer (HubSpot's clock): results at or past it are left to the next run. */
  setUpper(to: number): void {
    this.to = to;
    if (this.at !== undefined && this.at >= to) this.finished = true;
  }

  /** The next page's query. */
  request(): KeysetRequest {
    const p = this.property;
    if (this.mode === 'tie') {
      const filters: SearchFilter[] = [{ propertyName: p, operator: 'EQ', value: String(this.at) }];
      if (this.lastId !== undefined) filters.push({ propertyName: ID_PROPERTY, operator: 'GT', value: String(this.lastId) });
      return { filterGroups: [{ filters }], sorts: [{ propertyName: ID_PROPERTY, direction: 'ASCENDING' }], limit: this.limit };
    }
    const filters: SearchFilter[] = [];
    if (this.at !== undefined) filters.push({ propertyName: p, operator: this.strict ? 'GT' : 'GTE', value: String(this.at) });
    if (this.to !== undefined) filters.push({ propertyName: p, operator: 'LT', value: String(this.to) });
    return { filterGroups: filters.length > 0 ? [{ filters }] : [], sorts: [{ propertyName: p, direction: 'ASCENDING' }], limit: this.limit };
  }

  /** A key of the next query, for loop detection (the same query twice means the server ignores it). */
  get token(): string {
    return `${this.mode}:${this.strict ? '>' : '>='}${String(this.at)}:<${String(this.to)}:${String(this.lastId)}`;
  }

  /**
   * Take one answered page (in the server's order); returns the hits to
   * emit. Throws SOURCE_ERROR when a full page carries no modified date to
   * go on from.
   */
  advance(hits: readonly Hit[]): Hit[] {
    if (this.finished) throw new DativoError('INTERNAL', 'hubspot search: advance() after the last page');
    this.pages++;
    const out: Hit[] = [];
    let cut = false;
    for (const h of hits) {
      const m = h.modified;
      if (m !== undefined && this.to !== undefined && m >= this.to) {
        // Sorted ascending: everything after it is past the window too.
        cut = true;
        break;
      }
      if (this.mode === 'tie') {
        if (m !== undefined && m !== this.at) continue;
        if (this.seen.has(h.id)) continue;
        out.push(h);
        continue;
      }
      if (m !== undefined && this.at !== undefined && (m < this.at || (m === this.at && (this.strict || this.seen.has(h.id))))) continue;
      out.push(h);
    }
    if (cut) {
      this.finished = true;
      return out;
    }
    if (this.mode === 'tie') {
      if (hits.length < this.limit) {
        this.mode = 'date';
        this.strict = true;
        this.seen.clear();
        this.lastId = undefined;
        return out;
      }
      const last = hits.at(-1)!;
      if (!/^\d+$/.test(last.id)) throw new DativoError('SOURCE_ERROR', `hubspot search: object id ${JSON.stringify(last.id.slice(0, 40))} is not a number; cannot page by ${ID_PROPERTY}`, { disposition: 'fatal' });
      this.lastId = BigInt(last.id);
      return out;
    }
    if (hits.length < this.limit) {
      this.finished = true;
      return out;
    }
    let next: number | undefined;
    for (let i = hits.length - 1; i >= 0 && next === undefined; i--) next = hits[i]!.modified;
    if (next === undefined) {
      throw new DativoError('SOURCE_ERROR', `hubspot search: no record of a full page carries ${this.property}; cannot go on from a modified date`, { disposition: 'fatal', context: { property: this.property } });
    }
    let first: number | undefined;
    for (let i = 0; i < hits.length && first === undefined; i++) first = hits[i]!.modified;
    if (this.at !== next) this.seen.clear();
    this.at = next;
    this.strict = false;
    for (const h of hits) if (h.modified === next) this.seen.add(h.id);
    if (first === next) {
      // A full page at one date: that date has a page of records or more; read it by id.
      this.mode = 'tie';
      this.lastId = undefined;
      this.tieQueries++;
    }
    return out;
  }
}
