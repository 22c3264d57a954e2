import { randomUUID } from 'node:crypto'
import { after } from 'node:test'
import { RedisStorage } from '../src/storage/redis.ts'
import { deleteKeys, startRedis } from './fixtures/redis-server.ts'
import { failedStartTests } from './lifecycle-suite.ts'

// Down at the first calls, then up on the same port: a throwaway server, killed before the test
// and started again by fix(). Stopped once the test's queues are.
const server = await startRedis({ args: [] })
after(() => server.stop())

failedStartTests('redis', async () => {
  await server.kill()
  const prefix = `t-${randomUUID()}`
  return {
    make: () => new RedisStorage({ url: server.url, keyPrefix: prefix }),
    fix: () => server.restart(),
    cleanup: () => deleteKeys(server.url, prefix)
  }
})
