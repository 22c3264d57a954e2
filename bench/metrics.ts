/**
 * What metrics and tracing cost the processing rate and the consumer's CPU (issue 11 item 5), in one run:
 *
 *   npm run build && npx tsx bench/metrics.ts [--jobs 100000] [--rounds 11] [--drains 3] [--backend memory|file|redis]
 *                                             [--redis-url redis://127.0.0.1:6379] [--only off,baseline,...]
 *                                             [--baseline <dist of another build>] [--json path]
 *
 * Variants: `off` (nothing attached), `prometheus` (relayq/metrics with a prom-client registry),
 * `otel` (relayq/tracing spans and meter with no SDK registered: the no-op API), and with
 * --baseline the `off` run on another build (the hot path did not move). Each measurement is a
 * fresh process (the probe is attached once, as in an application: attaching and detaching in
 * one process would make V8 re-optimize the consumer every time) that warms up with one drain and
 * then runs --drains drains: a Producer fills the queue, then one Consumer at concurrency 16
 * drains it; rate = jobs / drain time, CPU = the process's CPU time (`process.cpuUsage()`) over
 * the drain / jobs (the producer is idle then: it is the consumer's). A round runs every variant
 * once, in an order rotating from round to round; each variant is then judged by its per-round
 * ratios to `off` (median, interquartile range, 95 % bootstrap interval of the median). CPU per
 * job moves much less with the machine's load than jobs/s: on a shared machine it is the figure
 * that can show a 5 % difference. `--only` keeps the named variants (off, prometheus, otel,
 * otel-sdk, baseline); `otel-sdk` traces with a real SDK (every span recorded, dropped by a no-op
 * exporter), so each job carries a trace context through the storage. On Redis each drain has a
 * key prefix of its own.
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { formatPaired, median, summarise, type PairedSummary } from './paired.ts'

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '11' },
    drains: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'memory' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    only: { type: 'string' },
    baseline: { type: 'string' },
    child: { type: 'string' },
    dist: { type: 'string' },
    json: { type: 'string' }
  }
})
const JOBS = Number(values.jobs)
const DIST = resolve(import.meta.dirname, '../dist')

type Relayq = typeof import('../src/index.ts')

interface Drain { rate: number, cpuUsPerJob: number }

/** Jobs per second of one drain of JOBS jobs, and this process's CPU time per job meanwhile. */
async function drain (lib: Relayq): Promise<Drain> {
  const dir = values.backend === 'file' ? await mkdtemp(join(tmpdir(), 'relayq-bench-metrics-')) : undefined
  const storage = values.backend === 'redis'
    ? new lib.RedisStorage({ url: values['redis-url'], keyPrefix: `bench-metrics-${randomUUID()}` })
    : dir === undefined ? new lib.MemoryStorage() : new lib.FileStorage({ basePath: dir })
  const producer = new lib.Producer<number, number>({ storage, name: 'bench' })
  for (let i = 0; i < JOBS; i += 1000) {
    await producer.enqueueMany(Array.from({ length: Math.min(1000, JOBS - i) }, (_, k) => ({ id: `j${i + k}`, payload: i + k })))
  }
  const consumer = new lib.Consumer<number, number>({ storage, name: 'bench', concurrency: 16 })
  let done = 0
  let finish: () => void = () => {}
  const finished = new Promise<void>(resolve => { finish = resolve })
  consumer.on('completed', () => { if (++done === JOBS) finish() })
  consumer.execute(async job => job.payload)
  const cpu = process.cpuUsage()
  const started = process.hrtime.bigint()
  await consumer.start()
  await finished
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const used = process.cpuUsage(cpu)
  await consumer.stop()
  if (storage instanceof lib.RedisStorage) await storage.clear()
  await producer.stop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  return { rate: JOBS / seconds, cpuUsPerJob: (used.user + used.system) / JOBS }
}

