/**
 * The soak of issue 14: `enqueueAndWait` calls through `Queue` at half the maximum rate, for
 * minutes, with latency and memory reported per minute.
 *
 *   npm run bench:soak [-- --backend memory|redis] [--url redis://...] [--minutes 10] [--rate N]
 *                      [--probe-seconds 10] [--result-ttl 10000] [--json path]
 *
 * 1. Maximum rate (unless --rate): 5,000 warm-up calls with 50 in flight, then calls with 50 in
 *    flight for --probe-seconds; the soak runs at half the calls/s measured.
 * 2. Soak: open loop. Call i is due at start + i / rate, and is sent when due whatever the calls
 *    before it are doing; its latency runs from when it was due to when its result arrived, so a
 *    late sender or a queue building up shows in the figures. The consumer is a `Queue` with a
 *    handler (concurrency 50, handler answers `payload.n`): on Redis in a process of its own
 *    (bench/soak-child.ts), on memory in this process (its state lives here; the producer
 *    figures are then those of both).
 * Per minute (by completion time): calls, errors, latency p50/p99/max, the most calls in flight,
 * RSS and V8 heap (after a full collection) of producer and consumer, their CPU per call, Redis `used_memory` and key count,
 * load average. Then minute 1 against the last minute, and a verdict.
 *
 * Jobs keep their results for --result-ttl ms (10 s by default, not the library's hour): with an
 * hour, the records of every call of the soak stay in memory and memory grows by design for the
 * whole run; with 10 s, the set of records held is steady well before minute 1 ends, and what
 * grows after that is a leak.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'iovalkey'
import { MemoryStorage, Queue, type Storage } from 'relayq'
import { loadStorageFactory, runConsumer, type BackendConfig, type RunningConsumer } from './backends.ts'
import { fmt, table } from './format.ts'
import { deleteKeys } from './peers/redis-keys.ts'
import { processSample, type ProcessSample, type SoakFromChild, type SoakToChild } from './soak-sample.ts'

const USAGE = 'usage: npm run bench:soak [-- --backend memory|redis] [--url URL] [--minutes N] [--rate N] [--probe-seconds N] [--result-ttl MS] [--json path]'
const CONCURRENCY = 50
const IN_FLIGHT = 50
const WARMUP = 5_000
const CALL_TIMEOUT = 30_000
/** Calls in flight beyond which the run stops: the consumer fell behind for good. */
const RUNAWAY = 200_000
/** p99 at the last minute within this factor of minute 1's, and RSS within RSS_FLAT, is "flat". */
const P99_FLAT = 1.5
const RSS_FLAT = 0.1

function fail (msg: string): never {
  console.error(msg)
  console.error(USAGE)
  process.exit(2)
}

