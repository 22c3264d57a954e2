/**
 * The wire codec of the Redis backend: the binary formats the client and the Lua scripts share,
 * what the client sends (elements, settlements, retention) and how it reads script replies.
 *
 * Each format is defined once, here, as a list of fields: the TypeScript side reads it through
 * the offsets below, and scripts.ts hands the same offsets (1-based) and `struct` formats to the
 * Lua scripts as named constants (`R_ATTEMPTS`, `E_ID`, `R_FORMAT`...), so neither language
 * carries a bare offset. src/scripts/_lib.lua says what each field means. Numbers are big-endian
 * doubles (exact for integers below 2^53); `B` is one byte, `H` a uint16, `I` a uint32, `c1` a
 * one-letter code.
 */
import { DEFAULT_RETENTION, HISTORY_LIMIT } from '../job-record.ts'
import { validTrace } from '../../trace-context.ts'
import type { Reply } from './scripts.ts'
import type {
  ActiveState, AttemptRecord, ClaimedJob, EnqueueOutcome, ErrorGroup, JobRecord, JobState, NewJob, Notice, Retention,
  Settlement
} from '../types.ts'

type FieldType = 'c1' | 'B' | 'H' | 'I' | 'd'
const SIZES: Record<FieldType, number> = { c1: 1, B: 1, H: 2, I: 4, d: 8 }

/** A fixed-size binary layout: each field's 0-based offset, the total size and the `struct` format. */
interface Layout<N extends string> {
  readonly at: Readonly<Record<N, number>>
  readonly size: number
  readonly format: string
  /** Reads a numeric field of a buffer in this layout (from `offset`). */
  read (data: Buffer, name: N, offset?: number): number
  /** A reader of one field (for hot paths). */
  reader (name: N): (data: Buffer) => number
}

const READERS: Record<FieldType, (data: Buffer, at: number) => number> = {
  c1: (data, at) => data[at],
  B: (data, at) => data[at],
  H: (data, at) => data.readUInt16BE(at),
  I: (data, at) => data.readUInt32BE(at),
  d: (data, at) => data.readDoubleBE(at)
}

const BOUND_READERS: Record<FieldType, (at: number) => (data: Buffer) => number> = {
  c1: at => data => data[at],
  B: at => data => data[at],
  H: at => data => data.readUInt16BE(at),
  I: at => data => data.readUInt32BE(at),
  d: at => data => data.readDoubleBE(at)
}

function layout<N extends string> (fields: ReadonlyArray<readonly [N, FieldType]>): Layout<N> {
  const at: Partial<Record<N, number>> = {}
  const types: Partial<Record<N, FieldType>> = {}
  let size = 0
  for (const [name, type] of fields) {
    at[name] = size
    types[name] = type
    size += SIZES[type]
  }
  const offsets = at as Record<N, number>
  return {
    at: offsets,
    size,
    format: '>' + fields.map(([, type]) => type).join(''),
    read: (data, name, offset = 0) => READERS[types[name] as FieldType](data, offset + offsets[name]),
    reader: name => BOUND_READERS[types[name] as FieldType](offsets[name])
  }
}

/**
 * A job's record (HASH `jobs`): the fixed part below, then its failure group key
 * (`groupLength` bytes), the worker id of its running or last attempt (`workerLength` bytes),
 * and its body (the rest): the result of a completed job, the last error of one that failed an
 * attempt (while {@link FLAGS.outcome} is set). One value per job: a job in history costs one
 * hash entry and one allocation for all of it.
 */
export const RECORD = layout([
  // In this order so that a claim and an ending each rewrite a few contiguous runs of bytes.
  ['state', 'c1'], ['flags', 'B'], ['enteredAt', 'd'], ['stamp', 'd'], ['attempts', 'I'], ['startedAt', 'd'], ['attemptStartedAt', 'd'],
  ['expiresAt', 'd'], ['lastOutcome', 'c1'], ['groupLength', 'B'], ['workerLength', 'H'], ['stalls', 'I'], ['readyAt', 'd'],
  ['retries', 'I'], ['maxAttempts', 'd'], ['resultTTL', 'd'], ['createdAt', 'd'], ['runTimeout', 'd'], ['delay', 'd']
] as const)

