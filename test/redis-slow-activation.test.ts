import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { RedisStorage } from '../src/storage/redis.ts'
import { redisWithAdmin, lifo } from './fixtures/redis-tools.ts'
import { startProxy } from './fixtures/tcp-proxy.ts'
import { FakeClock, job, until } from './storage-contract.ts'

const { server, admin } = await redisWithAdmin()

/** CLAIM_GRACE_MS in src/storage/redis.ts: how long a BLMOVE'd id may sit in `claiming`. */
const CLAIM_GRACE_MS = 1000
const LEASE = 30_000

// A consumer woken by BLMOVE starts the handler from the moved element at once and sends the
// activation (claim.lua) alongside. If that activation is late (a busy event loop, a main
// connection that is reconnecting) the reaper takes the id for a dead worker's and hands it back,
// and another worker claims it in the same attempt (handing back does not count one). The late
// worker's settlement must not end the job the other worker now holds.
test('a worker whose activation came too late cannot settle the job another worker now holds', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const q = 'late'
  const clock = new FakeClock()
  // The late worker reaches Redis through a proxy that can hold back its main connection.
  const proxy = await startProxy(server.port)
  defer(() => proxy.close())
  const late = new RedisStorage({ url: proxy.url, keyPrefix: prefix, clock: clock.read })
  late.on('error', err => { throw err })
  await late.connect()
  defer(() => late.disconnect())
  assert.equal(proxy.accepted, 1, 'the main connection is the first one')
  const other = new RedisStorage({ url: server.url, keyPrefix: prefix, clock: clock.read })
  other.on('error', err => { throw err })
  await other.connect()
  defer(() => other.disconnect())

  const waiting = late.claim(q, 'late-worker', { max: 1, leaseMs: LEASE, blockMs: 10_000 })
  await until(async () => /blocked_clients:[1-9]/.test(await admin.info('clients')))
  proxy.hold(0)
  defer(() => proxy.release(0))
  await other.enqueue(q, [job('x')])
  // The late worker has the job (from the BLMOVE'd element); its activation is held back.
  const [mine] = await waiting
  assert.equal(mine?.id, 'x')
  assert.equal(mine.attempts, 1)

  // Two reaper scans a grace period apart take the id back as the late worker's attempt (its
  // handler may have run), a third counts the stall and requeues it; another worker claims it.
  assert.deepEqual(await other.recoverStalled(q, 2, Buffer.from('stalled')), { requeued: [], failed: [] })
  clock.advance(CLAIM_GRACE_MS)
  assert.deepEqual(await other.recoverStalled(q, 2, Buffer.from('stalled')), { requeued: [], failed: [] })
  assert.deepEqual(await other.recoverStalled(q, 2, Buffer.from('stalled')), { requeued: ['x'], failed: [] })
  const [theirs] = await other.claim(q, 'other-worker', { max: 1, leaseMs: LEASE, blockMs: 0 })
  assert.equal(theirs?.id, 'x')
  assert.equal(theirs.attempts, 2, 'the attempt taken back counts')

  // The late worker's activation and settlement arrive now.
  const settled = late.settle(q, 'late-worker', [{ type: 'complete', id: 'x', attempt: mine.attempts, result: Buffer.from('late'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
  proxy.release(0)
  assert.deepEqual(await settled, { jobs: [], refused: [0] }, 'the late settlement is reported refused')
  const status = await other.getStatus(q, 'x')
  assert.equal(status?.state, 'processing', 'the late worker ended a job another worker holds')

  // The holder's settlement is the one that counts.
  await other.settle(q, 'other-worker', [{ type: 'complete', id: 'x', attempt: theirs.attempts, result: Buffer.from('theirs'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
  const done = await other.getStatus(q, 'x')
  assert.equal(done?.state, 'completed')
  assert.equal(done?.result?.toString(), 'theirs')
})
