import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { context, metrics as otelMetrics, ProxyTracer, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { MemoryStorage, Queue } from '../src/index.ts'
import { probe } from '../src/instrument.ts'
import { openTelemetry, SDK_CHECK_INTERVAL } from '../src/tracing/index.ts'
import { formatTrace, formatTraceparent, parseTrace, parseTraceparent } from '../src/tracing/traceparent.ts'

/** A tracer provider exporting to memory, with the async-hooks context manager (as an SDK sets up). */
function tracing (t: TestContext): { provider: BasicTracerProvider, exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const manager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(manager)
  t.after(() => {
    context.disable()
    return provider.shutdown()
  })
  return { provider, exporter }
}

/** A meter provider whose metrics the test collects itself (cumulative), shut down after the test. */
function meters (t: TestContext): { reader: MetricReader, meterProvider: MeterProvider } {
  class Reader extends MetricReader {
    protected async onForceFlush (): Promise<void> {}
    protected async onShutdown (): Promise<void> {}
  }
  const reader = new Reader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  const meterProvider = new MeterProvider({ readers: [reader] })
  t.after(() => meterProvider.shutdown())
  return { reader, meterProvider }
}

const byName = (spans: ReadableSpan[], name: string): ReadableSpan[] => spans.filter(s => s.name === name)
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

test('traceparent round-trips and refuses what is not one', () => {
  const carried = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 }
  assert.equal(formatTraceparent(carried), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
  assert.deepEqual(parseTraceparent(formatTraceparent(carried)), carried)
  for (const bad of [undefined, '', 'junk', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']) {
    assert.equal(parseTraceparent(bad), undefined)
  }
})

test('a trace context carries the tracestate when it fits, and is parsed only when valid', () => {
  const carried = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 }
  const parent = formatTraceparent(carried)
  assert.equal(formatTrace(carried), parent)
  assert.equal(formatTrace(carried, 'rojo=1,congo=2'), `${parent} rojo=1,congo=2`)
  assert.deepEqual(parseTrace(`${parent} rojo=1,congo=2`), { ...carried, traceState: 'rojo=1,congo=2' })
  assert.deepEqual(parseTrace(parent), { ...carried, traceState: '' })
  // Too large together: the traceparent travels alone.
  assert.equal(formatTrace(carried, Array.from({ length: 3 }, (_, i) => `k${i}=${'v'.repeat(200)}`).join(',')), parent)
  // A tracestate that is not one is left out too.
  assert.equal(formatTrace(carried, 'NOT VALID'), parent)
  for (const bad of [undefined, 'junk', `${parent}x`, `${parent} =v`]) assert.equal(parseTrace(bad), undefined)
})

test('spans: enqueueAndWait ⊃ send ⊃ process ⊃ the handler\'s own span, one process span per attempt, errors marked', async t => {
  const { provider, exporter } = tracing(t)
  const otel = openTelemetry({ tracerProvider: provider, metrics: false })
  t.after(() => otel.close())
  const queue = new Queue<{ fail: boolean }, string>({ storage: new MemoryStorage(), name: 'mail', maxRetries: 2, backoff: { type: 'fixed', delay: 0 }, reaper: false })
  t.after(() => queue.stop())
  const tracer = provider.getTracer('app')
  queue.execute(async job => {
    tracer.startSpan('work').end() // started inside the attempt: its child
    if (job.payload.fail) throw new Error('no luck')
    return 'sent'
  })
  await queue.start()
  const caller = tracer.startSpan('caller')
  await context.with(trace.setSpan(context.active(), caller), async () => {
    assert.equal(await queue.enqueueAndWait('ok', { fail: false }), 'sent')
    await assert.rejects(queue.enqueueAndWait('bad', { fail: true }), { code: 'JOB_FAILED' })
  })
  caller.end()

  const spans = exporter.getFinishedSpans()
  const calls = byName(spans, 'enqueueAndWait mail')
  const sends = byName(spans, 'send mail')
  const processes = byName(spans, 'process mail')
  const works = byName(spans, 'work')
  assert.deepEqual([calls.length, sends.length, processes.length, works.length], [2, 2, 3, 3])
  const callerId = caller.spanContext().spanId
  for (const call of calls) assert.equal(parentOf(call), callerId)
  for (const span of spans) assert.equal(span.spanContext().traceId, caller.spanContext().traceId, `${span.name} is in the caller's trace`)
  assert.deepEqual(calls.map(c => c.attributes['messaging.message.id']).sort(), ['bad', 'ok'])
  const send = (id: string): ReadableSpan => sends.find(s => s.attributes['messaging.message.id'] === id) as ReadableSpan
  assert.equal(parentOf(send('ok')), calls.find(c => c.attributes['messaging.message.id'] === 'ok')?.spanContext().spanId)
  assert.equal(send('ok').attributes['messaging.operation.type'], 'send')
  assert.equal(send('ok').attributes['messaging.system'], 'relayq')
  assert.equal(send('ok').attributes['messaging.destination.name'], 'mail')
  // Each attempt is a child of its job's send span; the handler's span a child of its attempt.
  const attempts = (id: string): ReadableSpan[] => processes.filter(p => p.attributes['messaging.message.id'] === id)
  assert.deepEqual(attempts('ok').map(p => [parentOf(p), p.attributes['relayq.job.attempt'], p.attributes['relayq.outcome'], p.status.code]), [[send('ok').spanContext().spanId, 1, 'completed', 0]])
  assert.deepEqual(attempts('bad').map(p => [parentOf(p), p.attributes['relayq.job.attempt'], p.attributes['relayq.outcome'], p.status.code]).sort((a, b) => Number(a[1]) - Number(b[1])),
    [[send('bad').spanContext().spanId, 1, 'retry', 2], [send('bad').spanContext().spanId, 2, 'failed', 2]])
  for (const work of works) assert.ok(processes.some(p => p.spanContext().spanId === parentOf(work)), 'the handler span is a child of an attempt span')
  assert.equal(calls.find(c => c.attributes['messaging.message.id'] === 'bad')?.attributes['relayq.outcome'], 'failed')
})

test('the same metrics through an OpenTelemetry meter', async t => {
  const { reader, meterProvider } = meters(t)
  const otel = openTelemetry({ meterProvider, tracing: false })
  t.after(() => otel.close())
  const queue = new Queue<number, number>({ storage: new MemoryStorage(), name: 'calc', maxRetries: 1, reaper: false })
  t.after(() => queue.stop())
  queue.execute(async job => {
    if (job.payload < 0) throw new Error('negative')
    return job.payload * 2
  })
  await queue.start()
  for (const n of [1, 2, 3]) assert.equal(await queue.enqueueAndWait(`n${n}`, n), n * 2)
  await assert.rejects(queue.enqueueAndWait('neg', -1))
  const { resourceMetrics } = await reader.collect()
  const metrics = new Map(resourceMetrics.scopeMetrics.flatMap(s => s.metrics).map(m => [m.descriptor.name, m]))
  const sum = (name: string, attrs: Record<string, string>): number => (metrics.get(name)?.dataPoints as Array<DataPoint<number>> | undefined)
    ?.filter(p => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)).reduce((n, p) => n + p.value, 0) ?? -1
  assert.equal(sum('relayq.jobs.enqueued', { queue: 'calc' }), 4)
  assert.equal(sum('relayq.jobs.completed', { queue: 'calc' }), 3)
  assert.equal(sum('relayq.jobs.failed', { queue: 'calc', final: 'true' }), 1)
  assert.equal(sum('relayq.rpc.waiters', { queue: 'calc' }), 0)
  const processing = metrics.get('relayq.job.processing.duration')
  assert.equal(processing?.descriptor.unit, 's')
  const counts = (processing?.dataPoints as Array<DataPoint<Histogram>>).map(p => [p.attributes.outcome, p.value.count]).sort()
  assert.deepEqual(counts, [['completed', 3], ['failed', 1]])
  const rpc = metrics.get('relayq.rpc.duration')?.dataPoints as Array<DataPoint<Histogram>>
  assert.deepEqual(rpc.map(p => [p.attributes.outcome, p.value.count]).sort(), [['completed', 3], ['failed', 1]])
})

