import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { MemoryStorage, MaxRetriesError, Queue, Reaper, TimeoutError, JobFailedError, type Job, type Notice } from '../src/index.ts'
import { backoffDelay } from '../src/options.ts'
import { recordingLogger } from './lifecycle-suite.ts'
import { deferred, queueTests } from './queue-suite.ts'

queueTests('memory', async () => {
  const storage = new MemoryStorage()
  return { storage, another: () => storage, cleanup: async () => {} }
})

/** Lets pending promise callbacks run (mock timers do not run microtasks by themselves). */
async function flush (rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve()
}

test('backoff: exponential doubles up to maxDelay, jitter only shortens, fixed and functions work', () => {
  const exp = { type: 'exponential' as const, delay: 100, maxDelay: 1000, jitter: 0.5 }
  const err = new Error('x')
  assert.deepEqual([1, 2, 3, 4, 5].map(n => backoffDelay(exp, n, err, () => 0)), [100, 200, 400, 800, 1000])
  assert.deepEqual([1, 2, 3].map(n => backoffDelay(exp, n, err, () => 1)), [50, 100, 200])
  assert.equal(backoffDelay({ type: 'fixed', delay: 250 }, 7, err), 250)
  assert.equal(backoffDelay((attempt) => attempt * 1000, 3, err), 3000)
  assert.equal(backoffDelay(() => NaN, 1, err, () => 0), 1000, 'NaN: the default backoff')
})

test('a failed attempt waits its backoff as a failing job before the retry runs', async t => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 })
  const storage = new MemoryStorage()
  const queue = new Queue<number, string>({ storage, maxRetries: 3, reaper: false, backoff: attempt => attempt * 10_000 })
  t.after(() => queue.stop())
  const runs: number[] = []
  queue.execute(async job => {
    runs.push(Date.now())
    if (job.attempts < 3) throw new Error(`attempt ${job.attempts}`)
    return 'ok'
  })
  await queue.start()
  const result = queue.enqueueAndWait('j', 1, { timeout: 600_000 })
  await once(queue, 'failing')
  assert.equal((await queue.getStatus('j'))?.state, 'failing')
  t.mock.timers.tick(9_999)
  await flush()
  assert.equal(runs.length, 1, 'no retry before the delay')
  t.mock.timers.tick(1)
  await once(queue, 'failing')
  assert.equal(runs.length, 2)
  t.mock.timers.tick(20_000)
  assert.equal(await result, 'ok')
  assert.deepEqual(runs.map(at => at - runs[0]), [0, 10_000, 30_000])
})

test('a delayed job runs once its delay has passed', async t => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 })
  const queue = new Queue<number, number>({ storage: new MemoryStorage(), reaper: false })
  t.after(() => queue.stop())
  const ranAt: number[] = []
  queue.execute(async job => { ranAt.push(Date.now()); return job.payload })
  await queue.start()
  const result = queue.enqueueAndWait('d', 5, { delay: 60_000, timeout: 600_000 })
  await once(queue, 'enqueued')
  assert.equal((await queue.getStatus('d'))?.state, 'delayed')
  t.mock.timers.tick(59_999)
  await flush()
  assert.equal(ranAt.length, 0)
  t.mock.timers.tick(1)
  assert.equal(await result, 5)
  assert.deepEqual(ranAt, [1_060_000])
})

test('leases are extended while a long handler runs (within its own run-time limit), so the reaper never takes it', async t => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 })
  const queue = new Queue<number, string>({ storage: new MemoryStorage(), visibilityTimeout: 1000 })
  t.after(() => queue.stop())
  const gate = deferred()
  const started = deferred()
  let runs = 0
  queue.execute(async () => { runs++; started.resolve(); await gate.promise; return 'long' })
  const stalled: string[] = []
  queue.on('stalled', id => stalled.push(id))
  await queue.start()
  const result = queue.enqueueAndWait('long', 1, { timeout: 600_000, visibilityTimeout: 600_000 })
  await started.promise
  for (let i = 0; i < 100; i++) { // 100 × 100 ms = ten lease periods
    t.mock.timers.tick(100)
    await flush()
  }
  assert.deepEqual(stalled, [])
  assert.equal((await queue.getStatus('long'))?.state, 'processing')
  gate.resolve()
  assert.equal(await result, 'long')
  assert.equal(runs, 1)
})

