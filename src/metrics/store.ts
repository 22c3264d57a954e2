/**
 * This process's counters and histograms, kept as plain numbers per queue and read at scrape
 * time: recording an event is an increment (a histogram, a bucket search), with no label hashing
 * or allocation per job.
 */
import type { AttemptOutcome } from '../instrument.ts'
import { METRICS, type RpcOutcome } from './definitions.ts'
import type { Recorder } from './recorder.ts'

/** A histogram's buckets (upper bounds, seconds), counts per bucket (not cumulative), sum and count. */
export class Buckets {
  readonly bounds: readonly number[]
  readonly counts: number[]
  sum = 0
  count = 0

  constructor (bounds: readonly number[]) {
    this.bounds = bounds
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe (value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]) i++
    this.counts[i]++
    this.sum += value
    this.count++
  }
}

/** One queue's numbers. */
export class QueueCounters {
  enqueued = 0
  completed = 0
  failedFinal = 0
  failedRetry = 0
  retried = 0
  stalled = 0
  waiters = 0
  readonly wait = new Buckets(METRICS.wait.buckets)
  readonly processing = new Map<AttemptOutcome, Buckets>()
  readonly rpc = new Map<RpcOutcome, Buckets>()
}

function bucketsOf<K> (map: Map<K, Buckets>, key: K, bounds: readonly number[]): Buckets {
  let b = map.get(key)
  if (b === undefined) {
    b = new Buckets(bounds)
    map.set(key, b)
  }
  return b
}

/** A {@link Recorder} into plain numbers; `queues` is what a scrape reads. */
export class CounterStore implements Recorder {
  readonly queues = new Map<string, QueueCounters>()
  /** The last queue asked for: a consumer reports one queue's jobs in a row. */
  #last: QueueCounters | undefined
  #lastName: string | undefined

  of (queue: string): QueueCounters {
    if (queue === this.#lastName) return this.#last as QueueCounters
    let c = this.queues.get(queue)
    if (c === undefined) {
      c = new QueueCounters()
      this.queues.set(queue, c)
    }
    this.#last = c
    this.#lastName = queue
    return c
  }

  enqueued (queue: string): void { this.of(queue).enqueued++ }
  completed (queue: string): void { this.of(queue).completed++ }
  failed (queue: string, final: boolean): void {
    if (final) this.of(queue).failedFinal++
    else this.of(queue).failedRetry++
  }

  retried (queue: string): void { this.of(queue).retried++ }
  stalled (queue: string, count: number): void { this.of(queue).stalled += count }
  processing (queue: string, outcome: AttemptOutcome, seconds: number): void { bucketsOf(this.of(queue).processing, outcome, METRICS.processing.buckets).observe(seconds) }
  wait (queue: string, seconds: number): void { this.of(queue).wait.observe(seconds) }
  rpc (queue: string, outcome: RpcOutcome, seconds: number): void { bucketsOf(this.of(queue).rpc, outcome, METRICS.rpc.buckets).observe(seconds) }
  waiters (queue: string, delta: number): void { this.of(queue).waiters += delta }
}
