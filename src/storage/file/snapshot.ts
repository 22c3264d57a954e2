/**
 * The binary form of a queue's state in a snapshot file (the body after the file header and the
 * segment offset; see log.ts). Written from {@link QueueState.image} and read back into
 * {@link QueueState.restore}, so a process that loads a snapshot continues exactly like one that
 * replayed the log.
 *
 * Format 4 (magic 'RQS3'), and format 5, this version's (the same magic: format 5 adds the mask
 * bit {@link M_TRACE}, which a format 4 snapshot never sets, so it reads as one):
 *
 *   now f64, last stamp f64, paused u8, retention (u8 present, then age and count f64 for
 *   completed, failed, cancelled), totals (6 × f64), workers (u32 n, each: id, host, pid,
 *   concurrency, running, startedAt, lastSeen, expiresAt), failure groups (u32 n, each: key, name,
 *   message, frame), then the records: ready (claim order), processing (by stamp), rest (delayed,
 *   failing, completed, failed, cancelled by stamp, then result-cache-only), each a u32 count and
 *   records.
 *
 * A record is: state u8, a u32 mask of the fields that differ from a new job's, id, createdAt,
 * resultTTL, maxAttempts, stamp, enteredAt, then the masked fields in mask-bit order. Most records
 * are untouched queued jobs or settled ones, so most fields are left out.
 *
 * Format 3 snapshots (magic 'RQS2', relayq before issue 9) are still read: {@link decodeLegacyState}.
 */
import type { AttemptRecord, QueueTotals, WorkerEntry } from '../types.ts'
import { STATES, Tomb, newRecord, type AttemptOutcome, type Entry, type Rec } from '../job-record.ts'
import { QueueState, type StateImage } from '../queue-state.ts'
import { DecodeError, type Reader, type Writer } from './codec.ts'
import { validTrace } from '../../trace-context.ts'
import { decodeGroupFields, decodeRetention, decodeWorker, encodeGroupFields, encodeRetention, encodeWorker } from './ops.ts'

const STATE_CODE = new Map(STATES.map((s, i) => [s, i]))
const OUTCOMES: ReadonlyArray<AttemptOutcome | ''> = ['', 'completed', 'failed', 'retried', 'stalled', 'cancelled', 'released']
const OUTCOME_CODE = new Map(OUTCOMES.map((o, i) => [o, i]))
const TOTALS: ReadonlyArray<keyof QueueTotals> = ['enqueued', 'completed', 'failed', 'retried', 'stalled', 'cancelled']

const M_ATTEMPTS = 1 << 0
const M_STALLS = 1 << 1
const M_DUE = 1 << 2
const M_LEASE = 1 << 3
const M_WORKER = 1 << 4
const M_CANCEL = 1 << 5
const M_EXPIRES = 1 << 6
const M_PAYLOAD = 1 << 7
const M_RESULT = 1 << 8
const M_ERROR = 1 << 9
const M_WAITERS = 1 << 10
const M_RETRIES = 1 << 11
const M_READY = 1 << 12
const M_DELAY = 1 << 13
const M_RUN_TIMEOUT = 1 << 14
const M_STARTED = 1 << 15
const M_FINISHED = 1 << 16
const M_GROUP = 1 << 17
const M_HISTORY = 1 << 18
/** Format 5: the record carries a trace context (a format 4 snapshot never sets this bit). */
const M_TRACE = 1 << 19

/** Writes `state` (format 4). */
export function encodeState (w: Writer, state: QueueState): void {
  const image = state.image()
  w.f64(image.now)
  w.f64(image.stamp)
  w.u8(image.paused ? 1 : 0)
  if (image.retention === undefined) {
    w.u8(0)
  } else {
    w.u8(1)
    encodeRetention(w, image.retention)
  }
  for (const key of TOTALS) w.f64(image.totals[key])
  w.u32(image.workers.length)
  for (const worker of image.workers) {
    encodeWorker(w, worker)
    w.f64(worker.lastSeen)
    w.f64(worker.expiresAt)
  }
  w.u32(image.groups.length)
  for (const g of image.groups) encodeGroupFields(w, g)
  for (const list of [image.ready, image.processing, image.rest]) {
    w.u32(list.length)
    for (const rec of list) encodeRec(w, rec)
  }
}

