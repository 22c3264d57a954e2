/**
 * The state of one queue: a deterministic state machine, run by MemoryStorage and replayed by the
 * file backend from its log. It implements the lifecycle table of types.ts.
 *
 * Every process replays the same frames in the same order through these methods, so every process
 * computes the same state and the same outcome for every operation: who won a claim, whether an
 * enqueue was a duplicate, which leases had expired. That is what makes claims and dedup exclusive
 * across processes. Two rules keep the replay deterministic:
 * - Time is the log's: each frame carries its writer's clock and {@link QueueState.advance} takes
 *   the maximum seen so far, so a state change never depends on when a process happens to replay.
 * - Every order that decides an outcome (ready queue, due times, state indexes) is total and is
 *   kept by snapshots ({@link QueueState.image}), so a process that loads a snapshot continues
 *   exactly like one that replayed.
 *
 * MemoryStorage runs the same machine without a log: it applies each operation directly, with its
 * own clock as `now`. The operator's reads (pages, details, groups) are in queue-admin.ts.
 */
import type {
  AbortOutcome, ActionResult, AdminAction, ApplyOutcome, CancelOutcome, ClaimedJob, EnqueueOutcome, ErrorGroup, JobRecord,
  JobState, JobTarget, LeaseReport, NewJob, Notice, QueueTotals, RecoveryOutcome, Retention, Settlement, StateCounts,
  TerminalState, UpdateTTLOutcome, WorkerEntry, WorkerInfo
} from './types.ts'
import { validTrace } from '../trace-context.ts'
import { Deque } from '../util/deque.ts'
import { MinHeap } from '../util/heap.ts'
import {
  ACTION_STATES, DEFAULT_RETENTION, TERMINAL_STATES, Rec, Tomb, ageFloor, compareIds, existingOutcome, isTerminal, lastAttempt,
  newRecord, recordAttempt, type AttemptOutcome, type Entry
} from './job-record.ts'
import { DueHeap, StateIndex } from './state-index.ts'

/** Failed jobs of one failure group, by stamp. */
export interface Group {
  readonly meta: ErrorGroup
  readonly index: StateIndex
}

/** Everything a snapshot must hold to continue a state exactly (see file/snapshot.ts). */
export interface StateImage {
  readonly now: number
  readonly stamp: number
  readonly paused: boolean
  /** Undefined when the queue has none stored (the defaults apply). */
  readonly retention: Retention | undefined
  readonly totals: QueueTotals
  readonly workers: readonly WorkerEntry[]
  readonly groups: readonly ErrorGroup[]
  /** Queued jobs in claim order. */
  readonly ready: readonly Rec[]
  /** Processing jobs by stamp. */
  readonly processing: readonly Rec[]
  /** Every other record: delayed, failing, completed, failed, cancelled in history (each by stamp), then result-cache-only ones. */
  readonly rest: readonly Entry[]
}

type Totals = { -readonly [K in keyof QueueTotals]: number }

const EMPTY = Buffer.alloc(0)
const QUEUED: EnqueueOutcome = Object.freeze({ status: 'queued' })
const NO_RECOVERY: RecoveryOutcome = Object.freeze({ requeued: [], failed: [] })
const NONE: readonly number[] = Object.freeze([])

