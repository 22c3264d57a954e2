/**
 * relayq dashboard bench (issue 12): server time of the pages on a large history.
 *
 *   npm run bench:dashboard [-- --backend redis|memory] [--failed N] [--url redis://127.0.0.1:6379]
 *
 * Fills a queue with N (1,000,000) failed jobs kept in history (100-byte payload, an error with
 * its stack), serves the dashboard on 127.0.0.1 and measures, on the server (request in to
 * response finished), p50/p99 over 200 requests each: the queue page (first page of 50 failed
 * jobs, and a page deep in the list through its cursor), a job page, the failure groups, and the
 * overview — both as tabs see it (counts from the shared sample) and uncached (each request
 * samples the storage again). Redis keys live under a fresh prefix, removed at the end.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { Admin, MemoryStorage, RedisStorage, type AdminStorage } from 'relayq'
import { createDashboard } from 'relayq/dashboard'
import { fmt, table } from './format.ts'

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'redis' },
    failed: { type: 'string', default: '1000000' },
    url: { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }
  }
})
const failedJobs = Number(args.failed)
if (!Number.isSafeInteger(failedJobs) || failedJobs < 1000) {
  console.error('usage: npm run bench:dashboard [-- --backend redis|memory] [--failed N >= 1000] [--url URL]')
  process.exit(2)
}
const BATCH = 1000
const PAYLOAD = Buffer.from(JSON.stringify({ to: 'someone@example.com', body: 'x'.repeat(60) }))
const ERROR = Buffer.from(JSON.stringify({ name: 'Error', message: 'upstream answered 503', stack: `Error: upstream answered 503\n${'    at handler (/srv/app/jobs/sync.js:42:11)\n'.repeat(12)}` }))
const GROUP = { key: '0123456789abcdef', name: 'Error', message: 'upstream answered <n>', frame: 'handler (/srv/app/jobs/sync.js)' }

let storage: AdminStorage
if (args.backend === 'redis') storage = new RedisStorage({ url: args.url, keyPrefix: `bench-dash-${process.pid}-${Date.now()}` })
else if (args.backend === 'memory') storage = new MemoryStorage()
else {
  console.error(`unknown backend ${String(args.backend)}`)
  process.exit(2)
}
await storage.connect()
const admin = new Admin({ storage })
const queue = 'dash-bench'
await admin.setRetention(queue, { failed: { age: 30 * 24 * 3_600_000, count: 10_000_000 } })

console.log(`relayq dashboard bench: ${args.backend}, ${fmt(failedJobs)} failed jobs in history`)
const t0 = performance.now()
for (let start = 0; start < failedJobs; start += BATCH) {
  const ids = Array.from({ length: Math.min(BATCH, failedJobs - start) }, (_, i) => `job-${start + i}`)
  await storage.enqueue(queue, ids.map(id => ({ id, payload: PAYLOAD, maxAttempts: 1, resultTTL: 3_600_000, delay: 0 })))
  const claimed = await storage.claim(queue, 'bench', { max: BATCH, leaseMs: 60_000, blockMs: 0 })
  await storage.settle(queue, 'bench', claimed.map(j => ({ type: 'fail' as const, id: j.id, attempt: j.attempts, error: ERROR, ttl: 3_600_000, group: GROUP })), { max: 0, leaseMs: 1 })
}
console.log(`filled in ${fmt((performance.now() - t0) / 1000, 1)} s`)

/** Serves a dashboard, timing each request on the server: from its arrival to the response's end. */
async function serve (refreshInterval: number): Promise<{ url: string, times: number[], close: () => Promise<void> }> {
  const handler = createDashboard({ admin, refreshInterval })
  const times: number[] = []
  const server = createServer((req, res) => {
    const start = performance.now()
    res.on('finish', () => times.push(performance.now() - start))
    handler(req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    times,
    close: async () => { server.closeAllConnections(); server.close(); await handler.close() }
  }
}

/** p50 and p99 server time of `calls` GETs of `path` (after 10 warm-up calls); `pause` ms between calls. */
async function measure (site: { url: string, times: number[] }, path: string, calls = 200, pause = 0): Promise<[number, number]> {
  for (let i = 0; i < 10; i++) await (await fetch(site.url + path)).arrayBuffer()
  site.times.length = 0
  for (let i = 0; i < calls; i++) {
    const res = await fetch(site.url + path)
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}`)
    await res.arrayBuffer()
    if (pause > 0) await new Promise(resolve => setTimeout(resolve, pause))
  }
  const sorted = [...site.times].sort((a, b) => a - b)
  return [sorted[Math.floor(sorted.length * 0.5)] as number, sorted[Math.floor(sorted.length * 0.99)] as number]
}

try {
  const site = await serve(2000)
  const deep = await admin.listJobs(queue, { state: 'failed', limit: 1000 })
  let cursor = deep.cursor
  const deepPages = Math.floor(failedJobs * 0.4 / 1000)
  for (let i = 1; i < deepPages && cursor !== null; i++) cursor = (await admin.listJobs(queue, { state: 'failed', limit: 1000, cursor })).cursor
  const rows: Array<[string, number, number]> = []
  const row = async (name: string, path: string, calls?: number, pause?: number): Promise<void> => {
    const [p50, p99] = await measure(site, path, calls, pause)
    rows.push([name, p50, p99])
  }
  await row('queue page: first 50 failed', `/queues/${queue}?state=failed`)
  await row(`queue page: 50 failed, ${fmt(deepPages * 1000)} deep`, `/queues/${queue}?state=failed&cursor=${encodeURIComponent(cursor ?? '')}`)
  await row('queue page: 50 oldest first', `/queues/${queue}?state=failed&order=asc`)
  await row('job page', `/queues/${queue}/jobs/job-${Math.floor(failedJobs / 2)}`)
  await row('failure groups', `/queues/${queue}/failures`)
  await row('overview (shared sample)', '/')
  await row('overview JSON (shared sample)', '/api/overview')
  await site.close()
  // refreshInterval 100 ms and a 110 ms pause: every request finds the sample stale and reads the storage.
  const cold = await serve(100)
  const [p50, p99] = await measure(cold, '/', 100, 110)
  rows.push(['overview (new sample each time)', p50, p99])
  await cold.close()

  console.log(table(['page', 'p50 ms', 'p99 ms'], rows.map(([name, a, b]) => [name, fmt(a, 2), fmt(b, 2)])))
} finally {
  await storage.clear()
  await admin.close()
  await storage.disconnect()
}
