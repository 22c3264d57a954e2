import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, test } from 'node:test'
import { Cluster } from 'iovalkey'
import { RedisStorage } from '../src/storage/redis.ts'
import { startRedisCluster } from './fixtures/redis-cluster.ts'
import { adminTests } from './admin-suite.ts'
import { modelTests } from './model-suite.ts'
import { queueTests } from './queue-suite.ts'
import { job, storageContract, type StorageHandle } from './storage-contract.ts'

const cluster = await startRedisCluster()
after(() => cluster.stop())

/** Deletes every key of a prefix (its queues' and its own) on every master (SCAN runs per node in a cluster). */
async function deleteClusterKeys (prefix: string): Promise<void> {
  const client = new Cluster(cluster.nodes, { lazyConnect: true })
  client.on('error', () => {})
  try {
    await client.connect()
    for (const node of client.nodes('master')) {
      for (const pattern of [`{${prefix}:*`, `{${prefix}}:*`]) {
        let cursor = '0'
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
          cursor = next
          for (const key of keys) await node.unlink(key)
        } while (cursor !== '0')
      }
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
adminTests('redis cluster', async clock => handle(clock))
modelTests('redis cluster', async clock => handle(clock), { runs: 30 })

test('clear deletes the prefix\'s keys on every master, and queues() lists queues of every slot', async t => {
  const prefix = `t-${randomUUID()}`
  const storage = new RedisStorage({ cluster: cluster.nodes, keyPrefix: prefix })
  storage.on('error', err => { throw err })
  await storage.connect()
  t.after(async () => {
    await storage.disconnect()
    await deleteClusterKeys(prefix)
  })
  const names = Array.from({ length: 24 }, (_, i) => `q${String(i).padStart(2, '0')}`)
  for (const name of names) await storage.enqueue(name, [job('a'), job('b', 'p', { delay: 60_000 })])
  assert.equal(await storage.acquireLock('leader', 'me', 60_000), true)
  assert.deepEqual((await storage.queues()).map(s => s.name), names)
  const perMaster = async (): Promise<number[]> => {
    const client = new Cluster(cluster.nodes, { lazyConnect: true })
    client.on('error', () => {})
    await client.connect()
    try {
      return await Promise.all(client.nodes('master').map(async node => {
        let count = 0
        for (const pattern of [`{${prefix}:*`, `{${prefix}}:*`]) {
          let cursor = '0'
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
            cursor = next
            count += keys.length
          } while (cursor !== '0')
        }
        return count
      }))
    } finally {
      client.disconnect()
    }
  }
  const before = await perMaster()
  assert.equal(before.length, 3)
  assert.ok(before.every(n => n > 0), `every master holds some queue: ${before.join(', ')}`)
  await storage.clear()
  assert.deepEqual(await perMaster(), [0, 0, 0])
  assert.deepEqual(await storage.queues(), [])
  assert.equal(await storage.acquireLock('leader', 'other', 60_000), true)
})
