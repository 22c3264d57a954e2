import { decodeCursor, encodeCursor } from './admin-cursor.ts'
import { InvalidArgumentError } from './errors.ts'
import { checkId, checkInt, isWellFormed } from './options.ts'
import { JsonSerde, decodeError, type Serde } from './serde.ts'
import type {
  ActionResult, AdminAction, AdminStorage, ApplyOutcome, FailureGroup, JobState, JobTarget, QueueTotals, Retention,
  RetentionRule, StateCounts, Storage, TerminalState, WorkerEntry
} from './storage/types.ts'
import type { SerializedError } from './types.ts'
import { explain, type Explanation } from './admin-explain.ts'
import { ACTION_STATES, STATES } from './storage/job-record.ts'

/** Options of {@link Admin}. */
export interface AdminOptions<TPayload, TResult> {
  /** The storage to operate on; it must implement the admin operations (Memory, File; Redis from issue 9 on). */
  storage: Storage
  /** Decodes payloads in {@link Admin.getJob}. @default JsonSerde */
  payloadSerde?: Serde<TPayload>
  /** Decodes results in {@link Admin.getJob}. @default JsonSerde */
  resultSerde?: Serde<TResult>
  /** Source of the current time in epoch ms (ages, `olderThan`); use the storage's. @default Date.now */
  clock?: () => number
}

/** One queue at a glance. */
export interface QueueStats {
  /** Jobs per state; terminal states count the jobs in history (see the README's "Retention"). */
  counts: StateCounts
  paused: boolean
  /** Ms the oldest `queued` job has been waiting; null when none is queued. */
  oldestWaitingAge: number | null
  /** Cumulative counts since the queue was created: sample them for rates. */
  totals: QueueTotals
  retention: Retention
}

/** A job as {@link Admin.listJobs} lists it. */
export interface JobListItem {
  id: string
  state: JobState
  /** Epoch ms when it entered its state. */
  enteredAt: number
  /** Epoch ms of its enqueue. */
  createdAt: number
  attempts: number
  maxAttempts: number
  /** `delayed`, `failing`: epoch ms when it becomes claimable. */
  dueAt?: number
  /** `processing`: the worker holding it and when its lease expires (epoch ms). */
  worker?: string
  leaseUntil?: number
  /** `failed`, `failing`: the last error. */
  error?: SerializedError
  /** `failed`: its failure group key (a selector for retry and remove). */
  errorGroup?: string
}

/** One attempt in a job's history. */
export interface AttemptInfo {
  attempt: number
  startedAt: number
  /** Absent while it runs. */
  finishedAt?: number
  durationMs?: number
  worker: string
  outcome?: 'completed' | 'failed' | 'retried' | 'stalled' | 'cancelled' | 'released'
  error?: SerializedError
}

/** Everything about one job. */
export interface JobInfo<TPayload, TResult> extends JobListItem {
  /** Decoded with `payloadSerde`; the raw Buffer when it does not decode. */
  payload: TPayload | Buffer
  /** `completed`: decoded with `resultSerde`; the raw Buffer when it does not decode. */
  result?: TResult | Buffer
  resultTTL: number
  delay: number
  /** The job's own run-time limit in ms, 0 when the consumer's applies. */
  runTimeout: number
  startedAt?: number
  finishedAt?: number
  stalls: number
  retries: number
  cancelRequested: boolean
  /** Processes waiting for its outcome (enqueueAndWait). */
  waiters: number
  /** `queued`: jobs queued before it. */
  ahead?: number
  /** Epoch ms since which it is (or was) claimable. */
  readyAt: number
  /** Terminal: epoch ms when getStatus/getResult/dedup stop answering for it. */
  resultExpiresAt?: number
  /** Its newest attempts, oldest first (at most 20). */
  history: AttemptInfo[]
}

/** Which jobs an action applies to: ids, or the jobs of a state (older than `olderThan` ms, of one failure group). */
export type Selector = readonly string[] | { state: JobState, olderThan?: number, errorGroup?: string }

