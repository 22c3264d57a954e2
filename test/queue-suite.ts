import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { describe, test, type TestContext } from 'node:test'
import {
  InvalidArgumentError, JobCancelledError, JobFailedError, Producer, Queue, QueueClosedError, TimeoutError,
  type Job, type QueueConfig, type Storage
} from '../src/index.ts'
import { lifecycleTests } from './lifecycle-suite.ts'
import { runtimeTests } from './runtime-suite.ts'
import { badValueTests } from './bad-values-suite.ts'
import type { StorageHandle } from './storage-contract.ts'

/** A promise with its resolve function, to steer handlers from the test. */
export function deferred<T = void> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let settle!: (value: T) => void
  const promise = new Promise<T>(resolve => { settle = resolve })
  return { promise, resolve: settle }
}

/** Makes a fresh storage for one test (real clock). */
export type QueueStorageFactory = () => Promise<StorageHandle>

/** Storage openers for a suite's tests: each closes what it opened when its test ends. */
export function storageOpeners (factory: QueueStorageFactory): {
  storageFor: (t: TestContext) => Promise<Storage>
  storagePair: (t: TestContext) => Promise<[Storage, Storage]>
} {
  return {
    async storageFor (t) {
      const { storage, cleanup } = await factory()
      t.after(cleanup)
      return storage
    },
    /** Two storage instances over the same data, as two processes would have them. */
    async storagePair (t) {
      const { storage, another, cleanup } = await factory()
      t.after(cleanup)
      return [storage, another()]
    }
  }
}

type Cfg = Partial<QueueConfig<any, any>>

