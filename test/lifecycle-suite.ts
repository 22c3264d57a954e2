import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { describe, test, type TestContext } from 'node:test'
import { Consumer, Producer, Queue, QueueClosedError, Reaper, StorageError, type Logger, type Storage } from '../src/index.ts'
import { deferred } from './queue-suite.ts'
import { until, type StorageHandle } from './storage-contract.ts'

/** One call to a {@link RecordingLogger}. */
export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error'
  /** What the child loggers it came through were made with, merged. */
  bindings: Record<string, unknown>
  obj: unknown
  msg: string | undefined
}

/** A pino-style logger with child() that records every call. */
export interface RecordingLogger extends Logger {
  readonly lines: LogLine[]
}

export function recordingLogger (withChild = true): RecordingLogger {
  const lines: LogLine[] = []
  const make = (bindings: Record<string, unknown>): RecordingLogger => {
    const at = (level: LogLine['level']) => (obj: unknown, msg?: string): void => { lines.push({ level, bindings, obj, msg }) }
    const logger: RecordingLogger = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
    if (withChild) logger.child = more => make({ ...bindings, ...more })
    return logger
  }
  return make({})
}

/** The messages logged at `level` by `component`, in order. */
function messages (logger: RecordingLogger, component: string, level: LogLine['level'] = 'debug'): Array<string | undefined> {
  return logger.lines.filter(l => l.level === level && l.bindings.component === component).map(l => l.msg)
}

/**
 * A job of `queue` claimed by a worker that then dies: its lease of `leaseMs` ms runs out
 * unrenewed. Resolves when the lease has expired if `expired`, else at once.
 */
async function orphan (t: TestContext, storage: Storage, queue: string, id: string, leaseMs: number, expired = false): Promise<void> {
  await storage.connect()
  t.after(() => storage.disconnect())
  await storage.enqueue(queue, [{ id, payload: Buffer.from('1'), maxAttempts: 3, resultTTL: 60_000, delay: 0 }])
  const claimed = await storage.claim(queue, `dead-${randomUUID()}`, { max: 1, leaseMs, blockMs: 0 })
  assert.deepEqual(claimed.map(j => j.id), [id])
  const deadline = Date.now() + leaseMs
  if (expired) await until(() => Date.now() > deadline)
}

/**
 * Start/stop behaviour every backend must show: restart cycles of Queue, Producer, Consumer and
 * Reaper, concurrent start/stop, the reaper's defaults and lock scheme, logging, and stop() from a
 * handler. Run by {@link queueTests} for each backend.
 */
