import type {
  AbortOutcome, AdminAction, AdminStorage, ApplyOptions, ApplyOutcome, BlockingClaimOptions, CancelOutcome, ClaimOptions,
  ClaimedJob, EnqueueOutcome, ErrorGroup, FailureGroup, JobDetail, JobPage, JobQuery, JobRecord, JobTarget, LeaseReport,
  NewJob, Notice, QueueOverview, QueueSummary, RecoveryOutcome, Retention, SettleResult, Settlement, StateCounts,
  UpdateTTLOutcome, WorkerEntry, WorkerInfo
} from './types.ts'
import { compareIds } from './job-record.ts'
import { QueueState } from './queue-state.ts'
import { QueueDriver } from './queue-driver.ts'
import { failureGroups, getJob, listJobs, overview, summary } from './queue-admin.ts'
import { checkLogger } from '../logger.ts'
import { checkClock, checkStorageOptions, MAX_TIMER_MS, optInt } from '../options.ts'
import type { Logger } from '../types.ts'

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions {
  /** Source of the current time in epoch ms. @default Date.now */
  clock?: () => number
  /** How often expired terminal records are swept from memory, in ms (an integer from 1). @default 1000 */
  sweepInterval?: number
  /** A pino-style logger: connect and disconnect at `debug`. @default silent */
  logger?: Logger
}

const MEMORY_OPTIONS = ['clock', 'sweepInterval', 'logger'] as const

/** One queue name: its jobs, and the driver that delivers its notices and wakes its parked claims. */
interface Space {
  /** Replaced by `clear()`. */
  state: QueueState
  readonly driver: QueueDriver
}

/**
 * The token of the one instance that holds the jobs: every job enqueued with `notify` waits for it,
 * so its `done` notice reaches this storage's subscribers.
 */
const SELF = 1

/**
 * The embedded default: all state in this process's memory, no polling (blocked claims wake on
 * enqueue or when a delayed job falls due), real TTL expiry, one namespace per queue name.
 * Every operation costs O(1) or O(log n) in the queue depth.
 *
 * The job semantics are the file backend's {@link QueueState}, applied directly instead of
 * replayed from a log; the same {@link QueueDriver} delivers notices and wakes parked claims.
 */
export class MemoryStorage implements AdminStorage {
  readonly #spaces = new Map<string, Space>()
  readonly #locks = new Map<string, { owner: string, until: number }>()
  readonly #clock: () => number
  readonly #sweepInterval: number
  readonly #logger: Logger
  #refs = 0
  #sweeper: ReturnType<typeof setInterval> | undefined

  /** @throws InvalidArgumentError for an invalid or unknown option. */
  constructor (options: MemoryStorageOptions = {}) {
    const o = checkStorageOptions('MemoryStorage', options, MEMORY_OPTIONS)
    this.#clock = checkClock(o.clock)
    this.#sweepInterval = optInt('sweepInterval', o.sweepInterval, 1000, 1, MAX_TIMER_MS)
    this.#logger = checkLogger(o.logger)
  }

