/**
 * The state of one queue as the file backend's log describes it: a deterministic state machine.
 *
 * Every process replays the same frames in the same order through these methods, so every process
 * computes the same state and the same outcome for every operation: who won a claim, whether an
 * enqueue was a duplicate, which leases had expired. That is what makes claims and dedup exclusive
 * across processes. Two rules keep the replay deterministic:
 * - Time is the log's: each frame carries its writer's clock and {@link QueueState.advance} takes
 *   the maximum seen so far, so a state change never depends on when a process happens to replay.
 * - Every order that decides an outcome (ready queue, due times, running jobs) is total and is
 *   kept by snapshots, so a process that loads a snapshot continues exactly like one that replayed.
 *
 * The semantics are those of MemoryStorage, operation by operation.
 */
import type {
  AbortOutcome, ActiveState, CancelOutcome, ClaimedJob, EnqueueOutcome, JobRecord, JobState, LeaseReport, NewJob,
  Notice, RecoveryOutcome, Settlement, StateCounts, TerminalState, UpdateTTLOutcome
} from '../types.ts'
import { Deque } from '../../util/deque.ts'
import { MinHeap } from '../../util/heap.ts'
import { DecodeError, type Reader, type Writer } from './codec.ts'

/** One job. Also handed to claimers as their ClaimedJob (they read it before any later change). */
export interface Rec extends ClaimedJob {
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
  /** Breaks ties between equal `dueAt`s: the order the jobs were scheduled in, the same everywhere. */
  dueSeq: number
  /** Epoch ms when a processing job's lease expires. */
  leaseUntil: number
  worker: string
  cancelRequested: boolean
  /** Epoch ms when a terminal record disappears. */
  expiresAt: number
  result: Buffer | undefined
  error: Buffer | undefined
  /** Storage instances (their tokens) that wait for the outcome: they get the `done` notice. */
  waiters: number[] | undefined
}

/** Delayed and failing jobs ordered by (dueAt, dueSeq): a total order, unlike a heap's layout. */
class DueHeap {
  readonly #items: Rec[] = []

  get size (): number { return this.#items.length }

  peek (): Rec | undefined { return this.#items[0] }

  push (rec: Rec): void {
    const items = this.#items
    let i = items.length
    items.push(rec)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(rec, items[parent])) break
      items[i] = items[parent]
      i = parent
    }
    items[i] = rec
  }

  pop (): Rec | undefined {
    const items = this.#items
    const top = items[0]
    const last = items.pop()
    const n = items.length
    if (n === 0 || last === undefined) return top
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && before(items[child + 1], items[child])) child++
      if (!before(items[child], last)) break
      items[i] = items[child]
      i = child
    }
    items[i] = last
    return top
  }
}

function before (a: Rec, b: Rec): boolean {
  return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.dueSeq < b.dueSeq)
}

const STATES: readonly JobState[] = ['queued', 'delayed', 'processing', 'failing', 'completed', 'failed', 'cancelled']
const STATE_CODE = new Map(STATES.map((s, i) => [s, i]))
const TERMINAL = new Set<JobState>(['completed', 'failed', 'cancelled'])
const EMPTY = Buffer.alloc(0)
const QUEUED: EnqueueOutcome = Object.freeze({ status: 'queued' })
const NO_RECOVERY: RecoveryOutcome = Object.freeze({ requeued: [], failed: [] })

/** One queue's jobs, queues and notices, changed only by the log's ops (or read). */
export class QueueState {
  readonly #jobs = new Map<string, Rec>()
  /** Ready jobs in claim order; entries whose job left `queued` are skipped lazily. */
  readonly #ready = new Deque<Rec>()
  readonly #delayed = new DueHeap()
  /** Processing jobs in claim order (the reaper's scan order). */
  readonly #processing = new Set<Rec>()
  /** Terminal records by expiry (lazy: a changed `expiresAt` re-pushes). */
  readonly #expiries = new MinHeap<Rec>()
  /** Notices the applied operations produced, for the owner to deliver. */
  readonly notices: Notice[] = []
  /** The log's clock: the latest frame time applied. */
  #now = 0
  /** Last `dueSeq` handed out. */
  #seq = 0
  /** This instance's token: `done` notices of jobs it waits for are collected. */
  readonly #self: number

  constructor (self: number) {
    this.#self = self
  }

