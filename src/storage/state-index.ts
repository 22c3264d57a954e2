/**
 * The ordered structures of QueueState: the index of one state (its jobs by stamp) and the heap
 * of delayed and failing jobs by due time.
 */
import { compareIds, type Rec } from './job-record.ts'

/** Stale entries tolerated before a compaction: at least this many, and more than the live ones. */
const COMPACT_MIN = 1024

/**
 * The jobs of one state in stamp order. Stamps only grow, so a job entering the state is
 * appended: O(1). A job leaving it is not searched for: its entry goes stale (the record's stamp
 * no longer matches) and is skipped, then compacted away once stale entries outnumber live ones.
 * Entries leave mostly from the head (claims, retention, settles in claim order): a job leaving
 * from the head moves the head pointer past it and the stale entries behind it, so a queue
 * drained in order never needs a compaction (which reads every record it keeps, cold ones
 * included), and the passed prefix is dropped without reading any record. All amortized O(1).
 * A page is a binary search plus the page; the count is O(1).
 */
export class StateIndex {
  readonly #recs: Rec[] = []
  readonly #stamps: number[] = []
  #head = 0
  /** Live entries: jobs in this state now. */
  live = 0

  push (rec: Rec): void {
    this.#recs.push(rec)
    this.#stamps.push(rec.stamp)
    this.live++
  }

  /** `rec` is leaving the state (called before its stamp changes or is cleared): its entry goes stale. */
  left (rec: Rec): void {
    this.live--
    const recs = this.#recs
    let head = this.#head
    if (recs[head] === rec) {
      // Leaving from the head (the usual case): pass it and the stale entries right behind it.
      head++
      while (head < recs.length && !this.#valid(head)) head++
      this.#head = head
      if (head > COMPACT_MIN && head * 2 > recs.length) this.#dropHead()
      return
    }
    const stale = recs.length - head - this.live
    if (stale > COMPACT_MIN && stale > this.live) this.#compact()
  }

  /** The oldest live job. */
  first (): Rec | undefined {
    this.#skipHead()
    return this.#head < this.#recs.length ? this.#recs[this.#head] : undefined
  }

  /** The newest live job. */
  last (): Rec | undefined {
    for (let i = this.#recs.length - 1; i >= this.#head; i--) if (this.#valid(i)) return this.#recs[i]
    return undefined
  }

  /** Live jobs in stamp order (oldest first). */
  * [Symbol.iterator] (): Generator<Rec> {
    const recs = this.#recs
    for (let i = this.#head; i < recs.length; i++) if (this.#valid(i)) yield recs[i]
  }

  /**
   * Up to `limit` live jobs with lo <= stamp <= hi, after the stamp `after` (exclusive) in `order`,
   * and whether more follow.
   */
  range (lo: number, hi: number, order: 'asc' | 'desc', after: number | undefined, limit: number): { recs: Rec[], more: boolean } {
    const recs: Rec[] = []
    if (order === 'asc') {
      const from = after === undefined ? lo : Math.max(lo, after + 1)
      for (let i = this.#search(from); i < this.#recs.length && this.#stamps[i] <= hi; i++) {
        if (!this.#valid(i)) continue
        if (recs.length === limit) return { recs, more: true }
        recs.push(this.#recs[i])
      }
    } else {
      const to = after === undefined ? hi : Math.min(hi, after - 1)
      for (let i = this.#search(to + 1) - 1; i >= this.#head && this.#stamps[i] >= lo; i--) {
        if (!this.#valid(i)) continue
        if (recs.length === limit) return { recs, more: true }
        recs.push(this.#recs[i])
      }
    }
    return { recs, more: false }
  }

  /** Live jobs with lo <= stamp <= hi. O(log n) once stale entries are compacted away. */
  count (lo: number, hi: number): number {
    this.#skipHead()
    if (this.#recs.length - this.#head !== this.live) this.#compact()
    return Math.max(0, this.#search(hi + 1) - this.#search(lo))
  }

  /** Live jobs with a stamp below `stamp`, walking from the oldest: cheap when they are few (aged entries). */
  countBelow (stamp: number): number {
    let n = 0
    for (let i = this.#head; i < this.#recs.length && this.#stamps[i] < stamp; i++) if (this.#valid(i)) n++
    return n
  }

  #valid (i: number): boolean {
    return this.#recs[i].stamp === this.#stamps[i]
  }

  /** The first position (from the head) whose stamp is >= `stamp`. */
  #search (stamp: number): number {
    const stamps = this.#stamps
    let lo = this.#head
    let hi = stamps.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (stamps[mid] < stamp) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  #skipHead (): void {
    const n = this.#recs.length
    while (this.#head < n && !this.#valid(this.#head)) this.#head++
    if (this.#head > COMPACT_MIN && this.#head * 2 > n) this.#dropHead()
  }

  /** Drops the entries before the head, reading no record (those behind it stay, stale or not). */
  #dropHead (): void {
    this.#recs.splice(0, this.#head)
    this.#stamps.splice(0, this.#head)
    this.#head = 0
  }

  /** Moves the live entries to the front, in place (no new arrays: less for the GC on the hot path). */
  #compact (): void {
    const recs = this.#recs
    const stamps = this.#stamps
    let to = 0
    for (let i = this.#head; i < recs.length; i++) {
      if (!this.#valid(i)) continue
      recs[to] = recs[i]
      stamps[to] = stamps[i]
      to++
    }
    recs.length = to
    stamps.length = to
    this.#head = 0
  }
}

/** Delayed and failing jobs ordered by (dueAt, id): a total order, the same on every backend. */
export class DueHeap {
  readonly #items: Rec[] = []

  get size (): number { return this.#items.length }

  peek (): Rec | undefined { return this.#items[0] }

  push (rec: Rec): void {
    const items = this.#items
    let i = items.length
    items.push(rec)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(rec, items[parent])) break
      items[i] = items[parent]
      i = parent
    }
    items[i] = rec
  }

  pop (): Rec | undefined {
    const items = this.#items
    const top = items[0]
    const last = items.pop()
    const n = items.length
    if (n === 0 || last === undefined) return top
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && before(items[child + 1], items[child])) child++
      if (!before(items[child], last)) break
      items[i] = items[child]
      i = child
    }
    items[i] = last
    return top
  }
}

function before (a: Rec, b: Rec): boolean {
  return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && compareIds(a.id, b.id) < 0)
}
