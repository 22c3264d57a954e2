/**
 * The wire codec of the Redis backend: the binary formats the client and the Lua scripts share
 * (src/scripts/_lib.lua documents them; the offsets below are those formats, 0-based, where Lua's
 * `string.byte`/`struct.unpack` count from 1), what the client sends (elements, settlements) and
 * how it reads script replies. Numbers are big-endian doubles, exact for integers below 2^53.
 */
import type { Reply } from './scripts.ts'
import type { ActiveState, ClaimedJob, EnqueueOutcome, JobRecord, JobState, NewJob, Notice, Settlement } from '../types.ts'

/** Byte offsets in an active record (HASH `jobs`). */
export const RECORD = {
  state: 0,
  attempts: 1,
  maxAttempts: 9,
  resultTTL: 17,
  createdAt: 25,
  stalls: 33,
  flags: 41,
  worker: 42
} as const

/** Byte offsets in a terminal record (STRING `done:<id>`). */
export const TERMINAL = {
  state: 0,
  attempts: 1,
  maxAttempts: 9,
  createdAt: 17,
  body: 25
} as const

/** Byte offsets in an element (HASH `elements`, and the ready list). */
export const ELEMENT = {
  /** {@link INLINE} or {@link BY_REFERENCE}. */
  kind: 0,
  /** The attempt its next run will be. */
  attempt: 1,
  maxAttempts: 9,
  resultTTL: 17,
  createdAt: 25,
  /** uint32: the id's length in bytes. */
  idLength: 33,
  /** The id, then the payload. */
  id: 37
} as const

/** Element kinds: the payload travels in the ready list, or stays in `elements` only. */
const INLINE = 0x45 // 'E'
const BY_REFERENCE = 0x52 // 'R'

/** Byte offsets in a settlement argument of settle.lua. */
export const SETTLEMENT = {
  type: 0,
  attempt: 1,
  /** The ttl (complete, fail, cancel) or the delay (retry). */
  n: 9,
  /** The result or the error. */
  body: 17
} as const

/** Payloads up to this size travel inside the ready list, so a BLMOVE delivers the whole job (bytes). */
const INLINE_PAYLOAD = 16_384

const EMPTY = Buffer.alloc(0)
const ACTIVE: Record<string, ActiveState> = { q: 'queued', d: 'delayed', p: 'processing', f: 'failing' }
const STATES: Record<string, JobState> = { ...ACTIVE, c: 'completed', e: 'failed', x: 'cancelled' }
const QUEUED: EnqueueOutcome = Object.freeze({ status: 'queued' })

/** The state a record's first byte stands for. */
export function stateOf (code: string): JobState {
  return STATES[code]
}

/**
 * A job's element, built here rather than in Lua because the client has every field at hand:
 * one argument per job, stored and pushed by the script as it is.
 */
export function toElement (job: NewJob, now: number): Buffer {
  const idBytes = Buffer.byteLength(job.id)
  const element = Buffer.allocUnsafe(ELEMENT.id + idBytes + job.payload.length)
  element[ELEMENT.kind] = job.payload.length <= INLINE_PAYLOAD ? INLINE : BY_REFERENCE
  element.writeDoubleBE(1, ELEMENT.attempt) // the first run is attempt 1
  element.writeDoubleBE(job.maxAttempts, ELEMENT.maxAttempts)
  element.writeDoubleBE(job.resultTTL, ELEMENT.resultTTL)
  element.writeDoubleBE(now, ELEMENT.createdAt)
  element.writeUInt32BE(idBytes, ELEMENT.idLength)
  element.write(job.id, ELEMENT.id)
  job.payload.copy(element, ELEMENT.id + idBytes)
  return element
}

/** The job inside a ready element, or undefined when its payload was too large to be inside. */
export function fromElement (element: Buffer): ClaimedJob | undefined {
  if (element[ELEMENT.kind] !== INLINE) return undefined
  const idEnd = ELEMENT.id + element.readUInt32BE(ELEMENT.idLength)
  return {
    id: element.subarray(ELEMENT.id, idEnd).toString(),
    payload: element.subarray(idEnd),
    attempts: element.readDoubleBE(ELEMENT.attempt),
    maxAttempts: element.readDoubleBE(ELEMENT.maxAttempts),
    resultTTL: element.readDoubleBE(ELEMENT.resultTTL),
    createdAt: element.readDoubleBE(ELEMENT.createdAt)
  }
}

/** The delays of the delayed jobs of an enqueue, packed as enqueue.lua reads them; empty when none is. */
export function packDelays (delays: readonly number[]): Buffer {
  if (delays.length === 0) return EMPTY
  const packed = Buffer.allocUnsafe(8 * delays.length)
  for (let i = 0; i < delays.length; i++) packed.writeDoubleBE(delays[i], 8 * i)
  return packed
}

/** Enqueue reply codes (see enqueue.lua). */
const ENQUEUED = { queued: 0, duplicate: 1, completed: 2, failed: 3 } as const

