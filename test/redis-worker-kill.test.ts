import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { setTimeout as delay } from 'node:timers/promises'
import { test } from 'node:test'
import { Consumer, Reaper } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import type { NewJob, StateCounts } from '../src/storage/types.ts'
import { childPool } from './fixtures/child-pool.ts'
import { redisWithAdmin, lifo, prng } from './fixtures/redis-tools.ts'
import { FakeClock, until } from './storage-contract.ts'

const { server, admin } = await redisWithAdmin()

const CHILD = fileURLToPath(new URL('./fixtures/redis-consumer-child.ts', import.meta.url))
/** CLAIM_GRACE_MS in src/storage/redis.ts: how long a BLMOVE'd id may sit in `claiming`. */
const CLAIM_GRACE_MS = 1000

function job (id: string, payload: number, maxAttempts: number): NewJob {
  return { id, payload: Buffer.from(JSON.stringify(payload)), maxAttempts, resultTTL: 600_000, delay: 0 }
}

const unfinished = (c: StateCounts): number => c.queued + c.processing + c.delayed + c.failing

test('consumers SIGKILLed at random moments never strand a job: every one completes', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'crash'
  const storage = new RedisStorage({ url: server.url, keyPrefix: prefix })
  await storage.connect()
  defer(() => storage.disconnect())
  // Every completed job stays in history, so the counts account for each.
  const keep = { age: 3_600_000, count: 10_000 }
  await storage.setRetention(name, { completed: keep, failed: keep, cancelled: keep })
  const reaper = new Reaper({ storage, name, visibilityTimeout: 1000, interval: 200, maxStalls: 100, leaderElection: { enabled: false } })
  const requeued = new Set<string>()
  reaper.on('requeued', id => requeued.add(id))
  reaper.on('error', err => { throw err })
  await reaper.start()
  defer(() => reaper.stop())
  const pool = childPool(defer, CHILD, { RELAYQ_URL: server.url, RELAYQ_PREFIX: prefix, RELAYQ_QUEUE: name, RELAYQ_CONCURRENCY: '20', RELAYQ_VISIBILITY_TIMEOUT: '1000' })
  for (let i = 0; i < 3; i++) pool.spawn()

  // Jobs arrive in small batches over a few seconds, so the consumers keep switching between
  // settle-and-claim calls and blocking in BLMOVE while they are being killed.
  const TOTAL = 2000
  const BATCH = 25
  const ids = Array.from({ length: TOTAL }, (_, i) => `job-${i}`)
  const enqueuing = (async () => {
    for (let i = 0; i < TOTAL; i += BATCH) {
      const outcomes = await storage.enqueue(name, ids.slice(i, i + BATCH).map((id, j) => job(id, i + j, 20)))
      assert.deepEqual(outcomes.filter(o => o.status !== 'queued'), [])
      await delay(40)
    }
  })()

  // Kill a random running consumer at random moments (seeded delays) and start a new one.
  const random = prng(0x5eed)
  let kills = 0
  const progress = { enqueued: false }
  enqueuing.finally(() => { progress.enqueued = true }).catch(() => {})
  while (!progress.enqueued || kills < 6) {
    await delay(50 + Math.floor(random() * 300))
    const victims = [...pool.consuming]
    if (victims.length === 0) continue // all still starting
    await pool.kill(victims[Math.floor(random() * victims.length)])
    kills++
    pool.spawn()
  }
  await enqueuing

  // No more kills: the survivors and the reaper must finish everything.
  await until(async () => unfinished(await storage.counts(name)) === 0, 30_000)
  const counts = await storage.counts(name)
  assert.deepEqual(counts, { queued: 0, delayed: 0, processing: 0, failing: 0, completed: TOTAL, failed: 0, cancelled: 0 })
  for (let i = 0; i < TOTAL; i += 200) {
    const records = await Promise.all(ids.slice(i, i + 200).map(id => storage.getStatus(name, id)))
    for (const [j, record] of records.entries()) assert.equal(record?.state, 'completed', `${ids[i + j]} is ${record?.state}`)
  }
  assert.ok(kills >= 6, `only ${kills} kills`)
  // The kills did hit jobs in flight (else this test proves nothing about recovery).
  assert.ok(requeued.size > 0, 'no job had to be recovered')
  t.diagnostic(`${kills} kills, ${requeued.size} jobs recovered by the reaper`)
})

