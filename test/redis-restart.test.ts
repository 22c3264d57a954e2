import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { Consumer, JobCancelledError, Producer, Queue, Reaper, StorageError, type Job } from '../src/index.ts'
import { RedisStorage, type RedisStorageOptions } from '../src/storage/redis.ts'
import type { Notice } from '../src/storage/types.ts'
import { redisWithAdmin, lifo, type Defer } from './fixtures/redis-tools.ts'
import { startProxy } from './fixtures/tcp-proxy.ts'
import { deferred } from './queue-suite.ts'
import { until } from './storage-contract.ts'

// AOF on and fsync'd at every write, as production would run it: a restart keeps every job.
const { server, admin } = await redisWithAdmin({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })

/** Unhandled rejections and exceptions seen while a test runs. */
function watchUnhandled (defer: Defer): unknown[] {
  const seen: unknown[] = []
  const record = (err: unknown): void => { seen.push(err) }
  process.on('unhandledRejection', record)
  process.on('uncaughtException', record)
  defer(() => {
    process.off('unhandledRejection', record)
    process.off('uncaughtException', record)
  })
  return seen
}

/** A storage on `prefix` whose `error` events go to `errors`; disconnected at cleanup if connected here. */
function storage (prefix: string, errors: unknown[], options: RedisStorageOptions = {}): RedisStorage {
  const made = new RedisStorage({ url: server.url, keyPrefix: prefix, ...options })
  made.on('error', err => errors.push(err))
  return made
}

/** `promise`'s outcome, or a failed assertion if it has not settled within `ms`. */
async function settlesWithin<T> (promise: Promise<T>, ms: number, what: string): Promise<{ value?: T, error?: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `${what} did not settle within ${ms} ms` })), ms)
  })
  try {
    return await Promise.race([promise.then(value => ({ value }), (error: unknown) => ({ error })), late])
  } finally {
    clearTimeout(timer)
  }
}

async function blockedClients (): Promise<number> {
  const info = await admin.info('clients')
  return Number(/blocked_clients:(\d+)/.exec(info)?.[1] ?? 0)
}

test('kill -9 and restart: jobs before and after complete, an enqueue during the outage settles, the blocked consumer resumes', async t => {
  const defer = lifo(t)
  const unhandled = watchUnhandled(defer)
  const consoleError = t.mock.method(console, 'error')
  const prefix = `t-${randomUUID()}`
  const name = 'restart'
  const errors: unknown[] = []

  const gate = deferred()
  const holding = deferred()
  const queue = new Queue<number, number>({ storage: storage(prefix, errors), name, concurrency: 4 })
  queue.on('error', err => errors.push(err))
  queue.execute(async (job: Job<number>) => {
    if (job.id === 'inflight') {
      holding.resolve()
      await gate.promise
    }
    return job.payload * 2
  })
  await queue.start()
  defer(() => queue.stop())
  defer(() => gate.resolve())
  const producer = new Producer<number, number>({ storage: storage(prefix, errors), name })
  producer.on('error', err => errors.push(err))
  await producer.start()
  defer(() => producer.stop())
  // Gives up quickly: an enqueue while the server is down must fail with a StorageError, not hang.
  const impatient = storage(prefix, errors, { redisOptions: { maxRetriesPerRequest: 1 } })
  await impatient.connect()
  defer(() => impatient.disconnect())

  const before = await Promise.all(Array.from({ length: 20 }, (_, i) => queue.enqueueAndWait(`before-${i}`, i, { timeout: 10_000 })))
  assert.deepEqual(before, Array.from({ length: 20 }, (_, i) => i * 2))
  const inflight = queue.enqueueAndWait('inflight', 50, { timeout: 30_000 })
  await holding.promise
  // The consumer's free slots wait in BLMOVE: the kill hits a blocked command.
  await until(async () => await blockedClients() >= 1)

  await server.kill()
  const during = producer.enqueue('during', 7)
  const refused = await settlesWithin(impatient.enqueue(name, [{ id: 'refused', payload: Buffer.from('1'), maxAttempts: 1, resultTTL: 60_000, delay: 0 }]), 10_000, 'an enqueue with maxRetriesPerRequest 1')
  assert.ok(refused.error instanceof StorageError, `expected a StorageError, got ${inspect(refused)}`)
  await server.restart()

  const outcome = await settlesWithin(during, 20_000, 'the enqueue issued during the outage')
  if (outcome.error !== undefined) assert.ok(outcome.error instanceof StorageError, `expected a StorageError, got ${inspect(outcome.error)}`)
  else assert.deepEqual(outcome.value, { status: 'queued' })
  t.diagnostic(`the enqueue during the outage ${outcome.error === undefined ? 'waited for the reconnect' : 'failed'}; ${errors.length} error events`)

  // The job that ran across the restart settles; new work goes through both producers.
  gate.resolve()
  assert.equal(await inflight, 100)
  const afterwards = await Promise.all([
    ...Array.from({ length: 20 }, (_, i) => queue.enqueueAndWait(`after-${i}`, i, { timeout: 15_000 })),
    producer.enqueueAndWait('from-producer', 21, { timeout: 15_000 })
  ])
  assert.deepEqual(afterwards, [...Array.from({ length: 20 }, (_, i) => i * 2), 42])
  if (outcome.error === undefined) await until(async () => (await producer.getStatus('during'))?.state === 'completed', 15_000)
  // The jobs from before the kill are still there (AOF).
  assert.equal((await producer.getStatus('before-0'))?.state, 'completed')

  for (const err of errors) assert.ok(err instanceof StorageError, `an error that is not a StorageError: ${inspect(err)}`)
  assert.deepEqual(unhandled, [])
  const unhandledClientErrors = consoleError.mock.calls.filter(call => inspect(call.arguments).includes('Unhandled error event'))
  assert.deepEqual(unhandledClientErrors, [])
})

