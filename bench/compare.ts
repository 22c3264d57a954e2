/**
 * `--compare`: relayq and the peer queues (bench/peers/) through the same scenarios, on the same
 * store and machine, one library after the other in one invocation. relayq runs through its
 * Backend exactly as without `--compare`; when its backend module is missing its row is n/a and the
 * peers still run. A peer that is not installed, or does not support the store, is skipped with a
 * note.
 */
import { createBackend, type BackendName } from './backends.ts'
import { PEERS, openPeerTarget } from './peers/index.ts'
import { deleteKeys } from './peers/redis-keys.ts'
import { PeerUnavailableError, type PeerLimits } from './peers/types.ts'
import { runSuite, type ScenarioName, type SuiteResults } from './suite.ts'
import { relayqTarget } from './target.ts'

export interface CompareOptions {
  readonly backend: BackendName
  /** redis: server URL. */
  readonly url: string
  /** file: relayq's queue directory (default: a temp dir). */
  readonly path?: string
  readonly scenario: ScenarioName
  readonly sizes: readonly number[]
  readonly warmupJobs: number
  /** Unique to this invocation: ids, queue names and key prefixes start with it. */
  readonly runBase: string
}

/** One library's part of a comparison. */
export interface LibraryRun {
  readonly library: string
  readonly packageName: string
  readonly version?: string
  /** `ok`: it ran; `unavailable`: not installed / backend missing; `unsupported`: not on this store. */
  readonly status: 'ok' | 'unavailable' | 'unsupported'
  readonly note?: string
  /** The settings it ran with (fairness). */
  readonly settings: string[]
  /** Reduced job counts it ran with, when capped on this store. */
  readonly limits?: PeerLimits
  /** Cleanup done after its runs. */
  readonly cleanup: string[]
  /** Scenarios that failed (a job or call did not complete, an error): their results are absent. */
  readonly errors: Array<{ scenario: 'throughput' | 'rpc', message: string }>
  readonly results: SuiteResults
}

/** Runs relayq, then every peer; returns one entry per library, relayq first. */
export async function runCompare (options: CompareOptions): Promise<LibraryRun[]> {
  const { backend, url, scenario, sizes, warmupJobs, runBase } = options
  const runs: LibraryRun[] = [await runRelayq(options)]

  for (const peer of PEERS) {
    const base = { library: peer.name, packageName: peer.packageName, settings: peer.settings(backend), cleanup: [], errors: [], results: {} }
    if (!peer.supports(backend)) {
      console.log(`${peer.name}: skipped, it has no ${backend} storage`)
      runs.push({ ...base, status: 'unsupported', note: `no ${backend} storage` })
      continue
    }
    let library
    try {
      library = await peer.load()
    } catch (err) {
      if (!(err instanceof PeerUnavailableError)) throw err
      console.log(`${peer.name}: skipped, ${err.message}`)
      runs.push({ ...base, status: 'unavailable', note: err.message })
      continue
    }
    const limits = peer.limits(backend)
    const cleanup: string[] = []
    const errors: LibraryRun['errors'] = []
    const results = await runSuite(
      () => openPeerTarget(peer, library, { store: backend, url, prefix: `relayq-cmp-${runBase}` }, what => cleanup.push(what)),
      `${runBase}-${peer.id}`,
      {
        scenario,
        sizes: limits === undefined ? sizes : [...new Set(sizes.map(s => Math.min(s, limits.jobs)))],
        warmupJobs: Math.min(warmupJobs, limits?.jobs ?? warmupJobs),
        rpc: limits?.rpc,
        label: `${peer.name} `,
        // A peer that fails a scenario is reported (row FAILED, exit code 1), the others still run.
        onError: (scenario, err) => errors.push({ scenario, message: err.message })
      }
    )
    runs.push({ ...base, version: library.version, status: 'ok', limits, cleanup, errors, results })
  }
  return runs
}

/** relayq through its Backend, as without `--compare`; n/a when the backend's module is missing. */
async function runRelayq (options: CompareOptions): Promise<LibraryRun> {
  const { backend, url, path, runBase } = options
  const base = {
    library: 'relayq',
    packageName: 'relayq',
    settings: ['this checkout, through the same Backend as `npm run bench` (Producer; Consumer concurrency 50, defaults)'],
    results: {},
    errors: []
  }
  const open = async (): Promise<ReturnType<typeof relayqTarget>> => relayqTarget(await createBackend(backend, { url, path }))
  const results = await runSuite(open, `${runBase}-relayq`, { ...options, label: 'relayq ' })
  const cleanup: string[] = []
  if (backend === 'redis') {
    // Whatever relayq's RedisStorage left of this run: every key name holds the run's unique base.
    cleanup.push(`${await deleteKeys(url, runBase, '*{prefix}*')} leftover keys deleted`)
  }
  return { ...base, status: 'ok', cleanup, results }
}
