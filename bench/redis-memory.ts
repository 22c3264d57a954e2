/**
 * Redis bytes per job kept in history (issue 9, "Numbers").
 *
 *   npm run bench:redis-memory [-- --jobs N] [--url redis://...]
 *
 * Stores N (10,000) jobs of one shape in a queue of their own, as workers would, and divides what
 * Redis holds for the queue by N: the sum of MEMORY USAGE (SAMPLES 0: every element) over the
 * queue's keys, and the growth of used_memory. Shapes: a failed job with a 200-byte payload and an
 * error with a 1 KB stack (one attempt; and three, two of them retried), and a completed job with
 * a 200-byte payload and a 20-byte result. Use a server of your own: it reads INFO memory.
 */
import { parseArgs } from 'node:util'
import { Redis } from 'iovalkey'
import { RedisStorage, type Settlement } from 'relayq'
import { fmt, table } from './format.ts'

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '10000' },
    url: { type: 'string', default: 'redis://127.0.0.1:6379' }
  }
})
const jobs = Number(args.jobs)
if (!Number.isSafeInteger(jobs) || jobs < 100) {
  console.error('usage: npm run bench:redis-memory [-- --jobs N >= 100] [--url redis://...]')
  process.exit(2)
}

const PAYLOAD = Buffer.alloc(200, 'p')
const message = 'upstream answered 503 for account 12345'
const stack = `Error: ${message}\n${'    at handler (/srv/app/jobs/sync.js:42:11)\n'.repeat(23)}`.slice(0, 1024)
/** The error as the consumer stores it (name, message, stack as JSON). */
const ERROR = Buffer.from(JSON.stringify({ name: 'Error', message, stack }))
const GROUP = { key: '0123456789abcdef', name: 'Error', message: 'upstream answered <n> for account <n>', frame: 'handler (/srv/app/jobs/sync.js)' }
const RESULT = Buffer.alloc(20, 'r')
const BATCH = 500
const keep = { age: 30 * 24 * 3_600_000, count: 10_000_000 }

const prefix = `relayq-memory-bench-${Date.now()}`
const storage = new RedisStorage({ url: args.url, keyPrefix: prefix })
await storage.connect()
const client = new Redis(args.url)

async function usedMemory (): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1])
}

/** Bytes of the queue's keys (MEMORY USAGE, every element counted). */
async function keyBytes (queue: string): Promise<number> {
  let total = 0
  for (const key of storage.keysOf(queue).all) total += Number(await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') ?? 0)
  return total
}

/** Runs `jobs` jobs through `attempts` attempts, the last one settled by `last`. */
async function fill (queue: string, attempts: number, last: (id: string, attempt: number) => Settlement): Promise<void> {
  await storage.setRetention(queue, { completed: keep, failed: keep, cancelled: keep })
  for (let start = 0; start < jobs; start += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, jobs - start) }, (_, i) => `job-${start + i}`)
    await storage.enqueue(queue, ids.map(id => ({ id, payload: PAYLOAD, maxAttempts: attempts, resultTTL: 3_600_000, delay: 0 })))
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const claimed = await storage.claim(queue, 'worker-0123456789abcdef0123456789ab', { max: BATCH, leaseMs: 60_000, blockMs: 0 })
      await storage.settle(queue, 'worker-0123456789abcdef0123456789ab', claimed.map(j => attempt < attempts
        ? { type: 'retry' as const, id: j.id, attempt: j.attempts, error: ERROR, delay: 0 }
        : last(j.id, j.attempts)), { max: 0, leaseMs: 1 })
    }
  }
}

const shapes: Array<[string, number, (id: string, attempt: number) => Settlement]> = [
  ['failed, 1 attempt', 1, (id, attempt) => ({ type: 'fail', id, attempt, error: ERROR, ttl: 3_600_000, group: GROUP })],
  ['failed, 3 attempts (2 retried)', 3, (id, attempt) => ({ type: 'fail', id, attempt, error: ERROR, ttl: 3_600_000, group: GROUP })],
  ['completed, 1 attempt', 1, (id, attempt) => ({ type: 'complete', id, attempt, result: RESULT, ttl: 3_600_000 })]
]
console.log(`relayq Redis memory bench: ${fmt(jobs)} jobs per shape, payload ${PAYLOAD.length} B, stored error ${ERROR.length} B (stack ${stack.length} B)`)
const rows: string[][] = []
for (const [name, attempts, last] of shapes) {
  const queue = `memory-${rows.length}`
  const before = await usedMemory()
  await fill(queue, attempts, last)
  const grown = await usedMemory() - before
  if ((await storage.overview(queue)).counts[name.startsWith('failed') ? 'failed' : 'completed'] !== jobs) throw new Error(`${name}: not every job is in history`)
  const bytes = await keyBytes(queue)
  rows.push([name, fmt(bytes / jobs), fmt(grown / jobs)])
}
console.log()
console.log(table(['job in history', 'bytes/job (MEMORY USAGE of its keys)', 'bytes/job (used_memory growth)'], rows))

await storage.clear()
await storage.disconnect()
client.disconnect()
