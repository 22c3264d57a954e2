/**
 * One job as QueueState keeps it (memory and file backends), and what is derived from it for
 * readers: the summary of a list row, the detail of one job, and its attempt history.
 */
import type {
  ActiveState, AdminAction, AttemptRecord, ClaimedJob, EnqueueOutcome, JobDetail, JobState, JobSummary, Retention, RetentionRule, TerminalState
} from './types.ts'

/** How an attempt ended. */
export type AttemptOutcome = NonNullable<AttemptRecord['outcome']>

const EMPTY = Buffer.alloc(0)

/** The fields few jobs use: allocated on a job's first use of one, so other records pay one slot. */
interface Rare {
  /** Stalls of the current series. */
  stalls: number
  /** Operator retries so far. */
  retries: number
  /** The delay as enqueued (ms). */
  delay: number
  /** The job's own run-time limit (ms), 0 when unset. */
  runTimeout: number
  /** Failure group key of a failed job in history, '' when none. */
  group: string
  /** Attempts that ended without ending the job (retried, released, stalled), oldest first, at most {@link HISTORY_LIMIT}. */
  history: AttemptRecord[] | undefined
  cancelRequested: boolean
}

/**
 * `n` as a small integer when it is one: the interpreter gives the difference of two heap numbers
 * as a heap number even when it is integral, and a record would keep that box.
 */
function small (n: number): number {
  const i = n | 0
  return i === n ? i : n
}

function rare (): Rare {
  return { stalls: 0, retries: 0, delay: 0, runTimeout: 0, group: '', history: undefined, cancelRequested: false }
}

/**
 * One job. Also handed to claimers as their ClaimedJob (they read it before any later change).
 *
 * Layout (a queue holds many of these, and every one is scanned by the garbage collector while it
 * lives): times are kept as ms relative to `createdAt`, small integers stored in the object
 * itself, instead of epoch ms, which V8 boxes in a heap number of their own; the stamp as its
 * distance from `enteredAt × 1000`; one slot for the due time (delayed, failing), the lease
 * deadline (processing) and the start of the last attempt (terminal), states that exclude each
 * other; one for the result (completed) and the error (other states), which never coexist; and
 * the fields few jobs use in a {@link Rare} object. The accessors give the absolute values.
 * Relative times are exact for integer ms (every clock of the project); a fractional clock keeps
 * them exact within a factor 2 of the creation time.
 */
export class Rec implements ClaimedJob {
  readonly id: string
  payload: Buffer
  readonly resultTTL: number
  maxAttempts: number
  state: JobState
  /** Attempts of the current series (reset by an operator retry). */
  attempts: number
  /** The worker of the running or last attempt. */
  worker: string
  /** Storage instances (their tokens) that wait for the outcome: they get the `done` notice. Shared between records: replaced, never changed. */
  waiters: readonly number[] | undefined
  /** How the attempt that ended the job ended; '' when none did (running, waiting, or cancelled while waiting). */
  lastOutcome: AttemptOutcome | ''
  /**
   * The trace context it carries (validated); an own property only of records that have one
   * (claimers see no `trace` otherwise), added after construction: the rare field of another shape.
   */
  declare trace?: string
  /** Epoch ms of the first enqueue (the one boxed number of the record). */
  readonly #created: number
  /** `enteredAt − createdAt`. */
  #entered: number
  /** `stamp − enteredAt × 1000`; null when in no index (stamp −1). */
  #stampDelta: number | null
  /** `readyAt − createdAt`. */
  #ready: number
  /** `dueAt`, `leaseUntil` or `attemptStartedAt` (by state) − createdAt. */
  #until: number
  /** `expiresAt − createdAt`; undefined while active (Infinity). */
  #expires: number | undefined
  /** The result of a completed job, the last error of any other. */
  #out: Buffer | undefined
  #rare: Rare | undefined

  /** A new job's record (queued, in no index yet): callers set what differs. */
  constructor (id: string, createdAt: number, resultTTL: number, maxAttempts: number) {
    this.id = id
    this.payload = EMPTY
    this.resultTTL = resultTTL
    this.maxAttempts = maxAttempts
    this.state = 'queued'
    this.attempts = 0
    this.worker = ''
    this.waiters = undefined
    this.lastOutcome = ''
    this.#created = createdAt
    this.#entered = 0
    this.#stampDelta = null
    this.#ready = 0
    this.#until = 0
    this.#expires = undefined
    this.#out = undefined
    this.#rare = undefined
  }

