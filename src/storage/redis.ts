import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'iovalkey'
import { InvalidArgumentError, StorageError } from '../errors.ts'
import { checkLogger } from '../logger.ts'
import { checkClock, checkStorageOptions, isWellFormed } from '../options.ts'
import type { Logger } from '../types.ts'
import { BlockingClaims } from './redis/claims.ts'
import { decodeDone, CONTROL, packDelays, settlementArg, stateOf, toElement, toJobs, toOutcomes, toRecord } from './redis/codec.ts'
import { Connection, notConnected, rethrow, scanKeys, storageError } from './redis/connection.ts'
import { lockKey, QueueKeys } from './redis/keys.ts'
import type { Reply, Scripts } from './redis/scripts.ts'
import type {
  AbortOutcome, BlockingClaimOptions, CancelOutcome, ClaimOptions, ClaimedJob, EnqueueOutcome,
  JobRecord, LeaseReport, NewJob, Notice, RecoveryOutcome, Settlement, StateCounts, Storage,
  UpdateTTLOutcome
} from './types.ts'

/** Where and how to connect. Give one of `url`, `host`/`port`, `client` or `cluster`. */
export interface RedisStorageOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url?: string
  /** Server host. @default '127.0.0.1' */
  host?: string
  /** Server port. @default 6379 */
  port?: number
  /** A client of yours (standalone or cluster). relayq duplicates it for its blocking and subscriber connections and never closes it. */
  client?: Redis | Cluster
  /** Redis Cluster startup nodes (`'host:port'` or `{ host, port }`). */
  cluster?: ReadonlyArray<string | { host: string, port: number }>
  /** First part of every key's hash tag: `{<keyPrefix>:<queue>}:...`. @default 'relayq' */
  keyPrefix?: string
  /** iovalkey options for the connections relayq creates (with `url`, `host` or `cluster`). */
  redisOptions?: RedisOptions
  /** iovalkey cluster options (with `cluster`). */
  clusterOptions?: ClusterOptions
  /** Results and errors up to this many bytes travel inside the completion notice (one round trip less for the waiter). @default 65536 */
  inlineLimit?: number
  /** Source of the current time in epoch ms, for leases, delays and locks. @default Date.now */
  clock?: () => number
  /** A pino-style logger for connection errors (which also go to `error` listeners). @default silent */
  logger?: Logger
}

const REDIS_OPTIONS = [
  'url', 'host', 'port', 'client', 'cluster', 'keyPrefix', 'redisOptions', 'clusterOptions', 'inlineLimit', 'clock', 'logger'
] as const

/** Events of a RedisStorage. */
export interface RedisStorageEvents {
  /** A connection failed (it reconnects by itself); emitted only when someone listens. */
  error: [error: StorageError]
}

/**
 * Jobs per enqueue script call. Chunks of a large batch are sent back to back, so Redis runs one
 * while this process encodes the next (measured: 250 gave 130-170k jobs/s in bulk against 120-140k
 * for 1,000); it also bounds a script's run time and Lua's `unpack` stack.
 */
const ENQUEUE_CHUNK = 250
/** How long a BLMOVE'd id may wait in `claiming` before the reaper hands it back (ms); see recover.lua. */
const CLAIM_GRACE_MS = 1000

/**
 * Redis, Valkey and Redis Cluster. Each operation is one Lua script (one round trip) over keys
 * that share the queue's hash tag; an idle consumer blocks in BLMOVE (see redis/claims.ts);
 * request/response uses one subscriber connection per instance, with small results inside the
 * notice.
 *
 * @example
 * const storage = new RedisStorage({ url: 'redis://127.0.0.1:6379' })
 * const queue = new Queue({ storage, concurrency: 50 })
 */
export class RedisStorage extends EventEmitter<RedisStorageEvents> implements Storage {
  readonly #options: RedisStorageOptions
  readonly #prefix: string
  readonly #clock: () => number
  readonly #inline: number
  /** This instance's waiter token: its reply channels end with it (36 characters, see _lib.lua). */
  readonly #token = randomUUID()
  readonly #keys = new Map<string, QueueKeys>()
  /** Listeners told about `gap`s (lost subscriptions). */
  readonly #gapListeners = new Set<(notice: Notice) => void>()
  readonly #claims: BlockingClaims
  #refs = 0
  #opening: Promise<void> | undefined
  #connection: Connection | undefined

