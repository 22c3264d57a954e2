/**
 * Runs one queue's {@link QueueState} for a backend that keeps it in this process (memory, file):
 * delivers the notices the state produced to subscribers, hands ready jobs to parked claims, and
 * keeps one timer at the next due delayed job while claims are parked, so nothing polls.
 */
import type { BlockingClaimOptions, ClaimedJob, Notice } from './types.ts'
import { ParkedClaims, type BlockedClaim } from './blocked-claim.ts'
import type { QueueState } from './queue-state.ts'

/** What the backend provides to a {@link QueueDriver}. */
export interface DriverHooks {
  /** The queue's state now (the file backend's log replaces it when it reloads). */
  readonly state: () => QueueState
  /**
   * Claims jobs for a parked claim at `now` (epoch ms; the file backend writes a claim frame, with
   * its own time); none if another process was faster.
   */
  readonly claim: (claim: BlockedClaim, now: number) => ClaimedJob[]
  /** Called when the next delayed job falls due while claims are parked; runs {@link QueueDriver.run} sooner or later. */
  readonly due: () => void
  /** Source of the current time in epoch ms. */
  readonly clock: () => number
  /** True once per occasion on which notices may have been lost: every listener then gets a `gap` notice. */
  readonly lost?: () => boolean
}

interface Listener {
  readonly type: Notice['type'] | undefined
  readonly fn: (notice: Notice) => void
}

/** The driver of one queue of one storage instance. */
export class QueueDriver {
  // The hooks one by one: this runs after every operation of the memory backend.
  readonly #state: () => QueueState
  readonly #claim: (claim: BlockedClaim, now: number) => ClaimedJob[]
  readonly #due: () => void
  readonly #clock: () => number
  readonly #lost: (() => boolean) | undefined
  /** Parked claims, oldest first. */
  readonly #waiters = new ParkedClaims()
  readonly #listeners = new Set<Listener>()
  #dueTimer: ReturnType<typeof setTimeout> | undefined
  /** Epoch ms the due timer is armed for, or Infinity. */
  #dueAt = Infinity
  /** Re-entrancy guard of {@link QueueDriver.run}: a listener may call back into the storage. */
  #busy = false
  #again = false

  constructor (hooks: DriverHooks) {
    this.#state = hooks.state
    this.#claim = hooks.claim
    this.#due = hooks.due
    this.#clock = hooks.clock
    this.#lost = hooks.lost
  }

  /** True when nobody listens to the queue and no claim is parked on it. */
  get idle (): boolean {
    return this.#listeners.size === 0 && this.#waiters.size === 0
  }

  /** Number of parked claims. */
  get parked (): number {
    return this.#waiters.size
  }

  /** Calls `fn` for the queue's notices (of `type` only, if given; `gap` always) until the returned function is called. */
  subscribe (fn: (notice: Notice) => void, type: Notice['type'] | undefined): () => void {
    // An object per call: the same function subscribed twice gets two independent subscriptions.
    const entry: Listener = { type, fn }
    this.#listeners.add(entry)
    return () => { this.#listeners.delete(entry) }
  }

  /** Parks a claim until {@link QueueDriver.run} hands it jobs, its `blockMs` pass or its signal aborts. */
  park (workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    const parked = this.#waiters.park(workerId, options)
    this.#armDue()
    return parked
  }

  /** Delivers the notices the state holds and hands ready jobs to parked claims. Call after every change. */
  run (): void {
    if (this.#busy) {
      this.#again = true
      return
    }
    this.#busy = true
    try {
      do {
        this.#again = false
        this.#deliver()
        this.#wake()
      } while (this.#again || this.#state().notices.size > 0)
    } finally {
      this.#busy = false
    }
  }

  /** Ends every parked claim with no jobs and clears the due timer. The driver can be used again. */
  close (): void {
    clearTimeout(this.#dueTimer)
    this.#dueTimer = undefined
    this.#dueAt = Infinity
    this.#waiters.close()
  }

  #deliver (): void {
    if (this.#lost?.() === true) for (const l of this.#listeners) call(l, { type: 'gap' })
    // Taken one by one: a listener that calls back into the storage may add notices, which this
    // same pass delivers in order (its own run() only marks the loop to go round again).
    const notices = this.#state().notices
    let notice: Notice | undefined
    while ((notice = notices.shift()) !== undefined) {
      for (const l of this.#listeners) if (l.type === undefined || l.type === notice.type) call(l, notice)
    }
  }

  #wake (): void {
    const waiters = this.#waiters
    if (waiters.size > 0) {
      const now = this.#clock()
      let w: BlockedClaim | undefined
      while ((w = waiters.oldest) !== undefined && this.#state().claimable(now)) {
        const jobs = this.#claim(w, now)
        if (jobs.length === 0) break // another process was faster; keep waiting
        waiters.shift(jobs)
      }
    }
    this.#armDue()
  }

  /** Keeps one timer at the earliest due time while claims are parked, so delayed jobs need no polling. */
  #armDue (): void {
    const due = this.#waiters.size > 0 ? this.#state().nextDue() : Infinity
    if (due === this.#dueAt) return
    clearTimeout(this.#dueTimer)
    this.#dueTimer = undefined
    this.#dueAt = due
    if (due === Infinity) return
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = undefined
      this.#dueAt = Infinity
      this.#due()
    }, Math.max(1, due - this.#clock()))
    this.#dueTimer.unref()
  }
}

/**
 * Calls a listener. One that throws must not cost the other listeners their notices: its error is
 * rethrown on its own, as an uncaught exception, like that of an event listener.
 */
function call (listener: Listener, notice: Notice): void {
  try {
    listener.fn(notice)
  } catch (err) {
    queueMicrotask(() => { throw err })
  }
}
