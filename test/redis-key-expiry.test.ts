import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { JobCancelledError, JobFailedError, Producer, Queue, Reaper, TimeoutError, type Job } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import type { NewJob } from '../src/storage/types.ts'
import { redisWithAdmin, footprint, lifo } from './fixtures/redis-tools.ts'
import { deferred } from './queue-suite.ts'
import { until } from './storage-contract.ts'

const { server, admin } = await redisWithAdmin()

/** How long every terminal record is kept in this test, in the result cache and in history (ms). */
const TTL = 300

test('nothing grows without bound: once result TTLs and history retention have passed, what the queues hold is back to its baseline', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'ttl'
  const errors: unknown[] = []
  const make = (): RedisStorage => {
    const storage = new RedisStorage({ url: server.url, keyPrefix: prefix })
    storage.on('error', err => errors.push(err))
    return storage
  }
  const reaperStorage = make()
  const reaper = new Reaper({ storage: reaperStorage, name, visibilityTimeout: 300, interval: 100, leaderElection: { enabled: false } })
  reaper.on('error', err => errors.push(err))
  await reaper.start()
  defer(() => reaper.stop())

  const release = deferred()
  const queue = new Queue<string, string>({ storage: make(), name, concurrency: 16, resultTTL: TTL, maxRetries: 2, reaper: false, backoff: { type: 'fixed', delay: 20 } })
  queue.on('error', err => errors.push(err))
  const ended = new Set<string>()
  queue.on('completed', id => ended.add(id))
  queue.execute(async (job: Job<string>) => {
    switch (job.payload) {
      case 'fail': throw new Error('fails every time')
      case 'flaky': if (job.attempts === 1) throw new Error('fails once'); return 'second time lucky'
      case 'hold': {
        // Runs until cancelled.
        const signal = job.signal
        await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
        throw signal.reason
      }
      case 'slow': await release.promise; return 'slow'
      default: return `done ${job.id}`
    }
  })
  await queue.start()
  defer(() => queue.stop())
  defer(() => release.resolve())
  const producer = new Producer<string, string>({ storage: make(), name, resultTTL: TTL, maxRetries: 2 })
  await producer.start()
  defer(() => producer.stop())
  const direct = make()
  await direct.connect()
  defer(() => direct.disconnect())

  const orphans = 'ttl-orphans'
  // History ends as soon as the result cache; the reaper's passes trim it.
  const keep = { age: TTL, count: 10_000 }
  for (const queueName of [name, orphans]) await direct.setRetention(queueName, { completed: keep, failed: keep, cancelled: keep })
  const baseline = await footprint(admin, prefix)
  let peak = baseline

  // Completed, failed and retried jobs, awaited from both instances.
  const waits: Array<Promise<unknown>> = []
  for (let i = 0; i < 100; i++) {
    const kind = ['ok', 'fail', 'flaky'][i % 3]
    const who = i % 2 === 0 ? queue : producer
    waits.push(who.enqueueAndWait(`${kind}-${i}`, kind, { timeout: 10_000 }).catch((e: unknown) => e))
  }
  await queue.enqueueMany(Array.from({ length: 100 }, (_, i) => ({ id: `plain-${i}`, payload: 'ok' })))
  // Cancelled before they ran (delayed), one without and one with a kept record.
  await producer.enqueue('later-1', 'ok', { delay: 60_000 })
  await producer.enqueue('later-2', 'ok', { delay: 60_000 })
  assert.deepEqual(await producer.cancel('later-1'), { status: 'cancelled' })
  assert.deepEqual(await producer.cancel('later-2', { running: true }), { status: 'cancelled' })
  // Cancelled while running; a second instance joins the wait on the running job.
  const held = queue.enqueueAndWait('held', 'hold', { timeout: 10_000 }).catch((e: unknown) => e)
  await until(async () => (await producer.getStatus('held'))?.state === 'processing')
  const heldToo = producer.enqueueAndWait('held', 'hold', { timeout: 10_000 }).catch((e: unknown) => e)
  // A wait that times out: its waiter entry must still go once the job ends.
  const impatient = await producer.enqueueAndWait('slow', 'slow', { timeout: 50 }).catch((e: unknown) => e)
  assert.ok(impatient instanceof TimeoutError, `expected a TimeoutError, got ${inspect(impatient)}`)
  // On a queue nobody consumes: a job whose worker died after claiming it (the reaper ends it:
  // no attempts left), and one whose worker died between its BLMOVE and the claim (left in
  // `claiming`: the reaper hands it back, then it is cancelled).
  const keys = direct.keysOf(orphans).all
  const key = (suffix: string): string => keys.find(k => k.endsWith(`:${suffix}`)) as string
  const orphan = (id: string, maxAttempts: number): NewJob => ({ id, payload: Buffer.from('"ok"'), maxAttempts, resultTTL: TTL, delay: 0 })
  await direct.enqueue(orphans, [orphan('stalled', 1), orphan('stranded', 3)])
  assert.deepEqual((await direct.claim(orphans, 'dead-worker', { max: 1, leaseMs: 100, blockMs: 0 })).map(j => j.id), ['stalled'])
  assert.notEqual(await admin.lmove(key('ready'), key('claiming'), 'LEFT', 'RIGHT'), null)
  const orphanReaper = new Reaper({ storage: reaperStorage, name: orphans, visibilityTimeout: 300, interval: 100, leaderElection: { enabled: false } })
  orphanReaper.on('error', err => errors.push(err))
  orphanReaper.on('failed', id => ended.add(id))
  orphanReaper.on('requeued', id => ended.add(id))
  await orphanReaper.start()
  defer(() => orphanReaper.stop())
  peak = Math.max(peak, await footprint(admin, prefix))

  assert.deepEqual(await producer.cancel('held', { running: true }), { status: 'cancelled' })
  assert.ok(await held instanceof JobCancelledError, 'the running job was cancelled')
  assert.ok(await heldToo instanceof JobCancelledError, 'the second waiter heard the cancel')
  release.resolve()
  const outcomes = await Promise.all(waits)
  for (const [i, outcome] of outcomes.entries()) {
    if (i % 3 === 1) assert.ok(outcome instanceof JobFailedError, `fail-${i}: ${inspect(outcome)}`)
    else assert.equal(outcome, i % 3 === 0 ? `done ok-${i}` : 'second time lucky')
  }
  // (Records live for 300 ms only: events, not statuses, tell when each job ended.)
  await until(() => ended.has('stalled') && ended.has('stranded'), 10_000)
  assert.equal(await direct.cancel(orphans, 'stranded'), 'cancelled')
  await until(() => ended.has('slow') && ended.has('plain-99'))
  peak = Math.max(peak, await footprint(admin, prefix))
  assert.ok(peak > baseline + 100, `the run stored little: ${peak} keys, baseline ${baseline}`)
  t.diagnostic(`${peak} keys and entries at the peak, baseline ${baseline}`)

  // Every terminal record leaves history and its result cache ends, and no active structure is left behind.
  await until(async () => await footprint(admin, prefix) === baseline, 10_000)
  assert.deepEqual(errors.map(e => inspect(e)), [])
})
