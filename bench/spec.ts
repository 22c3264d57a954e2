/**
 * A bench target as plain data: which library, through which API, on which store. Plain so it can
 * cross IPC: a cold in-process run (memory store) opens the same target in a process of its own.
 */
import { createBackend, type Api, type BackendName } from './backends.ts'
import { PEERS, openPeerTarget } from './peers/index.ts'
import type { PeerId } from './peers/types.ts'
import { relayqTarget, type BenchTarget } from './target.ts'

export type TargetSpec =
  | {
    readonly kind: 'relayq'
    readonly api: Api
    readonly backend: BackendName
    /** redis: server URL. */
    readonly url?: string
    /** redis: Redis Cluster seed nodes, instead of `url`. */
    readonly cluster?: readonly string[]
    /** file: queue directory (default: a temp dir per target). */
    readonly path?: string
  }
  | {
    readonly kind: 'peer'
    readonly peer: PeerId
    readonly store: BackendName
    /** redis: server URL. */
    readonly url?: string
    /** Unique to the run: every key or file the peer creates starts with it. */
    readonly prefix: string
  }

/** Where the spec's consumers run: in the bench's process for the memory store, else in a child. */
export function inProcess (spec: TargetSpec): boolean {
  return (spec.kind === 'relayq' ? spec.backend : spec.store) === 'memory'
}

/**
 * Opens a fresh target for `spec` (a new backend, or a peer session with a new prefix suffix).
 * `onCleanup` hears what a peer target deleted when it closed.
 */
export async function openTarget (spec: TargetSpec, onCleanup: (what: string) => void = () => {}): Promise<BenchTarget> {
  if (spec.kind === 'relayq') return relayqTarget(await createBackend(spec.backend, { url: spec.url, cluster: spec.cluster, path: spec.path }), spec.api)
  const peer = PEERS.find(p => p.id === spec.peer)
  if (peer === undefined) throw new Error(`unknown peer ${spec.peer}`)
  return await openPeerTarget(peer, await peer.load(), { store: spec.store, url: spec.url, prefix: spec.prefix }, onCleanup)
}
