import type {
  AbortOutcome, ActiveState, BlockingClaimOptions, CancelOutcome, ClaimOptions, ClaimedJob, EnqueueOutcome,
  JobRecord, JobState, LeaseReport, NewJob, Notice, RecoveryOutcome, Settlement, StateCounts, Storage, TerminalState,
  UpdateTTLOutcome
} from './types.ts'
import { blockClaim, endClaim, type BlockedClaim } from './blocked-claim.ts'
import { Deque } from '../util/deque.ts'
import { MinHeap } from '../util/heap.ts'

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions {
  /** Source of the current time in epoch ms. @default Date.now */
  clock?: () => number
  /** How often expired terminal records are swept from memory, in ms. @default 1000 */
  sweepInterval?: number
}

/**
 * One job. Mutable on purpose: it is the single source of truth inside one process. It is also
 * handed to claimers as their ClaimedJob (no copy per claim): consumers read `attempts` when they
 * receive it, before any later claim could change it.
 */
interface Rec extends ClaimedJob {
  readonly id: string
  payload: Buffer
  readonly createdAt: number
  readonly resultTTL: number
  state: JobState
  attempts: number
  maxAttempts: number
  stalls: number
  /** Epoch ms when a delayed/failing job becomes ready. */
  dueAt: number
  /** Epoch ms when a processing job's lease expires. */
  leaseUntil: number
  worker: string
  cancelRequested: boolean
  /** Epoch ms when a terminal record disappears. */
  expiresAt: number
  result: Buffer | undefined
  error: Buffer | undefined
}

/** The state of one queue name. */
class Space {
  readonly jobs = new Map<string, Rec>()
  /** Ready jobs in claim order. Entries whose record left `queued` are skipped lazily. */
  readonly ready = new Deque<Rec>()
  /** Delayed and failing jobs by due time (lazy deletion, checked on pop). */
  readonly delayed = new MinHeap<Rec>()
  /** Processing jobs, for the reaper. */
  readonly processing = new Set<Rec>()
  /** Terminal records by expiry (lazy deletion: a changed `expiresAt` re-pushes). */
  readonly expiries = new MinHeap<Rec>()
  readonly waiters = new Deque<BlockedClaim>()
  readonly listeners = new Set<(notice: Notice) => void>()
  promoteTimer: ReturnType<typeof setTimeout> | undefined
  promoteAt = Infinity
}

const TERMINAL = new Set<JobState>(['completed', 'failed', 'cancelled'])

/**
 * The embedded default: all state in this process's memory, no polling (blocked claims wake on
 * enqueue or when a delayed job falls due), real TTL expiry, one namespace per queue name.
 * Every operation costs O(1) or O(log n) in the queue depth.
 */
export class MemoryStorage implements Storage {
  readonly #spaces = new Map<string, Space>()
  readonly #locks = new Map<string, { owner: string, until: number }>()
  readonly #clock: () => number
  readonly #sweepInterval: number
  #refs = 0
  #sweeper: ReturnType<typeof setInterval> | undefined

  constructor (options: MemoryStorageOptions = {}) {
    this.#clock = options.clock ?? Date.now
    this.#sweepInterval = options.sweepInterval ?? 1000
  }

  /** Records held in memory across all queues, expired ones not yet swept included. */
  get size (): number {
    let n = 0
    for (const space of this.#spaces.values()) n += space.jobs.size
    return n
  }

  async connect (): Promise<void> {
    if (this.#refs++ > 0) return
    this.#sweeper = setInterval(() => this.#sweep(), this.#sweepInterval)
    this.#sweeper.unref()
  }

  async disconnect (): Promise<void> {
    if (this.#refs === 0 || --this.#refs > 0) return
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const space of this.#spaces.values()) {
      clearTimeout(space.promoteTimer)
      space.promoteTimer = undefined
      space.promoteAt = Infinity
      let waiter: BlockedClaim | undefined
      while ((waiter = space.waiters.shift()) !== undefined) endClaim(waiter, [])
    }
  }

  async enqueue (queue: string, jobs: readonly NewJob[]): Promise<EnqueueOutcome[]> {
    const space = this.#space(queue)
    const now = this.#clock()
    const outcomes: EnqueueOutcome[] = new Array(jobs.length)
    let added = false
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]
      const existing = this.#live(space, job.id, now)
      if (existing !== undefined) {
        outcomes[i] = existingOutcome(existing)
        continue
      }
      const rec: Rec = {
        id: job.id,
        payload: job.payload,
        createdAt: now,
        maxAttempts: job.maxAttempts,
        resultTTL: job.resultTTL,
        state: 'queued',
        attempts: 0,
        stalls: 0,
        dueAt: 0,
        leaseUntil: 0,
        worker: '',
        cancelRequested: false,
        expiresAt: Infinity,
        result: undefined,
        error: undefined
      }
      space.jobs.set(job.id, rec)
      if (job.delay > 0) {
        rec.state = 'delayed'
        this.#schedule(space, rec, now + job.delay)
      } else {
        space.ready.push(rec)
        added = true
      }
      outcomes[i] = QUEUED
    }
    if (added) this.#wake(space, now)
    return outcomes
  }

