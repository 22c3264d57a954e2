/**
 * relayq bench.
 *
 *   npm run bench [-- --backend memory|redis|file] [--scenario throughput|rpc|hops|all]
 *                    [--jobs N] [--depth N] [--compare] [--mode warm|cold|both] [--api producer|queue|both]
 *                    [--runs N] [--rpc-after N] [--rpc-warmup N] [--rpc-seq N]
 *                    [--calls N] [--json path] [--url redis://...] [--cluster host:port,...] [--path dir]
 *
 * throughput runs at --jobs (20,000) and again at --depth (100,000; 0 skips it): the processing
 * rate must not fall with the number of jobs queued. rpc measures `enqueueAndWait`, sequential and
 * with 50 in flight (--rpc-warmup calls of each first, then --rpc-seq sequential calls: 10,000 on
 * memory, 1,000 elsewhere, then 5,000 with 50 in flight); --rpc-after N runs it a second time right after a throughput phase of N jobs
 * on the same store (whose records are still there). hops cuts --calls sequential calls into their
 * hops (bench/hops.ts). --mode: warm (a warm-up round first, consumers reused), cold (each measured
 * consumer in a fresh process), or both. --api: relayq through Producer/Consumer, Queue, or both.
 * --compare also runs the peer queues (BullMQ, bee-queue, @platformatic/job-queue) in the same
 * modes on the same store, and prints relayq's ratios against them. --runs repeats everything
 * (interleaved) and reports medians with their range. --cluster runs relayq on a Redis Cluster (seed
 * nodes; peers skipped, no server-side figures).
 *
 * Prints tables and writes JSON to bench/results/<backend>[-compare]-<timestamp>.json (or --json).
 * BENCH_CHILD_PROF=<dir> makes forked children write V8 CPU profiles there (--cpu-prof).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BACKEND_NAMES, closeConsumerPool, type Api, type BackendName } from './backends.ts'
import { runMatrix } from './matrix.ts'
import { printReport } from './report.ts'
import { RPC_WARMUP } from './scenarios.ts'
import type { Mode, ScenarioName } from './suite.ts'

// PostgreSQL has a bench of its own (bench/postgres/run.ts): relayq against pg-boss, graphile-worker
// and @platformatic/job-queue on a server it starts.
if (process.argv.slice(2).join(' ').match(/--backend[= ]postgres\b/) !== null) {
  await (await import('./postgres/run.ts')).main()
  process.exit(0)
}

const USAGE = 'usage: npm run bench [-- --backend memory|redis|file] [--scenario throughput|rpc|hops|all] [--jobs N] [--depth N] ' +
  '[--compare] [--mode warm|cold|both] [--api producer|queue|both] [--runs N] [--rpc-after N] [--rpc-warmup N] [--rpc-seq N] [--calls N] ' +
  '[--json path] [--url URL] [--cluster HOST:PORT,...] [--path DIR]'
const SCENARIOS: readonly ScenarioName[] = ['throughput', 'rpc', 'hops', 'all']

function fail (msg: string): never {
  console.error(msg)
  console.error(USAGE)
  process.exit(2)
}

function count (name: string, value: string, min: number): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  return n
}

function oneOf<T extends string> (name: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) fail(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`)
  return value as T
}

/** `both` → every value, else the one given. */
function both<T extends string> (name: string, value: string, allowed: readonly T[]): T[] {
  return value === 'both' ? [...allowed] : [oneOf(name, value, allowed)]
}

