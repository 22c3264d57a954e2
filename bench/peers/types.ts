/**
 * The peer-queue adapter interface of `--compare`. A peer (BullMQ, bee-queue,
 * @platformatic/job-queue) is driven only through its public API, by a {@link PeerSession}: the
 * producer side in the bench's process, the consumer in a forked child (bench/peers/consumer-child.ts)
 * or, for in-memory stores, in the bench's process like relayq's.
 */
import type { BackendName, ConsumerOptions, ConsumerStats, RunningConsumer } from '../backends.ts'
import type { BenchProducer, ProducerMode } from '../target.ts'

/** Plain data (it crosses IPC): everything a session needs to reach the same store. */
export interface PeerEnv {
  /** Which store: the `--backend` of the run. */
  readonly store: BackendName
  /** redis: server URL. */
  readonly url?: string
  /** file: a directory of this run's alone. */
  readonly basePath?: string
  /** A prefix unique to this run: every key or queue the session creates starts with it. */
  readonly prefix: string
}

/** Job counts a peer is capped at on a store where it is very slow (rows are labelled with them). */
export interface PeerLimits {
  /** Most jobs of one throughput run. */
  readonly jobs: number
  /** rpc counts. */
  readonly rpc: { readonly warmup: number, readonly sequential: number, readonly concurrent: number }
}

/** One library's connection to one store, opened in each process that takes part. */
export interface PeerSession {
  /** Opens a producer on `queue` (in the bench's process). */
  openProducer (queue: string, mode: ProducerMode): Promise<BenchProducer>
  /**
   * Starts a consumer on `options.queue`, concurrency `options.concurrency`. Connections are opened
   * first; timing (a {@link CompletionClock}) starts right before it begins claiming.
   */
  startConsumer (options: ConsumerOptions, where: ConsumerStats['where']): Promise<RunningConsumer>
  /** Closes what this session opened (not the data: see {@link PeerLibrary.cleanup}). */
  close (): Promise<void>
}

/** A loaded peer package. */
export interface PeerLibrary {
  /** The installed version of the package. */
  readonly version: string
  /** Opens a session on the store of `env`. */
  open (env: PeerEnv): PeerSession
  /** Deletes every key / file this run created under `env.prefix` (or `env.basePath`); says what it deleted. */
  cleanup (env: PeerEnv): Promise<string>
}

/** A peer queue of `--compare`. */
export interface Peer {
  /** Registry key, also sent to the child process. */
  readonly id: PeerId
  /** Display name. */
  readonly name: string
  /** The npm package. */
  readonly packageName: string
  /** Whether it runs on this store (bee-queue and BullMQ are Redis-only). */
  supports (store: BackendName): boolean
  /** Caps on a store where the peer is very slow; undefined: same counts as relayq. */
  limits (store: BackendName): PeerLimits | undefined
  /** The settings that make the comparison fair, one line each (printed and written to the JSON). */
  settings (store: BackendName): string[]
  /** Imports the package; throws {@link PeerUnavailableError} when it is not installed. */
  load (): Promise<PeerLibrary>
}

export type PeerId = 'bullmq' | 'bee-queue' | 'platformatic'

/** The peer's package (or a package it needs) is not installed. */
export class PeerUnavailableError extends Error {}

/** What `init` sends to bench/peers/consumer-child.ts. */
export interface PeerChildConfig {
  readonly peer: PeerId
  readonly env: PeerEnv
}
