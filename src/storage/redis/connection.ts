/**
 * The connections of a RedisStorage: the command client (created here or given by the user),
 * extra connections for blocking commands and pub/sub, calls in flight across reconnections and
 * their deadline, and errors with credentials scrubbed.
 */
import { performance } from 'node:perf_hooks'
import { Cluster, Redis, ReplyError, type RedisOptions } from 'iovalkey'
import { DEFAULT_MAX_VALUE_BYTES } from '../../bytes.ts'
import { StorageError } from '../../errors.ts'
import type { RedisStorageOptions } from '../redis.ts'
import type { FunctionLoader } from './functions.ts'
import { defineScripts, type Scripts } from './scripts.ts'
import { ClusterSubscriber } from './cluster-subscriber.ts'
import { Subscriber, type ChannelListener } from './subscriber.ts'

/** Pub/sub of a storage instance: one connection on a standalone server, one per slot owner on a cluster. */
export interface PubSub {
  add: (channel: string, listener: ChannelListener) => Promise<() => Promise<void>>
  close: () => void
}

/**
 * Connections relayq creates: commands issued while disconnected wait for the reconnect, and
 * fail with a StorageError after 20 attempts (about 15 s) instead of hanging.
 */
const CONNECTION_DEFAULTS: RedisOptions = {
  lazyConnect: true,
  maxRetriesPerRequest: 20,
  retryStrategy: times => Math.min(times * 50, 1000)
}

/** The open connection of a storage instance: its command client, scripts and subscriber. */
export class Connection {
  readonly #options: RedisStorageOptions
  readonly #report: (error: Error) => void
  readonly client: Redis | Cluster
  readonly scripts: Scripts
  /** The scripts' Functions library on the server(s). */
  readonly functions: FunctionLoader
  #subscriber: PubSub | undefined
  /**
   * Calls in flight, in the order they were sent, with the `performance.now()` of each: given up
   * on once unanswered for `commandTimeout` ms (a frozen or silent server), or after
   * `maxRetriesPerRequest` failed reconnections. iovalkey applies that limit to commands issued
   * while disconnected, but keeps the ones in flight at the drop to send them again once
   * connected; while every reconnection fails its handshake (a password rotated, an ACL user
   * disabled) they would wait as long as that lasts. A command given up on stays queued in
   * iovalkey, and runs if the server answers at last: harmless, as enqueues are deduplicated by
   * id and settlements fenced.
   */
  readonly #inflight = new Map<(err: Error) => void, number>()
  readonly #retryLimit: number | null = null
  readonly #commandTimeout: number
  /** Checks the oldest call in flight against `commandTimeout`: one timer, none per call. */
  readonly #watchdog: ReturnType<typeof setInterval>
  #reconnects = 0