test('without an SDK nothing is attached and no span work happens; an SDK registered later is picked up', async t => {
  const queue = new Queue<number, number>({ storage: new MemoryStorage(), name: 'calc', reaper: false })
  t.after(() => queue.stop())
  queue.execute(async job => job.payload * 2)
  await queue.start()
  // Only the re-check's interval is mocked: the queue's own timers were created before.
  t.mock.timers.enable({ apis: ['setInterval'] })
  const startSpan = t.mock.method(ProxyTracer.prototype, 'startSpan')
  const getTracer = t.mock.method(trace.getTracerProvider(), 'getTracer')
  const active = t.mock.method(context, 'active')
  const otel = openTelemetry() // the global providers are the API's no-op ones
  t.after(() => otel.close())
  assert.equal(probe, undefined, 'nothing attached: the path without instrumentation')
  assert.equal(await queue.enqueueAndWait('a', 1), 2)
  assert.deepEqual(await queue.enqueue('b', 2), { status: 'queued' })
  t.mock.timers.tick(SDK_CHECK_INTERVAL) // looks again: still no SDK
  assert.equal(await queue.enqueueAndWait('c', 3), 6)
  assert.equal(probe, undefined)
  assert.deepEqual([startSpan.mock.callCount(), getTracer.mock.callCount(), active.mock.callCount()], [0, 0, 0])

  const { provider, exporter } = tracing(t)
  const { reader, meterProvider } = meters(t)
  assert.ok(trace.setGlobalTracerProvider(provider))
  assert.ok(otelMetrics.setGlobalMeterProvider(meterProvider))
  t.after(() => { trace.disable(); otelMetrics.disable() })
  t.mock.timers.tick(SDK_CHECK_INTERVAL)
  assert.notEqual(probe, undefined)
  assert.equal(await queue.enqueueAndWait('d', 4), 8)
  const spans = exporter.getFinishedSpans()
  assert.deepEqual(spans.map(s => s.name).sort(), ['enqueueAndWait calc', 'process calc', 'send calc'])
  assert.equal(new Set(spans.map(s => s.spanContext().traceId)).size, 1)
  const { resourceMetrics } = await reader.collect()
  const enqueued = resourceMetrics.scopeMetrics.flatMap(s => s.metrics).find(m => m.descriptor.name === 'relayq.jobs.enqueued')
  assert.deepEqual((enqueued?.dataPoints as Array<DataPoint<number>>).map(p => p.value), [1])

  // The SDK goes away: no more spans, though the probe stays attached.
  trace.disable()
  t.mock.timers.tick(SDK_CHECK_INTERVAL)
  assert.equal(await queue.enqueueAndWait('e', 5), 10)
  assert.equal(exporter.getFinishedSpans().length, 3)
})