/** Bits of a record's `flags`. */
export const FLAGS = {
  /** A cancel was requested while it runs. */
  cancel: 1,
  /** Someone waits for its outcome (HASH `waiters`). */
  waited: 2,
  /** Its record's body holds its result or (last) error. */
  outcome: 4,
  /** HASH `attempts` holds entries of its ended attempts. */
  history: 8,
  /** Its value in HASH `payloads` starts with its trace context (see {@link toElement}). */
  traced: 16
} as const

/** Bits of the per-job flag byte of an enqueue (enqueue.lua's ARGV[4]). */
export const JOB_FLAGS = {
  /** The enqueuer waits for the outcome. */
  notify: 1,
  /** The element's payload part starts with a trace context. */
  traced: 2
} as const

/** A ready element (LIST `ready`/`held`/`claiming`): this header, the id (`idLength` bytes), then the payload when `kind` is {@link INLINE}. */
export const ELEMENT = layout([
  ['kind', 'c1'], ['attempt', 'd'], ['maxAttempts', 'd'], ['resultTTL', 'd'], ['createdAt', 'd'], ['runTimeout', 'd'],
  ['readyAt', 'd'], ['delay', 'd'], ['idLength', 'I']
] as const)

/** Element kinds: the payload travels in the ready list, or is read from HASH `payloads` at claim. */
const INLINE = 'E'
const BY_REFERENCE = 'R'

/** Payloads up to this size travel inside the ready list, so a BLMOVE delivers the whole job (bytes). */
export const INLINE_PAYLOAD = 16_384

/** One ended attempt in HASH `attempts` (entries concatenated, oldest first): this header, the worker id, then the error. */
export const ATTEMPT = layout([
  ['attempt', 'd'], ['startedAt', 'd'], ['finishedAt', 'd'], ['outcome', 'c1'], ['workerLength', 'H'], ['errorLength', 'I']
] as const)

/**
 * How far the scripts that end jobs let a history exceed its count before trimming it, so they
 * trim in batches (reads apply the count themselves, so no job shows past it).
 */
export const TRIM_SLACK = 100

/** Most history entries a script that ends jobs trims or deletes in one call (the reaper's pass takes its own). */
export const TIDY_BUDGET = 1000

/** A settlement argument of settle.lua: this header, the failure group block (`groupLength` bytes, see {@link groupBlock}), then the body. */
export const SETTLEMENT = layout([
  ['type', 'c1'], ['attempt', 'd'], ['n', 'd'], ['groupLength', 'I']
] as const)

/** A retention as scripts read it: age and count per terminal state, completed, failed, cancelled. */
const RETENTION = layout([
  ['completedAge', 'd'], ['completedCount', 'd'], ['failedAge', 'd'], ['failedCount', 'd'], ['cancelledAge', 'd'], ['cancelledCount', 'd']
] as const)

/** One-letter state codes. */
const CODES: Record<JobState, string> = {
  queued: 'q', delayed: 'd', processing: 'p', failing: 'f', completed: 'c', failed: 'e', cancelled: 'x'
}
const STATES: Record<string, JobState> = Object.fromEntries(Object.entries(CODES).map(([state, code]) => [code, state as JobState]))
const OUTCOMES: Record<string, NonNullable<AttemptRecord['outcome']>> = {
  c: 'completed', e: 'failed', r: 'retried', s: 'stalled', x: 'cancelled', l: 'released'
}

/** The one-letter code of a state. */
export function stateCode (state: JobState): string {
  return CODES[state]
}

/** The state a one-letter code stands for. */
export function stateOf (code: string): JobState {
  return STATES[code]
}

const EMPTY = Buffer.alloc(0)
const QUEUED: EnqueueOutcome = Object.freeze({ status: 'queued' })

