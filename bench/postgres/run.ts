/**
 * The PostgreSQL bench: `npm run bench -- --backend postgres [--compare] [--jobs N] [--depth N]
 * [--runs N] [--url postgres://...] [--only relayq,graphile,...]`, or
 * `npm run bench -- --backend postgres --scenario hops [--calls N] [--runs N] [--url ...]`: where
 * relayq's sequential `enqueueAndWait` calls spend their time, hop by hop (bench/hops.ts).
 *
 * By default it starts a PostgreSQL cluster of its own (initdb in a temp directory: fsync and
 * synchronous_commit on, autovacuum off as on the development machines), so that the server's CPU
 * per job can be read from its processes. Every library runs in a database of its own, created
 * fresh for each run (new tables: no planner statistics until the bench runs ANALYZE).
 *
 * Per library: enqueue with 50 calls in flight (5,000 jobs), bulk enqueue (N jobs in chunks of
 * 1,000), processing of N queued jobs by a consumer process (concurrency 50) before and after
 * ANALYZE, the same at --depth jobs (after ANALYZE), then rpc: sequential p50 and 50 in flight.
 * Ratios are relayq's against the best of the others in the same run; medians over --runs.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { startCluster, sql, type PgCluster } from '../../test/fixtures/pg-server.ts'
import { pgCpu } from './pg-cpu.ts'
import { LIBS, openProducer, type LibId, type LibInfo } from './libs.ts'
import { closeConsumerPool, createBackend } from '../backends.ts'
import { hops, type HopsResult } from '../hops.ts'
import { printHops } from '../report.ts'
import { relayqTarget } from '../target.ts'

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string' },
    compare: { type: 'boolean', default: false },
    jobs: { type: 'string', default: '20000' },
    depth: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '1' },
    url: { type: 'string' },
    only: { type: 'string' },
    scenario: { type: 'string', default: 'all' },
    calls: { type: 'string', default: '2000' }
  },
  strict: false
})
const JOBS = Number(args.jobs)
const DEPTH = Number(args.depth)
const RUNS = Number(args.runs)
const INFLIGHT_JOBS = Math.min(JOBS, 5000)
const RPC_SEQUENTIAL = 300
const RPC_CONCURRENT = 2000
const only = typeof args.only === 'string' ? args.only.split(',') : undefined
const libs = LIBS.filter(l => (only !== undefined ? only.includes(l.id) : args.compare === true ? !l.id.startsWith('relayq-base') : l.id === 'relayq'))

interface Row {
  enqueueInflight: number
  bulk: number | null
  processNoStats: number
  processAnalyzed: number
  processDepth: number | null
  consumerCpuUs: number
  pgCpuUsNoStats: number | null
  pgCpuUs: number | null
  rpcP50: number
  rpcInflight: number
}

/** CPU time (µs) of the cluster, or null on an external server. */
function clusterCpu (cluster: PgCluster | undefined): number | null {
  return cluster === undefined ? null : pgCpu(cluster)
}

const consumerScript = new URL('./consumer.ts', import.meta.url)

/** Forks a consumer; resolves once it consumes. `done` resolves when `target` jobs were handled. */
async function consumer (lib: LibId, url: string, queue: string, target: number): Promise<{ done: Promise<{ jobs: number, cpuUs: number, ms: number }>, stop: () => Promise<void> }> {
  const child: ChildProcess = fork(consumerScript, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const done = new Promise<{ jobs: number, cpuUs: number, ms: number }>((resolve, reject) => {
    child.on('message', (m: any) => {
      if (m.type === 'done') resolve(m)
      if (m.type === 'error') reject(new Error(m.message))
    })
  })
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: any) => { if (m.type === 'ready') resolve() })
    child.on('exit', code => reject(new Error(`consumer exited (${String(code)})`)))
  })
  child.send({ type: 'start', config: { lib, url, queue, concurrency: 50, target } })
  await ready
  return {
    done,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.send({ type: 'stop' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
  }
}

async function inflight<T> (count: number, width: number, call: (i: number) => Promise<T>): Promise<number[]> {
  const latencies: number[] = []
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) {
      const i = next++
      const t = performance.now()
      await call(i)
      latencies.push(performance.now() - t)
    }
  }))
  return latencies
}

async function fill (lib: LibInfo, producer: Awaited<ReturnType<typeof openProducer>>, prefix: string, n: number): Promise<number> {
  const t = performance.now()
  if (producer.bulk !== undefined) {
    for (let i = 0; i < n; i += 1000) await producer.bulk(Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ id: `${prefix}-${i + k}`, n: i + k })))
  } else {
    await inflight(n, Math.min(50, lib.maxInflight ?? 50), i => producer.enqueue(`${prefix}-${i}`, i))
  }
  return n / ((performance.now() - t) / 1000)
}