test('the run-time limit: the signal aborts at visibilityTimeout, not before; the reaper recovers the job within its interval', async t => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 })
  const queue = new Queue<number, string>({ storage: new MemoryStorage(), visibilityTimeout: 1000, interval: 250, maxRetries: 1 })
  t.after(() => queue.stop())
  const signals: AbortSignal[] = []
  const started = deferred()
  queue.execute(async job => {
    signals.push(job.signal)
    started.resolve()
    return await new Promise<string>(() => {})
  })
  const stalled: number[] = []
  queue.on('stalled', () => stalled.push(Date.now()))
  await queue.start()
  const result = queue.enqueueAndWait('hung', 1, { timeout: 600_000 })
  await started.promise
  t.mock.timers.tick(999)
  await flush()
  assert.equal(signals[0].aborted, false)
  assert.equal(queue.running, 1)
  t.mock.timers.tick(1)
  await flush()
  assert.equal(signals[0].aborted, true)
  assert.equal((signals[0].reason as Error).message, "Job 'hung' timed out after 1000ms")
  assert.equal(queue.running, 0)
  for (let i = 0; i < 5 && stalled.length === 0; i++) {
    t.mock.timers.tick(50)
    await flush()
  }
  assert.equal(stalled.length, 1)
  assert.ok(stalled[0] <= 1_001_000 + 250, 'recovered within one reaper interval of the limit')
  // Out of attempts (maxRetries 1): the stall fails the job.
  await assert.rejects(result, /failed/)
})

test('the reaper recovers a job whose worker died, and fails it after maxStalls', async t => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 })
  const storage = new MemoryStorage()
  await storage.connect()
  t.after(() => storage.disconnect())
  const name = 'stalls'
  const payload = Buffer.from('1')
  await storage.enqueue(name, [
    { id: 'orphan', payload, maxAttempts: 3, resultTTL: 60_000, delay: 0 },
    { id: 'doomed', payload, maxAttempts: 3, resultTTL: 60_000, delay: 0 }
  ])
  // A worker claims both and dies without ever settling or renewing.
  await storage.claim(name, 'dead-worker', { max: 2, leaseMs: 1000, blockMs: 0 })
  const reaper = new Reaper({ storage, name, visibilityTimeout: 1000, maxStalls: 1, leaderElection: { enabled: false } })
  t.after(() => reaper.stop())
  const stalled: string[] = []
  reaper.on('stalled', id => stalled.push(id))
  await reaper.start()
  // Scans run every 500 ms; step so each scan's promise settles before the next fires.
  for (let i = 0; i < 3; i++) { t.mock.timers.tick(500); await flush() }
  assert.deepEqual(stalled.sort(), ['doomed', 'orphan'])
  // A live consumer picks 'orphan' up; 'doomed' is claimed by another dying worker and stalls again.
  const [again] = await storage.claim(name, 'dead-again', { max: 1, leaseMs: 1000, blockMs: 0 })
  assert.equal(again.attempts, 2)
  const failed = once(reaper, 'failed')
  for (let i = 0; i < 3; i++) { t.mock.timers.tick(500); await flush() }
  const [failedId, err] = await failed
  assert.equal(failedId, again.id)
  assert.match(err.message, /stalled/)
  assert.ok(err instanceof MaxRetriesError, 'every failed event carries a MaxRetriesError')
  assert.equal(err.attempts, 2)
  assert.equal((await storage.getStatus(name, again.id))?.state, 'failed')
})

test('leader election: one reaper leads; when it stops another takes over', async t => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 })
  const storage = new MemoryStorage()
  const options = { storage, name: 'le', leaderElection: { enabled: true, lockTTL: 3000, renewalInterval: 1000, acquireRetryInterval: 500 } }
  const a = new Reaper(options)
  const b = new Reaper(options)
  t.after(() => Promise.all([a.stop(), b.stop()]))
  const acquiredA = once(a, 'leadershipAcquired')
  await a.start()
  await acquiredA
  await b.start()
  for (let i = 0; i < 10; i++) { t.mock.timers.tick(500); await flush() }
  assert.equal(a.isLeader, true)
  assert.equal(b.isLeader, false)
  const acquiredB = once(b, 'leadershipAcquired')
  await a.stop()
  t.mock.timers.tick(500)
  await acquiredB
  assert.equal(b.isLeader, true)
})

