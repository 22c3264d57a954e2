import { randomUUID } from 'node:crypto'
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Cluster } from 'iovalkey'
import { Queue, StorageError } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import { startRedisCluster } from './fixtures/redis-cluster.ts'
import { queueTests } from './queue-suite.ts'
import { storageContract, type StorageHandle } from './storage-contract.ts'

const cluster = await startRedisCluster()
after(() => cluster.stop())

/** Deletes every key of a prefix on every master (SCAN runs per node in a cluster). */
async function deleteClusterKeys (prefix: string): Promise<void> {
  const client = new Cluster(cluster.nodes, { lazyConnect: true })
  client.on('error', () => {})
  try {
    await client.connect()
    for (const node of client.nodes('master')) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000)
        cursor = next
        for (const key of keys) await node.unlink(key)
      } while (cursor !== '0')
    }
  } finally {
    client.disconnect()
  }
}

function handle (clock?: () => number): StorageHandle {
  const prefix = `t-${randomUUID()}`
  const make = (): RedisStorage => new RedisStorage({ cluster: cluster.nodes, keyPrefix: prefix, clock })
  return { storage: make(), another: make, cleanup: () => deleteClusterKeys(prefix) }
}

storageContract('redis cluster', async clock => handle(clock))
queueTests('redis cluster', async () => handle())

test('a frozen cluster (every master stopped): calls reject with StorageError after commandTimeout, stop() returns; thawed, the queue works again (13.4)', { timeout: 30_000 }, async t => {
  const keyPrefix = `t-${randomUUID()}`
  t.after(() => deleteClusterKeys(keyPrefix))
  const clustered = new RedisStorage({ cluster: cluster.nodes, keyPrefix, commandTimeout: 400 })
  const queue = new Queue<number, number>({ storage: clustered, name: 'frozen', shutdownTimeout: 100, stopTimeout: 300 })
  const errors: Error[] = []
  queue.on('error', err => errors.push(err))
  queue.execute(async job => job.payload)
  await queue.start()
  t.after(() => queue.stop())
  assert.equal(await queue.enqueueAndWait('before', 1, { timeout: 5000 }), 1)
  cluster.pause()
  t.after(() => cluster.resume()) // when the test fails while frozen; resuming twice is harmless
  await assert.rejects(queue.enqueue('during', 2), (err: unknown) => err instanceof StorageError && /commandTimeout \(400 ms\)/.test(err.message))
  await queue.stop()
  assert.ok(errors.some(err => /stopped without waiting any longer/.test(err.message)), errors.map(e => e.message).join('; '))
  cluster.resume()
  await queue.start()
  assert.equal(await queue.enqueueAndWait('after', 3, { timeout: 10_000 }), 3)
})
