/**
 * The queue gauges, read from the storage through Admin at scrape time: counts per state, age of
 * the oldest queued job, paused, cumulative totals. Reads are cached for `interval` ms and shared
 * by concurrent scrapes, so a scrape every second (or several scrapers) costs the storage at most
 * one read of each queue per interval.
 */
import type { Admin } from '../admin.ts'
import type { QueueTotals, StateCounts } from '../storage/types.ts'

/** One queue as the gauges show it. */
export interface QueueSnapshot {
  readonly queue: string
  readonly counts: StateCounts
  /** Seconds the oldest queued job has waited (0 when none). */
  readonly oldestAge: number
  readonly paused: boolean
  readonly totals: QueueTotals
}

export interface QueueGaugesOptions {
  /** Only these queues. @default every queue of the storage (Admin.queues) */
  readonly queues?: readonly string[] | undefined
  /** Shortest time between two reads of the storage, in ms; scrapes in between get the cached values. @default 5000 */
  readonly interval?: number
  /** @default Date.now */
  readonly clock?: () => number
}

export class QueueGauges {
  readonly #admin: Admin
  readonly #queues: readonly string[] | undefined
  readonly #interval: number
  readonly #clock: () => number
  #cached: QueueSnapshot[] = []
  #readAt = -Infinity
  #reading: Promise<QueueSnapshot[]> | undefined

  constructor (admin: Admin, options: QueueGaugesOptions = {}) {
    this.#admin = admin
    this.#queues = options.queues
    this.#interval = options.interval ?? 5000
    this.#clock = options.clock ?? Date.now
  }

  /** The snapshots, from the cache when it is younger than `interval`. A failed read rejects (the scrape shows no gauges rather than stale ones). */
  read (): Promise<QueueSnapshot[]> {
    if (this.#clock() - this.#readAt < this.#interval) return Promise.resolve(this.#cached)
    this.#reading ??= this.#read().then(snapshots => {
      this.#cached = snapshots
      this.#readAt = this.#clock()
      return snapshots
    }).finally(() => { this.#reading = undefined })
    return this.#reading
  }

  async #read (): Promise<QueueSnapshot[]> {
    const admin = this.#admin
    const names = this.#queues ?? (await admin.queues()).map(q => q.name)
    const snapshots: QueueSnapshot[] = []
    // One queue at a time: a storage with many queues sees a trickle, not a burst.
    for (const queue of names) {
      const stats = await admin.counts(queue)
      snapshots.push({ queue, counts: stats.counts, oldestAge: (stats.oldestWaitingAge ?? 0) / 1000, paused: stats.paused, totals: stats.totals })
    }
    return snapshots
  }
}