async function processJobs (lib: LibInfo, url: string, queue: string, n: number, cluster: PgCluster | undefined): Promise<{ perSec: number, consumerCpuUs: number, pgCpuUs: number | null }> {
  const c = await consumer(lib.id, url, queue, n)
  const cpu0 = clusterCpu(cluster)
  try {
    const r = await c.done
    const cpu1 = clusterCpu(cluster)
    return { perSec: r.jobs / (r.ms / 1000), consumerCpuUs: r.cpuUs / r.jobs, pgCpuUs: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / r.jobs }
  } finally {
    await c.stop()
  }
}

async function runLib (lib: LibInfo, server: string, cluster: PgCluster | undefined, run: number): Promise<Row> {
  const database = `bench_${lib.id.replace('-', '_')}_${run}_${Date.now() % 100000}`
  await sql(server, `CREATE DATABASE ${database}`)
  const u = new URL(server)
  u.pathname = `/${database}`
  const url = u.toString()
  const jobs = Math.min(JOBS, lib.maxJobs ?? JOBS)
  try {
    const producer = await openProducer(lib.id, url, 'enq')
    let t = performance.now()
    await inflight(INFLIGHT_JOBS, Math.min(50, lib.maxInflight ?? 50), i => producer.enqueue(`e-${i}`, i))
    const enqueueInflight = INFLIGHT_JOBS / ((performance.now() - t) / 1000)
    await producer.close()

    const procProducer = await openProducer(lib.id, url, 'proc')
    const bulk = await fill(lib, procProducer, 'p', jobs)
    const noStats = await processJobs(lib, url, 'proc', jobs, cluster)
    await procProducer.close()

    const analyzed = await openProducer(lib.id, url, 'proc2')
    await fill(lib, analyzed, 'a', jobs)
    await sql(url, 'ANALYZE')
    const withStats = await processJobs(lib, url, 'proc2', jobs, cluster)
    await analyzed.close()

    let processDepth: number | null = null
    const depth = Math.min(DEPTH, lib.maxJobs ?? DEPTH)
    if (DEPTH > 0 && lib.maxJobs === undefined) {
      const deep = await openProducer(lib.id, url, 'deep')
      await fill(lib, deep, 'd', depth)
      await sql(url, 'ANALYZE')
      processDepth = (await processJobs(lib, url, 'deep', depth, cluster)).perSec
      await deep.close()
    }

    const rpcProducer = await openProducer(lib.id, url, 'rpc')
    const c = await consumer(lib.id, url, 'rpc', 0)
    let sequential: number[]
    let rpcInflight: number
    try {
      await inflight(50, 1, i => rpcProducer.rpc(`w-${i}`, i))
      sequential = await inflight(RPC_SEQUENTIAL, 1, i => rpcProducer.rpc(`s-${i}`, i))
      t = performance.now()
      await inflight(RPC_CONCURRENT, 50, i => rpcProducer.rpc(`c-${i}`, i))
      rpcInflight = RPC_CONCURRENT / ((performance.now() - t) / 1000)
    } finally {
      await c.stop()
      await rpcProducer.close()
    }
    sequential.sort((a, b) => a - b)
    return {
      enqueueInflight,
      bulk: procProducer.bulk === undefined ? null : bulk,
      processNoStats: noStats.perSec,
      processAnalyzed: withStats.perSec,
      processDepth,
      consumerCpuUs: withStats.consumerCpuUs,
      pgCpuUsNoStats: noStats.pgCpuUs,
      pgCpuUs: withStats.pgCpuUs,
      rpcP50: sequential[Math.floor(sequential.length / 2)],
      rpcInflight
    }
  } finally {
    await sql(server, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {})
  }
}

function median (values: number[]): number {
  const v = [...values].sort((a, b) => a - b)
  return v.length % 2 === 1 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}

const fmt = (n: number | null, digits = 0): string => n === null ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

/** The cluster the bench starts when no --url is given. */
const CLUSTER_SETTINGS = ['fsync=on', 'synchronous_commit=on', 'autovacuum=off', 'shared_buffers=256MB', 'max_wal_size=4GB']

/** `--scenario hops`: relayq's sequential calls cut into hops, --runs times (bench/hops.ts), in a fresh database. */
async function hopsMain (): Promise<void> {
  const calls = Number(args.calls)
  const cluster = args.url === undefined ? await startCluster(CLUSTER_SETTINGS) : undefined
  const server = args.url as string | undefined ?? (cluster as PgCluster).url
  const database = `hops_${process.pid}`
  await sql(server, `CREATE DATABASE ${database}`)
  const u = new URL(server)
  u.pathname = `/${database}`
  console.log(`relayq PostgreSQL hops: ${cluster === undefined ? server : 'a cluster of its own (fsync on, synchronous_commit on, autovacuum off)'}; ${calls} sequential calls, ${RUNS} run(s), consumer (concurrency 50) in its own process`)
  const backend = await createBackend('postgres', { url: u.toString() })
  const results: HopsResult[] = []
  try {
    const target = relayqTarget(backend)
    for (let run = 0; run < RUNS; run++) results.push(await hops(target, `${process.pid}-${run}`, calls))
  } finally {
    await closeConsumerPool()
    await backend.close()
    await sql(server, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {})
    await cluster?.destroy()
  }
  console.log()
  printHops('relayq PgStorage', 'warm', results)
}

