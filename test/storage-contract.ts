import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { describe, test, type TestContext } from 'node:test'
import type { AdminStorage, ClaimedJob, NewJob, Notice, SettleResult, Storage } from '../src/storage/types.ts'

/** A storage made for one test, and how to remove everything it created. */
export interface StorageHandle {
  storage: Storage
  /**
   * Another storage instance over the same data, as a second process would open it (its own
   * connections and subscriptions); a backend whose data lives in one process returns `storage`.
   * Instances made here are cleaned up by `cleanup`.
   */
  another: () => Storage
  cleanup: () => Promise<void>
}

/**
 * Makes a connected-ready (not yet connected) storage whose clock is `clock`. Backends whose
 * expiry runs on their own timer (Redis PEXPIRE) may ignore the clock for expiry only.
 */
export type StorageFactory = (clock: () => number) => Promise<StorageHandle>

/** A clock tests move by hand: leases, delays and locks are driven without waiting. */
export class FakeClock {
  now = Date.now()
  readonly read = (): number => this.now
  advance (ms: number): void { this.now += ms }
}

export function job (id: string, payload = `payload of ${id}`, overrides: Partial<NewJob> = {}): NewJob {
  return { id, payload: Buffer.from(payload), maxAttempts: 3, resultTTL: 60_000, delay: 0, ...overrides }
}

/** The jobs a settle claimed, whichever shape it answered in (see Storage.settle). */
export function claimedBy (result: SettleResult | ClaimedJob[]): ClaimedJob[] {
  return Array.isArray(result) ? result : result.jobs
}

const LEASE = 30_000
const claimNow = { max: 10, leaseMs: LEASE, blockMs: 0 }

