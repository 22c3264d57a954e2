import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test, type TestContext } from 'node:test'
import {
  InvalidArgumentError, MaxRetriesError, Queue, SerdeError, StorageError, type Job, type QueueConfig, type Serde, type Storage
} from '../src/index.ts'
import type { NewJob, Settlement } from '../src/storage/types.ts'
import { spyOn } from './failure-suite.ts'
import { deferred, storageOpeners, type QueueStorageFactory } from './queue-suite.ts'

type Cfg = Partial<QueueConfig<any, any>>

/** A result serde that returns `odd[value]` for the values listed there (breaking the Serde contract), JSON otherwise. */
function oddSerde (odd: Record<string, unknown>): Serde<unknown> {
  return {
    serialize: value => typeof value === 'string' && Object.hasOwn(odd, value) ? odd[value] as Buffer : Buffer.from(JSON.stringify(value)),
    deserialize: bytes => JSON.parse(bytes.toString())
  }
}

/** Settles each promise: its value, or the rejection's error. */
async function outcomes<T> (promises: Array<Promise<T>>): Promise<Array<T | Error>> {
  return await Promise.all(promises.map(async p => await p.catch((err: Error) => err)))
}

/**
 * Issue 13 item 1: one bad settlement or enqueue never wedges the queue. Values that are not bytes
 * or are too large fail their own job; a batch the storage refuses for one element is split until
 * that element is alone, and only its job fails.
 */