export async function main (): Promise<void> {
  if (args.scenario === 'hops') {
    await hopsMain()
    return
  }
  // A library's pool that outlives its close (graphile-worker's WorkerUtils) hears the server end
  // its connections when the bench drops that library's database: not the bench's concern.
  process.on('uncaughtException', (err: Error & { code?: string }) => {
    if (err.code === '57P01') return
    console.error(err)
    process.exit(1)
  })
  const cluster = args.url === undefined ? await startCluster(CLUSTER_SETTINGS) : undefined
  const server = args.url as string | undefined ?? (cluster as PgCluster).url
  console.log(`relayq PostgreSQL bench: ${cluster === undefined ? server : 'a cluster of its own (fsync on, synchronous_commit on, autovacuum off)'}; ${JOBS} jobs, depth ${DEPTH}, ${RUNS} run(s), consumer concurrency 50 in its own process`)
  const results = new Map<LibId, Row[]>()
  try {
    for (let run = 0; run < RUNS; run++) {
      // Interleaved: every library once per round, so a slow moment of the machine hits them alike.
      for (const lib of libs) {
        console.log(`run ${run + 1}: ${lib.name}...`)
        try {
          const row = await runLib(lib, server, cluster, run)
          results.set(lib.id, [...results.get(lib.id) ?? [], row])
          console.log(`  ${JSON.stringify(row, (_, v: unknown) => typeof v === 'number' ? Math.round(v * 100) / 100 : v)}`)
        } catch (err) {
          console.log(`  ${lib.name} failed: ${(err as Error).message}`)
        }
      }
    }
  } finally {
    await cluster?.destroy()
  }
  const columns: Array<[string, keyof Row, number]> = [
    ['enqueue, 50 in flight (jobs/s)', 'enqueueInflight', 0],
    ['bulk enqueue (jobs/s)', 'bulk', 0],
    [`processing (jobs/s), no statistics, ${JOBS} queued`, 'processNoStats', 0],
    [`processing (jobs/s), after ANALYZE, ${JOBS} queued`, 'processAnalyzed', 0],
    [`processing (jobs/s), after ANALYZE, ${DEPTH} queued`, 'processDepth', 0],
    ['consumer CPU (µs/job), after ANALYZE', 'consumerCpuUs', 1],
    ['PostgreSQL CPU (µs/job), no statistics', 'pgCpuUsNoStats', 1],
    ['PostgreSQL CPU (µs/job), after ANALYZE', 'pgCpuUs', 1],
    ['rpc sequential p50 (ms)', 'rpcP50', 2],
    ['rpc 50 in flight (calls/s)', 'rpcInflight', 0]
  ]
  const ran = libs.filter(l => results.has(l.id))
  const med = (lib: LibInfo, key: keyof Row): number | null => {
    const values = (results.get(lib.id) ?? []).map(r => r[key]).filter((v): v is number => v !== null)
    return values.length === 0 ? null : median(values)
  }
  console.log()
  console.log(`| | ${ran.map(l => l.name + (l.maxJobs !== undefined ? ` (${fmt(l.maxJobs)} jobs)` : '')).join(' | ')} |`)
  console.log(`|---|${ran.map(() => '---:').join('|')}|`)
  for (const [label, key, digits] of columns) console.log(`| ${label} | ${ran.map(l => fmt(med(l, key), digits)).join(' | ')} |`)
  const peers = ran.filter(l => !l.id.startsWith('relayq'))
  for (const relayq of ran.filter(l => l.id === 'relayq' || l.id === 'relayq-pf')) {
    if (peers.length === 0) break
    console.log()
    console.log(`${relayq.name} against the best other library in this run:`)
    const best = (key: keyof Row, lower: boolean): number | null => {
      const values = peers.map(p => med(p, key)).filter((v): v is number => v !== null)
      return values.length === 0 ? null : lower ? Math.min(...values) : Math.max(...values)
    }
    for (const [label, key, lower] of [
      ['processing after ANALYZE', 'processAnalyzed', false], ['processing, no statistics', 'processNoStats', false],
      ['processing at depth', 'processDepth', false], ['enqueue 50 in flight', 'enqueueInflight', false], ['bulk enqueue', 'bulk', false],
      ['rpc 50 in flight', 'rpcInflight', false], ['rpc sequential p50 (lower is better)', 'rpcP50', true]
    ] as Array<[string, keyof Row, boolean]>) {
      const ours = med(relayq, key)
      const theirs = best(key, lower)
      if (ours !== null && theirs !== null) console.log(`  ${label}: ${fmt(ours / theirs, 2)}×`)
    }
  }
  console.log()
  for (const lib of ran) console.log(`${lib.name}: ${lib.settings}`)
}
