/**
 * PgStorage: how a blocking claim waits after a call that drained the queue (no claim statement
 * that would find nothing), and how transactions of one queue take their lanes (migration 4).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, test, type TestContext } from 'node:test'
import pg from 'pg'
import { PgStorage, type PgStorageOptions } from '../src/storage/pg.ts'
import { Names } from '../src/storage/pg/names.ts'
import type { NewJob } from '../src/storage/types.ts'
import { startPg } from './fixtures/pg-server.ts'

const db = await startPg()
after(() => db.stop())

function job (id: string, overrides: Partial<NewJob> = {}): NewJob {
  return { id, payload: Buffer.from(id), maxAttempts: 3, resultTTL: 60_000, delay: 0, ...overrides }
}

/** A storage on a fresh schema through a pool of ours whose claim statements are counted. */
async function counted (t: TestContext): Promise<{ storage: PgStorage, other: PgStorage, claims: () => number, schema: string }> {
  const schema = `s_${randomBytes(6).toString('hex')}`
  const pool = new pg.Pool({ connectionString: db.url, max: 4 })
  let claims = 0
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown
  ;(pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const name = (args[0] as { name?: string }).name
    if (typeof name === 'string' && name.endsWith('_claim')) claims++
    return query(...args)
  }
  const storage = new PgStorage({ pool: pool as unknown as PgStorageOptions['pool'], schema })
  const other = new PgStorage({ connectionString: db.url, schema, poolSize: 2 })
  await storage.connect()
  await other.connect()
  t.after(async () => {
    await storage.disconnect()
    await other.disconnect()
    await pool.end()
  })
  return { storage, other, claims: () => claims, schema }
}

test('postgres: a blocking claim right after a settle that drained the queue waits without claiming, and is handed the next job', async t => {
  const { storage, other, claims } = await counted(t)
  // Listening and registered from here on: the job comes to the waiting claim.
  const first = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000 })
  await other.enqueue('q', [job('first')])
  const [taken] = await first
  assert.equal(taken.id, 'first')
  // The settle claims nothing (the queue is drained) and registers the worker as waiting.
  await storage.settle('q', 'w', [{ type: 'complete', id: 'first', attempt: taken.attempts, result: Buffer.from('r'), ttl: 60_000 }], { max: 5, leaseMs: 30_000 })
  const before = claims()
  const waiting = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000 })
  await other.enqueue('q', [job('second')])
  const started = Date.now()
  assert.deepEqual((await waiting).map(j => j.id), ['second'])
  assert.ok(Date.now() - started < 10_000, 'handed the job, not ended by the block timeout')
  // No claim statement: the wait began at once, and the enqueue handed the job over.
  assert.equal(claims() - before, 0)
})

test('postgres: a job enqueued between the draining claim and the blocking claim is not missed', async t => {
  const { storage, other } = await counted(t)
  assert.deepEqual(await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 10 }), [])
  assert.deepEqual(await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 0 }), [])
  await other.enqueue('q', [job('between')])
  const started = Date.now()
  assert.deepEqual((await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000 })).map(j => j.id), ['between'])
  assert.ok(Date.now() - started < 10_000)
})

test('postgres: after a draining claim, a blocking claim wakes at the due time of the delayed job that claim saw', async t => {
  const { storage, other } = await counted(t)
  assert.deepEqual(await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 10 }), [])
  await other.enqueue('q', [job('later', { delay: 300 })])
  assert.deepEqual(await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 0 }), [])
  const started = Date.now()
  assert.deepEqual((await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000 })).map(j => j.id), ['later'])
  assert.ok(Date.now() - started < 10_000, 'woken at the due time, not by the block timeout')
})

test('postgres: transactions of one queue take different lanes without locking a lane row, and their counts add up', async t => {
  const { other, schema } = await counted(t)
  await other.enqueue('q', [job('a')])
  const n = new Names(schema, 'relayq_')
  const clients = await Promise.all([0, 1, 2].map(async () => {
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    t.after(() => c.end())
    return c
  }))
  const [a, b, c] = clients
  const q = Buffer.from('q')
  await a.query('BEGIN')
  await b.query('BEGIN')
  const la = (await a.query(`SELECT ${n.of('lane')}($1) AS l`, [q])).rows[0].l
  const lb = (await b.query(`SELECT ${n.of('lane')}($1) AS l`, [q])).rows[0].l
  assert.notEqual(la, lb)
  // A transaction asks again: the lane it holds.
  assert.equal((await a.query(`SELECT ${n.of('lane')}($1) AS l`, [q])).rows[0].l, la)
  // No lane row is locked by taking a lane.
  assert.equal((await c.query(`SELECT lane FROM ${n.of('lanes')} WHERE queue = $1 FOR UPDATE NOWAIT`, [q])).rows.length, 8)
  await a.query(`SELECT ${n.of('count')}($1, '{1,0,0,0,0,0,0}', '{1,0,0,0,0,0}')`, [q])
  await b.query(`SELECT ${n.of('count')}($1, '{1,0,0,0,0,0,0}', '{1,0,0,0,0,0}')`, [q])
  await a.query('COMMIT')
  await b.query('COMMIT')
  assert.equal((await other.counts('q')).queued, 3)
  assert.equal((await other.overview('q')).totals.enqueued, 3)
})

