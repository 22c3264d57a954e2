import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { Producer, Queue } from '../src/index.ts'
import { RedisStorage } from '../src/storage/redis.ts'
import { linkLibrary } from '../src/storage/redis/library.ts'
import { scriptLibrary } from '../src/storage/redis/scripts.ts'
import { settlementAfterRetriedActivation } from './fixtures/activation-order.ts'
import { redisWithAdmin, lifo } from './fixtures/redis-tools.ts'
import { job } from './storage-contract.ts'

const { server, admin } = await redisWithAdmin()

const LEASE = 30_000

async function functionFlush (): Promise<void> {
  assert.equal(await admin.call('FUNCTION', 'FLUSH'), 'OK')
}

/** Calls of `command` the server counted (INFO commandstats). */
async function calls (command: string): Promise<number> {
  const info = await admin.info('commandstats')
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0)
}

/** Calls of `command` that failed (INFO commandstats: "Function not found" for FCALL). */
async function failures (command: string): Promise<number> {
  const info = await admin.info('commandstats')
  return Number(new RegExp(`^cmdstat_${command}:.*,failed_calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0)
}

/** The library's functions on the server, by name: their flags. */
async function loadedFunctions (): Promise<Map<string, string[]>> {
  const libraries = await admin.call('FUNCTION', 'LIST', 'LIBRARYNAME', scriptLibrary().name) as unknown[][]
  const found = new Map<string, string[]>()
  for (const library of libraries) {
    const fields = library as unknown[]
    const functions = fields[fields.indexOf('functions') + 1] as unknown[][]
    for (const fn of functions) found.set(String(fn[fn.indexOf('name') + 1]), (fn[fn.indexOf('flags') + 1] as string[]).map(String))
  }
  return found
}

/** A queue and a producer on storages of their own, both with `options`; their errors land in `errors`. */
async function running (t: Parameters<typeof lifo>[0], name: string, errors: unknown[], options: Partial<ConstructorParameters<typeof RedisStorage>[0]> = {}): Promise<{ queue: Queue<number, number>, producer: Producer<number, number> }> {
  const defer = lifo(t)
  const prefix = `t-${randomUUID()}`
  const storage = new RedisStorage({ url: server.url, keyPrefix: prefix, ...options })
  storage.on('error', err => errors.push(err))
  const queue = new Queue<number, number>({ storage, name, concurrency: 8, backoff: { type: 'fixed', delay: 0 } })
  queue.on('error', err => errors.push(err))
  queue.execute(async job => job.payload * 3)
  await queue.start()
  defer(() => queue.stop())
  const producerStorage = new RedisStorage({ url: server.url, keyPrefix: prefix, ...options })
  producerStorage.on('error', err => errors.push(err))
  const producer = new Producer<number, number>({ storage: producerStorage, name })
  producer.on('error', err => errors.push(err))
  await producer.start()
  defer(() => producer.stop())
  return { queue, producer }
}

/** 400 calls through `queue` and `producer` in bursts of 50, `disrupt` run every 25 completions: every result arrives. */
async function runThrough (queue: Queue<number, number>, producer: Producer<number, number>, disrupt: () => Promise<unknown>): Promise<number> {
  let completed = 0
  const disruptions: Array<Promise<unknown>> = []
  queue.on('completed', () => {
    if (++completed % 25 === 0) disruptions.push(disrupt())
  })
  const results: Array<Promise<number>> = []
  for (let i = 0; i < 400; i++) {
    results.push((i % 2 === 0 ? queue : producer).enqueueAndWait(`j${i}`, i, { timeout: 20_000 }))
    if (i % 50 === 49) await Promise.all(results.slice(-50))
  }
  assert.deepEqual(await Promise.all(results), Array.from({ length: 400 }, (_, i) => i * 3))
  await Promise.all(disruptions)
  return disruptions.length
}

test('linking: a key a helper uses must be in the script\'s KEYS; helpers read keys and globals from locals; the name follows the source', () => {
  // Not one line: one-line helpers are inlined into the body, where keys are KEYS[i].
  const lib = 'local function meta (f)\n  return redis.call(\'HGET\', K.meta, f)\nend\n-- a comment\nlocal function unused (x) return string.sub(x, 1) end\n'
  const body = (keys: string) => `-- KEYS ${keys}\nreturn { meta('a'), redis.call('GET', K.other) }\n`
  const linked = linkLibrary([{ name: 'x', body: body('other meta'), keys: ['other', 'meta'], readOnly: true }], lib, '')
  assert.match(linked.source, new RegExp(`^#!lua name=${linked.name}\n`))
  assert.match(linked.source, /K_meta = KEYS\[2\]/)
  assert.match(linked.source, /G_redis_call\('HGET', K_meta, f\)/)
  assert.match(linked.source, /G_redis_call\('GET', KEYS\[1\]\)/)
  assert.match(linked.source, /flags = \{ 'no-writes' \}/)
  assert.doesNotMatch(linked.source, /unused/)
  assert.equal(linked.functions.x, `${linked.name}_x`)
  assert.throws(() => linkLibrary([{ name: 'x', body: body('other'), keys: ['other'], readOnly: false }], lib, ''), /K\.meta is not in the script's KEYS/)
  const changed = linkLibrary([{ name: 'x', body: 'local y = 1\n' + body('other meta'), keys: ['other', 'meta'], readOnly: true }], lib, '')
  assert.notEqual(changed.name, linked.name)
})

test('connecting loads one library named by its hash; read-only functions carry no-writes', async t => {
  const defer = lifo(t)
  const storage = new RedisStorage({ url: server.url, keyPrefix: `t-${randomUUID()}` })
  await storage.connect()
  defer(() => storage.disconnect())
  const library = scriptLibrary()
  assert.match(library.name, /^relayq_[0-9a-f]{8}$/)
  const functions = await loadedFunctions()
  assert.deepEqual([...functions.keys()].sort(), Object.values(library.functions).sort())
  assert.deepEqual(functions.get(library.functions.status), ['no-writes'])
  assert.deepEqual(functions.get(library.functions.settle), [])
  // A second instance finds it loaded: no error, nothing compiled again.
  const another = new RedisStorage({ url: server.url, keyPrefix: `t-${randomUUID()}` })
  another.on('error', err => { throw err })
  await another.connect()
  defer(() => another.disconnect())
  assert.deepEqual(await another.enqueue('q', [job('a')]), [{ status: 'queued' }])
})

test('every operation works right after FUNCTION FLUSH', async t => {
  const defer = lifo(t)
  const storage = new RedisStorage({ url: server.url, keyPrefix: `t-${randomUUID()}` })
  storage.on('error', err => { throw err })
  await storage.connect()
  defer(() => storage.disconnect())
  const q = 'flush'
  const fcalls = await calls('fcall')
  await functionFlush()
  assert.deepEqual(await storage.enqueue(q, [job('a'), job('b'), job('d', 'p', { delay: 60_000 })]), Array(3).fill({ status: 'queued' }))
  await functionFlush()
  assert.equal((await storage.getStatus(q, 'a'))?.state, 'queued')
  await functionFlush()
  assert.equal((await storage.counts(q)).delayed, 1)
  await functionFlush()
  const [a] = await storage.claim(q, 'w', { max: 1, leaseMs: LEASE, blockMs: 0 })
  assert.equal(a?.id, 'a')
  await functionFlush()
  assert.deepEqual(await storage.extendLeases(q, 'w', ['a'], LEASE), { lost: [], aborted: [] })
  await functionFlush()
  const next = await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: 1, result: Buffer.from('ra'), ttl: 60_000 }], { max: 1, leaseMs: LEASE })
  assert.deepEqual(next.jobs.map(j => j.id), ['b'])
  await functionFlush()
  assert.equal(await storage.cancel(q, 'd'), 'cancelled')
  await functionFlush()
  assert.equal((await storage.listJobs(q, { state: 'completed', limit: 10, order: 'desc' })).jobs[0]?.id, 'a')
  // They ran as functions, loaded again each time (not by EVALSHA).
  const ran = await calls('fcall') - fcalls
  assert.ok(ran >= 9, `${ran} FCALL`)
  assert.equal(await calls('evalsha'), 0)
})

