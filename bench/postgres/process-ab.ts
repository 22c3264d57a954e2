/**
 * Processing and bulk enqueue only, libraries taking turns on a cluster of the bench's own (fsync
 * and synchronous_commit on, autovacuum off, pg_stat_statements loaded):
 * `npx tsx bench/postgres/process-ab.ts [--jobs 20000] [--rounds 3] [--only relayq,relayq-base,graphile-lq,pgboss-batch] [--concurrency 50] [--statements]`.
 *
 * Libraries take turns, the order rotating every round. Per library and round: bulk enqueue of --jobs (chunks of 1,000), ANALYZE, then a consumer
 * process (concurrency 50, or --concurrency) drains them. Prints jobs/s, consumer CPU µs/job, PostgreSQL CPU µs/job
 * (every server process, from /proc) and, with --statements, the statements of the drain that took
 * the most server time (pg_stat_statements, nested statements included), per job.
 * `relayq-base` is the build at RELAYQ_BASELINE (a dist/index.js), for A/B in one run.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { startCluster, sql, type PgCluster } from '../../test/fixtures/pg-server.ts'
import { pgCpu } from './pg-cpu.ts'
import { LIBS, openProducer, type LibId } from './libs.ts'

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string', default: 'relayq,relayq-base,graphile-lq,pgboss-batch' },
    statements: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '50' }
  }
})
const JOBS = Number(args.jobs)
const ROUNDS = Number(args.rounds)
const ids = (args.only as string).split(',') as LibId[]

interface Result { bulk: number, perSec: number, consumerUs: number, pgUs: number }

async function drain (lib: LibId, url: string, queue: string, target: number): Promise<{ jobs: number, cpuUs: number, ms: number }> {
  const child = fork(new URL('./consumer.ts', import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const done = new Promise<{ jobs: number, cpuUs: number, ms: number }>((resolve, reject) => {
    child.on('message', (m: any) => {
      if (m.type === 'done') resolve(m)
      if (m.type === 'error') reject(new Error(m.message))
    })
    child.on('exit', code => reject(new Error(`consumer exited (${String(code)})`)))
  })
  child.send({ type: 'start', config: { lib, url, queue, concurrency: Number(args.concurrency), target } })
  try {
    return await done
  } finally {
    const exited = once(child, 'exit')
    child.send({ type: 'stop' })
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}

async function one (lib: LibId, server: string, cluster: PgCluster, round: number): Promise<Result> {
  const database = `ab_${lib.replace('-', '_')}_${round}`
  await sql(server, `CREATE DATABASE ${database}`)
  const u = new URL(server)
  u.pathname = `/${database}`
  const url = u.toString()
  try {
    const producer = await openProducer(lib, url, 'proc')
    const t = performance.now()
    for (let i = 0; i < JOBS; i += 1000) {
      await producer.bulk?.(Array.from({ length: Math.min(1000, JOBS - i) }, (_, k) => ({ id: `p-${i + k}`, n: i + k })))
    }
    const bulk = JOBS / ((performance.now() - t) / 1000)
    await sql(url, 'ANALYZE')
    if (args.statements === true) await sql(url, 'SELECT pg_stat_statements_reset()')
    const cpu0 = pgCpu(cluster)
    const r = await drain(lib, url, 'proc', JOBS)
    const pgUs = (pgCpu(cluster) - cpu0) / r.jobs
    if (args.statements === true) {
      const top = await sql(url, `SELECT calls, total_exec_time, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS q
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY total_exec_time DESC LIMIT 14`)
      console.log(`  ${lib} statements (µs/job total, calls):`)
      for (const s of top.rows) console.log(`    ${(s.total_exec_time * 1000 / r.jobs).toFixed(1).padStart(7)} ${String(s.calls).padStart(7)}  ${s.q as string}`)
    }
    await producer.close()
    return { bulk, perSec: r.jobs / (r.ms / 1000), consumerUs: r.cpuUs / r.jobs, pgUs }
  } finally {
    await sql(server, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {})
  }
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

process.on('uncaughtException', (err: Error & { code?: string }) => {
  if (err.code === '57P01') return
  console.error(err)
  process.exit(1)
})
const cluster = await startCluster(['fsync=on', 'synchronous_commit=on', 'autovacuum=off', 'shared_buffers=256MB', 'max_wal_size=4GB',
  'shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all'])
await sql(cluster.url, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
await sql(cluster.url.replace(/\/[^/]*$/, '/template1'), 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
const results = new Map<LibId, Result[]>()
try {
  for (let round = 0; round < ROUNDS; round++) {
    // The order rotates every round: no library always runs right after the same other one.
    for (const lib of ids.map((_, i) => ids[(i + round) % ids.length])) {
      const r = await one(lib, cluster.url, cluster, round)
      results.set(lib, [...results.get(lib) ?? [], r])
      console.log(`round ${round + 1} ${lib}: bulk ${r.bulk.toFixed(0)}/s, processing ${r.perSec.toFixed(0)}/s, consumer ${r.consumerUs.toFixed(1)} µs/job, PostgreSQL ${r.pgUs.toFixed(1)} µs/job`)
    }
  }
} finally {
  await cluster.destroy()
}
console.log('\nmedians:')
for (const lib of ids) {
  const rs = results.get(lib) ?? []
  const m = (k: keyof Result): number => median(rs.map(r => r[k]))
  console.log(`  ${LIBS.find(l => l.id === lib)?.name ?? lib}: bulk ${m('bulk').toFixed(0)}/s, processing ${m('perSec').toFixed(0)}/s, consumer ${m('consumerUs').toFixed(1)} µs/job, PostgreSQL ${m('pgUs').toFixed(1)} µs/job`)
}
