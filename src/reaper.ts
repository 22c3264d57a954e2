import { randomUUID } from 'node:crypto'
import { Emitter, reportError } from './emitter.ts'
import { MaxRetriesError } from './errors.ts'
import { Leadership } from './leadership.ts'
import { componentLogger, Lifecycle, type Defer } from './lifecycle.ts'
import { resolveConfig, type ResolvedConfig } from './options.ts'
import { failureGroup } from './failure-groups.ts'
import { encodeError } from './serde.ts'
import type { Logger, ReaperConfig } from './types.ts'
import { probe } from './instrument.ts'

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
 * at start and every `interval` ms.
 *
 * Without `leaderElection` (or with `enabled: false`, the default) it scans at once and holds no
 * lock. With `leaderElection: { enabled: true }` only the holder of the queue's reaper lock scans,
 * so any number of standalone reapers may run. A Queue's own reaper elects on a lock of its own:
 * among the queue instances one scans, and a standalone reaper leads its own election beside them
 * (recovery is atomic, so two scanning reapers are harmless).
 *
 * Restartable: `start()` after `stop()` connects and scans (or campaigns) again.
 */
export class Reaper extends Emitter<ReaperEvents> {
  readonly #config: ResolvedConfig<unknown, unknown>
  readonly #owner = randomUUID()
  readonly #logger: Logger
  readonly #lifecycle: Lifecycle
  readonly #leadership: Leadership | undefined
  #scanTimer: ReturnType<typeof setInterval> | undefined
  #scanning: Promise<void> | undefined

  /**
   * @param builtIn internal: the reaper of a Queue (it elects unless `leaderElection.enabled` is
   * false, on the queue reapers' own lock).
   */
  constructor (config: ReaperConfig, builtIn = false) {
    super()
    this.#config = resolveConfig(config as unknown as Record<string, unknown>, 'Reaper')
    this.#logger = componentLogger(this.#config.logger, { component: 'reaper', reaperId: this.#owner })
    const { storage, name, leaderElection } = this.#config
    if (builtIn ? config.leaderElection?.enabled !== false : leaderElection.enabled) {
      this.#leadership = new Leadership({
        storage,
        // Distinct prefixes: no queue name can make the two locks one.
        lock: `${builtIn ? 'queue-reaper' : 'reaper'}:${name}`,
        owner: this.#owner,
        lockTTL: leaderElection.lockTTL,
        renewalInterval: leaderElection.renewalInterval,
        acquireRetryInterval: leaderElection.acquireRetryInterval,
        onAcquired: () => {
          this.#logger.debug({}, 'reaper leadership acquired')
          this.#lead()
          this.emit('leadershipAcquired')
        },
        onLost: () => {
          this.#logger.debug({}, 'reaper leadership lost')
          this.#follow().catch((err: Error) => this.#report(err, 'Stopping the scans failed'))
          this.emit('leadershipLost')
        },
        report: (err, msg) => this.#report(err, msg)
      })
    }
    this.#lifecycle = new Lifecycle({
      name: 'reaper',
      logger: this.#logger,
      report: (err, msg) => this.#report(err, msg),
      start: defer => this.#start(defer)
    })
  }

  /** This reaper's id: the owner of the leader lock while it leads. */
  get reaperId (): string { return this.#owner }

  /** True while this reaper holds the leader lock; always false without leader election. */
  get isLeader (): boolean { return this.#leadership?.isLeader ?? false }

  /**
   * Connects, then scans at once (no election) or takes part in the election (a leader scans).
   * Restartable; see {@link Lifecycle} for concurrent calls. A failed start is not remembered.
   */
  start (): Promise<void> {
    return this.#lifecycle.start()
  }

  /** Stops scanning, releases the lock and the storage. Idempotent. */
  stop (): Promise<void> {
    return this.#lifecycle.stop()
  }

  async #start (defer: Defer): Promise<void> {
    const { storage } = this.#config
    await storage.connect()
    defer(() => storage.disconnect())
    defer(() => this.#follow())
    const leadership = this.#leadership
    if (leadership === undefined) {
      this.#lead()
      return
    }
    // Registered after the scans' undo so that it runs first: no leadership change may start scans again once they stopped.
    defer(() => leadership.stop())
    await leadership.start()
  }

  /** Runs one recovery pass now (also what the timer runs). Never rejects: failures are reported. */
  scan (): Promise<void> {
    this.#scanning ??= this.#scan().finally(() => { this.#scanning = undefined })
    return this.#scanning
  }

  async #scan (): Promise<void> {
    const { storage, name, maxStalls } = this.#config
    try {
      const { requeued, failed } = await storage.recoverStalled(name, maxStalls, STALLED_BYTES, STALLED_GROUP)
      if (requeued.length + failed.length > 0) probe?.stalled(name, requeued.length, failed.length)
      for (const id of requeued) {
        this.#logger.warn({ id }, 'stalled job requeued')
        this.emit('stalled', id)
        this.emit('requeued', id)
      }
      for (const id of failed) {
        this.#logger.error({ id }, 'stalled job failed: no stalls or attempts left')
        this.emit('stalled', id)
        // Like every `failed` event, a MaxRetriesError: the attempts are the record's.
        const attempts = (await storage.getStatus(name, id).catch(() => null))?.attempts ?? 0
        this.emit('failed', id, new MaxRetriesError(id, attempts, new Error(STALLED_MESSAGE)))
      }
    } catch (err) {
      this.#report(err as Error, 'Recovering stalled jobs failed')
    }
  }

  readonly #tick = (): void => { this.scan() } // never rejects

  #lead (): void {
    clearInterval(this.#scanTimer)
    this.#scanTimer = setInterval(this.#tick, this.#config.interval)
    this.#tick()
  }

  /** Stops the scans; resolves once a scan in progress has ended. */
  async #follow (): Promise<void> {
    clearInterval(this.#scanTimer)
    this.#scanTimer = undefined
    await this.#scanning
  }

  #report (err: Error, msg: string): void {
    reportError(this as unknown as Emitter<any>, this.#logger, err, msg)
  }
}
