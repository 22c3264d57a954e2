/**
 * The one LISTEN connection of a PgStorage instance. Channels are LISTENed once, when first
 * needed, and kept. A lost connection is replaced (backing off up to 2 s between tries), every
 * channel is LISTENed again, then `onGap` runs: notices sent meanwhile are lost, and whoever waits
 * must re-check.
 */
import type { PgClient } from './driver.ts'

/** Opens and closes the connection the listener uses. */
export interface ListenerConnector {
  open: () => Promise<PgClient>
  /** Gives the connection back (`broken`: it failed and must not be reused). */
  close: (client: PgClient, broken: boolean) => void
}

export interface ListenerHooks {
  readonly notice: (channel: string, payload: string) => void
  readonly gap: () => void
  readonly error: (err: Error) => void
}

const MAX_BACKOFF = 2000

export class Listener {
  readonly #connector: ListenerConnector
  readonly #hooks: ListenerHooks
  readonly #channels = new Set<string>()
  #client: PgClient | undefined
  /** Resolves once connected (or rejects with the connect error); replaced on every reconnect. */
  #ready: Promise<PgClient> | undefined
  #closed = false
  #retry: ReturnType<typeof setTimeout> | undefined
  #failures = 0

  constructor (connector: ListenerConnector, hooks: ListenerHooks) {
    this.#connector = connector
    this.#hooks = hooks
  }

  /** Connects (the first LISTEN does it too). */
  start (): Promise<void> {
    return this.#connection().then(() => {})
  }

  /** LISTENs to `channel` (once); resolves when notices on it are heard. */
  async listen (channel: string): Promise<void> {
    if (this.#channels.has(channel)) {
      await this.#connection()
      return
    }
    const client = await this.#connection()
    await client.query({ text: `LISTEN "${channel}"` })
    this.#channels.add(channel)
  }

  /** Whether notices on `channel` are heard now (LISTENed on a live connection). */
  hears (channel: string): boolean {
    return this.#client !== undefined && this.#channels.has(channel)
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#retry)
    const client = this.#client
    this.#client = undefined
    this.#ready = undefined
    if (client !== undefined) this.#drop(client, false)
  }

  #connection (): Promise<PgClient> {
    this.#ready ??= this.#open()
    return this.#ready
  }

  async #open (): Promise<PgClient> {
    try {
      const client = await this.#connector.open()
      if (this.#closed) {
        this.#connector.close(client, false)
        throw new Error('closed')
      }
      client.on('notification', this.#onNotification)
      client.on('error', this.#onError)
      client.on('end', this.#onEnd)
      this.#client = client
      return client
    } catch (err) {
      this.#ready = undefined
      throw err
    }
  }

  readonly #onNotification = (msg: { channel: string, payload?: string }): void => {
    this.#hooks.notice(msg.channel, msg.payload ?? '')
  }

  readonly #onError = (err: Error): void => {
    this.#hooks.error(err)
    this.#lost()
  }

  readonly #onEnd = (): void => { this.#lost() }

  #lost (): void {
    const client = this.#client
    if (client === undefined || this.#closed) return
    this.#client = undefined
    this.#ready = undefined
    this.#drop(client, true)
    this.#reconnect()
  }

  #drop (client: PgClient, broken: boolean): void {
    client.removeListener('notification', this.#onNotification)
    client.removeListener('end', this.#onEnd)
    client.removeListener('error', this.#onError)
    // A late error of a dropped connection must not crash the process.
    client.on('error', () => {})
    this.#connector.close(client, broken)
  }

  #reconnect (): void {
    if (this.#closed) return
    const wait = Math.min(MAX_BACKOFF, 50 * 2 ** this.#failures)
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.#resume().catch(err => {
        this.#failures++
        if (!this.#closed) this.#hooks.error(err as Error)
        const client = this.#client
        if (client !== undefined) {
          this.#client = undefined
          this.#ready = undefined
          this.#drop(client, true)
        }
        this.#reconnect()
      })
    }, wait)
    // Not unref'd: while connected, a storage keeps its process alive like any client, also when
    // every other connection is down (a consumer pausing after a failure has no timer of its own).
  }

  async #resume (): Promise<void> {
    const client = await this.#connection()
    for (const channel of this.#channels) await client.query({ text: `LISTEN "${channel}"` })
    this.#failures = 0
    if (!this.#closed) this.#hooks.gap()
  }
}
