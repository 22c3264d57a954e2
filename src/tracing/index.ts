/**
 * `relayq/tracing`: OpenTelemetry spans and metrics through `@opentelemetry/api` (an optional
 * peer dependency; without an SDK registered every span and instrument is a no-op).
 *
 * Spans follow the messaging semantic conventions: `send <queue>` (PRODUCER) for each enqueue,
 * `process <queue>` (CONSUMER) for each attempt on a worker, a child of the producer's span
 * through the W3C trace context the job carries (stored by every backend), and `enqueueAndWait <queue>` (CLIENT) around a
 * call, covering its wait, run and reply. The handler runs inside its attempt's span, so spans
 * it starts are children of it. The metrics are those of `relayq/metrics`, through a meter.
 *
 * @example
 * import { openTelemetry } from 'relayq/tracing'
 * const otel = openTelemetry() // after the SDK is started; otel.close() detaches
 */
import {
  context, createTraceState, metrics as otelMetrics, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type BatchObservableCallback, type Meter, type MeterProvider,
  type Span, type TracerProvider
} from '@opentelemetry/api'
import type { Admin } from '../admin.ts'
import { attach, type AttemptOutcome, type Probe } from '../instrument.ts'
import { METRICS, otelName, type MetricDefinition } from '../metrics/definitions.ts'
import { QueueGauges } from '../metrics/gauges.ts'
import { metricsProbe, rpcOutcome, type Recorder } from '../metrics/recorder.ts'
import type { NewJob } from '../storage/types.ts'
import { formatTrace, parseTrace } from './traceparent.ts'

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /** @default the global tracer provider */
  tracerProvider?: TracerProvider
  /** @default the global meter provider */
  meterProvider?: MeterProvider
  /** Spans. @default true */
  tracing?: boolean
  /** Metrics through the meter. @default true */
  metrics?: boolean
  /** Reads the queue gauges at collection time; without it only this process's metrics are recorded. */
  admin?: Admin
  /** Queues the gauges cover. @default every queue of the storage */
  queues?: string[]
  /** Shortest time between two reads of the storage for the gauges, in ms. @default 5000 */
  gaugeInterval?: number
}

const SCOPE = 'relayq'
const SYSTEM = 'relayq'

/** Instruments every Producer, Consumer and Reaper of this process; answers what detaches them. */
export function openTelemetry (options: OpenTelemetryOptions = {}): { close: () => void } {
  const detaches: Array<() => void> = []
  if (options.tracing !== false) detaches.push(attach(tracingProbe((options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE))))
  if (options.metrics !== false) {
    const meter = (options.meterProvider ?? otelMetrics.getMeterProvider()).getMeter(SCOPE)
    detaches.push(attach(metricsProbe(meterRecorder(meter))))
    if (options.admin !== undefined) detaches.push(observeGauges(meter, new QueueGauges(options.admin, { queues: options.queues, interval: options.gaugeInterval })))
  }
  return { close: () => { for (const detach of detaches) detach() } }
}

function ended (span: Span, outcome: string, error?: unknown): void {
  if (!span.isRecording()) {
    span.end()
    return
  }
  span.setAttribute('relayq.outcome', outcome)
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error))
    span.setAttribute('error.type', (error as { code?: string, name?: string }).code ?? (error as Error).name ?? 'Error')
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
  }
  span.end()
}

const ATTEMPT_ERRORS: ReadonlySet<AttemptOutcome> = new Set(['failed', 'retry', 'lost'])