  claim (queue: string, workerId: string, options: BlockingClaimOptions): Promise<ClaimedJob[]> {
    const space = this.#space(queue)
    const now = this.#clock()
    this.#promote(space, now)
    const jobs = this.#take(space, workerId, options.max, options.leaseMs, now)
    if (jobs.length > 0 || options.blockMs <= 0 || this.#refs === 0 || options.signal?.aborted === true) {
      return Promise.resolve(jobs)
    }
    return blockClaim(workerId, options, claim => space.waiters.push(claim), claim => {
      // Rebuild without this claim; the list is as short as the number of idle consumers.
      const rest: BlockedClaim[] = []
      let w: BlockedClaim | undefined
      while ((w = space.waiters.shift()) !== undefined) if (w !== claim) rest.push(w)
      for (const r of rest) space.waiters.push(r)
    })
  }

  async settle (queue: string, workerId: string, settlements: readonly Settlement[], next: ClaimOptions): Promise<ClaimedJob[]> {
    const space = this.#space(queue)
    const now = this.#clock()
    for (let i = 0; i < settlements.length; i++) this.#apply(space, workerId, settlements[i], now)
    if (next.max <= 0) return []
    this.#promote(space, now)
    return this.#take(space, workerId, next.max, next.leaseMs, now)
  }

  async extendLeases (queue: string, workerId: string, ids: readonly string[], leaseMs: number): Promise<LeaseReport> {
    const space = this.#space(queue)
    const until = this.#clock() + leaseMs
    const lost: string[] = []
    const aborted: string[] = []
    for (const id of ids) {
      const rec = space.jobs.get(id)
      if (rec === undefined || rec.state !== 'processing' || rec.worker !== workerId) {
        lost.push(id)
        continue
      }
      rec.leaseUntil = until
      if (rec.cancelRequested) aborted.push(id)
    }
    return { lost, aborted }
  }

  async cancel (queue: string, id: string): Promise<CancelOutcome> {
    const space = this.#space(queue)
    const rec = this.#live(space, id, this.#clock())
    if (rec === undefined) return 'not_found'
    if (TERMINAL.has(rec.state)) return 'completed'
    if (rec.state === 'processing') return 'processing'
    this.#remove(space, rec)
    this.#publish(space, { type: 'done', id, state: 'cancelled' })
    return 'cancelled'
  }

  async abort (queue: string, id: string, ttl: number): Promise<AbortOutcome> {
    const space = this.#space(queue)
    const now = this.#clock()
    const rec = this.#live(space, id, now)
    if (rec === undefined) return 'not_found'
    if (TERMINAL.has(rec.state)) return 'completed'
    if (rec.state === 'processing') {
      rec.cancelRequested = true
      this.#publish(space, { type: 'abort', id })
      return 'aborting'
    }
    // Not running: end it cancelled right away, keeping the record so waiters and status see why.
    this.#terminate(space, rec, 'cancelled', undefined, undefined, ttl, now)
    return 'cancelled'
  }

  async getStatus (queue: string, id: string): Promise<JobRecord | null> {
    const rec = this.#live(this.#space(queue), id, this.#clock())
    if (rec === undefined) return null
    return {
      id: rec.id,
      state: rec.state,
      createdAt: rec.createdAt,
      attempts: rec.attempts,
      maxAttempts: rec.maxAttempts,
      ...(rec.result !== undefined && { result: rec.result }),
      ...(rec.error !== undefined && { error: rec.error })
    }
  }

