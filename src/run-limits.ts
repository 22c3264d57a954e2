/** A running job as {@link RunLimits} sees it. */
export interface LimitedJob {
  /** Epoch ms at which the attempt has run too long. */
  readonly deadline: number
  /** The job has a limit of its own (`enqueue(..., { visibilityTimeout })`), not the consumer's. */
  readonly ownLimit: boolean
  /** The timer of a job with its own limit, while it runs. */
  limitTimer: ReturnType<typeof setTimeout> | undefined
}

/**
 * Calls `overrun(job)` for each running job still running at its deadline (the run-time limit of
 * issue 10 item 3), with as few timers as possible. Jobs under the consumer's limit reach their
 * deadlines in the order they started, which is the order of the running map: one timer, armed
 * for the oldest of them, serves them all. A job with a limit of its own has a timer of its own.
 * `overrun` must remove the job from the running map.
 */
export class RunLimits<J extends LimitedJob> {
  readonly #running: ReadonlyMap<string, J>
  readonly #overrun: (job: J) => void
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor (running: ReadonlyMap<string, J>, overrun: (job: J) => void) {
    this.#running = running
    this.#overrun = overrun
  }

  /** Starts watching `job`, which was just added to the running map. */
  watch (job: J): void {
    if (job.ownLimit) {
      job.limitTimer = setTimeout(this.#overrun, Math.max(0, job.deadline - Date.now()), job)
      job.limitTimer.unref()
    } else if (this.#timer === undefined) {
      // A timer armed already is due first: every job under the consumer's limit started before this one.
      this.#arm(job.deadline)
    }
  }

  /** Stops watching a job that left the running map. */
  forget (job: J): void {
    if (job.limitTimer === undefined) return
    clearTimeout(job.limitTimer)
    job.limitTimer = undefined
  }

  /** Stops the shared timer (jobs with a limit of their own are forgotten one by one). */
  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm (deadline: number): void {
    this.#timer = setTimeout(this.#check, Math.max(0, deadline - Date.now()))
    this.#timer.unref()
  }

  readonly #check = (): void => {
    this.#timer = undefined
    const now = Date.now()
    for (const job of this.#running.values()) {
      if (job.ownLimit) continue
      if (job.deadline > now) {
        this.#arm(job.deadline)
        return
      }
      this.#overrun(job)
    }
  }
}
