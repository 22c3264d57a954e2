import { randomUUID } from 'node:crypto'
import { after } from 'node:test'
import { Cluster } from 'iovalkey'
import { RedisStorage } from '../src/storage/redis.ts'
import { startRedisCluster } from './fixtures/redis-cluster.ts'
import { adminTests } from './admin-suite.ts'
import { modelTests } from './model-suite.ts'
import { queueTests } from './queue-suite.ts'
import { storageContract, type StorageHandle } from './storage-contract.ts'

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
