/**
 * The bench scenarios of issue 2. They only use the {@link BenchTarget} interface, so every backend
 * of relayq, and every peer queue of `--compare`, runs the same code.
 */
import { serverStats } from './redis-info.ts'
import type { BenchProducer, BenchTarget, Payload } from './target.ts'

/** Jobs or calls kept in flight by the concurrent phases. */
export const IN_FLIGHT = 50
/** Consumer concurrency in every scenario. */
export const CONCURRENCY = 50
/**
 * Warm-up calls of the rpc scenario, sequential and then as many with 50 in flight. Measured on
 * the 2-core bench machine: sequential calls only reach their steady rate (~120,000/s, p50 0.0055 ms
 * instead of 0.011-0.013 ms) after 4,000-6,000 calls, once the hot path is optimized.
 */
export const RPC_WARMUP = 5_000
/** Chunk size of the bulk enqueue variant. */
export const BULK_CHUNK = 1_000

const payload = (n: number): Payload => ({ n, s: 'hello world' })

export interface ThroughputResult {
  jobs: number
  /** `enqueue` with 50 in flight. */
  enqueuePerSec: number
  enqueueMs: number
  /** Consumer (concurrency 50, no-op handler) from its start to the last `completed`. */
  processPerSec: number
  processMs: number
  /** Consumer CPU per job during processing, in µs (whole process for in-process consumers). */
  consumerCpuUsPerJob: number
  /** Consumer CPU time over the processing span, in % of one core (100: one core busy all along). */
  consumerBusyPct: number
  /** Redis only: the server's CPU time per job over the processing span, µs (whole server). */
  serverCpuUsPerJob?: number
  /** Redis only: the server's CPU time over the processing span, in % of one core (Redis runs commands on one). */
  serverBusyPct?: number
  consumerWhere: string
  /** `enqueueMany` in chunks of 1,000; null when the library has no bulk enqueue. */
  bulkEnqueuePerSec: number | null
  bulkEnqueueMs: number | null
}

export interface RpcPhase {
  calls: number
  inFlight: number
  callsPerSec: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export interface RpcResult {
  warmupCalls: number
  sequential: RpcPhase
  concurrent: RpcPhase
  /** Consumer CPU per call over the whole scenario (warm-up included), in µs. */
  consumerCpuUsPerCall: number
  consumerWhere: string
}

/** Runs `count` iterations of `fn` with `inFlight` concurrent async loops. */
async function inParallel (count: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  const loop = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) await fn(i)
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, loop))
}

function perSec (count: number, ms: number): number {
  return count / (ms / 1000)
}

/** Nearest-rank percentile of sorted values. */
function percentile (sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

function phase (latencies: Float64Array, inFlight: number, totalMs: number): RpcPhase {
  const sorted = latencies.slice().sort()
  return {
    calls: latencies.length,
    inFlight,
    callsPerSec: perSec(latencies.length, totalMs),
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1]
  }
}

/** Runs `fn`; if it throws, runs `cleanup` (its own errors ignored) before rethrowing. */
async function orCleanup<T> (fn: () => Promise<T>, cleanup: () => Promise<unknown>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    await cleanup().catch(() => {})
    throw err
  }
}

/** Enqueues `jobs` jobs one by one, 50 in flight; returns the elapsed ms. */
async function enqueueAll (producer: BenchProducer, runId: string, jobs: number): Promise<number> {
  const t0 = performance.now()
  await inParallel(jobs, IN_FLIGHT, i => producer.enqueue(`${runId}-${i}`, payload(i)))
  return performance.now() - t0
}

/** Enqueues `jobs` jobs in chunks of 1,000 through `enqueueMany`; returns the elapsed ms. */
async function enqueueBulk (enqueueMany: NonNullable<BenchProducer['enqueueMany']>, runId: string, jobs: number): Promise<number> {
  const t0 = performance.now()
  for (let start = 0; start < jobs; start += BULK_CHUNK) {
    const chunk = []
    for (let i = start; i < Math.min(jobs, start + BULK_CHUNK); i++) chunk.push({ id: `${runId}-b${i}`, payload: payload(i) })
    await enqueueMany(chunk)
  }
  return performance.now() - t0
}

