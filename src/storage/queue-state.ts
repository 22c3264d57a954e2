/**
 * The state of one queue: a deterministic state machine, run by MemoryStorage and replayed by the
 * file backend from its log.
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
 * MemoryStorage runs the same machine without a log: it applies each operation directly, with its
 * own clock as `now`.
 */
import type {
  AbortOutcome, ActiveState, CancelOutcome, ClaimedJob, EnqueueOutcome, JobRecord, JobState, LeaseReport, NewJob,
  Notice, RecoveryOutcome, Settlement, StateCounts, TerminalState, UpdateTTLOutcome
} from './types.ts'
import { Deque } from '../util/deque.ts'
import { MinHeap } from '../util/heap.ts'
import { DecodeError, type Reader, type Writer } from './file/codec.ts'

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
  /** Storage instances (their tokens) that wait for the outcome: they get the `done` notice. Shared between records: replaced, never changed. */
  waiters: readonly number[] | undefined
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
  /** Notices the applied operations produced, oldest first, for the owner to take and deliver. */
  readonly notices = new Deque<Notice>()
  /** The log's clock: the latest frame time applied. */
  #now = 0
  /** Last `dueSeq` handed out. */
  #seq = 0
  /** This instance's token: `done` notices of jobs it waits for are collected. */
  readonly #self: number
  /** The waiters of a job only this instance waits for: one list for all of them (no array per job). */
  readonly #selfOnly: readonly number[]

  constructor (self: number) {
    this.#self = self
    this.#selfOnly = [self]
  }

  /** Records held, expired ones not yet dropped included. */
  get size (): number {
    return this.#jobs.size
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
        waiters: job.notify === true ? (token === this.#self ? this.#selfOnly : [token]) : undefined
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

  /**
   * Writes the state so that {@link QueueState.decode} continues it exactly: the ready jobs in claim
   * order, then the processing jobs in claim order, then every other live record. The orders are
   * the records' own order, so no index is needed.
   */
  encode (w: Writer): void {
    const now = this.#now
    w.f64(now)
    w.f64(this.#seq)
    let at = countAt(w)
    let n = 0
    for (let i = 0, size = this.#ready.size; i < size; i++) {
      const rec = this.#ready.at(i) as Rec
      // Stale entries (jobs that left `queued`) are left out.
      if (!this.#isReady(rec)) continue
      encodeRec(w, rec)
      n++
    }
    w.buf.writeUInt32LE(n, at)
    w.u32(this.#processing.size)
    for (const rec of this.#processing) encodeRec(w, rec)
    at = countAt(w)
    n = 0
    for (const rec of this.#jobs.values()) {
      if (rec.state === 'queued' || rec.state === 'processing' || rec.expiresAt <= now) continue
      encodeRec(w, rec)
      n++
    }
    w.buf.writeUInt32LE(n, at)
  }

  static decode (r: Reader, self: number): QueueState {
    const state = new QueueState(self)
    state.#now = r.f64()
    state.#seq = r.f64()
    for (let n = r.u32(); n > 0; n--) state.#ready.push(state.#add(decodeRec(r)))
    for (let n = r.u32(); n > 0; n--) state.#processing.add(state.#add(decodeRec(r)))
    for (let n = r.u32(); n > 0; n--) {
      const rec = state.#add(decodeRec(r))
      if (TERMINAL.has(rec.state)) state.#expiries.push(rec.expiresAt, rec)
      else if (rec.state === 'delayed' || rec.state === 'failing') state.#delayed.push(rec)
    }
    return state
  }

  #add (rec: Rec): Rec {
    if (this.#jobs.has(rec.id)) throw new DecodeError(`Job ${JSON.stringify(rec.id)} twice in a snapshot`)
    this.#jobs.set(rec.id, rec)
    return rec
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

// A snapshot record: state u8, a mask u16 of the fields that differ from a new job's, id, createdAt,
// resultTTL, maxAttempts, then the masked fields in this order. Most records in a deep queue are
// untouched queued jobs or settled ones, so most fields are left out: a smaller and faster snapshot.
const M_ATTEMPTS = 1
const M_STALLS = 2
const M_DUE = 4
const M_LEASE = 8
const M_WORKER = 16
const M_CANCEL = 32
const M_EXPIRES = 64
const M_PAYLOAD = 128
const M_RESULT = 256
const M_ERROR = 512
const M_WAITERS = 1024

function encodeRec (w: Writer, rec: Rec): void {
  let mask = 0
  if (rec.attempts !== 0) mask |= M_ATTEMPTS
  if (rec.stalls !== 0) mask |= M_STALLS
  if (rec.dueAt !== 0 || rec.dueSeq !== 0) mask |= M_DUE
  if (rec.leaseUntil !== 0) mask |= M_LEASE
  if (rec.worker !== '') mask |= M_WORKER
  if (rec.cancelRequested) mask |= M_CANCEL
  if (rec.expiresAt !== Infinity) mask |= M_EXPIRES
  if (rec.payload.length !== 0) mask |= M_PAYLOAD
  if (rec.result !== undefined) mask |= M_RESULT
  if (rec.error !== undefined) mask |= M_ERROR
  if (rec.waiters !== undefined && rec.waiters.length > 0) mask |= M_WAITERS
  w.u8(STATE_CODE.get(rec.state) as number)
  w.u8(mask & 0xff)
  w.u8(mask >>> 8)
  w.str(rec.id)
  w.f64(rec.createdAt)
  w.f64(rec.resultTTL)
  w.f64(rec.maxAttempts)
  if ((mask & M_ATTEMPTS) !== 0) w.f64(rec.attempts)
  if ((mask & M_STALLS) !== 0) w.f64(rec.stalls)
  if ((mask & M_DUE) !== 0) {
    w.f64(rec.dueAt)
    w.f64(rec.dueSeq)
  }
  if ((mask & M_LEASE) !== 0) w.f64(rec.leaseUntil)
  if ((mask & M_WORKER) !== 0) w.str(rec.worker)
  if ((mask & M_EXPIRES) !== 0) w.f64(rec.expiresAt)
  if ((mask & M_PAYLOAD) !== 0) w.bytes(rec.payload)
  if ((mask & M_RESULT) !== 0) w.bytes(rec.result as Buffer)
  if ((mask & M_ERROR) !== 0) w.bytes(rec.error as Buffer)
  if ((mask & M_WAITERS) !== 0) {
    const waiters = rec.waiters as readonly number[]
    w.u32(waiters.length)
    for (const token of waiters) w.f64(token)
  }
}

function decodeRec (r: Reader): Rec {
  const code = r.u8()
  if (code >= STATES.length) throw new DecodeError(`Unknown job state ${code}`)
  const mask = r.u8() | (r.u8() << 8)
  const rec: Rec = {
    id: r.str(),
    state: STATES[code],
    createdAt: r.f64(),
    resultTTL: r.f64(),
    maxAttempts: r.f64(),
    attempts: (mask & M_ATTEMPTS) !== 0 ? r.f64() : 0,
    stalls: (mask & M_STALLS) !== 0 ? r.f64() : 0,
    dueAt: 0,
    dueSeq: 0,
    leaseUntil: 0,
    worker: '',
    cancelRequested: (mask & M_CANCEL) !== 0,
    expiresAt: Infinity,
    payload: EMPTY,
    result: undefined,
    error: undefined,
    waiters: undefined
  }
  if ((mask & M_DUE) !== 0) {
    rec.dueAt = r.f64()
    rec.dueSeq = r.f64()
  }
  if ((mask & M_LEASE) !== 0) rec.leaseUntil = r.f64()
  if ((mask & M_WORKER) !== 0) rec.worker = r.str()
  if ((mask & M_EXPIRES) !== 0) rec.expiresAt = r.f64()
  if ((mask & M_PAYLOAD) !== 0) rec.payload = r.bytes()
  if ((mask & M_RESULT) !== 0) rec.result = r.bytes()
  if ((mask & M_ERROR) !== 0) rec.error = r.bytes()
  if ((mask & M_WAITERS) !== 0) {
    const waiters: number[] = []
    for (let k = r.u32(); k > 0; k--) waiters.push(r.f64())
    rec.waiters = waiters
  }
  return rec
}

/** Reserves a u32 count to be patched once known; returns its offset. */
function countAt (w: Writer): number {
  const at = w.pos
  w.u32(0)
  return at
}

function addWaiter (rec: Rec, token: number): void {
  // A new list: the old one may be shared.
  if (rec.waiters === undefined) rec.waiters = [token]
  else if (!rec.waiters.includes(token)) rec.waiters = [...rec.waiters, token]
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
