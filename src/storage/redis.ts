import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'iovalkey'
import { InvalidArgumentError, StorageError } from '../errors.ts'
import { checkLogger } from '../logger.ts'
import { checkClock, checkStorageOptions, isWellFormed } from '../options.ts'
import type { Logger } from '../types.ts'
import { lockKey, QueueKeys } from './redis-keys.ts'
import { defineScripts, type Reply, type Scripts } from './redis-scripts.ts'
import { Subscriber } from './redis-subscriber.ts'
import type {
  AbortOutcome, ActiveState, BlockingClaimOptions, CancelOutcome, ClaimOptions, ClaimedJob, EnqueueOutcome,
  JobRecord, JobState, LeaseReport, NewJob, Notice, RecoveryOutcome, Settlement, StateCounts, Storage,
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
/** Slack beyond a blocking command's own timeout before its connection is presumed wedged (ms). */
const BLOCK_GUARD_MS = 5000

/**
 * Connections relayq creates: commands issued while disconnected wait for the reconnect, and
 * fail with a StorageError after 20 attempts (about 15 s) instead of hanging.
 */
const CONNECTION_DEFAULTS: RedisOptions = {
  lazyConnect: true,
  maxRetriesPerRequest: 20,
  retryStrategy: times => Math.min(times * 50, 1000)
}

const ACTIVE: Record<string, ActiveState> = { q: 'queued', d: 'delayed', p: 'processing', f: 'failing' }
const STATES: Record<string, JobState> = { ...ACTIVE, c: 'completed', e: 'failed', x: 'cancelled' }
const QUEUED: EnqueueOutcome = Object.freeze({ status: 'queued' })
const EMPTY = Buffer.alloc(0)

/**
 * Redis, Valkey and Redis Cluster. Each operation is one Lua script (one round trip) over keys
 * that share the queue's hash tag; an idle consumer blocks in BLMOVE; request/response uses one
 * subscriber connection per instance, with small results inside the notice.
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
  /** Idle connections for BLMOVE; one is taken per blocking claim. */
  readonly #blockers: Array<Redis | Cluster> = []
  /** Connections currently blocked in BLMOVE, closed by `disconnect`. */
  readonly #blocking = new Set<Redis | Cluster>()
  /** Blocked claims per queue, and the timer that promotes the next delayed job for them. */
  readonly #waits = new Map<string, { blocked: number, at: number, timer: ReturnType<typeof setTimeout> | undefined }>()
  /** Listeners told about `gap`s (lost subscriptions). */
  readonly #gapListeners = new Set<(notice: Notice) => void>()
  #refs = 0
  #opening: Promise<void> | undefined
  #client: Redis | Cluster | undefined
  #scripts: Scripts | undefined
  #subscriber: Subscriber | undefined
  /** Per queue and worker: the reply of a pipelined activation, with the jobs it claimed beyond the BLMOVE'd one. */
  readonly #prefetched = new Map<string, { queue: string, workerId: string, answered: Promise<{ jobs: ClaimedJob[], drained: boolean, nextDue: number }> }>()
  /** Per queue and worker: elements taken by BLMOVE whose activation Redis has not answered yet. */
  readonly #unanswered = new Map<string, Set<Buffer>>()
  /** Per queue and worker: the last pipelined activation until Redis answered it, even once a claim took its jobs (see `#activated`). */
  readonly #activating = new Map<string, Promise<unknown>>()
  /** Queues this instance last found drained (a settle claimed fewer than asked) → earliest delayed due time (-1: none). */
  readonly #drained = new Map<string, number>()
  /** Queues whose control channel this instance watches for wake-ups (while claims block). */
  #watching = new Map<string, Promise<unknown>>()

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
    for (const { queue, workerId } of [...this.#prefetched.values()]) await this.#takePrefetched(queue, workerId, 0).catch(() => {})
    this.#opening = undefined
    this.#close()
  }

  async #open (): Promise<void> {
    const given = this.#options.client
    const client = given ?? this.#create()
    this.#client = client
    this.#scripts = defineScripts(client, this.#track)
    if (client instanceof Redis) {
      this.#retryLimit = client.options.maxRetriesPerRequest ?? null
      client.on('reconnecting', this.#onReconnecting)
      client.on('ready', this.#onReady)
    }
    if (given === undefined) {
      client.on('error', this.#onError)
      // A refused handshake rejects connect() with only "Connection is closed": report the
      // server's reason instead (WRONGPASS, NOAUTH...; credentials are scrubbed from errors).
      let reason: Error | undefined
      const remember = (err: Error): void => { reason = err }
      client.on('error', remember)
      try {
        await client.connect()
      } catch (err) {
        throw reason ?? err
      } finally {
        client.off('error', remember)
      }
    }
  }

  #create (): Redis | Cluster {
    const { url, host, port, cluster, redisOptions, clusterOptions } = this.#options
    if (cluster !== undefined) {
      return new Cluster(cluster.map(node => typeof node === 'string' ? node : { host: node.host, port: node.port }), {
        lazyConnect: true,
        ...clusterOptions,
        redisOptions: { ...CONNECTION_DEFAULTS, ...clusterOptions?.redisOptions, ...redisOptions }
      })
    }
    const options = { ...CONNECTION_DEFAULTS, ...redisOptions }
    if (url !== undefined) return new Redis(url, options)
    return new Redis({ host: host ?? '127.0.0.1', port: port ?? 6379, ...options })
  }

  /** Closes every connection this instance made (not a client the user gave). */
  #close (): void {
    for (const wait of this.#waits.values()) clearTimeout(wait.timer)
    this.#waits.clear()
    this.#watching.clear()
    this.#gapListeners.clear()
    for (const connection of this.#blocking) connection.disconnect()
    this.#blocking.clear()
    for (const connection of this.#blockers.splice(0)) connection.disconnect()
    this.#subscriber?.close()
    this.#subscriber = undefined
    if (this.#client !== undefined) {
      this.#client.off('reconnecting', this.#onReconnecting)
      this.#client.off('ready', this.#onReady)
      if (this.#options.client === undefined) this.#client.disconnect()
    }
    this.#client = undefined
    this.#scripts = undefined
  }

  /**
   * Calls in flight, to give up on after `maxRetriesPerRequest` failed reconnections. iovalkey
   * applies that limit to commands issued while disconnected, but keeps the ones in flight at the
   * drop to send them again once connected; while every reconnection fails its handshake (a
   * password rotated, an ACL user disabled) they would wait as long as that lasts. Sent again
   * later they are harmless: enqueues are deduplicated by id, settlements fenced.
   */
  readonly #inflight = new Set<(err: Error) => void>()
  #retryLimit: number | null = null
  #reconnects = 0

  readonly #track = <T>(call: Promise<T>): Promise<T> => {
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

  readonly #onError = (err: Error): void => {
    const error = storageError('connection', err)
    this.#options.logger?.error({ err: error }, 'relayq: Redis connection error')
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  /** The scripts, or a StorageError when not connected. */
  #run (): Scripts {
    if (this.#scripts === undefined) throw new StorageError('RedisStorage is not connected: call connect() first')
    return this.#scripts
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
    const args: Array<string | number | Buffer> = [now, this.#token, k.control, k.donePrefixBytes, flags, EMPTY]
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
    if (delays.length > 0) {
      const packed = Buffer.allocUnsafe(8 * delays.length)
      for (let i = 0; i < delays.length; i++) packed.writeDoubleBE(delays[i], 8 * i)
      args[5] = packed
    }
    const reply: Reply[] | number = await this.#run().enqueueBuffer(keys, args).catch(rethrow('enqueue'))
    if (typeof reply === 'number') return new Array<EnqueueOutcome>(jobs.length).fill(QUEUED)
    const outcomes: EnqueueOutcome[] = new Array(jobs.length)
    for (let i = 0; i < jobs.length; i++) {
      const data = reply[2 * i + 1] as Buffer
      switch (reply[2 * i]) {
        case 0: outcomes[i] = QUEUED; break
        case 1: outcomes[i] = { status: 'duplicate', state: ACTIVE[data.toString()] }; break
        case 2: outcomes[i] = { status: 'completed', result: data }; break
        case 3: outcomes[i] = { status: 'failed', error: data }; break
        default: outcomes[i] = { status: 'cancelled' }
      }
    }
    return outcomes
  }

  async claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    const k = this.#keysOf(queue)
    const { max, leaseMs, blockMs, signal } = options
    const deadline = Date.now() + blockMs
    // Jobs the last BLMOVE's activation claimed beyond its own come first.
    const early = await this.#takePrefetched(queue, workerId, max)
    if (early.length > 0) return early
    // Right after this instance found the queue drained, a probe would find nothing either:
    // block at once (BLMOVE returns at once if a job arrived meanwhile).
    let nextDue = this.#drained.get(queue)
    this.#drained.delete(queue)
    let probe = nextDue === undefined || blockMs <= 0
    for (;;) {
      if (probe) {
        const reply: Reply[] = await this.#run().claimBuffer(this.#claimKeys(k), [this.#clock(), leaseMs, max, workerId]).catch(rethrow('claim'))
        const jobs = toJobs(reply, 1)
        if (jobs.length > 0 || blockMs <= 0) return jobs
        nextDue = reply[0] as number
      }
      probe = true
      const remaining = deadline - Date.now()
      if (remaining <= 0 || signal?.aborted === true || this.#refs === 0) return []
      // Nothing ready: block until a job arrives, the earliest delayed job is due, or time is up.
      const wait = nextDue !== undefined && nextDue >= 0 ? Math.max(1, Math.min(remaining, nextDue - this.#clock())) : remaining
      const element = await this.#blockingMove(queue, k, wait, signal)
      if (element === null) continue
      const job = fromElement(element)
      const activation = this.#run().claimBuffer(this.#claimKeys(k), [this.#clock(), leaseMs, max, workerId, element])
      if (job === undefined) {
        // A large payload lives in Redis only: it comes with the activation.
        const jobs = toJobs(await activation.catch(rethrow('claim')), 1)
        if (jobs.length > 0) return jobs
        continue
      }
      // The element holds the whole job: hand it over now, without waiting for the activation
      // (which records the claim and lease, and claims up to `max - 1` more jobs for the next
      // call). Until the activation is answered, this worker's settle calls carry the element and
      // activate it first if it still waits (see settle.lua), so a settlement cannot overtake its
      // activation, not even one sent again after NOSCRIPT. If the job is gone (cancelled
      // meanwhile), fencing ignores the settlement.
      const key = pairKey(queue, workerId)
      const unanswered = this.#unanswered.get(key) ?? new Set<Buffer>()
      this.#unanswered.set(key, unanswered)
      unanswered.add(element)
      const answered = activation.then((reply: Reply[]) => {
        const jobs = toJobs(reply, 1)
        const mine = jobs.findIndex(j => j.id === job.id && j.attempts === job.attempts)
        if (mine >= 0) jobs.splice(mine, 1)
        return { jobs, drained: jobs.length + (mine >= 0 ? 1 : 0) < max, nextDue: reply[0] as number }
      }, (err: unknown) => {
        this.#onError(storageError('claim', err))
        return { jobs: [], drained: false, nextDue: -1 }
      })
      this.#prefetched.set(key, { queue, workerId, answered })
      this.#activating.set(key, answered)
      answered.then(() => {
        if (this.#activating.get(key) === answered) this.#activating.delete(key)
        unanswered.delete(element)
        if (unanswered.size === 0 && this.#unanswered.get(key) === unanswered) this.#unanswered.delete(key)
      }, () => {})
      return [job]
    }
  }

  /**
   * The jobs a pipelined activation claimed for `workerId` beyond the BLMOVE'd one (at most
   * `max`; any more are handed back), and whether it found the queue drained.
   */
  async #takePrefetched (queue: string, workerId: string, max: number): Promise<ClaimedJob[]> {
    const key = pairKey(queue, workerId)
    const pending = this.#prefetched.get(key)
    if (pending === undefined) return []
    this.#prefetched.delete(key)
    const { jobs, drained, nextDue } = await pending.answered
    if (drained && jobs.length === 0) this.#drained.set(queue, nextDue)
    if (jobs.length > max) {
      const back = jobs.splice(max)
      await this.settle(queue, workerId, back.map(j => ({ type: 'release', id: j.id, attempt: j.attempts })), { max: 0, leaseMs: 0 })
    }
    return jobs
  }

  #claimKeys (k: QueueKeys): string[] {
    return [k.ready, k.jobs, k.elements, k.delayed, k.leases, k.claiming]
  }

  /**
   * BLMOVE ready → claiming on a connection of its own; resolves the moved id, or null on
   * timeout, abort (the connection is closed: nothing else can end a blocked command) or a
   * connection that stopped answering. An id moved just as the connection closes stays in
   * `claiming` until the reaper hands it back.
   */
  async #blockingMove (queue: string, k: QueueKeys, waitMs: number, signal: AbortSignal | undefined): Promise<Buffer | null> {
    const client = this.#client
    if (client === undefined) return null
    await this.#watch(queue, k)
    const connection = this.#blockers.pop() ?? this.#duplicate(client)
    this.#blocking.add(connection)
    const wait = this.#waits.get(queue) ?? { blocked: 0, at: Infinity, timer: undefined }
    this.#waits.set(queue, wait)
    wait.blocked++
    return await new Promise<Buffer | null>((resolve, reject) => {
      let settled = false
      const end = (element: Buffer | null, reuse: boolean, err?: unknown): void => {
        if (settled) return
        settled = true
        clearTimeout(guard)
        signal?.removeEventListener('abort', onAbort)
        wait.blocked--
        this.#blocking.delete(connection)
        if (reuse && this.#refs > 0) this.#blockers.push(connection)
        else connection.disconnect()
        if (err !== undefined && this.#refs > 0) reject(storageError('claim', err))
        else resolve(element)
      }
      const onAbort = (): void => end(null, false)
      const guard = setTimeout(() => end(null, false), waitMs + BLOCK_GUARD_MS)
      signal?.addEventListener('abort', onAbort, { once: true })
      connection.blmoveBuffer(k.ready, k.claiming, 'LEFT', 'RIGHT', (waitMs / 1000).toFixed(3)).then(
        element => end(element, true),
        err => end(null, false, err)
      )
    })
  }

  #duplicate (client: Redis | Cluster): Redis | Cluster {
    const connection = client.duplicate()
    connection.on('error', this.#onError)
    return connection
  }

  /**
   * Watches the queue's control channel while claims block on it: a `W<dueAt>` notice says a
   * delayed job became the earliest, so a timer promotes it when due, and the push to the ready
   * list wakes the BLMOVE. No polling.
   */
  #watch (queue: string, k: QueueKeys): Promise<unknown> {
    let watching = this.#watching.get(queue)
    if (watching === undefined) {
      watching = this.#subscribe(k.control, message => {
        if (message[0] !== 0x57) return // 'W'
        const at = Number(message.subarray(1).toString())
        const wait = this.#waits.get(queue)
        if (wait === undefined || wait.blocked === 0 || at >= wait.at) return
        clearTimeout(wait.timer)
        wait.at = at
        wait.timer = setTimeout(() => {
          wait.at = Infinity
          wait.timer = undefined
          this.#run().claim(this.#claimKeys(k), [this.#clock(), 1, 0, '']).catch(() => {})
        }, Math.max(0, at - this.#clock()))
        wait.timer.unref()
      })
      // A failed subscription is tried again by the next blocking claim.
      watching.catch(() => this.#watching.delete(queue))
      this.#watching.set(queue, watching)
    }
    return watching
  }

  /**
   * Resolves once the last activation sent for `workerId` was answered (at once if none is
   * pending). A heartbeat about its jobs must reach Redis after it: sent later on the same
   * connection it normally does, but an activation that failed with NOSCRIPT (scripts flushed:
   * SCRIPT FLUSH, a restart, a failover) goes out again as EVAL behind it. (Settle calls carry
   * the activation instead: they must not wait.)
   */
  #activated (queue: string, workerId: string): Promise<unknown> | undefined {
    return this.#activating.size === 0 ? undefined : this.#activating.get(pairKey(queue, workerId))
  }

  async settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<ClaimedJob[]> {
    const early = await this.#takePrefetched(queue, workerId, next.max)
    if (early.length > 0) {
      // Already claimed: settle what there is to settle, and claim only what is still missing.
      if (settlements.length === 0) return early
      return early.concat(await this.settle(queue, workerId, settlements, { max: next.max - early.length, leaseMs: next.leaseMs }))
    }
    const k = this.#keysOf(queue)
    const keys = [k.ready, k.jobs, k.elements, k.delayed, k.leases, k.waiters, k.errors, k.claiming]
    const args: Array<string | number | Buffer> = [this.#clock(), next.leaseMs, next.max, workerId, k.replyPrefix, k.control, this.#inline, k.donePrefixBytes, 0]
    const unanswered = this.#unanswered.size === 0 ? undefined : this.#unanswered.get(pairKey(queue, workerId))
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
    if (next.max > 0 && jobs.length < next.max) this.#drained.set(queue, reply[0] as number)
    else this.#drained.delete(queue)
    return jobs
  }

  async extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport> {
    if (ids.length === 0) return { lost: [], aborted: [] }
    const activated = this.#activated(queue, workerId)
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
          if (message[0] === 0x41) listener({ type: 'abort', id: message.subarray(1).toString() }) // 'A'
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
    const client = this.#client
    if (client === undefined) return Promise.reject(new StorageError('RedisStorage is not connected: call connect() first'))
    if (this.#subscriber === undefined) {
      const connection = client instanceof Redis ? client.duplicate({ autoResubscribe: false }) : client.duplicate()
      connection.on('error', this.#onError)
      this.#subscriber = new Subscriber(connection, () => {
        for (const gapListener of this.#gapListeners) gapListener({ type: 'gap' })
      })
    }
    return this.#subscriber.add(channel, listener).catch(rethrow('subscribe'))
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
    const client = this.#client as Redis | Cluster
    const keys = await scanKeys(client, k.donePattern).catch(rethrow('counts'))
    for (let i = 0; i < keys.length; i += ENQUEUE_CHUNK) {
      const pipeline = client.pipeline()
      for (const key of keys.slice(i, i + ENQUEUE_CHUNK)) pipeline.getrange(key, 0, 0)
      for (const [err, state] of await pipeline.exec().catch(rethrow('counts')) ?? []) {
        if (err === null && typeof state === 'string' && state.length > 0) counts[STATES[state] as 'completed' | 'failed' | 'cancelled']++
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

const SETTLEMENT_TYPES = { complete: 0x63, fail: 0x65, cancel: 0x78, retry: 0x72, release: 0x6c } as const // c e x r l

/** One settlement as settle.lua reads it: type byte, attempt and n (ttl or delay) as doubles, body. */
function settlementArg (s: Settlement): Buffer {
  const body = s.type === 'complete' ? s.result : s.type === 'fail' || s.type === 'retry' ? s.error : EMPTY
  const arg = Buffer.allocUnsafe(17 + body.length)
  arg[0] = SETTLEMENT_TYPES[s.type]
  arg.writeDoubleBE(s.attempt, 1)
  arg.writeDoubleBE(s.type === 'retry' ? s.delay : s.type === 'release' ? 0 : s.ttl, 9)
  body.copy(arg, 17)
  return arg
}

/** One key for a (queue, worker) pair; length-prefixed, so no two pairs share it whatever the names. */
function pairKey (queue: string, workerId: string): string {
  return `${queue.length}:${queue}${workerId}`
}

/** Reads claimed jobs from a script reply, 3 fields each (id, payload, active record), from `start`. */
function toJobs (reply: Reply[], start: number): ClaimedJob[] {
  const jobs: ClaimedJob[] = []
  for (let i = start; i < reply.length; i += 3) {
    const record = reply[i + 2] as Buffer
    jobs.push({
      id: (reply[i] as Buffer).toString(),
      payload: reply[i + 1] as Buffer ?? EMPTY,
      // Offsets of the active record, see src/scripts/_lib.lua (0-based here).
      attempts: record.readDoubleBE(1),
      maxAttempts: record.readDoubleBE(9),
      resultTTL: record.readDoubleBE(17),
      createdAt: record.readDoubleBE(25)
    })
  }
  return jobs
}

/** Payloads up to this size travel inside the ready list, so a BLMOVE delivers the whole job (bytes). */
const INLINE_PAYLOAD = 16_384

/**
 * A job's element (see src/scripts/_lib.lua), built here rather than in Lua because the client
 * has every field at hand: one argument per job, stored and pushed by the script as it is.
 */
function toElement (job: NewJob, now: number): Buffer {
  const idBytes = Buffer.byteLength(job.id)
  const element = Buffer.allocUnsafe(37 + idBytes + job.payload.length)
  element[0] = job.payload.length <= INLINE_PAYLOAD ? 0x45 : 0x52 // 'E' | 'R'
  element.writeDoubleBE(1, 1) // the first run is attempt 1
  element.writeDoubleBE(job.maxAttempts, 9)
  element.writeDoubleBE(job.resultTTL, 17)
  element.writeDoubleBE(now, 25)
  element.writeUInt32BE(idBytes, 33)
  element.write(job.id, 37)
  job.payload.copy(element, 37 + idBytes)
  return element
}

/** The job inside a ready element (see src/scripts/_lib.lua), or undefined when its payload was too large to be inside. */
function fromElement (element: Buffer): ClaimedJob | undefined {
  if (element[0] !== 0x45) return undefined // 'E'
  const idEnd = 37 + element.readUInt32BE(33)
  return {
    id: element.subarray(37, idEnd).toString(),
    payload: element.subarray(idEnd),
    attempts: element.readDoubleBE(1),
    maxAttempts: element.readDoubleBE(9),
    resultTTL: element.readDoubleBE(17),
    createdAt: element.readDoubleBE(25)
  }
}

/** A job's record from status.lua's reply (formats in src/scripts/_lib.lua). */
function toRecord (id: string, reply: Reply[]): JobRecord {
  const data = reply[1] as Buffer
  const state = STATES[String.fromCharCode(data[0])]
  const attempts = data.readDoubleBE(1)
  const maxAttempts = data.readDoubleBE(9)
  if ((reply[0] as Buffer)[0] === 0x41) { // 'A': active record, then the last error
    const error = reply[2] as Buffer
    return { id, state, attempts, maxAttempts, createdAt: data.readDoubleBE(25), ...(error.length > 0 && { error }) }
  }
  // Terminal: state, attempts, maxAttempts, createdAt, body.
  const body = data.subarray(25)
  const outcome = state === 'completed' ? { result: body } : state === 'failed' ? { error: body } : {}
  return { id, state, attempts, maxAttempts, createdAt: data.readDoubleBE(17), ...outcome }
}

/**
 * Decodes a reply-channel message: 'D' then one record per job (see `flush` in _lib.lua): state
 * (c e x, upper case when the body was left out), #id ':' id, #body ':' body. Lengths in bytes.
 */
function decodeDone (message: Buffer, listener: (notice: Notice) => void): void {
  if (message[0] !== 0x44) return // 'D'
  let at = 1
  while (at < message.length) {
    const state = message[at] | 0x20 // lower case
    const inline = message[at] === state
    const idColon = message.indexOf(0x3a, at + 1)
    const idEnd = idColon + 1 + Number(message.subarray(at + 1, idColon).toString())
    const bodyColon = message.indexOf(0x3a, idEnd)
    const bodyEnd = bodyColon + 1 + Number(message.subarray(idEnd, bodyColon).toString())
    if (idColon < 0 || bodyColon < 0 || bodyEnd > message.length) return // not ours: ignore the rest
    const id = message.subarray(idColon + 1, idEnd).toString()
    const body = message.subarray(bodyColon + 1, bodyEnd)
    at = bodyEnd
    if (state === 0x63) listener({ type: 'done', id, state: 'completed', ...(inline && { result: body }) }) // 'c'
    else if (state === 0x65) listener({ type: 'done', id, state: 'failed', ...(inline && { error: body }) }) // 'e'
    else listener({ type: 'done', id, state: 'cancelled' })
  }
}

/** Every key matching `pattern`, on every master (a queue's keys live on one). */
async function scanKeys (client: Redis | Cluster, pattern: string): Promise<string[]> {
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

function rethrow (operation: string): (err: unknown) => never {
  return err => { throw storageError(operation, err) }
}