/** One queue's jobs, indexes, settings and notices, changed only by the log's ops (or read). */
export class QueueState {
  readonly #jobs = new Map<string, Entry>()
  /** Ready jobs in claim order; entries whose job left `queued` are skipped lazily. */
  readonly #ready = new Deque<Rec>()
  readonly #delayed = new DueHeap()
  /**
   * Ids of terminal records by result-cache expiry (lazy: a changed `expiresAt` re-pushes). Ids,
   * not records: a record pushed out of history is replaced by its {@link Tomb}.
   */
  readonly #expiries = new MinHeap<string>()
  readonly #index: Readonly<Record<JobState, StateIndex>> = {
    queued: new StateIndex(),
    delayed: new StateIndex(),
    processing: new StateIndex(),
    failing: new StateIndex(),
    completed: new StateIndex(),
    failed: new StateIndex(),
    cancelled: new StateIndex()
  }

  readonly #groups = new Map<string, Group>()
  readonly #workers = new Map<string, WorkerEntry>()
  readonly #totals: Totals = { enqueued: 0, completed: 0, failed: 0, retried: 0, stalled: 0, cancelled: 0 }
  #retention: Retention = DEFAULT_RETENTION
  /** The queue has its own retention (else the defaults apply, and snapshots say so). */
  #retentionSet = false
  #paused = false
  /** Notices the applied operations produced, oldest first, for the owner to take and deliver. */
  readonly notices = new Deque<Notice>()
  /** The log's clock: the latest frame time applied. */
  #now = 0
  /** The last stamp handed out. */
  #stamp = 0
  /** This instance's token: `done` notices of jobs it waits for are collected. */
  readonly #self: number
  /** The waiters of a job only this instance waits for: one list for all of them (no array per job). */
  readonly #selfOnly: readonly number[]

  constructor (self: number) {
    this.#self = self
    this.#selfOnly = [self]
  }

  /** Records held, expired ones not yet dropped included. */
  get size (): number { return this.#jobs.size }

  get paused (): boolean { return this.#paused }

  get retention (): Retention { return this.#retention }

  get totals (): QueueTotals { return { ...this.#totals } }

  /** The last stamp handed out. */
  get lastStamp (): number { return this.#stamp }

  /** True when the queue holds nothing at all: no record, worker, setting or total. */
  get empty (): boolean {
    if (this.#jobs.size > 0 || this.#workers.size > 0 || this.#paused || this.#retentionSet) return false
    for (const n of Object.values(this.#totals)) if (n > 0) return false
    return true
  }

  /** The index of a state (read only: for the operator's reads). */
  index (state: JobState): StateIndex { return this.#index[state] }

  group (key: string): Group | undefined { return this.#groups.get(key) }

  groups (): IterableIterator<Group> { return this.#groups.values() }

  /** The raw record of `id`, whatever its lifetimes. */
  record (id: string): Entry | undefined { return this.#jobs.get(id) }

  /** Moves the log clock to a frame's time (never backwards); drops records expired by then and trims history past its age. */
  advance (time: number): number {
    if (time > this.#now) this.#now = time
    const now = this.#now
    const expiries = this.#expiries
    while (expiries.peekKey() <= now) {
      const id = expiries.pop() as string
      const rec = this.#jobs.get(id)
      // Any record of the id that is expired and out of history is unreachable: dropped whichever entry finds it.
      if (rec !== undefined && rec.expiresAt <= now && rec.stamp < 0) this.#jobs.delete(id)
    }
    for (const state of TERMINAL_STATES) this.#trimAge(state, now)
    return now
  }

  // ---- operations (replayed from the log, `now` is the frame's log time) ----

  enqueue (now: number, token: number, jobs: readonly NewJob[]): EnqueueOutcome[] {
    const outcomes: EnqueueOutcome[] = new Array(jobs.length)
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]
      const existing = this.#jobs.get(job.id)
      if (existing !== undefined) {
        if (existing.expiresAt > now) {
          // A second waiter on an active job: it gets the done notice too.
          if (job.notify === true && existing instanceof Rec && !isTerminal(existing.state)) addWaiter(existing, token)
          outcomes[i] = existingOutcome(existing)
          continue
        }
        // Its result TTL passed: a new job; the previous run's history goes.
        this.#forget(existing)
      }
      const rec = newRecord(job.id, now, job.resultTTL, job.maxAttempts)
      rec.payload = job.payload
      rec.delay = job.delay
      rec.runTimeout = job.runTimeout ?? 0
      if (job.trace !== undefined) {
        const trace = validTrace(job.trace)
        if (trace !== undefined) rec.trace = trace
      }
      if (job.notify === true) rec.waiters = token === this.#self ? this.#selfOnly : [token]
      this.#jobs.set(job.id, rec)
      this.#totals.enqueued++
      if (job.delay > 0) {
        this.#schedule(rec, 'delayed', now + job.delay, now)
      } else {
        this.#move(rec, 'queued', now)
        this.#ready.push(rec)
      }
      outcomes[i] = QUEUED
    }
    return outcomes
  }

  claim (now: number, worker: string, max: number, leaseMs: number): ClaimedJob[] {
    const jobs: ClaimedJob[] = []
    if (this.#paused) return jobs
    this.#promote(now)
    const ready = this.#ready
    while (jobs.length < max && ready.size > 0) {
      const rec = ready.shift() as Rec
      if (rec.state !== 'queued') continue
      rec.attempts++
      rec.worker = worker
      rec.leaseUntil = now + leaseMs
      this.#move(rec, 'processing', now)
      jobs.push(rec)
    }
    return jobs
  }

  /** Applies settlements; returns the indexes of those refused by fencing. */
  settle (now: number, worker: string, settlements: readonly Settlement[]): readonly number[] {
    let refused: number[] | undefined
    for (let i = 0; i < settlements.length; i++) {
      if (!this.#apply(now, worker, settlements[i])) (refused ??= []).push(i)
    }
    return refused ?? NONE
  }

  extend (now: number, worker: string, ids: readonly string[], leaseMs: number): LeaseReport {
    const until = now + leaseMs
    const lost: string[] = []
    const aborted: string[] = []
    for (const id of ids) {
      const rec = this.#jobs.get(id)
      if (!(rec instanceof Rec) || rec.state !== 'processing' || rec.worker !== worker) {
        lost.push(id)
        continue
      }
      rec.leaseUntil = until
      if (rec.cancelRequested) aborted.push(id)
    }
    return { lost, aborted }
  }

  cancel (now: number, id: string): CancelOutcome {
    const rec = this.peek(id, now)
    if (rec === undefined) return 'not_found'
    if (rec instanceof Tomb || isTerminal(rec.state)) return 'completed'
    if (rec.state === 'processing') return 'processing'
    // In history, but no result cache: getStatus answers null and the id is free at once.
    this.#finish(rec, 'cancelled', '', undefined, undefined, 0, now)
    return 'cancelled'
  }

  abort (now: number, id: string, ttl: number): AbortOutcome {
    const rec = this.peek(id, now)
    if (rec === undefined) return 'not_found'
    if (rec instanceof Tomb || isTerminal(rec.state)) return 'completed'
    if (rec.state === 'processing') {
      this.#requestCancel(rec)
      return 'aborting'
    }
    this.#finish(rec, 'cancelled', '', undefined, undefined, ttl, now)
    return 'cancelled'
  }

  updateTTL (now: number, id: string, ttl: number): UpdateTTLOutcome {
    const rec = this.peek(id, now)
    if (rec === undefined) return 'not_found'
    if (!isTerminal(rec.state)) return 'not_terminal'
    rec.expiresAt = now + ttl
    this.#expiries.push(rec.expiresAt, id)
    return 'updated'
  }

  recover (now: number, maxStalls: number, error: Buffer, group?: ErrorGroup): RecoveryOutcome {
    if (!this.hasExpiredLease(now)) return NO_RECOVERY
    const expired: Rec[] = []
    for (const rec of this.#index.processing) if (rec.leaseUntil <= now) expired.push(rec)
    expired.sort((a, b) => a.leaseUntil - b.leaseUntil || compareIds(a.id, b.id))
    const requeued: string[] = []
    const failed: string[] = []
    for (const rec of expired) {
      rec.stalls++
      this.#totals.stalled++
      if (rec.cancelRequested) {
        this.#finish(rec, 'cancelled', 'stalled', undefined, undefined, rec.resultTTL, now)
      } else if (rec.attempts >= rec.maxAttempts || rec.stalls > maxStalls) {
        this.#finish(rec, 'failed', 'stalled', undefined, error, rec.resultTTL, now, group)
        failed.push(rec.id)
      } else {
        recordAttempt(rec, now, 'stalled', undefined)
        rec.readyAt = now
        this.#move(rec, 'queued', now)
        this.#ready.push(rec)
        requeued.push(rec.id)
      }
    }
    return { requeued, failed }
  }

  // ---- operator operations ----

  setPaused (paused: boolean): void {
    this.#paused = paused
  }

  setRetention (now: number, retention: Retention): void {
    // What the old rules pushed out stays out: reads hid it already, a longer age must not bring it back.
    for (const state of TERMINAL_STATES) this.#trimAge(state, now)
    this.#retention = retention
    this.#retentionSet = true
    for (const state of TERMINAL_STATES) {
      this.#trimCount(state, now)
      this.#trimAge(state, now)
    }
  }

  /** Registers or refreshes a worker until now + ttl; ttl <= 0 removes it. */
  heartbeat (now: number, info: WorkerInfo, ttl: number): void {
    if (ttl <= 0) {
      this.#workers.delete(info.id)
      return
    }
    for (const [id, w] of this.#workers) if (w.expiresAt <= now) this.#workers.delete(id)
    const { id, host, pid, concurrency, running, startedAt } = info
    this.#workers.set(id, { id, host, pid, concurrency, running, startedAt, lastSeen: now, expiresAt: now + ttl })
  }

  /** Live workers at `now`, by id. */
  workers (now: number): WorkerEntry[] {
    const live: WorkerEntry[] = []
    for (const w of this.#workers.values()) if (w.expiresAt > now) live.push(w)
    return live.sort((a, b) => compareIds(a.id, b.id))
  }

  /** One chunk of an operator action (see AdminStorage.apply). */
  apply (now: number, action: AdminAction, target: JobTarget, limit: number, dryRun: boolean): ApplyOutcome {
    const until = 'ids' in target ? this.#stamp : target.until ?? this.#stamp
    if ('ids' in target) {
      const results: ActionResult[] = []
      let matched = 0
      for (const id of target.ids) {
        const rec = this.#jobs.get(id)
        if (rec === undefined || (isTerminal(rec.state) && !this.inHistory(rec, now) && rec.expiresAt <= now)) {
          results.push('not_found')
        } else if (!this.#applies(action, rec, now)) {
          results.push('skipped')
        } else {
          matched++
          results.push(dryRun ? wouldBe(action, rec) : this.#act(action, rec, now))
        }
      }
      return { matched, changed: dryRun ? 0 : matched, results, next: null, until }
    }
    const index = target.group === undefined ? this.#index[target.state] : this.#groups.get(target.group)?.index
    if (index === undefined) return { matched: 0, changed: 0, next: null, until }
    const lo = isTerminal(target.state) ? ageFloor(this.retention[target.state], now) : -Infinity
    const hi = target.before === undefined ? until : Math.min(until, target.before * 1000 - 1)
    if (dryRun) {
      const from = target.after === undefined ? lo : Math.max(lo, target.after + 1)
      return { matched: index.count(from, hi), changed: 0, next: null, until }
    }
    const { recs, more } = index.range(lo, hi, 'asc', target.after, limit)
    const next = more ? recs[recs.length - 1].stamp : null
    for (const rec of recs) this.#act(action, rec, now)
    return { matched: recs.length, changed: recs.length, next, until }
  }

  // ---- reads (a process's current view; `now` is its own clock; they change no outcome) ----

  /** The record of `id` whose result cache is live (active, or terminal within its result TTL) at `now`. */
  peek (id: string, now: number): Entry | undefined {
    const rec = this.#jobs.get(id)
    return rec !== undefined && rec.expiresAt > now ? rec : undefined
  }

  /** True when a terminal record is in the history of its state at `now`. */
  inHistory (rec: Entry, now: number): boolean {
    return rec.stamp >= 0 && rec.stamp >= ageFloor(this.#retention[rec.state as TerminalState], now)
  }

  status (id: string, now: number): JobRecord | null {
    const rec = this.peek(id, now)
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

  counts (now: number): StateCounts {
    const i = this.#index
    return {
      queued: i.queued.live,
      delayed: i.delayed.live,
      processing: i.processing.live,
      failing: i.failing.live,
      completed: this.#historyCount('completed', now),
      failed: this.#historyCount('failed', now),
      cancelled: this.#historyCount('cancelled', now)
    }
  }

  /** True when a claim at `now` would get a job. Drops stale queue entries it passes (they never come back). */
  claimable (now: number): boolean {
    if (this.#paused) return false
    const ready = this.#ready
    while (ready.size > 0) {
      const rec = ready.shift() as Rec
      if (rec.state === 'queued') {
        ready.unshift(rec)
        return true
      }
    }
    return this.nextDue() <= now
  }

  /** The earliest due time of a delayed or failing job, or Infinity (also while paused: nothing is claimed). */
  nextDue (): number {
    if (this.#paused) return Infinity
    let rec: Rec | undefined
    while ((rec = this.#delayed.peek()) !== undefined && !isWaiting(rec)) this.#delayed.pop()
    return rec === undefined ? Infinity : rec.dueAt
  }

  hasExpiredLease (now: number): boolean {
    for (const rec of this.#index.processing) if (rec.leaseUntil <= now) return true
    return false
  }

  // ---- snapshots ----

  /** What a snapshot holds: the live records in the orders that decide outcomes, and the settings. */
  image (): StateImage {
    const ready: Rec[] = []
    for (let i = 0, size = this.#ready.size; i < size; i++) {
      const rec = this.#ready.at(i) as Rec
      if (rec.state === 'queued') ready.push(rec)
    }
    const rest: Entry[] = []
    for (const state of ['delayed', 'failing', ...TERMINAL_STATES] as const) for (const rec of this.#index[state]) rest.push(rec)
    const now = this.#now
    for (const rec of this.#jobs.values()) if (isTerminal(rec.state) && rec.stamp < 0 && rec.expiresAt > now) rest.push(rec)
    return {
      now,
      stamp: this.#stamp,
      paused: this.#paused,
      retention: this.#retentionSet ? this.#retention : undefined,
      totals: this.totals,
      workers: [...this.#workers.values()],
      groups: [...this.#groups.values()].map(g => g.meta),
      ready,
      processing: [...this.#index.processing],
      rest
    }
  }

  /** The state an {@link StateImage} describes (records are taken over, not copied). */
  static restore (image: StateImage, self: number): QueueState {
    const state = new QueueState(self)
    state.#now = image.now
    state.#stamp = image.stamp
    state.#paused = image.paused
    state.#retention = image.retention ?? DEFAULT_RETENTION
    state.#retentionSet = image.retention !== undefined
    Object.assign(state.#totals, image.totals)
    for (const w of image.workers) state.#workers.set(w.id, w)
    for (const meta of image.groups) state.#groups.set(meta.key, { meta, index: new StateIndex() })
    for (const rec of image.ready) state.#ready.push(state.#add(rec))
    for (const rec of [...image.ready].sort((a, b) => a.stamp - b.stamp)) state.#index.queued.push(rec)
    for (const rec of image.processing) state.#index.processing.push(state.#add(rec))
    for (let rec of image.rest) {
      if (rec instanceof Rec && rec.stamp < 0 && isTerminal(rec.state)) rec = new Tomb(rec)
      state.#add(rec)
      if (isTerminal(rec.state)) state.#expiries.push(rec.expiresAt, rec.id)
      if (rec instanceof Tomb) continue
      if (rec.state === 'delayed' || rec.state === 'failing') state.#delayed.push(rec)
      if (rec.stamp < 0) continue
      state.#index[rec.state].push(rec)
      if (rec.group !== '') state.#groups.get(rec.group)?.index.push(rec)
    }
    return state
  }

  #add<E extends Entry> (rec: E): E {
    if (this.#jobs.has(rec.id)) throw new Error(`Job ${JSON.stringify(rec.id)} twice in a snapshot`)
    this.#jobs.set(rec.id, rec)
    return rec
  }

  // ---- internals ----

  /** The next stamp: strictly increasing, about `now` × 1000. */
  #nextStamp (now: number): number {
    const stamp = now * 1000
    this.#stamp = stamp > this.#stamp ? stamp : this.#stamp + 1
    return this.#stamp
  }

  /** Takes the job out of the index of its state (and of its failure group). */
  #leave (rec: Rec): void {
    if (rec.stamp < 0) return
    this.#index[rec.state].left(rec)
    if (rec.group !== '') {
      const group = this.#groups.get(rec.group)
      if (group !== undefined) {
        group.index.left(rec)
        if (group.index.live === 0) this.#groups.delete(rec.group)
      }
      rec.group = ''
    }
    rec.stamp = -1
  }

  /** Moves the job into `state`, at the end of its index. */
  #move (rec: Rec, state: JobState, now: number): void {
    this.#leave(rec)
    rec.state = state
    rec.enteredAt = now // before the stamp: the record keeps the stamp relative to it
    rec.stamp = this.#nextStamp(now)
    this.#index[state].push(rec)
  }

  /** Returns false when fencing refuses the settlement. */
  #apply (now: number, worker: string, s: Settlement): boolean {
    const rec = this.#jobs.get(s.id)
    if (!(rec instanceof Rec) || rec.state !== 'processing' || rec.attempts !== s.attempt || rec.worker !== worker) return false
    if (rec.cancelRequested) {
      this.#finish(rec, 'cancelled', 'cancelled', undefined, undefined, s.type === 'release' || s.type === 'retry' ? rec.resultTTL : s.ttl, now)
      return true
    }
    switch (s.type) {
      case 'complete':
        this.#finish(rec, 'completed', 'completed', s.result, undefined, s.ttl, now)
        break
      case 'fail':
        this.#finish(rec, 'failed', 'failed', undefined, s.error, s.ttl, now, s.group)
        break
      case 'cancel':
        this.#finish(rec, 'cancelled', 'cancelled', undefined, undefined, s.ttl, now)
        break
      case 'retry':
        recordAttempt(rec, now, 'retried', s.error)
        this.#totals.retried++
        rec.error = s.error
        if (s.delay > 0) {
          this.#schedule(rec, 'failing', now + s.delay, now)
        } else {
          rec.readyAt = now
          this.#move(rec, 'queued', now)
          this.#ready.push(rec)
        }
        break
      case 'release':
        recordAttempt(rec, now, 'released', undefined)
        rec.attempts--
        rec.readyAt = now
        this.#move(rec, 'queued', now)
        this.#ready.unshift(rec)
        break
    }
    return true
  }

  #schedule (rec: Rec, state: 'delayed' | 'failing', dueAt: number, now: number): void {
    rec.dueAt = dueAt
    this.#move(rec, state, now)
    this.#delayed.push(rec)
  }

  /** Moves due delayed and failing jobs to the tail of the ready queue, in (dueAt, id) order. */
  #promote (now: number): void {
    let rec: Rec | undefined
    while ((rec = this.#delayed.peek()) !== undefined && rec.dueAt <= now) {
      this.#delayed.pop()
      if (!isWaiting(rec)) continue
      rec.readyAt = rec.dueAt
      this.#move(rec, 'queued', now)
      this.#ready.push(rec)
    }
  }

  /** Ends the job in a terminal state, in history, with its result cache for `ttl` ms. */
  #finish (rec: Rec, state: TerminalState, outcome: AttemptOutcome | '', result: Buffer | undefined, error: Buffer | undefined, ttl: number, now: number, group?: ErrorGroup): void {
    // An outcome ends an attempt, which started when the job entered `processing`.
    const started = rec.enteredAt
    rec.setOutcome(state === 'completed' ? result : state === 'failed' ? error ?? rec.error : undefined)
    rec.lastOutcome = outcome
    rec.expiresAt = now + ttl
    this.#expiries.push(rec.expiresAt, rec.id)
    this.#move(rec, state, now)
    if (outcome !== '') rec.attemptStartedAt = started
    this.#totals[state]++
    if (group !== undefined) {
      let g = this.#groups.get(group.key)
      if (g === undefined) {
        g = { meta: { key: group.key, name: group.name, message: group.message, frame: group.frame }, index: new StateIndex() }
        this.#groups.set(group.key, g)
      }
      rec.group = group.key
      g.index.push(rec)
    }
    if (rec.waiters?.includes(this.#self) === true) this.notices.push({ type: 'done', id: rec.id, state, result: rec.result, error: rec.error })
    // The count at once; the age as time passes (advance, setRetention): reads hide it meanwhile.
    this.#trimCount(state, now)
  }

  #requestCancel (rec: Rec): void {
    rec.cancelRequested = true
    this.notices.push({ type: 'abort', id: rec.id })
  }

  /** Keeps the history of `state` within its retention's count: the newest `count`. */
  #trimCount (state: TerminalState, now: number): void {
    const index = this.#index[state]
    const count = this.#retention[state].count
    while (index.live > count) this.#untrack(index.first() as Rec, now)
  }

  /** Drops the history of `state` past its retention's age. */
  #trimAge (state: TerminalState, now: number): void {
    const index = this.#index[state]
    const floor = ageFloor(this.#retention[state], now)
    let rec: Rec | undefined
    while ((rec = index.first()) !== undefined && rec.stamp < floor) this.#untrack(rec, now)
  }

  /** A terminal job leaves history; its record stays while its result cache lives. */
  #untrack (rec: Rec, now: number): void {
    this.#leave(rec)
    rec.payload = EMPTY
    rec.history = undefined
    if (this.#jobs.get(rec.id) !== rec) return
    if (rec.expiresAt <= now) this.#jobs.delete(rec.id)
    else this.#jobs.set(rec.id, new Tomb(rec))
  }

  #historyCount (state: TerminalState, now: number): number {
    const index = this.#index[state]
    return index.live - index.countBelow(ageFloor(this.#retention[state], now))
  }

  /** Drops a record for good: history, result cache, the id. Lazy queue and heap entries see a dead job. */
  #forget (rec: Entry): void {
    if (rec instanceof Rec) this.#leave(rec)
    if (this.#jobs.get(rec.id) === rec) this.#jobs.delete(rec.id)
    rec.state = 'cancelled'
  }

  /**
   * A copy of the record takes its place, the old one dies: its lazy entries in the ready queue
   * or the due heap must never match a job that re-enters `queued` or is rescheduled (with a new
   * due time, which a stale heap entry would carry out of order).
   */
  #renew (rec: Rec): Rec {
    const fresh = rec.clone()
    this.#leave(rec)
    fresh.stamp = -1
    fresh.group = ''
    rec.state = 'cancelled'
    this.#jobs.set(rec.id, fresh)
    return fresh
  }

  #applies (action: AdminAction, rec: Entry, now: number): boolean {
    // Retrying a finished job needs its payload: only a job still in history has it.
    return ACTION_STATES[action].includes(rec.state) && (action !== 'retry' || !isTerminal(rec.state) || this.inHistory(rec, now))
  }

  #act (action: AdminAction, rec: Entry, now: number): ActionResult {
    if (rec instanceof Tomb) {
      // Out of history: only a removal applies (see #applies).
      this.#forget(rec)
      return 'removed'
    }
    switch (action) {
      case 'retry': {
        const terminal = isTerminal(rec.state)
        const last = terminal ? lastAttempt(rec) : undefined
        const fresh = this.#renew(rec)
        if (last !== undefined) {
          fresh.history = fresh.history === undefined ? [] : fresh.history.slice()
          fresh.history.push(last)
        }
        fresh.attempts = 0
        fresh.stalls = 0
        fresh.retries++
        fresh.cancelRequested = false
        fresh.result = undefined
        fresh.error = undefined
        fresh.expiresAt = Infinity
        fresh.lastOutcome = ''
        fresh.worker = ''
        // A terminal job's waiters were told already; a failing job's still wait.
        if (terminal) fresh.waiters = undefined
        this.#requeue(fresh, now)
        return 'retried'
      }
      case 'promote':
        this.#requeue(this.#renew(rec), now)
        return 'promoted'
      case 'cancel':
        if (rec.state === 'processing') {
          this.#requestCancel(rec)
          return 'aborting'
        }
        this.#finish(rec, 'cancelled', '', undefined, undefined, rec.resultTTL, now)
        return 'cancelled'
      case 'remove':
        if (!isTerminal(rec.state) && rec.waiters?.includes(this.#self) === true) this.notices.push({ type: 'done', id: rec.id, state: 'cancelled' })
        this.#forget(rec)
        return 'removed'
    }
  }

  #requeue (rec: Rec, now: number): void {
    rec.readyAt = now
    this.#move(rec, 'queued', now)
    this.#ready.push(rec)
  }
}

/** A delayed or failing job's heap entry is still valid. */
function isWaiting (rec: Rec): boolean {
  return rec.state === 'delayed' || rec.state === 'failing'
}

function wouldBe (action: AdminAction, rec: Entry): ActionResult {
  switch (action) {
    case 'retry': return 'retried'
    case 'promote': return 'promoted'
    case 'cancel': return rec.state === 'processing' ? 'aborting' : 'cancelled'
    case 'remove': return 'removed'
  }
}

function addWaiter (rec: Rec, token: number): void {
  // A new list: the old one may be shared.
  if (rec.waiters === undefined) rec.waiters = [token]
  else if (!rec.waiters.includes(token)) rec.waiters = [...rec.waiters, token]
}

export { existingOutcome }
