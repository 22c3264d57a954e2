/**
 * One library through the scenarios of a bench run, in one mode:
 * - warm: an unreported throughput round first, and every consumer of the suite in the same
 *   process (reused between drains), so the JIT has seen the hot path before the measured runs;
 * - cold: every measured consumer in a process started for it, with nothing run before.
 * For the memory store, whose consumer lives in the producer's process, both run in a process of
 * the suite's own (bench/phase-child.ts): one for a warm suite, a fresh one per cold phase.
 * Every phase gets a fresh target (so one phase's leftovers do not skew the next); progress goes
 * to stdout.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { closeConsumerPool } from './backends.ts'
import { hops, type HopsResult } from './hops.ts'
import { rpc, rpcAfterThroughput, throughput, type RpcAfterResult, type RpcCounts, type RpcResult, type ThroughputResult } from './scenarios.ts'
import { inProcess, openTarget, type TargetSpec } from './spec.ts'
import type { BenchTarget } from './target.ts'

export type ScenarioName = 'throughput' | 'rpc' | 'hops' | 'all'
export type Mode = 'warm' | 'cold'
/** The parts of a suite that can fail on their own. */
export type Part = 'throughput' | 'rpc' | 'rpcAfter' | 'hops'

export interface SuiteOptions {
  readonly scenario: ScenarioName
  readonly mode: Mode
  /** Jobs of each reported throughput run. */
  readonly sizes: readonly number[]
  /** Jobs of the unreported warm-up round (warm mode). */
  readonly warmupJobs: number
  /** rpc counts; the scenario's defaults when absent. */
  readonly rpc?: RpcCounts
  /** Jobs of the throughput phase run right before a second rpc phase; 0: no such phase. */
  readonly rpcAfter: number
  /** Sequential calls of the hops scenario. */
  readonly hopCalls: number
  /** Printed before each progress line. */
  readonly label?: string
  /** Called when a part throws; the suite then goes on with the next part. Without it, the error propagates. */
  readonly onError?: (part: Part, err: Error) => void
  /** Called with what a peer target deleted when it closed. */
  readonly onCleanup?: (what: string) => void
}

export interface SuiteResults {
  throughput?: ThroughputResult[]
  rpc?: RpcResult
  rpcAfter?: RpcAfterResult
  hops?: HopsResult
}

/** One phase of a suite, as plain data (it crosses IPC for cold in-process runs). */
export type Phase =
  | { readonly kind: 'throughput', readonly runId: string, readonly jobs: number, readonly redisUrl?: string }
  | { readonly kind: 'rpc', readonly runId: string, readonly counts?: RpcCounts }
  | { readonly kind: 'rpcAfter', readonly runId: string, readonly jobs: number, readonly counts?: RpcCounts }
  | { readonly kind: 'hops', readonly runId: string, readonly calls: number, readonly redisUrl?: string }

/** Runs `phase` on `target`; consumers in processes of their own when `fresh`. */
export async function execPhase (target: BenchTarget, phase: Phase, fresh: boolean): Promise<unknown> {
  switch (phase.kind) {
    case 'throughput': return await throughput(target, phase.runId, phase.jobs, { fresh, redisUrl: phase.redisUrl })
    case 'rpc': return await rpc(target, phase.runId, { ...phase.counts, fresh })
    case 'rpcAfter': return await rpcAfterThroughput(target, phase.runId, phase.jobs, { ...phase.counts, fresh })
    case 'hops': return await hops(target, phase.runId, phase.calls, { fresh, redisUrl: phase.redisUrl })
  }
}

/** Messages of bench/phase-child.ts. */
export type ToPhaseChild = { type: 'run', spec: TargetSpec, phase: Phase } | { type: 'exit' }
export type FromPhaseChild = { type: 'done', result: unknown, cleanup: string[] } | { type: 'error', message: string }

/** Runs phases one after the other in a process of its own (bench/phase-child.ts), each on a target opened there. */
class PhaseChild {
  readonly #child: ChildProcess
  readonly #exited: Promise<unknown>

  constructor () {
    this.#child = fork(fileURLToPath(new URL('./phase-child.ts', import.meta.url)), [], {
      execPath: process.execPath,
      execArgv: ['--import', 'tsx', ...(process.env.BENCH_CHILD_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_CHILD_PROF] : [])],
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    this.#exited = once(this.#child, 'exit')
  }

  async run (spec: TargetSpec, phase: Phase, onCleanup: (what: string) => void): Promise<unknown> {
    const child = this.#child
    const reply = await new Promise<FromPhaseChild>((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`phase child exited (code ${code}) before answering`))
      child.once('exit', onExit)
      child.once('message', (msg: FromPhaseChild) => {
        child.off('exit', onExit)
        resolve(msg)
      })
      child.send({ type: 'run', spec, phase } satisfies ToPhaseChild)
    })
    if (reply.type === 'error') throw new Error(`phase child: ${reply.message}`)
    for (const what of reply.cleanup) onCleanup(what)
    return reply.result
  }

  async close (): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null && this.#child.connected) this.#child.send({ type: 'exit' } satisfies ToPhaseChild)
    await this.#exited
  }
}

