/**
 * Progress of a resumable run (issue 17, `--checkpoint`), without I/O: the key space is cut into
 * fixed ranges (kept in the checkpoint, so a resumed run plans the very same ones), and each
 * range has a watermark: the key up to which both listings were read and every action settled
 * (copied, skipped, or a delete spooled). A failed action holds its range's watermark back for
 * the rest of the run, so the next run plans that key again. A resumed run lists each range only
 * after its watermark, and ranges marked done not at all; the deletes a range planned below its
 * watermark are handed to `persist` with it, to be run (after everything else succeeded) by
 * whichever run gets that far.
 */
import { compareKeys } from "../core/keys.js";
import type { KeyRange } from "../core/types.js";
import type { Action } from "./planner.js";

export interface PlannedDelete {
  key: string;
  size: number;
  etag?: string;
}

/** What a checkpoint keeps of one range. */
export interface RangeMark {
  /** Every key up to this one is settled. */
  after?: string;
  /** Listed to its end and every action settled. */
  done: boolean;
}

/** One change of a range's progress, to be persisted. */
export interface RangeUpdate extends RangeMark {
  index: number;
  /** Deletes planned up to `after` since the last update. */
  deletes: PlannedDelete[];
  /** Source entries listed in the range since the last update (the empty-source guard adds them up). */
  sourceObjects: number;
}

interface Entry {
  key: string;
  settled: boolean;
  failed: boolean;
  delete?: PlannedDelete;
}

class RangeState {
  readonly queue: Entry[] = [];
  readonly byKey = new Map<string, Entry>();
  deletes: PlannedDelete[] = [];
  sourceObjects = 0;
  listed = false;
  blocked = false;
  changed = false;
  constructor(
    readonly range: KeyRange,
    public mark: RangeMark,
  ) {}

  advance(): void {
    while (this.queue.length > 0 && this.queue[0]!.settled) {
      const head = this.queue.shift()!;
      this.byKey.delete(head.key);
      if (head.failed) {
        this.blocked = true;
        this.queue.length = 0;
        this.byKey.clear();
        return;
      }
      if (head.delete) this.deletes.push(head.delete);
      this.mark = { after: head.key, done: false };
      this.changed = true;
    }
    if (this.listed && !this.blocked && this.queue.length === 0 && !this.mark.done) {
      this.mark = { ...this.mark, done: true };
      this.changed = true;
    }
  }
}

export class CheckpointProgress {
  private readonly states: RangeState[];

  constructor(
    readonly ranges: readonly KeyRange[],
    marks: ReadonlyMap<number, RangeMark>,
  ) {
    this.states = ranges.map((r, i) => new RangeState(r, marks.get(i) ?? { done: false }));
  }

  /** The ranges left to plan, each from after its watermark. */
  pending(): { index: number; range: KeyRange }[] {
    return this.states.flatMap((s, index) =>
      s.mark.done
        ? []
        : [{ index, range: s.mark.after !== undefined ? { ...s.range, startAfter: s.mark.after } : s.range }],
    );
  }

  /** True when every range is done. */
  get complete(): boolean {
    return this.states.every((s) => s.mark.done);
  }

  /** The plan of range `index`, its actions and its end noted as they pass. */
  async *track(index: number, actions: AsyncIterable<Action>): AsyncGenerator<Action> {
    const state = this.states[index]!;
    for await (const action of actions) {
      const entry: Entry = { key: action.key, settled: false, failed: false };
      if (action.type === "delete") {
        // Spooled as soon as it is handed on; it runs (or is kept in the checkpoint) later.
        entry.settled = true;
        entry.delete = { key: action.key, size: action.target.size, etag: action.target.etag };
      }
      state.queue.push(entry);
      state.byKey.set(action.key, entry);
      yield action;
      if (entry.settled) state.advance();
    }
    state.listed = true;
    state.advance();
  }

  /** A source entry listed in range `index`. */
  sourceEntry(index: number): void {
    this.states[index]!.sourceObjects++;
  }

  /** The executor is done with the action for `key`: settled, or failed. */
  settled(key: string, ok: boolean): void {
    const state = this.states[this.rangeOf(key)];
    const entry = state?.byKey.get(key);
    if (!state || !entry) return;
    entry.settled = true;
    entry.failed = !ok;
    state.advance();
  }

  /** Progress since the last call, one update per range that moved. */
  updates(): RangeUpdate[] {
    const out: RangeUpdate[] = [];
    this.states.forEach((s, index) => {
      if (!s.changed) return;
      out.push({ index, ...s.mark, deletes: s.deletes, sourceObjects: s.sourceObjects });
      s.deletes = [];
      s.sourceObjects = 0;
      s.changed = false;
    });
    return out;
  }

  /** The range holding `key`: ranges are contiguous and sorted (rangesFromSplitPoints). */
  private rangeOf(key: string): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const end = this.ranges[mid]!.endAt;
      if (end !== undefined && compareKeys(key, end) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