export function badValueTests (name: string, factory: QueueStorageFactory): void {
  describe(`Bad values: ${name}`, () => {
    const { storageFor } = storageOpeners(factory)

    /** A started queue on its own namespace; `error` events go to `errors` (or fail the test). */
    async function make (t: TestContext, config: Cfg, handler: (job: Job<any>) => unknown, errors?: Error[]): Promise<Queue<any, any>> {
      const queue = new Queue<any, any>({ storage: config.storage ?? await storageFor(t), name: `bv-${randomUUID()}`, backoff: { type: 'fixed', delay: 0 }, ...config })
      queue.on('error', err => { if (errors === undefined) throw err; errors.push(err) })
      queue.execute(handler as any)
      await queue.start()
      t.after(() => queue.stop())
      return queue
    }

    /** Handlers that return together once `gate` opens: their settlements travel in one batch. */
    function gated (gate: Promise<void>): (job: Job<any>) => Promise<unknown> {
      return async job => {
        await gate
        return job.payload
      }
    }

    test('a resultSerde returning a Uint8Array is stored; a string, null or {} fails its job with a SerdeError; good jobs beside them complete', async t => {
      const gate = deferred()
      const serde = oddSerde({ u8: new Uint8Array(Buffer.from('"bytes"')), str: '"s"', nul: null, obj: {} })
      const queue = await make(t, { concurrency: 8, resultSerde: serde }, gated(gate.promise))
      const failed = new Map<string, Error>()
      queue.on('failed', (id, err) => failed.set(id, err))
      const ids = ['good-1', 'u8', 'str', 'nul', 'obj', 'good-2']
      const waits = ids.map(id => queue.enqueueAndWait(id, id.startsWith('good') ? 42 : id, { timeout: 10_000 }))
      await until(async () => (await queue.getStatus('good-2'))?.state === 'processing')
      gate.resolve()
      const results = await outcomes(waits)
      assert.deepEqual(results.slice(0, 2), [42, 'bytes'])
      assert.equal(results[5], 42)
      // A waiter may hear the outcome (the storage's notice) before the consumer announces it.
      await until(async () => ['str', 'nul', 'obj'].every(id => failed.has(id)))
      for (const [i, id] of ids.entries()) {
        if (!['str', 'nul', 'obj'].includes(id)) continue
        assert.match((results[i] as Error).message, /serialize\(\) returned .* instead of a Buffer or Uint8Array/, id)
        const err = failed.get(id)
        assert.ok(err instanceof MaxRetriesError && err.lastError instanceof SerdeError, id)
        assert.equal((await queue.getStatus(id))?.state, 'failed')
      }
      // Later jobs are stored and answered.
      assert.deepEqual(await Promise.all([1, 2, 3].map(n => queue.enqueueAndWait(`after-${n}`, n, { timeout: 10_000 }))), [1, 2, 3])
    })

    test('a payload or result larger than the storage stores: enqueue rejects with InvalidArgumentError and stores nothing; the job whose result is too large fails', async t => {
      const storage = await storageFor(t)
      // The limit is the storage's; a small one stands in for it here (the Redis suite uses a real server limit).
      const small = spyOn(storage, { maxValueBytes: 1000 } as Partial<Storage>)
      const queue = await make(t, { storage: small, concurrency: 4 }, async job => job.payload === 'big' ? 'x'.repeat(2000) : job.payload)
      const refused = await queue.enqueue('huge', 'y'.repeat(2000)).catch((err: Error) => err)
      assert.ok(refused instanceof InvalidArgumentError)
      assert.match(refused.message, /The payload of job 'huge' is 2002 bytes: larger than the storage stores per value \(1000 bytes\)/)
      assert.equal(await queue.getStatus('huge'), null)
      const [big, good] = await outcomes([queue.enqueueAndWait('big', 'big', { timeout: 10_000 }), queue.enqueueAndWait('good', 'good', { timeout: 10_000 })])
      assert.equal(good, 'good')
      assert.match((big as Error).message, /The result of job 'big' is 2002 bytes: larger than the storage stores per value/)
    })

    test('a settle batch refused for one element: that job fails with the storage\'s reason, every other settlement is stored', async t => {
      const storage = await storageFor(t)
      const batches: string[][] = []
      const refusing = spyOn(storage, {
        settle: async (queue, workerId, settlements, next) => {
          batches.push(settlements.map(s => s.id))
          if (settlements.some(s => s.id === 'poison' && s.type === 'complete')) throw new StorageError('value refused by the server', undefined, { retryable: false })
          return await storage.settle(queue, workerId, settlements, next)
        }
      })
      const gate = deferred()
      const queue = await make(t, { storage: refusing, concurrency: 8 }, gated(gate.promise))
      const ids = ['a', 'b', 'c', 'poison', 'd', 'e']
      const waits = ids.map(id => queue.enqueueAndWait(id, id, { timeout: 10_000 }))
      await until(async () => (await queue.getStatus('e'))?.state === 'processing')
      gate.resolve()
      const results = await outcomes(waits)
      assert.deepEqual(results.filter((_, i) => ids[i] !== 'poison'), ['a', 'b', 'c', 'd', 'e'])
      assert.match((results[3] as Error).message, /The storage refused to store the result of job 'poison': value refused by the server/)
      assert.ok(batches.some(b => b.includes('poison') && b.length > 1), 'the poison came in a batch')
      assert.equal((await queue.getStatus('poison'))?.state, 'failed')
      assert.equal(await queue.enqueueAndWait('after', 'after', { timeout: 10_000 }), 'after')
    })

    test('an enqueue batch refused for one job: that call rejects, the others are stored', async t => {
      const storage = await storageFor(t)
      const refusing = spyOn(storage, {
        enqueue: async (queue: string, jobs: readonly NewJob[]) => {
          if (jobs.some(j => j.id === 'poison')) throw new StorageError('value refused by the server', undefined, { retryable: false })
          return await storage.enqueue(queue, jobs)
        }
      })
      const queue = await make(t, { storage: refusing }, async job => job.payload)
      // Enqueued in one tick: one batch.
      const results = await outcomes(['a', 'poison', 'b', 'c'].map(id => queue.enqueue(id, id)))
      assert.deepEqual(results.filter((_, i) => i !== 1), [{ status: 'queued' }, { status: 'queued' }, { status: 'queued' }])
      assert.ok(results[1] instanceof StorageError && !results[1].retryable)
      assert.equal(await queue.getStatus('poison'), null)
      assert.equal(await queue.enqueueAndWait('w', 'w', { timeout: 10_000 }), 'w')
    })

    test('a replacement refused too is dropped and reported; the lease expires and the reaper takes the job', async t => {
      const storage = await storageFor(t)
      const refusing = spyOn(storage, {
        settle: async (queue, workerId, settlements: readonly Settlement[], next) => {
          if (settlements.some(s => s.id === 'doomed')) throw new StorageError('refused', undefined, { retryable: false })
          return await storage.settle(queue, workerId, settlements, next)
        }
      })
      const errors: Error[] = []
      const queue = await make(t, { storage: refusing, visibilityTimeout: 200, maxStalls: 0 }, async job => job.payload, errors)
      // Not events.once: it would reject on the `error` event this test expects.
      const failed = new Promise<[string, Error]>(resolve => queue.once('failed', (...args) => resolve(args)))
      await queue.enqueue('doomed', 1)
      const [id, err] = await failed
      assert.equal(id, 'doomed')
      assert.match((err as Error).message, /stalled/)
      assert.ok(errors.some(e => /refused the fail of job 'doomed'/.test(e.message)), errors.map(e => e.message).join('; '))
      assert.equal(await queue.enqueueAndWait('fine', 'fine', { timeout: 10_000 }), 'fine')
    })
  })
}

/** Resolves once `check` answers true, checking again on each turn of the event loop. */
async function until (check: () => Promise<boolean>): Promise<void> {
  while (!await check()) await new Promise(resolve => setImmediate(resolve))
}