/** The record fields a new job's record takes from its enqueue (`rec_new` in the scripts), in this order. */
const NEW_FIELDS = ['state', 'flags', 'enteredAt', 'stamp', 'readyAt', 'maxAttempts', 'resultTTL', 'createdAt', 'runTimeout', 'delay']
/** The other fields of a new record, as Lua expressions (`math.huge`: no result cache while active). */
const INITIAL: Record<string, string> = {
  attempts: '0', startedAt: '0', attemptStartedAt: '0', expiresAt: 'math.huge', lastOutcome: "'\\0'", groupLength: '0', workerLength: '0', stalls: '0', retries: '0'
}

/**
 * The Lua definitions of the formats above (1-based offsets, `struct` formats, flags, limits),
 * one `local` per line, for scripts.ts to link into the scripts that use them.
 */
export function luaConstants (): string {
  const lines: string[] = []
  const snake = (name: string): string => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
  const put = (prefix: string, l: Layout<string>): void => {
    for (const [name, offset] of Object.entries(l.at)) lines.push(`local ${prefix}_${snake(name)} = ${offset as number + 1}`)
    lines.push(`local ${prefix}_SIZE = ${l.size}`, `local ${prefix}_FORMAT = '${l.format}'`)
  }
  put('R', RECORD)
  // The record as a table and back, one `struct` call each (generated: no field list at run time).
  const fields = Object.keys(RECORD.at)
  const lengths: Record<string, string> = { groupLength: '#r.group', workerLength: '#r.worker' }
  const values = fields.map(name => lengths[name] ?? `r.${name}`).join(', ')
  const initial = (name: string): string => {
    const value = NEW_FIELDS.includes(name) ? name : INITIAL[name]
    if (value === undefined) throw new Error(`No initial value for the record field ${name}`)
    return value
  }
  lines.push(
    `local function rec_read (m) local r = {} ; ${fields.map(name => `r.${name}`).join(', ')} = struct.unpack(R_FORMAT, m) ; ` +
      'local w = R_SIZE + r.groupLength ; r.group = string.sub(m, R_SIZE + 1, w) ; r.worker = string.sub(m, w + 1, w + r.workerLength) ; ' +
      'r.body = string.sub(m, w + r.workerLength + 1) ; return r end',
    `local function rec_write (r) return struct.pack(R_FORMAT, ${values}) .. r.group .. r.worker .. r.body end`,
    // A new job's record (no group, worker or body), without a table per job: the fields enqueue
    // sets are parameters, the others their initial values.
    `local function rec_new (${NEW_FIELDS.join(', ')}) return struct.pack(R_FORMAT, ${fields.map(initial).join(', ')}) end`
  )
  put('E', ELEMENT)
  put('A', ATTEMPT)
  put('S', SETTLEMENT)
  put('RT', RETENTION)
  for (const [name, bit] of Object.entries(FLAGS)) lines.push(`local F_${snake(name)} = ${bit}`)
  for (const [name, bit] of Object.entries(JOB_FLAGS)) lines.push(`local J_${snake(name)} = ${bit}`)
  lines.push(`local INLINE_PAYLOAD = ${INLINE_PAYLOAD}`, `local HISTORY_LIMIT = ${HISTORY_LIMIT}`, `local TRIM_SLACK = ${TRIM_SLACK}`, `local TIDY_BUDGET = ${TIDY_BUDGET}`)
  const rule = (r: { age: number, count: number }): string => `{ ${r.age}, ${r.count} }`
  const { completed, failed, cancelled } = DEFAULT_RETENTION
  lines.push(`local DEFAULT_RULES = { c = ${rule(completed)}, e = ${rule(failed)}, x = ${rule(cancelled)} }`)
  return lines.join('\n') + '\n'
}

/** The retention a queue stores, as scripts read it. */
export function retentionArg (retention: Retention): Buffer {
  const arg = Buffer.allocUnsafe(RETENTION.size)
  arg.writeDoubleBE(retention.completed.age, RETENTION.at.completedAge)
  arg.writeDoubleBE(retention.completed.count, RETENTION.at.completedCount)
  arg.writeDoubleBE(retention.failed.age, RETENTION.at.failedAge)
  arg.writeDoubleBE(retention.failed.count, RETENTION.at.failedCount)
  arg.writeDoubleBE(retention.cancelled.age, RETENTION.at.cancelledAge)
  arg.writeDoubleBE(retention.cancelled.count, RETENTION.at.cancelledCount)
  return arg
}