  /**
   * @param report receives connection errors (to scrub with {@link storageError}).
   * @param commandTimeout ms a call may wait for its answer (see `track`).
   */
  constructor (options: RedisStorageOptions, report: (error: Error) => void, commandTimeout: number) {
    this.#options = options
    this.#report = report
    this.#commandTimeout = commandTimeout
    this.client = options.client ?? create(options)
    const { scripts, functions } = defineScripts(this.client, this.track)
    this.scripts = scripts
    this.functions = functions
    this.#watchdog = setInterval(this.#watch, Math.max(5, Math.min(1000, Math.ceil(commandTimeout / 4))))
    this.#watchdog.unref()
    if (this.client instanceof Redis) {
      this.#retryLimit = this.client.options.maxRetriesPerRequest ?? null
      this.client.on('reconnecting', this.#onReconnecting)
      this.client.on('ready', this.#onReady)
    }
  }

  /**
   * Connects a client relayq created (a given one is the user's to connect), then loads the
   * scripts' library; rejects with the server's reason. A failed load is tried again by the first call.
   */
  async open (): Promise<void> {
    if (this.#options.client !== undefined) {
      // Not awaited: a given client may not be connected yet; calls wait for this load.
      this.functions.load().catch(() => {})
      return
    }
    this.client.on('error', this.onError)
    // A refused handshake rejects connect() with only "Connection is closed": report the
    // server's reason instead (WRONGPASS, NOAUTH...; credentials are scrubbed from errors).
    let reason: Error | undefined
    const remember = (err: Error): void => { reason = err }
    this.client.on('error', remember)
    try {
      await this.client.connect()
    } catch (err) {
      throw reason ?? err
    } finally {
      this.client.off('error', remember)
    }
    await this.functions.load().catch(() => {})
  }

  /** Closes the subscriber and, unless the user gave it, the client. */
  close (): void {
    clearInterval(this.#watchdog)
    this.#subscriber?.close()
    this.#subscriber = undefined
    this.client.off('reconnecting', this.#onReconnecting)
    this.client.off('ready', this.#onReady)
    if (this.#options.client === undefined) this.client.disconnect()
  }

  /** A new connection like the client (for a blocking command), reporting its errors. */
  duplicate (): Redis | Cluster {
    const connection = this.client.duplicate()
    connection.on('error', this.onError)
    return connection
  }

  /** The subscriber connection, made on first use; `onGap` runs after it came back from a drop. */
  subscriber (onGap: () => void): PubSub {
    if (this.#subscriber === undefined) {
      const client = this.client
      if (client instanceof Redis) {
        const connection = client.duplicate({ autoResubscribe: false })
        connection.on('error', this.onError)
        this.#subscriber = new Subscriber(connection, onGap, this.track)
      } else {
        this.#subscriber = new ClusterSubscriber(client, onGap, this.track, this.onError)
      }
    }
    return this.#subscriber
  }

  /** Reports a connection error (logged, and emitted by the storage when someone listens). */
  readonly onError = (err: Error): void => this.#report(err)

  /**
   * A call of this connection's (a script, or any other command) that rejects with a StorageError
   * when unanswered for `commandTimeout` ms, or when reconnecting keeps failing.
   */
  readonly track = <T>(call: Promise<T>): Promise<T> => {
    return new Promise<T>((resolve, reject) => {
      this.#inflight.set(reject, performance.now())
      call.then(value => {
        this.#inflight.delete(reject)
        resolve(value)
      }, (err: unknown) => {
        this.#inflight.delete(reject)
        reject(err)
      })
    })
  }

  readonly #onReconnecting = (): void => {
    if (this.#retryLimit === null || ++this.#reconnects <= this.#retryLimit || this.#inflight.size === 0) return
    const err = new StorageError(`Redis connection lost: gave up after ${this.#reconnects - 1} failed reconnections`)
    for (const reject of this.#inflight.keys()) reject(err)
    this.#inflight.clear()
  }

  readonly #watch = (): void => {
    if (this.#inflight.size === 0) return
    const since = performance.now() - this.#commandTimeout
    let err: StorageError | undefined
    // Oldest first: the first call still within its time ends the check.
    for (const [reject, sentAt] of this.#inflight) {
      if (sentAt > since) break
      err ??= new StorageError(`Redis did not answer within commandTimeout (${this.#commandTimeout} ms)`)
      this.#inflight.delete(reject)
      reject(err)
    }
  }

  readonly #onReady = (): void => { this.#reconnects = 0 }
}

function create (options: RedisStorageOptions): Redis | Cluster {
  const { url, host, port, cluster, redisOptions, clusterOptions, connectTimeout } = options
  const defaults = { ...CONNECTION_DEFAULTS, connectTimeout }
  if (cluster !== undefined) {
    return new Cluster(cluster.map(node => typeof node === 'string' ? node : { host: node.host, port: node.port }), {
      lazyConnect: true,
      ...clusterOptions,
      redisOptions: { ...defaults, ...clusterOptions?.redisOptions, ...redisOptions }
    })
  }
  const connectionOptions = { ...defaults, ...redisOptions }
  if (url !== undefined) return new Redis(url, connectionOptions)
  return new Redis({ host: host ?? '127.0.0.1', port: port ?? 6379, ...connectionOptions })
}

/** Commands whose arguments hold credentials: never let them reach an error or a log line. */
const SECRET_COMMANDS = new Set(['auth', 'hello', 'migrate'])

/**
 * Error replies that say the server cannot serve anyone for a while (loading, failing over, out of
 * memory, a script running, no permission...), not that something in the call is wrong.
 */
const UNAVAILABLE = /^(?:LOADING|BUSY|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN|OOM|NOREPLICAS|MISCONF|NOPERM|NOAUTH|WRONGPASS|UNBLOCKED|MOVED|ASK|NOSCRIPT|ERR Function not found)\b/

/**
 * A StorageError for a failed operation, with credentials scrubbed from the cause. Not `retryable`
 * when the server refused the call itself (an error reply such as `ERR Protocol error: invalid bulk
 * length`) or its arguments could not be encoded: sent again, it would fail again.
 */
export function storageError (operation: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err
  const cause = err as Error & { command?: { name?: string, args?: unknown[] } }
  if (cause?.command !== undefined && SECRET_COMMANDS.has(String(cause.command.name).toLowerCase())) {
    cause.command = { name: cause.command.name, args: ['[redacted]'] }
  }
  const message = typeof cause?.message === 'string' ? cause.message : String(err)
  const refused = (err instanceof ReplyError && !UNAVAILABLE.test(message)) || err instanceof TypeError || err instanceof RangeError
  return new StorageError(`Redis ${operation} failed: ${message}`, cause, { retryable: !refused })
}

/**
 * The server's `proto-max-bulk-len` (the longest argument it accepts), or Redis's default (512 MiB)
 * when it will not say (CONFIG disabled, as on some managed services).
 */
export async function maxBulkLength (client: Redis | Cluster, track: <T>(call: Promise<T>) => Promise<T>): Promise<number> {
  try {
    const reply = await track(client.config('GET', 'proto-max-bulk-len')) as unknown as string[]
    const value = Number(reply?.[1])
    return Number.isSafeInteger(value) && value > 0 ? value : DEFAULT_MAX_VALUE_BYTES
  } catch {
    return DEFAULT_MAX_VALUE_BYTES
  }
}

/** The error of a call made while the storage is not connected. */
export function notConnected (): StorageError {
  return new StorageError('RedisStorage is not connected: call connect() first')
}

/**
 * `work`, or a (retryable) StorageError with `message` once `ms` have passed without it settling;
 * `work` goes on, and its late failure is ignored.
 */
export async function within<T> (work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((resolve, reject) => { timer = setTimeout(() => reject(new StorageError(message)), ms) })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
    work.catch(() => {})
  }
}

/** A `catch` handler rethrowing as {@link storageError}. */
export function rethrow (operation: string): (err: unknown) => never {
  return err => { throw storageError(operation, err) }
}
