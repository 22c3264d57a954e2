import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { Admin, Queue, StorageError } from '../src/index.ts'
import { RedisStorage, type RedisStorageOptions } from '../src/storage/redis.ts'
import { deleteKeys } from './fixtures/redis-server.ts'
import { redisWithAdmin, lifo, scanKeys, type Defer } from './fixtures/redis-tools.ts'
import { startProxy } from './fixtures/tcp-proxy.ts'
import { deferred } from './queue-suite.ts'
import { job, until } from './storage-contract.ts'

const { server, admin } = await redisWithAdmin()

const LEASE = 30_000
const none = { max: 0, leaseMs: LEASE }

/** A connected storage over `prefix`, disconnected and its keys deleted at the end of the test. */
async function open (defer: Defer, prefix: string, options: RedisStorageOptions = {}): Promise<RedisStorage> {
  const storage = new RedisStorage({ url: server.url, keyPrefix: prefix, ...options })
  storage.on('error', err => { throw err })
  await storage.connect()
  defer(() => deleteKeys(server.url, prefix))
  defer(() => storage.disconnect())
  return storage
}

/** Every key of the server, by SCAN (the test's prefixes are its own). */
async function allKeys (): Promise<Set<string>> {
  const keys = new Set<string>()
  let cursor = '0'
  do {
    const [next, batch] = await admin.scan(cursor, 'COUNT', 1000)
    cursor = next
    for (const key of batch) keys.add(key)
  } while (cursor !== '0')
  return keys
}

/** Fails `ids` in one attempt each, as a worker would. */
async function failAll (storage: RedisStorage, q: string, ids: string[]): Promise<void> {
  await storage.enqueue(q, ids.map(id => job(id, `p-${id}`, { maxAttempts: 1 })))
  for (let i = 0; i < ids.length; i += 1000) {
    const claimed = await storage.claim(q, 'w', { max: 1000, leaseMs: LEASE, blockMs: 0 })
    await storage.settle(q, 'w', claimed.map(j => ({ type: 'fail' as const, id: j.id, attempt: j.attempts, error: Buffer.from('boom'), ttl: 3_600_000 })), none)
  }
}

test('namespaces: keyPrefix `P:b` with queue `c` and keyPrefix `P` with queue `b:c` share no key', async t => {
  const defer = lifo(t)
  const base = `t-${randomUUID()}`
  const before = await allKeys()
  const one = await open(defer, `${base}:b`)
  const two = await open(defer, base)
  assert.deepEqual(await one.enqueue('c', [job('x', 'one')]), [{ status: 'queued' }])
  assert.deepEqual(await two.enqueue('b:c', [job('x', 'two')]), [{ status: 'queued' }], 'not a duplicate of the other namespace\'s job')
  // Names with the characters that delimit hash tags and escapes, too.
  assert.deepEqual(await one.enqueue('{c}%', [job('x', 'three')]), [{ status: 'queued' }])
  assert.deepEqual(await two.enqueue('b:{c}%', [job('x', 'four')]), [{ status: 'queued' }])
  const payloads = []
  for (const [storage, q] of [[one, 'c'], [two, 'b:c'], [one, '{c}%'], [two, 'b:{c}%']] as const) {
    payloads.push((await storage.claim(q, 'w', { max: 5, leaseMs: LEASE, blockMs: 0 })).map(j => j.payload.toString()))
  }
  assert.deepEqual(payloads, [['one'], ['two'], ['three'], ['four']])
  const mine = [...await allKeys()].filter(k => !before.has(k))
  const tags = new Set(mine.map(k => k.slice(0, k.indexOf('}') + 1)))
  // Four queues and the two namespaces' registries: six hash tags, none shared.
  assert.equal(tags.size, 6, [...tags].join(' '))
  // Clearing one namespace leaves the other whole.
  await two.clear()
  assert.equal((await one.getStatus('c', 'x'))?.state, 'processing')
  assert.equal(await two.getStatus('b:c', 'x'), null)
  assert.deepEqual((await one.queues()).map(s => s.name).sort(), ['c', '{c}%'])
})

test('clear deletes every key of its prefix in batches, on a prefix with many queues, and nothing of a longer prefix', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const storage = await open(defer, prefix)
  const longer = await open(defer, `${prefix}:x`)
  for (let i = 0; i < 40; i++) {
    const q = `q${i}`
    await storage.enqueue(q, Array.from({ length: 30 }, (_, n) => job(`j${n}`, 'p', { delay: n % 2 === 0 ? 0 : 60_000 })))
    await storage.heartbeat(q, { id: 'w', host: 'h', pid: 1, concurrency: 1, running: 0, startedAt: Date.now() }, 60_000)
  }
  await failAll(storage, 'failing', Array.from({ length: 700 }, (_, n) => `f${n}`))
  assert.equal(await storage.acquireLock('leader', 'me', 60_000), true)
  await longer.enqueue('q0', [job('kept')])
  assert.ok((await scanKeys(admin, prefix)).length > 200)
  await storage.clear()
  assert.deepEqual(await scanKeys(admin, prefix), [])
  assert.equal(await admin.exists(`{${prefix}}:queues`), 0)
  assert.deepEqual(await storage.queues(), [])
  assert.equal((await longer.getStatus('q0', 'kept'))?.state, 'queued', 'a longer prefix is another namespace')
  assert.equal(await storage.acquireLock('leader', 'other', 60_000), true, 'locks went too')
  // The storage goes on: the queue registry is filled again.
  await storage.enqueue('q0', [job('again')])
  assert.deepEqual((await storage.queues()).map(s => s.name), ['q0'])

  const idle = new RedisStorage({ url: server.url, keyPrefix: `${prefix}:x` })
  await idle.clear()
  assert.equal((await longer.getStatus('q0', 'kept'))?.state, 'queued', 'a storage that is not connected clears nothing')
})

