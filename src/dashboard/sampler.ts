/**
 * The dashboard's one reader of queue counts: it samples `Admin` at most once per interval
 * whatever the number of open tabs and live streams, keeps the last snapshot for every page that
 * needs it, and turns the cumulative totals into per-minute rates for the chart.
 */
import type { Admin } from '../admin.ts'
import type { QueueTotals, StateCounts, WorkerEntry } from '../storage/types.ts'

/** One queue in a snapshot. */
export interface QueueSnapshot {
  name: string
  counts: StateCounts
  paused: boolean
  /** Ms the oldest queued job has waited, null when none is queued. */
  oldestWaitingAge: number | null
  totals: QueueTotals
  workers: WorkerEntry[]
  /** Jobs that wait (queued, delayed, failing) or run. */
  active: number
  /** What an operator should look at: paused, jobs and no live consumer. */
  warnings: string[]
}

/** Per-minute rates: `t` are the minutes' starts (epoch ms), the others jobs in that minute. */
export interface Series {
  t: number[]
  processed: number[]
  failed: number[]
}

/** What every page and stream reads. */
export interface Snapshot {
  /** Epoch ms of the sample. */
  at: number
  /** Changes whenever a count, total, pause flag or worker changes (not with ages alone). */
  version: string
  queues: QueueSnapshot[]
  series: Series
}

const MINUTE = 60_000
/** Minutes of rates kept for the chart. */
const MINUTES = 60

/** Samples counts for all pages and streams; one storage read per interval however many read it. */
export class Sampler {
  readonly #admin: Admin
  readonly #interval: number
  readonly #clock: () => number
  #last: Snapshot | undefined
  #pending: Promise<Snapshot> | undefined
  /** Totals per queue at the first and the last sample of each minute sampled, by minute number. */
  readonly #minutes = new Map<number, { first: Map<string, QueueTotals>, last: Map<string, QueueTotals> }>()

  constructor (admin: Admin, interval: number, clock: () => number = Date.now) {
    this.#admin = admin
    this.#interval = interval
    this.#clock = clock
  }

  /** The last snapshot if younger than the interval, else a new one (concurrent callers share one read). */
  get (): Promise<Snapshot> {
    const last = this.#last
    if (last !== undefined && this.#clock() - last.at < this.#interval) return Promise.resolve(last)
    this.#pending ??= this.#sample().finally(() => { this.#pending = undefined })
    return this.#pending
  }

  /** Forget the cached snapshot (after an action, so the next page shows its effect). */
  invalidate (): void {
    this.#last = undefined
  }

  /**
   * The per-minute rates of one queue, or of all queues together (`queue` undefined): jobs that
   * completed and failed in each minute sampled, the current one included. A minute's count is its
   * last sample's totals less the previous minute's last (or, for the first minute sampled, less
   * its own first sample: what happened before the dashboard looked is unknown).
   */
  series (queue?: string): Series {
    const total = (byQueue: ReadonlyMap<string, QueueTotals>, key: 'completed' | 'failed'): number => {
      if (queue !== undefined) return byQueue.get(queue)?.[key] ?? 0
      let sum = 0
      for (const totals of byQueue.values()) sum += totals[key]
      return sum
    }
    const out: Series = { t: [], processed: [], failed: [] }
    for (const [m, { first, last }] of [...this.#minutes].sort((a, b) => a[0] - b[0])) {
      const base = this.#minutes.get(m - 1)?.last ?? first
      out.t.push(m * MINUTE)
      // Totals never decrease but across a clear(): a negative difference is a reset, not a rate.
      out.processed.push(Math.max(0, total(last, 'completed') - total(base, 'completed')))
      out.failed.push(Math.max(0, total(last, 'failed') - total(base, 'failed')))
    }
    return out
  }

  async #sample (): Promise<Snapshot> {
    const list = await this.#admin.queues()
    const queues = await Promise.all(list.map(async ({ name }) => {
      const [stats, workers] = await Promise.all([this.#admin.counts(name), this.#admin.workers(name)])
      const c = stats.counts
      const active = c.queued + c.delayed + c.failing + c.processing
      const warnings: string[] = []
      if (stats.paused) warnings.push('paused: no consumer claims its jobs until it is resumed')
      if (workers.length === 0 && active > 0) warnings.push(`${active} job${active === 1 ? '' : 's'} waiting or running and no live consumer`)
      return { name, counts: c, paused: stats.paused, oldestWaitingAge: stats.oldestWaitingAge, totals: stats.totals, workers, active, warnings }
    }))
    const at = this.#clock()
    this.#record(at, queues)
    const version = digest(JSON.stringify(queues.map(q => [q.name, q.counts, q.paused, q.totals, q.workers.map(w => [w.id, w.running])])))
    const snapshot: Snapshot = { at, version, queues, series: this.series() }
    this.#last = snapshot
    return snapshot
  }

  #record (at: number, queues: readonly QueueSnapshot[]): void {
    const minute = Math.floor(at / MINUTE)
    const totals = new Map(queues.map(q => [q.name, q.totals]))
    const seen = this.#minutes.get(minute)
    if (seen === undefined) this.#minutes.set(minute, { first: totals, last: totals })
    else seen.last = totals
    for (const m of this.#minutes.keys()) if (m <= minute - MINUTES) this.#minutes.delete(m)
  }
}

/** A short, stable digest (FNV-1a, 32 bits, hex) of a string: enough to tell two snapshots apart. */
function digest (text: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return (h >>> 0).toString(16)
}
