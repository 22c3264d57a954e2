/**
 * The operator's reads of a {@link QueueState} (memory and file backends): pages of a state, one
 * job's detail, the overview, the failure groups. Pure reads at the reader's own `now`: history
 * past its retention age is hidden even before a write trims it.
 */
import type { FailureGroup, JobDetail, JobPage, JobQuery, QueueOverview, QueueSummary, StateCounts } from './types.ts'
import { Tomb, ageFloor, compareIds, isTerminal, toDetail, toSummary } from './job-record.ts'
import type { QueueState } from './queue-state.ts'

/** Ids of a failure group's newest jobs reported as samples. */
const SAMPLES = 5

const NO_COUNTS: StateCounts = Object.freeze({ queued: 0, delayed: 0, processing: 0, failing: 0, completed: 0, failed: 0, cancelled: 0 })

/** A page of the jobs of `query.state`, by stamp. */
export function listJobs (state: QueueState | undefined, query: JobQuery, now: number): JobPage {
  if (state === undefined) return { jobs: [], next: null }
  const lo = isTerminal(query.state) ? ageFloor(state.retention[query.state], now) : -Infinity
  const { recs, more } = state.index(query.state).range(lo, Infinity, query.order, query.after, query.limit)
  return { jobs: recs.map(toSummary), next: more ? recs[recs.length - 1].stamp : null }
}

/** One job's detail, or null when it is neither active nor in history. */
export function getJob (state: QueueState | undefined, id: string, now: number): JobDetail | null {
  const rec = state?.record(id)
  if (state === undefined || rec === undefined || rec instanceof Tomb) return null
  if (isTerminal(rec.state) && !state.inHistory(rec, now)) return null
  const ahead = rec.state === 'queued' ? state.index('queued').count(-Infinity, rec.stamp - 1) : undefined
  return toDetail(rec, ahead)
}

/** The queue at a glance (a queue that does not exist: zeros and the defaults). */
export function overview (state: QueueState, now: number): QueueOverview {
  return {
    counts: state.counts(now),
    paused: state.paused,
    oldestQueuedAt: state.index('queued').first()?.enteredAt ?? null,
    totals: state.totals,
    retention: state.retention
  }
}

/** The queue as `queues()` lists it. */
export function summary (name: string, state: QueueState | undefined, now: number): QueueSummary {
  return { name, counts: state === undefined ? { ...NO_COUNTS } : state.counts(now), paused: state?.paused ?? false }
}

/** The failure groups of the failed jobs in history, most jobs first (then newest, then key), at most `limit`. */
export function failureGroups (state: QueueState | undefined, limit: number, now: number): FailureGroup[] {
  if (state === undefined) return []
  const floor = ageFloor(state.retention.failed, now)
  const groups: FailureGroup[] = []
  for (const { meta, index } of state.groups()) {
    const count = index.live - index.countBelow(floor)
    if (count === 0) continue
    const oldest = index.range(floor, Infinity, 'asc', undefined, 1).recs[0]
    const newest = index.range(floor, Infinity, 'desc', undefined, SAMPLES).recs
    groups.push({ ...meta, count, firstSeen: oldest.enteredAt, lastSeen: newest[0].enteredAt, samples: newest.map(r => r.id) })
  }
  groups.sort((a, b) => b.count - a.count || b.lastSeen - a.lastSeen || compareIds(a.key, b.key))
  return groups.slice(0, limit)
}