test('FUNCTION FLUSH again and again under a running queue: every job completes, no error', async t => {
  const errors: unknown[] = []
  const { queue, producer } = await running(t, 'flush-run', errors)
  const failed = await failures('fcall')
  const flushes = await runThrough(queue, producer, () => admin.call('FUNCTION', 'FLUSH'))
  assert.ok(flushes >= 10, `only ${flushes} flushes`)
  // Calls did find the functions gone, and were sent again.
  assert.ok(await failures('fcall') > failed)
  assert.deepEqual(errors.map(e => inspect(e)), [])
})

// As with NOSCRIPT (see redis-script-flush.test.ts): a BLMOVE'd job's activation that fails with
// "Function not found" is sent again behind calls sent meanwhile, the job's settlement among them.
test('a settlement never overtakes the activation of its job, even when the activation is retried after "Function not found"', async t => {
  // Flushed while the job moves: its activation finds no function.
  await settlementAfterRetriedActivation(t, server.url, admin, { afterEnqueue: functionFlush })
})

test('an ACL user without FUNCTION: the scripts run by EVALSHA, and survive SCRIPT FLUSH', async t => {
  const user = `nofn-${randomUUID()}`
  const pass = randomUUID()
  await admin.call('ACL', 'SETUSER', user, 'on', `>${pass}`, '~*', '&*', '+@all', '-function', '-fcall', '-fcall_ro')
  t.after(() => admin.call('ACL', 'DELUSER', user))
  await functionFlush()
  const fcalls = await calls('fcall')
  const scripts = await calls('evalsha') + await calls('eval')
  const errors: unknown[] = []
  const url = new URL(server.url)
  url.username = user
  url.password = pass
  const { queue, producer } = await running(t, 'acl-run', errors, { url: url.toString() })
  const flushes = await runThrough(queue, producer, () => admin.script('FLUSH'))
  assert.ok(flushes >= 10, `only ${flushes} flushes`)
  assert.deepEqual(errors.map(e => inspect(e)), [])
  assert.equal(await calls('fcall'), fcalls)
  // Enqueues and settlements (batched: fewer calls than jobs).
  const ran = await calls('evalsha') + await calls('eval') - scripts
  assert.ok(ran >= 100, `${ran} EVALSHA and EVAL`)
  assert.equal((await loadedFunctions()).size, 0)
})

// The EVALSHA path's own ordering case (redis-script-flush.test.ts runs on Functions now, where
// SCRIPT FLUSH changes nothing): an activation retried as EVAL after NOSCRIPT.
test('an ACL user without FUNCTION: a settlement never overtakes the activation of its job retried after NOSCRIPT', async t => {
  const user = `nofn-${randomUUID()}`
  const pass = randomUUID()
  await admin.call('ACL', 'SETUSER', user, 'on', `>${pass}`, '~*', '&*', '+@all', '-function', '-fcall', '-fcall_ro')
  t.after(() => admin.call('ACL', 'DELUSER', user))
  const url = new URL(server.url)
  url.username = user
  url.password = pass
  const fcalls = await calls('fcall')
  await settlementAfterRetriedActivation(t, url.toString(), admin, {
    beforeEnqueue: async storage => {
      assert.equal(await admin.script('FLUSH'), 'OK')
      // The settle script is loaded again (by a settlement of nothing), the claim script is not.
      assert.deepEqual(await storage.settle('overtake', 'w', [], { max: 0, leaseMs: LEASE }), { jobs: [], refused: [] })
    }
  })
  assert.equal(await calls('fcall'), fcalls)
})