const fmt = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 0 })

/** Runs the scenarios of `options` for `spec`; ids and queues start with `runBase`. */
export async function runSuite (spec: TargetSpec, runBase: string, options: SuiteOptions): Promise<SuiteResults> {
  const label = options.label ?? ''
  const cold = options.mode === 'cold'
  const onCleanup = options.onCleanup ?? (() => {})
  // In-process stores (memory): the library's producer and consumer share one process, so it is
  // one of its own, never the bench's (where the libraries measured before would leave their heap
  // and timers): one process for the whole warm suite, a new one for each cold phase.
  const own = inProcess(spec)
  let shared = own && !cold ? new PhaseChild() : undefined
  const run = async <T>(phase: Phase): Promise<T> => {
    if (own) {
      const child = shared ?? new PhaseChild()
      try {
        return await child.run(spec, phase, onCleanup) as T
      } finally {
        if (child !== shared) await child.close()
      }
    }
    const target = await openTarget(spec, onCleanup)
    try {
      return await execPhase(target, phase, cold) as T
    } finally {
      await target.close()
    }
  }
  const results: SuiteResults = {}
  const guarded = async (part: Part, fn: () => Promise<void>): Promise<void> => {
    if (options.onError === undefined) return await fn()
    try {
      await fn()
    } catch (err) {
      console.log(`FAILED: ${(err as Error).message}`)
      options.onError(part, err as Error)
    }
  }
  const { scenario } = options
  // Server figures (INFO) come from one standalone server; a cluster's queue lives on whichever master owns its slot.
  const onCluster = spec.kind === 'relayq' && spec.cluster !== undefined
  const redisUrl = (spec.kind === 'relayq' ? spec.backend : spec.store) === 'redis' && !onCluster ? spec.url : undefined
  try {
    if (!cold) {
      await guarded(scenario === 'all' ? 'throughput' : scenario, async () => {
        process.stdout.write(`${label}warm-up round: ${fmt(options.warmupJobs)} jobs... `)
        await run({ kind: 'throughput', runId: `${runBase}-warm`, jobs: options.warmupJobs })
        console.log('done')
      })
    }
    if (scenario === 'throughput' || scenario === 'all') {
      await guarded('throughput', async () => {
        const list: ThroughputResult[] = []
        for (const size of options.sizes) {
          process.stdout.write(`${label}throughput: ${fmt(size)} jobs... `)
          const r = await run<ThroughputResult>({ kind: 'throughput', runId: `${runBase}-tp${size}`, jobs: size, redisUrl })
          list.push(r)
          console.log(`${fmt(r.processPerSec)} jobs/s processed`)
        }
        results.throughput = list
      })
    }
    if (scenario === 'rpc' || scenario === 'all') {
      await guarded('rpc', async () => {
        process.stdout.write(`${label}rpc... `)
        const r = await run<RpcResult>({ kind: 'rpc', runId: `${runBase}-rpc`, counts: options.rpc })
        results.rpc = r
        console.log(`sequential p50 ${r.sequential.p50Ms.toFixed(3)} ms, ${fmt(r.concurrent.callsPerSec)} calls/s with 50 in flight`)
      })
      if (options.rpcAfter > 0) {
        await guarded('rpcAfter', async () => {
          process.stdout.write(`${label}rpc after ${fmt(options.rpcAfter)} jobs... `)
          const r = await run<RpcAfterResult>({ kind: 'rpcAfter', runId: `${runBase}-rpca`, jobs: options.rpcAfter, counts: options.rpc })
          results.rpcAfter = r
          console.log(`sequential p50 ${r.sequential.p50Ms.toFixed(3)} ms, ${fmt(r.concurrent.callsPerSec)} calls/s with 50 in flight`)
        })
      }
    }
    if (scenario === 'hops') {
      await guarded('hops', async () => {
        process.stdout.write(`${label}hops: ${fmt(options.hopCalls)} sequential calls... `)
        const r = await run<HopsResult>({ kind: 'hops', runId: `${runBase}-hops`, calls: options.hopCalls, redisUrl })
        results.hops = r
        console.log(`p50 ${(r.totalUs.p50 / 1000).toFixed(3)} ms`)
      })
    }
  } finally {
    // The next library (or mode) starts with processes of its own.
    await shared?.close()
    shared = undefined
    await closeConsumerPool()
  }
  return results
}