const { values: args } = (() => {
  try {
    return parseArgs({
      options: {
        backend: { type: 'string', default: 'memory' },
        url: { type: 'string' },
        minutes: { type: 'string', default: '10' },
        rate: { type: 'string' },
        'probe-seconds': { type: 'string', default: '10' },
        'result-ttl': { type: 'string', default: '10000' },
        json: { type: 'string' },
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
const positive = (name: string, value: string | undefined): number => {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a number > 0, got ${JSON.stringify(value)}`)
  return n
}
if (args.backend !== 'memory' && args.backend !== 'redis') fail(`--backend must be memory or redis, got ${JSON.stringify(args.backend)}`)
const backend = args.backend
const minutes = Math.round(positive('minutes', args.minutes))
const probeSeconds = positive('probe-seconds', args['probe-seconds'])
const resultTTL = Math.round(positive('result-ttl', args['result-ttl']))
const givenRate = args.rate === undefined ? undefined : positive('rate', args.rate)
const url = args.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const runId = randomUUID().slice(0, 8)
const queueName = `soak-${runId}`

interface Payload { n: number, s: string }

/** The consumer, wherever it runs, and how to read its process's memory. */
interface SoakConsumer {
  /** Its process's sample; undefined when it runs in this process. */
  sample (): Promise<ProcessSample | undefined>
  stop (): Promise<void>
}

async function inProcessConsumer (storage: Storage): Promise<SoakConsumer> {
  const running: RunningConsumer = await runConsumer(storage, { queue: queueName, concurrency: CONCURRENCY, handler: 'echo', target: 0, api: 'queue' }, 'in-process')
  return { sample: async () => undefined, stop: async () => { await running.stop() } }
}

async function childConsumer (config: BackendConfig): Promise<SoakConsumer> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./soak-child.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const next = <T extends SoakFromChild['type']>(type: T): Promise<Extract<SoakFromChild, { type: T }>> => new Promise((resolve, reject) => {
    const onMessage = (msg: SoakFromChild): void => {
      if (msg.type !== type && msg.type !== 'error') return
      cleanup()
      if (msg.type === 'error') reject(new Error(`consumer child: ${msg.message}`))
      else resolve(msg as Extract<SoakFromChild, { type: T }>)
    }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`consumer child exited (code ${code}) while waiting for '${type}'`)) }
    const cleanup = (): void => { child.off('message', onMessage); child.off('exit', onExit) }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
  const send = (msg: SoakToChild<BackendConfig>): void => { child.send(msg) }
  const started = next('started')
  send({ type: 'start', config, queue: queueName, concurrency: CONCURRENCY })
  await started
  return {
    async sample () {
      const reply = next('sample')
      send({ type: 'sample' })
      return (await reply).sample
    },
    async stop () {
      const exited = new Promise(resolve => child.once('exit', resolve))
      const stopped = next('stopped')
      send({ type: 'stop' })
      await stopped
      await exited
    }
  }
}

/** One minute of the soak. */
interface Minute {
  minute: number
  calls: number
  errors: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  maxInFlight: number
  producer: ProcessSample
  consumer?: ProcessSample
  producerCpuUsPerCall: number
  consumerCpuUsPerCall?: number
  redisUsedMemory?: number
  redisKeys?: number
  load1: number
}

/** Nearest-rank percentile of sorted values. */
const percentile = (sorted: Float64Array, q: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]

const redis = backend === 'redis' ? new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 }) : undefined
const config: BackendConfig = backend === 'redis' ? { name: 'redis', url, keyPrefix: `relayq-soak-${runId}` } : { name: 'memory' }
const memory = backend === 'memory' ? new MemoryStorage() : undefined
const storage = memory ?? (await loadStorageFactory(config))()
const consumer = memory !== undefined ? await inProcessConsumer(memory) : await childConsumer(config)
const producer = new Queue<Payload, number>({ storage, name: queueName, resultTTL })
await producer.start()
await redis?.connect()

let seq = 0
const call = async (): Promise<void> => {
  const n = seq++
  const result = await producer.enqueueAndWait(`${runId}-${n}`, { n, s: 'hello world' }, { timeout: CALL_TIMEOUT })
  if (result !== n) throw new Error(`call ${n}: got ${String(result)}`)
}

/** Calls with `IN_FLIGHT` loops until `count` calls or `until` (performance.now() ms); answers the calls made. */
async function closedLoop (count: number, until = Infinity): Promise<number> {
  let made = 0
  const loop = async (): Promise<void> => {
    while (made < count && performance.now() < until) {
      made++
      await call()
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, loop))
  return made
}

console.log(`relayq soak: ${backend}${backend === 'redis' ? ` at ${url}, consumer in a child process` : ', consumer in this process'}, Queue API, ` +
  `consumer concurrency ${CONCURRENCY}, result TTL ${fmt(resultTTL)} ms, node ${process.version}, load average ${loadavg().map(l => l.toFixed(2)).join(' ')}`)
let maxRate: number | undefined
let rate: number
if (givenRate === undefined) {
  await closedLoop(WARMUP)
  const t0 = performance.now()
  const made = await closedLoop(Infinity, t0 + probeSeconds * 1000)
  maxRate = made / ((performance.now() - t0) / 1000)
  rate = maxRate / 2
  console.log(`maximum rate: ${fmt(maxRate)} calls/s (${IN_FLIGHT} in flight, ${probeSeconds} s after ${fmt(WARMUP)} warm-up calls); soak at ${fmt(rate)} calls/s for ${minutes} min`)
} else {
  rate = givenRate
  console.log(`soak at ${fmt(rate)} calls/s (--rate) for ${minutes} min`)
}

const interval = 1000 / rate
const total = Math.floor(rate * minutes * 60)
const rows: Minute[] = []
let latencies: number[] = []
let errors = 0
let firstError: string | undefined
let inFlight = 0
let maxInFlight = 0
let lastProducerCpu = processSample().cpuUs
let lastConsumerCpu = (await consumer.sample())?.cpuUs

async function closeMinute (): Promise<Minute> {
  const sorted = Float64Array.from(latencies).sort()
  const calls = sorted.length
  const errs = errors
  const peak = maxInFlight
  latencies = []
  errors = 0
  maxInFlight = inFlight
  const producerNow = processSample()
  const consumerNow = await consumer.sample()
  const used = redis === undefined ? undefined : Number((await redis.info('memory')).match(/^used_memory:(\d+)/m)?.[1])
  const keys = redis === undefined ? undefined : await redis.dbsize()
  const row: Minute = {
    minute: rows.length + 1,
    calls,
    errors: errs,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted[calls - 1] ?? NaN,
    maxInFlight: peak,
    producer: producerNow,
    consumer: consumerNow,
    producerCpuUsPerCall: (producerNow.cpuUs - lastProducerCpu) / calls,
    consumerCpuUsPerCall: consumerNow === undefined || lastConsumerCpu === undefined ? undefined : (consumerNow.cpuUs - lastConsumerCpu) / calls,
    redisUsedMemory: used,
    redisKeys: keys,
    load1: loadavg()[0]
  }
  lastProducerCpu = producerNow.cpuUs
  lastConsumerCpu = consumerNow?.cpuUs
  rows.push(row)
  return row
}

const mb = (bytes: number | undefined): string => bytes === undefined ? '-' : fmt(bytes / 2 ** 20, 1)
const ms = (x: number): string => fmt(x, x < 10 ? 2 : 1)
const HEADERS = ['min', 'calls', 'errors', 'p50 ms', 'p99 ms', 'max ms', 'in flight max', 'producer RSS MB (heap after GC)', 'consumer RSS MB (heap after GC)',
  'CPU µs/call prod / cons', 'Redis used_memory MB (keys)', 'load']
const cells = (r: Minute): string[] => [
  String(r.minute), fmt(r.calls), fmt(r.errors), ms(r.p50Ms), ms(r.p99Ms), ms(r.maxMs), fmt(r.maxInFlight),
  `${mb(r.producer.rss)} (${mb(r.producer.heapUsed)})`,
  r.consumer === undefined ? 'same process' : `${mb(r.consumer.rss)} (${mb(r.consumer.heapUsed)})`,
  `${fmt(r.producerCpuUsPerCall)} / ${r.consumerCpuUsPerCall === undefined ? '-' : fmt(r.consumerCpuUsPerCall)}`,
  r.redisUsedMemory === undefined ? '-' : `${mb(r.redisUsedMemory)} (${fmt(r.redisKeys ?? 0)})`,
  r.load1.toFixed(1)
]
console.log(HEADERS.join(' | '))

// The open loop: a 1 ms timer sends every call whose time has come.
const t0 = performance.now()
let sent = 0
let runaway = false
let allSent: () => void = () => {}
const sending = new Promise<void>(resolve => { allSent = resolve })
let drained: () => void = () => {}
const settled = new Promise<void>(resolve => { drained = resolve })
const tick = (): void => {
  const now = performance.now()
  while (sent < total && t0 + sent * interval <= now) {
    const due = t0 + sent * interval
    sent++
    if (++inFlight > maxInFlight) maxInFlight = inFlight
    call().then(() => { latencies.push(performance.now() - due) }, (err: Error) => {
      errors++
      firstError ??= err.message
    }).finally(() => {
      if (--inFlight === 0 && sent === total) drained()
    })
  }
  if (inFlight > RUNAWAY) {
    runaway = true
    sent = total
  }
  if (sent < total) setTimeout(tick, 1)
  else allSent()
}
tick()
// Minute boundaries on the schedule's clock, the last one included: what settles after it (the
// calls still in flight when sending stopped) is reported apart.
for (let m = 1; m <= minutes; m++) {
  await new Promise(resolve => setTimeout(resolve, Math.max(0, t0 + m * 60_000 - performance.now())))
  console.log(cells(await closeMinute()).join(' | '))
  if (runaway) break
}
const tailStart = performance.now()
const tailInFlight = inFlight
await sending
if (inFlight > 0) await settled
const tail = Float64Array.from(latencies).sort()
console.log(`after minute ${rows.length}: the ${fmt(tailInFlight)} calls in flight settled in ${fmt(performance.now() - tailStart)} ms` +
  (tail.length === 0 ? '' : ` (latency p50 ${ms(percentile(tail, 0.5))}, max ${ms(tail[tail.length - 1])} ms)`) + `, ${fmt(errors)} errors`)
if (runaway) console.log(`STOPPED: more than ${fmt(RUNAWAY)} calls in flight, the consumer cannot keep up with ${fmt(rate)} calls/s`)
if (firstError !== undefined) console.log(`first error: ${firstError}`)

await producer.stop()
await consumer.stop()
if (redis !== undefined) {
  redis.disconnect()
  await deleteKeys(url, `{${config.keyPrefix ?? ''}:`)
}

console.log()
console.log(table(HEADERS, rows.map(cells)))
const first = rows[0]
const last = rows[rows.length - 1]
const growth = (a: number, b: number): string => `${mb(a)} → ${mb(b)} MB (${b >= a ? '+' : ''}${fmt((b - a) / a * 100, 1)} %)`
const heap = (a: ProcessSample, b: ProcessSample): string => `, heap after GC ${mb(a.heapUsed)} → ${mb(b.heapUsed)} MB`
const p99Ratio = last.p99Ms / first.p99Ms
const rssGrowth = Math.max((last.producer.rss - first.producer.rss) / first.producer.rss,
  first.consumer === undefined || last.consumer === undefined ? -Infinity : (last.consumer.rss - first.consumer.rss) / first.consumer.rss)
console.log(`minute 1 → ${last.minute}: p99 ${ms(first.p99Ms)} → ${ms(last.p99Ms)} ms (${p99Ratio.toFixed(2)}×), ` +
  `p50 ${ms(first.p50Ms)} → ${ms(last.p50Ms)} ms; producer RSS ${growth(first.producer.rss, last.producer.rss)}${heap(first.producer, last.producer)}` +
  (first.consumer === undefined || last.consumer === undefined ? '' : `; consumer RSS ${growth(first.consumer.rss, last.consumer.rss)}${heap(first.consumer, last.consumer)}`) +
  (first.redisUsedMemory === undefined || last.redisUsedMemory === undefined ? '' : `; Redis used_memory ${growth(first.redisUsedMemory, last.redisUsedMemory)}`))
const flat = p99Ratio <= P99_FLAT && rssGrowth <= RSS_FLAT && !runaway && rows.every(r => r.errors === 0)
console.log(`verdict: ${flat ? 'FLAT' : 'NOT FLAT'} (bars: p99 at minute ${last.minute} ≤ ${P99_FLAT}× minute 1's, RSS growth ≤ ${RSS_FLAT * 100} %, no errors; ` +
  `here p99 ${p99Ratio.toFixed(2)}×, RSS ${rssGrowth >= 0 ? '+' : ''}${fmt(rssGrowth * 100, 1)} %, ${fmt(rows.reduce((s, r) => s + r.errors, 0))} errors)`)

const out = args.json ?? fileURLToPath(new URL(`./results/soak-${backend}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, import.meta.url))
await mkdir(dirname(out), { recursive: true })
await writeFile(out, JSON.stringify({ backend, url: backend === 'redis' ? url : undefined, date: new Date().toISOString(), node: process.version, minutes, maxRate, rate, resultTTL, concurrency: CONCURRENCY, rows, p99Ratio, rssGrowth, flat }, null, 2) + '\n')
console.log(`JSON: ${out}`)