test('leader election: a leader whose renewal fails (storage error) reports it, loses leadership, stops scanning, and leads again later', async t => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 })
  const storage = new MemoryStorage()
  const acquire = storage.acquireLock.bind(storage)
  let down = false
  storage.acquireLock = async (name, owner, ttl) => {
    if (down) throw new Error('lock storage down')
    return await acquire(name, owner, ttl)
  }
  let scans = 0
  const recover = storage.recoverStalled.bind(storage)
  storage.recoverStalled = async (...args) => { scans++; return await recover(...args) }
  const reaper = new Reaper({ storage, name: 'renew', interval: 100, leaderElection: { enabled: true, lockTTL: 3000, renewalInterval: 1000, acquireRetryInterval: 500 } })
  t.after(() => reaper.stop())
  const errors: Error[] = []
  reaper.on('error', err => errors.push(err))
  await reaper.start()
  assert.equal(reaper.isLeader, true)
  down = true
  // Not events.once: it would reject on the `error` event this test expects.
  const lost = new Promise<void>(resolve => reaper.once('leadershipLost', () => resolve()))
  t.mock.timers.tick(1000)
  await lost
  assert.equal(reaper.isLeader, false)
  assert.deepEqual(errors.map(e => e.message), ['lock storage down'])
  const before = scans
  for (let i = 0; i < 10; i++) { t.mock.timers.tick(100); await flush() }
  assert.equal(scans, before, 'a follower does not scan')
  down = false
  const acquired = once(reaper, 'leadershipAcquired')
  t.mock.timers.tick(500)
  await acquired
  assert.equal(reaper.isLeader, true)
})

test('10,000 enqueueAndWait calls (successes, failures, timeouts) leave no waiter, listener, subscription or timer', async t => {
  const storage = new MemoryStorage()
  let subscriptions = 0
  const subscribe = storage.subscribe.bind(storage)
  storage.subscribe = async (queue, listener) => {
    subscriptions++
    const unsubscribe = await subscribe(queue, listener)
    return async () => { subscriptions--; await unsubscribe() }
  }
  const queue = new Queue<number, number>({ storage, concurrency: 50, reaper: false, maxRetries: 1 })
  t.after(() => queue.stop())
  queue.execute(async (job: Job<number>) => {
    if (job.payload % 3 === 1) throw new Error('odd one')
    if (job.payload % 3 === 2) await new Promise(resolve => setTimeout(resolve, 20))
    return job.payload
  })
  await queue.start()
  await queue.enqueueAndWait('warm-up', 0, { timeout: 5000 })
  const timersBefore = process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
  const listenersBefore = queue.eventNames().map(e => queue.listenerCount(e))
  const subscriptionsBefore = subscriptions
  const outcomes = { ok: 0, failed: 0, timeout: 0 }
  for (let batch = 0; batch < 100; batch++) {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const n = batch * 100 + i
      try {
        await queue.enqueueAndWait(`call-${n}`, n, { timeout: n % 3 === 2 ? 1 : 5000 })
        outcomes.ok++
      } catch (err) {
        if (err instanceof TimeoutError) outcomes.timeout++
        else if (err instanceof JobFailedError) outcomes.failed++
        else throw err
      }
    }))
  }
  assert.equal(outcomes.ok + outcomes.failed + outcomes.timeout, 10_000)
  assert.ok(outcomes.ok > 3000 && outcomes.failed > 3000 && outcomes.timeout > 0, JSON.stringify(outcomes))
  // Let the slow handlers of timed-out calls finish so their own timers are gone too.
  while (queue.running > 0) await once(queue, 'completed')
  assert.equal(queue.waiting, 0)
  assert.equal(subscriptions, subscriptionsBefore)
  assert.deepEqual(queue.eventNames().map(e => queue.listenerCount(e)), listenersBefore)
  assert.ok(process.getActiveResourcesInfo().filter(r => r === 'Timeout').length <= timersBefore)
})

