/**
 * relayq admin bench (issue 9, "Numbers"): the operator's calls on a large history.
 *
 *   npm run bench:admin [-- --backend memory|file|redis] [--failed N] [--retry N] [--path DIR] [--url URL]
 *
 * Fills a queue with N (1,000,000) failed jobs kept in history (100-byte payload, a real error
 * with its stack), then measures: listJobs of the first page and of a page deep in the list (50
 * jobs each; p50/p99 over 200 calls), retry of --retry (100,000) failed jobs of another queue
 * through Admin (chunks of 200, with progress), and purge of the N failed jobs.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Admin, FileStorage, MemoryStorage, RedisStorage, type AdminStorage } from 'relayq'
import { fmt, table } from './format.ts'

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'memory' },
    failed: { type: 'string', default: '1000000' },
    retry: { type: 'string', default: '100000' },
    path: { type: 'string' },
    url: { type: 'string', default: 'redis://127.0.0.1:6379' }
  }
})
const failedJobs = Number(args.failed)
const retryJobs = Number(args.retry)
if (!Number.isSafeInteger(failedJobs) || failedJobs < 1000 || !Number.isSafeInteger(retryJobs) || retryJobs < 1) {
  console.error('usage: npm run bench:admin [-- --backend memory|file|redis] [--failed N >= 1000] [--retry N] [--path DIR] [--url URL]')
  process.exit(2)
}

const BATCH = 1000
const PAYLOAD = 'x'.repeat(100)
const ERROR = Buffer.from(JSON.stringify({ name: 'Error', message: 'upstream answered 503', stack: `Error: upstream answered 503\n${'    at handler (/srv/app/jobs/sync.js:42:11)\n'.repeat(12)}` }))
const GROUP = { key: '0123456789abcdef', name: 'Error', message: 'upstream answered <n>', frame: 'handler (/srv/app/jobs/sync.js)' }

let dir: string | undefined
let storage: AdminStorage
if (args.backend === 'file') {
  dir = args.path ?? await mkdtemp(join(tmpdir(), 'relayq-admin-bench-'))
  storage = new FileStorage({ basePath: dir })
} else if (args.backend === 'memory') {
  storage = new MemoryStorage()
} else if (args.backend === 'redis') {
  // A prefix of its own; clear() deletes it at the end.
  storage = new RedisStorage({ url: args.url, keyPrefix: `relayq-admin-bench-${Date.now()}` })
} else {
  console.error(`unknown backend ${String(args.backend)}`)
  process.exit(2)
}
await storage.connect()
const admin = new Admin({ storage })
const keepAll = { age: 30 * 24 * 3_600_000, count: 10_000_000 }

/** Stores `n` failed jobs in `queue`, as workers would: enqueue, claim and fail in batches of 1,000. */
async function fill (queue: string, n: number): Promise<number> {
  await admin.setRetention(queue, { failed: keepAll })
  const t0 = performance.now()
  for (let start = 0; start < n; start += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, n - start) }, (_, i) => `job-${start + i}`)
    await storage.enqueue(queue, ids.map(id => ({ id, payload: Buffer.from(PAYLOAD), maxAttempts: 1, resultTTL: 3_600_000, delay: 0 })))
    const claimed = await storage.claim(queue, 'bench', { max: BATCH, leaseMs: 60_000, blockMs: 0 })
    await storage.settle(queue, 'bench', claimed.map(j => ({ type: 'fail' as const, id: j.id, attempt: j.attempts, error: ERROR, ttl: 3_600_000, group: GROUP })), { max: 0, leaseMs: 1 })
  }
  return performance.now() - t0
}

/** p50 and p99 of `calls` runs of `fn`, in ms. */
async function latency (calls: number, fn: () => Promise<unknown>): Promise<{ p50: number, p99: number }> {
  const samples = new Float64Array(calls)
  for (let i = 0; i < 20; i++) await fn() // warm-up
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now()
    await fn()
    samples[i] = performance.now() - t0
  }
  samples.sort()
  return { p50: samples[Math.floor(calls * 0.5)], p99: samples[Math.floor(calls * 0.99)] }
}

console.log(`relayq admin bench: ${args.backend}, ${fmt(failedJobs)} failed jobs in history, retry of ${fmt(retryJobs)}`)
const big = `admin-${Date.now()}`
process.stdout.write(`filling ${fmt(failedJobs)} failed jobs... `)
const fillMs = await fill(big, failedJobs)
console.log(`${fmt(fillMs / 1000, 1)} s`)
if ((await admin.counts(big)).counts.failed !== failedJobs) throw new Error('the history does not hold every failed job')

const first = await latency(200, () => admin.listJobs(big, { state: 'failed' }))
const middle = await storage.getJob(big, `job-${Math.floor(failedJobs / 2)}`)
if (middle === null) throw new Error('no job in the middle')
const deep = await latency(200, () => storage.listJobs(big, { state: 'failed', limit: 50, order: 'desc', after: middle.stamp }))
const detail = await latency(200, () => admin.getJob(big, `job-${Math.floor(failedJobs / 3)}`))
const counts = await latency(200, () => admin.counts(big))

const small = `${big}-retry`
process.stdout.write(`filling ${fmt(retryJobs)} failed jobs to retry... `)
await fill(small, retryJobs)
console.log('done')
let progressCalls = 0
let t0 = performance.now()
const retried = await admin.retry(small, { state: 'failed' }, { onProgress: () => { progressCalls++ } })
const retryMs = performance.now() - t0
if (retried.count !== retryJobs) throw new Error(`retried ${retried.count} of ${retryJobs}`)

t0 = performance.now()
const purged = await admin.purge(big, { state: 'failed', chunkSize: 1000 })
const purgeMs = performance.now() - t0
if (purged.count !== failedJobs) throw new Error(`purged ${purged.count} of ${failedJobs}`)

console.log()
console.log(table(['admin call', 'p50 ms', 'p99 ms'], [
  ['listJobs, first page (50)', fmt(first.p50, 3), fmt(first.p99, 3)],
  [`listJobs, page at ${fmt(failedJobs / 2)} deep (50)`, fmt(deep.p50, 3), fmt(deep.p99, 3)],
  ['getJob', fmt(detail.p50, 3), fmt(detail.p99, 3)],
  ['counts', fmt(counts.p50, 3), fmt(counts.p99, 3)]
]))
console.log()
console.log(table(['bulk action', 'jobs', 'seconds', 'jobs/s'], [
  [`retry (chunks of 200, ${fmt(progressCalls)} progress reports)`, fmt(retryJobs), fmt(retryMs / 1000, 2), fmt(retryJobs / (retryMs / 1000))],
  ['purge (chunks of 1,000)', fmt(failedJobs), fmt(purgeMs / 1000, 2), fmt(failedJobs / (purgeMs / 1000))]
]))
console.log(`(filling took ${fmt(fillMs / 1000, 1)} s: ${fmt(failedJobs / (fillMs / 1000))} failed jobs/s through enqueue, claim and fail batches of 1,000)`)

await admin.close()
if (args.backend === 'redis') await storage.clear()
await storage.disconnect()
if (dir !== undefined && args.path === undefined) await rm(dir, { recursive: true, force: true })
