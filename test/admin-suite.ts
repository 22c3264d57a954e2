/**
 * The shared suite of issue 9: the storage operations an AdminStorage adds (history, indexes,
 * actions, pause, retention, workers, fencing reports, clear) and the Admin API over them. Every
 * backend that implements AdminStorage calls `adminTests(name, factory)` once.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test, type TestContext } from 'node:test'
import { Admin, InvalidArgumentError } from '../src/index.ts'
import { failureGroup } from '../src/failure-groups.ts'
import { encodeError } from '../src/serde.ts'
import type { AdminStorage, ClaimedJob, SettleResult, Storage } from '../src/storage/types.ts'
import { FakeClock, job, until, type StorageFactory } from './storage-contract.ts'

const LEASE = 30_000
const claimNow = { max: 100, leaseMs: LEASE, blockMs: 0 }
const none = { max: 0, leaseMs: LEASE }

/** A stored error as the consumer writes it, and its group. */
function failure (message: string): { error: Buffer, group: ReturnType<typeof failureGroup> } {
  const err = new Error(message)
  return { error: encodeError(err), group: failureGroup(err) }
}

export function adminTests (name: string, factory: StorageFactory): void {
  describe(`Admin: ${name}`, () => {
    async function setup (t: TestContext): Promise<{ storage: AdminStorage, admin: Admin<string, string>, clock: FakeClock, q: string, another: () => Promise<AdminStorage> }> {
      const clock = new FakeClock()
      const handle = await factory(clock.read)
      const storage = handle.storage as AdminStorage
      await storage.connect()
      const admin = new Admin<string, string>({ storage, clock: clock.read, payloadSerde: text, resultSerde: text })
      t.after(async () => {
        await admin.close()
        await storage.disconnect()
        await handle.cleanup()
      })
      const another = async (): Promise<AdminStorage> => {
        const other = handle.another() as AdminStorage
        await other.connect()
        t.after(() => other.disconnect())
        return other
      }
      return { storage, admin, clock, q: `q-${randomUUID()}`, another }
    }

    /** Runs jobs `ids` through one failed attempt each (error `message`), as a worker would. */
    async function failAll (storage: Storage, q: string, ids: string[], message: string): Promise<void> {
      await storage.enqueue(q, ids.map(id => job(id, `p-${id}`, { maxAttempts: 1 })))
      const claimed = await storage.claim(q, 'w', { ...claimNow, max: ids.length })
      const { error, group } = failure(message)
      await storage.settle(q, 'w', claimed.map(j => ({ type: 'fail' as const, id: j.id, attempt: j.attempts, error, ttl: 60_000, group })), none)
    }

    test('enqueue of no job answers [] and creates no queue', async t => {
      const { storage, q } = await setup(t)
      assert.deepEqual(await storage.enqueue(q, []), [])
      assert.deepEqual((await storage.queues()).map(s => s.name).filter(n => n === q), [])
    })

    test('settle reports the settlements fencing refused; the consumer-facing outcome of the others is stored', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, [job('a'), job('b')])
      await storage.claim(q, 'w', claimNow)
      const result: SettleResult = await storage.settle(q, 'w', [
        { type: 'complete', id: 'a', attempt: 7, result: Buffer.from('x'), ttl: 60_000 },
        { type: 'complete', id: 'b', attempt: 1, result: Buffer.from('y'), ttl: 60_000 },
        { type: 'complete', id: 'ghost', attempt: 1, result: Buffer.from('z'), ttl: 60_000 }
      ], none)
      assert.deepEqual(result.refused, [0, 2])
      assert.deepEqual(result.jobs, [])
      assert.equal((await storage.getStatus(q, 'b'))?.state, 'completed')
    })

    test('claimed jobs carry their run-time limit (0 when unset) and the time they became claimable', async t => {
      const { storage, clock, q } = await setup(t)
      const t0 = clock.now
      await storage.enqueue(q, [job('a', 'p', { runTimeout: 120_000 }), job('b'), job('c', 'p', { delay: 5000 })])
      clock.advance(100)
      const first = await storage.claim(q, 'w', claimNow) as ClaimedJob[]
      assert.deepEqual(first.map(j => [j.id, j.runTimeout, j.readyAt]), [['a', 120_000, t0], ['b', 0, t0]])
      clock.advance(6000)
      const [c] = await storage.claim(q, 'w', claimNow)
      assert.deepEqual([c.id, c.readyAt], ['c', t0 + 5000])
      assert.equal((await storage.getJob(q, 'a'))?.runTimeout, 120_000)
    })

    test('listJobs pages a state newest first by a stable cursor; a job added meanwhile shifts no page', async t => {
      const { admin, storage, clock, q } = await setup(t)
      for (let i = 0; i < 7; i++) {
        await storage.enqueue(q, [job(`j${i}`)])
        clock.advance(10)
      }
      const first = await admin.listJobs(q, { state: 'queued', limit: 3 })
      assert.deepEqual(first.jobs.map(j => j.id), ['j6', 'j5', 'j4'])
      await storage.enqueue(q, [job('new')])
      const second = await admin.listJobs(q, { state: 'queued', limit: 3, cursor: first.cursor as string })
      assert.deepEqual(second.jobs.map(j => j.id), ['j3', 'j2', 'j1'])
      const third = await admin.listJobs(q, { state: 'queued', limit: 3, cursor: second.cursor as string })
      assert.deepEqual(third.jobs.map(j => j.id), ['j0'])
      assert.equal(third.cursor, null)
      const asc = await admin.listJobs(q, { state: 'queued', limit: 5, order: 'asc' })
      assert.deepEqual(asc.jobs.map(j => j.id), ['j0', 'j1', 'j2', 'j3', 'j4'])
      assert.deepEqual((await admin.listJobs(q, { state: 'queued', order: 'asc', cursor: asc.cursor as string })).jobs.map(j => j.id), ['j5', 'j6', 'new'])
      assert.equal(first.jobs[0].enteredAt, clock.now - 10)
    })

    test('bad input is refused naming the field, and nothing changes', async t => {
      const { admin, storage, q } = await setup(t)
      await failAll(storage, q, ['a', 'b'], 'boom')
      const page = await admin.listJobs(q, { state: 'failed', limit: 1 })
      const tampered = (page.cursor as string).replace(/^./, c => c === 'A' ? 'B' : 'A')
      const cases: Array<[() => Promise<unknown>, RegExp]> = [
        [() => admin.listJobs(q, { state: 'lost' as never }), /`state`/],
        [() => admin.listJobs(q, { state: 'failed', limit: 0 }), /`limit`/],
        [() => admin.listJobs(q, { state: 'failed', limit: 1001 }), /`limit`/],
        [() => admin.listJobs(q, { state: 'failed', cursor: tampered }), /`cursor`/],
        [() => admin.listJobs(q, { state: 'queued', cursor: page.cursor as string }), /`cursor`/],
        [() => admin.listJobs(q, { state: 'failed', cursor: 'nonsense' }), /`cursor`/],
        [() => admin.retry(q, { state: 'queued' }), /`selector.state`/],
        [() => admin.retry(q, { state: 'failed', olderThan: -1 }), /`selector.olderThan`/],
        [() => admin.retry(q, { state: 'failed', errorGroup: 'nope' }), /`errorGroup`/],
        [() => admin.retry(q, { status: 'failed' } as never), /`selector`/],
        [() => admin.retry(q, 'a' as never), /`selector`/],
        [() => admin.remove(q, ['a', '']), /`selector\[1\]`/],
        [() => admin.remove(q, ['a', 'x\uD800']), /`selector\[1\]`/],
        [() => admin.purge(q, { state: 'processing' }), /`state`/],
        [() => admin.getJob(q, 42 as never), /`id`/],
        [() => admin.getJob('', 'a'), /`queue`/],
        [() => admin.setRetention(q, { failed: { count: -1 } }), /`retention.failed.count`/],
        [() => admin.setRetention(q, { done: {} } as never), /`retention`/],
        [() => admin.failureGroups(q, { limit: 5000 }), /`limit`/]
      ]
      for (const [call, field] of cases) {
        await assert.rejects(call(), (err: Error) => err instanceof InvalidArgumentError && field.test(err.message), String(field))
      }
      assert.deepEqual((await admin.counts(q)).counts.failed, 2)
      assert.equal((await admin.getRetention(q)).failed.count, 10_000)
    })

    test('getJob tells the whole history: payload, options, every attempt with its worker, outcome, duration and error', async t => {
      const { admin, storage, clock, q } = await setup(t)
      const t0 = clock.now
      await storage.enqueue(q, [job('a', 'hello', { maxAttempts: 2, resultTTL: 5000, notify: true })])
      clock.advance(10)
      await storage.claim(q, 'w1', claimNow)
      clock.advance(20)
      const first = failure('first try 1')
      await storage.settle(q, 'w1', [{ type: 'retry', id: 'a', attempt: 1, error: first.error, delay: 0 }], none)
      clock.advance(5)
      await storage.claim(q, 'w2', claimNow)
      const running = await admin.getJob(q, 'a')
      assert.equal(running?.state, 'processing')
      assert.equal(running?.worker, 'w2')
      assert.equal(running?.leaseUntil, clock.now + LEASE)
      assert.equal(running?.waiters, 1)
      assert.deepEqual(running?.history.map(a => [a.attempt, a.worker, a.outcome]), [[1, 'w1', 'retried'], [2, 'w2', undefined]])
      clock.advance(40)
      const last = failure('second try 2')
      await storage.settle(q, 'w2', [{ type: 'fail', id: 'a', attempt: 2, error: last.error, ttl: 5000, group: last.group }], none)
      const info = await admin.getJob(q, 'a')
      assert.ok(info !== null)
      assert.equal(info.state, 'failed')
      assert.equal(info.payload, 'hello')
      assert.deepEqual([info.maxAttempts, info.resultTTL, info.delay, info.runTimeout], [2, 5000, 0, 0])
      assert.deepEqual([info.createdAt, info.startedAt, info.finishedAt], [t0, t0 + 10, clock.now])
      assert.equal(info.error?.message, 'second try 2')
      assert.equal(info.errorGroup, last.group.key)
      assert.equal(info.resultExpiresAt, clock.now + 5000)
      assert.deepEqual(info.history.map(a => [a.attempt, a.worker, a.outcome, a.durationMs, a.error?.message]), [
        [1, 'w1', 'retried', 20, 'first try 1'],
        [2, 'w2', 'failed', 40, 'second try 2']
      ])
      assert.equal(await admin.getJob(q, 'ghost'), null)
    })

    test('a stall shows as an attempt ended by the reaper, naming the worker whose lease expired', async t => {
      const { storage, clock, q } = await setup(t)
      await storage.enqueue(q, [job('a', 'p', { maxAttempts: 1 })])
      await storage.claim(q, 'gone', { ...claimNow, leaseMs: 1000 })
      clock.advance(1001)
      const stalled = failure('stalled')
      assert.deepEqual(await storage.recoverStalled(q, 1, stalled.error, stalled.group), { requeued: [], failed: ['a'] })
      const info = await storage.getJob(q, 'a')
      assert.deepEqual(info?.history.map(a => [a.worker, a.outcome]), [['gone', 'stalled']])
      assert.equal(info?.group, stalled.group.key)
      assert.equal((await storage.overview(q)).totals.stalled, 1)
    })

    test('retry by ids and by state: a new attempt series that keeps its history; dry run changes nothing', async t => {
      const { admin, storage, q } = await setup(t)
      await failAll(storage, q, ['a', 'b', 'c'], 'boom')
      assert.deepEqual(await admin.retry(q, { state: 'failed' }, { dryRun: true }), { count: 3, skipped: 0, cursor: null })
      assert.equal((await admin.counts(q)).counts.failed, 3)
      const one = await admin.retry(q, ['a', 'ghost'])
      assert.deepEqual(one.results, [{ id: 'a', result: 'retried' }, { id: 'ghost', result: 'not_found' }])
      assert.deepEqual([one.count, one.skipped], [1, 1])
      const a = await admin.getJob(q, 'a')
      assert.deepEqual([a?.state, a?.attempts, a?.retries, a?.history.map(h => h.outcome)], ['queued', 0, 1, ['failed']])
      assert.equal((await storage.getStatus(q, 'a'))?.state, 'queued', 'the result cache follows')
      assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'duplicate', state: 'queued' }])
      assert.deepEqual((await admin.retry(q, ['a'])).results, [{ id: 'a', result: 'skipped' }])
      const rest = await admin.retry(q, { state: 'failed' })
      assert.deepEqual([rest.count, rest.cursor], [2, null])
      const claimed = await storage.claim(q, 'w', claimNow)
      assert.deepEqual(claimed.map(j => [j.id, j.attempts, j.payload.toString()]), [['a', 1, 'p-a'], ['b', 1, 'p-b'], ['c', 1, 'p-c']])
    })

    test('a bulk action runs in chunks with progress, stops on abort and resumes from its cursor; jobs that fail again meanwhile are not taken twice', async t => {
      const { admin, storage, q } = await setup(t)
      const ids = Array.from({ length: 25 }, (_, i) => `j${String(i).padStart(2, '0')}`)
      await failAll(storage, q, ids, 'boom')
      const controller = new AbortController()
      const seen: number[] = []
      const partial = await admin.retry(q, { state: 'failed' }, {
        chunkSize: 10,
        signal: controller.signal,
        onProgress: p => {
          seen.push(p.count)
          if (p.count === 10) controller.abort()
        }
      })
      assert.deepEqual(seen, [10])
      assert.equal(partial.count, 10)
      assert.ok(partial.cursor !== null)
      // The retried ones fail again: they re-enter `failed` after the operation's horizon.
      const again = await storage.claim(q, 'w', claimNow)
      assert.equal(again.length, 10)
      const { error, group } = failure('boom')
      await storage.settle(q, 'w', again.map(j => ({ type: 'fail' as const, id: j.id, attempt: j.attempts, error, ttl: 60_000, group })), none)
      const progress: number[] = []
      const resumed = await admin.retry(q, { state: 'failed' }, { chunkSize: 10, cursor: partial.cursor, onProgress: p => progress.push(p.count) })
      assert.deepEqual([resumed.count, resumed.cursor, progress], [15, null, [10, 15]])
      assert.equal((await admin.counts(q)).counts.failed, 10, 'the ten that failed again stay failed')
      await assert.rejects(admin.remove(q, { state: 'failed' }, { cursor: partial.cursor as string }), /`cursor`/)
    })

    test('failure groups: counted, first and last seen, samples; a group is a selector', async t => {
      const { admin, storage, clock, q } = await setup(t)
      await failAll(storage, q, ['u1', 'u2'], 'user 17 not found')
      clock.advance(100)
      await failAll(storage, q, ['u3'], 'user 99 not found')
      await failAll(storage, q, ['t1'], 'timeout after 3000 ms')
      const groups = await admin.failureGroups(q)
      assert.equal(groups.length, 2)
      const [users, timeouts] = groups
      assert.deepEqual([users.count, users.message, users.samples], [3, 'user <n> not found', ['u3', 'u2', 'u1']])
      assert.equal(users.lastSeen - users.firstSeen, 100)
      assert.equal(timeouts.count, 1)
      const listed = await admin.listJobs(q, { state: 'failed' })
      assert.equal(listed.jobs.find(j => j.id === 'u1')?.errorGroup, users.key)
      const retried = await admin.retry(q, { state: 'failed', errorGroup: users.key })
      assert.equal(retried.count, 3)
      assert.deepEqual((await admin.failureGroups(q)).map(g => [g.key, g.count]), [[timeouts.key, 1]])
    })

    test('remove and purge delete jobs (the id becomes free); running jobs are skipped; dry run counts', async t => {
      const { admin, storage, clock, q } = await setup(t)
      await failAll(storage, q, ['old1', 'old2'], 'boom')
      clock.advance(60_000)
      await failAll(storage, q, ['new1'], 'boom')
      await storage.enqueue(q, [job('run'), job('wait', 'p', { delay: 60_000 })])
      await storage.claim(q, 'w', { ...claimNow, max: 1 })
      assert.equal((await admin.purge(q, { state: 'failed', olderThan: 30_000, dryRun: true })).count, 2)
      assert.equal((await admin.purge(q, { state: 'failed', olderThan: 30_000 })).count, 2)
      assert.deepEqual((await admin.listJobs(q, { state: 'failed' })).jobs.map(j => j.id), ['new1'])
      assert.equal(await storage.getStatus(q, 'old1'), null)
      assert.deepEqual(await storage.enqueue(q, [job('old1')]), [{ status: 'queued' }])
      const removed = await admin.remove(q, ['run', 'wait', 'new1'])
      assert.deepEqual(removed.results?.map(r => r.result), ['skipped', 'removed', 'removed'])
      assert.equal(await admin.getJob(q, 'wait'), null)
      assert.equal((await admin.counts(q)).counts.delayed, 0)
    })

    test('cancel stops waiting jobs at once and asks running ones to stop; promote makes delayed jobs ready now', async t => {
      const { admin, storage, q } = await setup(t)
      const aborts: string[] = []
      t.after(await storage.subscribe(q, n => { if (n.type === 'abort') aborts.push(n.id) }, 'abort'))
      await storage.enqueue(q, [job('run'), job('wait'), job('later', 'p', { delay: 60_000 }), job('soon', 'p', { delay: 60_000 })])
      await storage.claim(q, 'w', { ...claimNow, max: 1 })
      const cancelled = await admin.cancel(q, ['run', 'wait', 'later'])
      assert.deepEqual(cancelled.results?.map(r => r.result), ['aborting', 'cancelled', 'cancelled'])
      await until(() => aborts.includes('run'))
      assert.deepEqual(await storage.extendLeases(q, 'w', ['run'], LEASE), { lost: [], aborted: ['run'] })
      assert.equal((await storage.getStatus(q, 'wait'))?.state, 'cancelled')
      assert.equal((await admin.promote(q, { state: 'delayed' })).count, 1)
      assert.deepEqual((await storage.claim(q, 'w', claimNow)).map(j => j.id), ['soon'])
    })

    test('pause: claims get nothing, a parked claim waits and resume wakes it at once; enqueue and settle go on', async t => {
      const { admin, storage, q } = await setup(t)
      await storage.enqueue(q, [job('a'), job('b')])
      const [a] = await storage.claim(q, 'w', { ...claimNow, max: 1 })
      await admin.pause(q)
      assert.equal((await admin.counts(q)).paused, true)
      assert.deepEqual(await storage.claim(q, 'w', claimNow), [])
      const settled = await storage.settle(q, 'w', [{ type: 'complete', id: a.id, attempt: 1, result: Buffer.from('r'), ttl: 60_000 }], { max: 5, leaseMs: LEASE })
      assert.deepEqual([settled.jobs, settled.refused], [[], []])
      assert.deepEqual(await storage.enqueue(q, [job('c')]), [{ status: 'queued' }])
      let woke = false
      const parked = storage.claim(q, 'w', { ...claimNow, blockMs: 60_000 }).then(jobs => {
        woke = true
        return jobs
      })
      await storage.enqueue(q, [job('d')])
      assert.equal(woke, false)
      await admin.resume(q)
      // A backend may hand a woken claim its first job at once and the rest to the next claim.
      const woken = [...await parked, ...await storage.claim(q, 'w', claimNow)]
      assert.deepEqual(woken.map(j => j.id), ['b', 'c', 'd'])
    })

    test('counts: per state, the oldest waiting job\'s age, paused, and totals since creation', async t => {
      const { admin, storage, clock, q } = await setup(t)
      await failAll(storage, q, ['f'], 'boom')
      await storage.enqueue(q, [job('a'), job('b'), job('c', 'p', { delay: 60_000 })])
      clock.advance(2500)
      const stats = await admin.counts(q)
      assert.deepEqual(stats.counts, { queued: 2, delayed: 1, processing: 0, failing: 0, completed: 0, failed: 1, cancelled: 0 })
      assert.equal(stats.oldestWaitingAge, 2500)
      await storage.claim(q, 'w', claimNow)
      await storage.settle(q, 'w', [{ type: 'complete', id: 'a', attempt: 1, result: Buffer.from(''), ttl: 1000 }, { type: 'retry', id: 'b', attempt: 1, error: Buffer.from('{}'), delay: 0 }], none)
      const after = await admin.counts(q)
      assert.deepEqual([after.counts.queued, after.counts.completed, after.oldestWaitingAge], [1, 1, 0])
      clock.advance(700)
      assert.equal((await admin.counts(q)).oldestWaitingAge, 700)
      assert.deepEqual(after.totals, { enqueued: 4, completed: 1, failed: 1, retried: 1, stalled: 0, cancelled: 0 })
    })

    test('retention: history keeps the newest count and the young; the result cache lives its own TTL', async t => {
      const { admin, storage, clock, q } = await setup(t)
      await admin.setRetention(q, { failed: { count: 2, age: 10_000 } })
      for (const id of ['a', 'b', 'c']) {
        await failAll(storage, q, [id], 'boom')
        clock.advance(1000)
      }
      assert.deepEqual((await admin.listJobs(q, { state: 'failed' })).jobs.map(j => j.id), ['c', 'b'])
      assert.equal(await admin.getJob(q, 'a'), null, 'out of history')
      assert.equal((await storage.getStatus(q, 'a'))?.state, 'failed', 'its result cache still answers')
      clock.advance(60_000)
      assert.equal(await storage.getStatus(q, 'b'), null, 'result TTL passed')
      assert.equal((await admin.counts(q)).counts.failed, 0, 'history age passed too')
      await admin.setRetention(q, { failed: { age: 3_600_000 } })
      await failAll(storage, q, ['d'], 'boom')
      clock.advance(70_000)
      assert.equal(await storage.getStatus(q, 'd'), null)
      assert.equal((await admin.getJob(q, 'd'))?.state, 'failed', 'history outlives the result')
      // The id is free again: a new job, whose predecessor's history goes.
      assert.deepEqual(await storage.enqueue(q, [job('d', 'second')]), [{ status: 'queued' }])
      const d = await admin.getJob(q, 'd')
      assert.deepEqual([d?.state, d?.payload, d?.history], ['queued', 'second', []])
      assert.deepEqual((await admin.listJobs(q, { state: 'failed' })).jobs, [])
    })

    test('workers: consumers register with a heartbeat and drop out when it stops; explain tells why a job waits', async t => {
      const { admin, storage, clock, q } = await setup(t)
      await storage.enqueue(q, [job('a'), job('b'), job('c')])
      const first = await admin.explain(q, 'c')
      assert.deepEqual(first?.reasons, [{ code: 'waiting', ahead: 2 }, { code: 'no_consumer' }])
      assert.match(first?.text ?? '', /2 jobs are ahead of it\. No live consumer/)
      const info = { id: 'w1', host: 'h', pid: 1, concurrency: 4, running: 0, startedAt: clock.now }
      await storage.heartbeat(q, info, 3000)
      await storage.claim(q, 'w1', { ...claimNow, max: 1, leaseMs: 1000 })
      assert.deepEqual((await admin.workers(q)).map(w => [w.id, w.concurrency, w.lastSeen, w.expiresAt]), [['w1', 4, clock.now, clock.now + 3000]])
      assert.deepEqual((await admin.explain(q, 'a'))?.reasons, [{ code: 'running', worker: 'w1', leaseUntil: clock.now + 1000, workerAlive: true }])
      await admin.pause(q)
      assert.deepEqual((await admin.explain(q, 'b'))?.reasons.map(r => r.code), ['paused', 'waiting'])
      clock.advance(3001)
      assert.deepEqual(await admin.workers(q), [])
      assert.equal((await admin.explain(q, 'a'))?.reasons[0].code === 'running' && (await admin.explain(q, 'a'))?.text.includes('sends no heartbeat'), true)
      await storage.heartbeat(q, info, 3000)
      await storage.heartbeat(q, info, 0)
      assert.deepEqual(await admin.workers(q), [])
      assert.equal(await admin.explain(q, 'ghost'), null)
    })

    test('a queue that does not exist answers empty and is not created; queues() lists the others with counts', async t => {
      const { admin, storage, q } = await setup(t)
      const ghost = `${q}-ghost`
      assert.deepEqual((await admin.counts(ghost)).counts, { queued: 0, delayed: 0, processing: 0, failing: 0, completed: 0, failed: 0, cancelled: 0 })
      assert.deepEqual(await admin.listJobs(ghost, { state: 'failed' }), { jobs: [], cursor: null })
      assert.equal(await admin.getJob(ghost, 'a'), null)
      assert.deepEqual(await admin.retry(ghost, { state: 'failed' }), { count: 0, skipped: 0, cursor: null })
      assert.deepEqual((await admin.remove(ghost, ['a'])).results, [{ id: 'a', result: 'not_found' }])
      assert.deepEqual(await admin.failureGroups(ghost), [])
      assert.deepEqual(await admin.workers(ghost), [])
      assert.equal(await storage.getStatus(ghost, 'a'), null)
      await storage.enqueue(q, [job('a')])
      const names = (await admin.queues()).map(s => s.name)
      assert.ok(names.includes(q))
      assert.ok(!names.includes(ghost))
      assert.deepEqual((await admin.queues()).find(s => s.name === q)?.counts.queued, 1)
    })

    test('another instance over the same data sees the same history and obeys the same pause', async t => {
      const { admin, storage, q, another } = await setup(t)
      const other = await another()
      await failAll(storage, q, ['a'], 'boom')
      await admin.pause(q)
      await other.enqueue(q, [job('b')])
      assert.deepEqual(await other.claim(q, 'w', claimNow), [])
      assert.deepEqual((await other.listJobs(q, { state: 'failed', limit: 10, order: 'desc' })).jobs.map(j => j.id), ['a'])
      await admin.resume(q)
      assert.deepEqual((await other.claim(q, 'w', claimNow)).map(j => j.id), ['b'])
    })

    test('clear deletes every queue and lock; a storage that is not connected ignores it', async t => {
      const { storage, q } = await setup(t)
      await storage.enqueue(q, [job('a')])
      await failAll(storage, q, ['b'], 'boom')
      assert.equal(await storage.acquireLock(`lock-${q}`, 'me', 60_000), true)
      await storage.clear()
      assert.equal(await storage.getStatus(q, 'a'), null)
      assert.deepEqual((await storage.queues()).filter(s => s.name === q), [])
      assert.equal(await storage.acquireLock(`lock-${q}`, 'other', 60_000), true)
      assert.deepEqual(await storage.enqueue(q, [job('a')]), [{ status: 'queued' }])
      assert.deepEqual((await storage.claim(q, 'w', claimNow)).map(j => j.id), ['a'])
      const idle = await factory(Date.now)
      await (idle.storage as AdminStorage).clear()
      await idle.cleanup()
    })
  })
}

/** Payloads and results are plain text in this suite. */
const text = { serialize: (s: string) => Buffer.from(s), deserialize: (b: Buffer) => b.toString() }
