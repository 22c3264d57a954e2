import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { inspect } from 'node:util'
import { Queue, StorageError } from '../src/index.ts'
import { RedisStorage, type RedisStorageOptions } from '../src/storage/redis.ts'
import { hasOpenssl, startTlsRedis } from './fixtures/redis-tls.ts'
import { redisWithAdmin, lifo, recordingLogger, type Defer } from './fixtures/redis-tools.ts'
import { startProxy } from './fixtures/tcp-proxy.ts'
import { deferred } from './queue-suite.ts'
import { until } from './storage-contract.ts'

// Characters that need escaping in a URL, so the test also proves the URL is decoded right.
const PASSWORD = `pa:ss@w/rd%-${randomUUID()}`
const { server, admin } = await redisWithAdmin({ args: ['--requirepass', PASSWORD], password: PASSWORD })
const hostPort = `127.0.0.1:${server.port}`

/** Fails if `text` holds `secret`, raw or URL-encoded. */
function assertNoSecret (text: string, secret: string, what: string): void {
  assert.ok(!text.includes(secret) && !text.includes(encodeURIComponent(secret)), `${what} reveals the password: ${text}`)
}

/** A storage on a fresh key prefix with its `error` events recorded (the Queue using it disconnects it). */
function storageFor (options: RedisStorageOptions): { storage: RedisStorage, errors: unknown[] } {
  const keyPrefix = `t-${randomUUID()}`
  const storage = new RedisStorage({ keyPrefix, ...options })
  const errors: unknown[] = []
  storage.on('error', err => errors.push(err))
  return { storage, errors }
}

/** Runs a few jobs through a Queue (blocking claims, subscriber, scripts: every connection kind). */
async function runJobs (defer: Defer, storage: RedisStorage): Promise<void> {
  const queue = new Queue<number, number>({ storage, name: `q-${randomUUID()}`, concurrency: 4 })
  queue.on('error', err => { throw err })
  queue.execute(async job => job.payload * 2)
  await queue.start()
  defer(() => queue.stop())
  assert.deepEqual(await Promise.all([1, 2, 3].map(n => queue.enqueueAndWait(`job-${n}`, n, { timeout: 10_000 }))), [2, 4, 6])
  // The consumer is idle now: the next job reaches it through its blocking connection.
  assert.equal(await queue.enqueueAndWait('late', 21, { timeout: 10_000 }), 42)
}

test('AUTH with --requirepass: the password in the URL reaches every connection', async t => {
  const { storage, errors } = storageFor({ url: `redis://:${encodeURIComponent(PASSWORD)}@${hostPort}` })
  await runJobs(lifo(t), storage)
  assert.deepEqual(errors, [])
})

test('AUTH with an ACL user: redis://user:pass@host', async t => {
  const user = `relayq-${randomUUID()}`
  const pass = `user-secret-${randomUUID()}`
  // Redis 7 users start with no channel access: relayq needs its pub/sub channels.
  await admin.call('ACL', 'SETUSER', user, 'on', `>${pass}`, '~*', '&*', '+@all')
  const { storage, errors } = storageFor({ url: `redis://${user}:${encodeURIComponent(pass)}@${hostPort}` })
  await runJobs(lifo(t), storage)
  assert.deepEqual(errors, [])
})

test('a wrong password: connect rejects with StorageError, and no error, event or log line holds the password', async t => {
  const wrong = `wrong:pass@${randomUUID()}`
  const user = `relayq-${randomUUID()}`
  await admin.call('ACL', 'SETUSER', user, 'on', `>right-${randomUUID()}`, '~*', '&*', '+@all')
  for (const url of [`redis://:${encodeURIComponent(wrong)}@${hostPort}`, `redis://${user}:${encodeURIComponent(wrong)}@${hostPort}`]) {
    const { storage, errors } = storageFor({ url })
    const err = await storage.connect().then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof StorageError, `connect rejected with ${inspect(err)}`)
    assert.equal(err.code, 'STORAGE_ERROR')
    // The server's reason, not just "Connection is closed": the user can tell a wrong password.
    assert.match(String((err.cause as Error | undefined)?.message), /WRONGPASS/, 'the cause is the server refusing the credentials')
    assertNoSecret(err.message, wrong, 'err.message')
    assertNoSecret(inspect(err, { depth: null }), wrong, 'util.inspect(err)')
    assert.ok(errors.length > 0, 'the auth failure is reported as an error event')
    for (const event of errors) {
      assert.ok(event instanceof StorageError, `an error event that is not a StorageError: ${inspect(event)}`)
      assertNoSecret(inspect(event, { depth: null }), wrong, 'an error event')
    }

    // The same through a Queue with a logger that records everything.
    const logger = recordingLogger()
    const other = storageFor({ url })
    const queue = new Queue({ storage: other.storage, name: `q-${randomUUID()}`, logger })
    const queueErrors: unknown[] = []
    queue.on('error', e => queueErrors.push(e))
    queue.execute(async () => 1)
    const started = await queue.start().then(() => undefined, (e: unknown) => e)
    await queue.stop()
    assert.ok(started instanceof StorageError, `queue.start() rejected with ${inspect(started)}`)
    assertNoSecret(inspect(started, { depth: null }), wrong, 'the start error')
    for (const e of [...queueErrors, ...other.errors]) assertNoSecret(inspect(e, { depth: null }), wrong, 'an error event')
    for (const line of logger.lines) assertNoSecret(line, wrong, 'a log line')
  }
})

