/**
 * The open/close lifecycle a storage shares between its users (Queue, Producer, Consumer, Reaper,
 * Admin may all hold one storage): the first `acquire` opens it, later ones wait for that same
 * open, and only the last `release` closes it. A failed open forgets every user, so the next
 * `acquire` tries again.
 */
export class SharedOpen {
  readonly #open: () => Promise<void>
  readonly #close: () => Promise<void> | void
  readonly #failed: (err: unknown) => Error
  readonly #drain: () => Promise<void>
  #users = 0
  #opening: Promise<void> | undefined

  /**
   * @param open opens the resources (connections, pools).
   * @param close releases them; called after a failed open too (it must accept a half-open state).
   * @param failed the error a failed open rejects with, from its cause.
   * @param drain work the last release finishes before `close` (not called after a failed open).
   */
  constructor (open: () => Promise<void>, close: () => Promise<void> | void, failed: (err: unknown) => Error, drain: () => Promise<void> = async () => {}) {
    this.#open = open
    this.#close = close
    this.#failed = failed
    this.#drain = drain
  }

  /** True from the first `acquire` until the last `release` (or a failed open). */
  get isOpen (): boolean { return this.#users > 0 }

  acquire (): Promise<void> {
    if (this.#users++ > 0) return this.#opening ?? Promise.resolve()
    this.#opening = this.#open().catch(async err => {
      this.#users = 0
      this.#opening = undefined
      await this.#close()
      throw this.#failed(err)
    })
    return this.#opening
  }

  /**
   * Closes once the last user released: after the open settled (if one is under way) and `drain`
   * ended. A release without a user does nothing.
   */
  async release (): Promise<void> {
    if (this.#users === 0 || --this.#users > 0) return
    await this.#opening?.catch(() => {})
    await this.#drain()
    this.#opening = undefined
    await this.#close()
  }
}