export function lifecycleTests (name: string, factory: () => Promise<StorageHandle>): void {
  describe(`Lifecycle: ${name}`, () => {
    async function handle (t: TestContext): Promise<StorageHandle> {
      const made = await factory()
      t.after(made.cleanup)
      return made
    }

    /** A queue (not started) on its own namespace that fails the test on any `error` event. */
    function queueOn (t: TestContext, storage: Storage, config: Record<string, unknown> = {}): Queue<number, number> {
      const queue = new Queue<number, number>({ storage, name: `q-${randomUUID()}`, backoff: { type: 'fixed', delay: 0 }, ...config })
      t.after(() => queue.stop())
      queue.on('error', err => { throw err })
      return queue
    }

    test('a Queue restarts: each cycle emits started, consumes, answers enqueueAndWait, stops and emits stopped', async t => {
      const { storage } = await handle(t)
      const queue = queueOn(t, storage)
      const events: string[] = []
      queue.on('started', () => events.push('started'))
      queue.on('stopped', () => events.push('stopped'))
      queue.execute(async job => job.payload * 2)
      for (let cycle = 1; cycle <= 3; cycle++) {
        await queue.start()
        const completed = once(queue, 'completed')
        assert.deepEqual(await queue.enqueue(`job-${cycle}`, cycle), { status: 'queued' })
        assert.deepEqual(await completed, [`job-${cycle}`, cycle * 2])
        // enqueueAndWait subscribes again after each restart.
        assert.equal(await queue.enqueueAndWait(`rpc-${cycle}`, cycle, { timeout: 5000 }), cycle * 2)
        await queue.stop()
        await assert.rejects(queue.enqueue(`closed-${cycle}`, 0), QueueClosedError)
      }
      assert.deepEqual(events, ['started', 'stopped', 'started', 'stopped', 'started', 'stopped'])
    })

    test('a job enqueued while the queue is stopped runs after the restart', async t => {
      const h = await handle(t)
      const name = `q-${randomUUID()}`
      const queue = queueOn(t, h.storage, { name })
      queue.execute(async job => job.payload + 1)
      await queue.start()
      await queue.stop()
      const producer = new Producer<number, number>({ storage: h.another(), name })
      t.after(() => producer.stop())
      assert.deepEqual(await producer.enqueue('while-stopped', 41), { status: 'queued' })
      const completed = once(queue, 'completed')
      await queue.start()
      assert.deepEqual(await completed, ['while-stopped', 42])
    })

    test('concurrent calls take effect in order: start during stop starts again, stop during start stops once started', async t => {
      const { storage } = await handle(t)
      const queue = queueOn(t, storage)
      const events: string[] = []
      queue.on('started', () => events.push('started'))
      queue.on('stopped', () => events.push('stopped'))
      queue.execute(async job => job.payload)
      // Asked for together: start, stop, start: the queue ends started.
      await Promise.all([queue.start(), queue.stop(), queue.start()])
      assert.deepEqual(events, ['started', 'stopped', 'started'])
      assert.equal(await queue.enqueueAndWait('after', 7, { timeout: 5000 }), 7)
      // Stop asked for twice shares one promise; a start during it waits for it.
      const stopping = queue.stop()
      assert.equal(queue.stop(), stopping)
      const restarting = queue.start()
      await stopping
      await restarting
      assert.deepEqual(events, ['started', 'stopped', 'started', 'stopped', 'started'])
      assert.equal(await queue.enqueueAndWait('again', 8, { timeout: 5000 }), 8)
      // A stop during a start: the start resolves, then the queue stops.
      await queue.stop()
      const starting = queue.start()
      const stopped = queue.stop()
      await starting
      await stopped
      assert.deepEqual(events.slice(-3), ['stopped', 'started', 'stopped'])
      await assert.rejects(queue.enqueue('closed', 0), QueueClosedError)
    })

    test('a Producer and a Consumer restart on their own', async t => {
      const h = await handle(t)
      const name = `q-${randomUUID()}`
      const producer = new Producer<number, number>({ storage: h.storage, name })
      t.after(() => producer.stop())
      const consumer = new Consumer<number, number>({ storage: h.another(), name })
      t.after(() => consumer.stop())
      consumer.on('error', err => { throw err })
      consumer.execute(async job => job.payload * 10)
      for (let cycle = 1; cycle <= 2; cycle++) {
        await producer.start()
        await consumer.start()
        const completed = once(consumer, 'completed')
        assert.equal(await producer.enqueueAndWait(`c${cycle}`, cycle, { timeout: 5000 }), cycle * 10)
        assert.deepEqual(await completed, [`c${cycle}`, cycle * 10])
        await consumer.stop()
        await producer.stop()
        await assert.rejects(producer.getStatus(`c${cycle}`), QueueClosedError)
      }
    })

    test('a Reaper restarts: it recovers stalled jobs after each start', async t => {
      const h = await handle(t)
      const name = `q-${randomUUID()}`
      const logger = recordingLogger()
      const reaper = new Reaper({ storage: h.another(), name, visibilityTimeout: 100, interval: 20, logger })
      t.after(() => reaper.stop())
      reaper.on('error', err => { throw err })
      for (let cycle = 1; cycle <= 2; cycle++) {
        await orphan(t, h.storage, name, `orphan-${cycle}`, 50)
        const stalled = once(reaper, 'stalled')
        await reaper.start()
        assert.deepEqual(await stalled, [`orphan-${cycle}`])
        await reaper.stop()
        // Out of the way of the next cycle's dead worker.
        assert.equal(await h.storage.cancel(name, `orphan-${cycle}`), 'cancelled')
      }
      // Recoveries are logged at warn, with the id and nothing else of the job.
      assert.deepEqual(logger.lines.filter(l => l.level === 'warn').map(l => l.obj), [{ id: 'orphan-1' }, { id: 'orphan-2' }])
    })

    test('a standalone Reaper without leaderElection scans at once, takes no lock and is not leader', async t => {
      const h = await handle(t)
      const name = `q-${randomUUID()}`
      await orphan(t, h.storage, name, 'lost', 1, true)
      const plain = new Reaper({ storage: h.another(), name, interval: 60_000 })
      t.after(() => plain.stop())
      const stalled = once(plain, 'stalled')
      await plain.start()
      assert.deepEqual(await stalled, ['lost'], 'the first scan runs at start')
      assert.equal(plain.isLeader, false)
      // It holds no lock: an electing reaper on the same queue leads at once.
      const electing = new Reaper({ storage: h.another(), name, interval: 60_000, leaderElection: { enabled: true } })
      t.after(() => electing.stop())
      await electing.start()
      assert.equal(electing.isLeader, true)
    })

    test('a standalone Reaper with election leads while a Queue (and its own reaper) runs on the same storage', async t => {
      const h = await handle(t)
      const name = `q-${randomUUID()}`
      const queue = queueOn(t, h.storage, { name })
      queue.execute(async job => job.payload)
      await queue.start()
      assert.equal(await queue.enqueueAndWait('warm', 1, { timeout: 5000 }), 1)
      const reaper = new Reaper({ storage: h.another(), name, leaderElection: { enabled: true } })
      t.after(() => reaper.stop())
      const acquired = once(reaper, 'leadershipAcquired')
      await reaper.start()
      await acquired
      assert.equal(reaper.isLeader, true)
    })

    test('logging: start and stop at debug through child loggers; job failures at warn and error; no payload', async t => {
      const { storage } = await handle(t)
      const logger = recordingLogger()
      const secret = `payload-${randomUUID()}`
      const queue = new Queue<string, string>({ storage, name: `q-${randomUUID()}`, logger, maxRetries: 2, concurrency: 3, backoff: { type: 'fixed', delay: 0 } })
      t.after(() => queue.stop())
      queue.execute(async job => { if (job.id === 'bad') throw new Error('boom'); return 'ok' })
      await queue.start()
      assert.equal(await queue.enqueueAndWait('good', secret, { timeout: 5000 }), 'ok')
      await assert.rejects(queue.enqueueAndWait('bad', secret, { timeout: 5000 }), /boom/)
      await queue.stop()

      assert.deepEqual(messages(logger, 'queue'), ['queue starting', 'queue started', 'queue stopping', 'queue stopped'])
      assert.deepEqual(messages(logger, 'producer'), ['producer starting', 'producer started', 'producer stopping', 'producer stopped'])
      assert.deepEqual(messages(logger, 'consumer'), ['consumer starting', 'consumer started', 'consumer stopping', 'consumer stopped'])
      assert.deepEqual(messages(logger, 'reaper'), ['reaper starting', 'reaper leadership acquired', 'reaper started', 'reaper stopping', 'reaper stopped'])
      const workerId = logger.lines.find(l => l.bindings.component === 'consumer')?.bindings.workerId
      assert.equal(typeof workerId, 'string')
      assert.ok(logger.lines.filter(l => l.bindings.component === 'queue').every(l => l.bindings.workerId === workerId), 'the queue logs with its worker id')
      assert.deepEqual(logger.lines.find(l => l.msg === 'consumer starting')?.obj, { concurrency: 3 })
      assert.equal(typeof logger.lines.find(l => l.bindings.component === 'reaper')?.bindings.reaperId, 'string')

      const failing = logger.lines.filter(l => l.level === 'warn' && l.bindings.component === 'consumer')
      assert.equal(failing.length, 1)
      assert.deepEqual({ ...failing[0].obj as object, err: undefined }, { id: 'bad', attempt: 1, err: undefined })
      assert.match(((failing[0].obj as { err: Error }).err).message, /boom/)
      const failed = logger.lines.filter(l => l.level === 'error')
      assert.equal(failed.length, 1)
      assert.equal((failed[0].obj as { id: string }).id, 'bad')
      assert.equal(failed[0].bindings.component, 'consumer')
      for (const line of logger.lines) assert.ok(!JSON.stringify(line, (_k, v) => v instanceof Error ? v.message : v).includes(secret), 'no payload in the logs')
    })

    test('logging: a logger without child() is used as it is', async t => {
      const { storage } = await handle(t)
      const logger = recordingLogger(false)
      const queue = new Queue<number, number>({ storage, name: `q-${randomUUID()}`, logger, reaper: false })
      t.after(() => queue.stop())
      await queue.start()
      await queue.stop()
      assert.deepEqual(logger.lines.map(l => l.msg), [
        'queue starting', 'producer starting', 'producer started', 'queue started',
        'queue stopping', 'producer stopping', 'producer stopped', 'queue stopped'
      ])
      assert.ok(logger.lines.every(l => Object.keys(l.bindings).length === 0))
    })

    test('await queue.stop() inside a handler: the calling job completes and is stored, the queue stops', { timeout: 30_000 }, async t => {
      const { storage } = await handle(t)
      // A deadlock would wait this long: the test's own timeout fails first.
      const queue = queueOn(t, storage, { shutdownTimeout: 60_000, concurrency: 2 })
      const other = deferred()
      const otherRunning = deferred()
      queue.execute(async job => {
        if (job.id === 'other') {
          otherRunning.resolve()
          await other.promise
          return 2
        }
        await otherRunning.promise
        await queue.stop()
        // The stop is under way: the queue no longer takes jobs, yet this job may finish.
        other.resolve()
        return 1
      })
      const completed: string[] = []
      queue.on('completed', id => completed.push(id))
      const stopped = once(queue, 'stopped')
      await queue.start()
      await queue.enqueue('other', 0)
      await queue.enqueue('self', 0)
      await stopped
      assert.deepEqual(completed.sort(), ['other', 'self'])
      await queue.start()
      assert.deepEqual(await queue.getStatus('self').then(s => [s?.state, s?.result]), ['completed', 1])
      assert.deepEqual(await queue.getStatus('other').then(s => [s?.state, s?.result]), ['completed', 2])
    })
  })
}

