import type { Storage } from './storage/types.ts'

/** What a {@link Leadership} needs. Durations in ms. */
export interface LeadershipOptions {
  /** Where the lock lives (`acquireLock` takes or renews it atomically). */
  readonly storage: Pick<Storage, 'acquireLock' | 'releaseLock'>
  /** The lock's name: the candidates that share it elect one leader. */
  readonly lock: string
  /** This candidate's id: the lock's owner while it leads. */
  readonly owner: string
  /** How long the lock lives without renewal. */
  readonly lockTTL: number
  /** How often the leader renews the lock. */
  readonly renewalInterval: number
  /** How often a follower tries to take the lock. */
  readonly acquireRetryInterval: number
  /** This candidate became the leader. */
  readonly onAcquired: () => void
  /** This candidate lost the lock (not called by `stop()`). */
  readonly onLost: () => void
  /** A storage call or a callback failed; the election carries on. */
  readonly report: (error: Error, msg: string) => void
}

/**
 * Leader election over a storage lock, for maintenance work that one process at a time should do
 * (the reaper; a scheduler). A candidate tries to take the lock at `start()` and then every
 * `acquireRetryInterval` ms; the leader renews it every `renewalInterval` ms and leads until a
 * renewal fails (another owner holds the lock, or the storage failed: leading blind is worse than
 * a gap of one `lockTTL`). `stop()` releases the lock, so another candidate takes over at its next try.
 */
export class Leadership {
  readonly #options: LeadershipOptions
  #running = false
  #leader = false
  /** The last attempt took or renewed the lock (even if a stop came meanwhile: stop releases it). */
  #holds = false
  #timer: ReturnType<typeof setTimeout> | undefined
  #attempt: Promise<void> | undefined

  constructor (options: LeadershipOptions) {
    this.#options = options
  }

  /** True while this candidate leads. */
  get isLeader (): boolean { return this.#leader }

  /** Starts campaigning; resolves after the first attempt (so a lone candidate leads at once). */
  start (): Promise<void> {
    this.#running = true
    return this.#try()
  }

  /** Stops campaigning, waits for an attempt in flight and releases the lock if held. */
  async stop (): Promise<void> {
    this.#running = false
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#attempt
    this.#leader = false
    if (!this.#holds) return
    this.#holds = false
    const { storage, lock, owner, report } = this.#options
    try {
      await storage.releaseLock(lock, owner)
    } catch (err) {
      // The lock expires by itself after lockTTL: the next leader is only late.
      report(err as Error, 'Releasing the leader lock failed')
    }
  }

  readonly #next = (): void => {
    this.#timer = undefined
    this.#try() // never rejects
  }

  #try (): Promise<void> {
    const attempt = this.#step().finally(() => {
      if (this.#attempt === attempt) this.#attempt = undefined
    })
    this.#attempt = attempt
    return attempt
  }

  /** One attempt: take or renew the lock, tell the change if any, schedule the next. Never rejects. */
  async #step (): Promise<void> {
    const { storage, lock, owner, lockTTL, renewalInterval, acquireRetryInterval, report } = this.#options
    let held = false
    try {
      held = await storage.acquireLock(lock, owner, lockTTL)
    } catch (err) {
      report(err as Error, 'Leader election failed')
    }
    this.#holds = held
    if (!this.#running) return
    if (held !== this.#leader) {
      this.#leader = held
      try {
        if (held) this.#options.onAcquired()
        else this.#options.onLost()
      } catch (err) {
        report(err as Error, 'A leadership listener failed')
      }
    }
    if (this.#running) this.#timer = setTimeout(this.#next, this.#leader ? renewalInterval : acquireRetryInterval)
  }
}
