/**
 * The model-based test of issue 9 item 4: random sequences of operations (enqueue, claim, every
 * kind of settlement, lease extensions, cancels, reaper passes, TTL changes, time passing, pause,
 * retention, heartbeats, operator actions) drive a backend, and every answer, of writes and of
 * reads, must equal what QueueState (the lifecycle table's reference implementation, driven
 * directly) answers for the same sequence. Time is a fake clock shared by both. A backend plugs
 * in through the same factory as the other shared suites: `modelTests(name, factory)`.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { ACTION_STATES, STATES } from '../src/storage/job-record.ts'
import { QueueState } from '../src/storage/queue-state.ts'
import { failureGroups, getJob, listJobs, overview, summary } from '../src/storage/queue-admin.ts'
import type {
  AdminAction, AdminStorage, ClaimedJob, JobState, JobTarget, NewJob, Retention, SettleResult, Settlement, WorkerInfo
} from '../src/storage/types.ts'
import { FakeClock, type StorageFactory } from './storage-contract.ts'

const IDS = ['a', 'b', 'c', 'd', 'e', 'f']
const WORKERS = ['w1', 'w2']
const GROUPS = [
  { key: '00000000000000aa', name: 'Error', message: 'boom', frame: 'f (a.js)' },
  { key: '00000000000000bb', name: 'TypeError', message: 'x is <n>', frame: '' }
]

type Op =
  | { op: 'enqueue', jobs: Array<{ id: string, delay: number, maxAttempts: number, notify: boolean, ttl: number }> }
  | { op: 'claim', worker: string, max: number, lease: number }
  | { op: 'settle', worker: string, settlements: Settlement[], max: number }
  | { op: 'extend', worker: string, ids: string[], lease: number }
  | { op: 'cancel' | 'abort' | 'status' | 'job', id: string }
  | { op: 'ttl', id: string, ttl: number }
  | { op: 'recover', maxStalls: number, group: number }
  | { op: 'advance', ms: number }
  | { op: 'pause', paused: boolean }
  | { op: 'retention', retention: Retention }
  | { op: 'heartbeat', worker: string, ttl: number }
  | { op: 'apply', action: AdminAction, target: JobTarget, limit: number, dryRun: boolean }
  | { op: 'list', state: JobState, order: 'asc' | 'desc', limit: number }
  | { op: 'overview' | 'groups' | 'workers' | 'queues' }

const id = fc.constantFrom(...IDS)
const worker = fc.constantFrom(...WORKERS)
const settlement: fc.Arbitrary<Settlement> = fc.tuple(id, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 4 }), fc.constantFrom(0, 500), fc.constantFrom(1000, 60_000), fc.integer({ min: 0, max: 2 }))
  .map(([id, attempt, kind, delay, ttl, g]) => {
    switch (kind) {
      case 0: return { type: 'complete', id, attempt, result: Buffer.from(`r-${id}-${attempt}`), ttl }
      case 1: return { type: 'fail', id, attempt, error: Buffer.from(`e-${id}`), ttl, ...(g < 2 && { group: GROUPS[g] }) }
      case 2: return { type: 'retry', id, attempt, error: Buffer.from(`r-${id}`), delay }
      case 3: return { type: 'release', id, attempt }
      default: return { type: 'cancel', id, attempt, ttl }
    }
  })
const rule = fc.record({ age: fc.constantFrom(0, 2000, 100_000), count: fc.integer({ min: 0, max: 3 }) }, { noNullPrototype: true })
const target: fc.Arbitrary<{ action: AdminAction, target: JobTarget }> = fc.constantFrom<AdminAction>('retry', 'promote', 'cancel', 'remove').chain(action => fc.oneof(
  fc.uniqueArray(id, { minLength: 1, maxLength: 3 }).map(ids => ({ action, target: { ids } })),
  fc.tuple(fc.constantFrom(...ACTION_STATES[action]), fc.option(fc.constantFrom(500, 5000), { nil: undefined })).map(([state, age]) => ({
    action, target: { state, ...(age !== undefined && { before: -age }) } as JobTarget
  })),
  // A failure group selects failed jobs: for the actions that apply to them.
  fc.constant({ action, target: ACTION_STATES[action].includes('failed') ? { state: 'failed', group: GROUPS[0].key } as JobTarget : { ids: ['a'] } })
))

const operation: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.record({ id, delay: fc.constantFrom(0, 0, 1000), maxAttempts: fc.integer({ min: 1, max: 3 }), notify: fc.boolean(), ttl: fc.constantFrom(1000, 60_000) }), { minLength: 1, maxLength: 3 }).map(jobs => ({ op: 'enqueue' as const, jobs })) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('claim' as const), worker, max: fc.integer({ min: 1, max: 3 }), lease: fc.constantFrom(1000, 5000) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('settle' as const), worker, settlements: fc.array(settlement, { minLength: 1, maxLength: 3 }), max: fc.integer({ min: 0, max: 2 }) }) },
  fc.record({ op: fc.constant('extend' as const), worker, ids: fc.uniqueArray(id, { maxLength: 3 }), lease: fc.constantFrom(1000, 5000) }),
  { weight: 4, arbitrary: fc.record({ op: fc.constantFrom('cancel' as const, 'abort' as const, 'status' as const, 'job' as const), id }) },
  fc.record({ op: fc.constant('ttl' as const), id, ttl: fc.constantFrom(10, 60_000) }),
  fc.record({ op: fc.constant('recover' as const), maxStalls: fc.integer({ min: 0, max: 1 }), group: fc.integer({ min: 0, max: 2 }) }),
  { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(1, 400, 1500, 6000) }) },
  fc.record({ op: fc.constant('pause' as const), paused: fc.boolean() }),
  fc.record({ op: fc.constant('retention' as const), retention: fc.record({ completed: rule, failed: rule, cancelled: rule }, { noNullPrototype: true }) }),
  fc.record({ op: fc.constant('heartbeat' as const), worker, ttl: fc.constantFrom(0, 3000) }),
  { weight: 3, arbitrary: fc.tuple(target, fc.integer({ min: 1, max: 3 }), fc.boolean()).map(([t, limit, dryRun]) => ({ op: 'apply' as const, ...t, limit, dryRun })) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('list' as const), state: fc.constantFrom(...STATES), order: fc.constantFrom('asc' as const, 'desc' as const), limit: fc.integer({ min: 1, max: 4 }) }) },
  fc.record({ op: fc.constantFrom('overview' as const, 'groups' as const, 'workers' as const, 'queues' as const) })
)

/** What a claimed job tells its worker (a backend may hand out live objects: read them at once). */
const claimed = (jobs: ClaimedJob[]): unknown[] => jobs.map(j => [j.id, j.attempts, j.maxAttempts, j.resultTTL, j.createdAt, j.payload.toString(), j.runTimeout, j.readyAt])