  async updateResultTTL (queue: string, id: string, ttl: number): Promise<UpdateTTLOutcome> {
    const space = this.#space(queue)
    const now = this.#clock()
    const rec = this.#live(space, id, now)
    if (rec === undefined) return 'not_found'
    if (!TERMINAL.has(rec.state)) return 'not_terminal'
    rec.expiresAt = now + ttl
    space.expiries.push(rec.expiresAt, rec)
    return 'updated'
  }

  async subscribe (queue: string, listener: (notice: Notice) => void, type?: Notice['type']): Promise<() => Promise<void>> {
    const space = this.#space(queue)
    // Wrap so that the same function subscribed twice gets two independent subscriptions.
    // (This backend never loses notices, so it never sends `gap`.)
    const entry = type === undefined
      ? (notice: Notice): void => listener(notice)
      : (notice: Notice): void => { if (notice.type === type) listener(notice) }
    space.listeners.add(entry)
    return async () => { space.listeners.delete(entry) }
  }

  async recoverStalled (queue: string, maxStalls: number, error: Buffer): Promise<RecoveryOutcome> {
    const space = this.#space(queue)
    const now = this.#clock()
    const requeued: string[] = []
    const failed: string[] = []
    for (const rec of space.processing) {
      if (rec.leaseUntil > now) continue
      rec.stalls++
      if (rec.cancelRequested) {
        this.#terminate(space, rec, 'cancelled', undefined, undefined, rec.resultTTL, now)
      } else if (rec.attempts >= rec.maxAttempts || rec.stalls > maxStalls) {
        this.#terminate(space, rec, 'failed', undefined, error, rec.resultTTL, now)
        failed.push(rec.id)
      } else {
        space.processing.delete(rec)
        rec.state = 'queued'
        rec.worker = ''
        space.ready.push(rec)
        requeued.push(rec.id)
      }
    }
    if (requeued.length > 0) this.#wake(space, now)
    return { requeued, failed }
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
    const space = this.#space(queue)
    const now = this.#clock()
    const counts: StateCounts = { queued: 0, delayed: 0, processing: 0, failing: 0, completed: 0, failed: 0, cancelled: 0 }
    for (const rec of space.jobs.values()) if (rec.expiresAt > now) counts[rec.state]++
    return counts
  }

