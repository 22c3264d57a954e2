import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { Redis } from 'iovalkey'
import { Consumer, JobCancelledError, Producer, Queue } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import { redisWithAdmin, lifo } from './fixtures/redis-tools.ts'
import { deferred } from './queue-suite.ts'
import { until } from './storage-contract.ts'

const { server, admin } = await redisWithAdmin()

/** Connections the server has open. */
async function connections (): Promise<number> {
  return (await admin.client('LIST') as string).trim().split('\n').length
}

test('a client passed in is never closed; the connections relayq made from it are', async t => {
  const defer = lifo(t)
  const client = new Redis(server.url)
  client.on('error', err => { throw err })
  defer(() => client.disconnect())
  await once(client, 'ready')
  const baseline = await connections()

  const storage = new RedisStorage({ client, keyPrefix: `t-${randomUUID()}` })
  storage.on('error', err => { throw err })
  const queue = new Queue<number, number>({ storage, name: 'owned', concurrency: 2 })
  queue.on('error', err => { throw err })
  queue.execute(async job => job.payload + 1)
  await queue.start()
  assert.equal(await queue.enqueueAndWait('a', 1, { timeout: 10_000 }), 2)
  // Idle now: this one reaches the consumer through a blocking connection of its own.
  assert.equal(await queue.enqueueAndWait('b', 2, { timeout: 10_000 }), 3)
  const during = await connections()
  assert.ok(during > baseline, `relayq opened no connection of its own (${during} connections)`)

  // A second user of the same storage: connect and disconnect are reference-counted.
  await storage.connect()
  await queue.stop()
  assert.equal((await storage.getStatus('owned', 'a'))?.state, 'completed', 'the storage works while a user remains')
  await storage.disconnect()

  assert.equal(client.status, 'ready')
  assert.equal(await client.ping(), 'PONG')
  assert.equal(await client.set(`{t-${randomUUID()}}:still-mine`, '1', 'PX', 10_000), 'OK')
  // The blocking and subscriber connections are gone (the server drops them asynchronously).
  await until(async () => await connections() === baseline)
})

test('cancelling a running job from another instance aborts its job.signal in the worker', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'cancel'
  const errors: unknown[] = []
  // Two storage instances: their own connections and subscriptions, as two processes would have.
  const workerStorage = new RedisStorage({ url: server.url, keyPrefix: prefix })
  workerStorage.on('error', err => errors.push(err))
  const producerStorage = new RedisStorage({ url: server.url, keyPrefix: prefix })
  producerStorage.on('error', err => errors.push(err))

  const started = deferred()
  const reason = deferred<unknown>()
  const consumer = new Consumer<number, number>({ storage: workerStorage, name })
  consumer.on('error', err => errors.push(err))
  consumer.execute(async job => {
    const signal = job.signal
    started.resolve()
    await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
    reason.resolve(signal.reason)
    throw signal.reason
  })
  const cancelled = once(consumer, 'cancelled')
  await consumer.start()
  defer(() => consumer.stop())
  const producer = new Producer<number, number>({ storage: producerStorage, name })
  producer.on('error', err => errors.push(err))
  await producer.start()
  defer(() => producer.stop())

  const result = producer.enqueueAndWait('long', 1, { timeout: 10_000 })
  await started.promise
  await until(async () => (await producer.getStatus('long'))?.state === 'processing')
  assert.deepEqual(await producer.cancel('long', { running: true }), { status: 'cancelled' })
  const why = await reason.promise
  assert.ok(why instanceof JobCancelledError, `the signal was aborted with ${inspect(why)}`)
  assert.deepEqual(await cancelled, ['long'])
  await assert.rejects(result, JobCancelledError)
  assert.equal((await producer.getStatus('long'))?.state, 'cancelled')
  assert.deepEqual(errors.map(e => inspect(e)), [])
})
