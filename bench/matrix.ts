/**
 * A bench run: relayq (through each API asked for) and, with `--compare`, the peer queues
 * (bench/peers/) through the same scenarios, on the same store and machine, in each mode (warm,
 * cold), `runs` times. The runs are interleaved (run 1 of every library and mode, then run 2...)
 * so that a slow spell of the shared machine hits every library alike. A peer that is not
 * installed, or does not support the store, is skipped with a note.
 */
import type { Api, BackendName } from './backends.ts'
import { PEERS } from './peers/index.ts'
import { deleteKeys } from './peers/redis-keys.ts'
import { PeerUnavailableError, type PeerLimits } from './peers/types.ts'
import type { RpcCounts } from './scenarios.ts'
import type { TargetSpec } from './spec.ts'
import { runSuite, type Mode, type Part, type ScenarioName, type SuiteResults } from './suite.ts'

export interface MatrixOptions {
  readonly backend: BackendName
  /** redis: server URL. */
  readonly url: string
  /** redis: Redis Cluster seed nodes; relayq runs there, the peers are skipped. */
  readonly cluster?: readonly string[]
  /** file: relayq's queue directory (default: a temp dir per target). */
  readonly path?: string
  readonly scenario: ScenarioName
  readonly sizes: readonly number[]
  readonly warmupJobs: number
  readonly rpc?: RpcCounts
  readonly rpcAfter: number
  readonly hopCalls: number
  readonly modes: readonly Mode[]
  readonly apis: readonly Api[]
  readonly runs: number
  /** Also the peer queues. */
  readonly compare: boolean
  /** Unique to this invocation: ids, queue names and key prefixes start with it. */
  readonly runBase: string
}

/** One library (relayq through one API, or a peer) of the run. */
export interface Variant {
  readonly id: string
  /** Column header. */
  readonly label: string
  readonly packageName: string
  readonly version?: string
  /** `ok`: it ran; `unavailable`: not installed; `unsupported`: not on this store. */
  readonly status: 'ok' | 'unavailable' | 'unsupported'
  readonly note?: string
  /** The settings it ran with (fairness). */
  readonly settings: string[]
  /** Reduced job counts it ran with, when capped on this store. */
  readonly limits?: PeerLimits
  /** Cleanup done after its runs. */
  readonly cleanup: string[]
  readonly spec?: TargetSpec
}

/** One library in one mode, one run. */
export interface Cell {
  readonly variant: string
  readonly mode: Mode
  /** 1-based. */
  readonly run: number
  readonly results: SuiteResults
  /** Parts that failed (a job or call did not complete, an error): their results are absent. */
  readonly errors: Array<{ part: Part, message: string }>
}

const API_SETTINGS: Record<Api, string> = {
  producer: 'this checkout (dist/), Producer in the bench process; Consumer (concurrency 50, defaults) in its own process (in-process on memory)',
  queue: 'this checkout (dist/), as @platformatic/job-queue users write it: a Queue without handler in the bench process, a Queue with the handler (concurrency 50, defaults: reaper on) in the consumer\'s process'
}

/** The libraries of the run, relayq first. */
async function variantsOf (options: MatrixOptions): Promise<Variant[]> {
  const { backend, url, cluster, path, apis } = options
  const variants: Variant[] = apis.map(api => ({
    id: `relayq-${api}`,
    label: apis.length === 1 && api === 'producer' ? 'relayq' : `relayq (${api === 'queue' ? 'Queue' : 'Producer/Consumer'})`,
    packageName: 'relayq',
    status: 'ok',
    settings: [API_SETTINGS[api]],
    cleanup: [],
    spec: { kind: 'relayq', api, backend, url, cluster, path }
  }))
  if (!options.compare) return variants
  for (const peer of PEERS) {
    const base = { id: peer.id, label: peer.name, packageName: peer.packageName, settings: peer.settings(backend), cleanup: [] }
    if (cluster !== undefined) {
      console.log(`${peer.name}: skipped, the bench runs peers on a standalone server only`)
      variants.push({ ...base, status: 'unsupported', note: 'not run on Redis Cluster by this bench' })
      continue
    }
    if (!peer.supports(backend)) {
      console.log(`${peer.name}: skipped, it has no ${backend} storage`)
      variants.push({ ...base, status: 'unsupported', note: `no ${backend} storage` })
      continue
    }
    try {
      const library = await peer.load()
      const label = `${peer.name} ${library.version}`
      const spec: TargetSpec = { kind: 'peer', peer: peer.id, store: backend, url, prefix: `relayq-cmp-${options.runBase}` }
      variants.push({ ...base, label, version: library.version, status: 'ok', limits: peer.limits(backend), spec })
    } catch (err) {
      if (!(err instanceof PeerUnavailableError)) throw err
      console.log(`${peer.name}: skipped, ${err.message}`)
      variants.push({ ...base, status: 'unavailable', note: err.message })
    }
  }
  return variants
}

/** Runs every library in every mode, `runs` times. */
export async function runMatrix (options: MatrixOptions): Promise<{ variants: Variant[], cells: Cell[] }> {
  const variants = await variantsOf(options)
  const cells: Cell[] = []
  for (let run = 1; run <= options.runs; run++) {
    for (const mode of options.modes) {
      for (const v of variants) {
        if (v.status !== 'ok' || v.spec === undefined) continue
        const errors: Cell['errors'] = []
        const cap = (n: number): number => Math.min(n, v.limits?.jobs ?? n)
        const results = await runSuite(v.spec, `${options.runBase}-${run}${mode[0]}-${v.id}`, {
          scenario: options.scenario,
          mode,
          sizes: [...new Set(options.sizes.map(cap))],
          warmupJobs: cap(options.warmupJobs),
          rpc: v.limits?.rpc ?? options.rpc,
          rpcAfter: options.rpcAfter > 0 ? cap(options.rpcAfter) : 0,
          hopCalls: options.hopCalls,
          label: `[${options.runs > 1 ? `run ${run}/${options.runs}, ` : ''}${mode}] ${v.label}: `,
          // A library that fails a part is reported (FAILED, exit code 1), the others still run.
          onError: (part, err) => errors.push({ part, message: err.message }),
          onCleanup: what => v.cleanup.push(what)
        })
        cells.push({ variant: v.id, mode, run, results, errors })
      }
    }
  }
  if (options.backend === 'redis' && options.cluster === undefined) {
    // Whatever relayq's RedisStorage left of this run: every key name holds the run's unique base.
    const leftover = await deleteKeys(options.url, options.runBase, '*{prefix}*')
    for (const v of variants) if (v.packageName === 'relayq') v.cleanup.push(`${leftover} leftover keys deleted`)
  }
  return { variants, cells }
}