/** A MemoryStorage whose `done`/`abort` notices are dropped, as if the subscription was down. */
function lossyStorage (): { storage: MemoryStorage, gap: () => void } {
  const storage = new MemoryStorage()
  const listeners = new Set<(notice: Notice) => void>()
  const subscribe = storage.subscribe.bind(storage)
  storage.subscribe = async (queue, listener, type) => {
    listeners.add(listener)
    const unsubscribe = await subscribe(queue, () => {}, type) // every real notice is lost
    return async () => { listeners.delete(listener); await unsubscribe() }
  }
  return { storage, gap: () => { for (const listener of listeners) listener({ type: 'gap' }) } }
}

test('a gap notice makes waiters check the job: a lost done notice does not hang enqueueAndWait', async t => {
  const { storage, gap } = lossyStorage()
  const queue = new Queue<number, number>({ storage, reaper: false })
  t.after(() => queue.stop())
  queue.execute(async job => job.payload * 2)
  await queue.start()
  const completed = once(queue, 'completed')
  const result = queue.enqueueAndWait('lost', 21, { timeout: 60_000 })
  await completed
  assert.equal(queue.waiting, 1, 'the notice was lost: the call still waits')
  gap()
  assert.equal(await result, 42)
  assert.equal(queue.waiting, 0)
})

test('a cancel request whose abort notice was lost reaches the handler through the lease heartbeat', async t => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const { storage } = lossyStorage()
  const queue = new Queue<number, string>({ storage, reaper: false, visibilityTimeout: 3000 })
  t.after(() => queue.stop())
  const started = deferred()
  queue.execute(async job => {
    started.resolve()
    await new Promise(resolve => job.signal.addEventListener('abort', resolve))
    return 'stopped'
  })
  await queue.start()
  const cancelled = once(queue, 'cancelled')
  await queue.enqueue('long', 1)
  await started.promise
  assert.deepEqual(await queue.cancel('long', { running: true }), { status: 'cancelled' })
  t.mock.timers.tick(1000) // one heartbeat (a third of the lease)
  await cancelled
  assert.equal((await queue.getStatus('long'))?.state, 'cancelled')
})

test('a consumer that fails to start after execute() reaches `error` and the logger; the next start() tries it again', async t => {
  const storage = new MemoryStorage()
  const subscribe = storage.subscribe.bind(storage)
  let refusals = 1
  storage.subscribe = async (queue, listener, type) => {
    if (type === 'abort' && refusals-- > 0) throw new Error('subscription refused')
    return await subscribe(queue, listener, type)
  }
  const logger = recordingLogger()
  const queue = new Queue<number, number>({ storage, logger })
  t.after(() => queue.stop())
  await queue.start()
  const error = once(queue, 'error')
  queue.execute(async job => job.payload + 1)
  const [err] = await error
  assert.equal(err.message, 'subscription refused')
  assert.ok(logger.lines.some(l => l.level === 'error' && l.bindings.component === 'queue' && l.msg === 'Starting the consumer failed'))
  await queue.start()
  assert.equal(await queue.enqueueAndWait('after', 1, { timeout: 5000 }), 2)
})

test('memory: an idle sequential enqueueAndWait through two Queues needs one tick (the producer\'s batch) and no other (the consumer settles its last job at once)', async t => {
  const storage = new MemoryStorage()
  const producer = new Queue<number, number>({ storage, reaper: false })
  const consumer = new Queue<number, number>({ storage, reaper: false, concurrency: 50 })
  t.after(async () => { await producer.stop(); await consumer.stop() })
  consumer.execute(async job => job.payload * 2)
  await consumer.start()
  await producer.start()
  assert.equal(await producer.enqueueAndWait('warm', 1, { timeout: 5000 }), 2) // subscribed, consumer parked
  let answer: number | undefined
  const call = producer.enqueueAndWait('seq', 21, { timeout: 5000 }).then(value => { answer = value })
  // The producer's batch waits one tick (queued before this one); after it, promise callbacks
  // only: a process.nextTick or a timer queued on the way would run after these.
  await new Promise<void>(resolve => process.nextTick(resolve))
  await flush(100)
  assert.equal(answer, 42)
  await call
})
