/**
 * relayq bench (issue 2, item 7).
 *
 *   npm run bench [-- --backend memory|redis|file] [--scenario throughput|rpc|all]
 *                    [--jobs N] [--depth N] [--json path] [--url redis://...] [--path dir]
 *
 * throughput runs at --jobs (20,000) and again at --depth (100,000; 0 skips it): the processing
 * rate must not fall with the number of jobs queued. Prints tables and writes JSON to
 * bench/results/<backend>-<timestamp>.json (or --json path).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, platform, release, totalmem, arch } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BACKEND_NAMES, BackendUnavailableError, createBackend, type Backend, type BackendName } from './backends.ts'
import { rpc, throughput, type RpcResult, type ThroughputResult } from './scenarios.ts'

const USAGE = 'usage: npm run bench [-- --backend memory|redis|file] [--scenario throughput|rpc|all] [--jobs N] [--depth N] [--json path] [--url URL] [--path DIR]'
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

/** A fresh backend per run, so one run's leftovers (terminal records, GC pressure) do not skew the next. */
async function withBackend<T> (fn: (backend: Backend) => Promise<T>): Promise<T> {
  const backend = await createBackend(backendName, { url: args.url, path: args.path })
  try {
    return await fn(backend)
  } finally {
    await backend.close()
  }
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

function table (headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(' | ') + ' |'
  return [line(headers), '|' + widths.map((w, i) => '-'.repeat(w + 1) + (i === 0 ? '-' : ':')).join('|') + '|', ...rows.map(line)].join('\n')
}

const results: { throughput?: ThroughputResult[], rpc?: RpcResult } = {}

try {
  await withBackend(async () => {}) // fails early, with a clear message, if the backend's module is missing
  console.log(`relayq bench: backend ${backendName} (consumer ${backendName === 'memory' ? 'in-process' : 'in a child process'}), ${machine.cores} × ${machine.cpu}, node ${machine.node}`)
  if (scenario === 'throughput' || scenario === 'all') {
    await withBackend(b => throughput(b, `${runBase}-warm`, WARMUP_JOBS))
    results.throughput = []
    for (const size of sizes) {
      process.stdout.write(`throughput: ${fmt(size)} jobs... `)
      const r = await withBackend(b => throughput(b, `${runBase}-tp${size}`, size))
      results.throughput.push(r)
      console.log(`${fmt(r.processPerSec)} jobs/s processed`)
    }
  }
  if (scenario === 'rpc' || scenario === 'all') {
    process.stdout.write('rpc... ')
    results.rpc = await withBackend(b => rpc(b, `${runBase}-rpc`))
    console.log('done')
  }
} catch (err) {
  if (err instanceof BackendUnavailableError) {
    console.error(`\n${err.message}`)
    process.exit(1)
  }
  throw err
}

console.log()
if (results.throughput !== undefined) {
  console.log(table(
    ['throughput', 'enqueue jobs/s (50 in flight)', 'bulk enqueue jobs/s (1,000/chunk)', 'processing jobs/s (c=50)', `consumer CPU µs/job${backendName === 'memory' ? ' (process)' : ''}`],
    results.throughput.map(r => [`${fmt(r.jobs)} jobs`, fmt(r.enqueuePerSec), fmt(r.bulkEnqueuePerSec), fmt(r.processPerSec), fmt(r.consumerCpuUsPerJob, 2)])
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

const out = args.json ?? fileURLToPath(new URL(`./results/${backendName}-${stamp}.json`, import.meta.url))
await mkdir(dirname(out), { recursive: true })
await writeFile(out, JSON.stringify({
  backend: backendName,
  date: new Date().toISOString(),
  machine,
  options: { scenario, jobs, depth, warmupJobs: WARMUP_JOBS },
  results
}, null, 2) + '\n')
console.log(`JSON: ${out}`)
