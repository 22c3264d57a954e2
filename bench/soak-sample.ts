/** What bench/soak.ts and its consumer child exchange, and the per-process sample both take. */

/** One process's memory and CPU time at a moment. */
export interface ProcessSample {
  /** Resident set size, bytes. */
  readonly rss: number
  /** V8 heap in use, bytes. */
  readonly heapUsed: number
  /** CPU time (user + system) since the process started, µs. */
  readonly cpuUs: number
}

export function processSample (): ProcessSample {
  const { rss, heapUsed } = process.memoryUsage()
  const cpu = process.cpuUsage()
  return { rss, heapUsed, cpuUs: cpu.user + cpu.system }
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
