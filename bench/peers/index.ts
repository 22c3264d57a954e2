/**
 * The peer queues of `--compare` and the {@link BenchTarget} that runs one of them: producer in
 * this process, consumer in a forked bench/peers/consumer-child.ts (in this process for the memory
 * store, like relayq's MemoryStorage), everything it stored deleted at close.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { forkConsumer, type BackendName } from '../backends.ts'
import type { BenchTarget } from '../target.ts'
import { beeQueue } from './bee-queue.ts'
import { bullmq } from './bullmq.ts'
import { platformatic } from './platformatic.ts'
import type { Peer, PeerChildConfig, PeerEnv, PeerLibrary } from './types.ts'

/** Every peer, in table order. */
export const PEERS: readonly Peer[] = [bullmq, beeQueue, platformatic]

/** Where a peer target keeps its data. */
export interface PeerStoreOptions {
  readonly store: BackendName
  /** redis: server URL. */
  readonly url?: string
  /** A prefix unique to the run; the target adds its own suffix. */
  readonly prefix: string
}

/**
 * Opens `peer` (already loaded as `library`) on the store as a bench target. `close()` stops its
 * children, closes its session and deletes what it stored, then calls `onCleanup` with what it did.
 */
export async function openPeerTarget (peer: Peer, library: PeerLibrary, options: PeerStoreOptions, onCleanup: (what: string) => void = () => {}): Promise<BenchTarget> {
  const env: PeerEnv = {
    store: options.store,
    url: options.url,
    basePath: options.store === 'file' ? await mkdtemp(join(tmpdir(), `relayq-cmp-${peer.id}-`)) : undefined,
    prefix: `${options.prefix}-${peer.id}`
  }
  const session = library.open(env)
  const inProcess = options.store === 'memory'
  const children = new Set<ChildProcess>()
  const script = new URL('./consumer-child.ts', import.meta.url)
  return {
    library: peer.name,
    consumerWhere: inProcess ? 'in-process' : 'child',
    openProducer: (queue, mode) => session.openProducer(queue, mode),
    startConsumer: opts => inProcess
      ? session.startConsumer(opts, 'in-process')
      : forkConsumer<PeerChildConfig>({ peer: peer.id, env }, opts, children, script),
    async close () {
      for (const child of children) child.kill()
      await session.close()
      onCleanup(await library.cleanup(env))
    }
  }
}
