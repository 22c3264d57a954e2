import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { after, test, type TestContext } from 'node:test'
import { Redis } from 'iovalkey'
import {
  InvalidArgumentError, MaxRetriesError, Queue, Reaper, RedisStorage, StorageError, type Job
} from '../src/index.ts'
import { deleteKeys, startRedis, type RedisServer } from './fixtures/redis-server.ts'
import { startProxy } from './fixtures/tcp-proxy.ts'
import { deferred } from './queue-suite.ts'

/** Every test here ends by itself; one that hangs fails instead of stalling the suite. */
const LIMIT = { timeout: 30_000 }

/** 1 MiB: the smallest `proto-max-bulk-len` Redis accepts. */
const MIB = 1024 * 1024

const limited = await startRedis({ args: ['--proto-max-bulk-len', '1mb'] })
after(() => limited.stop())

/**
 * A throwaway server for a test that freezes it or changes its configuration. The test stops it
 * with `t.after` once its queue is made: after hooks run in the order registered, and the queue
 * must stop first.
 */
async function ownServer (): Promise<RedisServer> {
  return await startRedis({ args: [] })
}

/** A TCP listener that accepts connections and never answers. */
async function silentServer (t: TestContext): Promise<number> {
  const sockets: Socket[] = []
  const server = createServer(socket => { sockets.push(socket) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    for (const socket of sockets) socket.destroy()
    server.close()
    await once(server, 'close')
  })
  return (server.address() as { port: number }).port
}

/** A started queue on its own key prefix; `error` events are collected. */
async function queueOn (t: TestContext, storage: RedisStorage, config: Record<string, unknown>, handler: (job: Job<any>) => unknown): Promise<Queue<any, any> & { errors: Error[] }> {
  const queue = Object.assign(new Queue<any, any>({ storage, name: `r-${randomUUID()}`, ...config }), { errors: [] as Error[] })
  queue.on('error', err => queue.errors.push(err))
  queue.execute(handler as any)
  await queue.start()
  t.after(() => queue.stop())
  return queue
}

const isStorageError = (pattern: RegExp) => (err: unknown): boolean => err instanceof StorageError && pattern.test(err.message)

// Issue 13 item 1, on a real server limit.

test('the server\'s proto-max-bulk-len is the limit: a larger payload is refused before anything is sent, a larger result fails its job; others complete', LIMIT, async t => {
  const keyPrefix = `t-${randomUUID()}`
  t.after(() => deleteKeys(limited.url, keyPrefix))
  const storage = new RedisStorage({ url: limited.url, keyPrefix })
  const queue = await queueOn(t, storage, { concurrency: 4 }, async job => job.payload === 'big' ? 'r'.repeat(MIB) : job.payload)
  assert.equal(storage.maxValueBytes, MIB - 4096)
  const refused = await queue.enqueue('huge', 'p'.repeat(MIB)).catch((err: Error) => err)
  assert.ok(refused instanceof InvalidArgumentError && /larger than the storage stores per value/.test(refused.message))
  assert.equal(await queue.getStatus('huge'), null)
  const failed = new Promise<Error>(resolve => queue.on('failed', (id, err) => { if (id === 'big') resolve(err) }))
  const [big, good] = await Promise.all([
    queue.enqueueAndWait('big', 'big', { timeout: 10_000 }).catch((err: Error) => err),
    queue.enqueueAndWait('good', 'good', { timeout: 10_000 })
  ])
  assert.equal(good, 'good')
  assert.match((big as Error).message, /The result of job 'big' is \d+ bytes: larger than the storage stores/)
  const err = await failed
  assert.ok(err instanceof MaxRetriesError && err.lastError instanceof InvalidArgumentError)
  assert.deepEqual(queue.errors, [])
})

test('a limit lowered after connect: the server refuses the value, only its job fails or its enqueue rejects, every other one is stored and answered', LIMIT, async t => {
  const server = await ownServer()
  const keyPrefix = `t-${randomUUID()}`
  const storage = new RedisStorage({ url: server.url, keyPrefix })
  const gate = deferred()
  // The server closes the connection when it refuses a value, and replies on their way are lost
  // with it: a lost activation leaves the jobs it claimed leased to this worker until their lease
  // (visibilityTimeout) expires and the reaper hands them back. A short one keeps the test short.
  const queue = await queueOn(t, storage, { concurrency: 8, visibilityTimeout: 4000 }, async job => {
    await gate.promise
    return job.payload === 'big' ? 'r'.repeat(2 * MIB) : job.payload
  })
  t.after(() => server.stop())
  // relayq read 512 MiB at connect; the server now takes 1 MiB arguments at most.
  const admin = new Redis(server.url)
  admin.on('error', () => {})
  t.after(() => admin.disconnect())
  await admin.config('SET', 'proto-max-bulk-len', String(MIB))
  const ids = ['a', 'b', 'big', 'c', 'd']
  const waits = ids.map(id => queue.enqueueAndWait(id, id, { timeout: 20_000 }).catch((err: Error) => err))
  // Enqueued in one tick with good ones: the too large payload costs only its own call.
  const enqueued = await Promise.all([queue.enqueue('x', 'x'), queue.enqueue('huge', 'p'.repeat(2 * MIB)).catch((err: Error) => err), queue.enqueue('y', 'y')])
  // An enqueue whose reply was lost is sent again and finds the job it stored the first time:
  // 'x' and 'y' are stored either way. (A settlement whose reply was lost is sent again too, and
  // fencing ignores the repeat: its job is completed, but its 'completed' event may not come.)
  for (const outcome of [enqueued[0], enqueued[2]]) {
    assert.ok(outcome.status === 'queued' || outcome.status === 'duplicate', JSON.stringify(outcome))
  }
  assert.ok(enqueued[1] instanceof StorageError && !enqueued[1].retryable && /invalid bulk length/.test(enqueued[1].message))
  assert.equal(await queue.getStatus('huge'), null)
  gate.resolve()
  const results = await Promise.all(waits)
  assert.deepEqual(results.filter((_, i) => ids[i] !== 'big'), ['a', 'b', 'c', 'd'])
  assert.match((results[2] as Error).message, /The storage refused to store the result of job 'big': .*invalid bulk length/)
  assert.equal((await queue.getStatus('big'))?.state, 'failed')
  assert.ok((await queue.getStatus('x')) !== null && (await queue.getStatus('y')) !== null)
  assert.equal(await queue.enqueueAndWait('after', 'after', { timeout: 10_000 }), 'after')
})

