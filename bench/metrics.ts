/**
 * What metrics and tracing cost the processing rate (issue 11 item 5), in one run:
 *
 *   npm run build && npx tsx bench/metrics.ts [--jobs 100000] [--rounds 5] [--drains 3] [--backend memory|file|redis]
 *                                             [--redis-url redis://127.0.0.1:6379] [--only off,baseline,...]
 *                                             [--baseline <dist of another build>]
 *
 * Variants: `off` (nothing attached), `prometheus` (relayq/metrics with a prom-client registry),
 * `otel` (relayq/tracing spans and meter with no SDK registered: the no-op API), and with
 * --baseline the `off` run on another build (the commit before the hook: the hot path did not
 * move). Each measurement is a fresh process (the probe is attached once, as in an application:
 * attaching and detaching in one process would make V8 re-optimize the consumer every time) that
 * warms up with one drain and then runs --drains drains: a Producer fills the queue, one Consumer
 * at concurrency 16 drains it, rate = jobs / drain time. Rounds alternate the variants (rotating
 * their order); the table gives the median, the spread, and each median's ratio to `off`.
 * `--only` keeps the named variants (off, prometheus, otel, otel-sdk, baseline); `otel-sdk`
 * traces with a real SDK (every span recorded, dropped by a no-op exporter), so each job
 * carries a trace context through the storage. On Redis each drain has a key prefix of its own.
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs, promisify } from 'node:util'

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '5' },
    drains: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'memory' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    only: { type: 'string' },
    baseline: { type: 'string' },
    child: { type: 'string' },
    dist: { type: 'string' }
  }
})
const JOBS = Number(values.jobs)
const DIST = resolve(import.meta.dirname, '../dist')

type Relayq = typeof import('../src/index.ts')

/** Jobs per second of one drain of JOBS jobs. */
async function drain (lib: Relayq): Promise<number> {
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
  const started = process.hrtime.bigint()
  await consumer.start()
  await finished
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  await consumer.stop()
  if (storage instanceof lib.RedisStorage) await storage.clear()
  await producer.stop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  return JOBS / seconds
}

const median = (xs: readonly number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

if (values.child !== undefined) {
  // One measurement: attach the variant once, warm up, then the median of --drains drains.
  const dist = values.dist ?? DIST
  const lib = await import(pathToFileURL(join(dist, 'index.js')).href) as Relayq
  if (values.child === 'prometheus') {
    const { prometheusMetrics } = await import(pathToFileURL(join(dist, 'metrics/index.js')).href) as typeof import('../src/metrics/index.ts')
    const { Registry } = await import('prom-client')
    prometheusMetrics({ registry: new Registry() })
  } else if (values.child === 'otel') {
    const { openTelemetry } = await import(pathToFileURL(join(dist, 'tracing/index.js')).href) as typeof import('../src/tracing/index.ts')
    openTelemetry()
  } else if (values.child === 'otel-sdk') {
    const { openTelemetry } = await import(pathToFileURL(join(dist, 'tracing/index.js')).href) as typeof import('../src/tracing/index.ts')
    const { BasicTracerProvider, NoopSpanProcessor } = await import('@opentelemetry/sdk-trace-base')
    openTelemetry({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] }), metrics: false })
  }
  await drain(lib)
  const rates: number[] = []
  for (let i = 0; i < Number(values.drains); i++) rates.push(await drain(lib))
  console.log(JSON.stringify({ rate: median(rates) }))
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
  const rates = new Map(variants.map(v => [v.name, [] as number[]]))
  const rounds = Number(values.rounds)
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(round + k) % variants.length]
      const { stdout } = await run(process.execPath, ['--import', 'tsx', self, ...v.args, ...common])
      const { rate } = JSON.parse(stdout) as { rate: number }
      rates.get(v.name)?.push(rate)
      process.stderr.write(`round ${round + 1} ${v.name}: ${Math.round(rate)} jobs/s\n`) // partial results survive an interrupted run
    }
  }
  const off = median(rates.get('off') ?? [])
  const n = (x: number): string => Math.round(x).toLocaleString('en-US')
  console.log(`relayq metrics overhead: ${String(values.backend)}, ${n(JOBS)} jobs per drain, ${rounds} processes per variant (median of ${String(values.drains)} drains each), concurrency 16, node ${process.version}`)
  console.log('variant           median jobs/s   min..max              vs off')
  for (const [name, xs] of rates) console.log(`${name.padEnd(17)} ${n(median(xs)).padStart(13)}   ${`${n(Math.min(...xs))}..${n(Math.max(...xs))}`.padEnd(20)}  ${(median(xs) / off).toFixed(3)}`)
}