/** Reads what {@link encodeState} wrote; throws DecodeError on anything it cannot have written. */
export function decodeState (r: Reader, self: number): QueueState {
  const now = r.f64()
  const stamp = r.f64()
  const paused = r.u8() === 1
  const retention = r.u8() === 1 ? decodeRetention(r) : undefined
  const totals = Object.fromEntries(TOTALS.map(key => [key, r.f64()])) as unknown as QueueTotals
  const workers: WorkerEntry[] = []
  for (let n = r.u32(); n > 0; n--) workers.push({ ...decodeWorker(r), lastSeen: r.f64(), expiresAt: r.f64() })
  const groups = []
  for (let n = r.u32(); n > 0; n--) groups.push(decodeGroupFields(r))
  const list = (): Rec[] => {
    const recs: Rec[] = []
    for (let n = r.u32(); n > 0; n--) recs.push(decodeRec(r))
    return recs
  }
  const image: StateImage = { now, stamp, paused, retention, totals, workers, groups, ready: list(), processing: list(), rest: list() }
  if (r.pos !== r.end) throw new DecodeError('Trailing bytes in a snapshot')
  return QueueState.restore(image, self)
}

function encodeRec (w: Writer, rec: Entry): void {
  if (rec instanceof Tomb) {
    encodeTomb(w, rec)
    return
  }
  let mask = 0
  if (rec.attempts !== 0) mask |= M_ATTEMPTS
  if (rec.stalls !== 0) mask |= M_STALLS
  // One slot of the record holds either (a due time, a lease): each written only in its states.
  if ((rec.state === 'delayed' || rec.state === 'failing') && rec.dueAt !== 0) mask |= M_DUE
  if (rec.state === 'processing' && rec.leaseUntil !== 0) mask |= M_LEASE
  if (rec.worker !== '') mask |= M_WORKER
  if (rec.cancelRequested) mask |= M_CANCEL
  if (rec.expiresAt !== Infinity) mask |= M_EXPIRES
  if (rec.payload.length !== 0) mask |= M_PAYLOAD
  if (rec.result !== undefined) mask |= M_RESULT
  if (rec.error !== undefined) mask |= M_ERROR
  if (rec.waiters !== undefined && rec.waiters.length > 0) mask |= M_WAITERS
  if (rec.retries !== 0) mask |= M_RETRIES
  if (rec.readyAt !== rec.createdAt) mask |= M_READY
  if (rec.delay !== 0) mask |= M_DELAY
  if (rec.runTimeout !== 0) mask |= M_RUN_TIMEOUT
  if (rec.attemptStartedAt !== 0) mask |= M_STARTED
  if (rec.lastOutcome !== '') mask |= M_FINISHED
  if (rec.group !== '') mask |= M_GROUP
  if (rec.history !== undefined && rec.history.length > 0) mask |= M_HISTORY
  if (rec.trace !== undefined) mask |= M_TRACE
  w.u8(STATE_CODE.get(rec.state) as number)
  w.u32(mask)
  w.str(rec.id)
  w.f64(rec.createdAt)
  w.f64(rec.resultTTL)
  w.f64(rec.maxAttempts)
  w.f64(rec.stamp)
  w.f64(rec.enteredAt)
  if ((mask & M_ATTEMPTS) !== 0) w.f64(rec.attempts)
  if ((mask & M_STALLS) !== 0) w.f64(rec.stalls)
  if ((mask & M_DUE) !== 0) w.f64(rec.dueAt)
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
  if ((mask & M_RETRIES) !== 0) w.f64(rec.retries)
  if ((mask & M_READY) !== 0) w.f64(rec.readyAt)
  if ((mask & M_DELAY) !== 0) w.f64(rec.delay)
  if ((mask & M_RUN_TIMEOUT) !== 0) w.f64(rec.runTimeout)
  if ((mask & M_STARTED) !== 0) {
    w.f64(rec.attemptStartedAt)
  }
  if ((mask & M_FINISHED) !== 0) {
    w.u8(OUTCOME_CODE.get(rec.lastOutcome) as number)
  }
  if ((mask & M_GROUP) !== 0) w.str(rec.group)
  if ((mask & M_HISTORY) !== 0) {
    const history = rec.history as AttemptRecord[]
    w.u32(history.length)
    for (const a of history) {
      w.f64(a.attempt)
      w.f64(a.startedAt)
      w.f64(a.finishedAt ?? 0)
      w.str(a.worker)
      w.u8(OUTCOME_CODE.get(a.outcome ?? '') as number)
      if (a.error === undefined) {
        w.u8(0)
      } else {
        w.u8(1)
        w.bytes(a.error)
      }
    }
  }
  if ((mask & M_TRACE) !== 0) w.str(rec.trace as string)
}

