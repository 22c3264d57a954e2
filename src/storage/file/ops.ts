/**
 * The operations of the file backend's log and their binary form. A frame body is
 *
 *   token f64 (the writing storage instance), seq f64 (its commit number), time f64 (its clock, ms),
 *   op count u8, then each op: a code u8 and its fields.
 *
 * Every process applies a frame's ops, in order, through {@link applyOp}; the writer also keeps the
 * outcomes as its call's answer.
 *
 * Format 4 writes enqueue, settle and recover with codes 10 to 12 (they carry the run-time limit
 * and failure groups); the codes 1, 3 and 8 of format 3 are still read, so a format 3 log replays.
 * Format 5 adds code 17: an enqueue some of whose jobs carry a trace context, written as code 10
 * followed by a trailer (u32 n, then n × (job index u32, trace str)). An enqueue without any is
 * still code 10, so a format 4 log replays unchanged and tracing off costs no byte.
 */
import type { AdminAction, ErrorGroup, JobState, JobTarget, NewJob, Retention, Settlement, WorkerInfo } from '../types.ts'
import { STATES, TERMINAL_STATES } from '../job-record.ts'
import { DecodeError, type Reader, type Writer } from './codec.ts'
import { validTrace } from '../../trace-context.ts'
import type { QueueState } from '../queue-state.ts'

/** One operation of a frame: what a Storage call asks of the queue state. */
export type Op =
  | { readonly kind: 'enqueue', readonly jobs: readonly NewJob[] }
  | { readonly kind: 'claim', readonly worker: string, readonly max: number, readonly leaseMs: number }
  | { readonly kind: 'settle', readonly worker: string, readonly settlements: readonly Settlement[] }
  | { readonly kind: 'extend', readonly worker: string, readonly ids: readonly string[], readonly leaseMs: number }
  | { readonly kind: 'cancel', readonly id: string }
  | { readonly kind: 'abort', readonly id: string, readonly ttl: number }
  | { readonly kind: 'ttl', readonly id: string, readonly ttl: number }
  | { readonly kind: 'recover', readonly maxStalls: number, readonly error: Buffer, readonly group?: ErrorGroup }
  | { readonly kind: 'apply', readonly action: AdminAction, readonly target: JobTarget, readonly limit: number }
  | { readonly kind: 'pause', readonly paused: boolean }
  | { readonly kind: 'retention', readonly retention: Retention }
  | { readonly kind: 'heartbeat', readonly worker: WorkerInfo, readonly ttl: number }
  /** Ends the segment: frames after the first seal in a segment are void; the log goes on in the next one. */
  | { readonly kind: 'seal' }

/** A decoded frame. */
export interface Frame {
  readonly token: number
  readonly seq: number
  readonly time: number
  readonly ops: readonly Op[]
}

const CODE = {
  claim: 2, extend: 4, cancel: 5, abort: 6, ttl: 7, seal: 9, enqueue: 10, settle: 11, recover: 12, apply: 13, pause: 14, retention: 15, heartbeat: 16, enqueueTraced: 17
} as const
/** Codes of format 3 still read. */
const LEGACY = { enqueue: 1, settle: 3, recover: 8 } as const
const SETTLE_CODE = { complete: 1, fail: 2, retry: 3, release: 4, cancel: 5 } as const
const ACTIONS: readonly AdminAction[] = ['retry', 'remove', 'cancel', 'promote']
const T_BEFORE = 1
const T_GROUP = 2
const T_AFTER = 4
const T_UNTIL = 8

/** Writes a frame body (the caller wraps it with {@link sealFrame}). */
export function encodeFrameBody (w: Writer, token: number, seq: number, time: number, ops: readonly Op[]): void {
  w.f64(token)
  w.f64(seq)
  w.f64(time)
  w.u8(ops.length)
  for (const op of ops) encodeOp(w, op)
}

