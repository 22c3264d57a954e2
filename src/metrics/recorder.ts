/**
 * The metrics as a {@link Probe}: counts and timings of this process's producers, consumers and
 * reaper, handed to a {@link Recorder} (prom-client or an OpenTelemetry meter). Counters count
 * outcomes once stored; durations are in seconds.
 */
import { performance } from 'node:perf_hooks'
import { JobCancelledError, JobFailedError, TimeoutError } from '../errors.ts'
import type { AttemptOutcome, AttemptProbe, Probe } from '../instrument.ts'
import type { RpcOutcome } from './definitions.ts'

/** Where the numbers go; one method per metric of {@link METRICS}. */
export interface Recorder {
  enqueued (queue: string): void
  completed (queue: string): void
  failed (queue: string, final: boolean): void
  retried (queue: string): void
  stalled (queue: string, count: number): void
  processing (queue: string, outcome: AttemptOutcome, seconds: number): void
  wait (queue: string, seconds: number): void
  rpc (queue: string, outcome: RpcOutcome, seconds: number): void
  /** `delta` +1 when a call starts waiting, −1 when it ends. */
  waiters (queue: string, delta: number): void
}

/** What an `enqueueAndWait` rejection means for its caller. */
export function rpcOutcome (error: unknown): RpcOutcome {
  if (error instanceof TimeoutError) return 'timeout'
  if (error instanceof JobFailedError) return 'failed'
  if (error instanceof JobCancelledError) return 'cancelled'
  return 'error'
}

class Attempt implements AttemptProbe {
  readonly #recorder: Recorder
  readonly #queue: string
  readonly #started = performance.now()

  constructor (recorder: Recorder, queue: string) {
    this.#recorder = recorder
    this.#queue = queue
  }

  run<J, T> (handler: (job: J) => T, job: J): T {
    return handler(job)
  }

  end (outcome: AttemptOutcome): void {
    const r = this.#recorder
    r.processing(this.#queue, outcome, (performance.now() - this.#started) / 1000)
    if (outcome === 'completed') r.completed(this.#queue)
    else if (outcome === 'failed') r.failed(this.#queue, true)
    else if (outcome === 'retry') r.failed(this.#queue, false)
  }
}

/** A probe that records into `recorder`. `clock`: epoch ms, for the wait (due → started). */
export function metricsProbe (recorder: Recorder, clock: () => number = Date.now): Probe {
  return {
    enqueue: (_queue, job) => job,
    enqueued (queue, _job, outcome) {
      if (outcome?.status === 'queued') recorder.enqueued(queue)
    },
    async call (queue, _id, call) {
      const started = performance.now()
      recorder.waiters(queue, 1)
      try {
        const value = await call()
        recorder.rpc(queue, 'completed', (performance.now() - started) / 1000)
        return value
      } catch (err) {
        recorder.rpc(queue, rpcOutcome(err), (performance.now() - started) / 1000)
        throw err
      } finally {
        recorder.waiters(queue, -1)
      }
    },
    attempt (queue, job) {
      if (job.readyAt !== undefined) recorder.wait(queue, Math.max(0, clock() - job.readyAt) / 1000)
      if (job.attempts > 1) recorder.retried(queue)
      return new Attempt(recorder, queue)
    },
    stalled (queue, requeued, failed) {
      recorder.stalled(queue, requeued + failed)
      for (let i = 0; i < failed; i++) recorder.failed(queue, true)
    }
  }
}
