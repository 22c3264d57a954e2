/**
 * Admin.explain: why a job is not running, or what it is doing, from its detail, the queue's pause
 * flag and the worker registry. Each reason is data (a `code` and its facts) and a sentence.
 */
import type { JobDetail, WorkerEntry } from './storage/types.ts'
import { decodeError } from './serde.ts'

/** One reason, as data. Times are epoch ms. */
export type ExplainReason =
  | { code: 'finished', state: 'completed' | 'failed' | 'cancelled', at: number }
  | { code: 'paused' }
  | { code: 'delayed', until: number }
  | { code: 'backoff', until: number, attempts: number, maxAttempts: number, lastError?: string }
  | { code: 'waiting', ahead: number }
  | { code: 'running', worker: string, leaseUntil: number, workerAlive: boolean }
  | { code: 'cancel_requested' }
  | { code: 'no_consumer' }

/** What {@link explain} answers. */
export interface Explanation {
  id: string
  state: JobDetail['state']
  reasons: ExplainReason[]
  /** The reasons in words, one sentence each. */
  text: string
}

const iso = (ms: number): string => new Date(ms).toISOString()

/** Explains `job` given the queue's state and its live workers at `now`. */
export function explain (job: JobDetail, paused: boolean, workers: readonly WorkerEntry[], now: number): Explanation {
  const reasons: ExplainReason[] = []
  const state = job.state
  if (state === 'completed' || state === 'failed' || state === 'cancelled') {
    reasons.push({ code: 'finished', state, at: job.finishedAt ?? job.enteredAt })
  } else if (state === 'processing') {
    const worker = job.worker ?? ''
    reasons.push({ code: 'running', worker, leaseUntil: job.leaseUntil ?? 0, workerAlive: workers.some(w => w.id === worker) })
    if (job.cancelRequested) reasons.push({ code: 'cancel_requested' })
  } else {
    if (paused) reasons.push({ code: 'paused' })
    if (state === 'delayed') reasons.push({ code: 'delayed', until: job.dueAt ?? now })
    if (state === 'failing') {
      const lastError = job.error === undefined ? undefined : decodeError(job.error).message
      reasons.push({ code: 'backoff', until: job.dueAt ?? now, attempts: job.attempts, maxAttempts: job.maxAttempts, ...(lastError !== undefined && { lastError }) })
    }
    if (state === 'queued') reasons.push({ code: 'waiting', ahead: job.ahead ?? 0 })
    if (workers.length === 0) reasons.push({ code: 'no_consumer' })
  }
  return { id: job.id, state, reasons, text: reasons.map(r => sentence(r, now)).join(' ') }
}

function sentence (r: ExplainReason, now: number): string {
  switch (r.code) {
    case 'finished': return `It finished: ${r.state} at ${iso(r.at)}.`
    case 'paused': return 'The queue is paused: no consumer claims its jobs until it is resumed.'
    case 'delayed': return `It is delayed until ${iso(r.until)}${r.until <= now ? ' (due: the next claim takes it)' : ''}.`
    case 'backoff': return `Attempt ${r.attempts} of ${r.maxAttempts} failed${r.lastError === undefined ? '' : ` (${r.lastError})`}; the retry waits out its backoff until ${iso(r.until)}.`
    case 'waiting': return r.ahead === 0 ? 'It is next in line.' : `${r.ahead} job${r.ahead === 1 ? ' is' : 's are'} ahead of it.`
    case 'running': return `It is running: worker ${r.worker} holds its lease until ${iso(r.leaseUntil)}, and ${r.workerAlive ? 'still sends its heartbeat' : 'sends no heartbeat (its lease will expire and the reaper will recover the job)'}.`
    case 'cancel_requested': return 'Its cancel was requested: it ends cancelled when its worker stops.'
    case 'no_consumer': return 'No live consumer is registered for the queue.'
  }
}
