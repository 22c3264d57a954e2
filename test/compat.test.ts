import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import * as peer from '@platformatic/job-queue'
import * as relayq from 'relayq'
import { deferred } from './queue-suite.ts'

/** Public members (methods and accessors) of a class, by name, without the constructor and EventEmitter's. */
function members (cls: { prototype: object }): string[] {
  return Object.getOwnPropertyNames(cls.prototype).filter(name => name !== 'constructor').sort()
}

test('every export of @platformatic/job-queue exists in relayq by the same name (PgStorage aside)', () => {
  // PgStorage is a PostgreSQL backend relayq does not offer; everything else must switch by import alone.
  const theirs = Object.keys(peer).filter(name => name !== 'PgStorage')
  const missing = theirs.filter(name => !(name in relayq))
  assert.deepEqual(missing, [])
})

test('Queue and Reaper offer every public method and accessor of theirs', () => {
  for (const [ours, theirs] of [[relayq.Queue, peer.Queue], [relayq.Reaper, peer.Reaper]] as const) {
    const have = new Set(members(ours))
    assert.deepEqual(members(theirs).filter(name => !have.has(name)), [], ours.name)
  }
})

test('a program written against the @platformatic/job-queue API runs unchanged on relayq', async t => {
  const { Queue, MemoryStorage, createJsonSerde, contentId, generateId, JobQueueError, TimeoutError } = relayq
  const contexts: any[] = []
  const queue = new Queue<{ a: number, b: number }, number>({
    storage: new MemoryStorage(),
    name: 'compat',
    workerId: 'worker-1',
    concurrency: 2,
    maxRetries: 2,
    visibilityTimeout: 30_000,
    processingQueueTTL: 600_000,
    resultTTL: 60_000,
    blockTimeout: 1,
    payloadSerde: createJsonSerde(),
    resultSerde: createJsonSerde(),
    afterExecution: ctx => { contexts.push({ ...ctx }) }
  })
  t.after(() => queue.stop())
  const gate = deferred()
  queue.execute((job, done) => {
    if (job.id === 'slow') {
      gate.promise.then(() => done(null, 0), done)
      return
    }
    done(null, job.payload.a + job.payload.b)
  })
  const started = once(queue, 'started')
  await queue.start()
  await started

  const id = contentId({ a: 1, b: 2 })
  assert.equal(id, contentId({ a: 1, b: 2 }))
  assert.match(generateId(), /^[0-9a-f-]{36}$/)
  assert.equal(await queue.enqueueAndWait(id, { a: 1, b: 2 }, { timeout: 5000 }), 3)
  assert.deepEqual(await queue.enqueue(id, { a: 1, b: 2 }), { status: 'completed', result: 3 })
  assert.equal(await queue.getResult(id), 3)
  const status = await queue.getStatus(id)
  assert.equal(status?.state, 'completed')
  assert.equal(status?.attempts, 1)
  assert.deepEqual(await queue.updateResultTTL(id, 120_000), { status: 'updated' })

  const waiting = queue.enqueueAndWait('slow', { a: 0, b: 0 }, { timeout: 20, maxAttempts: 1, resultTTL: 1000 })
  await assert.rejects(waiting, (err: Error) => err instanceof TimeoutError && err instanceof JobQueueError)
  assert.deepEqual(await queue.enqueue('slow', { a: 0, b: 0 }), { status: 'duplicate', existingState: 'processing' })
  assert.deepEqual(await queue.cancel('slow'), { status: 'processing' })
  gate.resolve()
  assert.deepEqual(await queue.cancel('missing'), { status: 'not_found' })

  const context = contexts.find(c => c.id === id)
  assert.equal(context.status, 'completed')
  assert.equal(context.result, 3)
  assert.equal(context.workerId, 'worker-1')
  assert.equal(context.maxAttempts, 2)
  assert.equal(typeof context.createdAt, 'number')
  assert.ok(context.finishedAt >= context.startedAt && context.durationMs === context.finishedAt - context.startedAt)
})