/** Waits until `predicate` holds, checking every 10 ms, failing after `timeout` ms. For state only another party changes. */
export async function until (predicate: () => boolean | Promise<boolean>, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeout} ms`)
    await delay(10)
  }
}

/** The conformance suite every backend must pass. */
export function storageContract (name: string, factory: StorageFactory): void {
  describe(`Storage contract: ${name}`, () => {
    async function setup (t: TestContext): Promise<{ storage: Storage, clock: FakeClock, q: string, another: () => Promise<Storage> }> {
      const clock = new FakeClock()
      const handle = await factory(clock.read)
      const { storage, cleanup } = handle
      await storage.connect()
      t.after(async () => {
        await storage.disconnect()
        await cleanup()
      })
      const another = async (): Promise<Storage> => {
        const other = handle.another()
        await other.connect()
        t.after(() => other.disconnect())
        return other
      }
      return { storage, clock, q: `q-${randomUUID()}`, another }
    }

    function notices (t: TestContext, storage: Storage, q: string): Promise<Notice[]> {
      const seen: Notice[] = []
      return storage.subscribe(q, n => seen.push(n)).then(unsubscribe => {
        t.after(unsubscribe)
        return seen
      })
    }

    /** A job its enqueuer waits for: its `done` notice must reach the enqueuing instance. */
    const awaited = (id: string, payload?: string, overrides: Partial<NewJob> = {}): NewJob => job(id, payload, { notify: true, ...overrides })

    test('enqueue stores a queued job and reports its status', async t => {
      const { storage, clock, q } = await setup(t)
      assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'queued' }])
      const status = await storage.getStatus(q, 'a')
      assert.equal(status?.state, 'queued')
      assert.equal(status?.attempts, 0)
      assert.equal(status?.maxAttempts, 3)
      assert.ok(Math.abs((status?.createdAt ?? 0) - clock.now) < 1000)
      assert.equal(await storage.getStatus(q, 'missing'), null)
    })

    test('a duplicate id is reported with its state and stores nothing', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, [job('a', 'first')])
      const outcomes = await storage.enqueue(q, [job('a', 'second'), job('b'), job('b', 'again')])
      assert.deepEqual(outcomes, [{ status: 'duplicate', state: 'queued' }, { status: 'queued' }, { status: 'duplicate', state: 'queued' }])
      const claimed = await storage.claim(q, 'w', claimNow)
      assert.deepEqual(claimed.map(j => [j.id, j.payload.toString()]), [['a', 'first'], ['b', 'payload of b']])
      assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'duplicate', state: 'processing' }])
    })

    test('claim is FIFO, honours max, counts attempts and leases', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, ['1', '2', '3'].map(id => job(id)))
      const first = await storage.claim(q, 'w', { ...claimNow, max: 2 })
      assert.deepEqual(first.map(j => j.id), ['1', '2'])
      assert.equal(first[0].attempts, 1)
      assert.equal(first[0].maxAttempts, 3)
      assert.equal(first[0].resultTTL, 60_000)
      assert.equal((await storage.getStatus(q, '1'))?.state, 'processing')
      assert.deepEqual((await storage.claim(q, 'w', claimNow)).map(j => j.id), ['3'])
      assert.deepEqual(await storage.claim(q, 'w', claimNow), [])
    })

    test('payload bytes round-trip exactly, including empty and binary ones', async t => {
      const { storage, q } = await setup(t)
      const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
      await storage.enqueue(q, [{ ...job('bin'), payload: binary }, { ...job('empty'), payload: Buffer.alloc(0) }])
      const claimed = await storage.claim(q, 'w', claimNow)
      assert.ok(binary.equals(claimed[0].payload))
      assert.equal(claimed[1].payload.length, 0)
    })

    test('a blocking claim wakes when a job arrives', async t => {
      const { storage, q } = await setup(t)
      const waiting = storage.claim(q, 'w', { ...claimNow, blockMs: 5000 })
      await storage.enqueue(q, [job('late')])
      assert.deepEqual((await waiting).map(j => j.id), ['late'])
    })

    test('a blocking claim ends empty on timeout and on abort', async t => {
      const { storage, q } = await setup(t)
      assert.deepEqual(await storage.claim(q, 'w', { ...claimNow, blockMs: 50 }), [])
      const controller = new AbortController()
      const waiting = storage.claim(q, 'w', { ...claimNow, blockMs: 10_000, signal: controller.signal })
      controller.abort()
      assert.deepEqual(await waiting, [])
      // The aborted claim took nothing: a job enqueued now is still there for the next claim.
      await storage.enqueue(q, [job('after')])
      assert.deepEqual((await storage.claim(q, 'w', claimNow)).map(j => j.id), ['after'])
    })

    test('complete stores the result once, notifies, and answers later enqueues from it', async t => {
      const { storage, q } = await setup(t)
      const seen = await notices(t, storage, q)
      await storage.enqueue(q, [awaited('a')])
      const [a] = await storage.claim(q, 'w', claimNow)
      await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: a.attempts, result: Buffer.from('42'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      const status = await storage.getStatus(q, 'a')
      assert.equal(status?.state, 'completed')
      assert.equal(status?.result?.toString(), '42')
      assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'completed', result: Buffer.from('42') }])
      await until(() => seen.length > 0)
      const notice = seen[0]
      assert.equal(notice.type, 'done')
      assert.equal(notice.id, 'a')
      assert.equal(notice.type === 'done' && notice.state, 'completed')
      if (notice.type === 'done' && notice.result !== undefined) assert.equal(notice.result.toString(), '42')
      // A second completion of the same attempt changes nothing.
      await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: a.attempts, result: Buffer.from('43'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      assert.equal((await storage.getStatus(q, 'a'))?.result?.toString(), '42')
    })

    test('settle claims the next jobs in the same call', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, ['a', 'b', 'c'].map(id => job(id)))
      const [a] = await storage.claim(q, 'w', { ...claimNow, max: 1 })
      const next = claimedBy(await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: a.attempts, result: Buffer.from('1'), ttl: 60_000 }], { max: 5, leaseMs: LEASE }))
      assert.deepEqual(next.map(j => j.id), ['b', 'c'])
      assert.equal((await storage.getStatus(q, 'a'))?.state, 'completed')
    })

    test('fail stores the error and answers later enqueues with it', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, [job('a')])
      const [a] = await storage.claim(q, 'w', claimNow)
      await storage.settle(q, 'w', [{ type: 'fail', id: 'a', attempt: a.attempts, error: Buffer.from('{"message":"no"}'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      const status = await storage.getStatus(q, 'a')
      assert.equal(status?.state, 'failed')
      assert.equal(status?.error?.toString(), '{"message":"no"}')
      assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'failed', error: Buffer.from('{"message":"no"}') }])
    })

    test('retry waits out its delay as a failing job, then runs again as attempt 2', async t => {
      const { storage, clock, q } = await setup(t)
      await storage.enqueue(q, [job('a')])
      const [a] = await storage.claim(q, 'w', claimNow)
      await storage.settle(q, 'w', [{ type: 'retry', id: 'a', attempt: 1, error: Buffer.from('e1'), delay: 5000 }], { max: 0, leaseMs: LEASE })
      assert.equal(a.attempts, 1)
      const status = await storage.getStatus(q, 'a')
      assert.equal(status?.state, 'failing')
      assert.equal(status?.error?.toString(), 'e1')
      assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'duplicate', state: 'failing' }])
      assert.deepEqual(await storage.claim(q, 'w', claimNow), [])
      clock.advance(5001)
      const [again] = await storage.claim(q, 'w', claimNow)
      assert.equal(again?.id, 'a')
      assert.equal(again.attempts, 2)
    })

    test('release hands a job back to the head of the queue without counting the attempt', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, [job('a'), job('b')])
      const [a] = await storage.claim(q, 'w', { ...claimNow, max: 1 })
      await storage.settle(q, 'w', [{ type: 'release', id: 'a', attempt: a.attempts }], { max: 0, leaseMs: LEASE })
      assert.equal((await storage.getStatus(q, 'a'))?.state, 'queued')
      const [first] = await storage.claim(q, 'w', { ...claimNow, max: 1 })
      assert.equal(first.id, 'a')
      assert.equal(first.attempts, 1)
    })

    test('a settlement for another attempt or from another worker is ignored (fencing)', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, [job('a')])
      await storage.claim(q, 'w', claimNow)
      await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: 7, result: Buffer.from('x'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      assert.equal((await storage.getStatus(q, 'a'))?.state, 'processing')
      await storage.settle(q, 'w', [{ type: 'complete', id: 'nope', attempt: 1, result: Buffer.from('x'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      assert.equal(await storage.getStatus(q, 'nope'), null)
      // The right attempt from a worker that does not hold the job is ignored too.
      await storage.settle(q, 'intruder', [{ type: 'complete', id: 'a', attempt: 1, result: Buffer.from('x'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      assert.equal((await storage.getStatus(q, 'a'))?.state, 'processing')
    })

    test('a delayed job is claimable only once due', async t => {
      const { storage, clock, q } = await setup(t)
      await storage.enqueue(q, [job('later', 'p', { delay: 10_000 }), job('now')])
      assert.equal((await storage.getStatus(q, 'later'))?.state, 'delayed')
      assert.deepEqual(await storage.enqueue(q, [job('later')]), [{ status: 'duplicate', state: 'delayed' }])
      assert.deepEqual((await storage.claim(q, 'w', claimNow)).map(j => j.id), ['now'])
      clock.advance(9000)
      assert.deepEqual(await storage.claim(q, 'w', claimNow), [])
      clock.advance(1001)
      assert.deepEqual((await storage.claim(q, 'w', claimNow)).map(j => j.id), ['later'])
    })

    test('cancel removes waiting jobs, notifies, and reports running and finished ones', async t => {
      const { storage, q } = await setup(t)
      const seen = await notices(t, storage, q)
      await storage.enqueue(q, [awaited('run'), awaited('wait'), awaited('later', 'p', { delay: 60_000 })])
      const [run] = await storage.claim(q, 'w', { ...claimNow, max: 1 })
      assert.equal(await storage.cancel(q, 'wait'), 'cancelled')
      assert.equal(await storage.cancel(q, 'later'), 'cancelled')
      assert.equal(await storage.cancel(q, 'run'), 'processing')
      assert.equal(await storage.cancel(q, 'ghost'), 'not_found')
      assert.equal(await storage.getStatus(q, 'wait'), null)
      assert.deepEqual(await storage.claim(q, 'w', claimNow), [])
      await storage.settle(q, 'w', [{ type: 'complete', id: 'run', attempt: run.attempts, result: Buffer.from('r'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      assert.equal(await storage.cancel(q, 'run'), 'completed')
      await until(() => seen.filter(n => n.type === 'done' && n.state === 'cancelled').length === 2)
      // The id of a cancelled job can be used again.
      assert.deepEqual(await storage.enqueue(q, [job('wait')]), [{ status: 'queued' }])
    })

    test('abort asks a running job to stop; its settlement then ends it cancelled', async t => {
      const { storage, q } = await setup(t)
      const seen = await notices(t, storage, q)
      await storage.enqueue(q, [job('run'), job('wait')])
      const [run] = await storage.claim(q, 'w', { ...claimNow, max: 1 })
      assert.equal(await storage.abort(q, 'run', 60_000), 'aborting')
      await until(() => seen.some(n => n.type === 'abort' && n.id === 'run'))
      await storage.settle(q, 'w', [{ type: 'complete', id: 'run', attempt: run.attempts, result: Buffer.from('r'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      assert.equal((await storage.getStatus(q, 'run'))?.state, 'cancelled')
      assert.equal(await storage.abort(q, 'wait', 60_000), 'cancelled')
      assert.equal((await storage.getStatus(q, 'wait'))?.state, 'cancelled')
      assert.deepEqual(await storage.enqueue(q, [job('wait')]), [{ status: 'cancelled' }])
      assert.equal(await storage.abort(q, 'ghost', 60_000), 'not_found')
      assert.equal(await storage.abort(q, 'run', 60_000), 'completed')
    })

    test('extendLeases keeps held jobs and reports the ones not held', async t => {
      const { storage, clock, q } = await setup(t)
      await storage.enqueue(q, [job('a')])
      await storage.claim(q, 'w', { ...claimNow, leaseMs: 1000 })
      clock.advance(800)
      assert.deepEqual(await storage.extendLeases(q, 'w', ['a', 'ghost'], 1000), { lost: ['ghost'], aborted: [] })
      clock.advance(800)
      // 1600 ms after the claim, but the lease was pushed to 1800: not stalled.
      assert.deepEqual(await storage.recoverStalled(q, 1, Buffer.from('stalled')), { requeued: [], failed: [] })
      assert.deepEqual(await storage.extendLeases(q, 'other-worker', ['a'], 1000), { lost: ['a'], aborted: [] })
      // A cancel request also reaches the worker through its heartbeat, notice or not.
      assert.equal(await storage.abort(q, 'a', 60_000), 'aborting')
      assert.deepEqual(await storage.extendLeases(q, 'w', ['a'], 1000), { lost: [], aborted: ['a'] })
    })

    test('recoverStalled requeues expired leases and fails jobs out of attempts or stalls', async t => {
      const { storage, clock, q } = await setup(t)
      await storage.enqueue(q, [job('again'), job('last', 'p', { maxAttempts: 1 }), job('held')])
      await storage.claim(q, 'dead', { ...claimNow, max: 2, leaseMs: 1000 })
      await storage.claim(q, 'alive', { ...claimNow, max: 1, leaseMs: 60_000 })
      clock.advance(1001)
      const outcome = await storage.recoverStalled(q, 1, Buffer.from('{"message":"stalled"}'))
      assert.deepEqual(outcome, { requeued: ['again'], failed: ['last'] })
      assert.equal((await storage.getStatus(q, 'held'))?.state, 'processing')
      assert.equal((await storage.getStatus(q, 'last'))?.state, 'failed')
      assert.equal((await storage.getStatus(q, 'last'))?.error?.toString(), '{"message":"stalled"}')
      const [again] = await storage.claim(q, 'w2', { ...claimNow, leaseMs: 1000 })
      assert.equal(again.id, 'again')
      assert.equal(again.attempts, 2)
      // A late settlement from the dead worker's attempt is fenced off.
      await storage.settle(q, 'dead', [{ type: 'complete', id: 'again', attempt: 1, result: Buffer.from('old'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      assert.equal((await storage.getStatus(q, 'again'))?.state, 'processing')
      // Second stall: more than maxStalls (1), so it fails although attempts remain.
      clock.advance(1001)
      assert.deepEqual(await storage.recoverStalled(q, 1, Buffer.from('x')), { requeued: [], failed: ['again'] })
    })

    test('updateResultTTL applies to terminal records only', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, [job('a'), job('b')])
      const [a] = await storage.claim(q, 'w', { ...claimNow, max: 1 })
      assert.equal(await storage.updateResultTTL(q, 'b', 1000), 'not_terminal')
      assert.equal(await storage.updateResultTTL(q, 'ghost', 1000), 'not_found')
      await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: a.attempts, result: Buffer.from('1'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      assert.equal(await storage.updateResultTTL(q, 'a', 120_000), 'updated')
      assert.equal((await storage.getStatus(q, 'a'))?.state, 'completed')
    })

    test('terminal records expire after their TTL and the id becomes free', async t => {
      const { storage, clock, q } = await setup(t)
      await storage.enqueue(q, [job('a', 'p', { resultTTL: 100 })])
      const [a] = await storage.claim(q, 'w', claimNow)
      await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: a.attempts, result: Buffer.from('1'), ttl: 100 }], { max: 0, leaseMs: LEASE })
      assert.equal((await storage.getStatus(q, 'a'))?.state, 'completed')
      // Backends on the injected clock see the jump; Redis expires keys on its own (real) clock.
      clock.advance(101)
      await until(async () => (await storage.getStatus(q, 'a')) === null, 3000)
      assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'queued' }])
    })

    test('locks: one owner at a time, renewable, releasable, expiring', async t => {
      const { storage, clock, q } = await setup(t)
      const lock = `lock-${q}`
      assert.equal(await storage.acquireLock(lock, 'one', 1000), true)
      assert.equal(await storage.acquireLock(lock, 'two', 1000), false)
      assert.equal(await storage.acquireLock(lock, 'one', 1000), true, 'the owner renews')
      await storage.releaseLock(lock, 'two') // not the owner: no effect
      assert.equal(await storage.acquireLock(lock, 'two', 1000), false)
      await storage.releaseLock(lock, 'one')
      assert.equal(await storage.acquireLock(lock, 'two', 1000), true)
      clock.advance(1001)
      await until(() => storage.acquireLock(lock, 'three', 1000), 3000)
    })

    test('queues sharing a storage do not see each other', async t => {
      const { storage, q } = await setup(t)
      const other = `${q}-other`
      await storage.enqueue(q, [job('a', 'mine')])
      assert.deepEqual(await storage.enqueue(other, [job('a', 'theirs')]), [{ status: 'queued' }])
      const [mine] = await storage.claim(q, 'w', claimNow)
      assert.equal(mine.payload.toString(), 'mine')
      assert.deepEqual(await storage.claim(q, 'w', claimNow), [])
      const [theirs] = await storage.claim(other, 'w', claimNow)
      assert.equal(theirs.payload.toString(), 'theirs')
    })

    test('counts reports jobs per state', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, [job('a'), job('b'), job('c', 'p', { delay: 60_000 })])
      const [a] = await storage.claim(q, 'w', { ...claimNow, max: 1 })
      await storage.settle(q, 'w', [{ type: 'complete', id: a.id, attempt: 1, result: Buffer.from(''), ttl: 60_000 }], { max: 1, leaseMs: LEASE })
      const counts = await storage.counts(q)
      assert.deepEqual(counts, { queued: 0, delayed: 1, processing: 1, failing: 0, completed: 1, failed: 0, cancelled: 0 })
    })

    test('an unsubscribed listener hears nothing more', async t => {
      const { storage, q } = await setup(t)
      const heard: string[] = []
      const unsubscribe = await storage.subscribe(q, n => { if (n.type === 'done') heard.push(n.id) })
      const control: string[] = []
      t.after(await storage.subscribe(q, n => { if (n.type === 'done') control.push(n.id) }))
      await storage.enqueue(q, [awaited('a'), awaited('b')])
      assert.equal(await storage.cancel(q, 'a'), 'cancelled')
      await until(() => heard.length === 1 && control.length === 1)
      await unsubscribe()
      assert.equal(await storage.cancel(q, 'b'), 'cancelled')
      await until(() => control.length === 2)
      assert.deepEqual(heard, ['a'])
    })

    test('a done notice reaches the instance that waits, whoever settles the job', async t => {
      const { storage, q, another } = await setup(t)
      const worker = await another()
      const late = await another()
      const seen = await notices(t, storage, q)
      const lateSeen = await notices(t, late, q)
      await storage.enqueue(q, [awaited('a'), awaited('b')])
      // A second waiter joins while the job is active: a duplicate enqueue with notify.
      assert.deepEqual(await late.enqueue(q, [awaited('b')]), [{ status: 'duplicate', state: 'queued' }])
      const claimed = await worker.claim(q, 'w', claimNow)
      assert.deepEqual(claimed.map(j => j.id), ['a', 'b'])
      await worker.settle(q, 'w', [
        { type: 'complete', id: 'a', attempt: 1, result: Buffer.from('ra'), ttl: 60_000 },
        { type: 'fail', id: 'b', attempt: 1, error: Buffer.from('eb'), ttl: 60_000 }
      ], { max: 0, leaseMs: LEASE })
      const done = (list: Notice[], id: string): Notice | undefined => list.find(n => n.type === 'done' && n.id === id)
      await until(() => done(seen, 'a') !== undefined && done(seen, 'b') !== undefined && done(lateSeen, 'b') !== undefined)
      for (const [list, id, state] of [[seen, 'a', 'completed'], [seen, 'b', 'failed'], [lateSeen, 'b', 'failed']] as const) {
        const notice = done(list, id)
        assert.equal(notice?.type === 'done' && notice.state, state, `${id} as seen`)
      }
    })

    test('a waiting repeat of an id within one enqueue batch makes the job waited for', async t => {
      const { storage, q } = await setup(t)
      const seen = await notices(t, storage, q)
      assert.deepEqual(await storage.enqueue(q, [job('x'), awaited('x')]), [{ status: 'queued' }, { status: 'duplicate', state: 'queued' }])
      const [x] = await storage.claim(q, 'w', claimNow)
      await storage.settle(q, 'w', [{ type: 'complete', id: 'x', attempt: x.attempts, result: Buffer.from('rx'), ttl: 60_000 }], { max: 0, leaseMs: LEASE })
      await until(() => seen.some(n => n.type === 'done' && n.id === 'x'))
    })

    test('a typed subscription hears at least the notices of its type', async t => {
      const { storage, q } = await setup(t)
      const aborts: Notice[] = []
      const dones: Notice[] = []
      t.after(await storage.subscribe(q, n => aborts.push(n), 'abort'))
      t.after(await storage.subscribe(q, n => dones.push(n), 'done'))
      await storage.enqueue(q, [job('run'), awaited('wait')])
      await storage.claim(q, 'w', { ...claimNow, max: 1 })
      assert.equal(await storage.abort(q, 'run', 60_000), 'aborting')
      assert.equal(await storage.cancel(q, 'wait'), 'cancelled')
      await until(() => aborts.some(n => n.type === 'abort' && n.id === 'run') && dones.some(n => n.type === 'done' && n.id === 'wait'))
    })

    test('a trace context is stored with its job and handed to every attempt; none when none was given', async t => {
      const { storage, clock, q, another } = await setup(t)
      const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
      const withState = `${parent} rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,t@vendor=a b`
      const large = Buffer.alloc(40_000, 7) // beyond any inline limit: travels by reference on Redis
      await storage.enqueue(q, [
        job('plain'),
        job('p', 'payload of p', { trace: parent }),
        job('s', 'payload of s', { trace: withState }),
        { ...job('big', '', { trace: parent }), payload: large },
        job('later', 'payload of later', { trace: withState, delay: 1000 })
      ])
      const first = await storage.claim(q, 'w', claimNow)
      assert.deepEqual(first.map(j => [j.id, j.trace, j.payload.length]), [
        ['plain', undefined, 'payload of plain'.length],
        ['p', parent, 'payload of p'.length],
        ['s', withState, 'payload of s'.length],
        ['big', parent, large.length]
      ])
      assert.equal('trace' in first[0], false, 'a job without a trace context has no trace property')
      assert.equal(first[2].payload.toString(), 'payload of s')
      assert.ok(first[3].payload.equals(large))
      // A retry runs with the same trace context, claimed through settle, by another instance.
      const retried = claimedBy(await storage.settle(q, 'w', [{ type: 'retry', id: 's', attempt: 1, error: Buffer.from('e'), delay: 0 }], { max: 0, leaseMs: LEASE }))
      assert.deepEqual(retried, [])
      const other = await another()
      const second = await other.claim(q, 'w2', claimNow)
      assert.deepEqual(second.map(j => [j.id, j.attempts, j.trace, j.payload.toString()]), [['s', 2, withState, 'payload of s']])
      // A delayed job keeps it through its promotion.
      clock.advance(1001)
      const third = await storage.claim(q, 'w', claimNow)
      assert.deepEqual(third.map(j => [j.id, j.trace, j.payload.toString()]), [['later', withState, 'payload of later']])
      // The operator's view shows the payload alone.
      assert.equal((await (storage as AdminStorage).getJob(q, 'p'))?.payload.toString(), 'payload of p')
    })

    test('a trace context too large or malformed is dropped: the job is stored without it', async t => {
      const { storage, q } = await setup(t)
      const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
      const fits = `${parent} a=${'v'.repeat(226)},b=${'w'.repeat(225)}`
      assert.equal(fits.length, 512)
      const bad = [
        `${parent} a=${'v'.repeat(226)},b=${'w'.repeat(226)}`, // 513 bytes
        `${parent} k=${'v'.repeat(257)}`, // a member's value is at most 256 characters
        'junk',
        '',
        parent.toUpperCase(),
        '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
        '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
        '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        `${parent}-extra`,
        `${parent};k=v`,
        `${parent} `,
        `${parent} K=v`,
        `${parent} k=v,`,
        `${parent} k=v\nx=y`,
        `${parent} k=é`,
        `${parent} ${Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')}`,
        42 as unknown as string
      ]
      await storage.enqueue(q, [...bad.map((trace, i) => job(`bad${i}`, `payload ${i}`, { trace })), job('fits', 'payload fits', { trace: fits })])
      const claimed = await storage.claim(q, 'w', { ...claimNow, max: 100 })
      assert.deepEqual(claimed.map(j => [j.id, j.trace, j.payload.toString()]), [
        ...bad.map((_, i) => [`bad${i}`, undefined, `payload ${i}`]),
        ['fits', fits, 'payload fits']
      ])
    })

    test('many jobs through settle-and-claim batches all complete exactly once', async t => {
      const { storage, q } = await setup(t)
      const ids = Array.from({ length: 500 }, (_, i) => `j${i}`)
      await storage.enqueue(q, ids.map(id => job(id)))
      const done = new Map<string, number>()
      let batch = await storage.claim(q, 'w', { ...claimNow, max: 32 })
      while (batch.length > 0) {
        for (const j of batch) done.set(j.id, (done.get(j.id) ?? 0) + 1)
        batch = claimedBy(await storage.settle(q, 'w', batch.map(j => ({ type: 'complete' as const, id: j.id, attempt: j.attempts, result: Buffer.from(j.id), ttl: 60_000 })), { max: 32, leaseMs: LEASE }))
      }
      assert.equal(done.size, 500)
      assert.ok([...done.values()].every(n => n === 1))
      assert.equal((await storage.counts(q)).completed, 500)
    })
  })
}
