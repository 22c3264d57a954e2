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
import { register as defaultRegistry, type Registry } from 'prom-client'
import type { Admin } from '../admin.ts'
import { attach } from '../instrument.ts'
import { METRICS, type MetricDefinition, type MetricType } from './definitions.ts'
import { QueueGauges, type QueueSnapshot } from './gauges.ts'
import { metricsProbe } from './recorder.ts'
import { Buckets, CounterStore, type QueueCounters } from './store.ts'

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

/** A metric as a prom-client Registry reads it (the shape of its own metrics' `get()`). */
interface Exported {
  readonly name: string
  readonly help: string
  readonly type: MetricType
  readonly aggregator: 'sum' | 'max'
  get (): Promise<{ name: string, help: string, type: MetricType, aggregator: 'sum' | 'max', values: Sample[] }>
}

interface Sample { value: number, labels: Record<string, string | number>, metricName?: string }

/** A metric of {@link METRICS} whose samples `read` produces at scrape time. `max`: a cluster aggregates by max (the same value in every worker). */
function exported (d: MetricDefinition, read: () => Sample[] | Promise<Sample[]>, aggregator: 'sum' | 'max' = 'sum'): Exported {
  return {
    name: d.name,
    help: d.help,
    type: d.type,
    aggregator,
    async get () { return { name: d.name, help: d.help, type: d.type, aggregator, values: await read() } }
  }
}

/** A histogram's samples: cumulative buckets, sum and count. */
function histogramSamples (name: string, labels: Record<string, string>, b: Buckets): Sample[] {
  const samples: Sample[] = []
  let cumulative = 0
  for (let i = 0; i < b.bounds.length; i++) {
    cumulative += b.counts[i]
    samples.push({ metricName: `${name}_bucket`, labels: { le: b.bounds[i], ...labels }, value: cumulative })
  }
  samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', ...labels }, value: b.count })
  samples.push({ metricName: `${name}_sum`, labels, value: b.sum })
  samples.push({ metricName: `${name}_count`, labels, value: b.count })
  return samples
}

/** Exports relayq's metrics into a prom-client registry; every Producer, Consumer and Reaper of this process reports to it. */
export function prometheusMetrics (options: PrometheusMetricsOptions = {}): PrometheusMetrics {
  const registry = options.registry ?? defaultRegistry
  const store = new CounterStore()
  const each = <T>(pick: (queue: string, c: QueueCounters) => T[]): T[] => [...store.queues].flatMap(([queue, c]) => pick(queue, c))
  const metrics: Exported[] = [
    exported(METRICS.enqueued, () => each((queue, c) => [{ labels: { queue }, value: c.enqueued }])),
    exported(METRICS.completed, () => each((queue, c) => [{ labels: { queue }, value: c.completed }])),
    exported(METRICS.failed, () => each((queue, c) => [{ labels: { queue, final: 'false' }, value: c.failedRetry }, { labels: { queue, final: 'true' }, value: c.failedFinal }])),
    exported(METRICS.retried, () => each((queue, c) => [{ labels: { queue }, value: c.retried }])),
    exported(METRICS.stalled, () => each((queue, c) => [{ labels: { queue }, value: c.stalled }])),
    exported(METRICS.processing, () => each((queue, c) => [...c.processing].flatMap(([outcome, b]) => histogramSamples(METRICS.processing.name, { queue, outcome }, b)))),
    exported(METRICS.wait, () => each((queue, c) => histogramSamples(METRICS.wait.name, { queue }, c.wait))),
    exported(METRICS.rpc, () => each((queue, c) => [...c.rpc].flatMap(([outcome, b]) => histogramSamples(METRICS.rpc.name, { queue, outcome }, b)))),
    exported(METRICS.rpcWaiters, () => each((queue, c) => [{ labels: { queue }, value: c.waiters }]))
  ]
  if (options.admin !== undefined) {
    // One read of the storage serves the four families of a scrape (and every scrape within the interval).
    const gauges = new QueueGauges(options.admin, { queues: options.queues, interval: options.gaugeInterval })
    const read = async <T>(pick: (s: QueueSnapshot) => T[]): Promise<T[]> => (await gauges.read()).flatMap(pick)
    metrics.push(
      exported(METRICS.queueJobs, () => read(s => Object.entries(s.counts).map(([state, n]) => ({ labels: { queue: s.queue, state }, value: n }))), 'max'),
      exported(METRICS.oldest, () => read(s => [{ labels: { queue: s.queue }, value: s.oldestAge }]), 'max'),
      exported(METRICS.paused, () => read(s => [{ labels: { queue: s.queue }, value: s.paused ? 1 : 0 }]), 'max'),
      exported(METRICS.totals, () => read(s => Object.entries(s.totals).map(([event, n]) => ({ labels: { queue: s.queue, event }, value: n }))), 'max')
    )
  }
  for (const metric of metrics) registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0])
  const detach = attach(metricsProbe(store))
  return {
    registry,
    close () {
      detach()
      for (const metric of metrics) registry.removeSingleMetric(metric.name)
    }
  }
}
