import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { Consumer, MemoryStorage, Producer, InvalidArgumentError } from '../src/index.ts'
import { deferred } from './queue-suite.ts'

/** A consumer (concurrency 2, prefetch 3) whose handler holds every job until `release()`. */
async function held (t: { after: (fn: () => unknown) => void }): Promise<{ storage: MemoryStorage, producer: Producer<number, number>, consumer: Consumer<number, number>, started: number[], release: () => void, running: () => number, peak: () => number }> {
  const storage = new MemoryStorage()
  const producer = new Producer<number, number>({ storage, name: 'q' })
  const consumer = new Consumer<number, number>({ storage, name: 'q', concurrency: 2, prefetch: 3, shutdownTimeout: 10_000 })
  t.after(async () => {
    await consumer.stop()
    await producer.stop()
  })
  const gate = deferred()
  const started: number[] = []
  let running = 0
  let peak = 0
  consumer.execute(async job => {
    started.push(job.payload)
    peak = Math.max(peak, ++running)
    await gate.promise
    running--
    return job.payload
  })
  await producer.start()
  return { storage, producer, consumer, started, release: gate.resolve, running: () => running, peak: () => peak }
}

test('prefetch: jobs are claimed ahead of free slots, never run beyond concurrency, and all complete in order', async t => {
  const { storage, producer, consumer, started, release, peak } = await held(t)
  await producer.enqueueMany(Array.from({ length: 10 }, (_, i) => ({ id: `j${i}`, payload: i })))
  await consumer.start()
  while ((await storage.counts('q')).processing < 5) await new Promise(resolve => setImmediate(resolve))
  const counts = await storage.counts('q')
  assert.equal(counts.processing, 5, '2 running + 3 claimed ahead')
  assert.equal(counts.queued, 5)
  assert.deepEqual(started, [0, 1])
  let completed = 0
  const all = new Promise<void>(resolve => consumer.on('completed', () => { if (++completed === 10) resolve() }))
  release()
  await all
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  assert.equal(peak(), 2)
  assert.equal((await storage.counts('q')).completed, 10)
})

test('prefetch: stop() hands the jobs claimed ahead back at once, and lets the running ones finish', async t => {
  const { storage, producer, consumer, started, release } = await held(t)
  await producer.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ id: `j${i}`, payload: i })))
  await consumer.start()
  while ((await storage.counts('q')).processing < 5) await new Promise(resolve => setImmediate(resolve))
  const stopped = consumer.stop()
  while ((await storage.counts('q')).queued < 4) await new Promise(resolve => setImmediate(resolve))
  assert.equal((await storage.counts('q')).processing, 2, 'only the running jobs are still leased')
  release()
  await stopped
  assert.deepEqual(started, [0, 1])
  const counts = await storage.counts('q')
  assert.equal(counts.completed, 2)
  assert.equal(counts.queued, 4)
  // Handed back without an attempt used: the next run is attempt 1.
  assert.equal((await storage.getJob('q', 'j2'))?.attempts, 0)
})

test('prefetch: a job claimed ahead whose abort is requested is cancelled without running', async t => {
  const { storage, producer, consumer, started, release } = await held(t)
  await producer.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ id: `j${i}`, payload: i })))
  await consumer.start()
  while ((await storage.counts('q')).processing < 3) await new Promise(resolve => setImmediate(resolve))
  const cancelled = once(consumer, 'cancelled')
  assert.deepEqual(await storage.abort('q', 'j2', 60_000), 'aborting')
  assert.deepEqual(await cancelled, ['j2'])
  release()
  while ((await storage.counts('q')).completed < 2) await new Promise(resolve => setImmediate(resolve))
  assert.deepEqual(started, [0, 1])
  assert.equal((await storage.getStatus('q', 'j2'))?.state, 'cancelled')
})

test('prefetch must be an integer >= 0', () => {
  assert.throws(() => new Consumer({ storage: new MemoryStorage(), prefetch: -1 }), InvalidArgumentError)
  assert.throws(() => new Consumer({ storage: new MemoryStorage(), prefetch: 1.5 }), InvalidArgumentError)
})