/** How a scenario runs its consumers. */
export interface PhaseOptions {
  /** Each consumer in a process of its own, started for it (cold), rather than a reused one (warm). */
  readonly fresh?: boolean
  /** The Redis server the target runs on, for its CPU time while jobs are processed. */
  readonly redisUrl?: string
}

/** Runs a consumer on `queue` until `jobs` jobs completed; with `redisUrl`, also the server's CPU time meanwhile. */
async function drain (target: BenchTarget, queue: string, jobs: number, fresh: boolean, redisUrl?: string): Promise<{ ms: number, cpuUs: number, serverCpuUs?: number }> {
  // Read before the consumer starts (nothing happens on the queue until it does) and right after its last job.
  const before = redisUrl === undefined ? undefined : await serverStats(redisUrl)
  const consumer = await target.startConsumer({ queue, concurrency: CONCURRENCY, handler: 'noop', target: jobs, fresh })
  let stats
  let serverCpuUs: number | undefined
  try {
    stats = await consumer.reached
    if (before !== undefined && redisUrl !== undefined) serverCpuUs = (await serverStats(redisUrl)).cpuUs - before.cpuUs
  } finally {
    const atStop = await consumer.stop()
    if (stats === undefined) console.error(`\n${target.library}: the consumer stopped after ${atStop.completed} of ${jobs} jobs`)
  }
  return { ms: stats.elapsedMs, cpuUs: stats.cpuUs, serverCpuUs }
}

/**
 * throughput: `jobs` jobs enqueued with 50 in flight (enqueue jobs/s), then processed by a consumer
 * with concurrency 50 and a no-op handler (processing jobs/s, from the consumer's start to the last
 * `completed`). Then, unless `bulk` is false, the bulk variant: the same number of jobs through
 * `enqueueMany` in chunks of 1,000 on another queue (bulk enqueue jobs/s); those are drained
 * untimed so nothing is left behind. A library without bulk enqueue skips that variant (null).
 */
export async function throughput (target: BenchTarget, runId: string, jobs: number, options: PhaseOptions & { bulk?: boolean } = {}): Promise<ThroughputResult> {
  const fresh = options.fresh === true
  const queue = `tp-${runId}`
  const producer = await target.openProducer(queue, 'enqueue')
  const { enqueueMs, processed } = await orCleanup(async () => {
    const enqueueMs = await enqueueAll(producer, runId, jobs)
    return { enqueueMs, processed: await drain(target, queue, jobs, fresh, options.redisUrl) }
  }, () => producer.close())
  await producer.close()

  let bulkEnqueueMs: number | null = null
  if (options.bulk !== false) {
    const bulkQueue = `tpb-${runId}`
    const bulk = await target.openProducer(bulkQueue, 'enqueue')
    const enqueueMany = bulk.enqueueMany
    if (enqueueMany !== undefined) {
      bulkEnqueueMs = await orCleanup(async () => {
        const ms = await enqueueBulk(enqueueMany, runId, jobs)
        await drain(target, bulkQueue, jobs, fresh)
        return ms
      }, () => bulk.close())
    }
    await bulk.close()
  }

  return {
    jobs,
    enqueuePerSec: perSec(jobs, enqueueMs),
    enqueueMs,
    processPerSec: perSec(jobs, processed.ms),
    processMs: processed.ms,
    consumerCpuUsPerJob: processed.cpuUs / jobs,
    consumerBusyPct: processed.cpuUs / (processed.ms * 10),
    ...(processed.serverCpuUs !== undefined && { serverCpuUsPerJob: processed.serverCpuUs / jobs, serverBusyPct: processed.serverCpuUs / (processed.ms * 10) }),
    consumerWhere: target.consumerWhere,
    bulkEnqueuePerSec: bulkEnqueueMs === null ? null : perSec(jobs, bulkEnqueueMs),
    bulkEnqueueMs
  }
}

