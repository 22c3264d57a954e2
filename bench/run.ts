/**
 * relayq bench (issue 2, item 7).
 *
 *   npm run bench [-- --backend memory|redis|file] [--scenario throughput|rpc|all]
 *                    [--jobs N] [--depth N] [--json path] [--url redis://...] [--path dir] [--compare]
 *
 * throughput runs at --jobs (20,000) and again at --depth (100,000; 0 skips it): the processing
 * rate must not fall with the number of jobs queued. Prints tables and writes JSON to
 * bench/results/<backend>-<timestamp>.json (or --json path).
 *
 * --compare also runs the peer queues (BullMQ, bee-queue, @platformatic/job-queue) through the same
 * scenarios on the same store, and prints relayq's ratios against them (bench/compare.ts).
 *
 * BENCH_CHILD_PROF=<dir> makes forked consumer children write V8 CPU profiles there (--cpu-prof).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, platform, release, totalmem, arch } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BACKEND_NAMES, closeConsumerPool, createBackend, type BackendName } from './backends.ts'
import { runCompare } from './compare.ts'
import { printCompare } from './compare-report.ts'
import { fmt, table } from './format.ts'
import { runSuite, type SuiteResults } from './suite.ts'
import { relayqTarget } from './target.ts'

// PostgreSQL has a bench of its own (bench/postgres/run.ts): relayq against pg-boss, graphile-worker
// and @platformatic/job-queue on a server it starts.
if (process.argv.slice(2).join(' ').match(/--backend[= ]postgres\b/) !== null) {
  await (await import('./postgres/run.ts')).main()
  process.exit(0)
}

const USAGE = 'usage: npm run bench [-- --backend memory|redis|file] [--scenario throughput|rpc|all] [--jobs N] [--depth N] [--json path] [--url URL] [--path DIR] [--compare]'
const SCENARIOS = ['throughput', 'rpc', 'all'] as const

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

const { values: args } = (() => {
  try {
    return parseArgs({
      options: {
        backend: { type: 'string', default: 'memory' },
        scenario: { type: 'string', default: 'all' },
        jobs: { type: 'string', default: '20000' },
        depth: { type: 'string', default: '100000' },
        json: { type: 'string' },
        url: { type: 'string' },
        path: { type: 'string' },
        compare: { type: 'boolean', default: false },
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
const backendName = args.backend as BackendName
if (!BACKEND_NAMES.includes(backendName)) fail(`unknown backend ${JSON.stringify(args.backend)}`)
const scenario = args.scenario as typeof SCENARIOS[number]
if (!SCENARIOS.includes(scenario)) fail(`unknown scenario ${JSON.stringify(args.scenario)}`)
const jobs = count('jobs', args.jobs, 1)
const depth = count('depth', args.depth, 0)
const sizes = depth > 0 && depth !== jobs ? [jobs, depth] : [jobs]
/**
 * Jobs of the unreported throughput warm-up round. A 2,000-job warm-up left the 20,000-job run at
 * ~230,000 jobs/s processed against ~600,000 for the same run repeated: the JIT needs about one
 * full run before the numbers describe the steady state.
 */
const WARMUP_JOBS = Math.min(jobs, 20_000)

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
const out = args.json ?? fileURLToPath(new URL(`./results/${backendName}${args.compare ? '-compare' : ''}-${stamp}.json`, import.meta.url))
const options = { scenario, jobs, depth, warmupJobs: WARMUP_JOBS }

async function writeJson (data: Record<string, unknown>): Promise<void> {
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({ backend: backendName, date: new Date().toISOString(), machine, options, ...data }, null, 2) + '\n')
  console.log(`JSON: ${out}`)
}

if (args.compare) {
  console.log(`relayq bench --compare: ${backendName} store${backendName === 'redis' ? ` at ${url}` : ''} (consumers ${backendName === 'memory' ? 'in-process' : 'in child processes'}), ${machine.cores} × ${machine.cpu}, node ${machine.node}`)
  const runs = await runCompare({ backend: backendName, url, path: args.path, scenario, sizes, warmupJobs: WARMUP_JOBS, runBase })
  console.log()
  const ratios = printCompare(backendName, runs)
  await writeJson({ compare: true, libraries: runs, ratios })
  if (runs.some(r => r.errors.length > 0)) process.exitCode = 1 // a job or call did not complete: reported above
} else {
  await runRelayqOnly()
}
await closeConsumerPool()

/** relayq alone: the scenarios, then its tables. */
async function runRelayqOnly (): Promise<void> {
  /** A fresh backend per run, so one run's leftovers (terminal records, GC pressure) do not skew the next. */
  const openRelayq = async (): Promise<ReturnType<typeof relayqTarget>> => relayqTarget(await createBackend(backendName, { url: args.url, path: args.path }))

  console.log(`relayq bench: backend ${backendName} (consumer ${backendName === 'memory' ? 'in-process' : 'in a child process'}), ${machine.cores} × ${machine.cpu}, node ${machine.node}`)
  const results: SuiteResults = await runSuite(openRelayq, runBase, { scenario, sizes, warmupJobs: WARMUP_JOBS })

  console.log()
  if (results.throughput !== undefined) {
    console.log(table(
      ['throughput', 'enqueue jobs/s (50 in flight)', 'bulk enqueue jobs/s (1,000/chunk)', 'processing jobs/s (c=50)', `consumer CPU µs/job${backendName === 'memory' ? ' (process)' : ''}`],
      results.throughput.map(r => [`${fmt(r.jobs)} jobs`, fmt(r.enqueuePerSec), r.bulkEnqueuePerSec === null ? 'n/a' : fmt(r.bulkEnqueuePerSec), fmt(r.processPerSec), fmt(r.consumerCpuUsPerJob, 2)])
    ))
    console.log()
  }
  if (results.rpc !== undefined) {
    const r = results.rpc
    console.log(table(
      ['rpc (enqueueAndWait)', 'calls', 'calls/s', 'p50 ms', 'p99 ms', 'max ms'],
      [['sequential', r.sequential], ['50 in flight', r.concurrent]].map(([name, p]) => {
        const ph = p as typeof r.sequential
        return [name as string, fmt(ph.calls), fmt(ph.callsPerSec), fmt(ph.p50Ms, 4), fmt(ph.p99Ms, 4), fmt(ph.maxMs, 3)]
      })
    ))
    console.log(`consumer CPU per call: ${fmt(r.consumerCpuUsPerCall, 2)} µs (${r.consumerWhere}${r.consumerWhere === 'in-process' ? ', producer included' : ''}; ${fmt(r.warmupCalls)} warm-up calls before)`)
    console.log()
  }

  await writeJson({ results })
}