function tracingProbe (tracer: ReturnType<TracerProvider['getTracer']>): Probe {
  /** Send spans of jobs whose enqueue is in flight, by the job object the producer stores. */
  const sending = new WeakMap<NewJob, Span>()
  return {
    enqueue (queue, job) {
      const span = tracer.startSpan(`send ${queue}`, { kind: SpanKind.PRODUCER }, context.active())
      const sc = span.spanContext()
      // No SDK (or not sampled): nothing to record; carry the context only when it is a real one.
      if (span.isRecording()) {
        span.setAttributes({
          'messaging.system': SYSTEM,
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'enqueue',
          'messaging.destination.name': queue,
          'messaging.message.id': job.id,
          'messaging.message.body.size': job.payload.length
        })
      }
      if (!trace.isSpanContextValid(sc)) {
        span.end()
        return job
      }
      const traced: NewJob = { ...job, trace: formatTrace(sc, sc.traceState?.serialize()) }
      sending.set(traced, span)
      return traced
    },
    enqueued (_queue, job, outcome, error) {
      const span = sending.get(job)
      if (span === undefined) return
      sending.delete(job)
      ended(span, outcome?.status ?? 'error', outcome === undefined ? error : undefined)
    },
    async call (queue, id, call) {
      const span = tracer.startSpan(`enqueueAndWait ${queue}`, {
        kind: SpanKind.CLIENT,
        attributes: { 'messaging.system': SYSTEM, 'messaging.operation.name': 'enqueueAndWait', 'messaging.destination.name': queue, 'messaging.message.id': id }
      }, context.active())
      try {
        const value = await context.with(trace.setSpan(context.active(), span), call)
        ended(span, 'completed')
        return value
      } catch (err) {
        ended(span, rpcOutcome(err), err)
        throw err
      }
    },
    attempt (queue, job, workerId) {
      // The job's creation context is the parent (not a link): an attempt processes exactly one
      // job, and a worker has no ambient context of its own, so the messaging conventions'
      // single-message case applies and the trace runs producer → worker → handler unbroken.
      // Every attempt of a job is a child of the same send span.
      const carried = parseTrace(job.trace)
      const parent = carried === undefined
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, {
          traceId: carried.traceId,
          spanId: carried.spanId,
          traceFlags: carried.traceFlags,
          isRemote: true,
          ...(carried.traceState !== '' && { traceState: createTraceState(carried.traceState) })
        })
      const span = tracer.startSpan(`process ${queue}`, { kind: SpanKind.CONSUMER }, parent)
      if (span.isRecording()) {
        span.setAttributes({
          'messaging.system': SYSTEM,
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': queue,
          'messaging.message.id': job.id,
          'messaging.message.body.size': job.payload.length,
          'messaging.client.id': workerId,
          'relayq.job.attempt': job.attempts,
          'relayq.job.max_attempts': job.maxAttempts
        })
      }
      // The handler runs in the attempt's context only when there is one to propagate.
      const active = trace.isSpanContextValid(span.spanContext()) ? trace.setSpan(parent, span) : undefined
      return {
        run: (handler, j) => active === undefined ? handler(j) : context.with(active, handler, undefined, j),
        end: (outcome, error) => ended(span, outcome, ATTEMPT_ERRORS.has(outcome) ? error ?? outcome : undefined)
      }
    },
    claimed: () => performance.now(),
    decided () {},
    stored () {},
    stalled () {}
  }
}

function meterRecorder (meter: Meter): Recorder {
  const counter = (d: MetricDefinition): ReturnType<Meter['createCounter']> => meter.createCounter(otelName(d), { description: d.help, unit: '{job}' })
  const histogram = (d: MetricDefinition): ReturnType<Meter['createHistogram']> =>
    meter.createHistogram(otelName(d), { description: d.help, unit: 's', advice: { explicitBucketBoundaries: [...(d.buckets ?? [])] } })
  const enqueued = counter(METRICS.enqueued)
  const completed = counter(METRICS.completed)
  const failed = counter(METRICS.failed)
  const retried = counter(METRICS.retried)
  const stalled = counter(METRICS.stalled)
  const processing = histogram(METRICS.processing)
  const wait = histogram(METRICS.wait)
  const rpc = histogram(METRICS.rpc)
  const waiters = meter.createUpDownCounter(otelName(METRICS.rpcWaiters), { description: METRICS.rpcWaiters.help, unit: '{call}' })
  return {
    enqueued: queue => enqueued.add(1, { queue }),
    completed: queue => completed.add(1, { queue }),
    failed: (queue, final) => failed.add(1, { queue, final: String(final) }),
    retried: queue => retried.add(1, { queue }),
    stalled: (queue, n) => stalled.add(n, { queue }),
    processing: (queue, outcome, seconds) => processing.record(seconds, { queue, outcome }),
    wait: (queue, seconds) => wait.record(seconds, { queue }),
    rpc: (queue, outcome, seconds) => rpc.record(seconds, { queue, outcome }),
    waiters: (queue, delta) => waiters.add(delta, { queue })
  }
}

/** Observes the queue gauges at each collection; answers what stops it. */
function observeGauges (meter: Meter, gauges: QueueGauges): () => void {
  const jobs = meter.createObservableGauge(otelName(METRICS.queueJobs), { description: METRICS.queueJobs.help, unit: '{job}' })
  const oldest = meter.createObservableGauge(otelName(METRICS.oldest), { description: METRICS.oldest.help, unit: 's' })
  const paused = meter.createObservableGauge(otelName(METRICS.paused), { description: METRICS.paused.help })
  const totals = meter.createObservableCounter(otelName(METRICS.totals), { description: METRICS.totals.help, unit: '{job}' })
  const observables = [jobs, oldest, paused, totals]
  const callback: BatchObservableCallback = async result => {
    for (const s of await gauges.read()) {
      for (const [state, n] of Object.entries(s.counts)) result.observe(jobs, n, { queue: s.queue, state })
      result.observe(oldest, s.oldestAge, { queue: s.queue })
      result.observe(paused, s.paused ? 1 : 0, { queue: s.queue })
      for (const [event, n] of Object.entries(s.totals)) result.observe(totals, n, { queue: s.queue, event })
    }
  }
  meter.addBatchObservableCallback(callback, observables)
  return () => meter.removeBatchObservableCallback(callback, observables)
}
