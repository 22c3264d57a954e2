import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'iovalkey'
import { DEFAULT_MAX_VALUE_BYTES } from '../bytes.ts'
import { InvalidArgumentError, StorageError } from '../errors.ts'
import { checkLogger } from '../logger.ts'
import { checkClock, checkStorageOptions, DEFAULTS, isWellFormed, MAX_TIMER_MS, optInt } from '../options.ts'
import type { Logger } from '../types.ts'
import { traceToStore } from '../trace-context.ts'
import { RedisAdmin } from './redis/admin.ts'
import { BlockingClaims } from './redis/claims.ts'
import { CONTROL, decodeDone, groupBlock, JOB_FLAGS, settlementArg, toElement, toJobs, toOutcomes, toRecord } from './redis/codec.ts'
import { Connection, maxBulkLength, notConnected, rethrow, storageError, within } from './redis/connection.ts'
import { PrefixKeys, QueueKeys } from './redis/keys.ts'
import { SharedOpen } from './shared-open.ts'
import type { Reply, Scripts } from './redis/scripts.ts'
import type {
  AbortOutcome, AdminAction, AdminStorage, ApplyOptions, ApplyOutcome, BlockingClaimOptions, CancelOutcome, ClaimOptions,
  ClaimedJob, EnqueueOutcome, ErrorGroup, FailureGroup, JobDetail, JobPage, JobQuery, JobRecord, JobTarget, LeaseReport,
  NewJob, Notice, QueueOverview, QueueSummary, RecoveryOutcome, Retention, Settlement, SettleResult, StateCounts,
  UpdateTTLOutcome, WorkerEntry, WorkerInfo
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
  /** First part of every key's hash tag: `{<keyPrefix>:<queue>}:...` (escaped: see the README). @default 'relayq' */
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
  /**
   * Longest `connect()` takes, in ms, TCP and handshake included (a server that accepts and never
   * answers, or is frozen): past it, it rejects with StorageError. Also iovalkey's `connectTimeout`
   * for the connections relayq creates, unless `redisOptions` sets one. @default 10000
   */
  connectTimeout?: number
  /**
   * Longest wait for the answer to one call, in ms: past it, the call rejects with a (retryable)
   * StorageError. Blocking claims wait `blockTimeout` instead, with a guard of their own. @default 10000
   */
  commandTimeout?: number
}

