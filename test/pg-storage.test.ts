import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, test, type TestContext } from 'node:test'
import pg from 'pg'
import { InvalidArgumentError, Queue, StorageError } from '../src/index.ts'
import { PgStorage, type PgStorageOptions } from '../src/storage/pg.ts'
import { MIGRATIONS } from '../src/storage/pg/migrate.ts'
import { Names } from '../src/storage/pg/names.ts'
import type { NewJob } from '../src/storage/types.ts'
import { sql, startPg } from './fixtures/pg-server.ts'
import { adminTests } from './admin-suite.ts'
import { failureTests } from './failure-suite.ts'
import { modelTests } from './model-suite.ts'
import { queueTests } from './queue-suite.ts'
import { FakeClock, storageContract, type StorageHandle } from './storage-contract.ts'

const db = await startPg()
after(() => db.stop())

/**
 * Storages over one fresh schema. The schemas go with the database when the file ends: a test's
 * cleanup may run before its queue stops, which still releases its reaper lock.
 */
function handle (clock?: () => number): StorageHandle {
  const schema = `s_${randomBytes(6).toString('hex')}`
  const make = (): PgStorage => new PgStorage({ connectionString: db.url, schema, clock, poolSize: 4 })
  return { storage: make(), another: make, cleanup: async () => {} }
}

storageContract('postgres', async clock => handle(clock))
queueTests('postgres', async () => handle())
adminTests('postgres', async clock => handle(clock))
failureTests('postgres', async () => handle())
// One schema for every run (each run has a queue of its own): migrations run once.
const modelSchema = `s_${randomBytes(6).toString('hex')}`
modelTests('postgres', async clock => {
  const make = (): PgStorage => new PgStorage({ connectionString: db.url, schema: modelSchema, clock, poolSize: 2 })
  return { storage: make(), another: make, cleanup: async () => {} }
}, { runs: 60 })

/** A connected storage on a fresh schema of the file's database. */
async function open (t: TestContext, options: PgStorageOptions = {}): Promise<PgStorage> {
  const storage = new PgStorage({ connectionString: db.url, schema: `s_${randomBytes(6).toString('hex')}`, poolSize: 4, ...options })
  await storage.connect()
  t.after(() => storage.disconnect())
  return storage
}

function job (id: string, payload: Buffer | string = `payload of ${id}`, overrides: Partial<NewJob> = {}): NewJob {
  return { id, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), maxAttempts: 3, resultTTL: 60_000, delay: 0, ...overrides }
}

test('postgres: options are validated; identifiers never reach SQL unchecked', () => {
  const bad: Array<[PgStorageOptions, RegExp]> = [
    [{ tablePrefix: 'x"; DROP TABLE users; --' }, /tablePrefix/],
    [{ tablePrefix: 'Upper' }, /tablePrefix/],
    [{ tablePrefix: '1abc' }, /tablePrefix/],
    [{ tablePrefix: 'a'.repeat(41) }, /tablePrefix/],
    [{ schema: 'public; DROP SCHEMA public' }, /schema/],
    [{ schema: '' }, /schema/],
    [{ connectionString: 'mysql://x' }, /connectionString/],
    [{ poolSize: 0 }, /poolSize/],
    [{ queryTimeout: -1 }, /queryTimeout/],
    [{ connectionString: db.url, pool: {} as never }, /only one/],
    [{ clock: 5 as never }, /clock/]
  ]
  for (const [options, message] of bad) assert.throws(() => new PgStorage(options), (err: Error) => err instanceof InvalidArgumentError && message.test(err.message))
  assert.doesNotThrow(() => new PgStorage({ tablePrefix: '', schema: 'relayq_jobs_2' }))
})

test('postgres: hostile ids, queue names and payloads are stored and answered byte for byte', async t => {
  const storage = await open(t)
  const ids = ["'; DROP TABLE relayq_jobs; --", 'nul\u0000inside', '"quoted"', 'back\\slash', '日本語 🎉', '\u{10FFFF}', 'x'.repeat(1024), '$1', 'E\'\\x00\'']
  const queue = "q'; DELETE FROM relayq_queues; --\u0000"
  const payloads = ids.map((_, i) => Buffer.from(Array.from({ length: 256 + i }, (_, b) => b % 256)))
  assert.deepEqual(await storage.enqueue(queue, ids.map((id, i) => job(id, payloads[i]))), ids.map(() => ({ status: 'queued' })))
  const claimed = await storage.claim(queue, "w'orker\u0000", { max: 100, leaseMs: 30_000, blockMs: 0 })
  assert.deepEqual(claimed.map(j => j.id), ids)
  assert.deepEqual(claimed.map(j => j.payload), payloads)
  const { refused } = await storage.settle(queue, "w'orker\u0000", claimed.map((j, i) => ({ type: 'complete' as const, id: j.id, attempt: j.attempts, result: payloads[i], ttl: 60_000 })), { max: 0, leaseMs: 1 })
  assert.deepEqual(refused, [])
  for (const [i, id] of ids.entries()) assert.deepEqual((await storage.getStatus(queue, id))?.result, payloads[i])
  assert.deepEqual((await storage.queues()).map(q => q.name), [queue])
  assert.equal((await storage.listJobs(queue, { state: 'completed', limit: 100, order: 'asc' })).jobs.length, ids.length)
})