test('a waiter whose subscription was lost hears a gap and re-checks: a result published meanwhile is not lost', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'gap'
  const errors: unknown[] = []
  const gate = deferred()
  const holding = deferred()
  const queue = new Queue<number, number>({ storage: storage(prefix, errors), name })
  queue.on('error', err => errors.push(err))
  queue.execute(async job => {
    holding.resolve()
    await gate.promise
    return job.payload + 1
  })
  await queue.start()
  defer(() => queue.stop())
  defer(() => gate.resolve())

  // The waiting producer reaches Redis through a proxy that can cut it off.
  const proxy = await startProxy(server.port)
  defer(() => proxy.close())
  const waitingStorage = new RedisStorage({ url: proxy.url, keyPrefix: prefix })
  waitingStorage.on('error', err => errors.push(err))
  const producer = new Producer<number, number>({ storage: waitingStorage, name })
  await producer.start()
  defer(() => producer.stop())
  const notices: Notice[] = []
  defer(await waitingStorage.subscribe(name, notice => notices.push(notice)))

  const enqueued = once(producer, 'enqueued')
  const result = producer.enqueueAndWait('x', 1, { timeout: 20_000 })
  // Cut only once the enqueue's reply is in: a reply lost in the cut makes iovalkey send the
  // enqueue again after the reconnect, and its outcome (completed) would end the wait instead.
  await Promise.all([enqueued, holding.promise])
  proxy.cut()
  // Only the proxied producer listens on reply channels: wait until the server dropped it.
  await until(async () => (await admin.pubsub('CHANNELS', '*reply:*') as string[]).length === 0)
  gate.resolve()
  await until(async () => (await queue.getStatus('x'))?.state === 'completed')

  proxy.restore()
  assert.equal(await result, 2)
  assert.ok(notices.some(n => n.type === 'gap'), 'no gap notice after the subscription came back')
  for (const err of errors) assert.ok(err instanceof StorageError, `an error that is not a StorageError: ${inspect(err)}`)
})

