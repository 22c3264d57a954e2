/**
 * One library through the scenarios of a bench run: an unreported throughput warm-up round, the
 * throughput runs at each size, then rpc. Every run gets a fresh target (so one run's leftovers do
 * not skew the next); progress goes to stdout.
 */
import { rpc, throughput, type RpcResult, type ThroughputResult } from './scenarios.ts'
import type { BenchTarget } from './target.ts'

export type ScenarioName = 'throughput' | 'rpc' | 'all'

export interface SuiteOptions {
  readonly scenario: ScenarioName
  /** Jobs of each reported throughput run. */
  readonly sizes: readonly number[]
  /** Jobs of the unreported warm-up round. */
  readonly warmupJobs: number
  /** rpc counts; the scenario's defaults when absent. */
  readonly rpc?: { readonly warmup: number, readonly sequential: number, readonly concurrent: number }
  /** Printed before each progress line. */
  readonly label?: string
  /**
   * Called when a scenario throws; the suite then goes on with the next scenario. Without it, the
   * error propagates.
   */
  readonly onError?: (scenario: 'throughput' | 'rpc', err: Error) => void
}

export interface SuiteResults {
  throughput?: ThroughputResult[]
  rpc?: RpcResult
}

const fmt = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 0 })

/** Opens a target, runs `fn` on it, closes it. */
async function withTarget<T> (open: () => Promise<BenchTarget>, fn: (target: BenchTarget) => Promise<T>): Promise<T> {
  const target = await open()
  try {
    return await fn(target)
  } finally {
    await target.close()
  }
}

/** Runs the scenarios of `options` on fresh targets from `open`; ids and queues start with `runBase`. */
export async function runSuite (open: () => Promise<BenchTarget>, runBase: string, options: SuiteOptions): Promise<SuiteResults> {
  const label = options.label ?? ''
  const results: SuiteResults = {}
  const guarded = async (scenario: 'throughput' | 'rpc', fn: () => Promise<void>): Promise<void> => {
    if (options.onError === undefined) return await fn()
    try {
      await fn()
    } catch (err) {
      console.log(`FAILED: ${(err as Error).message}`)
      options.onError(scenario, err as Error)
    }
  }
  if (options.scenario === 'throughput' || options.scenario === 'all') {
    await guarded('throughput', async () => {
      process.stdout.write(`${label}throughput warm-up: ${fmt(options.warmupJobs)} jobs... `)
      await withTarget(open, t => throughput(t, `${runBase}-warm`, options.warmupJobs))
      console.log('done')
      const list: ThroughputResult[] = []
      for (const size of options.sizes) {
        process.stdout.write(`${label}throughput: ${fmt(size)} jobs... `)
        const r = await withTarget(open, t => throughput(t, `${runBase}-tp${size}`, size))
        list.push(r)
        console.log(`${fmt(r.processPerSec)} jobs/s processed`)
      }
      results.throughput = list
    })
  }
  if (options.scenario === 'rpc' || options.scenario === 'all') {
    await guarded('rpc', async () => {
      process.stdout.write(`${label}rpc... `)
      const r = await withTarget(open, t => rpc(t, `${runBase}-rpc`, options.rpc))
      results.rpc = r
      console.log(`${fmt(r.concurrent.callsPerSec)} calls/s with 50 in flight`)
    })
  }
  return results
}