// Issue 13 item 4: deadlines.

test('a server that accepts and never answers: start(), enqueue() and a reaper\'s start reject with StorageError after connectTimeout; stop() returns', LIMIT, async t => {
  const port = await silentServer(t)
  const queue = new Queue({ storage: new RedisStorage({ port, connectTimeout: 300 }) })
  queue.execute(async () => 1)
  t.after(() => queue.stop())
  await assert.rejects(queue.start(), isStorageError(/did not answer within connectTimeout \(300 ms\)/))
  await assert.rejects(queue.enqueue('a', 1), isStorageError(/connectTimeout/))
  const reaper = new Reaper({ storage: new RedisStorage({ port, connectTimeout: 300 }) })
  await assert.rejects(reaper.start(), isStorageError(/connectTimeout/))
  await reaper.stop()
  await queue.stop()
})

test('a connection that goes silent: calls reject with StorageError after commandTimeout; stop() returns within shutdownTimeout + stopTimeout and reports what it gave up; the queue works again once the connection answers', LIMIT, async t => {
  const server = await ownServer()
  const proxy = await startProxy(server.port)
  const storage = new RedisStorage({ url: proxy.url, keyPrefix: `t-${randomUUID()}`, commandTimeout: 400 })
  const queue = await queueOn(t, storage, { shutdownTimeout: 100, stopTimeout: 300 }, async job => job.payload)
  t.after(() => proxy.close())
  t.after(() => server.stop())
  assert.equal(await queue.enqueueAndWait('before', 1, { timeout: 5000 }), 1)
  const held = proxy.accepted
  for (let i = 0; i < held; i++) proxy.hold(i)
  await assert.rejects(queue.enqueue('during', 2), isStorageError(/did not answer within commandTimeout \(400 ms\)/))
  await assert.rejects(queue.getStatus('during'), isStorageError(/commandTimeout/))
  await queue.stop()
  assert.ok(queue.errors.some(err => err instanceof StorageError && /stopped without waiting any longer for: /.test(err.message)), queue.errors.map(e => e.message).join('; '))
  for (let i = 0; i < held; i++) proxy.release(i)
  await queue.start()
  assert.equal(await queue.enqueueAndWait('after', 3, { timeout: 5000 }), 3)
})

test('a frozen server (SIGSTOP): calls reject after commandTimeout, stop() returns and hands running jobs back; after SIGCONT nothing is lost', LIMIT, async t => {
  const server = await ownServer()
  const keyPrefix = `t-${randomUUID()}`
  const storage = new RedisStorage({ url: server.url, keyPrefix, commandTimeout: 400, connectTimeout: 400 })
  const started = deferred()
  let runs = 0
  const queue = await queueOn(t, storage, { shutdownTimeout: 100, stopTimeout: 300, visibilityTimeout: 2000 }, async job => {
    if (job.id === 'running' && runs++ === 0) {
      started.resolve()
      await new Promise(() => {}) // runs until the stop aborts it
    }
    return job.payload
  })
  t.after(() => server.stop())
  await queue.enqueue('running', 'r')
  await started.promise
  server.pause()
  await assert.rejects(queue.enqueue('frozen', 1), isStorageError(/commandTimeout \(400 ms\)/))
  await queue.stop()
  assert.ok(queue.errors.some(err => /stopped without waiting any longer/.test(err.message)))
  server.resume()
  await queue.start()
  const done = new Promise<void>(resolve => queue.on('completed', id => { if (id === 'running') resolve() }))
  assert.equal(await queue.enqueueAndWait('after', 'a', { timeout: 10_000 }), 'a')
  await done
  assert.equal(await queue.getResult('running'), 'r')
})

test('connectTimeout, commandTimeout and stopTimeout are validated: integers from 1 ms', () => {
  for (const bad of [0, -1, 1.5, NaN, '100', 2 ** 31]) {
    assert.throws(() => new RedisStorage({ connectTimeout: bad as number }), InvalidArgumentError)
    assert.throws(() => new RedisStorage({ commandTimeout: bad as number }), InvalidArgumentError)
    assert.throws(() => new Queue({ storage: new RedisStorage(), stopTimeout: bad as number }), InvalidArgumentError)
    assert.throws(() => new Reaper({ storage: new RedisStorage(), stopTimeout: bad as number }), InvalidArgumentError)
  }
})