const info = (w: string, now: number): WorkerInfo => ({ id: w, host: 'model', pid: 1, concurrency: 2, running: 0, startedAt: now })

/** Runs the model-based test against `factory`'s backend. */
export function modelTests (name: string, factory: StorageFactory, options: { runs?: number, maxOps?: number } = {}): void {
  describe(`Model: ${name}`, () => {
    test('every answer equals the reference state machine\'s for random operation sequences', { timeout: 300_000 }, async () => {
      await fc.assert(fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: options.maxOps ?? 60, size: 'max' }), async ops => {
        const clock = new FakeClock()
        const handle = await factory(clock.read)
        const storage = handle.storage as AdminStorage
        await storage.connect()
        const reader = handle.another() as AdminStorage
        await reader.connect()
        try {
          const q = `m-${randomUUID()}`
          const model = new QueueState(1)
          for (const [step, op] of ops.entries()) {
            const [actual, expected] = await run(op, storage, reader, model, q, clock)
            assert.deepStrictEqual(actual, expected, `step ${step}: ${JSON.stringify(op)}`)
          }
        } finally {
          await reader.disconnect()
          await storage.disconnect()
          await handle.cleanup()
        }
      }), { numRuns: options.runs ?? 100 })
    })
  })
}

/** Runs one operation on the backend and on the model; answers [backend's, model's]. */
async function run (op: Op, storage: AdminStorage, reader: AdminStorage, model: QueueState, q: string, clock: FakeClock): Promise<[unknown, unknown]> {
  const now = clock.now
  switch (op.op) {
    case 'enqueue': {
      const jobs: NewJob[] = op.jobs.map(j => ({ id: j.id, payload: Buffer.from(`p-${j.id}`), maxAttempts: j.maxAttempts, resultTTL: j.ttl, delay: j.delay, notify: j.notify }))
      return [await storage.enqueue(q, jobs), model.enqueue(now, 1, jobs)]
    }
    case 'claim':
      return [claimed(await storage.claim(q, op.worker, { max: op.max, leaseMs: op.lease, blockMs: 0 })), claimed(model.claim(now, op.worker, op.max, op.lease))]
    case 'settle': {
      const result: SettleResult = await storage.settle(q, op.worker, op.settlements, { max: op.max, leaseMs: 5000 })
      const actual = [claimed(result.jobs), [...result.refused]]
      const refused = [...model.settle(now, op.worker, op.settlements)]
      return [actual, [claimed(op.max > 0 ? model.claim(now, op.worker, op.max, 5000) : []), refused]]
    }
    case 'extend':
      return [await storage.extendLeases(q, op.worker, op.ids, op.lease), model.extend(now, op.worker, op.ids, op.lease)]
    case 'cancel':
      return [await storage.cancel(q, op.id), model.cancel(now, op.id)]
    case 'abort':
      return [await storage.abort(q, op.id, 60_000), model.abort(now, op.id, 60_000)]
    case 'status':
      return [await reader.getStatus(q, op.id), model.status(op.id, now)]
    case 'job':
      return [await reader.getJob(q, op.id), getJob(model, op.id, now)]
    case 'ttl':
      return [await storage.updateResultTTL(q, op.id, op.ttl), model.updateTTL(now, op.id, op.ttl)]
    case 'recover': {
      const group = op.group < 2 ? GROUPS[op.group] : undefined
      return [await storage.recoverStalled(q, op.maxStalls, Buffer.from('stalled'), group), model.recover(now, op.maxStalls, Buffer.from('stalled'), group)]
    }
    case 'advance':
      clock.advance(op.ms)
      return [null, null]
    case 'pause':
      await storage.setPaused(q, op.paused)
      model.setPaused(op.paused)
      return [null, null]
    case 'retention':
      await storage.setRetention(q, op.retention)
      model.setRetention(now, op.retention)
      return [null, null]
    case 'heartbeat':
      await storage.heartbeat(q, info(op.worker, now), op.ttl)
      model.heartbeat(now, info(op.worker, now), op.ttl)
      return [null, null]
    case 'apply': {
      // A negative `before` means "that many ms ago".
      const target = 'before' in op.target && op.target.before !== undefined ? { ...op.target, before: now + op.target.before } : op.target
      return [await storage.apply(q, op.action, target, { limit: op.limit, dryRun: op.dryRun }), model.apply(now, op.action, target, op.limit, op.dryRun)]
    }
    case 'list': {
      // Every page, following the cursors to the end.
      const pages: unknown[][] = [[], []]
      for (const [i, list] of [(after?: number) => reader.listJobs(q, { state: op.state, order: op.order, limit: op.limit, after }), async (after?: number) => listJobs(model, { state: op.state, order: op.order, limit: op.limit, after }, now)].entries()) {
        let after: number | undefined
        for (let guard = 0; guard < 20; guard++) {
          const page = await list(after)
          pages[i].push(page)
          if (page.next === null) break
          after = page.next
        }
      }
      return [pages[0], pages[1]]
    }
    case 'overview':
      return [await reader.overview(q), overview(model, now)]
    case 'groups':
      return [await reader.failureGroups(q, 10), failureGroups(model, 10, now)]
    case 'workers':
      return [await reader.workers(q), model.workers(now)]
    case 'queues':
      return [(await reader.queues()).filter(s => s.name === q), model.empty ? [] : [summary(q, model, now)]]
  }
}
