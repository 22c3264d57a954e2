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

test('postgres: a blocking claim right after a claim that drained the queue waits without claiming, and wakes for the next job', async t => {
  const { storage, other, claims } = await counted(t)
  // Listening from here on (a blocking claim LISTENs); then a claim that finds the queue drained.
  assert.deepEqual(await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 10 }), [])
  assert.deepEqual(await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 0 }), [])
  const before = claims()
  const waiting = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 20_000 })
  await other.enqueue('q', [job('second')])
  const started = Date.now()
  assert.deepEqual((await waiting).map(j => j.id), ['second'])
  assert.ok(Date.now() - started < 10_000, 'woken by the enqueue, not by the block timeout')
  // One claim statement: the one after the wake-up (none before waiting).
  assert.equal(claims() - before, 1)
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