function encodeOp (w: Writer, op: Op): void {
  w.u8(CODE[op.kind])
  switch (op.kind) {
    case 'enqueue': {
      const at = w.pos - 1
      let traced: Array<[number, string]> | undefined
      w.u32(op.jobs.length)
      for (let i = 0; i < op.jobs.length; i++) {
        const job = op.jobs[i]
        w.str(job.id)
        w.bytes(job.payload)
        w.f64(job.maxAttempts)
        w.f64(job.resultTTL)
        w.f64(job.delay)
        w.u8(job.notify === true ? 1 : 0)
        w.f64(job.runTimeout ?? 0)
        if (job.trace !== undefined) {
          const trace = validTrace(job.trace)
          if (trace !== undefined) (traced ??= []).push([i, trace])
        }
      }
      if (traced !== undefined) {
        // Only an enqueue that carries trace contexts has the trailer: others keep code 10, byte for byte.
        w.buf[at] = CODE.enqueueTraced
        w.u32(traced.length)
        for (const [i, trace] of traced) {
          w.u32(i)
          w.str(trace)
        }
      }
      break
    }
    case 'claim':
      w.str(op.worker)
      w.f64(op.max)
      w.f64(op.leaseMs)
      break
    case 'settle':
      w.str(op.worker)
      w.u32(op.settlements.length)
      for (const s of op.settlements) encodeSettlement(w, s)
      break
    case 'extend':
      w.str(op.worker)
      w.f64(op.leaseMs)
      w.u32(op.ids.length)
      for (const id of op.ids) w.str(id)
      break
    case 'cancel':
      w.str(op.id)
      break
    case 'abort':
    case 'ttl':
      w.str(op.id)
      w.f64(op.ttl)
      break
    case 'recover':
      w.f64(op.maxStalls)
      w.bytes(op.error)
      encodeGroup(w, op.group)
      break
    case 'apply':
      w.u8(ACTIONS.indexOf(op.action))
      w.f64(op.limit)
      encodeTarget(w, op.target)
      break
    case 'pause':
      w.u8(op.paused ? 1 : 0)
      break
    case 'retention':
      encodeRetention(w, op.retention)
      break
    case 'heartbeat':
      encodeWorker(w, op.worker)
      w.f64(op.ttl)
      break
    case 'seal':
      break
  }
}

/** A queue's retention: age and count of completed, failed and cancelled (also in snapshots). */
export function encodeRetention (w: Writer, retention: Retention): void {
  for (const state of TERMINAL_STATES) {
    w.f64(retention[state].age)
    w.f64(retention[state].count)
  }
}

export function decodeRetention (r: Reader): Retention {
  const rule = (): { age: number, count: number } => ({ age: r.f64(), count: r.f64() })
  return { completed: rule(), failed: rule(), cancelled: rule() }
}

/** A worker as its heartbeat describes it (also in snapshots). */
export function encodeWorker (w: Writer, worker: WorkerInfo): void {
  w.str(worker.id)
  w.str(worker.host)
  w.f64(worker.pid)
  w.f64(worker.concurrency)
  w.f64(worker.running)
  w.f64(worker.startedAt)
}

export function decodeWorker (r: Reader): WorkerInfo {
  const id = r.str()
  const host = r.str()
  return { id, host, pid: r.f64(), concurrency: r.f64(), running: r.f64(), startedAt: r.f64() }
}

/** A failure group's key, name, message and frame (also in snapshots). */
export function encodeGroupFields (w: Writer, group: ErrorGroup): void {
  w.str(group.key)
  w.str(group.name)
  w.str(group.message)
  w.str(group.frame)
}

export function decodeGroupFields (r: Reader): ErrorGroup {
  return { key: r.str(), name: r.str(), message: r.str(), frame: r.str() }
}

function encodeGroup (w: Writer, group: ErrorGroup | undefined): void {
  w.u8(group === undefined ? 0 : 1)
  if (group !== undefined) encodeGroupFields(w, group)
}