/** Resolves once `check` holds (polled every 10 ms, up to 5 s). */
async function until (check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000
  while (!await check()) {
    if (Date.now() > deadline) throw new Error('Condition not met within 5000 ms')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** Workers registered as waiting for jobs (a registration an enqueue used up has mx 0). */
async function parked (schema: string): Promise<number> {
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  try {
    return (await c.query(`SELECT count(*)::int AS n FROM ${new Names(schema, 'relayq_').of('parked')} WHERE mx > 0`)).rows[0].n
  } finally {
    await c.end()
  }
}

test('postgres: an enqueue hands its job to a waiting consumer, leased to it, without a claim statement', async t => {
  const { storage, other, claims, schema } = await counted(t)
  const waiting = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000 })
  await until(async () => await parked(schema) === 1)
  const before = claims()
  await other.enqueue('q', [job('handed'), job('late', { delay: 60_000 })])
  const jobs = await waiting
  assert.deepEqual(jobs.map(j => [j.id, j.attempts, j.payload.toString()]), [['handed', 1, 'handed']])
  assert.equal(claims() - before, 0)
  assert.equal((await other.getStatus('q', 'handed'))?.state, 'processing')
  assert.deepEqual(await other.counts('q'), { queued: 0, delayed: 1, processing: 1, failing: 0, completed: 0, failed: 0, cancelled: 0 })
  assert.equal(await parked(schema), 0)
  // Leased to w: its settlement is accepted.
  const settled = await storage.settle('q', 'w', [{ type: 'complete', id: 'handed', attempt: 1, result: Buffer.from('r'), ttl: 60_000 }], { max: 0, leaseMs: 30_000 })
  assert.deepEqual(settled.refused, [])
  assert.equal((await other.getStatus('q', 'handed'))?.state, 'completed')
})

test('postgres: a waiting consumer takes only as many jobs as it asked for; the rest are queued', async t => {
  const { storage, other, schema } = await counted(t)
  const waiting = storage.claim('q', 'w', { max: 2, leaseMs: 30_000, blockMs: 20_000 })
  await until(async () => await parked(schema) === 1)
  await other.enqueue('q', [job('a'), job('b'), job('c')])
  assert.deepEqual((await waiting).map(j => j.id), ['a', 'b'])
  assert.equal((await other.counts('q')).queued, 1)
  assert.deepEqual((await other.claim('q', 'x', { max: 5, leaseMs: 30_000, blockMs: 0 })).map(j => j.id), ['c'])
})

test('postgres: jobs handed to a consumer that stopped waiting are answered by its next claim; a disconnected instance is handed none', async t => {
  const { storage, other, schema } = await counted(t)
  const abort = new AbortController()
  const waiting = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000, signal: abort.signal })
  await until(async () => await parked(schema) === 1)
  abort.abort()
  assert.deepEqual(await waiting, [])
  await other.enqueue('q', [job('kept')])
  let got: string[] = []
  await until(async () => (got = (await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 0 })).map(j => j.id)).length > 0)
  assert.deepEqual(got, ['kept'])

  const abort2 = new AbortController()
  const again = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000, signal: abort2.signal })
  await until(async () => await parked(schema) === 1)
  abort2.abort()
  await again
  await storage.disconnect()
  assert.equal(await parked(schema), 0)
  await other.enqueue('q', [job('queued')])
  assert.equal((await other.getStatus('q', 'queued'))?.state, 'queued')
  await storage.connect()
})

test('postgres: a paused queue hands no job to a waiting consumer', async t => {
  const { storage, other } = await counted(t)
  await other.enqueue('q', [job('first')])
  await other.setPaused('q', true)
  assert.deepEqual(await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 200 }), [])
  const waiting = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 300 })
  await other.enqueue('q', [job('second')])
  assert.deepEqual(await waiting, [])
  assert.equal((await other.getStatus('q', 'second'))?.state, 'queued')
})

test('postgres: a job too large for a notice is queued and woken instead of handed over', async t => {
  const { storage, other, claims, schema } = await counted(t)
  const big = Buffer.alloc(5600, 'x')
  const waiting = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000 })
  await until(async () => await parked(schema) === 1)
  let before = claims()
  await other.enqueue('q', [{ ...job('fits'), payload: big }])
  assert.deepEqual((await waiting).map(j => [j.id, j.payload.equals(big)]), [['fits', true]])
  assert.equal(claims() - before, 0)
  const huge = Buffer.alloc(7000, 'y')
  const next = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000 })
  await until(async () => await parked(schema) === 1)
  before = claims()
  await other.enqueue('q', [{ ...job('huge'), payload: huge }])
  assert.deepEqual((await next).map(j => [j.id, j.payload.equals(huge)]), [['huge', true]])
  assert.equal(claims() - before, 1)
})
