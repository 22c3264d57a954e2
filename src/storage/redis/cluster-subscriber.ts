import calculateSlot from 'cluster-key-slot'
import type { Cluster, Redis } from 'iovalkey'
import { Subscriber, type ChannelListener } from './subscriber.ts'

/** The subscriber used while the cluster's slot map is not known: any node hears every message. */
const ANY_NODE = '*'

/** Reconnection of a node's subscriber connection: pool connections never retry, this one must. */
const retryStrategy = (times: number): number => Math.min(times * 50, 1000)

/**
 * Pub/sub on a Redis Cluster: each channel is subscribed on the master that owns its slot, through
 * one connection per such master. A queue's channels share its hash tag, so they live on the node
 * whose scripts publish them: a message is delivered by that node at once, instead of crossing the
 * cluster bus to whichever node a single subscriber connection happened to pick (PUBLISH reaches
 * every node, so a subscription elsewhere still works, one bus hop later).
 *
 * When the slot map changes (a failover, a resharding, a node gone), channels whose owner changed
 * move to the new owner, and `onGap` runs: messages published in between may be lost, and
 * listeners re-check. A node's connection that drops subscribes again when it comes back (see
 * Subscriber), and calls `onGap` too.
 */
export class ClusterSubscriber {
  readonly #cluster: Cluster
  readonly #onGap: () => void
  readonly #track: <T>(call: Promise<T>) => Promise<T>
  readonly #onError: (error: Error) => void
  /** One subscriber per node key (`host:port`, or ANY_NODE). */
  readonly #nodes = new Map<string, Subscriber>()
  /** Per channel: its listeners, and where its one dispatching listener is subscribed. */
  readonly #channels = new Map<string, { listeners: Set<ChannelListener>, node: string, remove: Promise<() => Promise<void>> }>()
  #ops: Promise<void> = Promise.resolve()
  #closed = false

  /**
   * @param cluster the storage's command client: its slot map routes the channels; it is not closed here.
   * @param track gives each (un)subscribe its deadline (see Connection.track).
   * @param onError receives the errors of the connections made here.
   */
  constructor (cluster: Cluster, onGap: () => void, track: <T>(call: Promise<T>) => Promise<T>, onError: (error: Error) => void) {
    this.#cluster = cluster
    this.#onGap = onGap
    this.#track = track
    this.#onError = onError
    cluster.on('refresh', this.#reroute)
    cluster.on('-node', this.#reroute)
  }

  /** Adds a listener; resolves once the channel is subscribed. Returns the function removing it. */
  async add (channel: string, listener: ChannelListener): Promise<() => Promise<void>> {
    // Wrapped so the same function added twice is two independent listeners.
    const entry: ChannelListener = message => listener(message)
    await this.#serial(async () => {
      const known = this.#channels.get(channel)
      if (known !== undefined) {
        known.listeners.add(entry)
        await known.remove
        return
      }
      const listeners = new Set([entry])
      const node = this.#owner(channel)
      const remove = this.#node(node).add(channel, message => { for (const l of listeners) l(message) })
      this.#channels.set(channel, { listeners, node, remove })
      try {
        await remove
      } catch (err) {
        this.#channels.delete(channel)
        this.#closeIdle()
        throw err
      }
    })
    return () => this.#remove(channel, entry)
  }

  /** Closes every connection made here; listeners hear nothing more. */
  close (): void {
    this.#closed = true
    this.#cluster.off('refresh', this.#reroute)
    this.#cluster.off('-node', this.#reroute)
    this.#channels.clear()
    for (const subscriber of this.#nodes.values()) subscriber.close()
    this.#nodes.clear()
  }

  #remove (channel: string, entry: ChannelListener): Promise<void> {
    return this.#serial(async () => {
      const known = this.#channels.get(channel)
      if (known === undefined || !known.listeners.delete(entry) || known.listeners.size > 0) return
      this.#channels.delete(channel)
      // Unsubscribing from a lost connection is moot.
      await known.remove.then(remove => remove(), () => {}).catch(() => {})
      this.#closeIdle()
    })
  }

  /** Moves every channel whose slot owner changed to its new owner, then reports a gap. */
  readonly #reroute = (): void => {
    if (this.#closed) return
    this.#serial(async () => {
      let moved = false
      for (const [channel, known] of this.#channels) {
        const node = this.#owner(channel)
        if (node === known.node || node === ANY_NODE) continue
        const listeners = known.listeners
        const remove = this.#node(node).add(channel, message => { for (const l of listeners) l(message) })
        try {
          await remove
        } catch {
          continue // the old subscription stays; the next refresh tries again
        }
        await known.remove.then(old => old(), () => {}).catch(() => {})
        this.#channels.set(channel, { listeners, node, remove })
        moved = true
      }
      this.#closeIdle()
      if (moved && !this.#closed) this.#onGap()
    }).catch(() => {})
  }

  /** The node key of the master owning `channel`'s slot, or ANY_NODE while the slot map is unknown. */
  #owner (channel: string): string {
    const key = this.#cluster.slots[calculateSlot(channel)]?.[0]
    return key !== undefined && this.#poolNode(key) !== undefined ? key : ANY_NODE
  }

  #poolNode (key: string): Redis | undefined {
    return this.#cluster.nodes('all').find(node => `${node.options.host ?? ''}:${node.options.port ?? ''}` === key)
  }

  #node (key: string): Subscriber {
    let subscriber = this.#nodes.get(key)
    if (subscriber === undefined) {
      const pooled = key === ANY_NODE ? undefined : this.#poolNode(key)
      // A node's own options (address after natMap, TLS, credentials), but reconnecting and writable.
      const connection = pooled !== undefined
        ? pooled.duplicate({ lazyConnect: true, readOnly: false, autoResubscribe: false, enableOfflineQueue: true, retryStrategy })
        : this.#cluster.duplicate()
      connection.on('error', this.#onError)
      subscriber = new Subscriber(connection, this.#onGap, this.#track)
      this.#nodes.set(key, subscriber)
    }
    return subscriber
  }

  /** Closes the node connections no channel uses any more. */
  #closeIdle (): void {
    const used = new Set([...this.#channels.values()].map(known => known.node))
    for (const [key, subscriber] of this.#nodes) {
      if (!used.has(key)) {
        subscriber.close()
        this.#nodes.delete(key)
      }
    }
  }

  /** Runs subscription changes one at a time, in order (see Subscriber). */
  #serial (op: () => Promise<void>): Promise<void> {
    const run = this.#ops.then(op)
    this.#ops = run.catch(() => {})
    return run
  }
}
