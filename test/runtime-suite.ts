import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { describe, test, type TestContext } from 'node:test'
import { MaxRetriesError, Queue, TimeoutError, type Job, type QueueConfig, type Storage } from '../src/index.ts'
import type { QueueStorageFactory } from './queue-suite.ts'
import { deferred } from './queue-suite.ts'

type Cfg = Partial<QueueConfig<any, any>>

/** Resolves once `predicate` holds, checked after each event `event` of `emitter`. */
async function until (emitter: Queue<any, any>, event: string, predicate: () => boolean): Promise<void> {
  while (!predicate()) await once(emitter, event)
}

/** Events of a queue, recorded in order as `event:id`; `results` has the results of `completed`. */
function record (queue: Queue<any, any>): string[] & { results: Map<string, unknown> } {
  const seen = Object.assign([] as string[], { results: new Map<string, unknown>() })
  for (const event of ['completed', 'failed', 'failing', 'stalled', 'requeued'] as const) {
    queue.on(event, (id: string, value?: unknown) => {
      seen.push(`${event}:${id}`)
      if (event === 'completed') seen.results.set(id, value)
    })
  }
  return seen
}

/**
 * The run-time limit (issue 10 item 3): `visibilityTimeout` is the longest one attempt may run.
 * Limits are small so that the tests wait for events, never for a fixed time.
 */
export function runtimeTests (name: string, factory: QueueStorageFactory): void {
  describe(`Run-time limit: ${name}`, () => {
    async function make (t: TestContext, config: Cfg, handler: (job: Job<any>) => unknown, storage?: Storage): Promise<Queue<any, any>> {
      let store = storage
      if (store === undefined) {
        const handle = await factory()
        t.after(handle.cleanup)
        store = handle.storage
      }
      const queue = new Queue<any, any>({ storage: store, name: `rt-${randomUUID()}`, backoff: { type: 'fixed', delay: 0 }, ...config })
      queue.on('error', err => { throw err })
      queue.execute(handler as any)
      await queue.start()
      t.after(() => queue.stop())
      return queue
    }

    test('a hung handler: its signal aborts with a TimeoutError at visibilityTimeout, its slot is freed, the reaper recovers it (stalled) and the retry completes; the late outcome is ignored', async t => {
      const hung = deferred<string>()
      const started = deferred<AbortSignal>()
      const queue = await make(t, { visibilityTimeout: 300, concurrency: 1 }, async (job: Job<string>) => {
        if (job.payload === 'hang' && job.attempts === 1) {
          started.resolve(job.signal)
          return await hung.promise // settles only when the test says so, and ignores the signal
        }
        return `${job.payload} ${job.attempts}`
      })
      const events = record(queue)
      await queue.enqueue('hung', 'hang')
      const signal = await started.promise
      if (!signal.aborted) await once(signal, 'abort')
      assert.ok(signal.reason instanceof TimeoutError, 'aborted with a timeout reason')
      assert.equal(signal.reason.code, 'TIMEOUT')
      // The slot is free: with concurrency 1, another job runs while the hung handler still hangs.
      assert.equal(queue.running, 0)
      assert.equal(await queue.enqueueAndWait('other', 'other', { timeout: 5000 }), 'other 1')
      // The reaper recovers the job; the second attempt completes.
      await until(queue, 'completed', () => events.results.has('hung'))
      assert.equal(events.results.get('hung'), 'hang 2')
      // The reaper's events and the retry's completion come from replies on two connections: their
      // relative order is not asserted (see the per-job visibilityTimeout test), the reaper's is.
      await until(queue, 'requeued', () => events.includes('requeued:hung'))
      assert.deepEqual(events.filter(e => e === 'stalled:hung' || e === 'requeued:hung'), ['stalled:hung', 'requeued:hung'])
      const hungEvents = events.filter(e => e.endsWith(':hung'))
      // The first attempt returns at last: its outcome is neither stored nor announced.
      hung.resolve('late')
      await new Promise(resolve => setImmediate(resolve))
      assert.equal(await queue.enqueueAndWait('after', 'after', { timeout: 5000 }), 'after 1')
      assert.equal(await queue.getResult('hung'), 'hang 2')
      assert.deepEqual(events.filter(e => e.endsWith(':hung')), hungEvents)
      assert.deepEqual([...hungEvents].sort(), ['completed:hung', 'requeued:hung', 'stalled:hung'])
      const status = await queue.getStatus('hung')
      assert.equal(status?.attempts, 2)
    })

    test('a per-job visibilityTimeout lets one long job run longer; the lease heartbeat keeps it', async t => {
      const release = deferred()
      const started = new Map<string, Job<string>>()
      const queue = await make(t, { visibilityTimeout: 200, concurrency: 2 }, async (job: Job<string>) => {
        started.set(job.id, job)
        if (job.id === 'long') await release.promise
        else if (job.attempts === 1) await new Promise(() => {}) // hangs
        return job.attempts
      })
      const events = record(queue)
      await queue.enqueueMany([
        { id: 'long', payload: 'x', options: { visibilityTimeout: 60_000 } },
        { id: 'short', payload: 'x' }
      ])
      // The short job passes the queue's limit and is recovered, which takes more than 200 ms.
      await until(queue, 'completed', () => events.includes('completed:short'))
      const long = started.get('long') as Job<string>
      assert.equal(long.signal.aborted, false)
      assert.equal((await queue.getStatus('long'))?.state, 'processing')
      release.resolve()
      await until(queue, 'completed', () => events.results.has('long'))
      assert.equal(events.results.get('long'), 1)
      assert.deepEqual(events.filter(e => e.endsWith(':long')), ['completed:long'])
      // The reaper's events and the consumer's completion of the next attempt come from replies on
      // two connections (on Redis, the second attempt may be settled before the reaper has read
      // the reply of its pass): the reaper's events are in order, and the next attempt completed.
      await until(queue, 'requeued', () => events.includes('requeued:short'))
      assert.deepEqual(events.filter(e => e === 'stalled:short' || e === 'requeued:short'), ['stalled:short', 'requeued:short'])
      assert.deepEqual(events.filter(e => e.endsWith(':short')).sort(), ['completed:short', 'requeued:short', 'stalled:short'])
      assert.equal(events.results.get('short'), 2)
    })

    test('a job that always hangs counts its stalls: failed after maxStalls + 1 overruns, with a MaxRetriesError', async t => {
      let runs = 0
      const queue = await make(t, { visibilityTimeout: 100, maxStalls: 1, maxRetries: 5 }, async () => {
        runs++
        await new Promise(() => {})
      })
      const events = record(queue)
      const failed = once(queue, 'failed')
      await queue.enqueue('stuck', 1)
      const [id, err] = await failed
      assert.equal(id, 'stuck')
      assert.ok(err instanceof MaxRetriesError)
      assert.equal(runs, 2)
      assert.deepEqual([...events], ['stalled:stuck', 'requeued:stuck', 'stalled:stuck', 'failed:stuck'])
      const status = await queue.getStatus('stuck')
      assert.equal(status?.state, 'failed')
      assert.equal(status?.attempts, 2)
    })

    test('per-job visibilityTimeout is validated: an integer from 10 ms', async t => {
      const queue = await make(t, {}, async () => 1)
      for (const bad of [0, 9, 1.5, -1, '100', NaN]) {
        await assert.rejects(queue.enqueue(`bad-${String(bad)}`, 1, { visibilityTimeout: bad as number }), /visibilityTimeout/)
      }
      assert.equal(await queue.getStatus('bad-0'), null)
    })
  })
}
