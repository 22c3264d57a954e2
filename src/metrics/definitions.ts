/**
 * The metrics relayq exports, in one table: Prometheus names, help, labels and buckets. The
 * prom-client collector (`relayq/metrics`), the OpenTelemetry meter (`relayq/tracing`) and
 * `relayq metrics` all read it. Labels are bounded: `queue`, a state, an outcome; never a job id.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram'

export interface MetricDefinition {
  /** Prometheus name (OpenTelemetry: the same, dotted, without `_total` and the unit suffix). */
  readonly name: string
  readonly type: MetricType
  readonly help: string
  readonly labels: readonly string[]
  /** Histograms: upper bounds in seconds. */
  readonly buckets?: readonly number[]
}

/** Seconds, from 1 ms to 5 min: short handlers and long jobs both land in a bucket. */
const DURATIONS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** Outcomes of an attempt (`processing_duration`): how it ended, once stored. */
export type AttemptOutcome = 'completed' | 'failed' | 'retry' | 'cancelled' | 'released' | 'lost'
/** Outcomes of an `enqueueAndWait` call as its caller saw it. */
export type RpcOutcome = 'completed' | 'failed' | 'cancelled' | 'timeout' | 'error'

export const METRICS = {
  enqueued: { name: 'relayq_jobs_enqueued_total', type: 'counter', help: 'Jobs stored by enqueue in this process (duplicates not counted).', labels: ['queue'] },
  completed: { name: 'relayq_jobs_completed_total', type: 'counter', help: 'Jobs this process completed.', labels: ['queue'] },
  failed: { name: 'relayq_jobs_failed_total', type: 'counter', help: 'Failed attempts in this process; final="true": the job failed for good, "false": a retry follows.', labels: ['queue', 'final'] },
  retried: { name: 'relayq_jobs_retried_total', type: 'counter', help: 'Attempts this process started that run a job again (after a failure or a stall).', labels: ['queue'] },
  stalled: { name: 'relayq_jobs_stalled_total', type: 'counter', help: 'Jobs whose lease expired, recovered by the reaper of this process.', labels: ['queue'] },
  processing: { name: 'relayq_job_processing_duration_seconds', type: 'histogram', help: 'Time from an attempt\'s start to its stored outcome, by outcome.', labels: ['queue', 'outcome'], buckets: DURATIONS },
  wait: { name: 'relayq_job_wait_duration_seconds', type: 'histogram', help: 'Time a job waited from due (enqueued, delay over, backoff over, requeued) to started.', labels: ['queue'], buckets: DURATIONS },
  rpc: { name: 'relayq_rpc_duration_seconds', type: 'histogram', help: 'enqueueAndWait calls as their caller saw them (wait, run and reply), by outcome.', labels: ['queue', 'outcome'], buckets: DURATIONS },
  rpcWaiters: { name: 'relayq_rpc_waiters', type: 'gauge', help: 'enqueueAndWait calls of this process waiting for their outcome.', labels: ['queue'] },
  queueJobs: { name: 'relayq_queue_jobs', type: 'gauge', help: 'Jobs per state (terminal states: retained in history), read from the storage.', labels: ['queue', 'state'] },
  oldest: { name: 'relayq_queue_oldest_job_age_seconds', type: 'gauge', help: 'Age of the oldest queued job (0 when none), read from the storage.', labels: ['queue'] },
  paused: { name: 'relayq_queue_paused', type: 'gauge', help: '1 when the queue is paused, read from the storage.', labels: ['queue'] },
  totals: { name: 'relayq_queue_events_total', type: 'counter', help: 'What happened in the queue since its creation, all processes together, read from the storage.', labels: ['queue', 'event'] }
} as const satisfies Record<string, MetricDefinition>

/** The OpenTelemetry name of a metric: `relayq_job_wait_duration_seconds` → `relayq.job.wait.duration` (unit `s`). */
export function otelName (definition: MetricDefinition): string {
  return definition.name.replace(/_total$/, '').replace(/_seconds$/, '').replace(/_/g, '.')
}