const REDIS_OPTIONS = [
  'url', 'host', 'port', 'client', 'cluster', 'keyPrefix', 'redisOptions', 'clusterOptions', 'inlineLimit', 'clock', 'logger',
  'connectTimeout', 'commandTimeout'
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
/** Bytes of an argument that are not the value: the longest id (1024 bytes) and the job's fields, with room to spare. */
const VALUE_OVERHEAD = 4096
/** How long a BLMOVE'd id may wait in `claiming` before the reaper takes it back as a stalled attempt (ms); see recover.lua. */
const CLAIM_GRACE_MS = 1000
/** Most history entries one reaper pass trims or deletes: bounds its run time. */
const TIDY_BUDGET = 1000

/**
 * Redis, Valkey and Redis Cluster. Each operation is one Lua script (one round trip) over keys
 * that share the queue's hash tag; an idle consumer blocks in BLMOVE (see redis/claims.ts);
 * request/response uses one subscriber connection per instance, with small results inside the
 * notice. The operator's side (history, indexes, actions) is in redis/admin.ts.
 *
 * @example
 * const storage = new RedisStorage({ url: 'redis://127.0.0.1:6379' })
 * const queue = new Queue({ storage, concurrency: 50 })
 */
export class RedisStorage extends EventEmitter<RedisStorageEvents> implements AdminStorage {
  readonly #options: RedisStorageOptions
  readonly #prefix: PrefixKeys
  readonly #clock: () => number
  readonly #inline: number
  readonly #commandTimeout: number
  /** This instance's waiter token: its reply channels end with it (36 characters, see _lib.lua). */
  readonly #token = randomUUID()
  readonly #keys = new Map<string, QueueKeys>()
  /** Listeners told about `gap`s (lost subscriptions). */
  readonly #gapListeners = new Set<(notice: Notice) => void>()
  readonly #claims: BlockingClaims
  readonly #admin: RedisAdmin
  readonly #life: SharedOpen
  #maxBulk = DEFAULT_MAX_VALUE_BYTES
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
    const connectTimeout = optInt('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout, 1, MAX_TIMER_MS)
    this.#commandTimeout = optInt('commandTimeout', options.commandTimeout, DEFAULTS.commandTimeout, 1, MAX_TIMER_MS)
    // The logger is guarded: one that throws never breaks a connection handler.
    this.#options = { ...options, connectTimeout, logger: checkLogger(options.logger) }
    this.#prefix = new PrefixKeys(prefix)
    this.#clock = checkClock(options.clock)
    this.#inline = inline
    this.#claims = new BlockingClaims({
      connection: () => this.#connection,
      open: () => this.#life.isOpen,
      keysOf: queue => this.#keysOf(queue),
      clock: this.#clock,
      subscribe: (channel, listener) => this.#subscribe(channel, listener),
      report: this.#report,
      release: (queue, workerId, jobs) =>
        this.settle(queue, workerId, jobs.map(j => ({ type: 'release', id: j.id, attempt: j.attempts })), { max: 0, leaseMs: 0 })
    })
    const timeout = connectTimeout
    this.#life = new SharedOpen(
      () => within(this.#open(), timeout, `Redis did not answer within connectTimeout (${timeout} ms)`),
      () => { this.#close() },
      err => storageError('connect', err),
      // Jobs claimed ahead for a consumer that is gone now: back to the queue, attempt not counted.
      () => this.#claims.releaseAll()
    )
    this.#admin = new RedisAdmin({
      connection: () => this.#connection,
      scripts: () => this.#run(),
      keysOf: queue => this.#keysFor(queue),
      prefix: this.#prefix,
      clock: this.#clock,
      inline,
      register: queue => this.#register(queue)
    })
  }

  connect (): Promise<void> {
    return this.#life.acquire()
  }

  async disconnect (): Promise<void> {
    await this.#life.release()
  }

  async #open (): Promise<void> {
    const connection = new Connection(this.#options, this.#report, this.#commandTimeout)
    this.#connection = connection
    await connection.open()
    this.#maxBulk = await maxBulkLength(connection.client, connection.track)
  }

  /**
   * The largest payload, result or error stored, in bytes: the server's `proto-max-bulk-len` (read
   * at connect; 512 MiB by default, and when the server will not say) less room for the id and the
   * job's fields, which travel in the same argument.
   */
  get maxValueBytes (): number {
    return this.#maxBulk - VALUE_OVERHEAD
  }

  /** Closes every connection this instance made (not a client the user gave). */
  /** Ends what `#open` started; after a failed open too. */
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

  /** The keys of `queue`, for a command that must follow the activations this instance deferred (see BlockingClaims). */
  #keysFor (queue: string): QueueKeys {
    this.#claims.flush(queue)
    return this.#keysOf(queue)
  }

  #keysOf (queue: string): QueueKeys {
    let keys = this.#keys.get(queue)
    if (keys === undefined) {
      keys = new QueueKeys(this.#prefix, queue)
      this.#keys.set(queue, keys)
    }
    return keys
  }

  /** Queues this instance has added to the registry (SET `queues`), or is adding: each is added once. */
  readonly #registered = new Map<string, Promise<unknown> | true>()

  /**
   * Adds a queue to the registry before something is stored in it (undefined once it was). A
   * command of its own: the registry lives in the instance's slot, not the queue's.
   */
  #register (queue: string): Promise<unknown> | undefined {
    const known = this.#registered.get(queue)
    if (known === true) return undefined
    if (known !== undefined) return known
    const connection = this.#connection
    if (connection === undefined) return undefined
    const adding = connection.track(connection.client.sadd(this.#prefix.queues, queue)).then(() => {
      this.#registered.set(queue, true)
    }, (err: unknown) => {
      this.#registered.delete(queue)
      throw storageError('register', err)
    })
    this.#registered.set(queue, adding)
    return adding
  }

  async enqueue (queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    if (jobs.length === 0) return []
    const k = this.#keysFor(queue)
    // The first enqueue of a queue also adds it to the registry, in the same flight.
    const registering = this.#register(queue)
    if (registering !== undefined) return (await Promise.all([this.#enqueueAll(k, jobs), registering]))[0]
    return await this.#enqueueAll(k, jobs)
  }

  #enqueueAll (k: QueueKeys, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    if (jobs.length <= ENQUEUE_CHUNK) return this.#enqueue(k, jobs)
    // One script per chunk, sent back to back on one connection: applied in order, one flight.
    const parts: Array<Promise<EnqueueOutcome[]>> = []
    for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) parts.push(this.#enqueue(k, jobs.slice(i, i + ENQUEUE_CHUNK)))
    return Promise.all(parts).then(outcomes => outcomes.flat())
  }

  async #enqueue (k: QueueKeys, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    const now = this.#clock()
    const flags = Buffer.alloc(jobs.length)
    const args: Array<string | number | Buffer> = [now, this.#token, k.control, flags]
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]
      if (job.notify === true) flags[i] = JOB_FLAGS.notify
      const trace = traceToStore(job)
      if (trace !== undefined) flags[i] |= JOB_FLAGS.traced
      args.push(toElement(job, now, trace))
    }
    const reply: Reply[] | number = await this.#run().enqueueBuffer(k.for('enqueue'), args).catch(rethrow('enqueue'))
    return toOutcomes(reply, jobs.length)
  }

  claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    return this.#claims.claim(queue, workerId, options)
  }

  async settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<SettleResult> {
    const early = await this.#claims.takePrefetched(queue, workerId, next.max)
    if (early.length > 0) {
      // Already claimed: settle what there is to settle, and claim only what is still missing.
      if (settlements.length === 0) return { jobs: early, refused: [] }
      const rest = await this.settle(queue, workerId, settlements, { max: next.max - early.length, leaseMs: next.leaseMs })
      return { jobs: early.concat(rest.jobs), refused: rest.refused }
    }
    const k = this.#keysOf(queue)
    const args: Array<string | number | Buffer> = [this.#clock(), next.leaseMs, next.max, workerId, k.replyPrefix, k.control, this.#inline, 0]
    const carried = this.#claims.carry(queue, workerId)
    if (carried !== undefined) {
      args[7] = carried.elements.length
      for (const element of carried.elements) args.push(element)
    }
    for (const s of settlements) args.push(s.id, settlementArg(s))
    let reply: Reply[]
    try {
      reply = await this.#run().settleBuffer(k.for('settle'), args)
    } catch (err) {
      carried?.done(false)
      return rethrow('settle')(err)
    }
    carried?.done(true)
    const jobs = toJobs(reply, 2)
    this.#claims.settled(queue, next.max, jobs.length, reply[0] as number)
    return { jobs, refused: reply[1] as number[] }
  }

  async extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport> {
    if (ids.length === 0) return { lost: [], aborted: [] }
    const activated = this.#claims.activated(queue, workerId)
    if (activated !== undefined) await activated
    const k = this.#keysFor(queue)
    const [lost, aborted]: [string[], string[]] = await this.#run().extend(k.for('extend'), [this.#clock(), leaseMs, workerId, ...ids]).catch(rethrow('extendLeases'))
    return { lost, aborted }
  }

  cancel (queue: string, id: string): Promise<CancelOutcome> {
    return this.#cancel(queue, id, 'cancel', 0) as Promise<CancelOutcome>
  }

  abort (queue: string, id: string, ttl: number): Promise<AbortOutcome> {
    return this.#cancel(queue, id, 'abort', ttl) as Promise<AbortOutcome>
  }

  async #cancel (queue: string, id: string, mode: 'cancel' | 'abort', ttl: number): Promise<CancelOutcome | AbortOutcome> {
    const k = this.#keysFor(queue)
    return await this.#run().cancel(k.for('cancel'), [id, mode, ttl, k.replyPrefix, k.control, this.#inline, this.#clock()]).catch(rethrow(mode))
  }

  async getStatus (queue: string, id: string): Promise<JobRecord | null> {
    const k = this.#keysFor(queue)
    const reply: Reply[] = await this.#run().statusBuffer(k.for('status'), [id, this.#clock()]).catch(rethrow('getStatus'))
    return reply.length === 0 ? null : toRecord(id, reply)
  }

  async updateResultTTL (queue: string, id: string, ttl: number): Promise<UpdateTTLOutcome> {
    const k = this.#keysFor(queue)
    return await this.#run().ttl(k.for('ttl'), [id, ttl, this.#clock()]).catch(rethrow('updateResultTTL'))
  }

  async subscribe (queue: string, listener: (notice: Notice) => void, type?: Notice['type']): Promise<() => Promise<void>> {
    const k = this.#keysFor(queue)
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

  async recoverStalled (queue: string, maxStalls: number, error: Buffer, group?: ErrorGroup): Promise<RecoveryOutcome> {
    const k = this.#keysFor(queue)
    const [requeued, failed]: [string[], string[]] = await this.#run().recover(k.for('recover'), [
      this.#clock(), maxStalls, CLAIM_GRACE_MS, k.replyPrefix, this.#inline, error, groupBlock(group), TIDY_BUDGET
    ]).catch(rethrow('recoverStalled'))
    return { requeued, failed }
  }

  async acquireLock (name: string, owner: string, ttl: number): Promise<boolean> {
    return await this.#run().lock([this.#prefix.lock(name)], [owner, ttl]).catch(rethrow('acquireLock')) === 1
  }

  async releaseLock (name: string, owner: string): Promise<void> {
    await this.#run().unlock([this.#prefix.lock(name)], [owner]).catch(rethrow('releaseLock'))
  }

  /** Number of jobs per state, O(log n): terminal states count the jobs in history. */
  async counts (queue: string): Promise<StateCounts> {
    return (await this.#admin.overview(queue)).counts
  }

  /**
   * Deletes every key under the key prefix (SCAN and UNLINK in batches, on every master of a
   * cluster; never FLUSHDB). Resolves and does nothing when not connected.
   */
  async clear (): Promise<void> {
    this.#registered.clear()
    await this.#admin.clear()
  }

  async heartbeat (queue: string, worker: WorkerInfo, ttl: number): Promise<void> {
    await this.#admin.heartbeat(queue, worker, ttl)
  }

  queues (): Promise<QueueSummary[]> {
    return this.#admin.queues()
  }

  overview (queue: string): Promise<QueueOverview> {
    return this.#admin.overview(queue)
  }

  listJobs (queue: string, query: JobQuery): Promise<JobPage> {
    return this.#admin.listJobs(queue, query)
  }

  getJob (queue: string, id: string): Promise<JobDetail | null> {
    return this.#admin.getJob(queue, id)
  }

  apply (queue: string, action: AdminAction, target: JobTarget, options: ApplyOptions): Promise<ApplyOutcome> {
    return this.#admin.apply(queue, action, target, options)
  }

  setPaused (queue: string, paused: boolean): Promise<void> {
    return this.#admin.setPaused(queue, paused)
  }

  setRetention (queue: string, retention: Retention): Promise<void> {
    return this.#admin.setRetention(queue, retention)
  }

  failureGroups (queue: string, limit: number): Promise<FailureGroup[]> {
    return this.#admin.failureGroups(queue, limit)
  }

  workers (queue: string): Promise<WorkerEntry[]> {
    return this.#admin.workers(queue)
  }

  /** The Redis keys of a queue as this storage names them (for operators and tests). */
  keysOf (queue: string): { all: string[] } {
    return { all: this.#keysOf(queue).all }
  }
}
