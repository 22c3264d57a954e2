import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { Producer, Queue } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import { settlementAfterRetriedActivation } from './fixtures/activation-order.ts'
import { redisWithAdmin, lifo } from './fixtures/redis-tools.ts'
import { job, until } from './storage-contract.ts'

const { server, admin } = await redisWithAdmin()

const LEASE = 30_000

async function flush (): Promise<void> {
  assert.equal(await admin.script('FLUSH'), 'OK')
}

test('every operation works right after SCRIPT FLUSH', async t => {
  const defer = lifo(t)
  const storage = new RedisStorage({ url: server.url, keyPrefix: `t-${randomUUID()}` })
  storage.on('error', err => { throw err })
  await storage.connect()
  defer(() => storage.disconnect())
  const q = 'flush'
  // Each operation runs once first, so the connection believes its script is loaded.
  await flush()
  assert.deepEqual(await storage.enqueue(q, [job('a'), job('b'), job('c'), job('d', 'p', { delay: 60_000 })]), Array(4).fill({ status: 'queued' }))
  await flush()
  assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'duplicate', state: 'queued' }])
  for (let round = 0; round < 2; round++) {
    await flush()
    assert.equal((await storage.getStatus(q, 'a'))?.state, round === 0 ? 'queued' : 'completed')
    await flush()
    assert.equal((await storage.counts(q)).delayed, round === 0 ? 1 : 0)
    await flush()
    assert.deepEqual(await storage.recoverStalled(q, 1, Buffer.from('stalled')), { requeued: [], failed: [] })
    await flush()
    assert.equal(await storage.acquireLock(`lock-${q}`, 'me', 10_000), true)
    await flush()
    await storage.releaseLock(`lock-${q}`, 'me')
    if (round === 0) {
      await flush()
      const [a] = await storage.claim(q, 'w', { max: 1, leaseMs: LEASE, blockMs: 0 })
      assert.equal(a?.id, 'a')
      await flush()
      assert.deepEqual(await storage.extendLeases(q, 'w', ['a'], LEASE), { lost: [], aborted: [] })
      await flush()
      const next = await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: 1, result: Buffer.from('ra'), ttl: 60_000 }], { max: 1, leaseMs: LEASE })
      assert.deepEqual(next.jobs.map(j => j.id), ['b'])
      await flush()
      assert.equal(await storage.updateResultTTL(q, 'a', 120_000), 'updated')
      await flush()
      assert.equal(await storage.cancel(q, 'd'), 'cancelled')
      await flush()
      assert.equal(await storage.abort(q, 'b', 60_000), 'aborting')
    }
  }

  // A consumer blocked in BLMOVE when the scripts go: its activation and settlement still work.
  await flush()
  assert.deepEqual((await storage.claim(q, 'w', { max: 5, leaseMs: LEASE, blockMs: 0 })).map(j => j.id), ['c'])
  const waiting = storage.claim(q, 'w', { max: 5, leaseMs: LEASE, blockMs: 10_000 })
  await until(async () => /blocked_clients:[1-9]/.test(await admin.info('clients')))
  await flush()
  assert.deepEqual(await storage.enqueue(q, [job('e')]), [{ status: 'queued' }])
  const [e] = await waiting
  assert.equal(e?.id, 'e')
  await flush()
  assert.deepEqual(await storage.settle(q, 'w', [{ type: 'complete', id: 'e', attempt: e.attempts, result: Buffer.from('re'), ttl: 60_000 }], { max: 0, leaseMs: LEASE }), { jobs: [], refused: [] })
  const status = await storage.getStatus(q, 'e')
  assert.equal(status?.state, 'completed')
  assert.equal(status?.result?.toString(), 're')
})

test('SCRIPT FLUSH again and again under a running queue: every job completes, no error', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const name = 'flush-run'
  const errors: unknown[] = []
  const storage = new RedisStorage({ url: server.url, keyPrefix: prefix })
  storage.on('error', err => errors.push(err))
  const queue = new Queue<number, number>({ storage, name, concurrency: 8, backoff: { type: 'fixed', delay: 0 } })
  queue.on('error', err => errors.push(err))
  queue.execute(async job => job.payload * 3)
  await queue.start()
  defer(() => queue.stop())
  const producerStorage = new RedisStorage({ url: server.url, keyPrefix: prefix })
  producerStorage.on('error', err => errors.push(err))
  const producer = new Producer<number, number>({ storage: producerStorage, name })
  producer.on('error', err => errors.push(err))
  await producer.start()
  defer(() => producer.stop())

  // Every 25 completions the scripts are flushed, while other calls are in flight.
  let completed = 0
  const flushes: Array<Promise<unknown>> = []
  queue.on('completed', () => {
    if (++completed % 25 === 0) flushes.push(admin.script('FLUSH'))
  })
  const results: Array<Promise<number>> = []
  for (let i = 0; i < 400; i++) {
    results.push((i % 2 === 0 ? queue : producer).enqueueAndWait(`j${i}`, i, { timeout: 20_000 }))
    // Some waits between batches: consumers go idle and block in BLMOVE, then wake up.
    if (i % 50 === 49) await Promise.all(results.slice(-50))
  }
  assert.deepEqual(await Promise.all(results), Array.from({ length: 400 }, (_, i) => i * 3))
  await Promise.all(flushes)
  assert.ok(flushes.length >= 10, `only ${flushes.length} flushes`)
  assert.deepEqual(errors.map(e => inspect(e)), [])
})