/** Queue behaviour every backend must show. */
export function queueTests (name: string, factory: QueueStorageFactory): void {
  describe(`Queue: ${name}`, () => {
    const { storageFor, storagePair } = storageOpeners(factory)

    /** A started queue on its own namespace; fails the test on any `error` event. */
    async function make (t: TestContext, config: Cfg = {}, handler?: (job: Job<any>) => unknown, storage?: Storage): Promise<Queue<any, any>> {
      const queue = new Queue<any, any>({
        storage: storage ?? await storageFor(t),
        name: `q-${randomUUID()}`,
        backoff: { type: 'fixed', delay: 0 },
        ...config
      })
      queue.on('error', err => { throw err })
      if (handler !== undefined) queue.execute(handler as any)
      await queue.start()
      t.after(() => queue.stop())
      return queue
    }

    test('enqueueAndWait returns the handler result; a finished id answers from the cache', async t => {
      let runs = 0
      const queue = await make(t, { concurrency: 4 }, async job => {
        runs++
        return { sum: job.payload.a + job.payload.b }
      })
      assert.deepEqual(await queue.enqueueAndWait('sum', { a: 1, b: 2 }, { timeout: 5000 }), { sum: 3 })
      assert.deepEqual(await queue.enqueueAndWait('sum', { a: 5, b: 5 }, { timeout: 5000 }), { sum: 3 })
      assert.deepEqual(await queue.enqueue('sum', { a: 9, b: 9 }), { status: 'completed', result: { sum: 3 } })
      assert.deepEqual(await queue.getResult('sum'), { sum: 3 })
      assert.equal(runs, 1)
    })

    test('enqueue reports queued, then duplicate while queued or running', async t => {
      const gate = deferred()
      const started = deferred()
      const queue = await make(t, {}, async () => {
        started.resolve()
        await gate.promise
        return 'done'
      })
      assert.deepEqual(await queue.enqueue('a', 1), { status: 'queued' })
      await started.promise
      assert.deepEqual(await queue.enqueue('a', 2), { status: 'duplicate', existingState: 'processing' })
      assert.equal((await queue.getStatus('a'))?.state, 'processing')
      const completed = once(queue, 'completed')
      gate.resolve()
      assert.deepEqual(await completed, ['a', 'done'])
      const status = await queue.getStatus('a')
      assert.equal(status?.state, 'completed')
      assert.equal(status?.attempts, 1)
      assert.equal(status?.result, 'done')
    })

    test('a failing handler is retried, then enqueueAndWait rejects with its message and code', async t => {
      let attempts = 0
      const queue = await make(t, { maxRetries: 3 }, async () => {
        attempts++
        throw Object.assign(new Error(`bad ${attempts}`), { code: 'E_BAD' })
      })
      const failing: number[] = []
      queue.on('failing', (_id, _err, attempt) => failing.push(attempt))
      const err = await queue.enqueueAndWait('x', null, { timeout: 5000 }).catch(e => e)
      assert.ok(err instanceof JobFailedError)
      assert.equal(err.message, "Job 'x' failed: bad 3")
      assert.equal(err.originalCode, 'E_BAD')
      assert.equal(err.code, 'JOB_FAILED')
      assert.deepEqual(failing, [1, 2])
      const status = await queue.getStatus('x')
      assert.equal(status?.state, 'failed')
      assert.equal(status?.error?.message, 'bad 3')
      // A failed id rejects at once, without running again.
      await assert.rejects(queue.enqueueAndWait('x', null, { timeout: 5000 }), JobFailedError)
      assert.deepEqual(await queue.enqueue('x', null), { status: 'duplicate', existingState: 'failed' })
      assert.equal(attempts, 3)
    })

    test('enqueueMany stores a batch with dedup, in order', async t => {
      const queue = await make(t)
      await queue.enqueue('b', 0)
      const results = await queue.enqueueMany([
        { id: 'a', payload: 1 }, { id: 'b', payload: 2 }, { id: 'c', payload: 3, options: { delay: 60_000 } }, { id: 'a', payload: 4 }
      ])
      assert.deepEqual(results, [
        { status: 'queued' }, { status: 'duplicate', existingState: 'queued' }, { status: 'queued' }, { status: 'duplicate', existingState: 'queued' }
      ])
      assert.equal((await queue.getStatus('c'))?.state, 'delayed')
    })

    test('per-job maxAttempts overrides the queue default', async t => {
      let attempts = 0
      const queue = await make(t, { maxRetries: 5 }, async () => { attempts++; throw new Error('no') })
      await assert.rejects(queue.enqueueAndWait('x', null, { maxAttempts: 1, timeout: 5000 }), JobFailedError)
      assert.equal(attempts, 1)
    })

    test('a handler returning undefined completes; callback handlers work', async t => {
      const queue = await make(t, {}, async () => undefined)
      assert.equal(await queue.enqueueAndWait('u', 1, { timeout: 5000 }), undefined)
      assert.equal((await queue.getStatus('u'))?.state, 'completed')
      const cb = await make(t)
      cb.execute((job: Job<number>, done: (err: Error | null, result?: number) => void) => {
        if (job.payload < 0) done(new Error('negative'))
        else done(null, job.payload * 10)
      })
      assert.equal(await cb.enqueueAndWait('c1', 4, { timeout: 5000 }), 40)
      await assert.rejects(cb.enqueueAndWait('c2', -1, { timeout: 5000, maxAttempts: 1 }), /negative/)
    })

    test('concurrency: as many jobs run at once as allowed, never more', async t => {
      let running = 0
      let peak = 0
      const full = deferred()
      const gate = deferred()
      const queue = await make(t, { concurrency: 3 }, async () => {
        running++
        peak = Math.max(peak, running)
        if (running === 3) full.resolve()
        await gate.promise // every slot stays taken until the test opens the gate
        running--
      })
      const all = Promise.all(Array.from({ length: 30 }, (_, i) => queue.enqueueAndWait(`j${i}`, i, { timeout: 10_000 })))
      await full.promise
      // Slots are full and 27 jobs wait: a consumer that over-claims would start a 4th now.
      for (let i = 0; i < 3; i++) await queue.getStatus('j0')
      assert.equal(peak, 3)
      assert.equal(queue.running, 3)
      gate.resolve()
      await all
      assert.equal(peak, 3)
    })

    test('enqueueAndWait times out with TimeoutError; the job stays queued', async t => {
      const producer = await make(t)
      const err = await producer.enqueueAndWait('slow', 1, { timeout: 30 }).catch(e => e)
      assert.ok(err instanceof TimeoutError)
      assert.equal(err.code, 'TIMEOUT')
      assert.equal((await producer.getStatus('slow'))?.state, 'queued')
      assert.equal(producer.waiting, 0)
    })

    test('cancel of a queued job rejects its waiters with JobCancelledError', async t => {
      const producer = await make(t)
      const waiting = producer.enqueueAndWait('c', 1, { timeout: 5000 })
      await once(producer, 'enqueued')
      // Handled before the cancel: its notice may arrive before the cancel's own answer.
      const rejected = assert.rejects(waiting, JobCancelledError)
      assert.deepEqual(await producer.cancel('c'), { status: 'cancelled' })
      await rejected
      assert.deepEqual(await producer.cancel('c'), { status: 'not_found' })
      assert.equal(await producer.getStatus('c'), null)
    })

    test('cancel of a running job: compatible answer, or abort with { running: true }', async t => {
      let calls = 0
      const started = deferred()
      const queue = await make(t, { maxRetries: 3 }, async (job: Job) => {
        calls++
        started.resolve()
        await new Promise((resolve, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason)))
      })
      const waiting = queue.enqueueAndWait('r', 1, { timeout: 5000 })
      await started.promise
      assert.deepEqual(await queue.cancel('r'), { status: 'processing' })
      const cancelled = once(queue, 'cancelled')
      const rejected = assert.rejects(waiting, JobCancelledError)
      assert.deepEqual(await queue.cancel('r', { running: true }), { status: 'cancelled' })
      await rejected
      await cancelled
      assert.equal((await queue.getStatus('r'))?.state, 'cancelled')
      assert.equal(calls, 1, 'a cancelled job is not retried')
    })

    test('several waiters on one id all get the result', async t => {
      const gate = deferred()
      const queue = await make(t, {}, async () => { await gate.promise; return 7 })
      const a = queue.enqueueAndWait('same', 1, { timeout: 5000 })
      const b = queue.enqueueAndWait('same', 1, { timeout: 5000 })
      await once(queue, 'enqueued')
      gate.resolve()
      assert.deepEqual(await Promise.all([a, b]), [7, 7])
      assert.equal(queue.waiting, 0)
    })

    test('bad input is rejected with InvalidArgumentError and stores nothing', async t => {
      const queue = await make(t)
      const bad: Array<[string, () => Promise<unknown>]> = [
        ['empty id', () => queue.enqueue('', 1)],
        ['non-string id', () => queue.enqueue(42 as any, 1)],
        ['oversized id', () => queue.enqueue('x'.repeat(1025), 1)],
        ['bigint payload', () => queue.enqueue('p1', 10n)],
        ['function payload', () => queue.enqueue('p2', () => 1)],
        ['circular payload', () => { const o: any = {}; o.o = o; return queue.enqueue('p3', o) }],
        ['zero maxAttempts', () => queue.enqueue('o1', 1, { maxAttempts: 0 })],
        ['negative resultTTL', () => queue.enqueue('o2', 1, { resultTTL: -1 })],
        ['NaN delay', () => queue.enqueue('o3', 1, { delay: NaN })],
        ['string timeout', () => queue.enqueueAndWait('o4', 1, { timeout: '5' as any })],
        ['fractional ttl', () => queue.updateResultTTL('o5', 1.5)],
        ['bad bulk job', () => queue.enqueueMany([{ id: 'ok', payload: 1 }, { id: '', payload: 2 }])]
      ]
      for (const [label, call] of bad) {
        await assert.rejects(call(), (err: any) => err instanceof InvalidArgumentError && err.code === 'INVALID_ARGUMENT', label)
      }
      for (const id of ['p1', 'p2', 'p3', 'o1', 'o2', 'o3', 'o4', 'ok']) assert.equal(await queue.getStatus(id), null, id)
      assert.equal(queue.waiting, 0)
    })

    test('invalid options throw at construction, naming the option', async t => {
      const storage = await storageFor(t)
      for (const [option, value] of [['concurrency', 0], ['concurrency', -1], ['maxRetries', NaN], ['visibilityTimeout', '30000'], ['resultTTL', 0], ['blockTimeout', 0]] as const) {
        assert.throws(() => new Queue({ storage, [option]: value }), (err: any) => err instanceof InvalidArgumentError && err.message.includes(option))
      }
      assert.throws(() => new Queue({ storage: {} as any }), InvalidArgumentError)
      assert.throws(() => new Queue({ storage, backoff: { type: 'linear' } as any }), InvalidArgumentError)
    })

    test('afterExecution may change the result and the TTL before they are stored', async t => {
      const queue = await make(t, {
        afterExecution: async (ctx: any) => {
          ctx.result = { wrapped: ctx.result }
          ctx.ttl = 120_000
        }
      }, async job => job.payload * 2)
      assert.deepEqual(await queue.enqueueAndWait('a', 21, { timeout: 5000 }), { wrapped: 42 })
      assert.deepEqual(await queue.getResult('a'), { wrapped: 42 })
    })

    test('a producer-only queue never claims; a consumer elsewhere runs its jobs', async t => {
      const [storage, elsewhere] = await storagePair(t)
      const name = `q-${randomUUID()}`
      const producer = new Producer<number, number>({ storage, name })
      t.after(() => producer.stop())
      assert.deepEqual(await producer.enqueue('a', 2), { status: 'queued' })
      assert.equal((await producer.getStatus('a'))?.state, 'queued')
      const consumer = await make(t, { name }, async job => job.payload * 3, elsewhere)
      assert.equal(await producer.enqueueAndWait('a', 2, { timeout: 5000 }), 6)
      assert.equal(consumer.running, 0)
    })

    test('stop waits for running jobs, is idempotent, and rejects later calls until start()', async t => {
      const gate = deferred()
      const started = deferred()
      const storage = await storageFor(t)
      const queue = new Queue<number, number>({ storage, name: `q-${randomUUID()}` })
      queue.execute(async job => { started.resolve(); await gate.promise; return job.payload })
      await queue.start()
      const completed = once(queue, 'completed')
      await queue.enqueue('a', 5)
      await started.promise
      const stopped = once(queue, 'stopped')
      const first = queue.stop()
      assert.equal(queue.stop(), first)
      gate.resolve()
      await first
      await stopped
      assert.deepEqual(await completed, ['a', 5])
      await assert.rejects(queue.enqueue('b', 1), QueueClosedError)
      await assert.rejects(queue.getStatus('a'), QueueClosedError)
    })

    test('stop hands unfinished jobs back after shutdownTimeout; another worker finishes them', async t => {
      const storage = await storageFor(t)
      const name = `q-${randomUUID()}`
      const started = deferred()
      let aborted = false
      const first = new Queue<number, string>({ storage, name, shutdownTimeout: 20 })
      first.execute(async job => {
        started.resolve()
        await new Promise(resolve => job.signal.addEventListener('abort', resolve))
        aborted = true
        return 'never stored'
      })
      await first.start()
      t.after(() => first.stop())
      const requeued = once(first, 'requeued')
      await first.enqueue('long', 1)
      await started.promise
      await first.stop()
      await requeued
      assert.ok(aborted)
      const status = await (await make(t, { name }, undefined, storage)).getStatus('long')
      assert.equal(status?.state, 'queued')
      assert.equal(status?.attempts, 0, 'a handed-back job does not use up an attempt')
      const second = await make(t, { name }, async () => 'finished', storage)
      assert.equal(await second.enqueueAndWait('long', 1, { timeout: 5000 }), 'finished')
    })

    test('events: started, enqueued, completed, failed, cancelled, stopped', async t => {
      const storage = await storageFor(t)
      const queue = new Queue<number, number>({ storage, name: `q-${randomUUID()}`, maxRetries: 1 })
      const seen: string[] = []
      for (const event of ['started', 'enqueued', 'completed', 'failed', 'cancelled', 'stopped'] as const) {
        queue.on(event, (...args: unknown[]) => { seen.push(`${event}${args.length > 0 ? `:${String(args[0])}` : ''}`) })
      }
      queue.execute(async job => { if (job.payload < 0) throw new Error('neg'); return job.payload })
      await queue.start()
      await queue.enqueueAndWait('ok', 1, { timeout: 5000 })
      await assert.rejects(queue.enqueueAndWait('bad', -1, { timeout: 5000 }))
      await queue.enqueue('later', 1, { delay: 60_000 })
      await queue.cancel('later')
      await queue.stop()
      for (const expected of ['started', 'enqueued:ok', 'completed:ok', 'enqueued:bad', 'failed:bad', 'enqueued:later', 'cancelled:later', 'stopped']) {
        assert.ok(seen.includes(expected), `${expected} in ${seen.join(',')}`)
      }
      assert.ok(seen.indexOf('completed:ok') < seen.indexOf('stopped'))
    })

    test('msgpack serde round-trips payloads and results', async t => {
      const { MsgpackSerde } = await import('../src/index.ts')
      const queue = await make(t, { payloadSerde: new MsgpackSerde(), resultSerde: new MsgpackSerde() }, async job => ({ at: job.payload.at, bytes: job.payload.bytes }))
      const at = new Date(1_700_000_000_000)
      const result = await queue.enqueueAndWait('m', { at, bytes: Buffer.from([1, 2, 3]) }, { timeout: 5000 })
      assert.equal(result.at.getTime(), at.getTime())
      assert.deepEqual([...result.bytes], [1, 2, 3])
    })
  })
  lifecycleTests(name, factory)
  runtimeTests(name, factory)
  badValueTests(name, factory)
}
