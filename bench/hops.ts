/**
 * hops: where the time of a sequential `enqueueAndWait` goes. Sequential calls against a consumer
 * (concurrency 50) whose handler returns the time it started; relayq's storage calls and Redis
 * commands are stamped on both sides (bench/trace.ts). Each call is cut at the points it passes,
 * in order:
 *
 *   call → enqueue called → enqueue sent → woken → claimed → handler → settle called → settle sent
 *   → notice → resolved
 *
 * (bench process: call, enqueue called/sent, notice, resolved; consumer: the others. The `sent`
 * points and `woken` exist on Redis and PostgreSQL only: on PostgreSQL `woken` is the arrival of
 * the wake-up notice, which names no job: each call gets the first one between its enqueue and its
 * claim. Peers have call → handler → resolved.) Every hop is
 * reported with its median, p90, p99 and mean: the means add up to the mean call. Beside the path:
 * the round trips that overlap it. Windows of calls (1–10, 11–100, ...) show how a cold
 * consumer's latency falls as the JIT warms up.
 */
import { serverStats } from './redis-info.ts'
import { CONCURRENCY } from './scenarios.ts'
import type { BenchTarget, Payload } from './target.ts'
import { TraceLog, tracePgQueries, traceRedisCommands, type TraceEvent } from './trace.ts'

/** Points of the critical path, in order. */
export const PATH = [
  'call', 'enqueue called', 'enqueue sent', 'woken', 'claimed', 'handler', 'settle called', 'settle sent', 'notice', 'resolved'
] as const

/** µs. */
export interface Spread { p50: number, p90: number, p99: number, mean: number }

export interface Hop {
  readonly from: string
  readonly to: string
  readonly us: Spread
  /** Median per window of calls (see {@link HopsResult.windows}), µs. */
  readonly windowP50: number[]
}

export interface HopsResult {
  calls: number
  totalUs: Spread
  /** Total per window, median µs. */
  totalWindowP50: number[]
  /** Call numbers (1-based, inclusive) of each window. */
  windows: Array<[first: number, last: number]>
  /** Consecutive points of {@link PATH} that every call passed, and the time between them. */
  hops: Hop[]
  /** Beside the path: round trips it overlaps, and how long after the notice the consumer blocked again. */
  aside: Array<{ name: string, us: Spread, calls: number }>
  /** Redis only: what the server spent per command during the calls (INFO commandstats, whole server). */
  server?: Array<{ command: string, calls: number, usecPerCall: number }>
  /** CPU time per call, µs: the bench process (producer), the consumer's process, and Redis (INFO cpu, whole server). */
  cpuPerCall: { producer: number, consumer: number, redis?: number }
  /** Calls whose points were out of order or missing, left out of the hops. */
  skipped: number
}

function spread (values: number[]): Spread {
  if (values.length === 0) return { p50: NaN, p90: NaN, p99: NaN, mean: NaN }
  const sorted = Float64Array.from(values).sort()
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  let sum = 0
  for (const v of sorted) sum += v
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: sum / sorted.length }
}

const median = (values: number[]): number => spread(values).p50

/** Windows 1–10, 11–100, 101–1,000, ... up to `calls`. */
function windowsOf (calls: number): Array<[number, number]> {
  const list: Array<[number, number]> = []
  for (let first = 1, last = 10; first <= calls; first = last + 1, last *= 10) list.push([first, Math.min(last, calls)])
  return list
}