test('pause while a consumer is blocked in BLMOVE: nothing enqueued meanwhile reaches it, and resume wakes it at once', async t => {
  const defer = lifo(t)
  const storage = await open(defer, `t-${randomUUID()}`)
  const q = 'paused'
  const blocked = async (): Promise<number> => Number(/blocked_clients:(\d+)/.exec(await admin.info('clients'))?.[1])
  const baseline = await blocked()
  const started = Date.now()
  const claim = storage.claim(q, 'w', { max: 5, leaseMs: LEASE, blockMs: 60_000 })
  await until(async () => await blocked() > baseline)
  await storage.setPaused(q, true)
  await storage.enqueue(q, [job('a'), job('b', 'p', { delay: 1 })])
  // The job stays queued, and the consumer stays blocked on an empty ready list.
  for (let i = 0; i < 20; i++) assert.equal((await storage.getStatus(q, 'a'))?.state, 'queued')
  assert.equal(await blocked(), baseline + 1)
  await storage.setPaused(q, false)
  const jobs = [...await claim, ...await storage.claim(q, 'w', { max: 5, leaseMs: LEASE, blockMs: 0 })]
  assert.deepEqual(jobs.map(j => j.id), ['a', 'b'])
  assert.ok(Date.now() - started < 30_000, 'woken by the resume, not by its timeout')
})

test('a consumer of a paused queue runs nothing until resumed, then runs what waited', async t => {
  const defer = lifo(t)
  const storage = await open(defer, `t-${randomUUID()}`)
  const operator = new Admin({ storage })
  defer(() => operator.close())
  const queue = new Queue<string, string>({ storage, name: 'held', concurrency: 2, blockTimeout: 1 })
  queue.on('error', err => { throw err })
  const ran: string[] = []
  const done = deferred()
  queue.execute(async job => {
    ran.push(job.id)
    if (ran.length === 3) done.resolve()
    return job.payload
  })
  await queue.start()
  defer(() => queue.stop())
  assert.equal(await queue.enqueueAndWait('first', 'x', { timeout: 10_000 }), 'x')
  await operator.pause('held')
  await queue.enqueue('second', 'y')
  await queue.enqueue('third', 'z')
  assert.equal((await operator.counts('held')).counts.queued, 2)
  assert.deepEqual(ran, ['first'])
  await operator.resume('held')
  await done.promise
  assert.deepEqual(ran, ['first', 'second', 'third'])
})

test('a bulk retry cut off by a lost connection resumes from its last cursor; every job ends queued exactly once', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const seed = await open(defer, prefix)
  const ids = Array.from({ length: 1000 }, (_, i) => `j${i}`)
  await failAll(seed, 'bulk', ids)
  const proxy = await startProxy(server.port)
  defer(() => proxy.close())
  const flaky = new RedisStorage({ url: proxy.url, keyPrefix: prefix, redisOptions: { maxRetriesPerRequest: 1, retryStrategy: () => 50 } })
  flaky.on('error', () => {})
  await flaky.connect()
  defer(() => flaky.disconnect())
  const operator = new Admin({ storage: flaky })
  defer(() => operator.close())
  let cursor: string | null = null
  const failure = await operator.retry('bulk', { state: 'failed' }, {
    chunkSize: 100,
    onProgress: p => {
      cursor = p.cursor
      if (p.count === 300) proxy.cut()
    }
  }).then(() => null, (err: unknown) => err)
  assert.ok(failure instanceof StorageError, `the cut fails the call: ${String(failure)}`)
  proxy.restore()
  assert.ok(cursor !== null)
  const again = new Admin({ storage: seed })
  defer(() => again.close())
  const resumed = await again.retry('bulk', { state: 'failed' }, { chunkSize: 100, cursor: cursor as unknown as string })
  assert.equal(resumed.cursor, null)
  const counts = (await seed.overview('bulk')).counts
  assert.deepEqual([counts.queued, counts.failed], [1000, 0])
  const claimed = await seed.claim('bulk', 'w', { max: 1000, leaseMs: LEASE, blockMs: 0 })
  assert.deepEqual(claimed.map(j => j.id).sort(), [...ids].sort(), 'each job once, none lost')
  assert.ok(claimed.every(j => j.attempts === 1), 'a new attempt series each')
})

test('getJob, listJobs and counts answer from history with every key given in KEYS (a Cluster-safe layout)', async t => {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const storage = await open(defer, prefix)
  await failAll(storage, 'layout', ['a', 'b'])
  // Every key a queue uses shares its hash tag: one slot.
  const keys = await scanKeys(admin, prefix)
  assert.ok(keys.length > 0)
  assert.deepEqual(new Set(keys.map(k => k.slice(0, k.indexOf('}') + 1))), new Set([`{${prefix}:layout}`]))
  assert.deepEqual((await storage.listJobs('layout', { state: 'failed', limit: 10, order: 'asc' })).jobs.map(j => j.id), ['a', 'b'])
  assert.equal((await storage.getJob('layout', 'a'))?.payload.toString(), 'p-a')
  await until(async () => (await storage.counts('layout')).failed === 2)
})