/** The outcomes of `count` jobs from enqueue.lua's reply: a number when all were queued, else code and data per job. */
export function toOutcomes (reply: Reply[] | number, count: number): EnqueueOutcome[] {
  if (typeof reply === 'number') return new Array<EnqueueOutcome>(count).fill(QUEUED)
  const outcomes: EnqueueOutcome[] = new Array(count)
  for (let i = 0; i < count; i++) {
    const data = reply[2 * i + 1] as Buffer
    switch (reply[2 * i]) {
      case ENQUEUED.queued: outcomes[i] = QUEUED; break
      case ENQUEUED.duplicate: outcomes[i] = { status: 'duplicate', state: ACTIVE[data.toString()] }; break
      case ENQUEUED.completed: outcomes[i] = { status: 'completed', result: data }; break
      case ENQUEUED.failed: outcomes[i] = { status: 'failed', error: data }; break
      default: outcomes[i] = { status: 'cancelled' }
    }
  }
  return outcomes
}

const SETTLEMENT_TYPES = { complete: 0x63, fail: 0x65, cancel: 0x78, retry: 0x72, release: 0x6c } as const // c e x r l

/** One settlement as settle.lua reads it: type byte, attempt and n (ttl or delay), body. */
export function settlementArg (s: Settlement): Buffer {
  const body = s.type === 'complete' ? s.result : s.type === 'fail' || s.type === 'retry' ? s.error : EMPTY
  const arg = Buffer.allocUnsafe(SETTLEMENT.body + body.length)
  arg[SETTLEMENT.type] = SETTLEMENT_TYPES[s.type]
  arg.writeDoubleBE(s.attempt, SETTLEMENT.attempt)
  arg.writeDoubleBE(s.type === 'retry' ? s.delay : s.type === 'release' ? 0 : s.ttl, SETTLEMENT.n)
  body.copy(arg, SETTLEMENT.body)
  return arg
}

/** Fields per claimed job in a claim or settle reply: id, payload, active record. */
const CLAIMED_FIELDS = 3

/** Reads claimed jobs from a claim or settle reply, from `start`. */
export function toJobs (reply: Reply[], start: number): ClaimedJob[] {
  const jobs: ClaimedJob[] = []
  for (let i = start; i < reply.length; i += CLAIMED_FIELDS) {
    const record = reply[i + 2] as Buffer
    jobs.push({
      id: (reply[i] as Buffer).toString(),
      payload: reply[i + 1] as Buffer ?? EMPTY,
      attempts: record.readDoubleBE(RECORD.attempts),
      maxAttempts: record.readDoubleBE(RECORD.maxAttempts),
      resultTTL: record.readDoubleBE(RECORD.resultTTL),
      createdAt: record.readDoubleBE(RECORD.createdAt)
    })
  }
  return jobs
}

/** A job's record from status.lua's reply: `A`, active record, last error; or `T`, terminal record. */
export function toRecord (id: string, reply: Reply[]): JobRecord {
  const data = reply[1] as Buffer
  const state = STATES[String.fromCharCode(data[RECORD.state])]
  const attempts = data.readDoubleBE(RECORD.attempts)
  const maxAttempts = data.readDoubleBE(RECORD.maxAttempts)
  if ((reply[0] as Buffer)[0] === 0x41) { // 'A'
    const error = reply[2] as Buffer
    return { id, state, attempts, maxAttempts, createdAt: data.readDoubleBE(RECORD.createdAt), ...(error.length > 0 && { error }) }
  }
  const body = data.subarray(TERMINAL.body)
  const outcome = state === 'completed' ? { result: body } : state === 'failed' ? { error: body } : {}
  return { id, state, attempts, maxAttempts, createdAt: data.readDoubleBE(TERMINAL.createdAt), ...outcome }
}

/**
 * Decodes a reply-channel message: 'D' then one record per job (see `flush` in _lib.lua): state
 * (c e x, upper case when the body was left out), #id ':' id, #body ':' body. Lengths in bytes.
 */
export function decodeDone (message: Buffer, listener: (notice: Notice) => void): void {
  if (message[0] !== 0x44) return // 'D'
  let at = 1
  while (at < message.length) {
    const state = message[at] | 0x20 // lower case
    const inline = message[at] === state
    const idColon = message.indexOf(0x3a, at + 1)
    const idEnd = idColon + 1 + Number(message.subarray(at + 1, idColon).toString())
    const bodyColon = message.indexOf(0x3a, idEnd)
    const bodyEnd = bodyColon + 1 + Number(message.subarray(idEnd, bodyColon).toString())
    if (idColon < 0 || bodyColon < 0 || bodyEnd > message.length) return // not ours: ignore the rest
    const id = message.subarray(idColon + 1, idEnd).toString()
    const body = message.subarray(bodyColon + 1, bodyEnd)
    at = bodyEnd
    if (state === 0x63) listener({ type: 'done', id, state: 'completed', ...(inline && { result: body }) }) // 'c'
    else if (state === 0x65) listener({ type: 'done', id, state: 'failed', ...(inline && { error: body }) }) // 'e'
    else listener({ type: 'done', id, state: 'cancelled' })
  }
}

/** Control-channel notices (see _lib.lua): 'A' id asks a running job to stop; 'W' dueAt says a delayed job became the earliest. */
export const CONTROL = { abort: 0x41, wake: 0x57 } as const
