import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import {
  Consumer, FileStorage, InvalidArgumentError, JsonSerde, MemoryStorage, MsgpackSerde, Producer, Queue, Reaper,
  RedisStorage, TimeoutError
} from '../src/index.ts'
import { deleteKeys, startRedis } from './fixtures/redis-server.ts'
import { failureTests, recordingLogger } from './failure-suite.ts'

const server = await startRedis()
after(() => server.stop())

failureTests('memory', async () => {
  const storage = new MemoryStorage()
  return { storage, another: () => storage, cleanup: async () => {} }
})

failureTests('file', async () => {
  const basePath = await mkdtemp(join(tmpdir(), 'relayq-failure-'))
  const make = (): FileStorage => new FileStorage({ basePath })
  return { storage: make(), another: make, cleanup: () => rm(basePath, { recursive: true, force: true }) }
})

failureTests('redis', async () => {
  const keyPrefix = `t-${randomUUID()}`
  const make = (): RedisStorage => new RedisStorage({ url: server.url, keyPrefix })
  return { storage: make(), another: make, cleanup: () => deleteKeys(server.url, keyPrefix) }
})

const storage = new MemoryStorage()

/** Asserts that `fn` throws an InvalidArgumentError whose message matches `pattern`. */
function refuses (fn: () => unknown, pattern: RegExp, label?: string): void {
  assert.throws(fn, (err: unknown) => err instanceof InvalidArgumentError && err.code === 'INVALID_ARGUMENT' && pattern.test(err.message), label)
}

test('a bad logger is refused at construction by every component and storage (13.5)', () => {
  const bad = [{ info () {} }, { debug () {}, info () {}, warn () {}, error: 'no' }, 'console', null, 42]
  const components: Array<[string, (logger: any) => unknown]> = [
    ['Queue', logger => new Queue({ storage, logger })],
    ['Producer', logger => new Producer({ storage, logger })],
    ['Consumer', logger => new Consumer({ storage, logger })],
    ['Reaper', logger => new Reaper({ storage, logger })],
    ['MemoryStorage', logger => new MemoryStorage({ logger })],
    ['FileStorage', logger => new FileStorage({ basePath: '/tmp/never-created', logger })],
    ['RedisStorage', logger => new RedisStorage({ logger })]
  ]
  for (const [name, make] of components) {
    for (const logger of bad) refuses(() => make(logger), /logger/, `${name} ${JSON.stringify(logger)}`)
    assert.doesNotThrow(() => make(recordingLogger()), name)
  }
})

test('a RedisStorage whose logger throws survives a failing connection (13.5)', async t => {
  const boom = (): never => { throw new Error('logger down') }
  const errors: Error[] = []
  // Nothing listens on port 1: every connection attempt fails and is logged.
  const broken = new RedisStorage({ port: 1, logger: { debug: boom, info: boom, warn: boom, error: boom }, redisOptions: { maxRetriesPerRequest: 0, retryStrategy: () => null } })
  broken.on('error', err => errors.push(err))
  await assert.rejects(broken.connect())
  await broken.disconnect()
  assert.ok(errors.length > 0)
})

test('unknown option names are refused, naming the closest known one (decided)', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['Queue', () => new Queue({ storage, concurency: 2 } as any), /Unknown option `concurency` for Queue; did you mean `concurrency`\?/],
    ['Producer', () => new Producer({ storage, maxRetry: 2 } as any), /`maxRetry` for Producer; did you mean `maxRetries`/],
    ['Producer with a consumer option', () => new Producer({ storage, concurrency: 2 } as any), /`concurrency` for Producer/],
    ['Consumer', () => new Consumer({ storage, visibilitytimeout: 5 } as any), /did you mean `visibilityTimeout`/],
    ['Reaper', () => new Reaper({ storage, intervall: 5 } as any), /did you mean `interval`/],
    ['leaderElection', () => new Queue({ storage, leaderElection: { lockTtl: 5 } } as any), /`lockTtl` for `leaderElection`; did you mean `lockTTL`/],
    ['backoff', () => new Queue({ storage, backoff: { type: 'fixed', delai: 5 } } as any), /did you mean `delay`/],
    ['MemoryStorage', () => new MemoryStorage({ sweepintervall: 5 } as any), /did you mean `sweepInterval`/],
    ['FileStorage', () => new FileStorage({ basePath: '/tmp/x', fsinc: true } as any), /did you mean `fsync`/],
    ['RedisStorage', () => new RedisStorage({ keyprefix: 'mine' } as any), /Unknown option `keyprefix` for RedisStorage; did you mean `keyPrefix`/]
  ]
  for (const [label, make, pattern] of cases) refuses(make, pattern, label)
  // Every option of @platformatic/job-queue is accepted, including those relayq ignores; undefined values are ignored.
  assert.doesNotThrow(() => new Queue({
    storage,
    name: 'n',
    workerId: 'w',
    concurrency: 1,
    blockTimeout: 5,
    maxRetries: 3,
    visibilityTimeout: 30_000,
    processingQueueTTL: 1000,
    resultTTL: 1000,
    logger: recordingLogger(),
    payloadSerde: new JsonSerde(),
    resultSerde: new JsonSerde(),
    afterExecution: () => {},
    concurency: undefined
  } as any))
  assert.doesNotThrow(() => new Reaper({ storage, name: 'n', payloadSerde: new JsonSerde(), visibilityTimeout: 1000, leaderElection: { enabled: false }, logger: recordingLogger() }))
  assert.doesNotThrow(() => new RedisStorage({ url: 'redis://127.0.0.1:6379', keyPrefix: 'jq:', logger: recordingLogger() }))
  assert.doesNotThrow(() => new FileStorage({ basePath: '/tmp/x' }))
})

