/**
 * The trace context travels with the job across processes: a producer here (an OpenTelemetry SDK
 * exporting to memory), a consumer in a child process (its own SDK, test/fixtures/trace-consumer.ts),
 * on FileStorage and RedisStorage. Each worker span must be a child of its job's `send` span, in
 * the same trace, with the producer's tracestate; the handler's own span a child of the worker's.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, test, type TestContext } from 'node:test'
import { context, createTraceState, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { FileStorage, Producer } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import type { Storage } from '../src/storage/types.ts'
import { openTelemetry } from '../src/tracing/index.ts'
import type { SpanRecord } from './fixtures/trace-consumer.ts'
import { deleteKeys, startRedis } from './fixtures/redis-server.ts'

const CHILD = fileURLToPath(new URL('./fixtures/trace-consumer.ts', import.meta.url))

const redis = await startRedis()
after(() => redis.stop())

/** The consumer process: resolves once it consumes; `spans` once it ran `jobs` jobs and exited. */
async function consumerProcess (t: TestContext, env: Record<string, string>, jobs: number): Promise<{ spans: Promise<SpanRecord[]> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env, RELAYQ_JOBS: String(jobs) }, stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let out = ''
  let ready: () => void = () => {}
  const started = new Promise<void>(resolve => { ready = resolve })
  child.stdout.setEncoding('utf8').on('data', (data: string) => {
    out += data
    if (out.includes('ready\n')) ready()
  })
  await Promise.race([started, exited.then(() => { throw new Error(`the consumer exited before consuming: ${out}`) })])
  const spans = exited.then(([code]) => {
    assert.equal(code, 0, out)
    const line = out.split('\n').find(l => l.startsWith('spans '))
    assert.ok(line !== undefined, out)
    return JSON.parse(line.slice('spans '.length)) as SpanRecord[]
  })
  return { spans }
}

/** Enqueues `ids` under a remote parent carrying a tracestate; answers the `send` spans. */
async function produce (t: TestContext, storage: Storage, queue: string, ids: string[]): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  const otel = openTelemetry({ tracerProvider: provider, metrics: false })
  const producer = new Producer<{ pad: string }, string>({ storage, name: queue })
  t.after(async () => {
    await producer.stop()
    otel.close()
    context.disable()
    await provider.shutdown()
  })
  await producer.start()
  const upstream = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true, traceState: createTraceState('vendor=abc,other=1')
  })
  await context.with(upstream, async () => {
    // One small payload, one beyond Redis's inline limit.
    for (const [i, id] of ids.entries()) await producer.enqueue(id, { pad: 'x'.repeat(i === 0 ? 10 : 20_000) })
  })
  const sends = exporter.getFinishedSpans().filter(s => s.name === `send ${queue}`)
  assert.equal(sends.length, ids.length)
  return sends
}

function assertParentChild (sends: ReadableSpan[], spans: SpanRecord[], queue: string): void {
  for (const send of sends) {
    const id = send.attributes['messaging.message.id']
    const processes = spans.filter(s => s.name === `process ${queue}` && s.jobId === id)
    assert.equal(processes.length, 1, `one attempt of ${String(id)}`)
    const [worker] = processes
    assert.equal(worker.kind, SpanKind.CONSUMER)
    assert.equal(worker.traceId, send.spanContext().traceId, 'the worker span is in the producer\'s trace')
    assert.equal(worker.traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
    assert.equal(worker.parentSpanId, send.spanContext().spanId, 'the worker span is a child of the send span')
    assert.equal(worker.traceState, 'vendor=abc,other=1', 'the tracestate travelled too')
    const work = spans.filter(s => s.name === 'work' && s.jobId === id)
    assert.deepEqual(work.map(s => [s.traceId, s.parentSpanId]), [[worker.traceId, worker.spanId]])
  }
}

test('file: the consumer span in another process is the child of the producer\'s send span', async t => {
  const basePath = await mkdtemp(join(tmpdir(), 'relayq-trace-'))
  t.after(() => rm(basePath, { recursive: true, force: true }))
  const queue = `traced-${randomUUID()}`
  const consumer = await consumerProcess(t, { RELAYQ_BACKEND: 'file', RELAYQ_BASE_PATH: basePath, RELAYQ_QUEUE: queue }, 2)
  const sends = await produce(t, new FileStorage({ basePath }), queue, ['a', 'b'])
  assertParentChild(sends, await consumer.spans, queue)
})

test('redis: the consumer span in another process is the child of the producer\'s send span', async t => {
  const prefix = `t-${randomUUID()}`
  t.after(() => deleteKeys(redis.url, prefix))
  const queue = 'traced'
  const consumer = await consumerProcess(t, { RELAYQ_BACKEND: 'redis', RELAYQ_URL: redis.url, RELAYQ_PREFIX: prefix, RELAYQ_QUEUE: queue }, 2)
  const sends = await produce(t, new RedisStorage({ url: redis.url, keyPrefix: prefix }), queue, ['a', 'b'])
  assertParentChild(sends, await consumer.spans, queue)
})
