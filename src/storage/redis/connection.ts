/**
 * The connections of a RedisStorage: the command client (created here or given by the user),
 * extra connections for blocking commands and pub/sub, calls in flight across reconnections, and
 * errors with credentials scrubbed.
 */
import { Cluster, Redis, type RedisOptions } from 'iovalkey'
import { StorageError } from '../../errors.ts'
import type { RedisStorageOptions } from '../redis.ts'
import { defineScripts, type Scripts } from './scripts.ts'
import { Subscriber } from './subscriber.ts'

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
  #subscriber: Subscriber | undefined
  /**
   * Calls in flight, to give up on after `maxRetriesPerRequest` failed reconnections. iovalkey
   * applies that limit to commands issued while disconnected, but keeps the ones in flight at the
   * drop to send them again once connected; while every reconnection fails its handshake (a
   * password rotated, an ACL user disabled) they would wait as long as that lasts. Sent again
   * later they are harmless: enqueues are deduplicated by id, settlements fenced.
   */
  readonly #inflight = new Set<(err: Error) => void>()
  readonly #retryLimit: number | null = null
  #reconnects = 0

  /** @param report receives connection errors (to scrub with {@link storageError}). */
  constructor (options: RedisStorageOptions, report: (error: Error) => void) {
    this.#options = options
    this.#report = report
    this.client = options.client ?? create(options)
    this.scripts = defineScripts(this.client, this.track)
    if (this.client instanceof Redis) {
      this.#retryLimit = this.client.options.maxRetriesPerRequest ?? null
      this.client.on('reconnecting', this.#onReconnecting)
      this.client.on('ready', this.#onReady)
    }
  }

  /** Connects a client relayq created (a given one is the user's to connect); rejects with the server's reason. */
  async open (): Promise<void> {
    if (this.#options.client !== undefined) return
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
  }

  /** Closes the subscriber and, unless the user gave it, the client. */
  close (): void {
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
  subscriber (onGap: () => void): Subscriber {
    if (this.#subscriber === undefined) {
      const client = this.client
      const connection = client instanceof Redis ? client.duplicate({ autoResubscribe: false }) : client.duplicate()
      connection.on('error', this.onError)
      this.#subscriber = new Subscriber(connection, onGap)
    }
    return this.#subscriber
  }

  /** Reports a connection error (logged, and emitted by the storage when someone listens). */
  readonly onError = (err: Error): void => this.#report(err)

  /** A call of this connection's that gives up with the scripts' calls (see `#inflight`). */
  readonly track = <T>(call: Promise<T>): Promise<T> => {
    if (this.#retryLimit === null) return call
    return new Promise<T>((resolve, reject) => {
      this.#inflight.add(reject)
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
    for (const reject of this.#inflight) reject(err)
    this.#inflight.clear()
  }

  readonly #onReady = (): void => { this.#reconnects = 0 }
}

function create (options: RedisStorageOptions): Redis | Cluster {
  const { url, host, port, cluster, redisOptions, clusterOptions } = options
  if (cluster !== undefined) {
    return new Cluster(cluster.map(node => typeof node === 'string' ? node : { host: node.host, port: node.port }), {
      lazyConnect: true,
      ...clusterOptions,
      redisOptions: { ...CONNECTION_DEFAULTS, ...clusterOptions?.redisOptions, ...redisOptions }
    })
  }
  const connectionOptions = { ...CONNECTION_DEFAULTS, ...redisOptions }
  if (url !== undefined) return new Redis(url, connectionOptions)
  return new Redis({ host: host ?? '127.0.0.1', port: port ?? 6379, ...connectionOptions })
}

/** Every key matching `pattern`, on every master (a queue's keys live on one). */
export async function scanKeys (client: Redis | Cluster, pattern: string): Promise<string[]> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client]
  const keys: string[] = []
  for (const node of nodes) {
    let cursor = '0'
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== '0')
  }
  return keys
}

/** Commands whose arguments hold credentials: never let them reach an error or a log line. */
const SECRET_COMMANDS = new Set(['auth', 'hello', 'migrate'])

/** A StorageError for a failed operation, with credentials scrubbed from the cause. */
export function storageError (operation: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err
  const cause = err as Error & { command?: { name?: string, args?: unknown[] } }
  if (cause?.command !== undefined && SECRET_COMMANDS.has(String(cause.command.name).toLowerCase())) {
    cause.command = { name: cause.command.name, args: ['[redacted]'] }
  }
  const message = typeof cause?.message === 'string' ? cause.message : String(err)
  return new StorageError(`Redis ${operation} failed: ${message}`, cause)
}

/** The error of a call made while the storage is not connected. */
export function notConnected (): StorageError {
  return new StorageError('RedisStorage is not connected: call connect() first')
}

/** A `catch` handler rethrowing as {@link storageError}. */
export function rethrow (operation: string): (err: unknown) => never {
  return err => { throw storageError(operation, err) }
}
