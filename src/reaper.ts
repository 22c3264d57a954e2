import { randomUUID } from 'node:crypto'
import { Emitter, reportError } from './emitter.ts'
import { QueueClosedError } from './errors.ts'
import { resolveConfig, type ResolvedConfig } from './options.ts'
import { failureGroup } from './failure-groups.ts'
import { encodeError } from './serde.ts'
import type { ReaperConfig } from './types.ts'

/** Events of a Reaper. */
export interface ReaperEvents {
  error: [error: Error]
  stalled: [id: string]
  requeued: [id: string]
  failed: [id: string, error: Error]
  leadershipAcquired: []
  leadershipLost: []
}

const STALLED_MESSAGE = 'The job stalled (its lease expired) too many times or had no attempts left'
const STALLED_BYTES = encodeError(new Error(STALLED_MESSAGE))
const STALLED_GROUP = failureGroup({ name: 'Error', message: STALLED_MESSAGE })

/**
 * Recovers stalled jobs: jobs whose lease expired because their worker died or froze. It scans
 * at start and every `interval` ms. With leader election (the default) only the holder of the
 * queue's reaper lock scans, so any number of reapers may run.
 */
export class Reaper extends Emitter<ReaperEvents> {
  readonly #config: ResolvedConfig<unknown, unknown>
  readonly #owner = randomUUID()
  readonly #lockName: string
  #state: 'new' | 'started' | 'stopped' = 'new'
  #leader = false
  #scanTimer: ReturnType<typeof setInterval> | undefined
  #electionTimer: ReturnType<typeof setTimeout> | undefined
  #scanning: Promise<void> | undefined
  #stopping: Promise<void> | undefined
  #connected = false

  constructor (config: ReaperConfig) {
    super()
    this.#config = resolveConfig(config as unknown as Record<string, unknown>)
    this.#lockName = `reaper:${this.#config.name}`
  }

  /** This reaper's id: the owner of the leader lock while it leads. */
  get reaperId (): string { return this.#owner }

  /** True while this reaper holds the lock (always true without leader election once started). */
  get isLeader (): boolean { return this.#leader }

  async start (): Promise<void> {
    if (this.#state === 'stopped') throw new QueueClosedError('The reaper is stopped')
    if (this.#state === 'started') return
    this.#state = 'started'
    await this.#config.storage.connect()
    this.#connected = true
    if (this.#config.leaderElection.enabled) await this.#elect()
    else this.#lead()
  }

  /** Stops scanning and releases the lock. Idempotent. */
  stop (): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #stop (): Promise<void> {
    this.#state = 'stopped'
    clearInterval(this.#scanTimer)
    clearTimeout(this.#electionTimer)
    await this.#scanning
    if (this.#leader && this.#config.leaderElection.enabled) {
      await this.#config.storage.releaseLock(this.#lockName, this.#owner).catch(err => this.#report(err, 'Releasing the reaper lock failed'))
    }
    this.#leader = false
    if (this.#connected) await this.#config.storage.disconnect()
  }

  /** Runs one recovery pass now (also what the timer runs). */
  scan (): Promise<void> {
    this.#scanning ??= this.#scan().finally(() => { this.#scanning = undefined })
    return this.#scanning
  }

  async #scan (): Promise<void> {
    const { storage, name, maxStalls } = this.#config
    try {
      const { requeued, failed } = await storage.recoverStalled(name, maxStalls, STALLED_BYTES, STALLED_GROUP)
      for (const id of requeued) {
        this.emit('stalled', id)
        this.emit('requeued', id)
      }
      for (const id of failed) {
        this.emit('stalled', id)
        this.emit('failed', id, new Error(STALLED_MESSAGE))
      }
    } catch (err) {
      this.#report(err as Error, 'Recovering stalled jobs failed')
    }
  }

  #lead (): void {
    this.#leader = true
    this.#scanTimer = setInterval(() => { this.scan().catch(() => {}) }, this.#config.interval)
    this.scan().catch(() => {})
  }

  /** One election step: try to take (or, as leader, renew) the lock, then schedule the next. */
  async #elect (): Promise<void> {
    const { storage, leaderElection } = this.#config
    let held = false
    try {
      held = await storage.acquireLock(this.#lockName, this.#owner, leaderElection.lockTTL)
    } catch (err) {
      this.#report(err as Error, 'Leader election failed')
    }
    if (this.#state !== 'started') return
    if (held && !this.#leader) {
      this.#lead()
      this.emit('leadershipAcquired')
    } else if (!held && this.#leader) {
      this.#leader = false
      clearInterval(this.#scanTimer)
      this.emit('leadershipLost')
    }
    const next = this.#leader ? leaderElection.renewalInterval : leaderElection.acquireRetryInterval
    this.#electionTimer = setTimeout(() => { this.#elect().catch(() => {}) }, next)
  }

  #report (err: Error, msg: string): void {
    reportError(this as unknown as Emitter<any>, this.#config.logger, err, msg)
  }
}
