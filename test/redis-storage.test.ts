import { randomUUID } from 'node:crypto'
import { after } from 'node:test'
import { RedisStorage } from '../src/storage/redis.ts'
import { deleteKeys, startRedis } from './fixtures/redis-server.ts'
import { adminTests } from './admin-suite.ts'
import { modelTests } from './model-suite.ts'
import { queueTests } from './queue-suite.ts'
import { storageContract, type StorageHandle } from './storage-contract.ts'

const server = await startRedis()
after(() => server.stop())

/** Storages over one fresh key prefix; cleanup removes every key under it. */
function handle (clock?: () => number): StorageHandle {
  const prefix = `t-${randomUUID()}`
  const make = (): RedisStorage => new RedisStorage({ url: server.url, keyPrefix: prefix, clock })
  return { storage: make(), another: make, cleanup: () => deleteKeys(server.url, prefix) }
}

storageContract('redis', async clock => handle(clock))
queueTests('redis', async () => handle())
adminTests('redis', async clock => handle(clock))
modelTests('redis', async clock => handle(clock), { runs: 100 })
