// The tenant's entities as summaries, kept current from the node's change
// feed: one full read at start (`GET /v1/entities`, paged by feed cursor),
// then only what changed (`?since=cursor`, or the summaries that live events
// carry). The overview and a permit's children are read from here.

import { api } from "./api.js";

const PAGE = 1000;

/** Summaries by id, and the feed cursor they are current to. */
export class Entities {
  constructor() {
    this.byId = new Map();
    this.cursor = 0;
    this.loaded = false;
  }

  /**
   * Read every change after the cursor (the first call reads everything);
   * resolves to how many summaries were new.
   */
  async catchUp() {
    let fresh = 0;
    for (;;) {
      const page = await api(`/v1/entities?since=${this.cursor}&limit=${PAGE}`);
      for (const s of page.entities) fresh += this.upsert(s) ? 1 : 0;
      this.cursor = Math.max(this.cursor, page.next_cursor || 0);
      if (!page.has_more) break;
    }
    this.loaded = true;
    return fresh;
  }

  /** Forget everything and read it all again (after a missed event). */
  async reload() {
    this.byId.clear();
    this.cursor = 0;
    await this.catchUp();
  }

  /**
   * Take a summary in (from a page or a live `change` event); returns whether
   * it was newer than the one known.
   */
  upsert(summary) {
    if (!summary || !summary.id) return false;
    const known = this.byId.get(summary.id);
    if (known && (known.feed_seq || 0) >= (summary.feed_seq || 0)) return false;
    this.byId.set(summary.id, summary);
    return true;
  }

  /** Live permits (not deleted). */
  permits() {
    return [...this.byId.values()].filter((s) => s.type === "permit" && !s.deleted);
  }

  /** A permit's live isolation points and closeouts. */
  childrenOf(permitId) {
    return [...this.byId.values()].filter((s) => s.permit_id === permitId && !s.deleted);
  }

  /** The summary of `id`, if known. */
  get(id) {
    return this.byId.get(id);
  }

  /** How many live entities have open conflicts or rejected operations. */
  needingAttention() {
    let n = 0;
    for (const s of this.byId.values()) {
      if (!s.deleted && (s.conflicts > 0 || s.rejected > 0)) n += 1;
    }
    return n;
  }
}