test('a password rotated under a running queue: the failures on reconnect never show the old password, and the queue recovers', async t => {
  const defer = lifo(t)
  const user = `relayq-${randomUUID()}`
  const pass = `rotating-${randomUUID()}`
  await admin.call('ACL', 'SETUSER', user, 'on', `>${pass}`, '~*', '&*', '+@all')
  const { storage, errors } = storageFor({ url: `redis://${user}:${encodeURIComponent(pass)}@${hostPort}` })
  const logger = recordingLogger()
  // A short lease: the heartbeat of the held job runs (and fails, and is logged) every second.
  const queue = new Queue<number, number>({ storage, name: `q-${randomUUID()}`, logger, concurrency: 2, visibilityTimeout: 3000 })
  const queueErrors: unknown[] = []
  queue.on('error', e => queueErrors.push(e))
  const gate = deferred()
  const holding = deferred()
  queue.execute(async job => {
    if (job.id === 'held') {
      holding.resolve()
      await gate.promise
    }
    return job.payload + 1
  })
  await queue.start()
  defer(() => queue.stop())
  defer(() => gate.resolve())
  assert.equal(await queue.enqueueAndWait('before', 1, { timeout: 10_000 }), 2)
  const held = queue.enqueueAndWait('held', 10, { timeout: 30_000 })
  await holding.promise

  // Another password for the user, and every connection of the queue dropped: they come back
  // with the old one and are refused.
  await admin.call('ACL', 'SETUSER', user, 'resetpass', `>other-${randomUUID()}`)
  await admin.call('CLIENT', 'KILL', 'USER', user)
  await until(() => errors.length > 0 && logger.lines.some(line => line.includes('Extending leases failed')), 10_000)
  // The failed heartbeat shows the main connection knows it is down: a new command waits in
  // the offline queue and is refused with the next failed AUTH.
  const refused = await queue.enqueue('during', 1).then(() => undefined, (e: unknown) => e)
  assert.ok(refused instanceof StorageError, `enqueue rejected with ${inspect(refused)}`)

  await admin.call('ACL', 'SETUSER', user, 'resetpass', `>${pass}`)
  gate.resolve()
  assert.equal(await held, 11)
  assert.equal(await queue.enqueueAndWait('after', 41, { timeout: 15_000 }), 42)

  for (const e of [refused, ...errors, ...queueErrors]) {
    assert.ok(e instanceof StorageError, `an error that is not a StorageError: ${inspect(e)}`)
    assertNoSecret(inspect(e, { depth: null }), pass, 'an error')
  }
  for (const line of logger.lines) assertNoSecret(line, pass, 'a log line')
})

test('TLS: rediss:// with the CA runs jobs; an untrusted server is a StorageError', async t => {
  if (!hasOpenssl()) {
    t.skip('openssl is not installed: cannot make a throwaway certificate for the TLS test')
    return
  }
  const defer = lifo(t)
  const tls = await startTlsRedis()
  defer(() => tls.stop())
  const { storage, errors } = storageFor({ url: tls.url, redisOptions: { tls: { ca: tls.ca } } })
  await runJobs(defer, storage)
  assert.deepEqual(errors, [])

  // Without the CA the certificate is not trusted: connect fails, it does not hang.
  const untrusted = storageFor({ url: tls.url, redisOptions: { tls: {} } })
  await assert.rejects(untrusted.storage.connect(), StorageError)
})

test('a command in flight when its connection drops fails with a StorageError while AUTH keeps being refused', async t => {
  const defer = lifo(t)
  const user = `relayq-${randomUUID()}`
  const pass = `pass-${randomUUID()}`
  await admin.call('ACL', 'SETUSER', user, 'on', `>${pass}`, '~*', '&*', '+@all')
  const proxy = await startProxy(server.port)
  defer(() => proxy.close())
  // Gives up on a command after one failed reconnection.
  const { storage } = storageFor({ url: `redis://${user}:${encodeURIComponent(pass)}@127.0.0.1:${new URL(proxy.url).port}`, redisOptions: { maxRetriesPerRequest: 1 } })
  await storage.connect()
  defer(() => storage.disconnect())

  // The command is on its way (held in the proxy) when the connection drops; every reconnection
  // is then refused.
  proxy.hold(0)
  const inFlight = storage.enqueue('q', [{ id: 'a', payload: Buffer.from('1'), maxAttempts: 1, resultTTL: 60_000, delay: 0 }])
  inFlight.catch(() => {})
  await admin.call('ACL', 'SETUSER', user, 'resetpass', `>other-${randomUUID()}`)
  proxy.cut()
  proxy.restore()
  // Restored at the end: the command goes through, and the storage closes a live connection.
  defer(async () => {
    await admin.call('ACL', 'SETUSER', user, 'resetpass', `>${pass}`)
    await inFlight.catch(() => {})
  })
  // Commands issued now are refused within ~150 ms (maxRetriesPerRequest 1): 2 s is a deadline.
  const deadline = new AbortController()
  const outcome = await Promise.race([
    inFlight.then(() => 'resolved', (err: unknown) => err),
    delay(2000, 'still pending after 2 s', { signal: deadline.signal })
  ]).finally(() => deadline.abort())
  assert.ok(outcome instanceof StorageError, `expected a StorageError, got ${inspect(outcome)}`)
})