/** A stored retention, or `fallback` when none is stored. */
export function toRetention (stored: Buffer | null, fallback: Retention): Retention {
  if (stored === null || stored.length !== RETENTION.size) return fallback
  const rule = (age: number, count: number): { age: number, count: number } => ({ age: stored.readDoubleBE(age), count: stored.readDoubleBE(count) })
  return {
    completed: rule(RETENTION.at.completedAge, RETENTION.at.completedCount),
    failed: rule(RETENTION.at.failedAge, RETENTION.at.failedCount),
    cancelled: rule(RETENTION.at.cancelledAge, RETENTION.at.cancelledCount)
  }
}

/**
 * A job's ready element, built here rather than in Lua because the client has every field at
 * hand: one argument per job, stored (its payload) and pushed by the script as it is. Lua
 * rebuilds the same bytes from the record and the payload (`ready_element`).
 *
 * A job with a trace context (`trace`, already validated; enqueued with {@link JOB_FLAGS.traced},
 * so its record gets {@link FLAGS.traced}) stores it in front of its payload: a uint16 length,
 * the trace context, then the payload, in the payload part of the element and so in HASH
 * `payloads`. It goes by reference (the consumer reads the record's flag before splitting), and
 * everything that keeps, moves or deletes a payload carries it unchanged. A job without one is
 * byte for byte what it was.
 */
export function toElement (job: NewJob, now: number, trace?: string): Buffer {
  const idBytes = Buffer.byteLength(job.id)
  const at = ELEMENT.at
  const traceBytes = trace === undefined ? 0 : 2 + trace.length
  const element = Buffer.allocUnsafe(ELEMENT.size + idBytes + traceBytes + job.payload.length)
  element.write(job.payload.length <= INLINE_PAYLOAD && trace === undefined ? INLINE : BY_REFERENCE, at.kind, 'latin1')
  element.writeDoubleBE(1, at.attempt) // the first run is attempt 1
  element.writeDoubleBE(job.maxAttempts, at.maxAttempts)
  element.writeDoubleBE(job.resultTTL, at.resultTTL)
  element.writeDoubleBE(now, at.createdAt)
  element.writeDoubleBE(job.runTimeout ?? 0, at.runTimeout)
  element.writeDoubleBE(now, at.readyAt)
  element.writeDoubleBE(job.delay, at.delay)
  element.writeUInt32BE(idBytes, at.idLength)
  element.write(job.id, ELEMENT.size)
  if (trace !== undefined) {
    element.writeUInt16BE(trace.length, ELEMENT.size + idBytes)
    element.write(trace, ELEMENT.size + idBytes + 2, 'latin1') // validated: ASCII only
  }
  job.payload.copy(element, ELEMENT.size + idBytes + traceBytes)
  return element
}

/**
 * A stored payload and the trace context in front of it (records with {@link FLAGS.traced}). The
 * trace context is validated (stored data is untrusted): a bad one is left out, the payload kept.
 */
export function splitTraced (stored: Buffer): { payload: Buffer, trace: string | undefined } {
  const length = stored.length >= 2 ? stored.readUInt16BE(0) : 0
  if (stored.length < 2 + length) return { payload: stored, trace: undefined }
  return { payload: stored.subarray(2 + length), trace: validTrace(stored.toString('latin1', 2, 2 + length)) }
}

/** The job inside a ready element, or undefined when its payload was too large to be inside. */
export function fromElement (element: Buffer): ClaimedJob | undefined {
  const at = ELEMENT.at
  if (element[at.kind] !== 0x45) return undefined // INLINE
  const idEnd = ELEMENT.size + element.readUInt32BE(at.idLength)
  return {
    id: element.subarray(ELEMENT.size, idEnd).toString(),
    payload: element.subarray(idEnd),
    attempts: element.readDoubleBE(at.attempt),
    maxAttempts: element.readDoubleBE(at.maxAttempts),
    resultTTL: element.readDoubleBE(at.resultTTL),
    createdAt: element.readDoubleBE(at.createdAt),
    runTimeout: element.readDoubleBE(at.runTimeout),
    readyAt: element.readDoubleBE(at.readyAt)
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
      case ENQUEUED.duplicate: outcomes[i] = { status: 'duplicate', state: STATES[data.toString()] as ActiveState }; break
      case ENQUEUED.completed: outcomes[i] = { status: 'completed', result: data }; break
      case ENQUEUED.failed: outcomes[i] = { status: 'failed', error: data }; break
      default: outcomes[i] = { status: 'cancelled' }
    }
  }
  return outcomes
}

