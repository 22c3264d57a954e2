/**
 * What metrics and tracing cost the processing rate (issue 11 item 5), in one run:
 *
 *   npm run build && npx tsx bench/metrics.ts [--jobs 100000] [--rounds 7] [--backend memory|file]
 *                                             [--baseline <dist of a build without the hook>]
 *
 * Variants, interleaved round by round on fresh storages (Producer fills the queue, then one
 * Consumer at concurrency 16 drains it; the rate is jobs / drain time): `off` (nothing attached),
 * `prometheus` (relayq/metrics with a prom-client registry), `otel` (relayq/tracing spans and
 * meter with no SDK registered: the no-op API), and, with --baseline, the same `off` run on
 * another build (the commit before the hook) to show the hot path did not move.
 * Prints the median and spread of each, and the ratio of each median to `off`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '7' },
    backend: { type: 'string', default: 'memory' },
    baseline: { type: 'string' }
  }
})
const JOBS = Number(values.jobs)
const ROUNDS = Number(values.rounds)
const dist = pathToFileURL(resolve(import.meta.dirname, '../dist')).href + '/'

type Relayq = typeof import('../src/index.ts')
const relayq = await import(`${dist}index.js`) as Relayq
const baseline = values.baseline === undefined ? undefined : await import(pathToFileURL(resolve(values.baseline, 'index.js')).href) as Relayq
const { prometheusMetrics } = await import(`${dist}metrics/index.js`) as typeof import('../src/metrics/index.ts')
const { openTelemetry } = await import(`${dist}tracing/index.js`) as typeof import('../src/tracing/index.ts')
const { Registry } = await import('prom-client')

/** Jobs per second of one drain of JOBS jobs. */
async function drain (lib: Relayq): Promise<number> {
  const dir = values.backend === 'file' ? await mkdtemp(join(tmpdir(), 'relayq-bench-metrics-')) : undefined
  const storage = dir === undefined ? new lib.MemoryStorage() : new lib.FileStorage({ basePath: dir })
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
  await producer.stop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  return JOBS / seconds
}

const variants: Array<{ name: string, run: () => Promise<number> }> = [
  { name: 'off', run: () => drain(relayq) },
  {
    name: 'prometheus',
    async run () {
      const metrics = prometheusMetrics({ registry: new Registry() })
      try { return await drain(relayq) } finally { metrics.close() }
    }
  },
  {
    name: 'otel (no SDK)',
    async run () {
      const otel = openTelemetry()
      try { return await drain(relayq) } finally { otel.close() }
    }
  },
  ...(baseline === undefined ? [] : [{ name: 'baseline build', run: () => drain(baseline) }])
]

const rates = new Map(variants.map(v => [v.name, [] as number[]]))
await drain(relayq) // warm-up, not counted
for (let round = 0; round < ROUNDS; round++) {
  // Rotate the order so no variant always runs first (or last) in a round.
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(round + k) % variants.length]
    rates.get(v.name)?.push(await v.run())
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const off = median(rates.get('off') ?? [])
console.log(`relayq metrics overhead: ${values.backend}, ${JOBS} jobs per drain, ${ROUNDS} rounds, concurrency 16, node ${process.version}`)
console.log('variant           median jobs/s   min..max              vs off')
for (const [name, xs] of rates) {
  const m = median(xs)
  console.log(`${name.padEnd(17)} ${Math.round(m).toLocaleString('en-US').padStart(13)}   ${`${Math.round(Math.min(...xs)).toLocaleString('en-US')}..${Math.round(Math.max(...xs)).toLocaleString('en-US')}`.padEnd(20)}  ${(m / off).toFixed(3)}`)
}