test('postgres: a result too large for a NOTIFY payload reaches enqueueAndWait by a read back', async t => {
  const schema = `s_${randomBytes(6).toString('hex')}`
  const queue = new Queue<number, string>({ storage: new PgStorage({ connectionString: db.url, schema }), name: 'big', concurrency: 2 })
  queue.on('error', err => { throw err })
  queue.execute(async n => 'r'.repeat(n.payload))
  await queue.start()
  t.after(() => queue.stop())
  // 20 KB: far over NOTIFY's 8,000 bytes; 100 bytes: inline.
  assert.equal(await queue.enqueueAndWait('large', 20_000, { timeout: 10_000 }), 'r'.repeat(20_000))
  assert.equal(await queue.enqueueAndWait('small', 100, { timeout: 10_000 }), 'r'.repeat(100))
})

test('postgres: many more calls in flight than pool connections never deadlock', async t => {
  const schema = `s_${randomBytes(6).toString('hex')}`
  const queue = new Queue<number, number>({ storage: new PgStorage({ connectionString: db.url, schema, poolSize: 2 }), name: 'tight', concurrency: 20 })
  queue.on('error', err => { throw err })
  queue.execute(async n => n.payload * 2)
  await queue.start()
  t.after(() => queue.stop())
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => queue.enqueueAndWait(`j${i}`, i, { timeout: 30_000 })))
  assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i * 2))
})

test('postgres: a connection holding locks on relayq rows: locked jobs are skipped, a queue whose lanes are all locked fails with StorageError after queryTimeout', async t => {
  const storage = await open(t, { queryTimeout: 1000 })
  await storage.enqueue('q', [job('a'), job('b'), job('c')])
  const holder = new pg.Client({ connectionString: db.url })
  await holder.connect()
  t.after(() => holder.end())
  // An application's transaction reading a job FOR UPDATE: claims go around it.
  await holder.query('BEGIN')
  await holder.query(`SELECT 1 FROM ${storage.tables.jobs} WHERE id = $1 FOR UPDATE`, [Buffer.from('a')])
  const claimed = await storage.claim('q', 'w', { max: 3, leaseMs: 30_000, blockMs: 0 })
  assert.deepEqual(claimed.map(j => j.id), ['b', 'c'])
  await holder.query('ROLLBACK')
  // Locks on every lane of the queue stall its state changes: they fail once queryTimeout passes.
  await holder.query('BEGIN')
  await holder.query(`SELECT 1 FROM ${storage.tables.lanes} FOR UPDATE`)
  await assert.rejects(storage.enqueue('q', [job('d')]), StorageError)
  assert.equal((await storage.getStatus('q', 'b'))?.state, 'processing', 'reads do not wait for the lock')
  await holder.query('ROLLBACK')
  assert.deepEqual(await storage.enqueue('q', [job('d')]), [{ status: 'queued' }])
  assert.deepEqual((await storage.claim('q', 'w', { max: 3, leaseMs: 30_000, blockMs: 0 })).map(j => j.id), ['a', 'd'])
})

test('postgres: enqueueIn a caller\'s transaction: the job exists if and only if it commits, and the queue is not held meanwhile', async t => {
  const storage = await open(t)
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  t.after(() => client.end())
  await client.query('BEGIN')
  assert.deepEqual(await storage.enqueueIn(client, 'q', [job('kept')]), [{ status: 'queued' }])
  // Meanwhile the queue works: the open transaction holds no lock on it.
  await storage.enqueue('q', [job('other')])
  assert.deepEqual((await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 0 })).map(j => j.id), ['other'])
  assert.equal(await storage.getStatus('q', 'kept'), null, 'not visible before the commit')
  // A blocked claim is woken by the commit.
  const waiting = storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 10_000 })
  await client.query('COMMIT')
  assert.deepEqual((await waiting).map(j => j.id), ['kept'])

  await client.query('BEGIN')
  await storage.enqueueIn(client, 'q', [job('dropped')])
  await client.query('ROLLBACK')
  assert.equal(await storage.getStatus('q', 'dropped'), null)
  assert.deepEqual(await storage.claim('q', 'w', { max: 5, leaseMs: 30_000, blockMs: 0 }), [])

  // An id taken when the transaction enqueues is answered as such.
  await client.query('BEGIN')
  assert.deepEqual(await storage.enqueueIn(client, 'q', [job('kept'), job('new')]), [{ status: 'duplicate', state: 'processing' }, { status: 'queued' }])
  await client.query('COMMIT')
  assert.equal((await storage.getStatus('q', 'new'))?.state, 'queued')
})

