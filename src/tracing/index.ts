/**
 * `relayq/tracing`: OpenTelemetry spans and metrics through `@opentelemetry/api` (an optional
 * peer dependency). Without an SDK registered it attaches nothing and costs nothing per job; an
 * SDK registered later is picked up within {@link SDK_CHECK_INTERVAL} ms.
 *
 * Spans follow the messaging semantic conventions: `send <queue>` (PRODUCER) for each enqueue,
 * `process <queue>` (CONSUMER) for each attempt on a worker, a child of the producer's span
 * through the W3C trace context the job carries (stored by every backend), and `enqueueAndWait <queue>` (CLIENT) around a
 * call, covering its wait, run and reply. The handler runs inside its attempt's span, so spans
 * it starts are children of it. The metrics are those of `relayq/metrics`, through a meter.
 *
 * @example
 * import { openTelemetry } from 'relayq/tracing'
 * const otel = openTelemetry() // before or after the SDK is started; otel.close() detaches
 */
import {
  context, createNoopMeter, createTraceState, metrics as otelMetrics, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type BatchObservableCallback, type Meter,
  type MeterProvider, type ProxyTracerProvider, type Span, type TracerProvider
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
/** How often, in ms, {@link openTelemetry} looks again for an SDK registered (or removed) after it. */
export const SDK_CHECK_INTERVAL = 1000

/**
 * Instruments every Producer, Consumer and Reaper of this process; answers what detaches them.
 *
 * While no SDK is registered (the global providers are the API's no-op ones) nothing is
 * attached: no span, no context, no attribute, no instrument call, and the hot path is the one
 * without instrumentation. It looks again every {@link SDK_CHECK_INTERVAL} ms, so an SDK
 * registered later is picked up within a second: spans start then; metrics bind to the first
 * real meter found and keep it (the API's meters have no proxy to follow a later provider).
 */
export function openTelemetry (options: OpenTelemetryOptions = {}): { close: () => void } {
  const detaches: Array<() => void> = []
  const source: TracerSource = { tracer: undefined }
  let tracingAttached = false
  let metricsAttached = options.metrics === false
  const check = (): void => {
    if (options.tracing !== false) {
      source.tracer = liveTracer(options.tracerProvider ?? trace.getTracerProvider())
      if (source.tracer !== undefined && !tracingAttached) {
        tracingAttached = true
        detaches.push(attach(tracingProbe(source)))
      }
    }
    if (!metricsAttached) {
      const meter = liveMeter(options.meterProvider ?? otelMetrics.getMeterProvider())
      if (meter === undefined) return
      metricsAttached = true
      detaches.push(attach(metricsProbe(meterRecorder(meter))))
      if (options.admin !== undefined) detaches.push(observeGauges(meter, new QueueGauges(options.admin, { queues: options.queues, interval: options.gaugeInterval })))
    }
  }
  check()
  // Tracing follows the global provider both ways (an SDK shut down and disabled goes back to
  // no-op); metrics stop looking once bound.
  const timer = options.tracing === false && metricsAttached ? undefined : setInterval(check, SDK_CHECK_INTERVAL)
  timer?.unref()
  return {
    close: () => {
      clearInterval(timer)
      source.tracer = undefined
      for (const detach of detaches) detach()
    }
  }
}

type Tracer = ReturnType<TracerProvider['getTracer']>

/** The tracer the tracing probe uses now; undefined while no SDK is registered. */
interface TracerSource { tracer: Tracer | undefined }

/**
 * The provider's tracer, or undefined when it is the API's proxy without a delegate (no SDK
 * registered): its spans would be no-op ones. The proxy is recognised by its public
 * `getDelegateTracer` rather than by class, so that a proxy of another copy of the API counts too.
 */
function liveTracer (provider: TracerProvider): Tracer | undefined {
  const proxy = provider as Partial<Pick<ProxyTracerProvider, 'getDelegateTracer'>>
  if (typeof proxy.getDelegateTracer === 'function') return proxy.getDelegateTracer(SCOPE)
  return provider.getTracer(SCOPE)
}

/** The provider's meter, or undefined when it is the API's no-op meter (no SDK registered). */
function liveMeter (provider: MeterProvider): Meter | undefined {
  const meter = provider.getMeter(SCOPE)
  return meter === createNoopMeter() || meter.constructor?.name === 'NoopMeter' ? undefined : meter
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

/** The tracing probe; while `source` has no tracer (the SDK went away) it does nothing. */
function tracingProbe (source: TracerSource): Probe {
  /** Send spans of jobs whose enqueue is in flight, by the job object the producer stores. */
  const sending = new WeakMap<NewJob, Span>()
  let pending = 0
  return {
    enqueue (queue, job) {
      const tracer = source.tracer
      if (tracer === undefined) return job
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
      pending++
      return traced
    },
    enqueued (_queue, job, outcome, error) {
      if (pending === 0) return
      const span = sending.get(job)
      if (span === undefined) return
      sending.delete(job)
      pending--
      ended(span, outcome?.status ?? 'error', outcome === undefined ? error : undefined)
    },
    async call (queue, id, call) {
      const tracer = source.tracer
      if (tracer === undefined) return await call()
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
      const tracer = source.tracer
      if (tracer === undefined) return undefined
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
    claimed: (_queue, _jobs, now) => now,
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