const SETTLEMENT_TYPES = { complete: 'c', fail: 'e', cancel: 'x', retry: 'r', release: 'l' } as const

/**
 * A failure group as scripts store it: the key's length (one byte, keys of up to 255 bytes) and
 * the key, then name, message and frame as JSON (HASH `groupinfo`).
 */
export function groupBlock (group: ErrorGroup | undefined): Buffer {
  if (group === undefined) return EMPTY
  const key = Buffer.from(group.key).subarray(0, 255)
  const info = Buffer.from(JSON.stringify({ name: group.name, message: group.message, frame: group.frame }))
  return Buffer.concat([Buffer.from([key.length]), key, info])
}

/** One settlement as settle.lua reads it: type, attempt, n (ttl or delay), failure group, body. */
export function settlementArg (s: Settlement): Buffer {
  const body = s.type === 'complete' ? s.result : s.type === 'fail' || s.type === 'retry' ? s.error : EMPTY
  const group = s.type === 'fail' ? groupBlock(s.group) : EMPTY
  const at = SETTLEMENT.at
  const arg = Buffer.allocUnsafe(SETTLEMENT.size + group.length + body.length)
  arg.write(SETTLEMENT_TYPES[s.type], at.type, 'latin1')
  arg.writeDoubleBE(s.attempt, at.attempt)
  arg.writeDoubleBE(s.type === 'retry' ? s.delay : s.type === 'release' ? 0 : s.ttl, at.n)
  arg.writeUInt32BE(group.length, at.groupLength)
  group.copy(arg, SETTLEMENT.size)
  body.copy(arg, SETTLEMENT.size + group.length)
  return arg
}

/** Fields per claimed job in a claim or settle reply: id, payload, record. */
const CLAIMED_FIELDS = 3

/** Readers of the record fields a claimed job carries (each bound to its offset and type once). */
const CLAIMED = {
  attempts: RECORD.reader('attempts'),
  maxAttempts: RECORD.reader('maxAttempts'),
  resultTTL: RECORD.reader('resultTTL'),
  createdAt: RECORD.reader('createdAt'),
  runTimeout: RECORD.reader('runTimeout'),
  readyAt: RECORD.reader('readyAt')
}

const TRACED_AT = RECORD.at.flags

/** A claimed job of a traced record: its stored payload split into trace context and payload. */
function withTrace (job: ClaimedJob): ClaimedJob {
  const { payload, trace } = splitTraced(job.payload)
  return trace === undefined ? { ...job, payload } : { ...job, payload, trace }
}

/** Reads claimed jobs from a claim or settle reply, from `start`. */
export function toJobs (reply: Reply[], start: number): ClaimedJob[] {
  const jobs: ClaimedJob[] = []
  const { attempts, maxAttempts, resultTTL, createdAt, runTimeout, readyAt } = CLAIMED
  for (let i = start; i < reply.length; i += CLAIMED_FIELDS) {
    const record = reply[i + 2] as Buffer
    const job: ClaimedJob = {
      id: (reply[i] as Buffer).toString(),
      payload: reply[i + 1] as Buffer ?? EMPTY,
      attempts: attempts(record),
      maxAttempts: maxAttempts(record),
      resultTTL: resultTTL(record),
      createdAt: createdAt(record),
      runTimeout: runTimeout(record),
      readyAt: readyAt(record)
    }
    jobs.push((record[TRACED_AT] & FLAGS.traced) === 0 ? job : withTrace(job))
  }
  return jobs
}