/** Progress of a bulk action, after each chunk. */
export interface BulkProgress {
  /** Jobs changed so far (matched, on a dry run). */
  count: number
  /** Ids not found or in a state the action does not apply to. */
  skipped: number
  /** Where to resume from. */
  cursor: string | null
}

/** Options of a bulk action. */
export interface BulkOptions {
  /** Count what would change, change nothing. @default false */
  dryRun?: boolean
  /** Called after each chunk. */
  onProgress?: (progress: BulkProgress) => void
  /** Stops between two chunks: the call resolves with the cursor to resume from. */
  signal?: AbortSignal
  /** Resume an interrupted call (same queue, action and selector). */
  cursor?: string
  /** Jobs per chunk (one atomic storage step each), 1 to 1000. @default 200 */
  chunkSize?: number
}

/** What a bulk action did. */
export interface BulkResult {
  /** Jobs changed (dry run: that would change). */
  count: number
  /** Ids not found or in a state the action does not apply to. */
  skipped: number
  /** null when done; else interrupted: pass it as `cursor` to resume. */
  cursor: string | null
  /** An ids selector: what happened to each id, in order. */
  results?: Array<{ id: string, result: ActionResult }>
}

/** Options of {@link Admin.purge}. */
export interface PurgeOptions extends Omit<BulkOptions, 'dryRun'> {
  /** The state to purge (not `processing`). */
  state: JobState
  /** Only jobs that entered the state more than this many ms ago. */
  olderThan?: number
  dryRun?: boolean
}

const MAX_LIMIT = 1000
const DEFAULT_CHUNK = 200
const MAX_RETENTION_COUNT = 10_000_000

/**
 * Operator access to the queues of a storage: counts, job lists and details, retry, remove,
 * cancel, promote, pause, purge, failure groups, workers, retention. Needs no consumer. It
 * connects the storage on first use; {@link Admin.close} releases it.
 *
 * Bad input (unknown state, tampered cursor, limit out of range, selector of the wrong shape,
 * ill-formed id or queue name) rejects with `InvalidArgumentError` naming the field, and nothing
 * changes. A queue that does not exist answers empty and is not created.
 *
 * @example
 * const admin = new Admin({ storage })
 * const { jobs } = await admin.listJobs('emails', { state: 'failed' })
 * await admin.retry('emails', { state: 'failed', errorGroup: jobs[0].errorGroup })
 */
export class Admin<TPayload = unknown, TResult = unknown> {
  readonly #storage: AdminStorage
  readonly #payloadSerde: Serde<TPayload>
  readonly #resultSerde: Serde<TResult>
  readonly #clock: () => number
  #connecting: Promise<void> | undefined

  constructor (options: AdminOptions<TPayload, TResult>) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Expected Admin options to be an object')
    const storage = options.storage as Partial<AdminStorage> | undefined
    if (typeof storage?.apply !== 'function' || typeof storage.listJobs !== 'function' || typeof storage.connect !== 'function') {
      throw new InvalidArgumentError('Expected `storage` to implement the admin operations (AdminStorage): MemoryStorage and FileStorage do')
    }
    for (const name of ['payloadSerde', 'resultSerde'] as const) {
      const serde = options[name]
      if (serde !== undefined && (typeof serde?.deserialize !== 'function' || typeof serde.serialize !== 'function')) {
        throw new InvalidArgumentError(`Expected \`${name}\` to have serialize() and deserialize()`)
      }
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new InvalidArgumentError('Expected `clock` to be a function')
    this.#storage = storage as AdminStorage
    this.#payloadSerde = options.payloadSerde ?? new JsonSerde<TPayload>()
    this.#resultSerde = options.resultSerde ?? new JsonSerde<TResult>()
    this.#clock = options.clock ?? Date.now
  }