/**
 * A record out of history with only its result cache, as a record of the same format: what a
 * tombstone keeps, the other fields left at a new job's (no reader uses them; restore makes it a
 * tombstone again).
 */
function encodeTomb (w: Writer, t: Tomb): void {
  const out = t.result ?? t.error
  const mask = (t.attempts !== 0 ? M_ATTEMPTS : 0) | M_EXPIRES | (t.result !== undefined ? M_RESULT : 0) | (t.error !== undefined ? M_ERROR : 0)
  w.u8(STATE_CODE.get(t.state) as number)
  w.u32(mask)
  w.str(t.id)
  w.f64(t.createdAt)
  w.f64(0)
  w.f64(t.maxAttempts)
  w.f64(-1)
  w.f64(t.createdAt)
  if ((mask & M_ATTEMPTS) !== 0) w.f64(t.attempts)
  w.f64(t.expiresAt)
  if (out !== undefined) w.bytes(out)
}

function decodeRec (r: Reader): Rec {
  const code = r.u8()
  if (code >= STATES.length) throw new DecodeError(`Unknown job state ${code}`)
  const mask = r.u32()
  const id = r.str()
  const createdAt = r.f64()
  const resultTTL = r.f64()
  const maxAttempts = r.f64()
  const stamp = r.f64()
  const enteredAt = r.f64()
  const rec: Rec = newRec(id, STATES[code], createdAt, resultTTL, maxAttempts, stamp, enteredAt)
  if ((mask & M_ATTEMPTS) !== 0) rec.attempts = r.f64()
  if ((mask & M_STALLS) !== 0) rec.stalls = r.f64()
  // One slot holds both (see Rec): earlier builds wrote the one of a past state too.
  const due = (mask & M_DUE) !== 0 ? r.f64() : 0
  const lease = (mask & M_LEASE) !== 0 ? r.f64() : 0
  if (rec.state === 'processing') rec.leaseUntil = lease
  else if (rec.state === 'delayed' || rec.state === 'failing') rec.dueAt = due
  if ((mask & M_WORKER) !== 0) rec.worker = r.str()
  rec.cancelRequested = (mask & M_CANCEL) !== 0
  if ((mask & M_EXPIRES) !== 0) rec.expiresAt = r.f64()
  if ((mask & M_PAYLOAD) !== 0) rec.payload = r.bytes()
  if ((mask & M_RESULT) !== 0) rec.result = r.bytes()
  if ((mask & M_ERROR) !== 0) rec.error = r.bytes()
  if ((mask & M_WAITERS) !== 0) rec.waiters = readWaiters(r)
  if ((mask & M_RETRIES) !== 0) rec.retries = r.f64()
  if ((mask & M_READY) !== 0) rec.readyAt = r.f64()
  if ((mask & M_DELAY) !== 0) rec.delay = r.f64()
  if ((mask & M_RUN_TIMEOUT) !== 0) rec.runTimeout = r.f64()
  if ((mask & M_STARTED) !== 0) {
    rec.attemptStartedAt = r.f64()
  }
  if ((mask & M_FINISHED) !== 0) {
    rec.lastOutcome = outcome(r.u8())
  }
  if ((mask & M_GROUP) !== 0) rec.group = r.str()
  if ((mask & M_HISTORY) !== 0) {
    const history: AttemptRecord[] = []
    for (let n = r.u32(); n > 0; n--) {
      const attempt = r.f64()
      const startedAt = r.f64()
      const finishedAt = r.f64()
      const worker = r.str()
      const ended = outcome(r.u8())
      const error = r.u8() === 1 ? r.bytes() : undefined
      history.push({ attempt, startedAt, worker, ...(ended !== '' && { finishedAt, outcome: ended }), ...(error !== undefined && { error }) })
    }
    rec.history = history
  }
  if ((mask & M_TRACE) !== 0) {
    const trace = validTrace(r.str()) // untrusted on read: a bad one is dropped
    if (trace !== undefined) rec.trace = trace
  }
  return rec
}

