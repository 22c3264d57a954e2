/**
 * `relayq/metrics`: Prometheus metrics through prom-client (an optional peer dependency: install
 * it next to relayq). Counters and histograms come from this process's producers, consumers and
 * reaper; the queue gauges are read from the storage through an Admin at scrape time, cached and
 * rate-limited.
 *
 * @example
 * import { register } from 'prom-client'
 * import { Admin } from 'relayq'
 * import { prometheusMetrics } from 'relayq/metrics'
 * const metrics = prometheusMetrics({ registry: register, admin: new Admin({ storage }) })
 * // serve `await register.metrics()` on /metrics; metrics.close() detaches
 */
import { Counter, Gauge, Histogram, register as defaultRegistry, type Registry } from 'prom-client'
import type { Admin } from '../admin.ts'
import { attach } from '../instrument.ts'
import { METRICS } from './definitions.ts'
import { QueueGauges } from './gauges.ts'
import { metricsProbe, type Recorder } from './recorder.ts'

export { METRICS } from './definitions.ts'
export type { MetricDefinition, MetricType, RpcOutcome } from './definitions.ts'
export type { QueueSnapshot } from './gauges.ts'

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** Where the metrics are registered. @default prom-client's global `register` */
  registry?: Registry
  /** Reads the queue gauges and stored totals (`relayq_queue_*`); without it only this process's counters, histograms and `relayq_rpc_waiters` are exported. */
  admin?: Admin
  /** Queues the gauges cover. @default every queue of the storage */
  queues?: string[]
  /** Shortest time between two reads of the storage for the gauges, in ms (scrapes in between see the cached values). @default 5000 */
  gaugeInterval?: number
}

/** What {@link prometheusMetrics} answers. */
export interface PrometheusMetrics {
  readonly registry: Registry
  /** Detaches from the queue components and unregisters the metrics. */
  close (): void
}

/** Exports relayq's metrics into a prom-client registry; every Producer, Consumer and Reaper of this process reports to it. */
export function prometheusMetrics (options: PrometheusMetricsOptions = {}): PrometheusMetrics {
  const registry = options.registry ?? defaultRegistry
  const registers = [registry]
  const counter = (d: { name: string, help: string, labels: readonly string[] }): Counter => new Counter({ name: d.name, help: d.help, labelNames: [...d.labels], registers })
  const histogram = (d: { name: string, help: string, labels: readonly string[], buckets: readonly number[] }): Histogram =>
    new Histogram({ name: d.name, help: d.help, labelNames: [...d.labels], buckets: [...d.buckets], registers })
  const enqueued = counter(METRICS.enqueued)
  const completed = counter(METRICS.completed)
  const failed = counter(METRICS.failed)
  const retried = counter(METRICS.retried)
  const stalled = counter(METRICS.stalled)
  const processing = histogram(METRICS.processing)
  const wait = histogram(METRICS.wait)
  const rpc = histogram(METRICS.rpc)
  const waiters = new Gauge({ name: METRICS.rpcWaiters.name, help: METRICS.rpcWaiters.help, labelNames: [...METRICS.rpcWaiters.labels], registers })
  const names = [enqueued, completed, failed, retried, stalled, processing, wait, rpc, waiters].map(m => metricName(m))

  if (options.admin !== undefined) {
    const gauges = new QueueGauges(options.admin, { queues: options.queues, interval: options.gaugeInterval })
    // One read serves the four families of a scrape (prom-client collects them one by one).
    const jobs = new Gauge({
      name: METRICS.queueJobs.name,
      help: METRICS.queueJobs.help,
      labelNames: [...METRICS.queueJobs.labels],
      registers,
      async collect () {
        this.reset()
        for (const s of await gauges.read()) for (const [state, n] of Object.entries(s.counts)) this.set({ queue: s.queue, state }, n)
      }
    })
    const oldest = new Gauge({
      name: METRICS.oldest.name,
      help: METRICS.oldest.help,
      labelNames: [...METRICS.oldest.labels],
      registers,
      async collect () {
        this.reset()
        for (const s of await gauges.read()) this.set({ queue: s.queue }, s.oldestAge)
      }
    })
    const paused = new Gauge({
      name: METRICS.paused.name,
      help: METRICS.paused.help,
      labelNames: [...METRICS.paused.labels],
      registers,
      async collect () {
        this.reset()
        for (const s of await gauges.read()) this.set({ queue: s.queue }, s.paused ? 1 : 0)
      }
    })
    const totals = new Counter({
      name: METRICS.totals.name,
      help: METRICS.totals.help,
      labelNames: [...METRICS.totals.labels],
      registers,
      async collect () {
        this.reset()
        for (const s of await gauges.read()) for (const [event, n] of Object.entries(s.totals)) this.inc({ queue: s.queue, event }, n)
      }
    })
    names.push(...[jobs, oldest, paused, totals].map(m => metricName(m)))
  }

  const recorder: Recorder = {
    enqueued: queue => enqueued.inc({ queue }),
    completed: queue => completed.inc({ queue }),
    failed: (queue, final) => failed.inc({ queue, final: String(final) }),
    retried: queue => retried.inc({ queue }),
    stalled: (queue, count) => stalled.inc({ queue }, count),
    processing: (queue, outcome, seconds) => processing.observe({ queue, outcome }, seconds),
    wait: (queue, seconds) => wait.observe({ queue }, seconds),
    rpc: (queue, outcome, seconds) => rpc.observe({ queue, outcome }, seconds),
    waiters: (queue, delta) => waiters.inc({ queue }, delta)
  }
  const detach = attach(metricsProbe(recorder))
  return {
    registry,
    close () {
      detach()
      for (const name of names) registry.removeSingleMetric(name)
    }
  }
}

/** A prom-client metric's name (kept private by its type). */
function metricName (metric: unknown): string {
  return (metric as { name: string }).name
}
