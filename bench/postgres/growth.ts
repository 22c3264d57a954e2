/**
 * Growth of PgStorage's tables over many jobs (issue 15, item 7): `npx tsx bench/postgres/growth.ts
 * [--jobs N] [--autovacuum on|off|both] [--url postgres://...]`.
 *
 * Drives one PgStorage the way a producer, a consumer and the reaper would, with the default
 * retention (completed: 1 h / 1,000) and result TTL (1 h), on a clock that runs fast (each round of
 * 1,000 jobs advances it 400 s, so records expire after 9 rounds and the steady state is reached
 * early): per round, one bulk enqueue of 1,000 jobs, claims and completions in batches of 50, and
 * one reaper pass (recoverStalled: trims history and deletes up to 1,000 expired records; it also
 * runs relayq's own VACUUM when dead rows outgrow live ones, checked at most every 2 s of real
 * time). Prints the size of relayq's tables with their indexes, live and dead rows, at 10,000 jobs
 * and then every 10 % of the run, on a cluster of its own (autovacuum on, then off) unless --url.
 */
import { parseArgs } from 'node:util'
import pg from 'pg'
import { PgStorage } from '../../src/index.ts'
import { startCluster, sql } from '../../test/fixtures/pg-server.ts'

const { values: args } = parseArgs({
  options: { jobs: { type: 'string', default: '1000000' }, autovacuum: { type: 'string', default: 'both' }, url: { type: 'string' } },
  strict: true
})
const JOBS = Number(args.jobs)
const ROUND = 1000
const BATCH = 50
const STEP_MS = 400_000

interface Sample { jobs: number, bytes: number, live: number, dead: number, ms: number }

async function measure (client: pg.Client, tables: string[]): Promise<{ bytes: number, live: number, dead: number }> {
  let bytes = 0
  let live = 0
  let dead = 0
  for (const t of tables) {
    const { rows } = await client.query(
      'SELECT pg_total_relation_size($1::regclass)::bigint AS b, coalesce(n_live_tup, 0) AS l, coalesce(n_dead_tup, 0) AS d FROM pg_stat_user_tables WHERE relid = $1::regclass',
      [t])
    bytes += Number(rows[0].b)
    live += Number(rows[0].l)
    dead += Number(rows[0].d)
  }
  return { bytes, live, dead }
}

async function run (url: string, label: string): Promise<Sample[]> {
  let now = Date.now()
  const storage = new PgStorage({ connectionString: url, schema: `growth_${process.pid}`, clock: () => now })
  await storage.connect()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const t = storage.tables
  const tables = [t.jobs, t.queues, t.lanes]
  const samples: Sample[] = []
  const t0 = performance.now()
  const payload = Buffer.from(JSON.stringify({ n: 1, text: 'x'.repeat(100) }))
  const result = Buffer.from('{"ok":true}')
  const every = Math.max(ROUND, Math.floor(JOBS / 10 / ROUND) * ROUND)
  for (let done = 0; done < JOBS; done += ROUND) {
    await storage.enqueue('g', Array.from({ length: ROUND }, (_, i) => ({ id: `j${done + i}`, payload, maxAttempts: 3, resultTTL: 3_600_000, delay: 0 })))
    let jobs = await storage.claim('g', 'w', { max: BATCH, leaseMs: 30_000, blockMs: 0 })
    while (jobs.length > 0) {
      const settled = await storage.settle('g', 'w', jobs.map(j => ({ type: 'complete' as const, id: j.id, attempt: j.attempts, result, ttl: 3_600_000 })), { max: BATCH, leaseMs: 30_000 })
      jobs = settled.jobs
    }
    await storage.recoverStalled('g', 1, Buffer.from('stalled'))
    now += STEP_MS
    const n = done + ROUND
    if (n === 10_000 || n % every === 0 || n === JOBS) {
      const m = await measure(client, tables)
      samples.push({ jobs: n, ...m, ms: performance.now() - t0 })
      console.log(`${label}: ${n.toLocaleString('en-US')} jobs: ${(m.bytes / 1024 / 1024).toFixed(2)} MB, ${m.live} live, ${m.dead} dead rows (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
    }
  }
  await client.query(`DROP SCHEMA growth_${process.pid} CASCADE`)
  await client.end()
  await storage.disconnect()
  return samples
}

const modes = args.autovacuum === 'both' ? ['on', 'off'] : [args.autovacuum as string]
for (const mode of modes) {
  const cluster = args.url === undefined ? await startCluster(['fsync=on', 'synchronous_commit=on', `autovacuum=${mode}`, 'shared_buffers=256MB']) : undefined
  try {
    const url = args.url ?? (cluster as NonNullable<typeof cluster>).url
    if (cluster !== undefined) await sql(url, 'SELECT 1')
    const samples = await run(url, `autovacuum ${args.url === undefined ? mode : '(server setting)'}`)
    const base = samples.find(s => s.jobs === 10_000) ?? samples[0]
    const last = samples[samples.length - 1]
    const peak = Math.max(...samples.map(s => s.bytes))
    console.log(`autovacuum ${mode}: at ${last.jobs.toLocaleString('en-US')} jobs ${(last.bytes / base.bytes).toFixed(2)}× the size at ${base.jobs.toLocaleString('en-US')} (peak ${(peak / base.bytes).toFixed(2)}×); ${last.dead} dead rows; ${(last.jobs / (last.ms / 1000)).toFixed(0)} jobs/s`)
  } finally {
    await cluster?.destroy()
  }
}
process.exit(0)