function decodeGroup (r: Reader): ErrorGroup | undefined {
  return r.u8() === 1 ? decodeGroupFields(r) : undefined
}

function encodeTarget (w: Writer, target: JobTarget): void {
  if ('ids' in target) {
    w.u8(0)
    w.u32(target.ids.length)
    for (const id of target.ids) w.str(id)
    return
  }
  w.u8(1 + STATES.indexOf(target.state))
  const flags = (target.before !== undefined ? T_BEFORE : 0) | (target.group !== undefined ? T_GROUP : 0) |
    (target.after !== undefined ? T_AFTER : 0) | (target.until !== undefined ? T_UNTIL : 0)
  w.u8(flags)
  if (target.before !== undefined) w.f64(target.before)
  if (target.group !== undefined) w.str(target.group)
  if (target.after !== undefined) w.f64(target.after)
  if (target.until !== undefined) w.f64(target.until)
}

function decodeTarget (r: Reader): JobTarget {
  const kind = r.u8()
  if (kind === 0) {
    const ids: string[] = new Array(r.u32())
    for (let i = 0; i < ids.length; i++) ids[i] = r.str()
    return { ids }
  }
  const state: JobState | undefined = STATES[kind - 1]
  if (state === undefined) throw new DecodeError(`Unknown state ${kind - 1}`)
  const flags = r.u8()
  return {
    state,
    ...((flags & T_BEFORE) !== 0 && { before: r.f64() }),
    ...((flags & T_GROUP) !== 0 && { group: r.str() }),
    ...((flags & T_AFTER) !== 0 && { after: r.f64() }),
    ...((flags & T_UNTIL) !== 0 && { until: r.f64() })
  }
}

function encodeSettlement (w: Writer, s: Settlement): void {
  w.u8(SETTLE_CODE[s.type])
  w.str(s.id)
  w.f64(s.attempt)
  switch (s.type) {
    case 'complete':
      w.bytes(s.result)
      w.f64(s.ttl)
      break
    case 'fail':
      w.bytes(s.error)
      w.f64(s.ttl)
      encodeGroup(w, s.group)
      break
    case 'retry':
      w.bytes(s.error)
      w.f64(s.delay)
      break
    case 'cancel':
      w.f64(s.ttl)
      break
    case 'release':
      break
  }
}

/** Reads a frame body; throws DecodeError on anything {@link encodeFrameBody} cannot have written. */
export function decodeFrameBody (r: Reader): Frame {
  const token = r.f64()
  const seq = r.f64()
  const time = r.f64()
  const ops: Op[] = new Array(r.u8())
  for (let i = 0; i < ops.length; i++) ops[i] = decodeOp(r)
  if (r.pos !== r.end) throw new DecodeError('Trailing bytes in a frame')
  return { token, seq, time, ops }
}