if (values.child !== undefined) {
  // One measurement: attach the variant once, warm up, then the median of --drains drains. Every
  // variant loads the same modules, whether it attaches them or not: what a process has loaded
  // moves V8's heap sizing, and with it the GC share of the CPU per job, by several per cent.
  const dist = values.dist ?? DIST
  const lib = await import(pathToFileURL(join(dist, 'index.js')).href) as Relayq
  const loaded = values.dist === undefined
    ? {
        metrics: await import(pathToFileURL(join(dist, 'metrics/index.js')).href) as typeof import('../src/metrics/index.ts'),
        tracing: await import(pathToFileURL(join(dist, 'tracing/index.js')).href) as typeof import('../src/tracing/index.ts'),
        prom: await import('prom-client'),
        sdk: await import('@opentelemetry/sdk-trace-base')
      }
    : undefined
  if (values.child === 'prometheus') {
    loaded?.metrics.prometheusMetrics({ registry: new loaded.prom.Registry() })
  } else if (values.child === 'otel') {
    loaded?.tracing.openTelemetry()
  } else if (values.child === 'otel-sdk' && loaded !== undefined) {
    const { BasicTracerProvider, NoopSpanProcessor } = loaded.sdk
    loaded.tracing.openTelemetry({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] }), metrics: false })
  }
  await drain(lib)
  const drains: Drain[] = []
  for (let i = 0; i < Number(values.drains); i++) drains.push(await drain(lib))
  console.log(JSON.stringify({ rate: median(drains.map(d => d.rate)), cpuUsPerJob: median(drains.map(d => d.cpuUsPerJob)) }))
} else {
  const run = promisify(execFile)
  const self = fileURLToPath(import.meta.url)
  const only = values.only?.split(',')
  const variants: Array<{ key: string, name: string, args: string[] }> = [
    { key: 'off', name: 'off', args: ['--child', 'off'] },
    { key: 'prometheus', name: 'prometheus', args: ['--child', 'prometheus'] },
    { key: 'otel', name: 'otel (no SDK)', args: ['--child', 'otel'] },
    { key: 'otel-sdk', name: 'otel (SDK)', args: ['--child', 'otel-sdk'] },
    ...(values.baseline === undefined ? [] : [{ key: 'baseline', name: 'baseline build', args: ['--child', 'off', '--dist', resolve(values.baseline)] }])
  ].filter(v => only === undefined ? v.key !== 'otel-sdk' : only.includes(v.key))
  const common = ['--jobs', String(JOBS), '--drains', String(values.drains), '--backend', String(values.backend), '--redis-url', String(values['redis-url'])]
  const rounds = Number(values.rounds)
  /** Per variant, one measurement per round. */
  const results = new Map(variants.map(v => [v.name, [] as Drain[]]))
  const loadBefore = loadavg()[0]
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(round + k) % variants.length]
      const { stdout } = await run(process.execPath, ['--import', 'tsx', self, ...v.args, ...common])
      const d = JSON.parse(stdout) as Drain
      results.get(v.name)?.push(d)
      // Partial results survive an interrupted run.
      process.stderr.write(`round ${round + 1} ${v.name}: ${Math.round(d.rate)} jobs/s, ${d.cpuUsPerJob.toFixed(2)} µs CPU/job\n`)
    }
  }
  const off = results.get('off')
  if (off === undefined) throw new Error('--only must include off: the other variants are measured against it')
  const n = (x: number, digits = 0): string => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
  const range = (xs: number[], digits = 0): string => `${n(median(xs), digits)} (${n(Math.min(...xs), digits)}..${n(Math.max(...xs), digits)})`
  console.log(`relayq metrics overhead: ${String(values.backend)}, ${n(JOBS)} jobs per drain, ${rounds} rounds (a fresh process per variant and round, ` +
    `median of ${String(values.drains)} drains each), concurrency 16, node ${process.version}, load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after`)
  console.log('Ratios to off are per round (same round, adjacent processes): median [interquartile range] (95 % bootstrap interval of the median).')
  console.log('variant          | jobs/s median (min..max)     | CPU µs/job median (min..max) | jobs/s ÷ off                       | CPU/job ÷ off')
  const summary: Record<string, { rate: number[], cpuUsPerJob: number[], rateRatio: PairedSummary, cpuRatio: PairedSummary }> = {}
  for (const [name, ds] of results) {
    const rate = ds.map(d => d.rate)
    const cpu = ds.map(d => d.cpuUsPerJob)
    const rateRatio = summarise(ds.map((d, i) => d.rate / off[i].rate))
    const cpuRatio = summarise(ds.map((d, i) => d.cpuUsPerJob / off[i].cpuUsPerJob))
    summary[name] = { rate, cpuUsPerJob: cpu, rateRatio, cpuRatio }
    console.log(`${name.padEnd(16)} | ${range(rate).padEnd(28)} | ${range(cpu, 2).padEnd(28)} | ${formatPaired(rateRatio).padEnd(34)} | ${formatPaired(cpuRatio)}`)
  }
  // The bar, one-sided (a variant may not cost more than 5 %): shown when the whole 95 %
  // interval of the paired ratio is on the right side of it, refuted when it is all beyond it.
  const verdict = (worseThanBar: number, betterThanBar: number): string => betterThanBar >= 1 ? 'shown' : worseThanBar > 1 ? 'REFUTED' : 'undecided'
  for (const [name, s] of Object.entries(summary)) {
    if (name === 'off') continue
    console.log(`${name}: at most 5 % slower than off: ${verdict(0.95 / s.rateRatio.ciHigh, s.rateRatio.ciLow / 0.95)}; ` +
      `at most 5 % more CPU per job: ${verdict(s.cpuRatio.ciLow / 1.05, 1.05 / s.cpuRatio.ciHigh)}`)
  }
  if (values.json !== undefined) {
    await mkdir(dirname(values.json), { recursive: true })
    await writeFile(values.json, JSON.stringify({ backend: values.backend, jobs: JOBS, rounds, drains: Number(values.drains), node: process.version, summary }, null, 2) + '\n')
  }
}
