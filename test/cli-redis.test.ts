import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Redis } from 'iovalkey'
import { RedisStorage } from '../src/storage/redis.ts'
import type { AdminStorage } from '../src/storage/types.ts'
import { connect, ConnectError } from '../src/cli/connect.ts'
import type { Finding } from '../src/cli/doctor.ts'
import { diagnoseRedis } from '../src/cli/doctor-redis.ts'
import { cliTests, spawnCli } from './cli-suite.ts'
import { startRedisCluster } from './fixtures/redis-cluster.ts'
import { deleteKeys, startRedis } from './fixtures/redis-server.ts'
import { hasOpenssl, startTlsRedis } from './fixtures/redis-tls.ts'

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

test('doctor on Redis Cluster: slot coverage, then a master that lost a slot', async t => {
  const cluster = await startRedisCluster()
  t.after(() => cluster.stop())
  const seeds = cluster.nodes.map(n => `${n.host}:${n.port}`)
  const check = async (): Promise<Finding | undefined> => (await diagnoseRedis(new URL(`redis://${seeds[0]}`), seeds, {}, {}, doctorOptions)).find(f => f.check === 'cluster')
  assert.equal((await check())?.status, 'ok')
  const admin = new Redis(cluster.nodes[0])
  t.after(() => admin.disconnect())
  const slot = (await admin.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>).find(([, , [, port]]) => port === cluster.nodes[0].port)?.[0]
  assert.equal(typeof slot, 'number')
  await admin.call('CLUSTER', 'DELSLOTS', slot as number)
  const finding = await check()
  assert.equal(finding?.status, 'problem')
  assert.match(finding?.message ?? '', /1 slot\(s\) unassigned/)
  assert.match(finding?.fix ?? '', /--cluster fix/)
})

test('TLS: rediss:// with --tls-ca connects; a CA file that cannot be read is named', { skip: hasOpenssl() ? false : 'openssl is not installed' }, async t => {
  const tls = await startTlsRedis()
  t.after(() => tls.stop())
  const dir = await mkdtemp(join(tmpdir(), 'relayq-cli-tls-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const ca = join(dir, 'ca.pem')
  await writeFile(ca, tls.ca)
  const options = { prefix, cluster: undefined, tlsCa: ca, tlsCert: undefined, tlsKey: undefined, connectTimeout: 5000 }
  const connection = await connect(tls.url, options)
  await connection.close()
  await assert.rejects(connect(tls.url, { ...options, tlsCa: join(dir, 'missing.pem') }), (err: Error) => err instanceof ConnectError && /^--tls-ca: cannot read .*missing\.pem: ENOENT$/.test(err.message))
  // Without the CA the server's certificate is refused: one line naming the server.
  const refused = await spawnCli(['status'], { RELAYQ_URL: tls.url, RELAYQ_CONNECT_TIMEOUT: '3s' })
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, new RegExp(`^relayq: cannot connect to ${tls.url.replace(/[.]/g, '\\.')}`))
  assert.equal(refused.stderr.trim().split('\n').length, 1)
})
