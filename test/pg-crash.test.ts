/**
 * PostgreSQL under failure, on a throwaway cluster of its own: consumer processes SIGKILLed at
 * random moments, the server crashed and restarted mid-run, the LISTEN connection cut, and
 * migrations run by many processes at once.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'
import { Reaper, StorageError } from '../src/index.ts'
import { PgStorage } from '../src/storage/pg.ts'
import type { NewJob, Notice, StateCounts } from '../src/storage/types.ts'
import { childPool } from './fixtures/child-pool.ts'
import { sql, startCluster } from './fixtures/pg-server.ts'
import { lifo, prng, type Defer } from './fixtures/redis-tools.ts'
import { failedStartTests } from './lifecycle-suite.ts'
import { until } from './storage-contract.ts'

const cluster = await startCluster()
after(() => cluster.destroy())

const CHILD = fileURLToPath(new URL('./fixtures/pg-child.ts', import.meta.url))

const fresh = (): string => `s_${randomBytes(6).toString('hex')}`

function job (id: string, payload: number, maxAttempts = 20): NewJob {
  return { id, payload: Buffer.from(JSON.stringify(payload)), maxAttempts, resultTTL: 600_000, delay: 0 }
}

const unfinished = (c: StateCounts): number => c.queued + c.processing + c.delayed + c.failing

async function storageFor (defer: Defer, schema: string, options: Partial<ConstructorParameters<typeof PgStorage>[0]> = {}): Promise<PgStorage> {
  const storage = new PgStorage({ connectionString: cluster.url, schema, poolSize: 4, ...options })
  await storage.connect()
  defer(() => storage.disconnect())
  return storage
}

async function reaperFor (defer: Defer, storage: PgStorage, name: string): Promise<Set<string>> {
  const reaper = new Reaper({ storage, name, visibilityTimeout: 1000, interval: 200, maxStalls: 100, leaderElection: { enabled: false } })
  const requeued = new Set<string>()
  reaper.on('requeued', id => requeued.add(id))
  // The reaper's own calls fail while the server is down: it carries on.
  reaper.on('error', () => {})
  await reaper.start()
  defer(() => reaper.stop())
  return requeued
}

async function assertAllCompleted (storage: PgStorage, name: string, ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 200) {
    const records = await Promise.all(ids.slice(i, i + 200).map(id => storage.getStatus(name, id)))
    for (const [j, record] of records.entries()) assert.equal(record?.state, 'completed', `${ids[i + j]} is ${record?.state}`)
  }
}

test('consumers SIGKILLed at random moments never strand a job: every one completes', async t => {
  const defer = lifo(t)
  const schema = fresh()
  const name = 'crash'
  const storage = await storageFor(defer, schema)
  const requeued = await reaperFor(defer, storage, name)
  const pool = childPool(defer, CHILD, { RELAYQ_URL: cluster.url, RELAYQ_SCHEMA: schema, RELAYQ_QUEUE: name, RELAYQ_CONCURRENCY: '20' })
  for (let i = 0; i < 3; i++) pool.spawn('consume')

  // Jobs arrive in small batches over a few seconds: consumers switch between settle-and-claim
  // calls and waiting for a wake-up while they are being killed.
  const TOTAL = 1500
  const BATCH = 25
  const ids = Array.from({ length: TOTAL }, (_, i) => `job-${i}`)
  const progress = { enqueued: false }
  const enqueuing = (async () => {
    for (let i = 0; i < TOTAL; i += BATCH) {
      const outcomes = await storage.enqueue(name, ids.slice(i, i + BATCH).map((id, j) => job(id, i + j + 1)))
      assert.deepEqual(outcomes.filter(o => o.status !== 'queued'), [])
      await delay(40)
    }
  })().finally(() => { progress.enqueued = true })

  const random = prng(0x5eed)
  let kills = 0
  while (!progress.enqueued || kills < 6) {
    await delay(50 + Math.floor(random() * 300))
    const victims = [...pool.consuming]
    if (victims.length === 0) continue
    await pool.kill(victims[Math.floor(random() * victims.length)])
    kills++
    pool.spawn('consume')
  }
  await enqueuing

  await until(async () => unfinished(await storage.counts(name)) === 0, 30_000)
  assert.deepEqual(await storage.counts(name), { queued: 0, delayed: 0, processing: 0, failing: 0, completed: 1000, failed: 0, cancelled: 0 })
  assert.equal((await storage.overview(name)).totals.completed, TOTAL, 'the history keeps 1,000; every job completed')
  await assertAllCompleted(storage, name, ids)
  assert.ok(requeued.size > 0, 'no job had to be recovered')
  t.diagnostic(`${kills} kills, ${requeued.size} jobs recovered by the reaper`)
})

test('the server crashes and restarts mid-run: producers fail with StorageError only while it is down, consumers resume, no job is lost', async t => {
  const defer = lifo(t)
  const schema = fresh()
  const name = 'restart'
  const storage = await storageFor(defer, schema, { connectTimeout: 2000 })
  const gaps: Notice[] = []
  defer(await storage.subscribe(name, n => { if (n.type === 'gap') gaps.push(n) }))
  await reaperFor(defer, storage, name)
  const pool = childPool(defer, CHILD, { RELAYQ_URL: cluster.url, RELAYQ_SCHEMA: schema, RELAYQ_QUEUE: name, RELAYQ_CONCURRENCY: '10' })
  pool.spawn('consume')
  pool.spawn('consume')
  await until(() => pool.consuming.size === 2, 20_000)

  const acknowledged: string[] = []
  const failures: unknown[] = []
  let down = false
  let failedWhileUp = 0
  const run = { producing: true }
  let n = 0
  const producer = (async () => {
    while (run.producing) {
      const batch = Array.from({ length: 10 }, () => `job-${n++}`)
      try {
        const outcomes = await storage.enqueue(name, batch.map((id, i) => job(id, i + 1)))
        for (const [i, o] of outcomes.entries()) if (o.status === 'queued') acknowledged.push(batch[i])
      } catch (err) {
        failures.push(err)
        if (!down) failedWhileUp++
      }
      await delay(20)
    }
  })()
  await until(async () => (await storage.counts(name)).completed >= 200, 20_000)

  down = true
  await cluster.stop()
  const before = failures.length
  await until(() => failures.length >= before + 3, 20_000)
  await cluster.start()
  // A call that started while the server was down may still fail right after the start.
  await delay(500)
  down = false
  const settled = acknowledged.length
  await until(() => acknowledged.length >= settled + 100, 30_000)
  run.producing = false
  await producer

  assert.ok(failures.length > 0)
  for (const err of failures) assert.ok(err instanceof StorageError, `not a StorageError: ${String(err)}`)
  assert.equal(failedWhileUp, 0, 'a call failed while the server was up')
  await until(async () => unfinished(await storage.counts(name)) === 0, 30_000).catch(async err => {
    t.diagnostic(JSON.stringify(await storage.counts(name)))
    t.diagnostic(JSON.stringify((await sql(cluster.url, `SELECT state, count(*) FROM ${schema}.relayq_jobs GROUP BY state`)).rows))
    t.diagnostic(JSON.stringify((await sql(cluster.url, 'SELECT pid, application_name, state, query, backend_start FROM pg_stat_activity WHERE application_name LIKE \'relayq%\'')).rows))
    throw err
  })
  await assertAllCompleted(storage, name, acknowledged)
  assert.ok(gaps.length > 0, 'the lost LISTEN connection was not reported as a gap')
  t.diagnostic(`${acknowledged.length} jobs acknowledged, ${failures.length} calls failed while the server was down`)
})

test('a LISTEN connection cut by the server comes back: a gap is reported and blocked claims still wake', async t => {
  const defer = lifo(t)
  const schema = fresh()
  const name = 'listen'
  const storage = await storageFor(defer, schema)
  const producer = await storageFor(defer, schema)
  let gapped: (n: Notice) => void = () => {}
  const gap = new Promise<Notice>(resolve => { gapped = resolve })
  defer(await storage.subscribe(name, n => { if (n.type === 'gap') gapped(n) }))
  // A blocked claim makes the instance LISTEN for wake-ups, then for the jobs enqueues hand it.
  const first = storage.claim(name, 'w', { max: 1, leaseMs: 30_000, blockMs: 30_000 })
  await until(async () => (await sql(cluster.url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'relayq-listen' AND query LIKE 'LISTEN %\\_j%'")).rows[0].n === 1)
  await producer.enqueue(name, [job('a', 1)])
  assert.deepEqual((await first).map(j => j.id), ['a'])

  await sql(cluster.url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'relayq-listen'")
  assert.deepEqual(await gap, { type: 'gap' })
  const second = storage.claim(name, 'w', { max: 1, leaseMs: 30_000, blockMs: 30_000 })
  await producer.enqueue(name, [job('b', 2)])
  assert.deepEqual((await second).map(j => j.id), ['b'])
})

test('many processes migrating one schema at once apply each migration exactly once', async t => {
  const defer = lifo(t)
  const schema = fresh()
  const pool = childPool(defer, CHILD, { RELAYQ_URL: cluster.url, RELAYQ_SCHEMA: schema })
  const runs = Array.from({ length: 6 }, () => pool.spawn('migrate'))
  const codes = await Promise.all(runs.map(async child => (await once(child, 'exit'))[0]))
  assert.deepEqual(codes, [0, 0, 0, 0, 0, 0])
  const { rows } = await sql(cluster.url, `SELECT version, count(*)::int AS n FROM ${schema}.relayq_migrations GROUP BY version ORDER BY version`)
  assert.ok(rows.length > 0)
  for (const row of rows) assert.equal(row.n, 1)
  const storage = await storageFor(defer, schema)
  assert.deepEqual(await storage.enqueue('q', [job('x', 1)]), [{ status: 'queued' }])
})

// Last: it stops the server, which comes back with fix().
failedStartTests('postgres', async () => {
  await cluster.stop()
  const schema = fresh()
  return {
    make: () => new PgStorage({ connectionString: cluster.url, schema, connectTimeout: 2000 }),
    fix: () => cluster.start(),
    cleanup: async () => {}
  }
})