/** Call counts of the rpc scenario. */
export interface RpcCounts {
  /** Sequential calls, then as many with 50 in flight, before the measured ones. @default 5,000 */
  readonly warmup?: number
  /** Measured sequential calls. @default 1,000 */
  readonly sequential?: number
  /** Measured calls with 50 in flight. @default 5,000 */
  readonly concurrent?: number
}

/**
 * rpc: against one consumer (concurrency 50, handler returns `payload.n`): warm-up, then 1,000
 * sequential `enqueueAndWait` calls, then 5,000 calls with 50 in flight. Latency per call.
 */
export async function rpc (target: BenchTarget, runId: string, options: RpcCounts & PhaseOptions = {}): Promise<RpcResult> {
  const { sequential = 1_000, concurrent = 5_000, warmup = RPC_WARMUP } = options
  const queue = `rpc-${runId}`
  const consumer = await target.startConsumer({ queue, concurrency: CONCURRENCY, handler: 'echo', target: 0, fresh: options.fresh === true })
  const producer = await orCleanup(() => target.openProducer(queue, 'rpc'), () => consumer.stop())
  let seq = 0
  const call = async (): Promise<number> => {
    const n = seq++
    const t0 = performance.now()
    const result = await producer.call(`${runId}-${n}`, payload(n), 30_000)
    const ms = performance.now() - t0
    if (result !== n) throw new Error(`rpc ${n}: got ${String(result)}`)
    return ms
  }

  const { seqLat, seqMs, conLat, conMs } = await orCleanup(async () => {
    // Warm-up (JIT, connections): sequential and concurrent, not measured.
    for (let i = 0; i < warmup; i++) await call()
    await inParallel(warmup, IN_FLIGHT, call)

    const seqLat = new Float64Array(sequential)
    let t0 = performance.now()
    for (let i = 0; i < sequential; i++) seqLat[i] = await call()
    const seqMs = performance.now() - t0

    const conLat = new Float64Array(concurrent)
    t0 = performance.now()
    await inParallel(concurrent, IN_FLIGHT, async i => { conLat[i] = await call() })
    const conMs = performance.now() - t0
    return { seqLat, seqMs, conLat, conMs }
  }, async () => {
    await producer.close().catch(() => {})
    await consumer.stop()
  })

  await producer.close()
  const stats = await consumer.stop()
  if (stats.completed !== seq) throw new Error(`${target.library} rpc: ${seq} calls answered but the consumer counted ${stats.completed} completions`)
  return {
    warmupCalls: warmup * 2,
    sequential: phase(seqLat, 1, seqMs),
    concurrent: phase(conLat, IN_FLIGHT, conMs),
    consumerCpuUsPerCall: stats.cpuUs / seq,
    consumerWhere: target.consumerWhere
  }
}

/** rpc right after a throughput phase, on the same store: the phase's records are still there. */
export interface RpcAfterResult extends RpcResult {
  /** Jobs of the throughput phase run before (enqueued, processed, their records kept). */
  afterJobs: number
  /** Its processing rate, jobs/s (for the record: the phase is not reported as throughput). */
  afterProcessPerSec: number
}

/**
 * rpc after throughput: `jobs` jobs enqueued and processed (no bulk variant), then the rpc
 * scenario on the same target while the store still holds every record the phase left (terminal
 * records waiting out their TTL: on Redis, a key each with an expiry).
 */
export async function rpcAfterThroughput (target: BenchTarget, runId: string, jobs: number, options: RpcCounts & PhaseOptions = {}): Promise<RpcAfterResult> {
  const before = await throughput(target, `${runId}-fill`, jobs, { ...options, bulk: false })
  const result = await rpc(target, runId, options)
  return { ...result, afterJobs: jobs, afterProcessPerSec: before.processPerSec }
}
