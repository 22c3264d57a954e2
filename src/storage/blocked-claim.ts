/**
 * Claims parked on an empty queue, for the backends that wake claims themselves (memory, file):
 * each ends with the jobs a wake-up hands it, or with none when its `blockMs` pass or its signal
 * aborts.
 *
 * A consumer parks a claim each time it finds its queue empty, once per call when calls come one
 * at a time, so parking is kept cheap: a parked claim's record and its timer are reused by the
 * next claim (the timer re-armed with `refresh()`), and each signal gets one abort listener for
 * as long as it lives, instead of one per claim.
 */
import type { BlockingClaimOptions, ClaimedJob } from './types.ts'

/** What a wake-up needs to claim jobs for a parked claim. */
export interface BlockedClaim {
  readonly workerId: string
  /** Jobs the claim takes at most. */
  readonly max: number
  /** Lease of the jobs it takes, in ms. */
  readonly leaseMs: number
}

/** A parked claim's record; `resolve` is undefined while it is free for reuse. */
interface Slot extends BlockedClaim {
  workerId: string
  max: number
  leaseMs: number
  resolve: ((jobs: ClaimedJob[]) => void) | undefined
  signal: AbortSignal | undefined
  blockMs: number
  timer: ReturnType<typeof setTimeout> | undefined
}

let captured: ((jobs: ClaimedJob[]) => void) | undefined
/** A promise executor that is not a new closure per claim. */
function capture (resolve: (jobs: ClaimedJob[]) => void): void {
  captured = resolve
}

/**
 * The prototype of Node's own timers. Only they are re-armed by `refresh()`: a fake timer (a test's
 * mock timers) is replaced by a new one instead, since a fake may not reschedule on refresh.
 */
const NODE_TIMER: object | null = (() => {
  const probe = setTimeout(() => {}, 1)
  clearTimeout(probe)
  return Object.getPrototypeOf(probe)
})()

/** The parked claims of one queue of one storage instance, oldest first. */
export class ParkedClaims {
  readonly #parked: Slot[] = []
  readonly #free: Slot[] = []
  /** Signals that already have our abort listener. */
  readonly #signals = new WeakSet<AbortSignal>()

  /** Parked claims. */
  get size (): number {
    return this.#parked.length
  }

  /** The oldest parked claim. */
  get oldest (): BlockedClaim | undefined {
    return this.#parked[0]
  }

  /** Parks a claim until {@link ParkedClaims.shift} hands it jobs, its `blockMs` pass or its signal aborts. */
  park (workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    const promise = new Promise<ClaimedJob[]>(capture)
    const slot = this.#free.pop() ?? { workerId, max: 0, leaseMs: 0, resolve: undefined, signal: undefined, blockMs: -1, timer: undefined }
    slot.workerId = workerId
    slot.max = options.max
    slot.leaseMs = options.leaseMs
    slot.resolve = captured
    captured = undefined
    const signal = options.signal
    slot.signal = signal
    if (signal !== undefined && !this.#signals.has(signal)) {
      this.#signals.add(signal)
      signal.addEventListener('abort', this.#onAbort, { once: true })
    }
    const timer = slot.timer
    if (timer !== undefined && slot.blockMs === options.blockMs && Object.getPrototypeOf(timer) === NODE_TIMER) {
      timer.refresh()
      timer.ref()
    } else {
      clearTimeout(timer)
      slot.blockMs = options.blockMs
      slot.timer = setTimeout(this.#expire, options.blockMs, slot)
    }
    this.#parked.push(slot)
    return promise
  }

  /** Ends the oldest parked claim with `jobs`. */
  shift (jobs: ClaimedJob[]): void {
    const slot = this.#parked.shift()
    if (slot !== undefined) this.#end(slot, jobs)
  }

  /** Ends every parked claim with no jobs and clears every timer. The instance can be used again. */
  close (): void {
    for (const slot of this.#parked.splice(0)) this.#end(slot, [])
    for (const slot of this.#free.splice(0)) clearTimeout(slot.timer)
  }

  /** Ends a claim taken out of `#parked`; its record becomes free, its timer stays armed but no longer holds the process. */
  #end (slot: Slot, jobs: ClaimedJob[]): void {
    const resolve = slot.resolve
    if (resolve === undefined) return
    slot.resolve = undefined
    slot.signal = undefined
    slot.timer?.unref()
    this.#free.push(slot)
    resolve(jobs)
  }

  #unpark (slot: Slot): void {
    const i = this.#parked.indexOf(slot)
    if (i < 0) return
    this.#parked.splice(i, 1)
    this.#end(slot, [])
  }

  /** A claim's `blockMs` passed (a free record's timer firing late is ignored). */
  readonly #expire = (slot: Slot): void => {
    if (slot.resolve !== undefined) this.#unpark(slot)
  }

  readonly #onAbort = (event: Event): void => {
    const signal = event.target as AbortSignal
    for (const slot of this.#parked.filter(s => s.signal === signal)) this.#unpark(slot)
  }
}
