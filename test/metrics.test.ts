import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { Admin, MemoryStorage, Producer, Queue, Reaper } from '../src/index.ts'
import { prometheusMetrics } from '../src/metrics/index.ts'
import { probe } from '../src/instrument.ts'

/** `name{labels} value` lines of a scrape, as a map (labels sorted as prom-client writes them). */
function samples (text: string): Map<string, number> {
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    map.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return map
}

test('a scripted run: exact counters, histogram counts and gauges in one scrape', async t => {
  let now = Date.now()
  const storage = new MemoryStorage({ clock: () => now })
  const registry = new Registry()
  const admin = new Admin({ storage, clock: () => now })
  const metrics = prometheusMetrics({ registry, admin, gaugeInterval: 0 })
  t.after(() => metrics.close())
  t.after(() => admin.close())
  const queue = new Queue<{ fail: number }, string>({ storage, name: 'mail', concurrency: 4, maxRetries: 2, backoff: { type: 'fixed', delay: 0 }, reaper: false })
  t.after(() => queue.stop())
  // fail: how many attempts throw before one succeeds (2 attempts allowed).
  queue.execute(async job => {
    if (job.attempts <= job.payload.fail) throw new Error(`boom ${job.id}`)
    return 'ok'
  })
  await queue.start()
  for (let i = 0; i < 5; i++) assert.equal(await queue.enqueueAndWait(`ok-${i}`, { fail: 0 }), 'ok')
  assert.equal(await queue.enqueueAndWait('flaky', { fail: 1 }), 'ok')
  await assert.rejects(queue.enqueueAndWait('broken', { fail: 9 }), { code: 'JOB_FAILED' })
  assert.deepEqual(await queue.enqueue('ok-0', { fail: 0 }), { status: 'completed', result: 'ok' }) // not stored: not counted
  const done = once(queue, 'completed')
  assert.deepEqual(await queue.enqueue('plain', { fail: 0 }), { status: 'queued' })
  await done

  // A stalled job: claimed by a worker that vanishes, recovered by a reaper once its lease expired.
  const producer = new Producer<{ fail: number }>({ storage, name: 'stuck' })
  t.after(() => producer.stop())
  await producer.enqueue('lost', { fail: 0 })
  await storage.connect()
  t.after(() => storage.disconnect())
  assert.equal((await storage.claim('stuck', 'gone', { max: 1, leaseMs: 1000, blockMs: 0 })).length, 1)
  now += 5000
  const reaper = new Reaper({ storage, name: 'stuck', leaderElection: { enabled: false } })
  t.after(() => reaper.stop())
  await reaper.scan()

  const scrape = samples(await registry.metrics())
  const expected: Record<string, number> = {
    'relayq_jobs_enqueued_total{queue="mail"}': 8,
    'relayq_jobs_enqueued_total{queue="stuck"}': 1,
    'relayq_jobs_completed_total{queue="mail"}': 7,
    'relayq_jobs_failed_total{queue="mail",final="false"}': 2,
    'relayq_jobs_failed_total{queue="mail",final="true"}': 1,
    'relayq_jobs_retried_total{queue="mail"}': 2,
    'relayq_jobs_stalled_total{queue="stuck"}': 1,
    'relayq_job_processing_duration_seconds_count{queue="mail",outcome="completed"}': 7,
    'relayq_job_processing_duration_seconds_count{queue="mail",outcome="retry"}': 2,
    'relayq_job_processing_duration_seconds_count{queue="mail",outcome="failed"}': 1,
    'relayq_job_wait_duration_seconds_count{queue="mail"}': 10,
    'relayq_rpc_duration_seconds_count{queue="mail",outcome="completed"}': 6,
    'relayq_rpc_duration_seconds_count{queue="mail",outcome="failed"}': 1,
    'relayq_rpc_waiters{queue="mail"}': 0,
    'relayq_queue_jobs{queue="mail",state="completed"}': 7,
    'relayq_queue_jobs{queue="mail",state="failed"}': 1,
    'relayq_queue_jobs{queue="mail",state="queued"}': 0,
    'relayq_queue_jobs{queue="stuck",state="queued"}': 1,
    'relayq_queue_paused{queue="mail"}': 0,
    'relayq_queue_events_total{queue="stuck",event="stalled"}': 1
  }
  for (const [key, value] of Object.entries(expected)) assert.equal(scrape.get(key), value, key)
  // The histograms' +Inf buckets hold every observation.
  assert.equal(scrape.get('relayq_job_processing_duration_seconds_bucket{le="+Inf",queue="mail",outcome="completed"}'), 7)
  // No label carries a job id.
  for (const key of scrape.keys()) assert.doesNotMatch(key, /ok-\d|flaky|broken|plain|lost/)
})

test('the queue gauges are read from the storage at most once per interval, however often it is scraped', async t => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 })
  const storage = new MemoryStorage()
  const admin = new Admin({ storage })
  t.after(() => admin.close())
  let reads = 0
  const counts = admin.counts.bind(admin)
  admin.counts = async queue => { reads++; return await counts(queue) }
  const registry = new Registry()
  const metrics = prometheusMetrics({ registry, admin, queues: ['a'], gaugeInterval: 5000 })
  t.after(() => metrics.close())
  await Promise.all([registry.metrics(), registry.metrics(), registry.metrics()])
  assert.equal(reads, 1, 'concurrent scrapes share one read')
  t.mock.timers.tick(4999)
  await registry.metrics()
  assert.equal(reads, 1, 'a scrape within the interval reads the cache')
  t.mock.timers.tick(1)
  await registry.metrics()
  assert.equal(reads, 2)
})

test('close() detaches the probe and unregisters every metric', () => {
  const registry = new Registry()
  const metrics = prometheusMetrics({ registry })
  assert.notEqual(probe, undefined)
  metrics.close()
  assert.equal(probe, undefined)
  assert.deepEqual(registry.getMetricsAsArray(), [])
  // Registering again works (no "already registered").
  prometheusMetrics({ registry }).close()
})
