/**
 * The bench scenarios of issue 2. They only use the {@link Backend} interface, so every backend
 * runs the same code.
 */
import { Producer } from '../src/index.ts'
import type { Backend } from './backends.ts'

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

interface Payload { n: number, s: string }

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
  consumerWhere: string
  /** `enqueueMany` in chunks of 1,000. */
  bulkEnqueuePerSec: number
  bulkEnqueueMs: number
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

/** Fills `queue` with `jobs` jobs through `enqueue`, 50 in flight; returns the elapsed ms. */
async function enqueueAll (producer: Producer<Payload, unknown>, runId: string, jobs: number): Promise<number> {
  const t0 = performance.now()
  await inParallel(jobs, IN_FLIGHT, async i => {
    const res = await producer.enqueue(`${runId}-${i}`, payload(i))
    if (res.status !== 'queued') throw new Error(`job ${runId}-${i}: expected queued, got ${res.status}`)
  })
  return performance.now() - t0
}

/** Runs a consumer on `queue` until `jobs` jobs completed. */
async function drain (backend: Backend, queue: string, jobs: number): Promise<{ ms: number, cpuUs: number }> {
  const consumer = await backend.startConsumer({ queue, concurrency: CONCURRENCY, handler: 'noop', target: jobs })
  const stats = await consumer.reached
  await consumer.stop()
  return { ms: stats.elapsedMs, cpuUs: stats.cpuUs }
}

/**
 * throughput: `jobs` jobs enqueued with 50 in flight (enqueue jobs/s), then processed by a consumer
 * with concurrency 50 and a no-op handler (processing jobs/s, from the consumer's start to the last
 * `completed`). Then the bulk variant: the same number of jobs through `enqueueMany` in chunks of
 * 1,000 on another queue (bulk enqueue jobs/s); those are drained untimed so nothing is left behind.
 */
export async function throughput (backend: Backend, runId: string, jobs: number): Promise<ThroughputResult> {
  const queue = `tp-${runId}`
  const producer = new Producer<Payload, unknown>({ storage: backend.createStorage(), name: queue })
  await producer.start()
  const enqueueMs = await enqueueAll(producer, runId, jobs)
  const processed = await drain(backend, queue, jobs)
  await producer.stop()

  const bulkQueue = `tpb-${runId}`
  const bulk = new Producer<Payload, unknown>({ storage: backend.createStorage(), name: bulkQueue })
  await bulk.start()
  const t0 = performance.now()
  for (let start = 0; start < jobs; start += BULK_CHUNK) {
    const chunk = []
    for (let i = start; i < Math.min(jobs, start + BULK_CHUNK); i++) chunk.push({ id: `${runId}-b${i}`, payload: payload(i) })
    const results = await bulk.enqueueMany(chunk)
    if (results.some(r => r.status !== 'queued')) throw new Error('bulk enqueue: a job was not queued')
  }
  const bulkEnqueueMs = performance.now() - t0
  await drain(backend, bulkQueue, jobs)
  await bulk.stop()

  return {
    jobs,
    enqueuePerSec: perSec(jobs, enqueueMs),
    enqueueMs,
    processPerSec: perSec(jobs, processed.ms),
    processMs: processed.ms,
    consumerCpuUsPerJob: processed.cpuUs / jobs,
    consumerWhere: backend.consumerWhere,
    bulkEnqueuePerSec: perSec(jobs, bulkEnqueueMs),
    bulkEnqueueMs
  }
}

/**
 * rpc: against one consumer (concurrency 50, handler returns `payload.n`): warm-up, then 1,000
 * sequential `enqueueAndWait` calls, then 5,000 calls with 50 in flight. Latency per call.
 */
export async function rpc (backend: Backend, runId: string, options: { sequential?: number, concurrent?: number, warmup?: number } = {}): Promise<RpcResult> {
  const { sequential = 1_000, concurrent = 5_000, warmup = RPC_WARMUP } = options
  const queue = `rpc-${runId}`
  const consumer = await backend.startConsumer({ queue, concurrency: CONCURRENCY, handler: 'echo', target: 0 })
  const producer = new Producer<Payload, number>({ storage: backend.createStorage(), name: queue })
  await producer.start()
  let seq = 0
  const call = async (): Promise<number> => {
    const n = seq++
    const t0 = performance.now()
    const result = await producer.enqueueAndWait(`${runId}-${n}`, payload(n), { timeout: 30_000 })
    const ms = performance.now() - t0
    if (result !== n) throw new Error(`rpc ${n}: got ${result}`)
    return ms
  }

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

  await producer.stop()
  const stats = await consumer.stop()
  return {
    warmupCalls: warmup * 2,
    sequential: phase(seqLat, 1, seqMs),
    concurrent: phase(conLat, IN_FLIGHT, conMs),
    consumerCpuUsPerCall: stats.cpuUs / seq,
    consumerWhere: backend.consumerWhere
  }
}