  /** Every queue that holds anything, by name, with its counts per state and whether it is paused. */
  async queues (): Promise<Array<{ name: string, counts: StateCounts, paused: boolean }>> {
    await this.#connect()
    return await this.#storage.queues()
  }

  /** Counts per state, the age of the oldest waiting job (ms), `paused`, totals since creation and retention. */
  async counts (queue: string): Promise<QueueStats> {
    checkName('queue', queue)
    await this.#connect()
    const o = await this.#storage.overview(queue)
    return {
      counts: o.counts,
      paused: o.paused,
      oldestWaitingAge: o.oldestQueuedAt === null ? null : Math.max(0, this.#clock() - o.oldestQueuedAt),
      totals: o.totals,
      retention: o.retention
    }
  }

  /**
   * A page of the jobs in `state`, newest first by default (`order: 'asc'` for oldest first),
   * `limit` per page (1 to 1000, default 50). Pass the returned `cursor` for the next page (null:
   * the last page): a job added meanwhile never shifts a page.
   */
  async listJobs (queue: string, options: { state: JobState, limit?: number, cursor?: string, order?: 'asc' | 'desc' }): Promise<{ jobs: JobListItem[], cursor: string | null }> {
    checkName('queue', queue)
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Expected listJobs options to be an object')
    const state = checkState('state', options.state)
    const limit = options.limit === undefined ? 50 : checkInt('limit', options.limit, 1, MAX_LIMIT)
    const order = options.order ?? 'desc'
    if (order !== 'asc' && order !== 'desc') throw new InvalidArgumentError(`Expected \`order\` to be 'asc' or 'desc', got ${String(order)}`)
    let after: number | undefined
    if (options.cursor !== undefined) after = checkStamp(decodeCursor(options.cursor, ['list', queue, state, order])[0])
    await this.#connect()
    const page = await this.#storage.listJobs(queue, { state, limit, order, ...(after !== undefined && { after }) })
    return {
      jobs: page.jobs.map(j => ({
        id: j.id,
        state: j.state,
        enteredAt: j.enteredAt,
        createdAt: j.createdAt,
        attempts: j.attempts,
        maxAttempts: j.maxAttempts,
        ...(j.dueAt !== undefined && { dueAt: j.dueAt }),
        ...(j.worker !== undefined && { worker: j.worker, leaseUntil: j.leaseUntil }),
        ...(j.error !== undefined && { error: decodeError(j.error) }),
        ...(j.group !== undefined && { errorGroup: j.group })
      })),
      cursor: page.next === null ? null : encodeCursor(['list', queue, state, order, page.next])
    }
  }

  /** Everything about one job (payload, result, error, every attempt, live facts), or null when it is neither active nor in history. */
  async getJob (queue: string, id: string): Promise<JobInfo<TPayload, TResult> | null> {
    checkName('queue', queue)
    checkName('id', id)
    await this.#connect()
    const job = await this.#storage.getJob(queue, id)
    if (job === null) return null
    return {
      id: job.id,
      state: job.state,
      enteredAt: job.enteredAt,
      createdAt: job.createdAt,
      attempts: job.attempts,
      maxAttempts: job.maxAttempts,
      ...(job.dueAt !== undefined && { dueAt: job.dueAt }),
      ...(job.worker !== undefined && { worker: job.worker, leaseUntil: job.leaseUntil }),
      ...(job.error !== undefined && { error: decodeError(job.error) }),
      ...(job.group !== undefined && { errorGroup: job.group }),
      payload: decode(this.#payloadSerde, job.payload),
      ...(job.result !== undefined && { result: decode(this.#resultSerde, job.result) }),
      resultTTL: job.resultTTL,
      delay: job.delay,
      runTimeout: job.runTimeout,
      ...(job.startedAt !== undefined && { startedAt: job.startedAt }),
      ...(job.finishedAt !== undefined && { finishedAt: job.finishedAt }),
      stalls: job.stalls,
      retries: job.retries,
      cancelRequested: job.cancelRequested,
      waiters: job.waiters,
      ...(job.ahead !== undefined && { ahead: job.ahead }),
      readyAt: job.readyAt,
      ...(job.resultExpiresAt !== undefined && { resultExpiresAt: job.resultExpiresAt }),
      history: job.history.map(a => ({
        attempt: a.attempt,
        startedAt: a.startedAt,
        ...(a.finishedAt !== undefined && { finishedAt: a.finishedAt, durationMs: a.finishedAt - a.startedAt }),
        worker: a.worker,
        ...(a.outcome !== undefined && { outcome: a.outcome }),
        ...(a.error !== undefined && { error: decodeError(a.error) })
      }))
    }
  }

  /**
   * Runs failed, completed or cancelled jobs (in history) again, or failing ones now: each starts a
   * new attempt series and keeps its history. Selector states: failed, completed, cancelled, failing.
   */
  retry (queue: string, selector: Selector, options?: BulkOptions): Promise<BulkResult> {
    return this.#bulk(queue, 'retry', selector, options)
  }

  /** Deletes jobs (record, history and result; the id becomes free). Running jobs are skipped: cancel them. */
  remove (queue: string, selector: Selector, options?: BulkOptions): Promise<BulkResult> {
    return this.#bulk(queue, 'remove', selector, options)
  }

  /** Cancels waiting jobs, and asks running ones to stop (their `job.signal` aborts; they end `cancelled`). */
  cancel (queue: string, selector: Selector, options?: BulkOptions): Promise<BulkResult> {
    return this.#bulk(queue, 'cancel', selector, options)
  }

  /** Makes delayed jobs, and failing ones waiting out their backoff, ready now. */
  promote (queue: string, selector: Selector, options?: BulkOptions): Promise<BulkResult> {
    return this.#bulk(queue, 'promote', selector, options)
  }

  /** Removes the jobs of a state (optionally only those in it for more than `olderThan` ms): chunked, with progress, dry run. */
  purge (queue: string, options: PurgeOptions): Promise<BulkResult> {
    if (options === null || typeof options !== 'object') return Promise.reject(new InvalidArgumentError('Expected purge options to be an object'))
    const { state, olderThan, ...rest } = options
    return this.#bulk(queue, 'remove', { state, ...(olderThan !== undefined && { olderThan }) }, rest, '')
  }

  /** Stops consumers from claiming jobs of the queue (within one blockTimeout; running jobs finish; enqueue goes on). */
  async pause (queue: string): Promise<void> {
    checkName('queue', queue)
    await this.#connect()
    await this.#storage.setPaused(queue, true)
  }

  /** Lets consumers claim again; blocked consumers start at once. */
  async resume (queue: string): Promise<void> {
    checkName('queue', queue)
    await this.#connect()
    await this.#storage.setPaused(queue, false)
  }

  /** Why a job is not running (or what it is doing), in words and as data; null when unknown. */
  async explain (queue: string, id: string): Promise<Explanation | null> {
    checkName('queue', queue)
    checkName('id', id)
    await this.#connect()
    const [job, stats, workers] = await Promise.all([this.#storage.getJob(queue, id), this.#storage.overview(queue), this.#storage.workers(queue)])
    return job === null ? null : explain(job, stats.paused, workers, this.#clock())
  }

  /** Failed jobs (in history) grouped by error name, normalized message and top stack frame, most jobs first. */
  async failureGroups (queue: string, options: { limit?: number } = {}): Promise<FailureGroup[]> {
    checkName('queue', queue)
    const limit = options?.limit === undefined ? 100 : checkInt('limit', options.limit, 1, MAX_LIMIT)
    await this.#connect()
    return await this.#storage.failureGroups(queue, limit)
  }

  /** Live consumers of the queue (an empty list: nobody consumes it). */
  async workers (queue: string): Promise<WorkerEntry[]> {
    checkName('queue', queue)
    await this.#connect()
    return await this.#storage.workers(queue)
  }

  /** The queue's retention of finished jobs' history (stored defaults apply until set). */
  async getRetention (queue: string): Promise<Retention> {
    return (await this.counts(queue)).retention
  }

  /** Changes the queue's retention (ms and counts; states left out keep theirs) and trims what it pushes out. */
  async setRetention (queue: string, retention: Partial<Record<TerminalState, Partial<RetentionRule>>>): Promise<Retention> {
    checkName('queue', queue)
    if (retention === null || typeof retention !== 'object') throw new InvalidArgumentError('Expected `retention` to be an object')
    for (const key of Object.keys(retention)) {
      if (key !== 'completed' && key !== 'failed' && key !== 'cancelled') throw new InvalidArgumentError(`Expected \`retention\` to have completed, failed or cancelled, got \`${key}\``)
    }
    const current = await this.getRetention(queue)
    const next = { ...current }
    for (const state of ['completed', 'failed', 'cancelled'] as const) {
      const rule = retention[state]
      if (rule === undefined) continue
      if (rule === null || typeof rule !== 'object') throw new InvalidArgumentError(`Expected \`retention.${state}\` to be an object`)
      next[state] = {
        age: rule.age === undefined ? current[state].age : checkInt(`retention.${state}.age`, rule.age, 0),
        count: rule.count === undefined ? current[state].count : checkInt(`retention.${state}.count`, rule.count, 0, MAX_RETENTION_COUNT)
      }
    }
    await this.#storage.setRetention(queue, next)
    return next
  }

  /** Releases the storage (if this Admin connected it). */
  async close (): Promise<void> {
    const connecting = this.#connecting
    this.#connecting = undefined
    if (connecting !== undefined && await connecting.then(() => true, () => false)) await this.#storage.disconnect()
  }

  #connect (): Promise<void> {
    this.#connecting ??= this.#storage.connect().catch(err => {
      this.#connecting = undefined
      throw err
    })
    return this.#connecting
  }

  async #bulk (queue: string, action: AdminAction, selector: Selector, options: BulkOptions = {}, field = 'selector'): Promise<BulkResult> {
    if (Array.isArray(selector) && field === '') throw new InvalidArgumentError('Expected `state` to be a job state')
    checkName('queue', queue)
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Expected options to be an object')
    const { onProgress, signal } = options
    // Field names in errors: `selector.state` for a selector, `state` for purge's own options.
    const named = (key: string): string => field === '' ? key : `${field}.${key}`
    const dryRun = options.dryRun ?? false
    if (typeof dryRun !== 'boolean') throw new InvalidArgumentError('Expected `dryRun` to be a boolean')
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError('Expected `onProgress` to be a function')
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('Expected `signal` to be an AbortSignal')
    const chunk = options.chunkSize === undefined ? DEFAULT_CHUNK : checkInt('chunkSize', options.chunkSize, 1, MAX_LIMIT)
    const progress = { count: 0, skipped: 0, cursor: null as string | null }
    const report = (): void => { onProgress?.({ ...progress }) }

    if (Array.isArray(selector)) {
      selector.forEach((id, i) => checkName(`selector[${i}]`, id))
      const ids = selector as readonly string[]
      const query = ['ids', queue, action, dryRun ? 1 : 0, ids.length]
      let at = options.cursor === undefined ? 0 : checkInt('cursor', decodeCursor(options.cursor, query)[0], 0, ids.length)
      const results: Array<{ id: string, result: ActionResult }> = []
      await this.#connect()
      while (at < ids.length) {
        if (signal !== undefined && at > 0) await turn()
        if (signal?.aborted === true) return { ...progress, cursor: encodeCursor([...query, at]), results }
        const slice = ids.slice(at, at + chunk)
        const out = await this.#storage.apply(queue, action, { ids: slice }, { limit: chunk, dryRun })
        const answers = out.results ?? []
        slice.forEach((id, i) => results.push({ id, result: answers[i] ?? 'not_found' }))
        progress.count += out.matched
        progress.skipped += slice.length - out.matched
        at += slice.length
        progress.cursor = at < ids.length ? encodeCursor([...query, at]) : null
        report()
      }
      return { ...progress, cursor: null, results }
    }

    if (selector === null || typeof selector !== 'object') {
      throw new InvalidArgumentError(`Expected \`selector\` to be a list of ids or { state, olderThan?, errorGroup? }, got ${typeof selector}`)
    }
    const where = selector as Exclude<Selector, readonly string[]>
    for (const key of Object.keys(where)) {
      if (key !== 'state' && key !== 'olderThan' && key !== 'errorGroup') throw new InvalidArgumentError(`Expected \`selector\` to have state, olderThan or errorGroup, got \`${key}\``)
    }
    const state = checkState(named('state'), where.state)
    if (!ACTION_STATES[action].includes(state)) {
      throw new InvalidArgumentError(`Expected \`${named('state')}\` to be one of ${ACTION_STATES[action].join(', ')} for ${action}, got ${state}`)
    }
    const group = where.errorGroup
    if (group !== undefined && (typeof group !== 'string' || !/^[0-9a-f]{16}$/.test(group) || state !== 'failed')) {
      throw new InvalidArgumentError('Expected `errorGroup` to be a failure group key (16 hex digits) with state \'failed\'')
    }
    const olderThan = where.olderThan === undefined ? undefined : checkInt(named('olderThan'), where.olderThan, 0)
    let before: number | undefined
    let after: number | undefined
    let until: number | undefined
    const query = ['state', queue, action, state, group ?? null]
    if (options.cursor !== undefined) {
      const [b, a, u] = decodeCursor(options.cursor, query)
      before = b === null ? undefined : checkStamp(b)
      after = a === null ? undefined : checkStamp(a)
      until = checkStamp(u)
    } else if (olderThan !== undefined) {
      before = this.#clock() - olderThan
    }
    await this.#connect()
    for (;;) {
      const target: JobTarget = {
        state,
        ...(before !== undefined && { before }),
        ...(group !== undefined && { group }),
        ...(after !== undefined && { after }),
        ...(until !== undefined && { until })
      }
      const out: ApplyOutcome = await this.#storage.apply(queue, action, target, { limit: chunk, dryRun })
      progress.count += dryRun ? out.matched : out.changed
      until = out.until
      after = out.next ?? undefined
      progress.cursor = out.next === null ? null : encodeCursor([...query, before ?? null, out.next, out.until])
      report()
      if (out.next === null || dryRun) return { ...progress, cursor: null }
      if (signal !== undefined) await turn()
      if (signal?.aborted === true) return { ...progress }
    }
  }
}

/**
 * Lets the event loop run once between two chunks: with a storage that answers without I/O
 * (memory, file) the chunks would otherwise follow each other in microtasks, and whatever aborts
 * the signal (a SIGINT handler, a timer) could only run once the whole action is over.
 */
function turn (): Promise<void> {
  return new Promise(resolve => setImmediate(resolve))
}

function checkName (name: string, value: unknown): string {
  checkId(name, value)
  if (!isWellFormed(value as string)) throw new InvalidArgumentError(`Expected \`${name}\` to be a well-formed string (it has a lone surrogate)`)
  return value as string
}

function checkState (name: string, value: unknown): JobState {
  if (!STATES.includes(value as JobState)) throw new InvalidArgumentError(`Expected \`${name}\` to be one of ${STATES.join(', ')}, got ${String(value)}`)
  return value as JobState
}

function checkStamp (value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError('Expected `cursor` to be a cursor this call returned')
  return value
}

/** Decodes bytes with a serde; the bytes themselves when they do not decode (an operator still sees them). */
function decode<T> (serde: Serde<T>, bytes: Buffer): T | Buffer {
  try {
    return serde.deserialize(bytes)
  } catch {
    return bytes
  }
}
