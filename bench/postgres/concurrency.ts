/**
 * Does one queue's throughput scale with concurrent settle-and-claim calls? `npx tsx
 * bench/postgres/concurrency.ts [url] [baseline dist/index.js]`. On one queue of 10,000 jobs, W
 * loops (W = 1, 2, 8), each its own worker, settle their 25 jobs and claim 25 more in one call until
 * the queue is empty; prints jobs/s for this build and, given a baseline build, for it too, the two
 * taking turns at each W (the machine's noise hits both alike).
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

const url = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/test'
const baseline = process.argv[3]
const JOBS = 10_000
const BATCH = 25
type Relayq = typeof import('../../src/index.ts')

async function once (mod: Relayq, loops: number): Promise<number> {
  const schema = `conc_${randomBytes(4).toString('hex')}`
  const storage = new mod.PgStorage({ connectionString: url, schema, poolSize: Math.max(2, loops) })
  await storage.connect()
  const payload = Buffer.from('{"n":1}')
  for (let i = 0; i < JOBS; i += 2000) {
    await storage.enqueue('c', Array.from({ length: 2000 }, (_, k) => ({ id: `j${i + k}`, payload, maxAttempts: 3, resultTTL: 3_600_000, delay: 0 })))
  }
  const t0 = performance.now()
  let done = 0
  await Promise.all(Array.from({ length: loops }, async (_, w) => {
    const worker = `w${w}`
    let jobs = await storage.claim('c', worker, { max: BATCH, leaseMs: 60_000, blockMs: 0 })
    while (jobs.length > 0) {
      const r = await storage.settle('c', worker, jobs.map(j => ({ type: 'complete' as const, id: j.id, attempt: j.attempts, result: payload, ttl: 3_600_000 })), { max: BATCH, leaseMs: 60_000 })
      done += jobs.length - r.refused.length
      jobs = r.jobs
    }
  }))
  const perSec = done / ((performance.now() - t0) / 1000)
  await storage.disconnect()
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  await c.query(`DROP SCHEMA ${schema} CASCADE`)
  await c.end()
  return perSec
}

const sides: Array<[string, Relayq]> = [['this', await import('../../src/index.ts')]]
if (baseline !== undefined) sides.push(['baseline', await import(baseline) as Relayq])
for (const loops of [1, 2, 8]) {
  const line: string[] = []
  for (const [name, mod] of sides) line.push(`${name} ${(await once(mod, loops)).toFixed(0)} jobs/s`)
  console.log(`${loops} concurrent settle-and-claim loop(s): ${line.join(', ')}`)
}
process.exit(0)