// After SCRIPT FLUSH (or a restart, or a failover) a call's EVALSHA fails with NOSCRIPT and iovalkey
// sends it again as EVAL: behind whatever went out on the connection meanwhile. A BLMOVE'd job's
// activation may be such a call, while the consumer's next blocking claim takes over the wait for
// it and the job's settlement goes out at once.
test('a settlement never overtakes the activation of its job, even when the activation is retried after NOSCRIPT', async t => {
  await settlementAfterRetriedActivation(t, server.url, admin, {
    beforeEnqueue: async storage => {
      await flush()
      // The settle script is loaded again (by a settlement of nothing), the claim script is not.
      assert.deepEqual(await storage.settle('overtake', 'w', [], { max: 0, leaseMs: LEASE }), { jobs: [], refused: [] })
    }
  })
})

test('every operator operation works right after SCRIPT FLUSH', async t => {
  const defer = lifo(t)
  const storage = new RedisStorage({ url: server.url, keyPrefix: `t-${randomUUID()}` })
  storage.on('error', err => { throw err })
  await storage.connect()
  defer(() => storage.disconnect())
  const q = 'flush-admin'
  await storage.enqueue(q, [job('a', 'p', { maxAttempts: 1 }), job('b'), job('c', 'p', { delay: 60_000 })])
  const [a] = await storage.claim(q, 'w', { max: 1, leaseMs: LEASE, blockMs: 0 })
  const group = { key: '00000000000000aa', name: 'Error', message: 'boom', frame: '' }
  await storage.settle(q, 'w', [{ type: 'fail', id: a.id, attempt: a.attempts, error: Buffer.from('boom'), ttl: 60_000, group }], { max: 0, leaseMs: LEASE })
  const worker = { id: 'w', host: 'h', pid: 1, concurrency: 1, running: 0, startedAt: Date.now() }
  const steps: Array<[string, () => Promise<unknown>, (answer: any) => void]> = [
    ['overview', () => storage.overview(q), o => assert.deepEqual([o.counts.failed, o.counts.queued, o.counts.delayed], [1, 1, 1])],
    ['listJobs', () => storage.listJobs(q, { state: 'failed', limit: 10, order: 'desc' }), p => assert.deepEqual(p.jobs.map((j: { id: string }) => j.id), ['a'])],
    ['getJob', () => storage.getJob(q, 'a'), d => assert.equal(d.group, group.key)],
    ['failureGroups', () => storage.failureGroups(q, 10), g => assert.deepEqual(g.map((x: { key: string }) => x.key), [group.key])],
    ['heartbeat', () => storage.heartbeat(q, worker, 60_000), () => {}],
    ['workers', () => storage.workers(q), w => assert.deepEqual(w.map((x: { id: string }) => x.id), ['w'])],
    ['setRetention', () => storage.setRetention(q, { completed: { age: 1000, count: 10 }, failed: { age: 60_000, count: 10 }, cancelled: { age: 1000, count: 10 } }), () => {}],
    ['setPaused', () => storage.setPaused(q, true), () => {}],
    ['setPaused', () => storage.setPaused(q, false), () => {}],
    ['apply promote', () => storage.apply(q, 'promote', { state: 'delayed' }, { limit: 10, dryRun: false }), o => assert.equal(o.changed, 1)],
    ['apply cancel', () => storage.apply(q, 'cancel', { ids: ['b'] }, { limit: 10, dryRun: false }), o => assert.deepEqual(o.results, ['cancelled'])],
    ['apply retry', () => storage.apply(q, 'retry', { state: 'failed' }, { limit: 10, dryRun: false }), o => assert.equal(o.changed, 1)],
    ['apply remove', () => storage.apply(q, 'remove', { ids: ['a', 'c'] }, { limit: 10, dryRun: false }), o => assert.deepEqual(o.results, ['removed', 'removed'])],
    ['queues', () => storage.queues(), s => assert.deepEqual(s.map((x: { name: string }) => x.name), [q])],
    ['clear', () => storage.clear(), () => {}],
    ['queues', () => storage.queues(), s => assert.deepEqual(s, [])]
  ]
  for (const [name, call, check] of steps) {
    await flush()
    check(await call().catch((err: unknown) => assert.fail(`${name}: ${inspect(err)}`)))
  }
})