function decodeOp (r: Reader): Op {
  const code = r.u8()
  switch (code) {
    case CODE.enqueue:
    case CODE.enqueueTraced:
    case LEGACY.enqueue: {
      const jobs: NewJob[] = new Array(r.u32())
      for (let i = 0; i < jobs.length; i++) {
        const job = { id: r.str(), payload: r.bytes(), maxAttempts: r.f64(), resultTTL: r.f64(), delay: r.f64(), notify: r.u8() === 1 }
        jobs[i] = code === LEGACY.enqueue ? job : { ...job, runTimeout: r.f64() }
      }
      if (code === CODE.enqueueTraced) {
        // Trailer: (job index, trace context) pairs. Validated where they are applied (QueueState.enqueue).
        for (let n = r.u32(); n > 0; n--) {
          const i = r.u32()
          const trace = r.str()
          if (i >= jobs.length) throw new DecodeError('Trace of no job')
          jobs[i] = { ...jobs[i], trace }
        }
      }
      return { kind: 'enqueue', jobs }
    }
    case CODE.claim:
      return { kind: 'claim', worker: r.str(), max: r.f64(), leaseMs: r.f64() }
    case CODE.settle:
    case LEGACY.settle: {
      const worker = r.str()
      const settlements: Settlement[] = new Array(r.u32())
      for (let i = 0; i < settlements.length; i++) settlements[i] = decodeSettlement(r, code === CODE.settle)
      return { kind: 'settle', worker, settlements }
    }
    case CODE.extend: {
      const worker = r.str()
      const leaseMs = r.f64()
      const ids: string[] = new Array(r.u32())
      for (let i = 0; i < ids.length; i++) ids[i] = r.str()
      return { kind: 'extend', worker, ids, leaseMs }
    }
    case CODE.cancel:
      return { kind: 'cancel', id: r.str() }
    case CODE.abort:
      return { kind: 'abort', id: r.str(), ttl: r.f64() }
    case CODE.ttl:
      return { kind: 'ttl', id: r.str(), ttl: r.f64() }
    case CODE.recover:
      return { kind: 'recover', maxStalls: r.f64(), error: r.bytes(), group: decodeGroup(r) }
    case LEGACY.recover:
      return { kind: 'recover', maxStalls: r.f64(), error: r.bytes() }
    case CODE.apply: {
      const action = ACTIONS[r.u8()]
      if (action === undefined) throw new DecodeError('Unknown action')
      const limit = r.f64()
      return { kind: 'apply', action, limit, target: decodeTarget(r) }
    }
    case CODE.pause:
      return { kind: 'pause', paused: r.u8() === 1 }
    case CODE.retention:
      return { kind: 'retention', retention: decodeRetention(r) }
    case CODE.heartbeat:
      return { kind: 'heartbeat', worker: decodeWorker(r), ttl: r.f64() }
    case CODE.seal:
      return SEAL
    default:
      throw new DecodeError(`Unknown op code ${code}`)
  }
}

function decodeSettlement (r: Reader, groups: boolean): Settlement {
  const code = r.u8()
  const id = r.str()
  const attempt = r.f64()
  switch (code) {
    case SETTLE_CODE.complete: return { type: 'complete', id, attempt, result: r.bytes(), ttl: r.f64() }
    case SETTLE_CODE.fail: {
      const error = r.bytes()
      const ttl = r.f64()
      const group = groups ? decodeGroup(r) : undefined
      return { type: 'fail', id, attempt, error, ttl, ...(group !== undefined && { group }) }
    }
    case SETTLE_CODE.retry: return { type: 'retry', id, attempt, error: r.bytes(), delay: r.f64() }
    case SETTLE_CODE.release: return { type: 'release', id, attempt }
    case SETTLE_CODE.cancel: return { type: 'cancel', id, attempt, ttl: r.f64() }
    default: throw new DecodeError(`Unknown settlement code ${code}`)
  }
}

/** The op of a seal frame (it is alone in its frame). */
export const SEAL: Op = Object.freeze({ kind: 'seal' })

/** Applies one op at log time `now` for the frame of instance `token`; returns its outcome. */
export function applyOp (state: QueueState, now: number, token: number, op: Op): unknown {
  switch (op.kind) {
    case 'enqueue': return state.enqueue(now, token, op.jobs)
    case 'claim': return state.claim(now, op.worker, op.max, op.leaseMs)
    case 'settle': return state.settle(now, op.worker, op.settlements)
    case 'extend': return state.extend(now, op.worker, op.ids, op.leaseMs)
    case 'cancel': return state.cancel(now, op.id)
    case 'abort': return state.abort(now, op.id, op.ttl)
    case 'ttl': return state.updateTTL(now, op.id, op.ttl)
    case 'recover': return state.recover(now, op.maxStalls, op.error, op.group)
    case 'apply': return state.apply(now, op.action, op.target, op.limit, false)
    case 'pause': return state.setPaused(op.paused)
    case 'retention': return state.setRetention(now, op.retention)
    case 'heartbeat': return state.heartbeat(now, op.worker, op.ttl)
    case 'seal': return undefined
  }
}