  /** A copy (its own {@link Rare}: the copy's history is changed apart). */
  clone (): Rec {
    const r = new Rec(this.id, this.#created, this.resultTTL, this.maxAttempts)
    r.payload = this.payload
    r.state = this.state
    r.attempts = this.attempts
    r.worker = this.worker
    r.waiters = this.waiters
    r.lastOutcome = this.lastOutcome
    r.#entered = this.#entered
    r.#stampDelta = this.#stampDelta
    r.#ready = this.#ready
    r.#until = this.#until
    r.#expires = this.#expires
    r.#out = this.#out
    r.#rare = this.#rare === undefined ? undefined : { ...this.#rare }
    if (this.trace !== undefined) r.trace = this.trace
    return r
  }

  get createdAt (): number { return this.#created }

  /** Epoch ms when it entered its state (for a terminal job: when it finished). Set it before {@link stamp}. */
  get enteredAt (): number { return this.#created + this.#entered }
  set enteredAt (t: number) { this.#entered = small(t - this.#created) }

  /** Position in the index of its state; -1 once in no index (dropped; or, terminal, out of history). */
  get stamp (): number {
    const d = this.#stampDelta
    return d === null ? -1 : (this.#created + this.#entered) * 1000 + d
  }

  set stamp (s: number) {
    this.#stampDelta = s === -1 ? null : small(s - (this.#created + this.#entered) * 1000)
  }

  /** Epoch ms since which the job is (or was last) claimable. */
  get readyAt (): number { return this.#created + this.#ready }
  set readyAt (t: number) { this.#ready = small(t - this.#created) }

  /** Epoch ms when a delayed/failing job becomes ready. */
  get dueAt (): number { return this.#created + this.#until }
  set dueAt (t: number) { this.#until = small(t - this.#created) }

  /** Epoch ms when a processing job's lease expires. */
  get leaseUntil (): number { return this.#created + this.#until }
  set leaseUntil (t: number) { this.#until = small(t - this.#created) }

  /**
   * Epoch ms when the running (or last) attempt started; 0 when none is kept. A running attempt
   * started when the job entered `processing`; set it on a terminal record only.
   */
  get attemptStartedAt (): number {
    if (this.state === 'processing') return this.enteredAt
    return isTerminal(this.state) && this.lastOutcome !== '' ? this.#created + this.#until : 0
  }

  set attemptStartedAt (t: number) {
    if (isTerminal(this.state)) this.#until = small(t - this.#created)
  }

  /** Epoch ms when the result cache of a terminal record ends (getStatus, dedup); Infinity while active. */
  get expiresAt (): number {
    const e = this.#expires
    return e === undefined ? Infinity : this.#created + e
  }

  set expiresAt (t: number) { this.#expires = t === Infinity ? undefined : small(t - this.#created) }

  get result (): Buffer | undefined { return this.state === 'completed' ? this.#out : undefined }
  set result (b: Buffer | undefined) { this.#out = b }

  get error (): Buffer | undefined { return this.state === 'completed' ? undefined : this.#out }
  set error (b: Buffer | undefined) { this.#out = b }

  /** Sets the result (completed) or error (any other state) for the state the job is moving to. */
  setOutcome (b: Buffer | undefined): void { this.#out = b }

  get stalls (): number { return this.#rare?.stalls ?? 0 }
  set stalls (n: number) { if (n !== 0 || this.#rare !== undefined) (this.#rare ??= rare()).stalls = n }

  /** Operator retries so far. */
  get retries (): number { return this.#rare?.retries ?? 0 }
  set retries (n: number) { if (n !== 0 || this.#rare !== undefined) (this.#rare ??= rare()).retries = n }

  get delay (): number { return this.#rare?.delay ?? 0 }
  set delay (n: number) { if (n !== 0 || this.#rare !== undefined) (this.#rare ??= rare()).delay = n }

  get runTimeout (): number { return this.#rare?.runTimeout ?? 0 }
  set runTimeout (n: number) { if (n !== 0 || this.#rare !== undefined) (this.#rare ??= rare()).runTimeout = n }

  /** Failure group key of a failed job, '' when none. */
  get group (): string { return this.#rare?.group ?? '' }
  set group (g: string) { if (g !== '' || this.#rare !== undefined) (this.#rare ??= rare()).group = g }

  /** Attempts that ended without ending the job (retried, released, stalled), oldest first, at most {@link HISTORY_LIMIT}. */
  get history (): AttemptRecord[] | undefined { return this.#rare?.history }
  set history (h: AttemptRecord[] | undefined) { if (h !== undefined || this.#rare !== undefined) (this.#rare ??= rare()).history = h }

  get cancelRequested (): boolean { return this.#rare?.cancelRequested ?? false }
  set cancelRequested (c: boolean) { if (c || this.#rare !== undefined) (this.#rare ??= rare()).cancelRequested = c }

  static {
    // The relative times start as small integers and stay so, but may hold another number (a far
    // future TTL, a fractional clock): a field V8 saw only small integers in would then change
    // representation, and the layout of every record made so far with it. Seen once with null,
    // the fields take any value in place (small integers still unboxed).
    const r = new Rec('', 0, 0, 0)
    const any = null as unknown as number
    r.#entered = any
    r.#ready = any
    r.#until = any
  }
}

/**
 * What is left of a terminal job pushed out of history while its result cache lives: what
 * getStatus, getResult and the dedup of an enqueue read. It is in no index (stamp −1).
 */
export class Tomb {
  readonly id: string
  state: TerminalState
  attempts: number
  readonly maxAttempts: number
  readonly createdAt: number
  /** `expiresAt − createdAt`. */
  #expires: number
  /** The result of a completed job, the error of a failed one. */
  readonly #out: Buffer | undefined

  constructor (rec: Rec) {
    this.id = rec.id
    this.state = rec.state as TerminalState
    this.attempts = rec.attempts
    this.maxAttempts = rec.maxAttempts
    this.createdAt = rec.createdAt
    this.#expires = small(rec.expiresAt - rec.createdAt)
    this.#out = rec.result ?? rec.error
  }

  get stamp (): number { return -1 }
  get waiters (): undefined { return undefined }
  get result (): Buffer | undefined { return this.state === 'completed' ? this.#out : undefined }
  get error (): Buffer | undefined { return this.state === 'completed' ? undefined : this.#out }

  get expiresAt (): number { return this.createdAt + this.#expires }
  set expiresAt (t: number) { this.#expires = small(t - this.createdAt) }

  static {
    // See Rec's: any number in place.
    const t = new Tomb(new Rec('', 0, 0, 0))
    t.#expires = null as unknown as number
  }
}

/** A job as QueueState holds it by id. */
export type Entry = Rec | Tomb

/** A record with a new job's fields (queued, in no index yet): callers set what differs. */
export function newRecord (id: string, createdAt: number, resultTTL: number, maxAttempts: number): Rec {
  return new Rec(id, createdAt, resultTTL, maxAttempts)
}

/** The states each operator action applies to (see the lifecycle table in types.ts). */
export const ACTION_STATES: Readonly<Record<AdminAction, readonly JobState[]>> = {
  retry: ['failed', 'completed', 'cancelled', 'failing'],
  promote: ['delayed', 'failing'],
  cancel: ['queued', 'delayed', 'failing', 'processing'],
  remove: ['queued', 'delayed', 'failing', 'completed', 'failed', 'cancelled']
}

/** Most attempt records kept per job. */
export const HISTORY_LIMIT = 20

export const STATES: readonly JobState[] = ['queued', 'delayed', 'processing', 'failing', 'completed', 'failed', 'cancelled']
export const TERMINAL_STATES: readonly TerminalState[] = ['completed', 'failed', 'cancelled']

export function isTerminal (state: JobState): state is TerminalState {
  return state === 'completed' || state === 'failed' || state === 'cancelled'
}

const HOUR = 3_600_000
const WEEK = 7 * 24 * HOUR

/** Retention of a queue that has none stored (see the Retention doc in types.ts). */
export const DEFAULT_RETENTION: Retention = Object.freeze({
  completed: Object.freeze({ age: HOUR, count: 1_000 }),
  failed: Object.freeze({ age: WEEK, count: 10_000 }),
  cancelled: Object.freeze({ age: WEEK, count: 10_000 })
})

/** The smallest stamp still within `rule`'s age at `now`: a job is past it once `floor(stamp / 1000) <= now - age`. */
export function ageFloor (rule: RetentionRule, now: number): number {
  return (now - rule.age + 1) * 1000
}

/**
 * Compares ids by code point (= the byte order of their UTF-8 form, Redis's order), not by UTF-16
 * unit as `<` does: the two differ when a supplementary character meets one in U+E000-U+FFFF.
 */
export function compareIds (a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return fixup(x) - fixup(y)
  }
  return a.length - b.length
}

/** Moves surrogates above U+E000-U+FFFF, as the code points they encode are. */
function fixup (unit: number): number {
  return unit < 0xd800 ? unit : unit < 0xe000 ? unit + 0x2000 : unit - 0x800
}

/** What an enqueue of an id that is taken reports. */
export function existingOutcome (rec: Entry): EnqueueOutcome {
  switch (rec.state) {
    case 'completed': return { status: 'completed', result: rec.result ?? Buffer.alloc(0) }
    case 'failed': return { status: 'failed', error: rec.error ?? Buffer.alloc(0) }
    case 'cancelled': return { status: 'cancelled' }
    default: return { status: 'duplicate', state: rec.state as ActiveState }
  }
}

/** Appends an ended attempt to the job's history, keeping the newest {@link HISTORY_LIMIT}. */
export function recordAttempt (rec: Rec, finishedAt: number, outcome: AttemptOutcome, error: Buffer | undefined): void {
  const entry: AttemptRecord = {
    attempt: rec.attempts,
    startedAt: rec.attemptStartedAt,
    finishedAt,
    worker: rec.worker,
    outcome,
    ...(error !== undefined && { error })
  }
  if (rec.history === undefined) rec.history = [entry]
  else {
    rec.history.push(entry)
    if (rec.history.length > HISTORY_LIMIT) rec.history.shift()
  }
}

/** The attempt that ended a terminal job, from the record's own fields (no object is kept for it). */
export function lastAttempt (rec: Rec): AttemptRecord | undefined {
  if (rec.lastOutcome === '') return undefined
  const failedHere = rec.lastOutcome === 'failed'
  return {
    attempt: rec.attempts,
    startedAt: rec.attemptStartedAt,
    finishedAt: rec.enteredAt,
    worker: rec.worker,
    outcome: rec.lastOutcome,
    ...(failedHere && rec.error !== undefined && { error: rec.error })
  }
}

/** A list row. */
export function toSummary (rec: Rec): JobSummary {
  const s: { -readonly [K in keyof JobSummary]: JobSummary[K] } = {
    id: rec.id,
    state: rec.state,
    stamp: rec.stamp,
    enteredAt: rec.enteredAt,
    createdAt: rec.createdAt,
    attempts: rec.attempts,
    maxAttempts: rec.maxAttempts
  }
  if (rec.state === 'delayed' || rec.state === 'failing') s.dueAt = rec.dueAt
  if (rec.state === 'processing') {
    s.worker = rec.worker
    s.leaseUntil = rec.leaseUntil
  }
  if ((rec.state === 'failed' || rec.state === 'failing') && rec.error !== undefined) s.error = rec.error
  if (rec.state === 'failed' && rec.group !== '') s.group = rec.group
  return s
}

/** Everything about one job; `ahead` is computed by the caller for queued jobs. */
export function toDetail (rec: Rec, ahead: number | undefined): JobDetail {
  const history = rec.history === undefined ? [] : rec.history.slice()
  const last = lastAttempt(rec)
  if (last !== undefined) history.push(last)
  if (rec.state === 'processing') history.push({ attempt: rec.attempts, startedAt: rec.attemptStartedAt, worker: rec.worker })
  if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT)
  const terminal = isTerminal(rec.state)
  return {
    ...toSummary(rec),
    payload: rec.payload,
    resultTTL: rec.resultTTL,
    delay: rec.delay,
    runTimeout: rec.runTimeout,
    ...(history.length > 0 && { startedAt: history[0].startedAt }),
    ...(terminal && { finishedAt: rec.enteredAt, resultExpiresAt: rec.expiresAt }),
    ...(rec.state === 'completed' && rec.result !== undefined && { result: rec.result }),
    stalls: rec.stalls,
    cancelRequested: rec.cancelRequested,
    waiters: rec.waiters?.length ?? 0,
    ...(ahead !== undefined && { ahead }),
    readyAt: rec.readyAt,
    retries: rec.retries,
    history
  }
}
