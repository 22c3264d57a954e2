/**
 * Internal instrumentation hook: what `relayq/metrics` and `relayq/tracing` observe in Producer,
 * Consumer and Reaper. Not exported by 'relayq'. With nothing attached `probe` is undefined, and
 * the components pay a variable read per job or call: no allocation, no call.
 */
import type { ClaimedJob, EnqueueOutcome, NewJob } from './storage/types.ts'

/** How an attempt ended, once its settlement was stored (`lost`: its lease was taken away, or fencing refused it). */
export type AttemptOutcome = 'completed' | 'failed' | 'retry' | 'cancelled' | 'released' | 'lost'

/** One running attempt, as a tracer follows it. */
export interface AttemptProbe {
  /** Runs the handler (inside the attempt's span). */
  run<J, T> (handler: (job: J) => T, job: J): T
  /** The outcome its worker decided; `error` for failed and retry outcomes. */
  end (outcome: AttemptOutcome, error?: unknown): void
}

/**
 * An observer of the queue components. The consumer side is batch-shaped so that metrics cost an
 * increment per job: `claimed` once per batch, `decided` when a handler's outcome is known (the
 * duration since the batch was claimed), `stored` once the storage applied the settlement.
 */
export interface Probe {
  /** A producer is about to store `job`: answers the job to store (the same one, or a copy with `trace`). */
  enqueue (queue: string, job: NewJob): NewJob
  /** The storage answered the enqueue of `job` (the object `enqueue` answered), or failed (`outcome` undefined). */
  enqueued (queue: string, job: NewJob, outcome: EnqueueOutcome | undefined, error?: unknown): void
  /** Runs one `enqueueAndWait` call (`call` makes it) and follows it to its end. */
  call<T> (queue: string, id: string, call: () => Promise<T>): Promise<T>
  /**
   * A consumer claimed `jobs` and starts them now (`now`: epoch ms). Answers the batch's start
   * mark, epoch ms (> 0; `now` itself unless a probe knows better), handed back with each job's `decided`.
   */
  claimed (queue: string, jobs: readonly ClaimedJob[], now: number): number
  /** A consumer starts an attempt of `job`: a tracer answers what follows it; metrics answer undefined. */
  attempt (queue: string, job: ClaimedJob, workerId: string): AttemptProbe | undefined
  /** A worker decided the outcome of an attempt started at `begun` (the mark `claimed` answered). */
  decided (queue: string, outcome: AttemptOutcome, begun: number): void
  /** The storage applied a settlement with this outcome (fencing refusals are not reported). */
  stored (queue: string, outcome: AttemptOutcome): void
  /** The reaper recovered expired leases: `requeued` jobs went back to the queue, `failed` failed for good. */
  stalled (queue: string, requeued: number, failed: number): void
}

/** The attached observers as one (read by the components; undefined when none). */
export let probe: Probe | undefined

const attached: Probe[] = []

/** Attaches an observer to every Producer, Consumer and Reaper of this process; answers the detach. */
export function attach (observer: Probe): () => void {
  attached.push(observer)
  probe = attached.length === 1 ? observer : fanOut([...attached])
  return () => {
    const at = attached.indexOf(observer)
    if (at < 0) return
    attached.splice(at, 1)
    probe = attached.length === 0 ? undefined : attached.length === 1 ? attached[0] : fanOut([...attached])
  }
}

/** Several observers as one: enqueue and call nest in attach order, attempts run inside each other. */
function fanOut (probes: readonly Probe[]): Probe {
  return {
    enqueue: (queue, job) => probes.reduce((j, p) => p.enqueue(queue, j), job),
    enqueued: (queue, job, outcome, error) => { for (const p of probes) p.enqueued(queue, job, outcome, error) },
    call: (queue, id, call) => probes.reduceRight<() => Promise<any>>((inner, p) => () => p.call(queue, id, inner), call)(),
    claimed: (queue, jobs, now) => probes.reduce((mark, p) => Math.max(mark, p.claimed(queue, jobs, now)), 0),
    attempt (queue, job, workerId) {
      const attempts = probes.map(p => p.attempt(queue, job, workerId)).filter((a): a is AttemptProbe => a !== undefined)
      if (attempts.length <= 1) return attempts[0]
      return {
        run: (handler, job) => attempts.reduceRight<(j: any) => any>((inner, a) => j => a.run(inner, j), handler)(job),
        end: (outcome, error) => { for (const a of attempts) a.end(outcome, error) }
      }
    },
    decided: (queue, outcome, begun) => { for (const p of probes) p.decided(queue, outcome, begun) },
    stored: (queue, outcome) => { for (const p of probes) p.stored(queue, outcome) },
    stalled: (queue, requeued, failed) => { for (const p of probes) p.stalled(queue, requeued, failed) }
  }
}