/** A job's record from status.lua's reply (the record, whose body is its result or last error). */
export function toRecord (id: string, reply: Reply[]): JobRecord {
  const r = readRecord(reply[0] as Buffer)
  return {
    id,
    state: r.state,
    createdAt: r.createdAt,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    ...(r.state === 'completed' && { result: r.body }),
    ...(r.state !== 'completed' && (r.flags & FLAGS.outcome) !== 0 && { error: r.body })
  }
}

/** The fields of a record. */
export interface RecordFields {
  readonly state: JobState
  readonly attempts: number
  readonly maxAttempts: number
  readonly resultTTL: number
  readonly createdAt: number
  readonly stalls: number
  readonly flags: number
  readonly runTimeout: number
  readonly delay: number
  readonly enteredAt: number
  /** Its position in the index of its state (for `processing`, whose index is ZSET `leases`: here only). */
  readonly stamp: number
  readonly readyAt: number
  readonly startedAt: number
  readonly attemptStartedAt: number
  readonly expiresAt: number
  readonly retries: number
  /** How the attempt that ended the job ended, '' when none did. */
  readonly lastOutcome: AttemptRecord['outcome'] | ''
  readonly group: string
  readonly worker: string
  /** The result (completed) or the last error (with {@link FLAGS.outcome}); empty otherwise. */
  readonly body: Buffer
}

/** Decodes a record. */
export function readRecord (data: Buffer): RecordFields {
  const at = RECORD.at
  const groupEnd = RECORD.size + data[at.groupLength]
  const workerEnd = groupEnd + data.readUInt16BE(at.workerLength)
  const read = (name: Parameters<typeof RECORD.read>[1]): number => RECORD.read(data, name)
  return {
    state: STATES[String.fromCharCode(data[at.state])],
    attempts: read('attempts'),
    maxAttempts: read('maxAttempts'),
    resultTTL: read('resultTTL'),
    createdAt: read('createdAt'),
    stalls: read('stalls'),
    flags: data[at.flags],
    runTimeout: read('runTimeout'),
    delay: read('delay'),
    enteredAt: read('enteredAt'),
    stamp: read('stamp'),
    readyAt: read('readyAt'),
    startedAt: read('startedAt'),
    attemptStartedAt: read('attemptStartedAt'),
    expiresAt: read('expiresAt'),
    retries: read('retries'),
    lastOutcome: OUTCOMES[String.fromCharCode(data[at.lastOutcome])] ?? '',
    group: data.subarray(RECORD.size, groupEnd).toString(),
    worker: data.subarray(groupEnd, workerEnd).toString(),
    body: data.subarray(workerEnd)
  }
}

/** Decodes the ended attempts of HASH `attempts` (oldest first). */
export function readAttempts (data: Buffer | null): AttemptRecord[] {
  const attempts: AttemptRecord[] = []
  if (data === null) return attempts
  const at = ATTEMPT.at
  let offset = 0
  while (offset + ATTEMPT.size <= data.length) {
    const workerEnd = offset + ATTEMPT.size + data.readUInt16BE(offset + at.workerLength)
    const errorEnd = workerEnd + data.readUInt32BE(offset + at.errorLength)
    const outcome = OUTCOMES[String.fromCharCode(data[offset + at.outcome])]
    attempts.push({
      attempt: data.readDoubleBE(offset + at.attempt),
      startedAt: data.readDoubleBE(offset + at.startedAt),
      finishedAt: data.readDoubleBE(offset + at.finishedAt),
      worker: data.subarray(offset + ATTEMPT.size, workerEnd).toString(),
      outcome,
      ...(errorEnd > workerEnd && { error: data.subarray(workerEnd, errorEnd) })
    })
    offset = errorEnd
  }
  return attempts
}

/** The failure group info stored with its key (see {@link groupBlock}). */
export function readGroupInfo (data: Buffer | null): Omit<ErrorGroup, 'key'> {
  try {
    const info = JSON.parse(data?.toString() ?? '{}')
    return { name: String(info.name ?? ''), message: String(info.message ?? ''), frame: String(info.frame ?? '') }
  } catch {
    return { name: '', message: '', frame: '' }
  }
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
