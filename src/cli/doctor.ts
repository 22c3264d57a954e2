/**
 * `relayq doctor`: what would lose jobs or stop them from running, each finding with what to
 * change. Queue checks go through Admin (every backend); server checks come from the backend
 * (Redis: eviction, persistence, cluster slots, clock skew).
 */
import type { Admin } from '../admin.ts'
import type { JobListItem } from '../admin.ts'
import { count, span, time } from './output.ts'

/** One finding. `problem` makes doctor exit 3; `warn` too with --strict. */
export interface Finding {
  readonly check: string
  readonly status: 'ok' | 'info' | 'warn' | 'problem'
  readonly message: string
  /** What to change. */
  readonly fix?: string
  readonly queue?: string
}

/** Options of the checks. */
export interface DoctorOptions {
  /** Largest tolerated difference between this host's clock and the server's, in ms. */
  readonly maxClockSkew: number
  /** Processing jobs examined per queue for stale leases. */
  readonly leaseScan: number
  readonly now: () => number
}

/** The queue checks: paused queues, waiting jobs with no live consumer, leases held by workers that no longer heartbeat. */
export async function diagnoseQueues (admin: Admin, options: DoctorOptions): Promise<Finding[]> {
  const findings: Finding[] = []
  const queues = await admin.queues()
  if (queues.length === 0) findings.push({ check: 'queues', status: 'info', message: 'no queue holds anything yet' })
  for (const { name, counts, paused } of queues) {
    const waiting = counts.queued + counts.delayed + counts.failing
    const workers = await admin.workers(name)
    if (paused) {
      findings.push({
        check: 'paused',
        queue: name,
        status: 'warn',
        message: `queue ${name} is paused with ${count(waiting)} job(s) waiting: no consumer claims them`,
        fix: `relayq queue resume ${name}   (if the pause is not intended)`
      })
    }
    if (waiting > 0 && workers.length === 0) {
      findings.push({
        check: 'consumers',
        queue: name,
        status: 'problem',
        message: `queue ${name} has ${count(waiting)} job(s) waiting and no live consumer`,
        fix: `start a consumer (Queue or Consumer with execute()) for queue '${name}'`
      })
    }
    if (counts.processing === 0) continue
    const alive = new Set(workers.map(w => w.id))
    const stale: JobListItem[] = []
    let cursor: string | undefined
    let seen = 0
    do {
      const page = await admin.listJobs(name, { state: 'processing', limit: 1000, order: 'asc', ...(cursor !== undefined && { cursor }) })
      for (const job of page.jobs) if (job.worker !== undefined && !alive.has(job.worker)) stale.push(job)
      seen += page.jobs.length
      cursor = page.cursor ?? undefined
    } while (cursor !== undefined && seen < options.leaseScan)
    if (stale.length === 0) continue
    const now = options.now()
    const expired = stale.filter(j => (j.leaseUntil ?? 0) < now)
    const holders = [...new Set(stale.map(j => j.worker))].slice(0, 5).join(', ')
    const last = Math.max(...stale.map(j => j.leaseUntil ?? 0))
    findings.push({
      check: 'leases',
      queue: name,
      status: 'problem',
      message: `queue ${name}: ${count(stale.length)} running job(s) are leased to worker(s) that no longer heartbeat (${holders})` +
        (expired.length > 0 ? `; ${count(expired.length)} lease(s) expired and nobody recovered them` : `; the last lease expires at ${time(last)} (in ${span(last - now)})`),
      fix: expired.length > 0
        ? `run a reaper for queue '${name}' (a Queue with a handler, or a Reaper): it requeues jobs whose lease expired`
        : 'nothing to do if a reaper runs: it requeues them once their leases expire; otherwise start one'
    })
  }
  return findings
}