function outcome (code: number): AttemptOutcome | '' {
  if (code >= OUTCOMES.length) throw new DecodeError(`Unknown attempt outcome ${code}`)
  return OUTCOMES[code]
}

function readWaiters (r: Reader): number[] {
  const waiters: number[] = []
  for (let k = r.u32(); k > 0; k--) waiters.push(r.f64())
  return waiters
}

/** A decoded record's base: a new job's fields, in `state` at `stamp`. */
function newRec (id: string, state: Rec['state'], createdAt: number, resultTTL: number, maxAttempts: number, stamp: number, enteredAt: number): Rec {
  const rec = newRecord(id, createdAt, resultTTL, maxAttempts)
  rec.state = state
  rec.enteredAt = enteredAt // before the stamp: the record keeps the stamp relative to it
  rec.stamp = stamp
  return rec
}

/**
 * Reads a format 3 snapshot (relayq before issue 9): no stamps, history or settings. Records get
 * stamps in the order the snapshot holds them (ready, processing, then the rest), entered at the
 * snapshot's time; terminal ones are in history (their payload was not kept).
 */
export function decodeLegacyState (r: Reader, self: number): QueueState {
  const now = r.f64()
  r.f64() // the due-order sequence of format 3 (ties of due times now break by id)
  let stamp = 0
  const list = (): Rec[] => {
    const recs: Rec[] = []
    for (let n = r.u32(); n > 0; n--) {
      const rec = decodeLegacyRec(r, now)
      rec.stamp = ++stamp
      recs.push(rec)
    }
    return recs
  }
  const ready = list()
  const processing = list()
  const rest = list()
  const totals: QueueTotals = { enqueued: 0, completed: 0, failed: 0, retried: 0, stalled: 0, cancelled: 0 }
  return QueueState.restore({ now, stamp, paused: false, retention: undefined, totals, workers: [], groups: [], ready, processing, rest }, self)
}

function decodeLegacyRec (r: Reader, now: number): Rec {
  const code = r.u8()
  if (code >= STATES.length) throw new DecodeError(`Unknown job state ${code}`)
  const mask = r.u8() | (r.u8() << 8)
  const id = r.str()
  const rec = newRec(id, STATES[code], r.f64(), r.f64(), r.f64(), 0, now)
  if ((mask & 1) !== 0) rec.attempts = r.f64()
  if ((mask & 2) !== 0) rec.stalls = r.f64()
  const due = (mask & 4) !== 0 ? r.f64() : 0
  if ((mask & 4) !== 0) r.f64() // the due-order sequence of format 3
  const lease = (mask & 8) !== 0 ? r.f64() : 0
  if (rec.state === 'processing') rec.leaseUntil = lease
  else if (rec.state === 'delayed' || rec.state === 'failing') rec.dueAt = due
  if ((mask & 16) !== 0) rec.worker = r.str()
  rec.cancelRequested = (mask & 32) !== 0
  if ((mask & 64) !== 0) rec.expiresAt = r.f64()
  if ((mask & 128) !== 0) rec.payload = r.bytes()
  if ((mask & 256) !== 0) rec.result = r.bytes()
  if ((mask & 512) !== 0) rec.error = r.bytes()
  if ((mask & 1024) !== 0) rec.waiters = readWaiters(r)
  return rec
}
