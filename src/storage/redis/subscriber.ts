import type { Cluster, Redis } from 'iovalkey'

/** Receives the raw bytes published on one channel. */
export type ChannelListener = (message: Buffer) => void

/**
 * One subscriber connection per storage instance, multiplexing every channel the instance listens
 * to: a channel is SUBSCRIBEd when its first listener arrives and UNSUBSCRIBEd when its last one
 * leaves, never once per call. Subscription changes run one at a time, in order, so a quick
 * leave-and-rejoin cannot end unsubscribed.
 *
 * After the connection comes back from a drop, it subscribes again to every channel and then
 * calls `onGap`: messages published while it was away are lost, and listeners must re-check.
 */
export class Subscriber {
  readonly #connection: Redis | Cluster
  readonly #onGap: () => void
  readonly #listeners = new Map<string, Set<ChannelListener>>()
  /** Channels the server has us subscribed to. */
  readonly #subscribed = new Set<string>()
  #ops: Promise<void> = Promise.resolve()
  #readyBefore = false
  #closed = false

  /** @param connection a connection of its own (it enters subscriber mode); closed by `close`. */
  constructor (connection: Redis | Cluster, onGap: () => void) {
    this.#connection = connection
    this.#onGap = onGap
    connection.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const listeners = this.#listeners.get(channel.toString())
      if (listeners !== undefined) for (const listener of listeners) listener(message)
    })
    connection.on('ready', () => {
      if (this.#readyBefore) this.#resubscribe()
      this.#readyBefore = true
    })
  }

  /** Adds a listener; resolves once the channel is subscribed. Returns the function removing it. */
  async add (channel: string, listener: ChannelListener): Promise<() => Promise<void>> {
    let listeners = this.#listeners.get(channel)
    if (listeners === undefined) {
      listeners = new Set()
      this.#listeners.set(channel, listeners)
    }
    // Wrapped so the same function added twice is two independent listeners.
    const entry: ChannelListener = message => listener(message)
    listeners.add(entry)
    try {
      await this.#sync(channel)
    } catch (err) {
      await this.#remove(channel, entry)
      throw err
    }
    return () => this.#remove(channel, entry)
  }

  /** Closes the connection; listeners hear nothing more. */
  close (): void {
    this.#closed = true
    this.#listeners.clear()
    this.#connection.disconnect()
  }

  #remove (channel: string, entry: ChannelListener): Promise<void> {
    const listeners = this.#listeners.get(channel)
    if (listeners === undefined || !listeners.delete(entry)) return Promise.resolve()
    if (listeners.size === 0) this.#listeners.delete(channel)
    return this.#sync(channel).catch(() => {}) // unsubscribing from a lost connection is moot
  }

  /** Brings the server's subscription of `channel` in line with whether anyone listens. */
  #sync (channel: string): Promise<void> {
    const op = this.#ops.then(async () => {
      if (this.#closed) return
      const wanted = this.#listeners.has(channel)
      if (wanted && !this.#subscribed.has(channel)) {
        await this.#connection.subscribe(channel)
        this.#subscribed.add(channel)
      } else if (!wanted && this.#subscribed.has(channel)) {
        this.#subscribed.delete(channel)
        await this.#connection.unsubscribe(channel)
      }
    })
    this.#ops = op.catch(() => {})
    return op
  }

  #resubscribe (): void {
    // A new connection is subscribed to nothing: start over from what listeners want.
    this.#subscribed.clear()
    const channels = [...this.#listeners.keys()]
    Promise.all(channels.map(channel => this.#sync(channel))).then(() => {
      if (!this.#closed) this.#onGap()
    }, () => {
      // The connection dropped again: its next 'ready' starts over.
    })
  }
}
