/** What bench/soak.ts and its consumer child exchange, and the per-process sample both take. */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// A full collection before reading the heap, so that a leak shows apart from garbage not yet collected.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** One process's memory and CPU time at a moment. */
export interface ProcessSample {
  /** Resident set size, bytes. */
  readonly rss: number
  /** V8 heap in use right after a full collection, bytes. */
  readonly heapUsed: number
  /** CPU time (user + system) since the process started, µs. */
  readonly cpuUs: number
}

/** RSS as it is, then the heap after a full collection (a pause of a few ms). */
export function processSample (): ProcessSample {
  const cpu = process.cpuUsage()
  const rss = process.memoryUsage.rss()
  gc()
  return { rss, heapUsed: process.memoryUsage().heapUsed, cpuUs: cpu.user + cpu.system }
}

export type SoakToChild<TConfig> =
  | { type: 'start', config: TConfig, queue: string, concurrency: number }
  | { type: 'sample' }
  | { type: 'stop' }

export type SoakFromChild =
  | { type: 'started' }
  | { type: 'sample', sample: ProcessSample }
  | { type: 'stopped', completed: number }
  | { type: 'error', message: string }