test('postgres: finished records are deleted once out of history and result cache', async t => {
  const clock = new FakeClock()
  const storage = await open(t, { clock: clock.read })
  await storage.setRetention('q', { completed: { age: 1000, count: 10 }, failed: { age: 0, count: 0 }, cancelled: { age: 0, count: 0 } })
  const rows = async (): Promise<number> => Number((await sql(db.url, `SELECT count(*) FROM ${storage.tables.jobs}`)).rows[0].count)
  for (let round = 0; round < 5; round++) {
    await storage.enqueue('q', Array.from({ length: 100 }, (_, i) => job(`r${round}-${i}`, 'p', { resultTTL: 500 })))
    const claimed = await storage.claim('q', 'w', { max: 100, leaseMs: 30_000, blockMs: 0 })
    await storage.settle('q', 'w', claimed.map(j => ({ type: 'complete' as const, id: j.id, attempt: j.attempts, result: Buffer.from('r'), ttl: 500 })), { max: 0, leaseMs: 1 })
    assert.equal((await storage.counts('q')).completed, 10, 'history keeps the newest 10')
    clock.advance(2000)
    await storage.recoverStalled('q', 1, Buffer.from('stalled'))
    assert.equal(await rows(), 0, `round ${round}: every record left history and its cache expired`)
  }
  assert.equal((await storage.counts('q')).completed, 0)
  assert.equal((await storage.overview('q')).totals.completed, 500)
})

test('postgres: a schema at version 1 is migrated to the latest (2: trace contexts, 3: faster claims, 4: lanes by advisory locks, 5: jobs handed to waiting consumers) with its jobs, queued and in the inbox, intact', async t => {
  const schema = `s_${randomBytes(6).toString('hex')}`
  const n = new Names(schema, 'relayq_')
  // The schema as relayq with migration 1 only left it, with a queued job and one enqueued inside a transaction.
  await sql(db.url, `CREATE SCHEMA "${schema}";
    CREATE TABLE ${n.of('migrations')} (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
    ${MIGRATIONS[0].sql(n)}
    INSERT INTO ${n.of('migrations')} (version, name) VALUES (1, 'v1');`)
  const q = Buffer.from('old')
  await sql(db.url, `SELECT * FROM ${n.of('enqueue')}($1, $2, NULL, $3::bytea[], $4::bytea[], '{3}', '{60000}', '{0}', '{0}', '{false}')`,
    [q, Date.now(), [Buffer.from('queued')], [Buffer.from('p1')]])
  await sql(db.url, `SELECT * FROM ${n.of('enqueue_tx')}($1, $2, $3::bytea[], $4::bytea[], '{3}', '{60000}', '{0}', '{0}')`,
    [q, Date.now(), [Buffer.from('inboxed')], [Buffer.from('p2')]])
  const storage = new PgStorage({ connectionString: db.url, schema, poolSize: 2 })
  await storage.connect()
  t.after(() => storage.disconnect())
  const { rows } = await sql(db.url, `SELECT version FROM ${n.of('migrations')} ORDER BY version`)
  assert.deepEqual(rows.map(r => r.version), [1, 2, 3, 4, 5])
  const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 vendor=abc'
  await storage.enqueue('old', [{ id: 'traced', payload: Buffer.from('p3'), maxAttempts: 3, resultTTL: 60_000, delay: 0, trace }])
  const claimed = await storage.claim('old', 'w', { max: 10, leaseMs: 30_000, blockMs: 0 })
  assert.deepEqual(claimed.map(j => [j.id, j.payload.toString(), j.trace]).sort(), [['inboxed', 'p2', undefined], ['queued', 'p1', undefined], ['traced', 'p3', trace]])
  // A trace context enqueued inside a transaction travels through the inbox too.
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  t.after(() => client.end())
  await client.query('BEGIN')
  await storage.enqueueIn(client, 'old', [{ id: 'tx', payload: Buffer.from('p4'), maxAttempts: 3, resultTTL: 60_000, delay: 0, trace }])
  await client.query('COMMIT')
  assert.deepEqual((await storage.claim('old', 'w', { max: 10, leaseMs: 30_000, blockMs: 0 })).map(j => [j.id, j.trace]), [['tx', trace]])
})