  #space (queue: string): Space {
    let space = this.#spaces.get(queue)
    if (space === undefined) {
      space = new Space()
      this.#spaces.set(queue, space)
    }
    return space
  }

  /** The record of `id` unless it has expired (an expired one is dropped on the spot). */
  #live (space: Space, id: string, now: number): Rec | undefined {
    const rec = space.jobs.get(id)
    if (rec !== undefined && rec.expiresAt <= now) {
      space.jobs.delete(id)
      return undefined
    }
    return rec
  }

  #apply (space: Space, workerId: string, s: Settlement, now: number): void {
    const rec = space.jobs.get(s.id)
    // Fencing: only the attempt and worker that hold the job may settle it.
    if (rec === undefined || rec.state !== 'processing' || rec.attempts !== s.attempt || rec.worker !== workerId) return
    if (rec.cancelRequested) {
      this.#terminate(space, rec, 'cancelled', undefined, undefined, s.type === 'release' || s.type === 'retry' ? rec.resultTTL : s.ttl, now)
      return
    }
    switch (s.type) {
      case 'complete':
        this.#terminate(space, rec, 'completed', s.result, undefined, s.ttl, now)
        break
      case 'fail':
        this.#terminate(space, rec, 'failed', undefined, s.error, s.ttl, now)
        break
      case 'cancel':
        this.#terminate(space, rec, 'cancelled', undefined, undefined, s.ttl, now)
        break
      case 'retry':
        space.processing.delete(rec)
        rec.state = 'failing'
        rec.error = s.error
        rec.worker = ''
        if (s.delay > 0) {
          this.#schedule(space, rec, now + s.delay)
        } else {
          rec.state = 'queued'
          space.ready.push(rec)
          this.#wake(space, now)
        }
        break
      case 'release':
        space.processing.delete(rec)
        rec.state = 'queued'
        rec.attempts--
        rec.worker = ''
        space.ready.unshift(rec)
        this.#wake(space, now)
        break
    }
  }

  /** Claims up to `max` ready jobs for `workerId`. */
  #take (space: Space, workerId: string, max: number, leaseMs: number, now: number): ClaimedJob[] {
    const jobs: ClaimedJob[] = []
    const ready = space.ready
    while (jobs.length < max && ready.size > 0) {
      const rec = ready.shift() as Rec
      // Skip entries left behind by cancel (lazy deletion keeps cancel O(1)).
      if (rec.state !== 'queued' || space.jobs.get(rec.id) !== rec) continue
      rec.state = 'processing'
      rec.attempts++
      rec.worker = workerId
      rec.leaseUntil = now + leaseMs
      space.processing.add(rec)
      jobs.push(rec)
    }
    return jobs
  }

  /** Hands ready jobs to blocked claims, oldest waiter first. */
  #wake (space: Space, now: number): void {
    while (space.waiters.size > 0 && space.ready.size > 0) {
      const waiter = space.waiters.shift() as BlockedClaim
      const jobs = this.#take(space, waiter.workerId, waiter.max, waiter.leaseMs, now)
      if (jobs.length === 0) {
        space.waiters.unshift(waiter)
        return
      }
      endClaim(waiter, jobs)
    }
  }

  #schedule (space: Space, rec: Rec, dueAt: number): void {
    rec.dueAt = dueAt
    space.delayed.push(dueAt, rec)
    this.#armPromotion(space)
  }

  /** Keeps one timer at the earliest due time, so blocked claims see delayed jobs without polling. */
  #armPromotion (space: Space): void {
    const at = space.delayed.peekKey()
    if (at >= space.promoteAt || at === Infinity || this.#refs === 0) return
    clearTimeout(space.promoteTimer)
    space.promoteAt = at
    space.promoteTimer = setTimeout(() => {
      space.promoteTimer = undefined
      space.promoteAt = Infinity
      const now = this.#clock()
      this.#promote(space, now)
      this.#wake(space, now)
      this.#armPromotion(space)
    }, Math.max(0, at - this.#clock()))
    space.promoteTimer.unref()
  }

  /** Moves due delayed and failing jobs to the tail of the ready queue. */
  #promote (space: Space, now: number): void {
    const delayed = space.delayed
    while (delayed.peekKey() <= now) {
      const rec = delayed.pop() as Rec
      if ((rec.state !== 'delayed' && rec.state !== 'failing') || space.jobs.get(rec.id) !== rec) continue
      rec.state = 'queued'
      space.ready.push(rec)
    }
  }

  #remove (space: Space, rec: Rec): void {
    space.jobs.delete(rec.id)
    space.processing.delete(rec)
    // Mark so lazy queue and heap entries are skipped even if the id is enqueued again.
    rec.state = 'cancelled'
  }

  #terminate (space: Space, rec: Rec, state: TerminalState, result: Buffer | undefined, error: Buffer | undefined, ttl: number, now: number): void {
    space.processing.delete(rec)
    rec.state = state
    rec.payload = EMPTY // nobody needs it any more; free it while the record waits out its TTL
    rec.result = result
    rec.error = error ?? (state === 'failed' ? rec.error : undefined)
    rec.worker = ''
    rec.expiresAt = now + ttl
    space.expiries.push(rec.expiresAt, rec)
    if (space.listeners.size > 0) {
      this.#publish(space, { type: 'done', id: rec.id, state, result, error: rec.error })
    }
  }

  #publish (space: Space, notice: Notice): void {
    for (const listener of space.listeners) listener(notice)
  }

  #sweep (): void {
    const now = this.#clock()
    for (const space of this.#spaces.values()) {
      const expiries = space.expiries
      while (expiries.peekKey() <= now) {
        const rec = expiries.pop() as Rec
        if (rec.expiresAt <= now && space.jobs.get(rec.id) === rec) space.jobs.delete(rec.id)
      }
    }
  }
}

const EMPTY = Buffer.alloc(0)
const QUEUED: EnqueueOutcome = Object.freeze({ status: 'queued' })

function existingOutcome (rec: Rec): EnqueueOutcome {
  switch (rec.state) {
    case 'completed': return { status: 'completed', result: rec.result ?? Buffer.alloc(0) }
    case 'failed': return { status: 'failed', error: rec.error ?? Buffer.alloc(0) }
    case 'cancelled': return { status: 'cancelled' }
    default: return { status: 'duplicate', state: rec.state as ActiveState }
  }
}
