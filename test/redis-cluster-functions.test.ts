import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, test } from 'node:test'
import { inspect } from 'node:util'
import { Redis } from 'iovalkey'
import { Producer, Queue } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import { scriptLibrary } from '../src/storage/redis/scripts.ts'
import { startRedisCluster } from './fixtures/redis-cluster.ts'
import { lifo } from './fixtures/redis-tools.ts'

const cluster = await startRedisCluster()
const masters = cluster.nodes.map(({ host, port }) => {
  const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  return client
})
await Promise.all(masters.map(m => m.connect()))
after(async () => {
  for (const m of masters) m.disconnect()
  await cluster.stop()
})

async function libraries (node: Redis): Promise<number> {
  return (await node.call('FUNCTION', 'LIST', 'LIBRARYNAME', scriptLibrary().name) as unknown[]).length
}

test('Cluster: connecting loads the library on every master; FUNCTION FLUSH on masters under a running queue loses no job', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const errors: unknown[] = []
  const storage = new RedisStorage({ cluster: cluster.nodes, keyPrefix: prefix })
  storage.on('error', err => errors.push(err))
  await storage.connect()
  defer(() => storage.disconnect())
  assert.deepEqual(await Promise.all(masters.map(libraries)), masters.map(() => 1))

  // Queues on several slots, so every master serves some.
  const names = ['a', 'b', 'c', 'd', 'e', 'f']
  const queues = names.map(name => {
    const queue = new Queue<number, number>({ storage, name, concurrency: 4 })
    queue.on('error', err => errors.push(err))
    queue.execute(async job => job.payload + 1)
    return queue
  })
  for (const queue of queues) await queue.start()
  defer(() => Promise.all(queues.map(q => q.stop())))
  const producerStorage = new RedisStorage({ cluster: cluster.nodes, keyPrefix: prefix })
  producerStorage.on('error', err => errors.push(err))
  const producers = names.map(name => new Producer<number, number>({ storage: producerStorage, name }))
  for (const producer of producers) await producer.start()
  defer(() => Promise.all(producers.map(p => p.stop())))

  let flushes = 0
  const results: Array<Promise<number>> = []
  for (let i = 0; i < 240; i++) {
    results.push(producers[i % producers.length].enqueueAndWait(`j${i}`, i, { timeout: 20_000 }))
    if (i % 40 === 39) {
      await Promise.all(results.slice(-40))
      // One master, then another: calls routed to it find no function, the others still have it.
      await masters[flushes++ % masters.length].call('FUNCTION', 'FLUSH')
    }
  }
  assert.deepEqual(await Promise.all(results), Array.from({ length: 240 }, (_, i) => i + 1))
  assert.deepEqual(errors.map(e => inspect(e)), [])
  // Every master that served a call since its flush has it again.
  assert.ok((await Promise.all(masters.map(libraries))).some(n => n === 1))
})
