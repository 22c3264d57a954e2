/**
 * One job as QueueState keeps it (memory and file backends), and what is derived from it for
 * readers: the summary of a list row, the detail of one job, and its attempt history.
 */
import type {
  ActiveState, AdminAction, AttemptRecord, ClaimedJob, EnqueueOutcome, JobDetail, JobState, JobSummary, Retention, RetentionRule, TerminalState
} from './types.ts'

/** How an attempt ended. */
export type AttemptOutcome = NonNullable<AttemptRecord['outcome']>

/** One job. Also handed to claimers as their ClaimedJob (they read it before any later change). */
export interface Rec extends ClaimedJob {
  readonly id: string
  payload: Buffer
  readonly createdAt: number
  readonly resultTTL: number
  delay: number
  runTimeout: number
  maxAttempts: number
  state: JobState
  /** Attempts of the current series (reset by an operator retry). */
  attempts: number
  stalls: number
  /** Operator retries so far. */
  retries: number
  /** Epoch ms when a delayed/failing job becomes ready. */
  dueAt: number
  /** Epoch ms since which the job is (or was last) claimable. */
  readyAt: number
  /** Epoch ms when a processing job's lease expires. */
  leaseUntil: number
  /** The worker of the running or last attempt. */
  worker: string
  cancelRequested: boolean
  /** Epoch ms when the result cache of a terminal record ends (getStatus, dedup); Infinity while active. */
  expiresAt: number
  result: Buffer | undefined
  error: Buffer | undefined
  /** Storage instances (their tokens) that wait for the outcome: they get the `done` notice. Shared between records: replaced, never changed. */
  waiters: readonly number[] | undefined
  /**
   * Position in the index of its state; -1 once in no index (dropped; or, terminal, out of
   * history: then only its result cache remains).
   */
  stamp: number
  /** Epoch ms when it entered its state (for a terminal job: when it finished). */
  enteredAt: number
  /** Epoch ms when the running (or last) attempt started. */
  attemptStartedAt: number
  /** How the attempt that ended the job ended; '' when none did (running, waiting, or cancelled while waiting). */
  lastOutcome: AttemptOutcome | ''
  /** Failure group key of a failed job, '' when none. */
  group: string
  /** Attempts that ended without ending the job (retried, released, stalled), oldest first, at most {@link HISTORY_LIMIT}. */
  history: AttemptRecord[] | undefined
  /** The trace context it carries (validated); a property only of records that have one, so others pay nothing. */
  trace?: string
}

const EMPTY = Buffer.alloc(0)

/**
 * Zero as a double: the epoch-ms fields that start at 0 (due time, lease, attempt start) hold
 * doubles later, and a field that starts as a small integer changes representation on its first
 * large value, which changes the object layout of every record made before (a deep queue's records
 * each paid a migration at their claim). `-0 === 0`, and these fields are only read once set.
 */
const ZERO = -0

/** A record with a new job's fields (queued, in no index yet): callers set what differs. */
export function newRecord (id: string, createdAt: number, resultTTL: number, maxAttempts: number): Rec {
  return {
    id,
    payload: EMPTY,
    createdAt,
    resultTTL,
    maxAttempts,
    delay: 0,
    runTimeout: 0,
    state: 'queued',
    attempts: 0,
    stalls: 0,
    retries: 0,
    dueAt: ZERO,
    readyAt: createdAt,
    leaseUntil: ZERO,
    worker: '',
    cancelRequested: false,
    expiresAt: Infinity,
    result: undefined,
    error: undefined,
    waiters: undefined,
    stamp: -1,
    enteredAt: createdAt,
    attemptStartedAt: ZERO,
    lastOutcome: '',
    group: '',
    history: undefined
  }
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
export function existingOutcome (rec: Rec): EnqueueOutcome {
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
