import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { describe, test, type TestContext } from 'node:test'
import {
  InvalidArgumentError, JobFailedError, MaxRetriesError, MsgpackSerde, Queue, QueueError, SerdeError,
  type Job, type Logger, type QueueConfig, type Serde, type Storage
} from '../src/index.ts'
import type { BlockingClaimOptions } from '../src/storage/types.ts'
import { storageOpeners, type QueueStorageFactory } from './queue-suite.ts'

type Cfg = Partial<QueueConfig<any, any>>

/** Calls a logger received, by level. */
export function recordingLogger (): Logger & { calls: Array<[string, unknown, string | undefined]> } {
  const calls: Array<[string, unknown, string | undefined]> = []
  const at = (level: string) => (obj: unknown, msg?: string) => { calls.push([level, obj, msg]) }
  return { calls, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** `storage` with some methods replaced; the others are called on `storage` itself (private fields). */
export function spyOn (storage: Storage, overrides: Partial<Storage>): Storage {
  return new Proxy(storage, {
    get (target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof Storage]
      const value = Reflect.get(target, prop, target) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/** Fails the test on any unhandled rejection while it runs. */
function noUnhandledRejections (t: TestContext): unknown[] {
  const seen: unknown[] = []
  const onRejection = (reason: unknown): void => { seen.push(reason) }
  process.on('unhandledRejection', onRejection)
  t.after(() => {
    process.off('unhandledRejection', onRejection)
    assert.deepEqual(seen, [], 'no unhandled rejection')
  })
  return seen
}

/** Bad input, odd handler outcomes and error shapes, on every backend. */
export function failureTests (name: string, factory: QueueStorageFactory): void {
  describe(`Failure modes: ${name}`, () => {
    const { storageFor, storagePair } = storageOpeners(factory)

    /** A started queue on its own namespace; fails the test on any `error` event unless `errors` collects them. */
    async function make (t: TestContext, config: Cfg = {}, handler?: (job: Job<any>) => unknown, errors?: Error[]): Promise<Queue<any, any>> {
      const queue = new Queue<any, any>({ storage: config.storage ?? await storageFor(t), name: `q-${randomUUID()}`, backoff: { type: 'fixed', delay: 0 }, ...config })
      queue.on('error', err => { if (errors === undefined) throw err; errors.push(err) })
      if (handler !== undefined) queue.execute(handler as any)
      await queue.start()
      t.after(() => queue.stop())
      return queue
    }

    test('failed after the last attempt carries a MaxRetriesError (10.4)', async t => {
      let runs = 0
      const queue = await make(t, { maxRetries: 3 }, async job => {
        runs++
        throw Object.assign(new Error(`boom ${job.attempts}`), { code: 'E_BOOM' })
      })
      for (const [id, maxAttempts] of [['three', 3], ['one', 1]] as const) {
        const failed = once(queue, 'failed')
        await queue.enqueue(id, 1, { maxAttempts })
        const [failedId, err] = await failed
        assert.equal(failedId, id)
        assert.ok(err instanceof MaxRetriesError)
        assert.equal(err.name, 'MaxRetriesError')
        assert.equal(err.code, 'MAX_RETRIES')
        assert.equal(err.message, `Job '${id}' failed after ${maxAttempts} attempts: boom ${maxAttempts}`)
        assert.equal(err.jobId, id)
        assert.equal(err.attempts, maxAttempts)
        assert.equal(err.lastError.message, `boom ${maxAttempts}`)
        assert.equal((err.lastError as Error & { code: string }).code, 'E_BOOM')
      }
      assert.equal(runs, 4)
      // afterExecution may replace the error: lastError is the replacement.
      const replaced = await make(t, { afterExecution: ctx => { ctx.error = new Error('replaced') } }, async () => { throw new Error('original') })
      const failed = once(replaced, 'failed')
      await replaced.enqueue('r', 1, { maxAttempts: 1 })
      const [, err] = await failed
      assert.ok(err instanceof MaxRetriesError)
      assert.equal(err.lastError.message, 'replaced')
      assert.equal(err.message, "Job 'r' failed after 1 attempts: replaced")
      assert.equal((await replaced.getStatus('r'))?.error?.message, 'replaced')
    })

    test('stored errors: toJSON() output exactly, else message, code and stack; JobFailedError.originalError (10.5)', async t => {
      class RichError extends Error {
        toJSON (): Record<string, unknown> { return { kind: 'rich', message: this.message, detail: { retryable: false, ids: [1, 2] } } }
      }
      const rich = new RichError('rich failure')
      const plain = Object.assign(new TypeError('plain failure'), { code: 'E_PLAIN' })
      const queue = await make(t, {}, async job => { throw job.payload === 'rich' ? rich : plain })
      const err = await queue.enqueueAndWait('rich', 'rich', { maxAttempts: 1, timeout: 5000 }).catch(e => e)
      assert.ok(err instanceof JobFailedError)
      assert.deepEqual((await queue.getStatus('rich'))?.error, rich.toJSON())
      assert.deepEqual(JSON.parse(err.originalError), rich.toJSON())
      assert.equal(err.message, "Job 'rich' failed: rich failure")

      const err2 = await queue.enqueueAndWait('plain', 'plain', { maxAttempts: 1, timeout: 5000 }).catch(e => e)
      const stored = (await queue.getStatus('plain'))?.error
      assert.deepEqual(stored, { message: 'plain failure', name: 'TypeError', code: 'E_PLAIN', stack: plain.stack })
      assert.ok(err2 instanceof JobFailedError)
      assert.equal(err2.code, 'JOB_FAILED')
      assert.equal(err2.originalCode, 'E_PLAIN')
      assert.deepEqual(JSON.parse(err2.originalError), stored)
      // A failed id answers at once, with the same error.
      const again = await queue.enqueueAndWait('plain', 'plain', { timeout: 5000 }).catch(e => e)
      assert.ok(again instanceof JobFailedError)
      assert.equal(again.originalError, err2.originalError)
    })

    test('invalid resultTTL rejects with a TypeError before anything is stored or looked up (10.6)', async t => {
      const storage = await storageFor(t)
      const updates: string[] = []
      const spied = spyOn(storage, {
        updateResultTTL: async (...args) => { updates.push(args[1]); return await storage.updateResultTTL(...args) }
      })
      const queue = await make(t, { storage: spied })
      const isTTLError = (err: any): boolean => err?.code === 'INVALID_ARGUMENT' && err.name === 'TypeError' &&
        String(err.message).includes('resultTTL must be a positive integer in milliseconds') &&
        err instanceof TypeError && err instanceof QueueError && err instanceof InvalidArgumentError
      for (const resultTTL of [0, -1, 1.5, NaN, Infinity, '10']) {
        await assert.rejects(queue.enqueue('e', 1, { resultTTL: resultTTL as number }), isTTLError, `enqueue ${String(resultTTL)}`)
        await assert.rejects(queue.enqueueAndWait('w', 1, { resultTTL: resultTTL as number, timeout: 1000 }), isTTLError, `enqueueAndWait ${String(resultTTL)}`)
        await assert.rejects(queue.enqueueMany([{ id: 'm', payload: 1, options: { resultTTL: resultTTL as number } }]), isTTLError, `enqueueMany ${String(resultTTL)}`)
        await assert.rejects(queue.updateResultTTL('e', resultTTL as number), isTTLError, `updateResultTTL ${String(resultTTL)}`)
      }
      assert.throws(() => new Queue({ storage, resultTTL: 0 }), isTTLError)
      for (const id of ['e', 'w', 'm']) assert.equal(await queue.getStatus(id), null)
      assert.deepEqual(updates, [], 'the storage was never asked')
      assert.equal(queue.waiting, 0)
    })

    test('blockTimeout is in seconds: blockTimeout 5 blocks 5000 ms in the storage (10.7)', async t => {
      const storage = await storageFor(t)
      const blockMs: number[] = []
      const seen = new Map<number, () => void>()
      const spied = spyOn(storage, {
        claim: (queue: string, workerId: string, options: BlockingClaimOptions) => {
          blockMs.push(options.blockMs)
          seen.get(blockMs.length)?.()
          return storage.claim(queue, workerId, options)
        }
      })
      for (const [blockTimeout, expected] of [[5, 5000], [undefined, 5000], [0.25, 250]] as const) {
        blockMs.length = 0
        const claimed = new Promise<void>(resolve => seen.set(1, resolve))
        const queue = await make(t, { storage: spied, ...(blockTimeout !== undefined && { blockTimeout }) }, async () => 'ok')
        await claimed
        assert.deepEqual(blockMs, [expected], `blockTimeout ${String(blockTimeout)}`)
        await queue.stop()
      }
      for (const bad of [0, -1, NaN, '5', 3_000_000]) {
        assert.throws(() => new Queue({ storage, blockTimeout: bad as number }), (err: any) => err instanceof InvalidArgumentError && err.message.includes('blockTimeout'))
      }
    })

    test('odd handler outcomes fail the attempt with a description and free the slot (13.3)', async t => {
      noUnhandledRejections(t)
      const logger = recordingLogger()
      const odd: Record<string, () => unknown> = {
        'null-proto': () => Object.create(null),
        'throwing-toString': () => ({ toString () { throw new Error('no string for you') } }),
        'throwing-message': () => Object.defineProperty(new Error('hidden'), 'message', { get () { throw new Error('no message') } }),
        'plain-object': () => ({ message: 'plain object', code: 'E_PLAIN' }),
        undefined: () => undefined,
        symbol: () => Symbol('s')
      }
      const queue = await make(t, { concurrency: 1, logger }, async (job: Job<string>) => {
        throw odd[job.payload]()
      })
      const expected: Record<string, RegExp> = {
        'null-proto': /non-Error value: an object without a prototype/,
        'throwing-toString': /non-Error value: \[object Object\]/,
        'throwing-message': /an Error whose message cannot be read/,
        'plain-object': /^plain object$/,
        undefined: /non-Error value: undefined/,
        symbol: /non-Error value: Symbol\(s\)/
      }
      for (const kind of Object.keys(odd)) {
        const err = await queue.enqueueAndWait(kind, kind, { maxAttempts: 2, timeout: 5000 }).catch(e => e)
        assert.ok(err instanceof JobFailedError, kind)
        const status = await queue.getStatus(kind)
        assert.equal(status?.state, 'failed', kind)
        assert.equal(status?.attempts, 2, `${kind}: retried as usual`)
        assert.match(status?.error?.message ?? '', expected[kind], kind)
      }
      assert.equal((await queue.getStatus('plain-object'))?.error?.code, 'E_PLAIN')
      assert.equal(queue.running, 0)
      // The slot is free: with concurrency 1, a good job still runs.
      queue.execute(async () => 'fine')
      assert.equal(await queue.enqueueAndWait('good', 'x', { timeout: 5000 }), 'fine')
    })

    test('a backoff function that throws falls back to the default backoff and says so (13.3)', async t => {
      noUnhandledRejections(t)
      const logger = recordingLogger()
      let runs = 0
      const queue = await make(t, {
        logger,
        backoff: () => { throw new Error('backoff bug') }
      }, async () => {
        if (++runs === 1) throw new Error('first attempt fails')
        return 'second attempt'
      })
      const failing = once(queue, 'failing')
      const result = queue.enqueueAndWait('b', 1, { timeout: 10_000 })
      await failing
      assert.equal(queue.running, 0)
      assert.equal(await result, 'second attempt')
      const warning = logger.calls.find(([level, , msg]) => level === 'warn' && /backoff function threw: backoff bug; the default backoff applies/.test(msg ?? ''))
      assert.ok(warning, JSON.stringify(logger.calls.map(c => c[2])))
    })

    test('a logger that throws never breaks the queue, also when afterExecution throws (13.5)', async t => {
      noUnhandledRejections(t)
      const boom = (): never => { throw new Error('logger down') }
      const logger = { debug: boom, info: boom, warn: boom, error: boom }
      const errors: Error[] = []
      const queue = await make(t, {
        logger,
        backoff: () => { throw new Error('backoff bug too') },
        afterExecution: () => { throw new Error('hook failed') }
      }, async (job: Job<number>) => {
        if (job.payload < 0) throw new Error('negative')
        return job.payload * 2
      }, errors)
      assert.equal(await queue.enqueueAndWait('ok', 21, { timeout: 5000 }), 42)
      await assert.rejects(queue.enqueueAndWait('bad', -1, { maxAttempts: 1, timeout: 5000 }), JobFailedError)
      assert.equal(queue.running, 0)
      assert.deepEqual(errors.map(e => e.message), ['hook failed', 'hook failed'])
      assert.equal((await queue.getStatus('bad'))?.error?.message, 'negative')
    })

    test('ill-formed ids and queue names are refused; nothing is stored (13.6)', async t => {
      const storage = await storageFor(t)
      const queue = await make(t, { storage }, async () => 'ran')
      const isBad = (err: unknown): boolean => err instanceof InvalidArgumentError && /well-formed/.test(err.message)
      for (const id of ['c\uD800', 'c\uDBFF', '\uDC00x', 'a\uDFFF\uD800b']) {
        await assert.rejects(queue.enqueue(id, 1), isBad, JSON.stringify(id))
        await assert.rejects(queue.enqueueAndWait(id, 1, { timeout: 1000 }), isBad)
        await assert.rejects(queue.enqueueMany([{ id: 'fine', payload: 1 }, { id, payload: 2 }]), isBad)
        await assert.rejects(queue.getStatus(id), isBad)
        await assert.rejects(queue.cancel(id), isBad)
        await assert.rejects(queue.updateResultTTL(id, 1000), isBad)
      }
      assert.equal(await queue.getStatus('fine'), null, 'a batch with one bad id stores nothing')
      assert.equal(await queue.getStatus('c\uFFFD'), null)
      // A well-formed id with an astral character is fine.
      assert.equal(await queue.enqueueAndWait('c\uD83D\uDE00', 1, { timeout: 5000 }), 'ran')
      for (const bad of ['q\uD800', 'q\uDBFF']) {
        assert.throws(() => new Queue({ storage, name: bad }), isBad)
        assert.throws(() => new Queue({ storage, workerId: bad }), isBad)
      }
    })

    test('an async callback-style handler that throws fails its job, no unhandled rejection (13.7)', async t => {
      noUnhandledRejections(t)
      const queue = await make(t)
      queue.execute(async (job: Job<number>, done: (err: Error | null, result?: number) => void) => {
        if (job.payload < 0) throw new Error('async callback threw')
        done(null, job.payload + 1)
      })
      const err = await queue.enqueueAndWait('throws', -1, { maxAttempts: 2, timeout: 5000 }).catch(e => e)
      assert.ok(err instanceof JobFailedError)
      assert.equal(err.message, "Job 'throws' failed: async callback threw")
      assert.equal((await queue.getStatus('throws'))?.attempts, 2)
      assert.equal(queue.running, 0)
      assert.equal(await queue.enqueueAndWait('fine', 1, { timeout: 5000 }), 2)
    })

    test('enqueueMany([]) answers [] (13.8)', async t => {
      const queue = await make(t)
      assert.deepEqual(await queue.enqueueMany([]), [])
      assert.deepEqual(await queue.enqueueMany([{ id: 'a', payload: 1 }]), [{ status: 'queued' }])
    })

    test('result deserialize failures and sparse batches are QueueErrors (13.11)', async t => {
      const [storage, another] = await storagePair(t)
      const name = `q-${randomUUID()}`
      const broken: Serde<unknown> = { serialize: v => Buffer.from(JSON.stringify(v)), deserialize: () => { throw new Error('cannot decode') } }
      // A consumer with the default serde completes the job; a producer whose resultSerde cannot decode reads it.
      await make(t, { name, storage: another }, async () => ({ ok: true }))
      const reader = await make(t, { name, storage, resultSerde: broken })
      const isSerde = (err: unknown): boolean => err instanceof SerdeError && err instanceof QueueError && err.code === 'SERDE_ERROR' &&
        /Cannot deserialize the result of job 'r' .*: cannot decode/.test(err.message)
      await assert.rejects(reader.enqueueAndWait('r', 1, { timeout: 5000 }), isSerde)
      await assert.rejects(reader.getStatus('r'), isSerde)
      await assert.rejects(reader.enqueue('r', 1), isSerde)
      await assert.rejects(reader.enqueueAndWait('r', 1, { timeout: 5000 }), isSerde, 'from the stored outcome too')
      // eslint-disable-next-line no-sparse-arrays
      const sparse = [{ id: 's1', payload: 1 }, , { id: 's3', payload: 3 }] as any
      await assert.rejects(reader.enqueueMany(sparse), (err: unknown) => err instanceof InvalidArgumentError && /jobs\[1\]/.test((err as Error).message))
      assert.equal(await reader.getStatus('s1'), null)
      assert.equal(reader.waiting, 0)
    })

    test('serdes never accept a job that cannot be decoded (13.12)', async t => {
      const msgpack = await make(t, { payloadSerde: new MsgpackSerde(), resultSerde: new MsgpackSerde() }, async job => job.payload)
      const refused: Array<[string, unknown]> = [
        ['object-keyed map', new Map<unknown, number>([[{ a: 1 }, 2]])],
        ['number-keyed map', { nested: new Map([[1, 2]]) }],
        ['nested function', { f: () => 1 }],
        ['symbol', [Symbol('s')]]
      ]
      for (const [label, payload] of refused) {
        await assert.rejects(msgpack.enqueue(label, payload), InvalidArgumentError, label)
        assert.equal(await msgpack.getStatus(label), null, label)
      }
      // What MessagePack keeps comes back; a Map with string keys comes back as an object (documented).
      const kept = { n: NaN, u: undefined, big: 10n, set: new Set([1]), map: new Map([['k', 1]]), at: new Date(0) }
      const back = await msgpack.enqueueAndWait('kept', kept, { timeout: 5000 })
      assert.deepEqual(back, { ...kept, map: { k: 1 } })

      const json = await make(t, {}, async job => job.payload)
      const jsonRefused: Array<[string, unknown]> = [
        ['nested function', { a: { f: () => 1 } }],
        ['NaN', { n: NaN }],
        ['Infinity', [Infinity]],
        ['undefined in an array', [1, undefined]],
        ['map', { m: new Map([['a', 1]]) }],
        ['set', new Set([1])],
        ['typed array', { bytes: new Uint8Array([1]) }]
      ]
      for (const [label, payload] of jsonRefused) {
        await assert.rejects(json.enqueue(label, payload), InvalidArgumentError, label)
        assert.equal(await json.getStatus(label), null, label)
      }
      // The one documented conversion: an undefined property is left out.
      assert.deepEqual(await json.enqueueAndWait('u', { a: 1, b: undefined }, { timeout: 5000 }), { a: 1 })
    })

    test('a producer and a consumer with different serdes: the job fails with a SerdeError (decided)', async t => {
      const [storage, another] = await storagePair(t)
      const name = `q-${randomUUID()}`
      let runs = 0
      const consumer = await make(t, { name, storage: another, payloadSerde: new MsgpackSerde() }, async () => { runs++ })
      const failed = once(consumer, 'failed')
      const producer = await make(t, { name, storage })
      const err = await producer.enqueueAndWait('mismatch', { a: 1 }, { timeout: 5000 }).catch(e => e)
      assert.ok(err instanceof JobFailedError)
      assert.match(err.message, /Cannot deserialize the payload of job 'mismatch' \(enqueued with another payloadSerde\?\)/)
      const [, failure] = await failed
      assert.ok(failure instanceof MaxRetriesError && failure.lastError instanceof SerdeError)
      assert.equal(runs, 0)
    })

    test('a consumer survives a mix of every bad outcome; good jobs after it all complete (13)', async t => {
      noUnhandledRejections(t)
      const errors: Error[] = []
      const boom = (): never => { throw new Error('logger down') }
      type Done = (err: Error | null | undefined, result?: unknown) => void
      const bad: Record<string, (job: Job<unknown>, done: Done) => unknown> = {
        nullProto: () => { throw Object.create(null) },
        // eslint-disable-next-line no-throw-literal -- the point: a thrown non-Error
        toStringThrows: () => { throw { toString () { throw new Error('x') } } },
        messageThrows: () => { throw Object.defineProperty(new Error('x'), 'message', { get () { throw new Error('y') } }) },
        asyncCallback: async () => { throw new Error('async callback') },
        doneWithObject: (_job, done) => { done({ message: 'object', code: 'E_OBJ' } as unknown as Error) },
        unserializable: (_job, done) => { done(null, { f: () => 1 }) }
      }
      const queue = await make(t, {
        concurrency: 2,
        logger: { debug: boom, info: boom, warn: boom, error: boom },
        backoff: () => { throw new Error('backoff bug') },
        afterExecution: ctx => { if (ctx.id === 'hook') throw new Error('hook failed') }
      }, undefined, errors)
      queue.execute((job: Job<any>, done: Done) => {
        const handler = bad[job.payload as string]
        if (handler !== undefined) return handler(job, done)
        done(null, `good ${String(job.payload)}`)
      })
      const badOutcomes = await Promise.allSettled(Object.keys(bad).map(kind => queue.enqueueAndWait(kind, kind, { maxAttempts: 1, timeout: 10_000 })))
      for (const outcome of badOutcomes) {
        assert.equal(outcome.status, 'rejected')
        assert.ok((outcome as PromiseRejectedResult).reason instanceof JobFailedError, String((outcome as PromiseRejectedResult).reason))
      }
      assert.equal(await queue.enqueueAndWait('hook', 'h', { timeout: 10_000 }), 'good h')
      const good = await Promise.all(Array.from({ length: 20 }, (_, i) => queue.enqueueAndWait(`good-${i}`, i, { timeout: 10_000 })))
      assert.deepEqual(good, Array.from({ length: 20 }, (_, i) => `good ${i}`))
      assert.equal(queue.running, 0)
      assert.equal(queue.waiting, 0)
      assert.deepEqual(errors.map(e => e.message), ['hook failed'])
    })
  })
}