/** A storage that cannot connect until `fix()` is called. */
export interface BrokenStorage {
  /** A new instance over the same (for now unreachable) data. */
  make: () => Storage
  /** Makes it reachable: the server comes up, the directory becomes usable. */
  fix: () => Promise<void>
  cleanup: () => Promise<void>
}

/**
 * A failed start is not remembered (backends whose connect can fail): every component tries again
 * on its next call, and works once the storage does.
 */
export function failedStartTests (name: string, broken: () => Promise<BrokenStorage>): void {
  test(`${name}: a failed start is not remembered: Queue, Producer, Consumer and Reaper try again on their next call`, async t => {
    const b = await broken()
    t.after(b.cleanup)
    const queueName = `q-${randomUUID()}`
    const queue = new Queue<number, number>({ storage: b.make(), name: queueName })
    t.after(() => queue.stop())
    queue.execute(async job => job.payload * 2)
    const producer = new Producer<number, number>({ storage: b.make(), name: queueName })
    t.after(() => producer.stop())
    const consumer = new Consumer<number, number>({ storage: b.make(), name: queueName })
    t.after(() => consumer.stop())
    consumer.execute(async job => job.payload * 2)
    const reaped = `r-${randomUUID()}`
    const reaper = new Reaper({ storage: b.make(), name: reaped, visibilityTimeout: 100, interval: 20 })
    t.after(() => reaper.stop())

    for (let attempt = 1; attempt <= 2; attempt++) {
      await assert.rejects(queue.enqueue('a', 1), StorageError)
      await assert.rejects(queue.getStatus('a'), StorageError)
      await assert.rejects(queue.start(), StorageError)
      await assert.rejects(producer.enqueueAndWait('b', 2, { timeout: 5000 }), StorageError)
      await assert.rejects(consumer.start(), StorageError)
      await assert.rejects(reaper.start(), StorageError)
    }
    await b.fix()

    assert.deepEqual(await queue.enqueue('a', 1), { status: 'queued' })
    const completed = once(queue, 'completed')
    await queue.start()
    assert.deepEqual(await completed, ['a', 2])
    await consumer.start()
    assert.equal(await producer.enqueueAndWait('b', 2, { timeout: 5000 }), 4)
    assert.equal((await queue.getStatus('b'))?.state, 'completed')
    // The reaper whose start failed scans once started.
    await orphan(t, b.make(), reaped, 'orphan', 50)
    const stalled = once(reaper, 'stalled')
    await reaper.start()
    assert.deepEqual(await stalled, ['orphan'])
  })
}