test('unknown per-job option names are refused before anything is stored (decided)', async t => {
  const queue = new Queue({ storage, name: `q-${randomUUID()}` })
  t.after(() => queue.stop())
  const isUnknown = (pattern: RegExp) => (err: unknown) => err instanceof InvalidArgumentError && pattern.test(err.message)
  await assert.rejects(queue.enqueue('a', 1, { delya: 5 } as any), isUnknown(/`delya` for enqueue; did you mean `delay`/))
  await assert.rejects(queue.enqueue('a', 1, { timeout: 5 } as any), isUnknown(/`timeout` for enqueue/))
  await assert.rejects(queue.enqueueAndWait('a', 1, { timout: 5 } as any), isUnknown(/did you mean `timeout`/))
  await assert.rejects(queue.enqueueMany([{ id: 'a', payload: 1, options: { maxAtempts: 2 } as any }]), isUnknown(/jobs\[0\]: .*did you mean `maxAttempts`/))
  assert.equal(await queue.getStatus('a'), null)
})

test('storage constructors validate their options: null, clock, sweepInterval, ill-formed prefixes (13.11, 13.6, decided)', () => {
  refuses(() => new MemoryStorage(null as any), /options of MemoryStorage to be an object/)
  refuses(() => new FileStorage(null as any), /options of FileStorage to be an object/)
  refuses(() => new RedisStorage(null as any), /options of RedisStorage to be an object/)
  for (const clock of [42, 'now', {}]) {
    refuses(() => new MemoryStorage({ clock: clock as any }), /`clock`/)
    refuses(() => new FileStorage({ basePath: '/tmp/x', clock: clock as any }), /`clock`/)
    refuses(() => new RedisStorage({ clock: clock as any }), /`clock`/)
  }
  for (const sweepInterval of [-1, 0, NaN, 'x', 1.5, 2 ** 31]) refuses(() => new MemoryStorage({ sweepInterval: sweepInterval as any }), /`sweepInterval`/)
  refuses(() => new RedisStorage({ keyPrefix: 'p\uD800' }), /well-formed/)
  refuses(() => new FileStorage({ basePath: '/tmp/p\uDC00' }), /well-formed/)
})

test('TimeoutError has the shape @platformatic/job-queue gives it (10.6)', async t => {
  const queue = new Queue({ storage, name: `q-${randomUUID()}` })
  t.after(() => queue.stop())
  const err = await queue.enqueueAndWait('slow', 1, { timeout: 10 }).catch(e => e)
  assert.ok(err instanceof TimeoutError)
  assert.deepEqual([err.name, err.code, err.message, err.jobId], ['TimeoutError', 'TIMEOUT', "Job 'slow' timed out after 10ms", 'slow'])
  assert.deepEqual(err.toJSON(), { name: 'TimeoutError', message: err.message, code: 'TIMEOUT', stack: err.stack, jobId: 'slow' })
})

test('serdes state what they store: JSON refuses lossy values with a path, msgpack refuses Maps that would not come back', () => {
  const json = new JsonSerde()
  assert.throws(() => json.serialize({ a: { b: [1, { f: () => 1 }] } }), /value\.a\.b\[1\]\.f as JSON: a function/)
  assert.throws(() => json.serialize({ n: NaN }), /value\.n as JSON: NaN/)
  assert.throws(() => json.serialize(new Map()), /a Map/)
  assert.deepEqual(json.deserialize(json.serialize({ at: new Date(0), u: undefined })), { at: '1970-01-01T00:00:00.000Z' })
  const msgpack = new MsgpackSerde()
  assert.throws(() => msgpack.serialize(new Map<unknown, number>([[1, 2]])), /a Map with a number key/)
  const circular: any = { a: {} }
  circular.a.self = circular
  assert.throws(() => msgpack.serialize(circular), /circular/)
  assert.throws(() => json.serialize(circular), /circular/)
})