  /** Moves the log clock to a frame's time (never backwards) and drops records expired by then. */
  advance (time: number): number {
    if (time > this.#now) this.#now = time
    const now = this.#now
    const expiries = this.#expiries
    while (expiries.peekKey() <= now) {
      const rec = expiries.pop() as Rec
      if (rec.expiresAt <= now && this.#jobs.get(rec.id) === rec) this.#jobs.delete(rec.id)
    }
    return now
  }

  // ---- operations (replayed from the log, `now` is the frame's log time) ----

  enqueue (now: number, token: number, jobs: readonly NewJob[]): EnqueueOutcome[] {
    const outcomes: EnqueueOutcome[] = new Array(jobs.length)
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]
      const existing = this.#live(job.id, now)
      if (existing !== undefined) {
        // A second waiter on an active job: it gets the done notice too.
        if (job.notify === true && !TERMINAL.has(existing.state)) addWaiter(existing, token)
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
        dueSeq: 0,
        leaseUntil: 0,
        worker: '',
        cancelRequested: false,
        expiresAt: Infinity,
        result: undefined,
        error: undefined,
        waiters: job.notify === true ? [token] : undefined
      }
      this.#jobs.set(job.id, rec)
      if (job.delay > 0) {
        rec.state = 'delayed'
        this.#schedule(rec, now + job.delay)
      } else {
        this.#ready.push(rec)
      }
      outcomes[i] = QUEUED
    }
    return outcomes
  }