  /** @throws InvalidArgumentError for an invalid or unknown option. */
  constructor (options: RedisStorageOptions = {}) {
    super()
    checkStorageOptions('RedisStorage', options, REDIS_OPTIONS)
    const ways = [options.url !== undefined, options.host !== undefined || options.port !== undefined, options.client !== undefined, options.cluster !== undefined]
    if (ways.filter(Boolean).length > 1) throw new InvalidArgumentError('Give only one of `url`, `host`/`port`, `client` or `cluster`')
    if (options.url !== undefined && (typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url))) {
      throw new InvalidArgumentError('Expected `url` to start with redis:// or rediss://')
    }
    if (options.cluster !== undefined && (!Array.isArray(options.cluster) || options.cluster.length === 0)) {
      throw new InvalidArgumentError('Expected `cluster` to be a non-empty array of nodes')
    }
    const prefix = options.keyPrefix ?? 'relayq'
    // A lone surrogate would reach Redis as U+FFFD: two prefixes could share keys.
    if (typeof prefix !== 'string' || prefix.length === 0 || !isWellFormed(prefix)) {
      throw new InvalidArgumentError('Expected `keyPrefix` to be a non-empty, well-formed string')
    }
    const inline = options.inlineLimit ?? 65_536
    if (!Number.isInteger(inline) || inline < 0) throw new InvalidArgumentError(`Expected \`inlineLimit\` to be an integer >= 0, got ${String(inline)}`)
    // The logger is guarded: one that throws never breaks a connection handler.
    this.#options = { ...options, logger: checkLogger(options.logger) }
    this.#prefix = prefix
    this.#clock = checkClock(options.clock)
    this.#inline = inline
    this.#claims = new BlockingClaims({
      connection: () => this.#connection,
      open: () => this.#refs > 0,
      keysOf: queue => this.#keysOf(queue),
      clock: this.#clock,
      subscribe: (channel, listener) => this.#subscribe(channel, listener),
      report: this.#report,
      release: (queue, workerId, jobs) =>
        this.settle(queue, workerId, jobs.map(j => ({ type: 'release', id: j.id, attempt: j.attempts })), { max: 0, leaseMs: 0 })
    })
  }

  connect (): Promise<void> {
    if (this.#refs++ > 0) return this.#opening ?? Promise.resolve()
    this.#opening = this.#open().catch(err => {
      this.#refs = 0
      this.#opening = undefined
      this.#close()
      throw storageError('connect', err)
    })
    return this.#opening
  }

  async disconnect (): Promise<void> {
    if (this.#refs === 0 || --this.#refs > 0) return
    await this.#opening?.catch(() => {})
    // Jobs claimed ahead for a consumer that is gone now: back to the queue, attempt not counted.
    await this.#claims.releaseAll()
    this.#opening = undefined
    this.#close()
  }

  async #open (): Promise<void> {
    this.#connection = new Connection(this.#options, this.#report)
    await this.#connection.open()
  }

  /** Closes every connection this instance made (not a client the user gave). */
  #close (): void {
    this.#claims.close()
    this.#gapListeners.clear()
    this.#connection?.close()
    this.#connection = undefined
  }

  readonly #report = (error: Error): void => {
    const err = storageError('connection', error)
    this.#options.logger?.error({ err }, 'relayq: Redis connection error')
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  /** The scripts, or a StorageError when not connected. */
  #run (): Scripts {
    if (this.#connection === undefined) throw notConnected()
    return this.#connection.scripts
  }

  #keysOf (queue: string): QueueKeys {
    let keys = this.#keys.get(queue)
    if (keys === undefined) {
      keys = new QueueKeys(this.#prefix, queue)
      this.#keys.set(queue, keys)
    }
    return keys
  }

  async enqueue (queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    const k = this.#keysOf(queue)
    if (jobs.length <= ENQUEUE_CHUNK) return await this.#enqueue(k, jobs)
    // One script per chunk, sent back to back on one connection: applied in order, one flight.
    const parts: Array<Promise<EnqueueOutcome[]>> = []
    for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) parts.push(this.#enqueue(k, jobs.slice(i, i + ENQUEUE_CHUNK)))
    return (await Promise.all(parts)).flat()
  }

  async #enqueue (k: QueueKeys, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    const now = this.#clock()
    const keys = [k.ready, k.jobs, k.elements, k.delayed, k.waiters]
    const flags = Buffer.alloc(jobs.length)
    const delays: number[] = []
    const args: Array<string | number | Buffer> = [now, this.#token, k.control, k.donePrefixBytes, flags, '']
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]
      keys.push(k.done(job.id))
      if (job.notify === true) flags[i] = 1
      if (job.delay > 0) {
        flags[i] += 2
        delays.push(job.delay)
      }
      args.push(toElement(job, now))
    }
    args[5] = packDelays(delays)
    const reply: Reply[] | number = await this.#run().enqueueBuffer(keys, args).catch(rethrow('enqueue'))
    return toOutcomes(reply, jobs.length)
  }

  claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    return this.#claims.claim(queue, workerId, options)
  }

  async settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<ClaimedJob[]> {
    const early = await this.#claims.takePrefetched(queue, workerId, next.max)
    if (early.length > 0) {
      // Already claimed: settle what there is to settle, and claim only what is still missing.
      if (settlements.length === 0) return early
      return early.concat(await this.settle(queue, workerId, settlements, { max: next.max - early.length, leaseMs: next.leaseMs }))
    }
    const k = this.#keysOf(queue)
    const keys = [k.ready, k.jobs, k.elements, k.delayed, k.leases, k.waiters, k.errors, k.claiming]
    const args: Array<string | number | Buffer> = [this.#clock(), next.leaseMs, next.max, workerId, k.replyPrefix, k.control, this.#inline, k.donePrefixBytes, 0]
    const unanswered = this.#claims.unanswered(queue, workerId)
    if (unanswered !== undefined) {
      args[8] = unanswered.size
      for (const element of unanswered) args.push(element)
    }
    for (let i = 0; i < settlements.length; i++) {
      const s = settlements[i]
      keys.push(k.done(s.id))
      args.push(settlementArg(s))
    }
    const reply: Reply[] = await this.#run().settleBuffer(keys, args).catch(rethrow('settle'))
    const jobs = toJobs(reply, 1)
    this.#claims.settled(queue, next.max, jobs.length, reply[0] as number)
    return jobs
  }

  async extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport> {
    if (ids.length === 0) return { lost: [], aborted: [] }
    const activated = this.#claims.activated(queue, workerId)
    if (activated !== undefined) await activated
    const k = this.#keysOf(queue)
    const [lost, aborted]: [string[], string[]] = await this.#run().extend([k.jobs, k.leases], [this.#clock(), leaseMs, workerId, ...ids]).catch(rethrow('extendLeases'))
    return { lost, aborted }
  }

  cancel (queue: string, id: string): Promise<CancelOutcome> {
    return this.#cancel(queue, id, 'cancel', 0) as Promise<CancelOutcome>
  }

  abort (queue: string, id: string, ttl: number): Promise<AbortOutcome> {
    return this.#cancel(queue, id, 'abort', ttl) as Promise<AbortOutcome>
  }

  async #cancel (queue: string, id: string, mode: 'cancel' | 'abort', ttl: number): Promise<CancelOutcome | AbortOutcome> {
    const k = this.#keysOf(queue)
    return await this.#run().cancel(
      [k.ready, k.jobs, k.elements, k.delayed, k.leases, k.waiters, k.errors, k.claiming, k.done(id)],
      [id, mode, ttl, k.replyPrefix, k.control, this.#inline]
    ).catch(rethrow(mode))
  }

  async getStatus (queue: string, id: string): Promise<JobRecord | null> {
    const k = this.#keysOf(queue)
    const reply: Reply[] = await this.#run().statusBuffer([k.jobs, k.errors, k.done(id)], [id]).catch(rethrow('getStatus'))
    return reply.length === 0 ? null : toRecord(id, reply)
  }

  async updateResultTTL (queue: string, id: string, ttl: number): Promise<UpdateTTLOutcome> {
    const k = this.#keysOf(queue)
    return await this.#run().ttl([k.jobs, k.done(id)], [id, ttl]).catch(rethrow('updateResultTTL'))
  }

  async subscribe (queue: string, listener: (notice: Notice) => void, type?: Notice['type']): Promise<() => Promise<void>> {
    const k = this.#keysOf(queue)
    const removers: Array<() => Promise<void>> = []
    // Registered before subscribing, so a gap during the subscription is not missed either.
    const gapListener = (notice: Notice): void => listener(notice)
    this.#gapListeners.add(gapListener)
    try {
      if (type === undefined || type === 'done') {
        removers.push(await this.#subscribe(k.replyPrefix + this.#token, message => decodeDone(message, listener)))
      }
      if (type === undefined || type === 'abort') {
        removers.push(await this.#subscribe(k.control, message => {
          if (message[0] === CONTROL.abort) listener({ type: 'abort', id: message.subarray(1).toString() })
        }))
      }
    } catch (err) {
      this.#gapListeners.delete(gapListener)
      await Promise.all(removers.map(remove => remove()))
      throw err
    }
    return async () => {
      this.#gapListeners.delete(gapListener)
      await Promise.all(removers.map(remove => remove()))
    }
  }

  #subscribe (channel: string, listener: (message: Buffer) => void): Promise<() => Promise<void>> {
    const connection = this.#connection
    if (connection === undefined) return Promise.reject(notConnected())
    const subscriber = connection.subscriber(() => {
      for (const gapListener of this.#gapListeners) gapListener({ type: 'gap' })
    })
    return subscriber.add(channel, listener).catch(rethrow('subscribe'))
  }

  async recoverStalled (queue: string, maxStalls: number, error: Buffer): Promise<RecoveryOutcome> {
    const k = this.#keysOf(queue)
    const scripts = this.#run()
    const now = this.#clock()
    const [requeued, ending]: [string[], Array<string | number>] = await scripts.recover(
      [k.ready, k.jobs, k.leases, k.claiming, k.seen, k.elements], [now, maxStalls, CLAIM_GRACE_MS]
    ).catch(rethrow('recoverStalled'))
    if (ending.length === 0) return { requeued, failed: [] }
    const keys = [k.jobs, k.elements, k.leases, k.waiters, k.errors]
    for (let i = 0; i < ending.length; i += 2) keys.push(k.done(ending[i] as string))
    const failed: string[] = await scripts.reap(keys, [now, k.replyPrefix, this.#inline, error, ...ending]).catch(rethrow('recoverStalled'))
    return { requeued, failed }
  }

  async acquireLock (name: string, owner: string, ttl: number): Promise<boolean> {
    return await this.#run().lock([lockKey(this.#prefix, name)], [owner, ttl]).catch(rethrow('acquireLock')) === 1
  }

  async releaseLock (name: string, owner: string): Promise<void> {
    await this.#run().unlock([lockKey(this.#prefix, name)], [owner]).catch(rethrow('releaseLock'))
  }

  /** Counts per state. Terminal records are counted with SCAN: O(records), for observability. */
  async counts (queue: string): Promise<StateCounts> {
    const k = this.#keysOf(queue)
    const [queued, delayed, processing, failing]: number[] = await this.#run().counts(
      [k.ready, k.jobs, k.delayed, k.leases, k.claiming], []
    ).catch(rethrow('counts'))
    const counts: StateCounts = { queued, delayed, processing, failing, completed: 0, failed: 0, cancelled: 0 }
    const client = (this.#connection as Connection).client
    const keys = await scanKeys(client, k.donePattern).catch(rethrow('counts'))
    for (let i = 0; i < keys.length; i += ENQUEUE_CHUNK) {
      const pipeline = client.pipeline()
      for (const key of keys.slice(i, i + ENQUEUE_CHUNK)) pipeline.getrange(key, 0, 0)
      for (const [err, state] of await pipeline.exec().catch(rethrow('counts')) ?? []) {
        if (err === null && typeof state === 'string' && state.length > 0) counts[stateOf(state) as 'completed' | 'failed' | 'cancelled']++
      }
    }
    return counts
  }

  /** The Redis keys of a queue as this storage names them (for operators and tests). */
  keysOf (queue: string): { fixed: string[], donePattern: string } {
    const k = this.#keysOf(queue)
    return { fixed: k.fixed, donePattern: k.donePattern }
  }
}