  /** Records held in memory across all queues, expired ones not yet swept included. */
  get size (): number {
    let n = 0
    for (const space of this.#spaces.values()) n += space.state.size
    return n
  }

  async connect (): Promise<void> {
    if (this.#refs++ > 0) return
    this.#sweeper = setInterval(() => this.#sweep(), this.#sweepInterval)
    this.#sweeper.unref()
    this.#logger.debug({ component: 'memory-storage' }, 'MemoryStorage connected')
  }

  async disconnect (): Promise<void> {
    if (this.#refs === 0 || --this.#refs > 0) return
    this.#logger.debug({ component: 'memory-storage' }, 'MemoryStorage disconnected')
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const space of this.#spaces.values()) space.driver.close()
  }

  async enqueue (queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    if (jobs.length === 0) return []
    const space = this.#space(queue)
    const outcomes = space.state.enqueue(this.#clock(), SELF, jobs)
    space.driver.run()
    return outcomes
  }

  claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    const space = this.#space(queue)
    const jobs = space.state.claim(this.#clock(), workerId, options.max, options.leaseMs)
    if (jobs.length > 0 || options.blockMs <= 0 || this.#refs === 0 || options.signal?.aborted === true) {
      return Promise.resolve(jobs)
    }
    return space.driver.park(workerId, options)
  }

  async settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<SettleResult> {
    const space = this.#space(queue)
    const now = this.#clock()
    const refused = space.state.settle(now, workerId, settlements)
    const jobs = next.max > 0 ? space.state.claim(now, workerId, next.max, next.leaseMs) : []
    space.driver.run()
    return { jobs, refused }
  }

  async extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport> {
    return this.#space(queue).state.extend(this.#clock(), workerId, ids, leaseMs)
  }

  async cancel (queue: string, id: string): Promise<CancelOutcome> {
    const space = this.#spaces.get(queue)
    if (space === undefined) return 'not_found'
    const outcome = space.state.cancel(this.#clock(), id)
    space.driver.run()
    return outcome
  }

  async abort (queue: string, id: string, ttl: number): Promise<AbortOutcome> {
    const space = this.#spaces.get(queue)
    if (space === undefined) return 'not_found'
    const outcome = space.state.abort(this.#clock(), id, ttl)
    space.driver.run()
    return outcome
  }

  async getStatus (queue: string, id: string): Promise<JobRecord | null> {
    return this.#spaces.get(queue)?.state.status(id, this.#clock()) ?? null
  }

  async updateResultTTL (queue: string, id: string, ttl: number): Promise<UpdateTTLOutcome> {
    return this.#spaces.get(queue)?.state.updateTTL(this.#clock(), id, ttl) ?? 'not_found'
  }

  async subscribe (queue: string, listener: (notice: Notice) => void, type?: Notice['type']): Promise<() => Promise<void>> {
    // This backend never loses notices, so it never sends `gap`.
    const unsubscribe = this.#space(queue).driver.subscribe(listener, type)
    return async () => unsubscribe()
  }

  async recoverStalled (queue: string, maxStalls: number, error: Buffer, group?: ErrorGroup): Promise<RecoveryOutcome> {
    const space = this.#spaces.get(queue)
    if (space === undefined) return { requeued: [], failed: [] }
    const outcome = space.state.recover(this.#clock(), maxStalls, error, group)
    space.driver.run()
    return outcome
  }

  async acquireLock (name: string, owner: string, ttl: number): Promise<boolean> {
    const now = this.#clock()
    const lock = this.#locks.get(name)
    if (lock !== undefined && lock.until > now && lock.owner !== owner) return false
    this.#locks.set(name, { owner, until: now + ttl })
    return true
  }

  async releaseLock (name: string, owner: string): Promise<void> {
    if (this.#locks.get(name)?.owner === owner) this.#locks.delete(name)
  }

  async counts (queue: string): Promise<StateCounts> {
    return summary(queue, this.#spaces.get(queue)?.state, this.#clock()).counts
  }

  async clear (): Promise<void> {
    if (this.#refs === 0) return
    for (const space of this.#spaces.values()) {
      space.state = new QueueState(SELF)
      space.driver.run()
    }
    this.#locks.clear()
  }

  async heartbeat (queue: string, worker: WorkerInfo, ttl: number): Promise<void> {
    const space = ttl > 0 ? this.#space(queue) : this.#spaces.get(queue)
    space?.state.heartbeat(this.#clock(), worker, ttl)
  }

  async queues (): Promise<QueueSummary[]> {
    const now = this.#clock()
    const names = [...this.#spaces.keys()].filter(name => !(this.#spaces.get(name) as Space).state.empty).sort(compareIds)
    return names.map(name => summary(name, this.#spaces.get(name)?.state, now))
  }

  async overview (queue: string): Promise<QueueOverview> {
    return overview(this.#spaces.get(queue)?.state ?? new QueueState(SELF), this.#clock())
  }

  async listJobs (queue: string, query: JobQuery): Promise<JobPage> {
    return listJobs(this.#spaces.get(queue)?.state, query, this.#clock())
  }

  async getJob (queue: string, id: string): Promise<JobDetail | null> {
    return getJob(this.#spaces.get(queue)?.state, id, this.#clock())
  }

  async apply (queue: string, action: AdminAction, target: JobTarget, options: ApplyOptions): Promise<ApplyOutcome> {
    const space = this.#spaces.get(queue)
    const state = space?.state ?? new QueueState(SELF)
    const outcome = state.apply(this.#clock(), action, target, options.limit, options.dryRun)
    space?.driver.run()
    return outcome
  }

  async setPaused (queue: string, paused: boolean): Promise<void> {
    const space = this.#space(queue)
    space.state.setPaused(paused)
    space.driver.run()
  }

  async setRetention (queue: string, retention: Retention): Promise<void> {
    this.#space(queue).state.setRetention(this.#clock(), retention)
  }

  async failureGroups (queue: string, limit: number): Promise<FailureGroup[]> {
    return failureGroups(this.#spaces.get(queue)?.state, limit, this.#clock())
  }

  async workers (queue: string): Promise<WorkerEntry[]> {
    return this.#spaces.get(queue)?.state.workers(this.#clock()) ?? []
  }

  #space (queue: string): Space {
    let space = this.#spaces.get(queue)
    if (space === undefined) {
      const created: Space = {
        state: new QueueState(SELF),
        driver: new QueueDriver({
          state: () => created.state,
          claim: (w, now) => created.state.claim(now, w.workerId, w.max, w.leaseMs),
          due: () => created.driver.run(),
          clock: this.#clock
        })
      }
      space = created
      this.#spaces.set(queue, space)
    }
    return space
  }

  /** Frees terminal records whose TTL has passed, also in queues nobody touches. */
  #sweep (): void {
    const now = this.#clock()
    for (const space of this.#spaces.values()) space.state.advance(now)
  }
}
