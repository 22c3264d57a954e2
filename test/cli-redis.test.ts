import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, describe, test } from 'node:test'
import { RedisStorage } from '../src/storage/redis.ts'
import type { AdminStorage } from '../src/storage/types.ts'
import { diagnoseRedis } from '../src/cli/doctor-redis.ts'
import { cliTests, spawnCli } from './cli-suite.ts'
import { deleteKeys, startRedis } from './fixtures/redis-server.ts'

const server = await startRedis()
const prefix = `cli-${randomUUID()}`
after(async () => {
  await deleteKeys(server.url, prefix)
  await server.stop()
})

// The command suite needs the admin operations on Redis (branch admin-redis): it runs once they exist.
const hasAdmin = typeof (RedisStorage.prototype as unknown as Partial<AdminStorage>).apply === 'function'
describe('relayq CLI: redis', { skip: hasAdmin ? false : 'RedisStorage has no admin operations on this branch yet (admin-redis)' }, () => {
  cliTests('redis (the binary as a subprocess)', {
    run: (args, options = {}) => spawnCli(args, { RELAYQ_URL: server.url, RELAYQ_PREFIX: prefix, ...options.env }, options),
    async storage (t) {
      const storage = new RedisStorage({ url: server.url, keyPrefix: prefix }) as unknown as AdminStorage
      await storage.connect()
      t.after(() => storage.disconnect())
      return storage
    }
  })
})

const doctorOptions = { maxClockSkew: 1000, leaseScan: 1000, now: Date.now }

test('doctor on Redis: eviction policy and persistence that lose jobs are problems, each with its fix', async t => {
  const bad = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] })
  t.after(() => bad.stop())
  const findings = await diagnoseRedis(new URL(bad.url), undefined, {}, {}, doctorOptions)
  const by = new Map(findings.map(f => [f.check, f]))
  assert.equal(by.get('version')?.status, 'ok')
  assert.equal(by.get('eviction')?.status, 'problem')
  assert.match(by.get('eviction')?.message ?? '', /allkeys-lru/)
  assert.match(by.get('eviction')?.fix ?? '', /maxmemory-policy noeviction/)
  assert.equal(by.get('persistence')?.status, 'problem')
  assert.match(by.get('persistence')?.fix ?? '', /appendonly yes/)
  assert.equal(by.get('clock')?.status, 'ok')
})

test('doctor on Redis: noeviction and AOF every second pass', async t => {
  const good = await startRedis({ args: ['--maxmemory-policy', 'noeviction', '--appendonly', 'yes', '--appendfsync', 'everysec'] })
  t.after(() => good.stop())
  const findings = await diagnoseRedis(new URL(good.url), undefined, {}, {}, doctorOptions)
  assert.deepEqual(findings.map(f => [f.check, f.status]), [['version', 'ok'], ['eviction', 'ok'], ['persistence', 'ok'], ['clock', 'ok']])
})

test('relayq doctor against an unreachable Redis: one line, exit 1', async () => {
  const result = await spawnCli(['doctor'], { RELAYQ_URL: 'redis://127.0.0.1:1', RELAYQ_CONNECT_TIMEOUT: '2s' })
  assert.equal(result.code, 1)
  assert.match(result.stderr, /^relayq: cannot connect to redis:\/\/127\.0\.0\.1:1/)
  assert.equal(result.stderr.trim().split('\n').length, 1)
})
