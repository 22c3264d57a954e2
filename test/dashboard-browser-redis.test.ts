import { randomUUID } from 'node:crypto'
import { after, before } from 'node:test'
import { RedisStorage } from '../src/index.ts'
import { dashboardBrowserTests } from './dashboard-browser-suite.ts'
import { startRedis, type RedisServer } from './fixtures/redis-server.ts'

let server: RedisServer
before(async () => { server = await startRedis() })
after(async () => { await server?.stop() })

// Each test gets its own key prefix on the throwaway server; clear() removes its keys afterwards.
dashboardBrowserTests('redis', async t => {
  const storage = new RedisStorage({ url: server.url, keyPrefix: `dash-${randomUUID()}` })
  await storage.connect()
  t.after(async () => {
    await storage.clear()
    await storage.disconnect()
  })
  return storage
})