test('a job that kills its worker every time ends failed after maxAttempts, it does not loop', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'poison'
  const storage = new RedisStorage({ url: server.url, keyPrefix: prefix })
  await storage.connect()
  defer(() => storage.disconnect())
  // Many stalls allowed: what stops the job must be its attempts.
  const reaper = new Reaper({ storage, name, visibilityTimeout: 500, interval: 100, maxStalls: 100, leaderElection: { enabled: false } })
  reaper.on('error', err => { throw err })
  await reaper.start()
  defer(() => reaper.stop())
  // One job per worker: a job claimed alongside the poison would stall with it.
  const pool = childPool(defer, CHILD, { RELAYQ_URL: server.url, RELAYQ_PREFIX: prefix, RELAYQ_QUEUE: name, RELAYQ_CONCURRENCY: '1', RELAYQ_VISIBILITY_TIMEOUT: '500' })
  // A supervisor: a dead worker is replaced (until the test ends).
  let supervising = true
  defer(() => { supervising = false })
  const start = (): void => {
    pool.spawn().on('exit', () => { if (supervising) start() })
  }
  start()
  await storage.enqueue(name, [job('poison', -1, 3), job('fine', 7, 3)])
  await until(async () => (await storage.getStatus(name, 'poison'))?.state === 'failed', 20_000)
  const record = await storage.getStatus(name, 'poison')
  assert.equal(record?.attempts, 3)
  assert.equal(pool.deaths(), 3, `one worker should die per attempt: ${pool.deaths()} died for ${record?.attempts} attempts`)
  await until(async () => (await storage.getStatus(name, 'fine'))?.state === 'completed', 10_000)
})

test('an id moved to `claiming` by a worker that dies before activating it is taken back after the grace period as a stalled attempt (its handler may have run)', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'window'
  const clock = new FakeClock()
  const storage = new RedisStorage({ url: server.url, keyPrefix: prefix, clock: clock.read })
  await storage.connect()
  defer(() => storage.disconnect())
  const key = (suffix: string): string => {
    const found = storage.keysOf(name).all.find(k => k.endsWith(`:${suffix}`))
    assert.ok(found !== undefined, `no ${suffix} key`)
    return found
  }
  await storage.enqueue(name, [job('x', 5, 3)])
  // What a consumer's BLMOVE does; this "consumer" then dies without running claim.lua.
  assert.notEqual(await admin.lmove(key('ready'), key('claiming'), 'LEFT', 'RIGHT'), null)

  const reaper = new Reaper({ storage, name, visibilityTimeout: 30_000, interval: 3_600_000, leaderElection: { enabled: false } })
  const requeued: string[] = []
  reaper.on('requeued', id => requeued.push(id))
  reaper.on('error', err => { throw err })
  await reaper.start()
  defer(() => reaper.stop())
  await reaper.scan() // the scan start() began: it notes when it first saw the id
  clock.advance(CLAIM_GRACE_MS - 1)
  await reaper.scan()
  assert.deepEqual(requeued, [], 'handed back before the grace period was over')
  assert.equal(await admin.llen(key('claiming')), 1)
  assert.equal((await storage.counts(name)).queued, 1, 'an id in claiming counts as queued')

  clock.advance(1)
  await reaper.scan()
  assert.equal(await admin.llen(key('claiming')), 0)
  assert.equal(await admin.exists(key('seen')), 0, 'the reaper forgot the id once taken back')
  // Taken as the dead worker's attempt, its lease already over: the next pass counts the stall.
  assert.equal((await storage.getStatus(name, 'x'))?.state, 'processing')
  await reaper.scan()
  assert.deepEqual(requeued, ['x'])
  const status = await storage.getStatus(name, 'x')
  assert.equal(status?.state, 'queued')
  assert.equal(status?.attempts, 1)

  const consumer = new Consumer<number, number>({ storage, name, blockTimeout: 1 })
  const seen: number[] = []
  consumer.execute(async j => {
    seen.push(j.attempts)
    return j.payload * 2
  })
  consumer.on('error', err => { throw err })
  const completed = once(consumer, 'completed')
  await consumer.start()
  defer(() => consumer.stop())
  assert.deepEqual(await completed, ['x', 10])
  assert.deepEqual(seen, [2])
  const done = await storage.getStatus(name, 'x')
  assert.equal(done?.state, 'completed')
  assert.equal(done?.attempts, 2)
})
