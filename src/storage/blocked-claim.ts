/**
 * A claim parked on an empty queue, for the backends that wake claims themselves (memory, file):
 * it ends with the jobs a wake-up hands it, or with none when its `blockMs` pass or its signal aborts.
 */
import type { BlockingClaimOptions, ClaimedJob } from './types.ts'

export interface BlockedClaim {
  readonly workerId: string
  /** Jobs the claim takes at most. */
  readonly max: number
  /** Lease of the jobs it takes, in ms. */
  readonly leaseMs: number
  resolve: (jobs: ClaimedJob[]) => void
  timer: ReturnType<typeof setTimeout> | undefined
  cleanup: (() => void) | undefined
}

/**
 * Parks a claim: `park` puts it where wake-ups find it; on timeout or abort `unpark` takes it
 * out again and the claim resolves with no jobs.
 */
export function blockClaim (
  workerId: string, options: BlockingClaimOptions, park: (claim: BlockedClaim) => void, unpark: (claim: BlockedClaim) => void
): Promise<ClaimedJob[]> {
  return new Promise(resolve => {
    const claim: BlockedClaim = { workerId, max: options.max, leaseMs: options.leaseMs, resolve, timer: undefined, cleanup: undefined }
    const drop = (): void => {
      unpark(claim)
      endClaim(claim, [])
    }
    claim.timer = setTimeout(drop, options.blockMs)
    const signal = options.signal
    if (signal !== undefined) {
      signal.addEventListener('abort', drop, { once: true })
      claim.cleanup = () => signal.removeEventListener('abort', drop)
    }
    park(claim)
  })
}

/** Ends a parked claim with `jobs` (none: it gave up), releasing its timer and abort listener. */
export function endClaim (claim: BlockedClaim, jobs: ClaimedJob[]): void {
  clearTimeout(claim.timer)
  claim.cleanup?.()
  claim.resolve(jobs)
}