/** Sequential calls with per-hop stamps; `redisUrl` adds the server's command stats. */
export async function hops (target: BenchTarget, runId: string, calls: number, options: { fresh?: boolean, redisUrl?: string } = {}): Promise<HopsResult> {
  const queue = `hops-${runId}`
  const log = new TraceLog()
  const consumer = await target.startConsumer({ queue, concurrency: CONCURRENCY, handler: 'stamp', target: 0, fresh: options.fresh === true, trace: true })
  let consumerEvents: TraceEvent[] = []
  const handlerAt: number[] = new Array(calls)
  const before = options.redisUrl === undefined ? undefined : await serverStats(options.redisUrl)
  const untraceRedis = traceRedisCommands(log)
  const untracePg = tracePgQueries(log)
  const untrace = (): void => { untraceRedis(); untracePg() }
  const cpu0 = process.cpuUsage()
  let consumerCpuUs = 0
  try {
    const producer = await target.openProducer(queue, 'rpc', log)
    try {
      for (let i = 0; i < calls; i++) {
        const id = `${runId}-${i}`
        const payload: Payload = { n: i, s: 'hello world' }
        log.mark('call', id)
        const result = await producer.call(id, payload, 30_000) as [number, number]
        log.mark('resolved', id)
        if (!Array.isArray(result) || result[0] !== i) throw new Error(`hops call ${i}: got ${JSON.stringify(result)}`)
        handlerAt[i] = result[1]
      }
    } finally {
      await producer.close()
    }
  } finally {
    untrace()
    const stats = await consumer.stop()
    consumerEvents = stats.trace ?? []
    consumerCpuUs = stats.cpuUs
  }
  const cpu = process.cpuUsage(cpu0)
  const after = options.redisUrl === undefined ? undefined : await serverStats(options.redisUrl)

  // Per call and point: the first stamp of that point for that call's id.
  const index = new Map<string, number>()
  for (let i = 0; i < calls; i++) index.set(`${runId}-${i}`, i)
  const at = new Map<string, Float64Array>()
  const point = (name: string): Float64Array => {
    let times = at.get(name)
    if (times === undefined) at.set(name, times = new Float64Array(calls).fill(NaN))
    return times
  }
  const blocks: number[] = []
  const wakes: number[] = []
  for (const [name, id, us] of [...log.events, ...consumerEvents]) {
    if (name === 'block sent') {
      blocks.push(us)
      continue
    }
    if (name === 'woken' && id === '') {
      wakes.push(us)
      continue
    }
    const i = index.get(id)
    if (i === undefined) continue
    const times = point(name)
    if (Number.isNaN(times[i])) times[i] = us
  }
  const handler = point('handler')
  for (let i = 0; i < calls; i++) handler[i] = handlerAt[i]
  if (wakes.length > 0) {
    // Wake-up notices name no job: a call's is the first between its enqueue and its claim.
    wakes.sort((a, b) => a - b)
    const woken = point('woken')
    const enqueued = point('enqueue called')
    const claimed = point('claimed')
    let w = 0
    for (let i = 0; i < calls; i++) {
      while (w < wakes.length && wakes[w] < enqueued[i]) w++
      if (w < wakes.length && wakes[w] <= claimed[i]) woken[i] = wakes[w]
    }
  }

  // The path: the points every call (but a few) passed.
  const path = PATH.filter(name => {
    const times = at.get(name)
    return times !== undefined && times.filter(t => !Number.isNaN(t)).length >= 0.99 * calls
  })
  const usable: number[] = []
  for (let i = 0; i < calls; i++) {
    let ok = true
    for (let p = 0; p < path.length && ok; p++) {
      const t = point(path[p])[i]
      ok = !Number.isNaN(t) && (p === 0 || t >= point(path[p - 1])[i])
    }
    if (ok) usable.push(i)
  }
  const windows = windowsOf(calls)
  const byWindow = (values: (i: number) => number): number[] =>
    windows.map(([first, last]) => median(usable.filter(i => i >= first - 1 && i <= last - 1).map(values)))
  const hopList: Hop[] = []
  for (let p = 1; p < path.length; p++) {
    const from = point(path[p - 1])
    const to = point(path[p])
    const d = (i: number): number => to[i] - from[i]
    hopList.push({ from: path[p - 1], to: path[p], us: spread(usable.map(d)), windowP50: byWindow(d) })
  }
  const call = point('call')
  const resolved = point('resolved')
  const total = (i: number): number => resolved[i] - call[i]

  const aside: HopsResult['aside'] = []
  const between = (name: string, fromName: string, toName: string): void => {
    const from = at.get(fromName)
    const to = at.get(toName)
    if (from === undefined || to === undefined) return
    const values: number[] = []
    for (let i = 0; i < calls; i++) if (!Number.isNaN(from[i]) && !Number.isNaN(to[i])) values.push(to[i] - from[i])
    if (values.length > 0) aside.push({ name, us: spread(values), calls: values.length })
  }
  between('enqueue round trip (sent → answered)', 'enqueue sent', 'enqueue answered')
  between('enqueue in the storage (called → answered)', 'enqueue called', 'enqueue answered')
  between('activation round trip (sent → answered)', 'activation sent', 'activation answered')
  between('woken → activation sent', 'woken', 'activation sent')
  between('settle called → activation answered', 'settle called', 'activation answered')
  between('settle round trip (sent → answered)', 'settle sent', 'settle answered')
  between('settle sent → notice (producer)', 'settle sent', 'notice')
  between('notice → settle answered (consumer)', 'notice', 'settle answered')
  // How long after the notice the consumer's next BLMOVE left: the next call's enqueue races it.
  const notice = at.get('notice')
  if (notice !== undefined && blocks.length > 0) {
    blocks.sort((a, b) => a - b)
    const values: number[] = []
    let b = 0
    for (let i = 0; i < calls - 1; i++) {
      const settled = at.get('settle answered')?.[i] ?? notice[i]
      while (b < blocks.length && blocks[b] < settled) b++
      if (b < blocks.length && !Number.isNaN(notice[i])) values.push(blocks[b] - notice[i])
    }
    if (values.length > 0) aside.push({ name: 'notice → next BLMOVE sent', us: spread(values), calls: values.length })
  }

  let server: HopsResult['server']
  if (before !== undefined && after !== undefined) {
    server = []
    for (const [command, s] of after.commands) {
      const b = before.commands.get(command) ?? { calls: 0, usec: 0 }
      const n = s.calls - b.calls
      if (n > 0) server.push({ command, calls: n, usecPerCall: (s.usec - b.usec) / n })
    }
    server.sort((x, y) => y.calls * y.usecPerCall - x.calls * x.usecPerCall)
  }

  return {
    calls,
    totalUs: spread(usable.map(total)),
    totalWindowP50: byWindow(total),
    windows,
    hops: hopList,
    aside,
    server,
    cpuPerCall: {
      producer: (cpu.user + cpu.system) / calls,
      consumer: consumerCpuUs / calls,
      redis: before !== undefined && after !== undefined ? (after.cpuUs - before.cpuUs) / calls : undefined
    },
    skipped: calls - usable.length
  }
}