const { values: args } = (() => {
  try {
    return parseArgs({
      options: {
        backend: { type: 'string', default: 'memory' },
        scenario: { type: 'string', default: 'all' },
        jobs: { type: 'string', default: '20000' },
        depth: { type: 'string', default: '100000' },
        compare: { type: 'boolean', default: false },
        mode: { type: 'string', default: 'warm' },
        api: { type: 'string', default: 'producer' },
        runs: { type: 'string', default: '1' },
        'rpc-after': { type: 'string', default: '0' },
        'rpc-warmup': { type: 'string', default: String(RPC_WARMUP) },
        'rpc-seq': { type: 'string' },
        calls: { type: 'string', default: '2000' },
        json: { type: 'string' },
        url: { type: 'string' },
        cluster: { type: 'string' },
        path: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true
    })
  } catch (err) {
    return fail((err as Error).message)
  }
})()
if (args.help === true) {
  console.log(USAGE)
  process.exit(0)
}
const backend: BackendName = oneOf('backend', args.backend, BACKEND_NAMES)
const scenario = oneOf('scenario', args.scenario, SCENARIOS)
const jobs = count('jobs', args.jobs, 1)
const depth = count('depth', args.depth, 0)
const sizes = depth > 0 && depth !== jobs ? [jobs, depth] : [jobs]
const modes = both<Mode>('mode', args.mode, ['warm', 'cold'])
const apis = both<Api>('api', args.api, ['producer', 'queue'])
const runs = count('runs', args.runs, 1)
const rpcAfter = count('rpc-after', args['rpc-after'], 0)
const rpcWarmup = count('rpc-warmup', args['rpc-warmup'], 0)
/**
 * Measured sequential calls: 1,000 take about half a second on Redis, but only ~10 ms in memory,
 * where one GC pause or a preemption by another process would then decide the rate.
 */
const rpcSeq = count('rpc-seq', args['rpc-seq'] ?? (backend === 'memory' ? '10000' : '1000'), 1)
const hopCalls = count('calls', args.calls, 1)
/**
 * Jobs of the unreported warm-up round of warm mode. A 2,000-job warm-up left the 20,000-job run
 * at ~230,000 jobs/s processed against ~600,000 for the same run repeated: the JIT needs about one
 * full run before the numbers describe the steady state.
 */
const warmupJobs = Math.min(jobs, 20_000)

const stamp = new Date().toISOString().replace(/[:.]/g, '-')
const runBase = `${stamp}-${process.pid}`
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  platform: `${platform()} ${release()} ${arch()}`,
  totalMemGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10
}
const url = args.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const cluster = args.cluster?.split(',').map(s => s.trim()).filter(s => s !== '')
if (cluster !== undefined && (backend !== 'redis' || cluster.length === 0)) fail('--cluster needs --backend redis and at least one host:port')
const out = args.json ?? fileURLToPath(new URL(`./results/${backend}${args.compare ? '-compare' : ''}-${stamp}.json`, import.meta.url))
const options = { scenario, sizes, warmupJobs, modes, apis, runs, rpcAfter, rpcWarmup, rpcSeq, hopCalls }
const load = (): string => loadavg().map(l => l.toFixed(2)).join(' ')
const loadBefore = load()

const where = backend === 'memory' ? 'consumers in-process' : 'consumers in child processes'
console.log(`relayq bench${args.compare ? ' --compare' : ''}: ${backend} store${backend === 'redis' ? ` at ${cluster === undefined ? url : `cluster ${cluster.join(',')}`}` : ''} (${where}), modes ${modes.join(' + ')}, ` +
  `${runs} run${runs > 1 ? 's' : ''}; ${machine.cores} × ${machine.cpu}, node ${machine.node}; load average ${loadBefore}`)
const { variants, cells } = await runMatrix({
  backend,
  url,
  cluster,
  path: args.path,
  scenario,
  sizes,
  warmupJobs,
  rpc: { warmup: rpcWarmup, sequential: rpcSeq },
  rpcAfter,
  hopCalls,
  modes,
  apis,
  runs,
  compare: args.compare,
  runBase
})
await closeConsumerPool()
const loadAfter = load()
console.log()
const { summary, ratios } = printReport(variants, cells, { modes, sizes, rpcAfter, runs })
console.log(`Load average (1, 5, 15 min): ${loadBefore} before, ${loadAfter} after.`)

await mkdir(dirname(out), { recursive: true })
await writeFile(out, JSON.stringify({
  backend, compare: args.compare, date: new Date().toISOString(), machine, load: { before: loadBefore, after: loadAfter }, options, variants, summary, ratios, cells
}, null, 2) + '\n')
console.log(`JSON: ${out}`)
if (cells.some(c => c.errors.length > 0)) process.exitCode = 1 // a job or call did not complete: reported above
