/**
 * The operations of the file backend's log and their binary form. A frame body is
 *
 *   token f64 (the writing storage instance), seq f64 (its commit number), time f64 (its clock, ms),
 *   op count u8, then each op: a code u8 and its fields.
 *
 * Every process applies a frame's ops, in order, through {@link applyOp}; the writer also keeps the
 * outcomes as its call's answer.
 */
import type { NewJob, Settlement } from '../types.ts'
import { DecodeError, type Reader, type Writer } from './codec.ts'
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
  | { readonly kind: 'recover', readonly maxStalls: number, readonly error: Buffer }
  /** Ends the segment: frames after the first seal in a segment are void; the log goes on in the next one. */
  | { readonly kind: 'seal' }

/** A decoded frame. */
export interface Frame {
  readonly token: number
  readonly seq: number
  readonly time: number
  readonly ops: readonly Op[]
}

const CODE = { enqueue: 1, claim: 2, settle: 3, extend: 4, cancel: 5, abort: 6, ttl: 7, recover: 8, seal: 9 } as const
const SETTLE_CODE = { complete: 1, fail: 2, retry: 3, release: 4, cancel: 5 } as const

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
    case 'enqueue':
      w.u32(op.jobs.length)
      for (const job of op.jobs) {
        w.str(job.id)
        w.bytes(job.payload)
        w.f64(job.maxAttempts)
        w.f64(job.resultTTL)
        w.f64(job.delay)
        w.u8(job.notify === true ? 1 : 0)
      }
      break
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
      break
    case 'seal':
      break
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
    case CODE.enqueue: {
      const jobs: NewJob[] = new Array(r.u32())
      for (let i = 0; i < jobs.length; i++) {
        jobs[i] = { id: r.str(), payload: r.bytes(), maxAttempts: r.f64(), resultTTL: r.f64(), delay: r.f64(), notify: r.u8() === 1 }
      }
      return { kind: 'enqueue', jobs }
    }
    case CODE.claim:
      return { kind: 'claim', worker: r.str(), max: r.f64(), leaseMs: r.f64() }
    case CODE.settle: {
      const worker = r.str()
      const settlements: Settlement[] = new Array(r.u32())
      for (let i = 0; i < settlements.length; i++) settlements[i] = decodeSettlement(r)
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
      return { kind: 'recover', maxStalls: r.f64(), error: r.bytes() }
    case CODE.seal:
      return SEAL
    default:
      throw new DecodeError(`Unknown op code ${code}`)
  }
}

function decodeSettlement (r: Reader): Settlement {
  const code = r.u8()
  const id = r.str()
  const attempt = r.f64()
  switch (code) {
    case SETTLE_CODE.complete: return { type: 'complete', id, attempt, result: r.bytes(), ttl: r.f64() }
    case SETTLE_CODE.fail: return { type: 'fail', id, attempt, error: r.bytes(), ttl: r.f64() }
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
    case 'recover': return state.recover(now, op.maxStalls, op.error)
    case 'seal': return undefined
  }
}