  claim (now: number, worker: string, max: number, leaseMs: number): ClaimedJob[] {
    this.#promote(now)
    const jobs: ClaimedJob[] = []
    const ready = this.#ready
    while (jobs.length < max && ready.size > 0) {
      const rec = ready.shift() as Rec
      if (!this.#isReady(rec)) continue
      rec.state = 'processing'
      rec.attempts++
      rec.worker = worker
      rec.leaseUntil = now + leaseMs
      this.#processing.add(rec)
      jobs.push(rec)
    }
    return jobs
  }

  settle (now: number, worker: string, settlements: readonly Settlement[]): void {
    for (let i = 0; i < settlements.length; i++) this.#apply(now, worker, settlements[i])
  }

  extend (now: number, worker: string, ids: readonly string[], leaseMs: number): LeaseReport {
    const until = now + leaseMs
    const lost: string[] = []
    const aborted: string[] = []
    for (const id of ids) {
      const rec = this.#jobs.get(id)
      if (rec === undefined || rec.state !== 'processing' || rec.worker !== worker) {
        lost.push(id)
        continue
      }
      rec.leaseUntil = until
      if (rec.cancelRequested) aborted.push(id)
    }
    return { lost, aborted }
  }

  cancel (now: number, id: string): CancelOutcome {
    const rec = this.#live(id, now)
    if (rec === undefined) return 'not_found'
    if (TERMINAL.has(rec.state)) return 'completed'
    if (rec.state === 'processing') return 'processing'
    this.#jobs.delete(id)
    // Marked so the lazy queue and heap entries are skipped even if the id is enqueued again.
    rec.state = 'cancelled'
    this.#done(rec, 'cancelled', undefined, undefined)
    return 'cancelled'
  }

  abort (now: number, id: string, ttl: number): AbortOutcome {
    const rec = this.#live(id, now)
    if (rec === undefined) return 'not_found'
    if (TERMINAL.has(rec.state)) return 'completed'
    if (rec.state === 'processing') {
      rec.cancelRequested = true
      this.notices.push({ type: 'abort', id })
      return 'aborting'
    }
    this.#terminate(rec, 'cancelled', undefined, undefined, ttl, now)
    return 'cancelled'
  }

  updateTTL (now: number, id: string, ttl: number): UpdateTTLOutcome {
    const rec = this.#live(id, now)
    if (rec === undefined) return 'not_found'
    if (!TERMINAL.has(rec.state)) return 'not_terminal'
    rec.expiresAt = now + ttl
    this.#expiries.push(rec.expiresAt, rec)
    return 'updated'
  }

  recover (now: number, maxStalls: number, error: Buffer): RecoveryOutcome {
    if (!this.hasExpiredLease(now)) return NO_RECOVERY
    const requeued: string[] = []
    const failed: string[] = []
    for (const rec of this.#processing) {
      if (rec.leaseUntil > now) continue
      rec.stalls++
      if (rec.cancelRequested) {
        this.#terminate(rec, 'cancelled', undefined, undefined, rec.resultTTL, now)
      } else if (rec.attempts >= rec.maxAttempts || rec.stalls > maxStalls) {
        this.#terminate(rec, 'failed', undefined, error, rec.resultTTL, now)
        failed.push(rec.id)
      } else {
        this.#processing.delete(rec)
        rec.state = 'queued'
        rec.worker = ''
        this.#ready.push(rec)
        requeued.push(rec.id)
      }
    }
    return { requeued, failed }
  }

  // ---- reads (a process's current view; `now` is its own clock; they change no outcome) ----

  /** The live record of `id` at `now`, without dropping anything. */
  peek (id: string, now: number): Rec | undefined {
    const rec = this.#jobs.get(id)
    return rec !== undefined && rec.expiresAt > now ? rec : undefined
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
    const counts: StateCounts = { queued: 0, delayed: 0, processing: 0, failing: 0, completed: 0, failed: 0, cancelled: 0 }
    for (const rec of this.#jobs.values()) if (rec.expiresAt > now) counts[rec.state]++
    return counts
  }

  /** True when a claim at `now` would get a job. Drops stale queue entries it passes (they never come back). */
  claimable (now: number): boolean {
    const ready = this.#ready
    while (ready.size > 0) {
      const rec = ready.shift() as Rec
      if (this.#isReady(rec)) {
        ready.unshift(rec)
        return true
      }
    }
    return this.nextDue() <= now
  }

  /** The earliest due time of a delayed or failing job, or Infinity. */
  nextDue (): number {
    let rec: Rec | undefined
    while ((rec = this.#delayed.peek()) !== undefined && !this.#isDelayed(rec)) this.#delayed.pop()
    return rec === undefined ? Infinity : rec.dueAt
  }

  hasExpiredLease (now: number): boolean {
    for (const rec of this.#processing) if (rec.leaseUntil <= now) return true
    return false
  }

  // ---- snapshots ----

  /** Writes the state (live records and every order) so that {@link QueueState.decode} continues it exactly. */
  encode (w: Writer): void {
    const now = this.#now
    w.f64(now)
    w.f64(this.#seq)
    const index = new Map<Rec, number>()
    const live: Rec[] = []
    for (const rec of this.#jobs.values()) {
      if (rec.expiresAt <= now) continue
      index.set(rec, live.length)
      live.push(rec)
    }
    w.u32(live.length)
    for (const rec of live) {
      w.str(rec.id)
      w.u8(STATE_CODE.get(rec.state) as number)
      w.f64(rec.createdAt)
      w.f64(rec.resultTTL)
      w.f64(rec.attempts)
      w.f64(rec.maxAttempts)
      w.f64(rec.stalls)
      w.f64(rec.dueAt)
      w.f64(rec.dueSeq)
      w.f64(rec.leaseUntil)
      w.str(rec.worker)
      w.u8(rec.cancelRequested ? 1 : 0)
      w.f64(rec.expiresAt)
      w.bytes(rec.payload)
      w.maybeBytes(rec.result)
      w.maybeBytes(rec.error)
      const waiters = rec.waiters ?? []
      w.u32(waiters.length)
      for (const token of waiters) w.f64(token)
    }
    // The ready queue in order, its stale entries left out. A full rotation leaves it as it was.
    const order: number[] = []
    for (let i = 0, n = this.#ready.size; i < n; i++) {
      const rec = this.#ready.shift() as Rec
      this.#ready.push(rec)
      if (this.#isReady(rec)) order.push(index.get(rec) as number)
    }
    w.u32(order.length)
    for (const i of order) w.u32(i)
    w.u32(this.#processing.size)
    for (const rec of this.#processing) w.u32(index.get(rec) as number)
  }

  static decode (r: Reader, self: number): QueueState {
    const state = new QueueState(self)
    state.#now = r.f64()
    state.#seq = r.f64()
    const recs: Rec[] = new Array(r.u32())
    for (let i = 0; i < recs.length; i++) {
      const id = r.str()
      const code = r.u8()
      if (code >= STATES.length) throw new DecodeError(`Unknown job state ${code}`)
      const rec: Rec = {
        id,
        state: STATES[code],
        createdAt: r.f64(),
        resultTTL: r.f64(),
        attempts: r.f64(),
        maxAttempts: r.f64(),
        stalls: r.f64(),
        dueAt: r.f64(),
        dueSeq: r.f64(),
        leaseUntil: r.f64(),
        worker: r.str(),
        cancelRequested: r.u8() === 1,
        expiresAt: r.f64(),
        payload: r.bytes(),
        result: r.maybeBytes(),
        error: r.maybeBytes(),
        waiters: undefined
      }
      const waiters = r.u32()
      if (waiters > 0) {
        rec.waiters = []
        for (let k = 0; k < waiters; k++) rec.waiters.push(r.f64())
      }
      recs[i] = rec
      state.#jobs.set(id, rec)
      if (TERMINAL.has(rec.state)) state.#expiries.push(rec.expiresAt, rec)
      else if (rec.state === 'delayed' || rec.state === 'failing') state.#delayed.push(rec)
    }
    const at = (i: number): Rec => {
      const rec = recs[i]
      if (rec === undefined) throw new DecodeError(`Bad record index ${i}`)
      return rec
    }
    for (let n = r.u32(); n > 0; n--) state.#ready.push(at(r.u32()))
    for (let n = r.u32(); n > 0; n--) state.#processing.add(at(r.u32()))
    return state
  }

  // ---- internals ----

  /** The record of `id` unless it expired by `now` (an expired one is dropped: same at this log position everywhere). */
  #live (id: string, now: number): Rec | undefined {
    const rec = this.#jobs.get(id)
    if (rec !== undefined && rec.expiresAt <= now) {
      this.#jobs.delete(id)
      return undefined
    }
    return rec
  }

  // The state alone tells whether a queue or heap entry is still valid: a record only leaves the
  // map terminal (expiry) or marked `cancelled` (cancel), so no map lookup is needed.
  #isReady (rec: Rec): boolean {
    return rec.state === 'queued'
  }

  #isDelayed (rec: Rec): boolean {
    return rec.state === 'delayed' || rec.state === 'failing'
  }

  #apply (now: number, worker: string, s: Settlement): void {
    const rec = this.#jobs.get(s.id)
    // Fencing: only the attempt and worker that hold the job may settle it.
    if (rec === undefined || rec.state !== 'processing' || rec.attempts !== s.attempt || rec.worker !== worker) return
    if (rec.cancelRequested) {
      this.#terminate(rec, 'cancelled', undefined, undefined, s.type === 'release' || s.type === 'retry' ? rec.resultTTL : s.ttl, now)
      return
    }
    switch (s.type) {
      case 'complete':
        this.#terminate(rec, 'completed', s.result, undefined, s.ttl, now)
        break
      case 'fail':
        this.#terminate(rec, 'failed', undefined, s.error, s.ttl, now)
        break
      case 'cancel':
        this.#terminate(rec, 'cancelled', undefined, undefined, s.ttl, now)
        break
      case 'retry':
        this.#processing.delete(rec)
        rec.state = 'failing'
        rec.error = s.error
        rec.worker = ''
        if (s.delay > 0) {
          this.#schedule(rec, now + s.delay)
        } else {
          rec.state = 'queued'
          this.#ready.push(rec)
        }
        break
      case 'release':
        this.#processing.delete(rec)
        rec.state = 'queued'
        rec.attempts--
        rec.worker = ''
        this.#ready.unshift(rec)
        break
    }
  }

  #schedule (rec: Rec, dueAt: number): void {
    rec.dueAt = dueAt
    rec.dueSeq = ++this.#seq
    this.#delayed.push(rec)
  }

  /** Moves due delayed and failing jobs to the tail of the ready queue, in (dueAt, dueSeq) order. */
  #promote (now: number): void {
    let rec: Rec | undefined
    while ((rec = this.#delayed.peek()) !== undefined && rec.dueAt <= now) {
      this.#delayed.pop()
      if (!this.#isDelayed(rec)) continue
      rec.state = 'queued'
      this.#ready.push(rec)
    }
  }

  #terminate (rec: Rec, state: TerminalState, result: Buffer | undefined, error: Buffer | undefined, ttl: number, now: number): void {
    this.#processing.delete(rec)
    rec.state = state
    rec.payload = EMPTY // nobody needs it any more; free it while the record waits out its TTL
    rec.result = result
    rec.error = error ?? (state === 'failed' ? rec.error : undefined)
    rec.worker = ''
    rec.expiresAt = now + ttl
    this.#expiries.push(rec.expiresAt, rec)
    this.#done(rec, state, rec.result, rec.error)
  }

  #done (rec: Rec, state: TerminalState, result: Buffer | undefined, error: Buffer | undefined): void {
    if (rec.waiters?.includes(this.#self) === true) this.notices.push({ type: 'done', id: rec.id, state, result, error })
  }
}

function addWaiter (rec: Rec, token: number): void {
  if (rec.waiters === undefined) rec.waiters = [token]
  else if (!rec.waiters.includes(token)) rec.waiters.push(token)
}

/** What an enqueue of an id that is taken reports. */
export function existingOutcome (rec: Rec): EnqueueOutcome {
  switch (rec.state) {
    case 'completed': return { status: 'completed', result: rec.result ?? Buffer.alloc(0) }
    case 'failed': return { status: 'failed', error: rec.error ?? Buffer.alloc(0) }
    case 'cancelled': return { status: 'cancelled' }
    default: return { status: 'duplicate', state: rec.state as ActiveState }
  }
}