test('a consumer that lost its subscription still aborts a job cancelled meanwhile', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'gap-abort'
  const errors: unknown[] = []
  const proxy = await startProxy(server.port)
  defer(() => proxy.close())
  const consumerStorage = new RedisStorage({ url: proxy.url, keyPrefix: prefix })
  consumerStorage.on('error', err => errors.push(err))
  const notices: Notice[] = []
  const holding = deferred()
  const aborted = deferred<unknown>()
  // A short lease: the heartbeat (every visibilityTimeout / 3 ms) is the second path to the abort.
  const consumer = new Consumer<number, number>({ storage: consumerStorage, name, visibilityTimeout: 3000 })
  consumer.on('error', err => errors.push(err))
  consumer.execute(async job => {
    const signal = job.signal
    holding.resolve()
    await new Promise<void>(resolve => signal.addEventListener('abort', () => resolve(), { once: true }))
    aborted.resolve(signal.reason)
    throw signal.reason
  })
  await consumer.start()
  defer(() => consumer.stop())
  defer(await consumerStorage.subscribe(name, notice => notices.push(notice), 'abort'))

  const producer = new Producer<number, number>({ storage: storage(prefix, errors), name })
  await producer.start()
  defer(() => producer.stop())
  const result = producer.enqueueAndWait('y', 1, { timeout: 20_000 })
  await holding.promise
  // The handler starts before the claim is recorded (see RedisStorage.claim): cut only once it is.
  await until(async () => (await producer.getStatus('y'))?.state === 'processing')
  proxy.cut()
  await until(async () => (await admin.pubsub('CHANNELS', '*control') as string[]).length === 0)
  // The abort notice goes out while the consumer hears nothing.
  assert.deepEqual(await producer.cancel('y', { running: true }), { status: 'cancelled' })
  proxy.restore()

  const reason = await aborted.promise
  assert.ok(reason instanceof JobCancelledError, `the signal was aborted with ${inspect(reason)}`)
  await assert.rejects(result, JobCancelledError)
  assert.equal((await producer.getStatus('y'))?.state, 'cancelled')
  await until(() => notices.some(n => n.type === 'gap'))
  for (const err of errors) assert.ok(err instanceof StorageError, `an error that is not a StorageError: ${inspect(err)}`)
})

test('a blocking connection that goes silent cannot wedge the consumer: the BLMOVE guard gives up on it', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'silent'
  const errors: unknown[] = []
  const proxy = await startProxy(server.port)
  defer(() => proxy.close())
  const consumerStorage = new RedisStorage({ url: proxy.url, keyPrefix: prefix })
  consumerStorage.on('error', err => errors.push(err))
  // Short blocking claims: without the guard, the loop would still wait forever on a reply that
  // never comes.
  const consumer = new Consumer<number, number>({ storage: consumerStorage, name, blockTimeout: 0.2 })
  consumer.on('error', err => errors.push(err))
  consumer.execute(async job => job.payload * 10)
  await consumer.start()
  defer(() => consumer.stop())
  // Hands back an id a silent BLMOVE may have moved to `claiming`.
  const reaper = new Reaper({ storage: storage(prefix, errors), name, visibilityTimeout: 30_000, interval: 200, leaderElection: { enabled: false } })
  reaper.on('error', err => errors.push(err))
  await reaper.start()
  defer(() => reaper.stop())
  const producer = new Producer<number, number>({ storage: storage(prefix, errors), name })
  await producer.start()
  defer(() => producer.stop())
  assert.equal(await producer.enqueueAndWait('first', 1, { timeout: 10_000 }), 10)

  // Connections of the consumer's storage, in order: main, subscriber, blocking. The blocking
  // one goes silent both ways (a half-open TCP connection: no error, no close).
  await until(async () => proxy.accepted >= 3 && await blockedClients() >= 1)
  proxy.hold(2)
  defer(() => proxy.release(2))
  assert.equal(await producer.enqueueAndWait('second', 2, { timeout: 20_000 }), 20)
  assert.equal(await producer.enqueueAndWait('third', 3, { timeout: 10_000 }), 30)
  for (const err of errors) assert.ok(err instanceof StorageError, `an error that is not a StorageError: ${inspect(err)}`)
})
